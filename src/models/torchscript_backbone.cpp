// A TorchScript text encoder as a backbone: see torchscript_backbone.hpp.
#include "models/torchscript_backbone.hpp"

#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "util/checksum.hpp"
#include "util/enum_names.hpp"
#include "util/errors.hpp"

namespace ml::models {

namespace {

// The first line of a c10::Error: the rest is a C++ stack trace that means nothing to a user.
std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

// What went wrong inside a TorchScript module: the interpreter's message opens with "The
// following operation failed in the TorchScript interpreter.", then the module's traceback,
// and ends with the exception ("RuntimeError: boom", "IndexError: index out of range in
// self"): its last non-empty line.
std::string cause_of(const std::string& text) {
  std::size_t end = text.find_last_not_of(" \n");
  if (end == std::string::npos) return text;
  const std::size_t begin = text.rfind('\n', end);
  return text.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin + 1));
}

// An exception's text without a C++ stack trace: c10::Error carries one, the TorchScript
// interpreter's JITException (a std::runtime_error) does not.
std::string text_of(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

// `trained`: a run's checkpoint names the file, which every later command reads again.
std::string read_bytes(const std::string& path, bool trained) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error))
    throw DataError("model.backbone.file '" + path +
                    "' is a folder; it names the TorchScript file");
  if (std::filesystem::exists(path, error) && !std::filesystem::is_regular_file(path, error))
    throw DataError("model.backbone.file '" + path +
                    "' is not a regular file (a pipe or a device); it names the TorchScript file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw DataError("model.backbone.file '" + path + "': cannot be opened (" +
                    std::strerror(errno) + ")" +
                    (trained ? std::string(" (the run was trained with it there, and adapt, eval "
                                           "and predict read it again: put it back, or score "
                                           "with a `metalearn export` of the model, which holds "
                                           "the backbone)")
                             : std::string()));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A copy of `module`'s object tree that shares every tensor and method but has slots of its
// own, so that writing a parameter slot changes the copy only.
torch::jit::Module own_slots(const torch::jit::Module& module) {
  torch::jit::Module copy = module.copy();
  for (const auto& child : module.named_children())
    copy.setattr(child.name, own_slots(child.value)._ivalue());
  return copy;
}

// The module that owns parameter `name` ("a.b.weight" -> a.b) in `root`, and the slot's name.
std::pair<torch::jit::Module, std::string> owner_of(torch::jit::Module root,
                                                    const std::string& name) {
  std::string rest = name;
  for (std::size_t dot; (dot = rest.find('.')) != std::string::npos;) {
    root = root.attr(rest.substr(0, dot)).toModule();
    rest = rest.substr(dot + 1);
  }
  return {root, rest};
}

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

}  // namespace

