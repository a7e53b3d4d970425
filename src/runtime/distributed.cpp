// Process groups on c10d: see distributed.hpp.
#include "runtime/distributed.hpp"

#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <limits>
#include <thread>

#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/json_diff.hpp"

#ifdef ML_HAVE_C10D_GLOO
// ProcessGroupGloo.hpp declares its class only under these (LibTorch's own build sets them).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#ifndef USE_DISTRIBUTED
#define USE_DISTRIBUTED
#endif
#include <dlfcn.h>

#include <csignal>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace ml::runtime {

namespace {

constexpr int kDefaultTimeoutSeconds = 300;

// The variable's value, or std::nullopt when it is unset (an empty value counts as unset, as
// torchrun's own checks treat it).
std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

long long whole_number(const char* name, const std::string& text, long long lowest,
                       long long highest, const std::string& expected) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < lowest || value > highest)
    throw DistributedError(std::string(name) + " = \"" + text + "\": expected " + expected);
  return value;
}

// A c10d or Gloo message without LibTorch's backtrace: its first line, without a final full
// stop (it goes inside our sentence).
std::string first_line(const std::exception& e) {
  std::string text = e.what();
#ifdef ML_HAVE_C10D_GLOO
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) text = c10->what_without_backtrace();
#endif
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == '.' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string seconds_text(std::chrono::milliseconds timeout) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s";
}

}  // namespace

