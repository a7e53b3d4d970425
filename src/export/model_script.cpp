// The exported model families: see model_script.hpp.
#include "export/model_script.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/backbone_model.hpp"
#include "models/encoder_block.hpp"
#include "models/model.hpp"
#include "models/transformer.hpp"
#include "util/strings.hpp"

namespace ml::exporting {

namespace {

// A double as a TorchScript float literal that reads back as the same double.
std::string float_literal(double v) {
  std::string s = fmt::format("{:.17g}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// The model's parameters on `module` under their layout names, detached copies on the CPU.
void register_weights(const models::Network& net, torch::jit::Module& module) {
  const auto params = net.params();
  for (std::size_t i = 0; i < params.size(); ++i)
    module.register_parameter(net.names()[i], params[i].detach().to(torch::kCPU).clone(),
                              /*is_buffer=*/false);
}

std::string shape_text(const std::string& rows, std::int64_t columns, const char* dtype) {
  return "[" + rows + ", " + std::to_string(columns) + "] " + dtype;
}

}  // namespace

c10::List<std::string> string_list(const std::vector<std::string>& values) {
  c10::List<std::string> list;
  for (const auto& v : values) list.push_back(v);
  return list;
}

ScriptInputs script_feature_model(const inference::ScoringModel& model,
                                  torch::jit::Module& module) {
  const auto* net = dynamic_cast<const models::FunctionalModelImpl*>(model.learner->model().get());
  if (net == nullptr) throw std::logic_error("script_feature_model: not the MLP family");
  register_weights(*net, module);
  const auto& features = model.features;
  const auto dense_dim = static_cast<std::int64_t>(features.dense_dim());
  const auto id_fields = static_cast<std::int64_t>(features.id_fields());
  module.register_buffer("feature_mean", torch::tensor(features.mean(), torch::kFloat32));
  module.register_buffer("feature_scale", torch::tensor(features.scale(), torch::kFloat32));
  module.register_attribute("feature_names", c10::ListType::ofStrings(),
                            string_list(features.dense_names()));
  module.register_attribute("id_field_names", c10::ListType::ofStrings(),
                            string_list(features.id_field_names()));

  // features::FeatureEncoder::encode: a missing value is the training mean, 0 once
  // standardised; the one-hot and text-bucket columns have mean 0 and scale 1.
  std::string src = fmt::format(R"(def represent(self, dense: Tensor, ids: Tensor) -> Tensor:
    assert dense.dim() == 2 and dense.size(1) == {D}, 'dense must be [n, {D}] (feature_names), not ' + str(dense.size())
    assert ids.dim() == 2 and ids.size(1) == {F}, 'ids must be [n, {F}] (id_field_names), not ' + str(ids.size())
    x = torch.where(torch.isnan(dense), torch.zeros_like(dense), (dense - self.feature_mean) / self.feature_scale)
)",
                                fmt::arg("D", dense_dim), fmt::arg("F", id_fields));
  if (net->id_tables() > 0) {
    src += "    x = torch.cat([x";
    for (std::size_t k = 0; k < net->id_tables(); ++k)
      src += ", torch.embedding(self." + net->names()[k] + ", ids.select(1, " + std::to_string(k) +
             "))";
    src += "], 1)\n";
  }
  const auto& names = net->names();
  const std::size_t head = names.size() - 2;
  for (std::size_t w = net->first_dense_parameter(); w < head; w += 2)
    src += "    x = torch.relu(torch.addmm(self." + names[w + 1] + ", x, self." + names[w] +
           ".t()))\n";
  src += "    return x\n\n";
  src += "def logits(self, dense: Tensor, ids: Tensor) -> Tensor:\n";
  if (model.learner->algorithm() == config::Algorithm::kProtonet) {
    // meta::MetaLearner::adapted_outputs: ProtoNets score against the support's prototypes.
    torch::NoGradGuard no_grad;
    module.register_buffer(
        "prototypes",
        model.learner->prototypes(model.support, net->params()).detach().to(torch::kCPU));
    src +=
        "    z = self.represent(dense, ids)\n"
        "    d = -(z.unsqueeze(1) - self.prototypes.unsqueeze(0)).pow(2).sum(-1)\n";
    src += model.label_kind == tasks::LabelKind::kBinary
               ? "    return (d.select(1, 1) - d.select(1, 0)).unsqueeze(1)\n"
               : "    return d\n";
  } else {
    src += "    return torch.addmm(self." + names[head + 1] +
           ", self.represent(dense, ids), self." + names[head] + ".t())\n";
  }
  module.define(src);
  return {{"dense", "ids"},
          {shape_text("n", dense_dim, "float32"), shape_text("n", id_fields, "int64")}};
}

ScriptInputs script_text_model(const inference::ScoringModel& model, torch::jit::Module& module) {
  const auto* net = dynamic_cast<const models::TransformerImpl*>(model.learner->model().get());
  if (net == nullptr) throw std::logic_error("script_text_model: not the transformer");
  register_weights(*net, module);
  const models::TransformerShape& s = net->shape();
  module.register_attribute("max_len", c10::IntType::get(), s.max_len);
  const auto& names = net->names();
  const std::int64_t dh = s.model_dim / s.heads;
  auto self = [&](std::size_t i) { return "self." + names[i]; };
  // models::ParamView and models::encoder_layer, op for op (with the fused GELU: what they run
  // when no gradient is taken).
  std::string src = fmt::format(
      R"(def _linear(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    shape = x.size()
    y = torch.addmm(b, x.reshape([-1, x.size(-1)]), w.t())
    return y.view(shape[:-1] + [w.size(0)])

def _norm(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return torch.layer_norm(x, [x.size(-1)], w, b, 1e-05)

def _fold_heads(self, t: Tensor) -> Tensor:
    return t.reshape([t.size(0), t.size(1), {H}, {DH}]).transpose(-2, -3).reshape([-1, t.size(1), {DH}])

def _layer(self, x: Tensor, bias: Tensor, norm1_w: Tensor, norm1_b: Tensor, in_w: Tensor, in_b: Tensor, out_w: Tensor, out_b: Tensor, norm2_w: Tensor, norm2_b: Tensor, ff1_w: Tensor, ff1_b: Tensor, ff2_w: Tensor, ff2_b: Tensor) -> Tensor:
    qkv = self._linear(self._norm(x, norm1_w, norm1_b), in_w, in_b).chunk(3, -1)
    scores = torch.baddbmm(bias, self._fold_heads(qkv[0]), self._fold_heads(qkv[1]).transpose(-1, -2), beta=1.0, alpha={scale})
    context = torch.bmm(torch.softmax(scores, -1), self._fold_heads(qkv[2]))
    context = context.view([x.size(0), {H}, x.size(1), {DH}]).transpose(-2, -3).reshape(x.size())
    out = x + self._linear(context, out_w, out_b)
    hidden = torch.{activation}(self._linear(self._norm(out, norm2_w, norm2_b), ff1_w, ff1_b))
    return out + self._linear(hidden, ff2_w, ff2_b)

def represent(self, tokens: Tensor, mask: Tensor) -> Tensor:
    assert tokens.dim() == 2 and tokens.size(1) <= {max_len}, 'tokens must be [n, L] with L <= {max_len} (max_len), not ' + str(tokens.size())
    assert mask.size() == tokens.size(), 'mask must have the shape of tokens ' + str(tokens.size()) + ', not ' + str(mask.size())
    keep = mask != 0
    x = torch.embedding({token_embedding}, tokens)
    x = x + {position_embedding}.narrow(0, 0, tokens.size(1))
    bias = keep.logical_not().unsqueeze(-2).unsqueeze(-2).to(x.dtype).mul({masked}).expand([x.size(0), {H}, 1, x.size(1)]).reshape([-1, 1, x.size(1)])
)",
      fmt::arg("H", s.heads), fmt::arg("DH", dh), fmt::arg("max_len", s.max_len),
      fmt::arg("scale", float_literal(1.0 / std::sqrt(static_cast<double>(dh)))),
      fmt::arg("activation", s.activation == config::Activation::kRelu ? "relu" : "gelu"),
      fmt::arg("masked", float_literal(models::kMaskedScore)), fmt::arg("token_embedding", self(0)),
      fmt::arg("position_embedding", self(1)));
  const std::size_t final_norm = names.size() - 4, head = names.size() - 2;
  for (std::size_t first = 2; first < final_norm; first += models::kEncoderLayerTensors) {
    src += "    x = self._layer(x, bias";
    for (std::size_t i = first; i < first + models::kEncoderLayerTensors; ++i)
      src += ", " + self(i);
    src += ")\n";
  }
  src += fmt::format(R"(    x = self._norm(x, {norm_weight}, {norm_bias})
    weight = keep.to(x.dtype).unsqueeze(-1)
    return (x * weight).sum(-2) / weight.sum(-2).clamp_min(1.0)

def logits(self, tokens: Tensor, mask: Tensor) -> Tensor:
    return torch.addmm({head_bias}, self.represent(tokens, mask), {head_weight}.t())
)",
                     fmt::arg("norm_weight", self(final_norm)),
                     fmt::arg("norm_bias", self(final_norm + 1)),
                     fmt::arg("head_weight", self(head)), fmt::arg("head_bias", self(head + 1)));
  module.define(src);
  return {{"tokens", "mask"},
          {"[n, L] int64, L <= " + std::to_string(s.max_len) + ", 0 = padding",
           "[n, L] bool, true on real tokens"}};
}

ScriptInputs script_backbone_model(const inference::ScoringModel& model,
                                   torch::jit::Module& module) {
  const auto* net = dynamic_cast<const models::BackboneModelImpl*>(model.learner->model().get());
  if (net == nullptr) throw std::logic_error("script_backbone_model: not a backbone model");
  const auto& spec = model.config.model.backbone;
  // A copy made without autograd: a trainable backbone's weights require gradients in the run,
  // and an exported module that scores should not build a graph in Python.
  torch::jit::Module backbone;
  {
    torch::NoGradGuard no_grad;
    backbone = net->backbone().module().deepcopy();
  }
  for (const auto& p : backbone.named_parameters(/*recurse=*/true)) p.value.requires_grad_(false);
  module.register_module("backbone", backbone);
  const auto& names = net->names();
  const auto params = net->params();
  const auto& groups = net->groups();
  // The backbone's own weights are inside its submodule.
  for (std::size_t i = 0; i < names.size(); ++i)
    if (groups[i] != models::ParamGroup::kBackbone)
      module.register_parameter(names[i], params[i].detach().cpu(), /*is_buffer=*/false);
  module.register_attribute("max_len", c10::IntType::get(), std::int64_t{spec.max_len});
  const char* mask = spec.mask == config::MaskType::kBool    ? "keep"
                     : spec.mask == config::MaskType::kInt64 ? "keep.long()"
                                                             : "keep.float()";
  std::string call =
      "self.backbone." + spec.method + "(tokens" +
      (spec.inputs == config::BackboneInputs::kIdsMask ? std::string(", ") + mask : std::string()) +
      ")";
  std::string src = fmt::format(
      R"(def represent(self, tokens: Tensor, mask: Tensor) -> Tensor:
    assert tokens.dim() == 2 and tokens.size(1) <= {max_len}, 'tokens must be [n, L] with L <= {max_len} (max_len), not ' + str(tokens.size())
    assert mask.size() == tokens.size(), 'mask must have the shape of tokens ' + str(tokens.size()) + ', not ' + str(mask.size())
    keep = mask != 0
    x = {call}.float()
)",
      fmt::arg("max_len", spec.max_len), fmt::arg("call", call));
  if (spec.output == config::BackboneOutput::kFirst) src += "    x = x.select(1, 0)\n";
  if (spec.output == config::BackboneOutput::kMean)
    src +=
        "    weight = keep.to(x.dtype).unsqueeze(-1)\n"
        "    x = (x * weight).sum(1) / weight.sum(1).clamp_min(1.0)\n";
  auto index = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
  };
  if (index("film_scale") < names.size()) src += "    x = x * self.film_scale + self.film_shift\n";
  for (std::size_t l = 0;; ++l) {
    const std::string layer = "tower_" + std::to_string(l);
    if (index(layer + "_weight") == names.size()) break;
    src += fmt::format("    y = torch.addmm(self.{0}_bias, x, self.{0}_weight.t())\n", layer);
    if (index(layer + "_lora_a") < names.size())
      src += fmt::format("    y = y + x.mm(self.{0}_lora_a.t()).mm(self.{0}_lora_b.t())\n", layer);
    src += "    x = torch.relu(y)\n";
  }
  src += R"(    return x

def logits(self, tokens: Tensor, mask: Tensor) -> Tensor:
    return torch.addmm(self.head_bias, self.represent(tokens, mask), self.head_weight.t())
)";
  module.define(src);
  return {{"tokens", "mask"},
          {"[n, L] int64, L <= " + std::to_string(spec.max_len) + ", 0 = padding",
           "[n, L] bool, true on real tokens"}};
}

}  // namespace ml::exporting
