// Batch work split over a launch's ranks (eval's episodes, adapt's tasks, predict's chunks of
// rows): each rank computes a contiguous share (share_of), and the results come together
// identically on every rank or in rank 0's outputs, so that a sharded command writes what one
// process writes. Rank 0 alone writes files and prints. Without a group (a plain run, or
// WORLD_SIZE = 1) every item is this process's and nothing is exchanged.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/distributed.hpp"
#include "runtime/thread_plan.hpp"

namespace ml::runtime {

class WorkShare {
 public:
  WorkShare() = default;  // one process
  explicit WorkShare(ProcessGroup* group) : group_(group) {}

  ProcessGroup* group() const { return group_; }
  bool sharded() const { return group_ != nullptr; }
  int rank() const { return group_ ? group_->rank() : 0; }
  int ranks() const { return group_ ? group_->size() : 1; }
  // Whether this process writes the outputs and prints the results: rank 0, or no group.
  bool leads() const { return rank() == 0; }

  // [begin, end) of the `count` items this rank computes.
  std::pair<std::size_t, std::size_t> mine(std::size_t count) const;

  // `rows` holds rows of `width` numbers, of which this rank filled [mine.first, mine.second)
  // (every rank its own range, the ranges together all rows; usually mine(count)): fills in the
  // others' rows, identically on every rank. Exact: every value is added to zeros only (NaN and
  // infinities pass through).
  void fill_in(std::vector<double>& rows, std::size_t width,
               std::pair<std::size_t, std::size_t> mine) const;

  // Every rank's `bytes` in rank order on rank 0 (whose outputs gather them); an empty vector
  // on the others. Without a group: {bytes}.
  std::vector<std::string> gather(const std::string& bytes) const;

  // ProcessGroup::together, ProcessGroup::on_rank0 and ProcessGroup::require_same under a
  // group; without one, `step` runs here and there is nothing to compare.
  void together(const std::string& what, const std::function<void()>& step) const;
  void on_rank0(const std::string& what, const std::function<void()>& step) const;
  void require_same(const std::string& what, const nlohmann::json& document,
                    const std::string& advice) const;

  // Under a launch: DistributedError on every rank unless each was asked the same `command`
  // ("eval"; `asked`: its options, without what may differ per host such as paths, device and
  // threads) over the same inputs (`inputs`: files by content, util/checksum.hpp's
  // file_fingerprint): a rank that computed another share of another request would make the
  // gathered result wrong without any error.
  void require_same_request(const std::string& command, const nlohmann::json& asked,
                            const nlohmann::json& inputs) const;

  // With an automatic budget (the usable cores), this host's cores split between its ranks
  // (LOCAL_WORLD_SIZE), so that they do not oversubscribe it; an explicit budget is per rank.
  void share_cores(ThreadBudget& budget) const;

 private:
  ProcessGroup* group_ = nullptr;
};

}  // namespace ml::runtime