std::optional<LaunchEnv> launch_env_from_environment() {
  const auto rank = env_value("RANK"), world = env_value("WORLD_SIZE");
  if (!rank && !world) return std::nullopt;
  if (!rank || !world)
    throw DistributedError(std::string(rank ? "WORLD_SIZE" : "RANK") + " is not set but " +
                           (rank ? "RANK" : "WORLD_SIZE") +
                           " is: a data-parallel launch needs both (run under torchrun, or set "
                           "RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT for every process)");
  LaunchEnv env;
  constexpr long long kMaxRanks = 1 << 20;
  env.world_size = static_cast<int>(whole_number("WORLD_SIZE", *world, 1, kMaxRanks,
                                                 "a whole number of processes >= 1 (torchrun "
                                                 "sets it from --nnodes x --nproc_per_node)"));
  env.rank = static_cast<int>(whole_number(
      "RANK", *rank, 0, env.world_size - 1,
      "a whole number from 0 to WORLD_SIZE - 1 = " + std::to_string(env.world_size - 1)));
  if (const auto v = env_value("LOCAL_WORLD_SIZE"))
    env.local_world_size = static_cast<int>(whole_number("LOCAL_WORLD_SIZE", *v, 1, env.world_size,
                                                         "a whole number from 1 to WORLD_SIZE"));
  if (const auto v = env_value("LOCAL_RANK"))
    env.local_rank = static_cast<int>(whole_number(
        "LOCAL_RANK", *v, 0, env.local_world_size - 1,
        "a whole number below LOCAL_WORLD_SIZE = " + std::to_string(env.local_world_size)));
  if (const auto v = env_value("MASTER_ADDR"))
    env.master_addr = *v;
  else if (env.world_size > 1)
    throw DistributedError(
        "MASTER_ADDR is not set: expected the host name or address of rank "
        "0 (torchrun sets it; 127.0.0.1 on one host)");
  if (const auto v = env_value("MASTER_PORT"))
    env.master_port =
        static_cast<int>(whole_number("MASTER_PORT", *v, 1, 65535, "a TCP port from 1 to 65535"));
  else if (env.world_size > 1)
    throw DistributedError(
        "MASTER_PORT is not set: expected the TCP port of rank 0's store "
        "(torchrun sets it from --master_port)");
  env.agent_store = env_value("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  env.restart_count = env_value("TORCHELASTIC_RESTART_COUNT").value_or("0");
  return env;
}

std::chrono::milliseconds distributed_timeout() {
  const auto v = env_value("METALEARN_DIST_TIMEOUT");
  if (!v) return std::chrono::seconds(kDefaultTimeoutSeconds);
  return std::chrono::seconds(whole_number("METALEARN_DIST_TIMEOUT", *v, 1, 7 * 24 * 3600,
                                           "a whole number of seconds >= 1"));
}

std::pair<std::size_t, std::size_t> share_of(std::size_t count, int rank, int ranks) {
  const auto r = static_cast<std::size_t>(rank), n = static_cast<std::size_t>(ranks);
  const std::size_t base = count / n, extra = count % n;
  const std::size_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

#ifdef ML_HAVE_C10D_GLOO

bool distributed_available() {
  return true;
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  std::chrono::milliseconds timeout{0};
  int rank = 0;

  // Runs a collective (or a store call), turning c10d's and Gloo's exceptions into one line.
  template <typename F>
  auto guarded(const std::string& what, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw DistributedError("rank " + std::to_string(rank) + " lost the process group while " +
                             what + ": " + first_line(e) +
                             " (another rank stopped - its own output says why - or the wait "
                             "passed METALEARN_DIST_TIMEOUT = " +
                             seconds_text(timeout) + ")");
    }
  }
  void wait(const c10::intrusive_ptr<c10d::Work>& work) { work->wait(timeout); }
};

namespace {

// c10d logs a failed connection through glog before throwing; the exception becomes our one
// line, so glog's copy is held back while connecting. glog is LibTorch's dependency, not ours:
// its level is reached through the symbol table, and left alone when it is not there.
class QuietGlog {
 public:
  QuietGlog() {
    level_ = static_cast<int*>(dlsym(RTLD_DEFAULT, "_ZN3fLI17FLAGS_minloglevelE"));
    if (level_ == nullptr) return;
    saved_ = *level_;
    *level_ = 3;  // FATAL only
  }
  ~QuietGlog() {
    if (level_ != nullptr) *level_ = saved_;
  }
  QuietGlog(const QuietGlog&) = delete;
  QuietGlog& operator=(const QuietGlog&) = delete;

 private:
  int* level_ = nullptr;
  int saved_ = 0;
};

// See connect()'s comment in distributed.hpp; a handler the embedding program set is kept.
void ignore_broken_pipes() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const LaunchEnv& env,
                                                    std::chrono::milliseconds timeout) {
  const QuietGlog quiet;
  ignore_broken_pipes();
  auto impl = std::make_unique<Impl>();
  impl->timeout = timeout;
  impl->rank = env.rank;
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  const std::string rank =
      "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = env.rank == 0 && !env.agent_store;
    options.numWorkers = env.world_size;
    options.waitWorkers = true;
    options.timeout = timeout;
    options.multiTenant = !env.agent_store;
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    // torchrun's agent keeps its own keys in the same store; its workers use this prefix.
    if (env.agent_store)
      store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + env.restart_count, store);
    impl->store = c10::make_intrusive<c10d::PrefixStore>("metalearn", store);
  } catch (const std::exception& e) {
    throw DistributedError(rank + ": no rendezvous with the store at " + where + " within " +
                           seconds_text(timeout) + " (METALEARN_DIST_TIMEOUT): " + first_line(e) +
                           (env.rank == 0 ? "; is MASTER_PORT free and did every rank start?"
                                          : "; is rank 0 running there, and MASTER_ADDR/"
                                            "MASTER_PORT the same for every rank?"));
  }
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // One host (a loopback master): loopback; several: GLOO_SOCKET_IFNAME as in PyTorch, else
    // the interface this host's name resolves to.
    if (is_loopback(env.master_addr))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    options->threads = 1;
    impl->group =
        c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, options);
  } catch (const std::exception& e) {
    throw DistributedError(rank + ": the ranks did not all join the Gloo group via " + where +
                           " within " + seconds_text(timeout) +
                           " (METALEARN_DIST_TIMEOUT): " + first_line(e));
  }
  spdlog::info("rank {} of {} joined the process group at {} (Gloo, CPU)", env.rank, env.world_size,
               where);
  return std::unique_ptr<ProcessGroup>(
      new ProcessGroup(std::move(impl), env.rank, env.world_size, env.local_world_size));
}

void ProcessGroup::all_reduce_sum(torch::Tensor& tensor) {
  impl_->guarded("summing a tensor over the ranks", [&] {
    std::vector<torch::Tensor> tensors{tensor};
    impl_->wait(impl_->group->allreduce(tensors));
  });
}

std::int64_t ProcessGroup::all_max(std::int64_t value) {
  return impl_->guarded("agreeing on a value", [&] {
    std::vector<torch::Tensor> tensors{torch::tensor({value}, torch::kInt64)};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::MAX;
    impl_->wait(impl_->group->allreduce(tensors, options));
    return tensors[0].item<std::int64_t>();
  });
}

