// Batch assembly: see batch.hpp.
#include "models/batch.hpp"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "util/errors.hpp"

namespace ml::models {

namespace {
torch::Tensor defined_or(const torch::Tensor& t, const std::function<torch::Tensor()>& f) {
  return t.defined() ? f() : t;
}
}  // namespace

torch::Tensor to_device(const torch::Tensor& tensor, const torch::Device& device) {
  if (!tensor.defined() || tensor.device() == device) return tensor;
  if (device.is_cuda() && tensor.device().is_cpu())
    return tensor.pin_memory().to(device, /*non_blocking=*/true);
  return tensor.to(device);
}

Batch Batch::to(const torch::Device& device) const {
  return {to_device(dense, device),
          to_device(ids, device),
          to_device(target, device),
          to_device(tokens, device),
          to_device(mask, device),
          to_device(history, device),
          to_device(history_mask, device),
          to_device(item_tokens, device),
          to_device(item_token_mask, device),
          to_device(item_slot, device)};
}

Batch Batch::rows(std::int64_t begin, std::int64_t end) const {
  const auto slice = [&](const torch::Tensor& t) {
    return defined_or(t, [&] { return t.slice(0, begin, end); });
  };
  // The distinct items' tokens stay whole: the rows' slots still index them.
  return {slice(dense),   slice(ids),          slice(target), slice(tokens),   slice(mask),
          slice(history), slice(history_mask), item_tokens,   item_token_mask, slice(item_slot)};
}

Batch make_token_batch(const torch::Tensor& all_tokens, const torch::Tensor& all_mask,
                       const std::vector<std::size_t>& rows,
                       const std::vector<std::int32_t>& labels) {
  if (rows.size() != labels.size())
    throw DataError("make_token_batch: " + std::to_string(rows.size()) + " rows but " +
                    std::to_string(labels.size()) + " labels");
  std::vector<std::int64_t> index(rows.begin(), rows.end());
  for (std::int64_t r : index)
    if (r >= all_tokens.size(0))
      throw DataError("make_token_batch: row " + std::to_string(r) + " of " +
                      std::to_string(all_tokens.size(0)));
  const auto n = static_cast<std::int64_t>(rows.size());
  const torch::Tensor at = torch::tensor(index, torch::kInt64).to(all_tokens.device());
  Batch b;
  b.dense = torch::empty({n, 0}, all_tokens.options().dtype(torch::kFloat32));
  b.ids = torch::empty({n, 0}, all_tokens.options().dtype(torch::kInt64));
  b.target = torch::tensor(std::vector<std::int64_t>(labels.begin(), labels.end()), torch::kInt64)
                 .to(all_tokens.device());
  b.tokens = all_tokens.index_select(0, at);
  b.mask = all_mask.index_select(0, at);
  return b;
}

namespace {

// model.user_sequence's and model.item_text's inputs of task.examples[indices] (batch.hpp).
void add_context(const features::FeatureEncoder& encoder, const tasks::Task& task,
                 const std::vector<std::size_t>& indices, Batch& b) {
  const features::FeatureSpace& space = encoder.space();
  const auto n = static_cast<std::int64_t>(indices.size());
  if (const std::int64_t L = space.sequence_length(); L > 0) {
    b.history = torch::zeros({n, L}, torch::kInt64);
    b.history_mask = torch::zeros({n, L}, torch::kBool);
    auto history = b.history.accessor<std::int64_t, 2>();
    auto mask = b.history_mask.accessor<bool, 2>();
    for (std::int64_t i = 0; i < n; ++i) {
      const std::vector<std::int64_t> items =
          encoder.recent_items(task.examples[indices[static_cast<std::size_t>(i)]]);
      const auto offset = L - static_cast<std::int64_t>(items.size());
      for (std::size_t k = 0; k < items.size(); ++k) {
        history[i][offset + static_cast<std::int64_t>(k)] = items[k];
        mask[i][offset + static_cast<std::int64_t>(k)] = true;
      }
    }
  }
  if (!space.item_tokenizer()) return;
  std::vector<const std::vector<std::int64_t>*> distinct;
  std::unordered_map<std::int32_t, std::int64_t> slot_of_item;
  b.item_slot = torch::empty({n}, torch::kInt64);
  auto slot = b.item_slot.accessor<std::int64_t, 1>();
  for (std::int64_t i = 0; i < n; ++i) {
    const tasks::Example& e = task.examples[indices[static_cast<std::size_t>(i)]];
    const auto [it, added] =
        slot_of_item.emplace(e.item, static_cast<std::int64_t>(distinct.size()));
    if (added) distinct.push_back(&encoder.item_tokens(e));
    slot[i] = it->second;
  }
  const auto u = std::max<std::int64_t>(1, static_cast<std::int64_t>(distinct.size()));
  const std::int64_t Lt = std::max<std::int64_t>(1, space.item_text_max_len());
  b.item_tokens = torch::zeros({u, Lt}, torch::kInt64);
  b.item_token_mask = torch::zeros({u, Lt}, torch::kBool);
  auto tokens = b.item_tokens.accessor<std::int64_t, 2>();
  auto mask = b.item_token_mask.accessor<bool, 2>();
  for (std::size_t j = 0; j < distinct.size(); ++j)
    for (std::size_t k = 0; k < distinct[j]->size(); ++k) {
      tokens[static_cast<std::int64_t>(j)][static_cast<std::int64_t>(k)] = (*distinct[j])[k];
      mask[static_cast<std::int64_t>(j)][static_cast<std::int64_t>(k)] = true;
    }
}

}  // namespace

Batch make_batch(const features::FeatureEncoder& encoder, std::size_t dense_dim,
                 std::size_t id_fields, const tasks::Task& task,
                 const std::vector<std::size_t>& indices,
                 const std::vector<std::int32_t>& classes) {
  const auto n = static_cast<std::int64_t>(indices.size());
  Batch b;
  b.dense = torch::empty({n, static_cast<std::int64_t>(dense_dim)}, torch::kFloat32);
  b.ids = torch::empty({n, static_cast<std::int64_t>(id_fields)}, torch::kInt64);
  float* dense = b.dense.data_ptr<float>();
  std::int64_t* ids = b.ids.data_ptr<std::int64_t>();
  if (classes.empty()) {
    b.target = torch::empty({n}, torch::kFloat32);
    float* y = b.target.data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i)
      y[i] = task.examples[indices[static_cast<std::size_t>(i)]].label;
  } else {
    b.target = torch::empty({n}, torch::kInt64);
    std::int64_t* y = b.target.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) {
      auto global =
          static_cast<std::int32_t>(task.examples[indices[static_cast<std::size_t>(i)]].label);
      auto it = std::find(classes.begin(), classes.end(), global);
      if (it == classes.end())
        throw DataError("example of class " + std::to_string(global) + " is not in the episode");
      y[i] = it - classes.begin();
    }
  }
  for (std::int64_t i = 0; i < n; ++i)
    encoder.encode(task.examples[indices[static_cast<std::size_t>(i)]],
                   dense + i * static_cast<std::int64_t>(dense_dim),
                   ids + i * static_cast<std::int64_t>(id_fields));
  add_context(encoder, task, indices, b);
  return b;
}

