// The meta-gradient of an embedding table as the rows a meta-batch touched and their values.
// A meta-batch reads a few thousand rows of tables with hundreds of thousands, so the learner
// hands these to the outer optimiser instead of a dense table-sized .grad().
#pragma once

#include <torch/torch.h>

#include <cstddef>

namespace ml::meta {

struct RowSparseGradient {
  std::size_t parameter = 0;  // index into MetaLearner::meta_parameters()
  torch::Tensor rows;         // [r] int64: distinct table rows, ascending
  torch::Tensor values;       // [r, dim]: the gradient of those rows (every other row's is 0)
};

}  // namespace ml::meta
