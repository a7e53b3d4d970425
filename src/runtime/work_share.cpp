// Batch work over a launch's ranks: see work_share.hpp.
#include "runtime/work_share.hpp"

#include <algorithm>

namespace ml::runtime {

std::pair<std::size_t, std::size_t> WorkShare::mine(std::size_t count) const {
  return share_of(count, rank(), ranks());
}

void WorkShare::fill_in(std::vector<double>& rows, std::size_t width,
                        std::pair<std::size_t, std::size_t> mine) const {
  // Every rank takes part, even one with nothing to send (its range empty).
  if (!group_ || width == 0 || rows.empty()) return;
  const auto [begin, end] = mine;
  torch::Tensor all = torch::zeros({static_cast<std::int64_t>(rows.size())}, torch::kFloat64);
  double* data = all.data_ptr<double>();
  std::copy(rows.begin() + static_cast<std::ptrdiff_t>(begin * width),
            rows.begin() + static_cast<std::ptrdiff_t>(end * width), data + begin * width);
  group_->all_reduce_sum(all);
  rows.assign(data, data + rows.size());
}

std::vector<std::string> WorkShare::gather(const std::string& bytes) const {
  if (!group_) return {bytes};
  return group_->gather_bytes(bytes, 0);
}

void WorkShare::together(const std::string& what, const std::function<void()>& step) const {
  if (group_)
    group_->together(what, step);
  else
    step();
}

void WorkShare::on_rank0(const std::string& what, const std::function<void()>& step) const {
  if (group_)
    group_->on_rank0(what, step);
  else
    step();
}

void WorkShare::require_same(const std::string& what, const nlohmann::json& document,
                             const std::string& advice) const {
  if (group_) group_->require_same(what, document, advice);
}

void WorkShare::require_same_request(const std::string& command, const nlohmann::json& asked,
                                     const nlohmann::json& inputs) const {
  const std::string advice = "every rank of a launch needs the same " + command +
                             " options and the same model and data files";
  require_same(command + " options", asked, advice);
  require_same(command + " inputs", inputs, advice);
}

void WorkShare::share_cores(ThreadBudget& budget) const {
  if (!group_ || !budget.automatic || group_->local_world_size() <= 1) return;
  budget.threads = std::max(1, budget.threads / group_->local_world_size());
  budget.source +=
      ", shared by " + std::to_string(group_->local_world_size()) + " ranks on this host";
}

}  // namespace ml::runtime
