// Stacking tasks along a leading dimension: see task_stack.hpp.
#include "models/task_stack.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>

#include "util/errors.hpp"

namespace ml::models {

namespace {

// [T, n_max, rest...]: task t's pieces (tensors of the same trailing shape) one after another
// along their first dimension, then zero rows up to n_max. On the CPU one copy of the bytes;
// elsewhere (or for mixed layouts) tensor operations.
torch::Tensor stack_pieces(const std::vector<std::vector<torch::Tensor>>& pieces,
                           std::int64_t n_max) {
  const torch::Tensor& like = pieces.at(0).at(0);
  std::vector<std::int64_t> shape = like.sizes().vec();
  shape[0] = n_max;
  shape.insert(shape.begin(), static_cast<std::int64_t>(pieces.size()));
  bool by_bytes = like.device().is_cpu();
  for (const auto& task : pieces) {
    std::int64_t rows = 0;
    for (const torch::Tensor& p : task) {
      rows += p.size(0);
      // Byte copies drop autograd history: tensors that need it go through torch::cat.
      by_bytes = by_bytes && p.device().is_cpu() && p.is_contiguous() && !p.requires_grad() &&
                 p.scalar_type() == like.scalar_type() && p.dim() == like.dim() &&
                 p.sizes().slice(1) == like.sizes().slice(1);
    }
    if (rows > n_max)
      throw DataError("stacking: a task's field has " + std::to_string(rows) +
                      " rows where its batch has " + std::to_string(n_max));
  }
  if (by_bytes) {
    // torch::cat and torch::stack per field were ~10% of W1 Reptile's meta-step (51 calls).
    torch::Tensor out = torch::empty(shape, like.options());
    const std::size_t row_bytes =
        static_cast<std::size_t>(c10::multiply_integers(like.sizes().slice(1))) *
        like.element_size();
    auto* base = static_cast<char*>(out.data_ptr());
    for (std::size_t t = 0; t < pieces.size(); ++t) {
      char* at = base + t * static_cast<std::size_t>(n_max) * row_bytes;
      for (const torch::Tensor& p : pieces[t]) {
        const std::size_t bytes = static_cast<std::size_t>(p.size(0)) * row_bytes;
        if (bytes > 0) std::memcpy(at, p.data_ptr(), bytes);
        at += bytes;
      }
      const std::size_t padding = static_cast<std::size_t>(
          base + (t + 1) * static_cast<std::size_t>(n_max) * row_bytes - at);
      if (padding > 0) std::memset(at, 0, padding);
    }
    return out;
  }
  std::vector<torch::Tensor> parts;
  for (const auto& task : pieces) parts.push_back(task.size() == 1 ? task[0] : torch::cat(task));
  bool equal = std::all_of(parts.begin(), parts.end(),
                           [&](const torch::Tensor& p) { return p.size(0) == n_max; });
  if (equal) return torch::stack(parts);
  torch::Tensor out = torch::zeros(shape, like.options());
  for (std::size_t t = 0; t < parts.size(); ++t)
    out.select(0, static_cast<std::int64_t>(t)).narrow(0, 0, parts[t].size(0)).copy_(parts[t]);
  return out;
}

// [T, n_max, rest...] of the tensors, each padded with zeros to n_max rows.
torch::Tensor pad_and_stack(const std::vector<torch::Tensor>& parts, std::int64_t n_max) {
  std::vector<std::vector<torch::Tensor>> pieces;
  pieces.reserve(parts.size());
  for (const torch::Tensor& p : parts) pieces.push_back({p});
  return stack_pieces(pieces, n_max);
}

// The rows of each task's batches (one after another) stacked: dense, ids, target, weight,
// count and padded. The text and context fields are the callers'.
StackedBatch stack_rows(const std::vector<std::vector<const Batch*>>& tasks) {
  if (tasks.empty()) throw DataError("stacking needs at least one task");
  std::int64_t n_max = 0;
  std::vector<std::vector<torch::Tensor>> dense, ids, target;
  std::vector<std::int64_t> rows;
  for (const auto& task : tasks) {
    std::int64_t n = 0;
    dense.emplace_back();
    ids.emplace_back();
    target.emplace_back();
    for (const Batch* b : task) {
      n += b->size();
      dense.back().push_back(b->dense);
      ids.back().push_back(b->ids);
      target.back().push_back(b->target);
    }
    rows.push_back(n);
    n_max = std::max(n_max, n);
  }
  StackedBatch s;
  s.dense = stack_pieces(dense, n_max);
  s.ids = stack_pieces(ids, n_max);
  s.target = stack_pieces(target, n_max);
  const auto T = static_cast<std::int64_t>(tasks.size());
  const auto options = tasks[0][0]->dense.options();
  // Built on the host and made a tensor once: a fill per task was 3 tensor operations each,
  // ~4% of W1's meta-step.
  std::vector<float> weight(static_cast<std::size_t>(T * n_max), 0.0f), counts;
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t n = rows[static_cast<std::size_t>(t)];
    std::fill_n(weight.begin() + t * n_max, n, 1.0f);
    counts.push_back(static_cast<float>(std::max<std::int64_t>(1, n)));
  }
  s.weight = torch::tensor(weight, torch::kFloat32).view({T, n_max}).to(options);
  s.count = torch::tensor(counts, torch::kFloat32).to(options);
  s.padded =
      std::any_of(rows.begin(), rows.end(), [&](std::int64_t n) { return n != n_max || n == 0; });
  return s;
}

// The user sequences and item texts of `batches`, when they have them, into `s`.
void stack_context(const std::vector<Batch>& batches, std::int64_t n_max, StackedBatch& s) {
  const bool history = batches[0].history.defined(), text = batches[0].item_tokens.defined();
  std::vector<torch::Tensor> h, hm, tokens, tmask, slot;
  std::int64_t u_max = 0;
  for (const auto& b : batches) {
    if (b.history.defined() != history || b.item_tokens.defined() != text)
      throw DataError(
          "stacking needs every task with or every task without user sequences and "
          "item texts");
    if (history) {
      h.push_back(b.history);
      hm.push_back(b.history_mask);
    }
    if (text) {
      tokens.push_back(b.item_tokens);
      tmask.push_back(b.item_token_mask);
      slot.push_back(b.item_slot);
      u_max = std::max(u_max, b.item_tokens.size(0));
    }
  }
  if (history) {
    s.history = pad_and_stack(h, n_max);
    s.history_mask = pad_and_stack(hm, n_max);
  }
  if (text) {
    s.item_tokens = pad_and_stack(tokens, u_max);
    s.item_token_mask = pad_and_stack(tmask, u_max);
    s.item_slot = pad_and_stack(slot, n_max);
  }
}

}  // namespace

