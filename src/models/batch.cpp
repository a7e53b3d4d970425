// Batch assembly: see batch.hpp.
#include "models/batch.hpp"

#include <algorithm>

#include "util/errors.hpp"

namespace ml::models {

Batch Batch::to(const torch::Device& device) const {
  return {dense.to(device), ids.to(device), target.to(device)};
}

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
  return b;
}

std::vector<float> to_floats(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

Batch concat(const Batch& a, const Batch& b) {
  return {torch::cat({a.dense, b.dense}), torch::cat({a.ids, b.ids}),
          torch::cat({a.target, b.target})};
}

}  // namespace ml::models