std::shared_ptr<TorchScriptBackbone> TorchScriptBackbone::load(const config::Config& config,
                                                               const torch::Device& device,
                                                               std::uint64_t expected_checksum,
                                                               std::int64_t vocabulary) {
  const auto& spec = config.model.backbone;
  const std::string& path = spec.file;
  const std::string what = "model.backbone.file '" + path + "'";
  std::shared_ptr<TorchScriptBackbone> b(new TorchScriptBackbone());
  const std::string bytes = read_bytes(path, expected_checksum != 0);
  b->checksum_ = checksum64(bytes.data(), bytes.size());
  if (expected_checksum != 0 && b->checksum_ != expected_checksum)
    throw DataError(what +
                    " has changed since the run was trained (another checksum): the "
                    "run's weights were trained on the old backbone; put that file back "
                    "or train again");
  try {
    std::istringstream in(bytes);
    b->module_ = torch::jit::load(in, device);
  } catch (const c10::Error& e) {
    throw DataError(what + ": not a TorchScript module (torch.jit.load says: " +
                    first_line(e.what_without_backtrace()) +
                    "); save it with torch.jit.save of torch.jit.script or torch.jit.trace");
  }
  b->file_ = path;
  b->dim_ = spec.dim;
  b->trainable_ = spec.trainable;
  b->inputs_ = spec.inputs;
  b->mask_type_ = spec.mask;
  b->output_ = spec.output;
  b->module_.eval();
  for (const auto& p : b->module_.named_parameters(/*recurse=*/true)) {
    b->names_.push_back(p.name);
    p.value.requires_grad_(spec.trainable);
  }
  if (spec.trainable && b->names_.empty())
    throw DataError(what +
                    ": model.backbone.trainable = true, but the module has no parameters to "
                    "train (its weights are constants or buffers); set trainable to false");

  b->method_ = spec.method;
  const auto method = b->module_.find_method(spec.method);
  if (!method)
    throw DataError(what + ": the module has no method '" + spec.method +
                    "' (model.backbone.method)");
  // The schema lists `self` first.
  const std::size_t inputs = method->function().getSchema().arguments().size() - 1;
  const std::size_t declared = spec.inputs == config::BackboneInputs::kIdsMask ? 2 : 1;
  if (inputs != declared)
    throw DataError(what + ": its " + spec.method + " takes " + std::to_string(inputs) +
                    " input(s), but model.backbone.inputs = \"" + enum_name(spec.inputs) +
                    "\" gives " + std::to_string(declared) +
                    (declared == 2 ? " (token ids and mask)" : " (token ids)"));

  // The probe: two texts of max_len tokens, the second half padding in the second row; the
  // first row the tokenizer's highest id, so a backbone with a smaller vocabulary fails here.
  const std::int64_t L = spec.max_len;
  torch::Tensor ids = torch::ones({2, L}, torch::TensorOptions().dtype(torch::kInt64));
  if (vocabulary > 1) ids[0].fill_(vocabulary - 1);
  torch::Tensor mask = torch::ones({2, L}, torch::TensorOptions().dtype(torch::kBool));
  mask[1].slice(0, (L + 1) / 2).fill_(false);
  ids.masked_fill_(mask.logical_not(), 0);
  torch::Tensor raw;
  try {
    torch::NoGradGuard no_grad;
    torch::jit::GraphOptimizerEnabledGuard plain(false);
    std::vector<torch::jit::IValue> args = {ids.to(device)};
    if (declared == 2) args.emplace_back(b->typed_mask(mask.to(device)));
    const torch::jit::IValue out = b->module_.get_method(spec.method)(args);
    if (!out.isTensor())
      throw DataError(what + ": its " + spec.method + " returns a " + out.tagKind() +
                      ", not a tensor; return the vectors (or token states) alone");
    raw = out.toTensor();
  } catch (const DataError&) {
    throw;
  } catch (const std::exception& e) {
    throw DataError(what + ": running it on 2 texts of " + std::to_string(L) +
                    " tokens (model.backbone.max_len)" +
                    (vocabulary > 1 ? " with ids up to " + std::to_string(vocabulary - 1) +
                                          " (the tokenizer's largest)"
                                    : std::string()) +
                    " failed: " + cause_of(text_of(e)) +
                    " (check model.backbone.max_len and .tokenizer against what it was trained "
                    "with)");
  }
  const bool pooled = spec.output == config::BackboneOutput::kPooled;
  const bool shape_ok =
      pooled ? raw.dim() == 2 && raw.size(0) == 2 && raw.size(1) == spec.dim
             : raw.dim() == 3 && raw.size(0) == 2 && raw.size(1) == L && raw.size(2) == spec.dim;
  if (!shape_ok)
    throw DataError(what + ": on 2 texts of " + std::to_string(L) + " tokens it returns shape " +
                    shape_text(raw) + "; model.backbone.output = \"" + enum_name(spec.output) +
                    "\" and dim = " + std::to_string(spec.dim) + " expect " +
                    (pooled ? "[2, " + std::to_string(spec.dim) + "]"
                            : "[2, " + std::to_string(L) + ", " + std::to_string(spec.dim) + "]") +
                    " (check model.backbone.dim, .output and .max_len)");
  if (!raw.is_floating_point())
    throw DataError(what + ": it returns " + std::string(c10::toString(raw.scalar_type())) +
                    " values; expected floating point vectors");
  if (!torch::isfinite(raw).all().item<bool>())
    throw DataError(what + ": on 2 texts of " + std::to_string(L) +
                    " tokens it returns NaN or Inf values");
  return b;
}

std::shared_ptr<TorchScriptBackbone> TorchScriptBackbone::deep_copy() const {
  std::shared_ptr<TorchScriptBackbone> b(new TorchScriptBackbone(*this));
  b->module_ = module_.deepcopy();
  // deepcopy() clones: a weight that required gradients comes back as a clone's output, not a
  // leaf, and a gradient would flow to the original instead of collecting in the copy.
  for (const auto& name : names_) {
    auto [owner, slot] = owner_of(b->module_, name);
    owner.setattr(slot, owner.attr(slot).toTensor().detach().requires_grad_(trainable_));
  }
  return b;
}