std::vector<torch::Tensor> ProcessGroup::all_gather(const torch::Tensor& tensor) {
  return impl_->guarded("gathering tensors from the ranks", [&] {
    std::vector<torch::Tensor> input{tensor.contiguous()};
    std::vector<std::vector<torch::Tensor>> output(1);
    for (int r = 0; r < size_; ++r) output[0].push_back(torch::empty_like(input[0]));
    impl_->wait(impl_->group->allgather(output, input));
    return output[0];
  });
}

void ProcessGroup::publish(const std::string& key, const std::string& text) {
  impl_->guarded("publishing to the store", [&] {
    impl_->store->set(key + "/" + std::to_string(rank_),
                      std::vector<std::uint8_t>(text.begin(), text.end()));
  });
}

std::string ProcessGroup::read_published(const std::string& key, int rank) {
  return impl_->guarded("reading the store", [&] {
    const std::vector<std::uint8_t> bytes = impl_->store->get(key + "/" + std::to_string(rank));
    return std::string(bytes.begin(), bytes.end());
  });
}

bool ProcessGroup::published(const std::string& key, int rank) {
  return impl_->guarded("reading the store",
                        [&] { return impl_->store->check({key + "/" + std::to_string(rank)}); });
}

void ProcessGroup::broadcast_bytes(std::string& bytes, int root) {
  impl_->guarded("receiving from rank " + std::to_string(root), [&] {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    std::vector<torch::Tensor> length{
        torch::tensor({static_cast<std::int64_t>(bytes.size())}, torch::kInt64)};
    impl_->wait(impl_->group->broadcast(length, options));
    const std::int64_t size = length[0].item<std::int64_t>();
    if (size == 0) {
      bytes.clear();
      return;
    }
    std::vector<torch::Tensor> data{torch::empty({size}, torch::kUInt8)};
    if (rank_ == root) std::copy(bytes.begin(), bytes.end(), data[0].data_ptr<std::uint8_t>());
    impl_->wait(impl_->group->broadcast(data, options));
    if (rank_ != root)
      bytes.assign(reinterpret_cast<const char*>(data[0].data_ptr<std::uint8_t>()),
                   static_cast<std::size_t>(size));
  });
}

std::vector<std::string> ProcessGroup::gather_bytes(const std::string& bytes, int root) {
  const std::vector<std::int64_t> lengths = all_gather(static_cast<std::int64_t>(bytes.size()));
  // Gloo refuses empty tensors: at least one byte on the wire.
  const std::int64_t longest =
      std::max<std::int64_t>(1, *std::max_element(lengths.begin(), lengths.end()));
  torch::Tensor mine = torch::zeros({longest}, torch::kUInt8);
  std::copy(bytes.begin(), bytes.end(), mine.data_ptr<std::uint8_t>());
  std::vector<std::vector<torch::Tensor>> output;
  if (rank_ == root) {
    output.resize(1);
    for (int r = 0; r < size_; ++r) output[0].push_back(torch::empty({longest}, torch::kUInt8));
  }
  impl_->guarded("gathering results from the ranks", [&] {
    std::vector<torch::Tensor> input{mine};
    c10d::GatherOptions options;
    options.rootRank = root;
    impl_->wait(impl_->group->gather(output, input, options));
  });
  std::vector<std::string> gathered;
  if (rank_ != root) return gathered;
  for (int r = 0; r < size_; ++r) {
    const auto* data = output[0][static_cast<std::size_t>(r)].data_ptr<std::uint8_t>();
    gathered.emplace_back(reinterpret_cast<const char*>(data),
                          static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)]));
  }
  return gathered;
}

#else  // no c10d Gloo in this LibTorch

bool distributed_available() {
  return false;
}

struct ProcessGroup::Impl {};

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const LaunchEnv& env,
                                                    std::chrono::milliseconds) {
  throw DistributedError("RANK = " + std::to_string(env.rank) +
                         ", WORLD_SIZE = " + std::to_string(env.world_size) +
                         ": this metalearn was built without c10d's Gloo process group "
                         "(LibTorch without distributed support, or libgloo-dev missing at "
                         "build time); run it without torchrun");
}

