// A batch of encoded examples as tensors: the dense feature matrix, the id matrix for
// embeddings and the targets, built from a task's examples through the fitted feature space;
// or, for text (models/transformer.hpp), token ids and their attention mask, with empty dense
// and id matrices so that what stacks, pads and concatenates batches serves both.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "features/feature_space.hpp"
#include "tasks/task_set.hpp"

namespace ml::models {

// The id field (column of Batch::ids) of the hashed item id; Batch::history holds rows of its
// table too.
inline constexpr std::int64_t kItemIdField = 1;

struct Batch {
  torch::Tensor dense;   // [n, dense_dim] float32
  torch::Tensor ids;     // [n, id_fields] int64
  torch::Tensor target;  // [n] float32 (0/1 or a value), int64 class index for multiclass
  // Text: token ids [n, L] int64 (0 is padding) and mask [n, L] bool (true on real tokens);
  // undefined for feature batches.
  torch::Tensor tokens;
  torch::Tensor mask;
  // model.user_sequence (models/context_model.hpp): each row's user's last items as rows of the
  // item-id table (id field kItemIdField), oldest first and left-padded: history [n, L] int64
  // (0 on padding) and history_mask [n, L] bool (true on real items). Undefined without it.
  torch::Tensor history;
  torch::Tensor history_mask;
  // model.item_text: the token ids of the batch's distinct items, item_tokens [u, Lt] int64 and
  // item_token_mask [u, Lt] bool, and each row's item among them, item_slot [n] int64: an item
  // is encoded once however many rows hold it. Undefined without it.
  torch::Tensor item_tokens;
  torch::Tensor item_token_mask;
  torch::Tensor item_slot;

  std::int64_t size() const { return dense.size(0); }
  bool has_tokens() const { return tokens.defined(); }
  // Every tensor on `device` (to_device below).
  Batch to(const torch::Device& device) const;
  // Rows [begin, end) (views).
  Batch rows(std::int64_t begin, std::int64_t end) const;
};

// `tensor` on `device`. From the CPU to a GPU the copy goes through pinned (page-locked) memory
// and does not block the host: a plain copy from pageable memory synchronises with the GPU once
// per tensor, and an episode is a handful of small tensors. The pinned buffer is LibTorch's
// caching host allocator's, held until the copy has run.
torch::Tensor to_device(const torch::Tensor& tensor, const torch::Device& device);

// Encodes task.examples[indices]. For multiclass, `classes` maps episode label i to a global
// class id and targets become i; empty `classes` keeps float labels.
Batch make_batch(const features::FeatureEncoder& encoder, std::size_t dense_dim,
                 std::size_t id_fields, const tasks::Task& task,
                 const std::vector<std::size_t>& indices,
                 const std::vector<std::int32_t>& classes = {});

// Rows `rows` of a text dataset's token ids and mask (all_tokens, all_mask: [N, L], as
// models::token_batch gives them), with episode class indices `labels` as int64 targets; dense
// and ids are [n, 0]. DataError when a row is out of range or the counts differ.
Batch make_token_batch(const torch::Tensor& all_tokens, const torch::Tensor& all_mask,
                       const std::vector<std::size_t>& rows,
                       const std::vector<std::int32_t>& labels);

// A tensor's values as floats on the CPU (for the torch-free metrics).
std::vector<float> to_floats(const torch::Tensor& t);

// Rows of two batches stacked (support + query, for Reptile and joint training).
Batch concat(const Batch& a, const Batch& b);

}  // namespace ml::models