StackedBatch stack_tasks(const std::vector<Batch>& batches) {
  if (batches.empty()) throw DataError("stacking needs at least one task");
  std::vector<std::vector<const Batch*>> tasks;
  std::vector<torch::Tensor> tokens, mask;
  for (const auto& b : batches) {
    if (b.has_tokens() != batches[0].has_tokens())
      throw DataError("stacking needs all text batches or all feature batches");
    tasks.push_back({&b});
    if (b.has_tokens()) {
      tokens.push_back(b.tokens);
      mask.push_back(b.mask);
    }
  }
  StackedBatch s = stack_rows(tasks);
  const std::int64_t n_max = s.rows();
  stack_context(batches, n_max, s);
  if (!tokens.empty()) {
    // Every task's texts padded to the longest length too.
    std::int64_t L = 0;
    for (const auto& t : tokens) L = std::max(L, t.size(1));
    for (std::size_t t = 0; t < tokens.size(); ++t)
      if (tokens[t].size(1) != L) {
        tokens[t] = torch::constant_pad_nd(tokens[t], {0, L - tokens[t].size(1)}, 0);
        mask[t] = torch::constant_pad_nd(mask[t], {0, L - mask[t].size(1)}, 0);
      }
    s.tokens = pad_and_stack(tokens, n_max);
    s.mask = pad_and_stack(mask, n_max);
  }
  return s;
}

