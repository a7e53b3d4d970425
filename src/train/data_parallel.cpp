// Data-parallel meta-training collectives: see data_parallel.hpp.
#include "train/data_parallel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "runtime/work_share.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/json_diff.hpp"

namespace ml::train {

namespace {

// The config as the ranks must share it: what is per rank or per host taken out.
nlohmann::json shared_config(const config::Config& config) {
  nlohmann::json j;
  to_json(j, config);
  for (const char* key : {"dir", "device", "threads", "memory_limit_mib"}) j["run"].erase(key);
  j["data"].erase("files");
  j["data"].erase("cache");
  if (j["data"].contains("side_tables"))
    for (auto& table : j["data"]["side_tables"]) table.erase("files");
  return j;
}

}  // namespace

nlohmann::json data_fingerprint(const config::Config& config) {
  nlohmann::json j = nlohmann::json::object();
  auto add = [&](const std::string& name, const std::string& path) {
    j[name] = file_fingerprint(path);
  };
  for (std::size_t i = 0; i < config.data.files.size(); ++i)
    add(fmt::format("data.files[{}]", i), config.data.files[i]);
  for (std::size_t t = 0; t < config.data.side_tables.size(); ++t)
    for (std::size_t i = 0; i < config.data.side_tables[t].files.size(); ++i)
      add(fmt::format("data.side_tables[{}].files[{}]", t, i), config.data.side_tables[t].files[i]);
  return j;
}

void check_same_run(runtime::ProcessGroup& group, const config::Config& config) {
  const std::string advice = "every rank of a launch needs the same config and the same data";
  group.require_same("configs", shared_config(config), advice);
  group.require_same("data", data_fingerprint(config), advice);
  if (config.meta.meta_batch < group.size())
    throw ConfigError("meta.meta_batch = " + std::to_string(config.meta.meta_batch) +
                      " is below the " + std::to_string(group.size()) +
                      " ranks (WORLD_SIZE): each rank needs at least one task of every "
                      "meta-batch; raise meta.meta_batch or launch fewer ranks");
  if (config.meta.algorithm == config::Algorithm::kPretrain)
    throw ConfigError(
        "meta.algorithm = \"pretrain\" under torchrun: its loss is a mean over the rows of the "
        "whole meta-batch, which the ranks' task shares do not give yet; train it in one "
        "process");
}

double reduce_meta_gradient(runtime::ProcessGroup& group, const std::vector<torch::Tensor>& params,
                            const std::vector<bool>& row_sparse,
                            std::vector<meta::RowSparseGradient>& sparse, std::size_t share,
                            std::size_t total, double loss, std::int64_t* gathered_bytes) {
  torch::NoGradGuard no_grad;
  const double scale = static_cast<double>(share) / static_cast<double>(total);
  std::vector<torch::Tensor> dense;
  std::vector<std::size_t> tables;  // the row-sparse parameters' indices, ascending
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i < row_sparse.size() && row_sparse[i])
      tables.push_back(i);
    else
      dense.push_back(params[i]);
  }
  // Which dense gradients exist on some rank, and the loss: one small sum in double.
  torch::Tensor head = torch::zeros({static_cast<std::int64_t>(dense.size()) + 1}, torch::kFloat64);
  auto h = head.accessor<double, 1>();
  for (std::size_t k = 0; k < dense.size(); ++k) h[k] = dense[k].grad().defined() ? 1 : 0;
  h[dense.size()] = loss * scale;
  group.all_reduce_sum(head);
  std::vector<torch::Tensor> parts;
  for (std::size_t k = 0; k < dense.size(); ++k) {
    if (h[k] == 0) continue;
    if (!dense[k].grad().defined()) dense[k].mutable_grad() = torch::zeros_like(dense[k]);
    parts.push_back(dense[k].grad().reshape({-1}).to(torch::kFloat32) * scale);
  }
  if (!parts.empty()) {
    torch::Tensor flat = torch::cat(parts);
    group.all_reduce_sum(flat);
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < dense.size(); ++k) {
      if (h[k] == 0) continue;
      torch::Tensor g = dense[k].grad();
      g.copy_(flat.narrow(0, offset, g.numel()).view(g.sizes()));
      offset += g.numel();
    }
  }
  if (tables.empty()) return h[dense.size()];

  // Row-sparse: every rank's rows and values, padded to the longest, then added row by row.
  std::vector<const meta::RowSparseGradient*> mine(tables.size(), nullptr);
  torch::Tensor counts = torch::zeros({static_cast<std::int64_t>(tables.size())}, torch::kInt64);
  for (const auto& g : sparse)
    for (std::size_t k = 0; k < tables.size(); ++k)
      if (g.parameter == tables[k]) {
        mine[k] = &g;
        counts[static_cast<std::int64_t>(k)] = g.rows.size(0);
      }
  const std::vector<torch::Tensor> all_counts = group.all_gather(counts);
  auto count_sent = [&](const torch::Tensor& t) {
    if (gathered_bytes) *gathered_bytes += t.numel() * static_cast<std::int64_t>(t.element_size());
  };
  count_sent(counts);
  std::vector<meta::RowSparseGradient> merged;
  for (std::size_t k = 0; k < tables.size(); ++k) {
    const auto kk = static_cast<std::int64_t>(k);
    std::int64_t longest = 0;
    for (const auto& c : all_counts) longest = std::max(longest, c[kk].item<std::int64_t>());
    if (longest == 0) continue;
    std::vector<std::int64_t> value_shape = params[tables[k]].sizes().vec();
    value_shape[0] = longest;
    torch::Tensor rows = torch::full({longest}, -1, torch::kInt64);
    torch::Tensor values = torch::zeros(value_shape, torch::kFloat32);
    if (mine[k] != nullptr && mine[k]->rows.size(0) > 0) {
      const std::int64_t n = mine[k]->rows.size(0);
      rows.narrow(0, 0, n).copy_(mine[k]->rows);
      values.narrow(0, 0, n).copy_(mine[k]->values * scale);
    }
    const std::vector<torch::Tensor> all_rows = group.all_gather(rows);
    const std::vector<torch::Tensor> all_values = group.all_gather(values);
    count_sent(rows);
    count_sent(values);
    std::vector<torch::Tensor> kept_rows, kept_values;
    for (std::size_t r = 0; r < all_rows.size(); ++r) {
      const std::int64_t n = all_counts[r][kk].item<std::int64_t>();
      kept_rows.push_back(all_rows[r].narrow(0, 0, n));
      kept_values.push_back(all_values[r].narrow(0, 0, n));
    }
    const auto [unique_rows, slot] = at::_unique(torch::cat(kept_rows), /*sorted=*/true,
                                                 /*return_inverse=*/true);
    value_shape[0] = unique_rows.size(0);
    torch::Tensor sum =
        torch::zeros(value_shape, torch::kFloat32).index_add_(0, slot, torch::cat(kept_values));
    merged.push_back({tables[k], unique_rows, sum});
  }
  sparse = std::move(merged);
  return h[dense.size()];
}