std::vector<float> to_floats(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

Batch concat(const Batch& a, const Batch& b) {
  if (a.has_tokens() != b.has_tokens())
    throw DataError("concat: a text batch and a feature batch cannot be joined");
  Batch out;
  out.dense = torch::cat({a.dense, b.dense});
  out.ids = torch::cat({a.ids, b.ids});
  out.target = torch::cat({a.target, b.target});
  if (a.has_tokens()) {
    // Texts of both sides padded to the longer length (0 is the padding id, mask false).
    const std::int64_t L = std::max(a.tokens.size(1), b.tokens.size(1));
    auto widen = [L](const torch::Tensor& t) {
      return t.size(1) == L ? t : torch::constant_pad_nd(t, {0, L - t.size(1)}, 0);
    };
    out.tokens = torch::cat({widen(a.tokens), widen(b.tokens)});
    out.mask = torch::cat({widen(a.mask), widen(b.mask)});
  }
  if (a.history.defined() != b.history.defined() ||
      a.item_tokens.defined() != b.item_tokens.defined())
    throw DataError("concat: batches with and without user sequences or item texts");
  if (a.history.defined()) {
    out.history = torch::cat({a.history, b.history});
    out.history_mask = torch::cat({a.history_mask, b.history_mask});
  }
  if (a.item_tokens.defined()) {
    // b's slots move past a's items (an item in both is kept twice: the same text, encoded alike).
    out.item_tokens = torch::cat({a.item_tokens, b.item_tokens});
    out.item_token_mask = torch::cat({a.item_token_mask, b.item_token_mask});
    out.item_slot = torch::cat({a.item_slot, b.item_slot + a.item_tokens.size(0)});
  }
  return out;
}

}  // namespace ml::models