StackedBatch stack_joined_tasks(const std::vector<Batch>& first, const std::vector<Batch>& second) {
  if (first.size() != second.size())
    throw DataError("stacking joined tasks needs as many second parts as first parts");
  const auto plain = [](const Batch& b) {
    return !b.has_tokens() && !b.history.defined() && !b.item_tokens.defined();
  };
  bool all_plain = true;
  for (std::size_t t = 0; t < first.size(); ++t)
    all_plain = all_plain && plain(first[t]) && plain(second[t]);
  if (!all_plain) {
    // Texts and context fields have their own joining rules (models::concat).
    std::vector<Batch> joined;
    for (std::size_t t = 0; t < first.size(); ++t) joined.push_back(concat(first[t], second[t]));
    return stack_tasks(joined);
  }
  std::vector<std::vector<const Batch*>> tasks;
  for (std::size_t t = 0; t < first.size(); ++t) tasks.push_back({&first[t], &second[t]});
  return stack_rows(tasks);
}

StackedBatch select_rows(const StackedBatch& batch,
                         const std::vector<std::vector<std::int64_t>>& rows) {
  const std::int64_t T = batch.tasks();
  if (static_cast<std::int64_t>(rows.size()) != T)
    throw DataError("select_rows: one row list per task expected");
  std::int64_t n = 1;
  for (const auto& r : rows) n = std::max<std::int64_t>(n, static_cast<std::int64_t>(r.size()));
  std::vector<std::int64_t> index(static_cast<std::size_t>(T * n), 0);
  std::vector<float> weight(static_cast<std::size_t>(T * n), 0.0f), counts;
  bool padded = false;
  for (std::int64_t t = 0; t < T; ++t) {
    const auto& r = rows[static_cast<std::size_t>(t)];
    for (std::size_t i = 0; i < r.size(); ++i) {
      index[static_cast<std::size_t>(t * n) + i] = r[i];
      weight[static_cast<std::size_t>(t * n) + i] = 1.0f;
    }
    counts.push_back(static_cast<float>(std::max<std::size_t>(1, r.size())));
    padded = padded || static_cast<std::int64_t>(r.size()) != n;
  }
  const auto device = batch.dense.device();
  torch::Tensor idx = to_device(torch::tensor(index, torch::kInt64).view({T, n}), device);
  auto take = [&](const torch::Tensor& x) {
    if (!x.defined()) return x;
    torch::Tensor i = idx;
    for (std::int64_t d = 2; d < x.dim(); ++d) i = i.unsqueeze(-1);
    std::vector<std::int64_t> shape = x.sizes().vec();
    shape[1] = n;
    return x.gather(1, i.expand(shape));
  };
  StackedBatch s;
  s.dense = take(batch.dense);
  s.ids = take(batch.ids);
  s.target = take(batch.target);
  s.local_ids = take(batch.local_ids);
  s.tokens = take(batch.tokens);
  s.mask = take(batch.mask);
  s.history = take(batch.history);
  s.history_mask = take(batch.history_mask);
  s.history_local = take(batch.history_local);
  s.item_slot = take(batch.item_slot);
  s.item_tokens = batch.item_tokens;  // per task, not per row: the slots index them
  s.item_token_mask = batch.item_token_mask;
  s.weight = torch::tensor(weight, torch::kFloat32).view({T, n}).to(batch.weight.options());
  s.count = torch::tensor(counts, torch::kFloat32).to(batch.count.options());
  s.padded = padded;
  return s;
}

