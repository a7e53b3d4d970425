// The tasks of a meta-batch stacked along a leading task dimension, so that one set of batched
// operations (bmm, baddbmm, one embedding gather) serves every task at once instead of one
// small operation per task. Tasks with fewer rows are padded; `weight` is 0 on padding, so a
// padded row changes neither a loss nor a gradient.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "models/batch.hpp"

namespace ml::models {

struct StackedBatch {
  torch::Tensor dense;   // [T, n, dense_dim] float
  torch::Tensor ids;     // [T, n, id_fields] int64, rows of the shared embedding tables
  torch::Tensor target;  // [T, n] float (int64 class index for multiclass)
  torch::Tensor weight;  // [T, n] float: 1 on a task's real rows, 0 on padding
  torch::Tensor count;   // [T] float: real rows per task (at least 1, so means stay defined)
  bool padded = false;   // whether any row is padding (if not, weight is all ones)
  // [T, n, id_fields] int64 slots into each task's gathered embedding rows; set by
  // gather_embedding_rows() when embeddings adapt per task, undefined otherwise.
  torch::Tensor local_ids;
  // Text batches: token ids [T, n, L] int64 and mask [T, n, L] bool (false on padding rows).
  torch::Tensor tokens;
  torch::Tensor mask;
  // model.user_sequence: history [T, n, L] int64 and history_mask [T, n, L] bool, as Batch's;
  // history_local [T, n, L] int64, their slots into each task's gathered rows of the item table,
  // set by gather_embedding_rows() alongside local_ids.
  torch::Tensor history;
  torch::Tensor history_mask;
  torch::Tensor history_local;
  // model.item_text: item_tokens [T, u, Lt] int64 and item_token_mask [T, u, Lt] bool (each
  // task's distinct items, padded with empty texts) and item_slot [T, n] int64, as Batch's.
  torch::Tensor item_tokens;
  torch::Tensor item_token_mask;
  torch::Tensor item_slot;

  std::int64_t tasks() const { return dense.size(0); }
  std::int64_t rows() const { return dense.size(1); }
};

// Stacks per-task batches (all on one device), padding to the largest.
StackedBatch stack_tasks(const std::vector<Batch>& batches);

// Each task's rows of first[t] followed by its rows of second[t], stacked: the same as
// stack_tasks() of concat(first[t], second[t]) (Reptile walks through support and query as one
// sequence), without building the joined batches. DataError where the lists differ in length
// or a pair cannot be joined (concat's errors).
StackedBatch stack_joined_tasks(const std::vector<Batch>& first, const std::vector<Batch>& second);

// For each task, its rows `rows[t]` of `batch` (indices into dimension 1, real rows only),
// stacked and padded again: Reptile's per-step minibatches.
StackedBatch select_rows(const StackedBatch& batch,
                         const std::vector<std::vector<std::int64_t>>& rows);

// The distinct embedding rows each task touches in any of `batches` (which stack the same
// tasks), per id field: [T, u] int64, padded with the task's first row. Sets every batch's
// local_ids to slots in these lists (and history_local: a user sequence's items are rows of the
// item field's table, kItemIdField). A task's gathered rows are all of the embedding table its
// adaptation can change, so adapting them is exactly adapting a private copy of the table.
std::vector<torch::Tensor> gather_embedding_rows(const std::vector<StackedBatch*>& batches);

}  // namespace ml::models