void write_metric_values(const metrics::QueryMetrics& m, double* row) {
  for (const double v : {m.auc, m.log_loss, m.accuracy, m.rmse, m.mae}) *row++ = v;
}

metrics::QueryMetrics read_metric_values(const double* row) {
  metrics::QueryMetrics m;
  for (double* v : {&m.auc, &m.log_loss, &m.accuracy, &m.rmse, &m.mae}) *v = *row++;
  return m;
}

int combine_validation_scores(runtime::ProcessGroup& group,
                              std::vector<std::pair<double, metrics::QueryMetrics>>& scores,
                              std::pair<std::size_t, std::size_t> mine, int signal) {
  const int agreed = static_cast<int>(group.all_max(signal));
  if (agreed != 0) return agreed;
  constexpr std::size_t kWidth = 1 + kMetricValues;  // the loss, then the metrics
  std::vector<double> rows(scores.size() * kWidth, 0.0);
  for (std::size_t i = mine.first; i < mine.second; ++i) {
    rows[i * kWidth] = scores[i].first;
    write_metric_values(scores[i].second, &rows[i * kWidth + 1]);
  }
  runtime::WorkShare(&group).fill_in(rows, kWidth, mine);
  for (std::size_t i = 0; i < scores.size(); ++i)
    scores[i] = {rows[i * kWidth], read_metric_values(&rows[i * kWidth + 1])};
  return 0;
}

void check_same_weights(runtime::ProcessGroup& group, const std::vector<torch::Tensor>& weights,
                        int iteration) {
  Checksum64 sum;
  for (const torch::Tensor& w : weights) {
    const torch::Tensor bytes = w.detach().cpu().contiguous();
    sum.update(bytes.data_ptr(), static_cast<std::size_t>(bytes.nbytes()));
  }
  const std::vector<std::int64_t> all =
      group.all_gather(static_cast<std::int64_t>(sum.value() >> 1));
  for (int r = 1; r < group.size(); ++r)
    if (all[static_cast<std::size_t>(r)] != all[0])
      throw DistributedError("the weights of rank " + std::to_string(r) +
                             " differ from rank 0's after meta-iteration " +
                             std::to_string(iteration) +
                             ": the ranks no longer apply one outer step (a bug); the last "
                             "checkpoint is from before");
}

}  // namespace ml::train