std::vector<torch::Tensor> gather_embedding_rows(const std::vector<StackedBatch*>& batches) {
  if (batches.empty()) return {};
  const std::int64_t T = batches[0]->tasks();
  const std::int64_t fields = batches[0]->ids.size(2);
  const auto device = batches[0]->ids.device();
  std::vector<torch::Tensor> ids_cpu, weight_cpu, local_cpu, history_cpu, history_local_cpu;
  for (auto* b : batches) {
    ids_cpu.push_back(b->ids.to(torch::kCPU).contiguous());
    weight_cpu.push_back(b->weight.to(torch::kCPU, torch::kFloat32).contiguous());
    local_cpu.push_back(torch::zeros_like(ids_cpu.back()));
    if (b->history.defined()) {
      history_cpu.push_back(b->history.to(torch::kCPU).contiguous());
      history_local_cpu.push_back(torch::zeros_like(history_cpu.back()));
    }
  }
  if (!history_cpu.empty() && history_cpu.size() != batches.size())
    throw DataError("gather_embedding_rows: batches with and without user sequences");
  std::vector<torch::Tensor> rows;
  for (std::int64_t k = 0; k < fields; ++k) {
    std::vector<std::vector<std::int64_t>> distinct(static_cast<std::size_t>(T));
    for (std::int64_t t = 0; t < T; ++t) {
      std::unordered_map<std::int64_t, std::int64_t> slot;
      auto& list = distinct[static_cast<std::size_t>(t)];
      for (std::size_t b = 0; b < batches.size(); ++b) {
        const std::int64_t n = ids_cpu[b].size(1);
        auto ids = ids_cpu[b].accessor<std::int64_t, 3>();
        auto weight = weight_cpu[b].accessor<float, 2>();
        auto local = local_cpu[b].accessor<std::int64_t, 3>();
        for (std::int64_t i = 0; i < n; ++i) {
          if (weight[t][i] == 0) continue;  // padding keeps slot 0: it never carries gradient
          auto [it, added] = slot.emplace(ids[t][i][k], static_cast<std::int64_t>(list.size()));
          if (added) list.push_back(ids[t][i][k]);
          local[t][i][k] = it->second;
        }
        if (k != kItemIdField || history_cpu.empty()) continue;
        // A user sequence's items are rows of the item table: the task adapts those too.
        auto history = history_cpu[b].accessor<std::int64_t, 3>();
        auto history_local = history_local_cpu[b].accessor<std::int64_t, 3>();
        const std::int64_t L = history_cpu[b].size(2);
        for (std::int64_t i = 0; i < n; ++i) {
          if (weight[t][i] == 0) continue;
          for (std::int64_t j = 0; j < L; ++j) {
            auto [it, added] =
                slot.emplace(history[t][i][j], static_cast<std::int64_t>(list.size()));
            if (added) list.push_back(history[t][i][j]);
            history_local[t][i][j] = it->second;
          }
        }
      }
    }
    std::size_t u = 1;
    for (const auto& list : distinct) u = std::max(u, list.size());
    torch::Tensor r = torch::zeros({T, static_cast<std::int64_t>(u)}, torch::kInt64);
    auto ra = r.accessor<std::int64_t, 2>();
    for (std::int64_t t = 0; t < T; ++t) {
      const auto& list = distinct[static_cast<std::size_t>(t)];
      for (std::size_t j = 0; j < u; ++j)
        ra[t][static_cast<std::int64_t>(j)] = list.empty() ? 0 : list[j < list.size() ? j : 0];
    }
    rows.push_back(to_device(r, device));
  }
  for (std::size_t b = 0; b < batches.size(); ++b) {
    batches[b]->local_ids = to_device(local_cpu[b], device);
    if (!history_cpu.empty()) batches[b]->history_local = to_device(history_local_cpu[b], device);
  }
  return rows;
}

}  // namespace ml::models