void ProcessGroup::all_reduce_sum(torch::Tensor&) {}
std::int64_t ProcessGroup::all_max(std::int64_t value) {
  return value;
}
std::vector<torch::Tensor> ProcessGroup::all_gather(const torch::Tensor& tensor) {
  return {tensor};
}
void ProcessGroup::publish(const std::string&, const std::string&) {}
std::string ProcessGroup::read_published(const std::string&, int) {
  return {};
}
bool ProcessGroup::published(const std::string&, int) {
  return true;
}
std::vector<std::string> ProcessGroup::gather_bytes(const std::string& bytes, int) {
  return {bytes};
}
void ProcessGroup::broadcast_bytes(std::string&, int) {}

#endif

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl, int rank, int size, int local_world_size)
    : impl_(std::move(impl)), rank_(rank), size_(size), local_world_size_(local_world_size) {}

ProcessGroup::~ProcessGroup() = default;

std::unique_ptr<ProcessGroup> join_launch_group(OtherRanksLog others) {
  const std::optional<LaunchEnv> env = launch_env_from_environment();
  if (!env || env->world_size == 1) return nullptr;
  const auto level = others == OtherRanksLog::kWarnings ? spdlog::level::warn : spdlog::level::err;
  if (env->rank != 0 && spdlog::get_level() < level) spdlog::set_level(level);
  // Under torchrun: a rank whose agent is gone (its host's torchrun killed) would train on as an
  // orphan that the other hosts cannot tell from a live one; it gets SIGTERM instead, which
  // stops the whole group at the same meta-iteration like Ctrl-C (rank 0 saves).
  if (env_value("TORCHELASTIC_RUN_ID")) ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  return ProcessGroup::connect(*env, distributed_timeout());
}

std::vector<std::int64_t> ProcessGroup::all_gather(std::int64_t value) {
  std::vector<std::int64_t> values;
  for (const torch::Tensor& t : all_gather(torch::tensor({value}, torch::kInt64)))
    values.push_back(t.item<std::int64_t>());
  return values;
}

void ProcessGroup::together(const std::string& what, const std::function<void()>& step) {
  std::exception_ptr failure;
  std::string message;
  try {
    step();
  } catch (const std::exception& e) {
    failure = std::current_exception();
    message = e.what();
  }
  const std::string key = "failure/" + std::to_string(steps_together_++);
  if (failure) publish(key, message.substr(0, message.find('\n')));
  const std::vector<std::int64_t> failed = all_gather(static_cast<std::int64_t>(failure ? 1 : 0));
  if (failure) std::rethrow_exception(failure);
  const auto first = std::find(failed.begin(), failed.end(), 1);
  if (first == failed.end()) return;
  const int culprit = static_cast<int>(first - failed.begin());
  throw DistributedError("rank " + std::to_string(culprit) + " stopped while " + what + ": " +
                         read_published(key, culprit));
}

void ProcessGroup::on_rank0(const std::string& what, const std::function<void()>& step) {
  const std::string key = "on-rank0/" + std::to_string(steps_together_++);
  if (rank_ == 0) {
    try {
      step();
    } catch (const std::exception& e) {
      const std::string message = e.what();
      publish(key, "failed: " + message.substr(0, message.find('\n')));
      throw;
    }
    publish(key, "done");
    return;
  }
  // Polled rather than read with a blocking get(): that would give up at the timeout, and the
  // step may take longer than any timeout suited to a collective.
  while (!published(key, 0)) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string outcome = read_published(key, 0);
  if (outcome != "done")
    throw DistributedError("rank 0 stopped while " + what + ": " +
                           outcome.substr(std::string("failed: ").size()));
}

void ProcessGroup::require_same(const std::string& what, const nlohmann::json& document,
                                const std::string& advice) {
  const std::string text = document.dump();
  // Halved to fit a signed 64-bit tensor element.
  const auto fingerprint = static_cast<std::int64_t>(checksum64(text.data(), text.size()) >> 1);
  publish(what, text);
  const std::vector<std::int64_t> all = all_gather(fingerprint);
  for (int r = 1; r < size_; ++r) {
    if (all[static_cast<std::size_t>(r)] == all[0]) continue;
    const auto rank0 = nlohmann::json::parse(read_published(what, 0));
    const auto theirs = nlohmann::json::parse(read_published(what, r));
    throw DistributedError(
        "the ranks started with different " + what + ": " +
        first_json_difference(rank0, theirs, "", "on rank 0", "on rank " + std::to_string(r)) +
        " (" + advice + ")");
  }
}

}  // namespace ml::runtime
