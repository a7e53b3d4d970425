// Data-parallel process groups on torch.distributed (c10d): where a process sits in a torchrun
// launch (the env:// variables RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), the TCPStore rendezvous and a ProcessGroupGloo on CPU, behind the few
// collectives the trainer needs. Without RANK and WORLD_SIZE there is no group and nothing
// changes. Every failure to form or keep the group is a DistributedError (exit code 10) with a
// bounded wait: a rank that cannot connect, a peer that died, a collective past its timeout.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ml::runtime {

// This process's place in a launch, as torchrun (or any env:// launcher) describes it.
struct LaunchEnv {
  int rank = 0;              // RANK: 0 .. world_size - 1, over all hosts
  int world_size = 1;        // WORLD_SIZE
  int local_rank = 0;        // LOCAL_RANK: the rank on this host (picks the GPU in stage 2)
  int local_world_size = 1;  // LOCAL_WORLD_SIZE: ranks on this host (1 when unset)
  std::string master_addr = "127.0.0.1";  // MASTER_ADDR: the host of rank 0's store
  int master_port = 29500;                // MASTER_PORT
  // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent already serves the store on
  // MASTER_PORT, so rank 0 connects as a client too, under the agent's key prefix.
  bool agent_store = false;
  std::string restart_count = "0";  // TORCHELASTIC_RESTART_COUNT: the agent's prefix
};

// The launch this process belongs to, from the environment; std::nullopt when neither RANK nor
// WORLD_SIZE is set (a plain run). DistributedError naming the variable and what was expected
// when one is set without the other, or a value is not a whole number in range (RANK below
// WORLD_SIZE, LOCAL_RANK below LOCAL_WORLD_SIZE, MASTER_PORT 1..65535).
std::optional<LaunchEnv> launch_env_from_environment();

// How long a rank waits for the others, at the rendezvous and in every collective:
// METALEARN_DIST_TIMEOUT seconds (a positive whole number), else 300 s. DistributedError on a
// bad value.
std::chrono::milliseconds distributed_timeout();

// [begin, end) of `rank`'s contiguous share of `count` items split over `ranks`: the first
// count % ranks ranks get one more, so shares differ by at most one and follow rank order.
std::pair<std::size_t, std::size_t> share_of(std::size_t count, int rank, int ranks);

// Whether this build has c10d's Gloo process group (false: a launch is a DistributedError).
bool distributed_available();

class ProcessGroup;

// How much ranks other than 0 log: warnings and errors (training: a rank may see what the
// others do not), or errors only (batch work: every rank reads the same data and gets the same
// results, so its warnings would repeat rank 0's).
enum class OtherRanksLog { kWarnings, kErrors };

// The group of this process's launch: launch_env_from_environment(), then
// ProcessGroup::connect() with distributed_timeout(); nullptr outside a launch or with
// WORLD_SIZE = 1 (nothing to share). Ranks other than 0 log as `others` says, so that a launch
// logs its progress once.
std::unique_ptr<ProcessGroup> join_launch_group(OtherRanksLog others = OtherRanksLog::kWarnings);

// One rank's membership of a process group. Collectives must be called by every rank in the
// same order with tensors of the same shape and dtype (CPU, contiguous); each one waits at
// most distributed_timeout() and throws DistributedError when a peer is gone (its own output
// says why) or the wait runs out.
class ProcessGroup {
 public:
  // The TCPStore rendezvous at env.master_addr:master_port (rank 0 serves it unless torchrun's
  // agent does), then a ProcessGroupGloo over it. DistributedError when the ranks do not all
  // arrive within `timeout`, or this build has no Gloo. Sets SIGPIPE to be ignored when it is
  // at its default: Gloo writes to its sockets with writev(), so a peer that dies mid-write
  // would otherwise kill this rank silently instead of raising the DistributedError that says
  // which rank was lost (Python, torchrun's usual host, ignores SIGPIPE from start-up).
  static std::unique_ptr<ProcessGroup> connect(const LaunchEnv& env,
                                               std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_world_size() const { return local_world_size_; }

  // Sums `tensor` over the ranks in place: every rank ends with the same bytes.
  void all_reduce_sum(torch::Tensor& tensor);
  // The largest of the ranks' `value`s.
  std::int64_t all_max(std::int64_t value);
  // Every rank's `tensor`, in rank order (all ranks pass one shape and dtype).
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor);
  // Every rank's `value`, in rank order.
  std::vector<std::int64_t> all_gather(std::int64_t value);
  // Rank `root`'s `bytes` on every rank (the others' `bytes` are replaced).
  void broadcast_bytes(std::string& bytes, int root = 0);
  // Every rank's `bytes`, in rank order, on rank `root`; the others get an empty vector. The
  // ranks' byte counts may differ (each is padded to the longest on the wire).
  std::vector<std::string> gather_bytes(const std::string& bytes, int root = 0);

  // Runs `step` here and makes its failure the group's: when it throws on any rank, every rank
  // throws - the failing ones their own error, the others a DistributedError with the failing
  // rank's message - so that no rank goes on to wait for a rank that has stopped. `what` names
  // the step in that message ("preparing the data").
  void together(const std::string& what, const std::function<void()>& step);

  // Runs `step` on rank 0 alone while the others wait for it, for as long as rank 0 lives
  // (no timeout: the step may be a training run). A failure on rank 0 is its own error there
  // and a DistributedError with its message on the others; rank 0 lost while they wait (its
  // store gone, or torchrun stopping the group) is a DistributedError too. `what` names the
  // step ("training the pretrain baseline").
  void on_rank0(const std::string& what, const std::function<void()>& step);

  // DistributedError on every rank when the ranks' `document`s differ, naming the first
  // difference between rank 0's and the first other rank's, followed by `advice` ("every rank
  // of a launch needs the same config and the same data"). `what` names the documents
  // ("configs").
  void require_same(const std::string& what, const nlohmann::json& document,
                    const std::string& advice);

  // Publishes `text` under `key` in the group's store, and reads another rank's (waiting up to
  // the timeout for it): for messages that name a difference between ranks.
  void publish(const std::string& key, const std::string& text);
  std::string read_published(const std::string& key, int rank);

 private:
  struct Impl;
  ProcessGroup(std::unique_ptr<Impl> impl, int rank, int size, int local_world_size);
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1, local_world_size_ = 1;
  std::uint64_t steps_together_ = 0;  // together()'s and on_rank0()'s store keys are unique
  // Whether `key` (as publish() names it for `rank`) is in the store yet, without waiting.
  bool published(const std::string& key, int rank);
};

}  // namespace ml::runtime