std::vector<torch::Tensor> TorchScriptBackbone::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& p : module_.named_parameters(/*recurse=*/true)) out.push_back(p.value);
  return out;
}

torch::Tensor TorchScriptBackbone::typed_mask(const torch::Tensor& mask) const {
  switch (mask_type_) {
    case config::MaskType::kBool:
      return mask.to(torch::kBool);
    case config::MaskType::kInt64:
      return mask.to(torch::kInt64);
    case config::MaskType::kFloat32:
      return mask.to(torch::kFloat32);
  }
  return mask;
}

torch::Tensor TorchScriptBackbone::run(torch::jit::Module& module, const torch::Tensor& ids,
                                       const torch::Tensor& mask) const {
  torch::jit::GraphOptimizerEnabledGuard plain(false);
  std::vector<torch::jit::IValue> args = {ids};
  if (inputs_ == config::BackboneInputs::kIdsMask) args.emplace_back(typed_mask(mask));
  torch::Tensor out;
  try {
    out = module.get_method(method_)(args).toTensor().to(torch::kFloat32);
  } catch (const std::exception& e) {
    throw DataError("model.backbone.file '" + file_ + "': running it on " +
                    std::to_string(ids.size(0)) + " texts of " + std::to_string(ids.size(1)) +
                    " tokens failed: " + cause_of(text_of(e)));
  }
  switch (output_) {
    case config::BackboneOutput::kPooled:
      return out;
    case config::BackboneOutput::kFirst:
      return out.select(1, 0);
    case config::BackboneOutput::kMean: {
      torch::Tensor weight = mask.to(out.dtype()).unsqueeze(-1);
      return (out * weight).sum(1) / weight.sum(1).clamp_min(1);
    }
  }
  return out;
}

torch::Tensor TorchScriptBackbone::encode(const torch::Tensor& ids, const torch::Tensor& mask,
                                          const std::vector<torch::Tensor>* weights) const {
  if (!trainable_ || !weights) {
    // Without a graph when frozen; a trainable one's own weights take part in it.
    torch::AutoGradMode graph(trainable_ && torch::GradMode::is_enabled());
    auto module = module_;
    return run(module, ids, mask);
  }
  if (weights->size() != names_.size())
    throw std::logic_error("TorchScriptBackbone::encode: weights do not match the parameters");
  torch::jit::Module copy = own_slots(module_);
  for (std::size_t i = 0; i < names_.size(); ++i) {
    auto [owner, slot] = owner_of(copy, names_[i]);
    owner.setattr(slot, (*weights)[i]);
  }
  return run(copy, ids, mask);
}

torch::Tensor TorchScriptBackbone::encode_all(const torch::Tensor& ids, const torch::Tensor& mask,
                                              std::int64_t rows_per_pass) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (std::int64_t begin = 0; begin < ids.size(0); begin += rows_per_pass) {
    const std::int64_t end = std::min(ids.size(0), begin + rows_per_pass);
    // Texts are padded to max_len; a pass needs only its longest text's tokens (attention over
    // max_len positions costs max_len^2 per text).
    const torch::Tensor pass_mask = mask.slice(0, begin, end);
    const std::int64_t longest =
        std::max<std::int64_t>(1, pass_mask.sum(1).max().item<std::int64_t>());
    parts.push_back(
        encode(ids.slice(0, begin, end).slice(1, 0, longest), pass_mask.slice(1, 0, longest)));
  }
  if (parts.empty()) return torch::zeros({0, dim_});
  torch::Tensor vectors = torch::cat(parts, 0);
  const torch::Tensor bad = torch::isfinite(vectors).all(1).logical_not().nonzero();
  if (bad.size(0) > 0)
    throw DataError("model.backbone.file '" + file_ + "': its vectors of " +
                    std::to_string(bad.size(0)) + " of " + std::to_string(vectors.size(0)) +
                    " texts hold NaN or Inf (the first: text " +
                    std::to_string(bad[0][0].item<std::int64_t>() + 1) + ")");
  return vectors;
}

}  // namespace ml::models
