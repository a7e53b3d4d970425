// A batch of encoded examples as tensors: the dense feature matrix, the id matrix for
// embeddings and the targets. Built from a task's examples through the fitted feature space.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "features/feature_space.hpp"
#include "tasks/task_set.hpp"

namespace ml::models {

struct Batch {
  torch::Tensor dense;   // [n, dense_dim] float32
  torch::Tensor ids;     // [n, id_fields] int64
  torch::Tensor target;  // [n] float32 (0/1 or a value), int64 class index for multiclass

  std::int64_t size() const { return dense.size(0); }
  Batch to(const torch::Device& device) const;
};

// Encodes task.examples[indices]. For multiclass, `classes` maps episode label i to a global
// class id and targets become i; empty `classes` keeps float labels.
Batch make_batch(const features::FeatureEncoder& encoder, std::size_t dense_dim,
                 std::size_t id_fields, const tasks::Task& task,
                 const std::vector<std::size_t>& indices,
                 const std::vector<std::int32_t>& classes = {});

// A tensor's values as floats on the CPU (for the torch-free metrics).
std::vector<float> to_floats(const torch::Tensor& t);

// Rows of two batches stacked (support + query, for Reptile and joint training).
Batch concat(const Batch& a, const Batch& b);

}  // namespace ml::models
