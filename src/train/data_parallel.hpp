// Data-parallel meta-training over a runtime::ProcessGroup: what the ranks must agree on before
// they train (the config and the data, by fingerprint), and how their parts of one meta-batch
// become the single-process meta-gradient, so that every rank applies the identical outer step.
//
// Each rank takes its contiguous share (runtime::share_of) of the same global meta-batch a
// single process draws, and computes the mean meta-gradient of its n_r tasks. Scaled by
// n_r / T (T: the global meta-batch) and summed over the ranks, that is the single process's
// mean over T tasks, to float rounding: the sum is taken in another order.
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

#include "config/config.hpp"
#include "meta/row_sparse_gradient.hpp"
#include "metrics/metrics.hpp"
#include "runtime/distributed.hpp"

namespace ml::train {

// Each input file of `config` by content (util/checksum.hpp's file_fingerprint), named by its
// key: {"data.files[0]": "<bytes> bytes, xxh3 <hex>", "data.side_tables[0].files[0]": ...}.
nlohmann::json data_fingerprint(const config::Config& config);

// Compares, on every rank, the config (without what may differ per rank or host: run.dir,
// run.device, run.threads and the data paths) and the bytes of every data file (data.files and
// the side tables', by content, so a host may keep its copy elsewhere). DistributedError on
// every rank when they differ, naming the first difference between rank 0 and the first rank
// that differs; ConfigError (every rank alike) when the config cannot be trained data-parallel:
// meta.meta_batch below the number of ranks, or pretrain (its loss weighs rows, not tasks).
void check_same_run(runtime::ProcessGroup& group, const config::Config& config);

// Turns this rank's meta-gradient of its `share` of a meta-batch of `total` tasks into the
// whole meta-batch's, in place, identically on every rank. `params` are the learner's
// meta_parameters() and `row_sparse` its row_sparse_parameters(). The dense parameters' .grad()
// are summed (undefined here but defined on another rank becomes zeros here, as one process
// would have it); the row-sparse gradients (at most one per parameter) are gathered and added
// row by row into ascending distinct rows. Returns the meta-batch's mean loss from this rank's
// `loss` (the mean over its share). `gathered_bytes`, when given, grows by the bytes this rank
// sent to the row-sparse all-gathers (its rows and values padded to the longest rank's, and the
// counts), for the log of what a meta-iteration communicates.
double reduce_meta_gradient(runtime::ProcessGroup& group, const std::vector<torch::Tensor>& params,
                            const std::vector<bool>& row_sparse,
                            std::vector<meta::RowSparseGradient>& sparse, std::size_t share,
                            std::size_t total, double loss, std::int64_t* gathered_bytes = nullptr);

// A query's metrics as the ranks exchange them (runtime::WorkShare::fill_in): kMetricValues
// numbers in a row, auc, log_loss, accuracy, rmse, mae.
inline constexpr std::size_t kMetricValues = 5;
void write_metric_values(const metrics::QueryMetrics& m, double* row);
metrics::QueryMetrics read_metric_values(const double* row);

// One validation pass's scores (loss and metrics per episode, in episode order), of which this
// rank computed [begin, end): fills in the other ranks' episodes, identically everywhere (each
// value is added to zeros only, so exactly). `signal` is the interrupt this rank saw (0: none);
// returns the largest any rank saw, so that all abandon the pass together.
int combine_validation_scores(runtime::ProcessGroup& group,
                              std::vector<std::pair<double, metrics::QueryMetrics>>& scores,
                              std::pair<std::size_t, std::size_t> mine, int signal);

// DistributedError on every rank when the ranks' `weights` are not bit-identical (a fingerprint
// of their bytes): the ranks have diverged and no rank's checkpoint would speak for the group.
void check_same_weights(runtime::ProcessGroup& group, const std::vector<torch::Tensor>& weights,
                        int iteration);

}  // namespace ml::train
