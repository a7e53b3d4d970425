// Tests of data-parallel training on c10d (runtime/distributed.hpp, train/data_parallel.hpp):
// the env:// variables, two ranks on loopback (forked processes, each with its own
// ProcessGroupGloo over a TCPStore) against one process, start-up checks that stop every rank
// with one line, and a launch by torchrun through the CLI.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "eval/adaptation_choice.hpp"
#include "eval/cold_start.hpp"
#include "eval/text_eval.hpp"
#include "inference/adaptation.hpp"
#include "inference/prediction.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "runtime/distributed.hpp"
#include "synth/synthetic_log.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"
#include "util/json_diff.hpp"

namespace {

namespace fs = std::filesystem;
using ml::runtime::LaunchEnv;
using torch::Tensor;

// Sets (or with nullptr unsets) environment variables for one scope.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, const char*>> values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      if (value)
        setenv(name.c_str(), value, 1);
      else
        unsetenv(name.c_str());
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value)
        setenv(name.c_str(), value->c_str(), 1);
      else
        unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

const std::vector<std::string> kLaunchVariables = {"RANK",
                                                   "WORLD_SIZE",
                                                   "LOCAL_RANK",
                                                   "LOCAL_WORLD_SIZE",
                                                   "MASTER_ADDR",
                                                   "MASTER_PORT",
                                                   "METALEARN_DIST_TIMEOUT",
                                                   "TORCHELASTIC_USE_AGENT_STORE"};

// The launch variables as given, every other one of kLaunchVariables unset.
ScopedEnv launch(std::vector<std::pair<std::string, const char*>> values) {
  for (const std::string& name : kLaunchVariables) {
    bool given = false;
    for (const auto& v : values) given = given || v.first == name;
    if (!given) values.emplace_back(name, nullptr);
  }
  return ScopedEnv(values);
}

// The message of the DistributedError `f` throws ("" when it throws none).
std::string distributed_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ml::DistributedError& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, NothingWithoutTheVariablesAndTorchrunsValuesRead) {
  {
    auto env = launch({});
    EXPECT_FALSE(ml::runtime::launch_env_from_environment());
    EXPECT_FALSE(ml::runtime::join_launch_group());
    EXPECT_EQ(ml::runtime::distributed_timeout(), std::chrono::seconds(300));
  }
  {
    auto env = launch({{"RANK", "3"},
                       {"WORLD_SIZE", "4"},
                       {"LOCAL_RANK", "1"},
                       {"LOCAL_WORLD_SIZE", "2"},
                       {"MASTER_ADDR", "node0"},
                       {"MASTER_PORT", "29400"},
                       {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                       {"METALEARN_DIST_TIMEOUT", "7"}});
    const auto e = ml::runtime::launch_env_from_environment();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->rank, 3);
    EXPECT_EQ(e->world_size, 4);
    EXPECT_EQ(e->local_rank, 1);
    EXPECT_EQ(e->local_world_size, 2);
    EXPECT_EQ(e->master_addr, "node0");
    EXPECT_EQ(e->master_port, 29400);
    EXPECT_TRUE(e->agent_store);
    EXPECT_EQ(ml::runtime::distributed_timeout(), std::chrono::seconds(7));
  }
  {
    // One rank is no group: nothing to connect to.
    auto env = launch({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
    EXPECT_FALSE(ml::runtime::join_launch_group());
  }
}

TEST(LaunchEnv, ABadValueIsOneLineNamingTheVariable) {
  struct Case {
    std::vector<std::pair<std::string, const char*>> values;
    std::string named;
  };
  const std::vector<Case> cases = {
      {{{"RANK", "0"}}, "WORLD_SIZE is not set"},
      {{{"WORLD_SIZE", "2"}}, "RANK is not set"},
      {{{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}},
       "RANK = \"2\": expected a whole number from 0 to WORLD_SIZE - 1 = 1"},
      {{{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK = \"x\""},
      {{{"RANK", "0"}, {"WORLD_SIZE", "0"}}, "WORLD_SIZE = \"0\""},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}, "MASTER_ADDR is not set"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}, "MASTER_PORT is not set"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}},
       "MASTER_PORT = \"70000\": expected a TCP port"},
      {{{"RANK", "1"},
        {"WORLD_SIZE", "2"},
        {"LOCAL_RANK", "1"},
        {"LOCAL_WORLD_SIZE", "1"},
        {"MASTER_ADDR", "h"},
        {"MASTER_PORT", "1"}},
       "LOCAL_RANK = \"1\""},
  };
  for (const Case& c : cases) {
    auto env = launch(c.values);
    const std::string message =
        distributed_error([] { ml::runtime::launch_env_from_environment(); });
    EXPECT_TRUE(ml::testing::contains(message, c.named)) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  auto env = launch({{"METALEARN_DIST_TIMEOUT", "0"}});
  EXPECT_TRUE(ml::testing::contains(distributed_error([] { ml::runtime::distributed_timeout(); }),
                                    "METALEARN_DIST_TIMEOUT = \"0\""));
}

TEST(LaunchEnv, SharesAreContiguousInRankOrderAndDifferByOneAtMost) {
  for (std::size_t count : {1, 2, 5, 7, 16})
    for (int ranks : {1, 2, 3, 4}) {
      std::size_t next = 0;
      for (int r = 0; r < ranks; ++r) {
        const auto [begin, end] = ml::runtime::share_of(count, r, ranks);
        EXPECT_EQ(begin, next);
        EXPECT_LE(end - begin, count / ranks + 1);
        EXPECT_GE(end - begin, count / ranks);
        next = end;
      }
      EXPECT_EQ(next, count);
    }
}

// A TCP port nobody listens on now (the kernel's choice for an ephemeral bind).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

struct RankOutcome {
  int code = -1;        // the process's exit code; -1 when it had to be killed
  std::string message;  // the error line, if any
};

// Runs `body(group)` in one forked process per rank, each joined to a 2-rank group on
// loopback, and waits at most `deadline` for all: a rank still running then is killed, which
// the test reports as a hang. A rank's exit code is its error's ExitCode (0 without error).
// `meanwhile(pids)`, when given, runs in the test's process while the ranks run.
std::vector<RankOutcome> run_ranks(
    const ml::testing::TempDir& dir, const std::function<void(ml::runtime::ProcessGroup&)>& body,
    std::chrono::seconds deadline,
    const std::function<void(const std::vector<pid_t>&)>& meanwhile = nullptr) {
  constexpr int kRanks = 2;
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < kRanks; ++rank) {
    const pid_t pid = fork();
    if (pid == 0) {
      int code = 0;
      std::string message;
      try {
        LaunchEnv env;
        env.rank = rank;
        env.world_size = kRanks;
        env.local_world_size = kRanks;
        env.master_addr = "127.0.0.1";
        env.master_port = port;
        auto group = ml::runtime::ProcessGroup::connect(env, std::chrono::seconds(20));
        body(*group);
      } catch (const ml::Error& e) {
        code = static_cast<int>(e.code());
        message = e.what();
      } catch (const std::exception& e) {
        code = 1;
        message = e.what();
      }
      std::ofstream(dir.file("rank" + std::to_string(rank) + ".err")) << message;
      std::_Exit(code);
    }
    pids.push_back(pid);
  }
  if (meanwhile) meanwhile(pids);
  std::vector<RankOutcome> outcomes(kRanks);
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (int rank = 0; rank < kRanks; ++rank) {
    int status = 0;
    while (waitpid(pids[rank], &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        kill(pids[rank], SIGKILL);
        waitpid(pids[rank], &status, 0);
        status = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (status != -1 && WIFEXITED(status)) outcomes[rank].code = WEXITSTATUS(status);
    outcomes[rank].message = ml::testing::slurp(dir.file("rank" + std::to_string(rank) + ".err"));
  }
  return outcomes;
}

std::vector<Tensor> weights_of(const std::string& checkpoint) {
  auto run = ml::run::load_run(checkpoint, {}, "cpu");
  std::vector<Tensor> out;
  for (const auto& p : run.learner->model()->params()) out.push_back(p.detach().clone());
  return out;
}

std::vector<double> losses_of(const std::string& metrics) {
  std::vector<double> losses;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    // A line being written meanwhile is not JSON yet.
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  return losses;
}

TEST(DataParallel, TwoRanksOnLoopbackReachTheWeightsOfOneProcess) {
  ml::testing::TempDir dir;
  auto config = ml::testing::synthetic_shop(dir);
  // 5 tasks: shares of 3 and 2, so the ranks' parts weigh differently.
  config.meta.meta_batch = 5;
  config.meta.iterations = 20;
  for (const auto& [algorithm, model] : std::vector<std::pair<std::string, std::string>>{
           {"maml", "embedding_mlp"}, {"reptile", "mlp"}}) {
    SCOPED_TRACE(algorithm + " " + model);
    config.meta.algorithm = ml::testing::choice<ml::config::Algorithm>(algorithm);
    config.model.type = ml::testing::choice<ml::config::ModelType>(model);
    const std::string name = algorithm + "-" + model;
    // run.dir may differ by rank: rank 1 writes nothing there.
    const auto outcomes = run_ranks(
        dir,
        [&](ml::runtime::ProcessGroup& group) {
          ml::config::Config mine = config;
          mine.run.dir = dir.file(name + "-rank" + std::to_string(group.rank()));
          ml::train::TrainOptions options;
          options.group = &group;
          ml::train::run_training(mine, options);
        },
        std::chrono::seconds(300));
    for (const RankOutcome& o : outcomes) ASSERT_EQ(o.code, 0) << o.message;
    EXPECT_FALSE(fs::exists(dir.file(name + "-rank1")));

    config.run.dir = dir.file(name + "-one");
    ml::train::run_training(config, {});
    const auto one = weights_of(config.run.dir + "/checkpoints/latest.mlckpt");
    const auto two = weights_of(dir.file(name + "-rank0/checkpoints/latest.mlckpt"));
    ASSERT_EQ(one.size(), two.size());
    for (std::size_t i = 0; i < one.size(); ++i)
      EXPECT_TRUE(torch::allclose(two[i], one[i], 1e-3, 1e-5))
          << "param " << i << ": largest difference "
          << (two[i] - one[i]).abs().max().item<double>();
    // The same meta-batches: the logged losses agree too, and so does the validation.
    const auto l1 = losses_of(config.run.dir + "/metrics.jsonl");
    const auto l2 = losses_of(dir.file(name + "-rank0/metrics.jsonl"));
    ASSERT_EQ(l1.size(), l2.size());
    ASSERT_FALSE(l1.empty());
    for (std::size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l1[i], l2[i], 1e-4 * (1 + l1[i]));
  }
}

TEST(DataParallel, AGroupResumedWithoutASharedRunFolderEndsAsTheUninterruptedGroup) {
  ml::testing::TempDir dir;
  auto config = ml::testing::synthetic_shop(dir);
  config.meta.meta_batch = 5;
  config.meta.iterations = 20;
  // Rank 1 names a run.dir that never exists, as on a host without the run folder: under
  // --resume rank 0 sends it the group's checkpoint.
  auto train = [&](const std::string& name, int stop_after, bool resume) {
    const auto outcomes = run_ranks(
        dir,
        [&](ml::runtime::ProcessGroup& group) {
          ml::config::Config mine = config;
          mine.run.dir = dir.file(group.rank() == 0 ? name : name + "-elsewhere");
          ml::train::run_training(mine, {resume, stop_after, &group});
        },
        std::chrono::seconds(300));
    for (const RankOutcome& o : outcomes) EXPECT_EQ(o.code, 0) << o.message;
    return dir.file(name);
  };
  const std::string whole = train("whole", 0, false);
  train("cut", 7, false);
  const std::string resumed = train("cut", 0, true);
  const auto w = weights_of(whole + "/checkpoints/latest.mlckpt");
  const auto r = weights_of(resumed + "/checkpoints/latest.mlckpt");
  ASSERT_EQ(w.size(), r.size());
  for (std::size_t i = 0; i < w.size(); ++i)
    EXPECT_TRUE(torch::equal(w[i], r[i])) << "param " << i << " differs after --resume";
  EXPECT_EQ(losses_of(whole + "/metrics.jsonl"), losses_of(resumed + "/metrics.jsonl"));
  EXPECT_EQ(losses_of(whole + "/metrics.jsonl").size(), 4u);
  EXPECT_FALSE(fs::exists(dir.file("cut-elsewhere")));
}

TEST(DataParallel, ADifferentConfigOrDataStopsEveryRankWithOneLine) {
  ml::testing::TempDir dir;
  const auto config = ml::testing::synthetic_shop(dir);
  ml::testing::TempDir other_dir;
  // The same shop drawn with another seed: the same columns, other rows.
  ml::synth::SynthOptions o;
  o.users = 300;
  o.categories = 12;
  o.sessions = 6000;
  o.seed = 12;
  const auto other_files = ml::synth::write_synthetic_log(o, other_dir.file("synth")).files;
  struct Case {
    std::function<void(ml::config::Config&, ml::train::TrainOptions&)> change;
    std::string named;
  };
  const std::vector<Case> cases = {
      {[](ml::config::Config& c, auto&) { c.meta.inner_lr = 0.123; }, "meta.inner_lr"},
      {[&](ml::config::Config& c, auto&) { c.data.files = {other_files.events}; }, "data.files[0]"},
      // An option, not the config: ranks stopping at different iterations would wait forever.
      {[](ml::config::Config&, ml::train::TrainOptions& t) { t.stop_after = 3; }, "stop_after"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.named);
    const auto start = std::chrono::steady_clock::now();
    const auto outcomes = run_ranks(
        dir,
        [&](ml::runtime::ProcessGroup& group) {
          ml::config::Config mine = config;
          mine.run.dir = dir.file("mismatch-rank" + std::to_string(group.rank()));
          ml::train::TrainOptions options{false, 0, &group};
          if (group.rank() == 1) c.change(mine, options);
          ml::train::run_training(mine, options);
        },
        std::chrono::seconds(120));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
    for (const RankOutcome& o : outcomes) {
      EXPECT_EQ(o.code, static_cast<int>(ml::ExitCode::kDistributed)) << o.message;
      EXPECT_TRUE(ml::testing::contains(o.message, "the ranks started with different"))
          << o.message;
      EXPECT_TRUE(ml::testing::contains(o.message, c.named)) << o.message;
      EXPECT_EQ(o.message.find('\n'), std::string::npos) << o.message;
    }
    // Nothing was written: the check comes before the run folder.
    EXPECT_FALSE(fs::exists(dir.file("mismatch-rank0")));
  }
}

TEST(DataParallel, ARankThatDiesStopsTheOtherAtOnceAndTheLastCheckpointStaysValid) {
  ml::testing::TempDir dir;
  auto config = ml::testing::synthetic_shop(dir);
  config.meta.iterations = 100000;  // far longer than the test: rank 1 is killed mid-training
  config.train.checkpoint_every = 5;
  const std::string metrics = dir.file("dies-rank0/metrics.jsonl");
  std::chrono::steady_clock::time_point killed;
  const auto outcomes = run_ranks(
      dir,
      [&](ml::runtime::ProcessGroup& group) {
        ml::config::Config mine = config;
        mine.run.dir = dir.file("dies-rank" + std::to_string(group.rank()));
        ml::train::run_training(mine, {false, 0, &group});
      },
      std::chrono::seconds(120),
      [&](const std::vector<pid_t>& pids) {
        // Past the first checkpoint (iteration 5; metrics.jsonl's first line is at 5 too).
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (losses_of(metrics).size() < 2 && std::chrono::steady_clock::now() < give_up)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        kill(pids[1], SIGKILL);
        killed = std::chrono::steady_clock::now();
      });
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(30));
  EXPECT_EQ(outcomes[1].code, -1);  // killed
  EXPECT_EQ(outcomes[0].code, static_cast<int>(ml::ExitCode::kDistributed)) << outcomes[0].message;
  EXPECT_TRUE(ml::testing::contains(outcomes[0].message, "rank 0 lost the process group while"))
      << outcomes[0].message;
  EXPECT_EQ(outcomes[0].message.find('\n'), std::string::npos) << outcomes[0].message;
  // Rank 0's latest checkpoint is a complete one from before the loss, at a multiple of 5.
  const auto meta = ml::run::read_checkpoint_meta(dir.file("dies-rank0/checkpoints/latest.mlckpt"));
  const int iteration = meta.progress.value("iteration", -1);
  EXPECT_GE(iteration, 5);
  EXPECT_EQ(iteration % 5, 0);
  EXPECT_FALSE(weights_of(dir.file("dies-rank0/checkpoints/latest.mlckpt")).empty());
}

// Gloo writes with writev(): a peer that died mid-write raises SIGPIPE, which by default kills
// the rank before it can say which peer was lost (the test above, when rank 0 was sending).
// A joined rank writing to a socket whose reader is gone must get EPIPE instead.
TEST(DataParallel, AJoinedRankSurvivesWritingToAPeerThatIsGone) {
  ml::testing::TempDir dir;
  const auto outcomes = run_ranks(
      dir,
      [](ml::runtime::ProcessGroup&) {
        int sockets[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sockets) != 0)
          throw std::runtime_error("socketpair");
        close(sockets[1]);
        const char byte = 'x';
        const ssize_t written = write(sockets[0], &byte, 1);
        const int error = errno;
        close(sockets[0]);
        if (written != -1 || error != EPIPE)
          throw std::runtime_error("write did not fail with EPIPE");
      },
      std::chrono::seconds(60));
  for (const RankOutcome& o : outcomes)
    EXPECT_EQ(o.code, 0) << "-1: killed (by SIGPIPE) " << o.message;
}

// meta.first_order_fallback under a group: the ranks decide together, so they train the same
// algorithm (one rank going first order alone would make their outer steps differ).
TEST(DataParallel, TheRanksFallBackToFirstOrderTogether) {
  ml::testing::TempDir dir;
  auto config = ml::testing::synthetic_shop(dir);
  config.meta.iterations = 4;
  const auto outcomes = run_ranks(
      dir,
      [&](ml::runtime::ProcessGroup& group) {
        ml::config::Config mine = config;
        mine.run.dir = dir.file("fallback-rank" + std::to_string(group.rank()));
        // Only rank 1's limit is too small: rank 0 must follow it.
        mine.run.memory_limit_mib = group.rank() == 1 ? 1 : 1000000;
        ml::train::run_training(mine, {false, 0, &group});
      },
      std::chrono::seconds(120));
  for (const RankOutcome& o : outcomes) ASSERT_EQ(o.code, 0) << o.message;
  const auto meta =
      ml::run::read_checkpoint_meta(dir.file("fallback-rank0/checkpoints/latest.mlckpt"));
  EXPECT_EQ(meta.progress.value("algorithm", ""), "fomaml");
}

TEST(DataParallel, ARankWithoutPeersStopsAtTheTimeoutWithOneLine) {
  LaunchEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = free_port();  // no rank 0 serves it
  const auto start = std::chrono::steady_clock::now();
  const std::string message =
      distributed_error([&] { ml::runtime::ProcessGroup::connect(env, std::chrono::seconds(2)); });
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_TRUE(ml::testing::contains(message,
                                    "rank 1 of 2: no rendezvous with the store at "
                                    "127.0.0.1:" +
                                        std::to_string(env.master_port) + " within 2 s"))
      << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// Batch work under a launch (runtime/work_share.hpp): eval's episodes, adapt's tasks and
// predict's chunks of rows shared out over 2 ranks give rank 0 what one process computes, bit
// for bit (each value is computed by one rank and added to zeros only).
TEST(DataParallel, ShardedEvalAdaptAndPredictEqualOneProcess) {
  ml::testing::TempDir dir;
  auto config = ml::testing::synthetic_shop(dir);
  config.meta.iterations = 20;
  ml::train::run_training(config, {});
  const std::string run_dir = config.run.dir;
  // More rows than one chunk of predict (8192), so that both ranks score some.
  const std::string rows = dir.file("rows.csv");
  {
    const std::string log = ml::testing::slurp(config.data.files.front());
    const std::string body = log.substr(log.find('\n') + 1);
    std::ofstream out(rows);
    out << log << body << body;
  }

  ml::eval::ColdStartOptions eval;
  eval.checkpoint = run_dir;
  eval.shots = {2, 6};
  eval.steps = {0, 2};
  eval.episodes = 3;
  eval.device = "cpu";
  eval.threads = 1;
  ml::inference::AdaptOptions adapt;
  adapt.checkpoint = run_dir;
  adapt.all_new = true;
  adapt.device = "cpu";
  adapt.threads = 1;
  ml::inference::PredictOptions predict;
  predict.checkpoint = run_dir;
  predict.input = rows;
  predict.device = "cpu";
  predict.threads = 1;
  // What the comparison reads: the results without their timings, the scores.
  auto eval_json = [](const ml::eval::ColdStartResult& r) {
    nlohmann::json j = ml::eval::to_json(r);
    j.erase("seconds");
    return j;
  };
  auto adapt_json = [](const ml::inference::AdaptSummary& s) {
    nlohmann::json j = ml::inference::to_json(s);
    j.erase("out_dir");
    for (auto& t : j["tasks"]) {
      t.erase("adapt_ms");
      t.erase("checkpoint");
    }
    return j;
  };
  auto scores_of = [](const ml::inference::RowScores& s) {
    std::vector<double> v;
    for (const auto& r : s.rows) v.push_back(r.score);
    return v;
  };

  // The group first: its rank 0 trains the pretrain baseline while rank 1 waits.
  const auto outcomes = run_ranks(
      dir,
      [&](ml::runtime::ProcessGroup& group) {
        auto e = eval;
        e.group = &group;
        const nlohmann::json evaluated = eval_json(ml::eval::run_cold_start(e));
        auto a = adapt;
        a.group = &group;
        a.out_dir = dir.file("adapted-two");
        const ml::inference::AdaptSummary adapted = ml::inference::adapt(a);
        auto p = predict;
        p.group = &group;
        const std::vector<double> scores = scores_of(ml::inference::score_rows(p));
        if (group.rank() != 0) {
          if (!adapted.tasks.empty()) throw std::runtime_error("rank 1 returned tasks");
          return;
        }
        std::ofstream(dir.file("eval-two.json")) << evaluated.dump();
        std::ofstream(dir.file("adapt-two.json")) << adapt_json(adapted).dump();
        std::ofstream(dir.file("scores-two.json")) << nlohmann::json(scores).dump();
      },
      std::chrono::seconds(600));
  for (const RankOutcome& o : outcomes) ASSERT_EQ(o.code, 0) << o.message;

  const nlohmann::json one_eval = eval_json(ml::eval::run_cold_start(eval));
  auto two_eval = nlohmann::json::parse(ml::testing::slurp(dir.file("eval-two.json")));
  // Rank 0 trained the pretrain baseline; one process then found it.
  EXPECT_EQ(two_eval["pretrain"]["source"], "trained");
  EXPECT_EQ(one_eval["pretrain"]["source"], "reused");
  two_eval["pretrain"]["source"] = "reused";
  EXPECT_TRUE(two_eval == one_eval)
      << ml::first_json_difference(two_eval, one_eval, "", "with 2 ranks", "in one process");
  ASSERT_FALSE(one_eval["cells"].empty());

  adapt.out_dir = dir.file("adapted-one");
  const ml::inference::AdaptSummary one_adapt = ml::inference::adapt(adapt);
  ASSERT_GE(one_adapt.tasks.size(), 2u);  // a task for each rank
  const auto two_adapt = nlohmann::json::parse(ml::testing::slurp(dir.file("adapt-two.json")));
  EXPECT_TRUE(two_adapt == adapt_json(one_adapt)) << ml::first_json_difference(
      two_adapt, adapt_json(one_adapt), "", "with 2 ranks", "in one process");
  for (const auto& t : one_adapt.tasks) {
    SCOPED_TRACE(t.task);
    const std::string name = fs::path(t.checkpoint).filename().string();
    const auto one = weights_of(t.checkpoint);
    const auto two = weights_of(dir.file("adapted-two/" + name));
    ASSERT_EQ(one.size(), two.size());
    for (std::size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(torch::equal(one[i], two[i]));
  }

  const std::vector<double> one_scores = scores_of(ml::inference::score_rows(predict));
  ASSERT_GT(one_scores.size(), 8192u);
  EXPECT_EQ(nlohmann::json::parse(ml::testing::slurp(dir.file("scores-two.json"))),
            nlohmann::json(one_scores));
}

// The ranks of a sharded adapt compare the settings each resolved: a host whose copy of the run
// lacks RUN/adaptation.json would otherwise adapt its share with the config's steps.
TEST(DataParallel, ShardedAdaptStopsWhenARankResolvedOtherSettings) {
  ml::testing::TempDir dir;
  auto config = ml::testing::synthetic_shop(dir);
  config.meta.iterations = 10;
  ml::train::run_training(config, {});
  ASSERT_TRUE(ml::eval::choose_adaptation(config, "cpu", 1));  // as train's CLI does
  ASSERT_TRUE(fs::exists(config.run.dir + "/adaptation.json"));
  fs::copy(config.run.dir, dir.file("copy"), fs::copy_options::recursive);
  fs::remove(dir.file("copy/adaptation.json"));
  const auto outcomes = run_ranks(
      dir,
      [&](ml::runtime::ProcessGroup& group) {
        ml::inference::AdaptOptions a;
        a.checkpoint = group.rank() == 0 ? config.run.dir : dir.file("copy");
        a.all_new = true;
        a.device = "cpu";
        a.threads = 1;
        a.out_dir = dir.file("adapted");
        a.group = &group;
        ml::inference::adapt(a);
      },
      std::chrono::seconds(120));
  for (const RankOutcome& o : outcomes) {
    EXPECT_EQ(o.code, static_cast<int>(ml::ExitCode::kDistributed)) << o.message;
    EXPECT_TRUE(ml::testing::contains(o.message, "the ranks started with different adapt options"))
        << o.message;
  }
  EXPECT_FALSE(fs::exists(dir.file("adapted")));
}

// A text run's eval (N-way episodes and many-way draws) and predict (chunks of 256 texts)
// shared out over 2 ranks equal one process; its adapt (one many-way task) is rank 0's.
TEST(DataParallel, ShardedTextEvalAndPredictEqualOneProcess) {
  ml::testing::TempDir dir;
  const auto config = ml::testing::tiny_text_run(dir);
  ml::train::run_training(config, {});
  // More texts than one chunk, so that both ranks classify some.
  std::string texts = "text\n";
  for (int i = 0; i < 300; ++i) texts += "my topup question " + std::to_string(i) + " please\n";
  ml::testing::write_file(dir.file("texts.csv"), texts);

  ml::eval::TextEvalOptions eval;
  eval.checkpoint = config.run.dir;
  eval.shots = {1, 2};
  eval.steps = {0, 1};
  eval.episodes = 5;
  eval.many_way_shots = {2};
  eval.many_way_draws = 3;
  eval.device = "cpu";
  eval.threads = 1;
  ml::inference::AdaptOptions adapt;
  adapt.checkpoint = config.run.dir;
  adapt.all_new = true;
  adapt.shots = 2;
  adapt.device = "cpu";
  adapt.threads = 1;
  ml::inference::TextPredictOptions predict;
  predict.input = dir.file("texts.csv");
  predict.top_k = 2;
  predict.device = "cpu";
  predict.threads = 1;
  auto predictions_json = [](const ml::inference::TextPredictions& p) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : p.rows) rows.push_back({r.text, r.top});
    return rows;
  };

  const auto outcomes = run_ranks(
      dir,
      [&](ml::runtime::ProcessGroup& group) {
        auto e = eval;
        e.group = &group;
        const nlohmann::json evaluated = ml::eval::to_json(ml::eval::evaluate_text_run(e));
        auto a = adapt;
        a.group = &group;
        a.out_dir = dir.file("adapted-two");
        const auto adapted = ml::inference::adapt(a);
        // Rank 0 tells the others which model to classify with (their summary is empty).
        std::string model = adapted.tasks.empty() ? "" : adapted.tasks[0].checkpoint;
        group.broadcast_bytes(model);
        auto p = predict;
        p.group = &group;
        p.checkpoint = model;
        const nlohmann::json predicted = predictions_json(ml::inference::predict_texts(p));
        if (group.rank() != 0) return;
        std::ofstream(dir.file("eval-two.json")) << evaluated.dump();
        std::ofstream(dir.file("predict-two.json")) << predicted.dump();
      },
      std::chrono::seconds(600));
  for (const RankOutcome& o : outcomes) ASSERT_EQ(o.code, 0) << o.message;

  auto one_eval = ml::eval::to_json(ml::eval::evaluate_text_run(eval));
  auto two_eval = nlohmann::json::parse(ml::testing::slurp(dir.file("eval-two.json")));
  EXPECT_EQ(two_eval["pretrain"]["source"], "trained");  // by rank 0, while rank 1 waited
  two_eval["pretrain"]["source"] = one_eval["pretrain"]["source"];
  ASSERT_FALSE(one_eval["many_way"].empty());
  EXPECT_TRUE(two_eval == one_eval)
      << ml::first_json_difference(two_eval, one_eval, "", "with 2 ranks", "in one process");

  adapt.out_dir = dir.file("adapted-one");
  predict.checkpoint = ml::inference::adapt(adapt).tasks.at(0).checkpoint;
  const nlohmann::json one_predicted = predictions_json(ml::inference::predict_texts(predict));
  ASSERT_EQ(one_predicted.size(), 300u);
  EXPECT_EQ(nlohmann::json::parse(ml::testing::slurp(dir.file("predict-two.json"))), one_predicted);
}

TEST(DataParallel, TorchrunLaunchesTwoRanksThroughTheCli) {
  const int found = std::system("command -v torchrun >/dev/null 2>&1");
  if (found != 0) GTEST_SKIP() << "torchrun not found (Debian: python3-torch): launch not tested";
  ml::testing::TempDir dir;
  auto config = ml::testing::synthetic_shop(dir);
  config.meta.iterations = 10;
  nlohmann::json j;
  to_json(j, config);
  ml::testing::write_file(dir.file("config.json"), j.dump(2));
  const std::string run_dir = dir.file("run-torchrun");
  // --redirects 2 --tee 2: Debian 12's torchrun (torch 1.13 on Python 3.11) fails on its
  // default --redirects 0 (docs/DISTRIBUTED.md); this leaves stdout alone.
  const auto r = ml::testing::run_command(
      "METALEARN_DIST_TIMEOUT=60 torchrun --nproc_per_node 2 --redirects 2 --tee 2 "
      "--master_port " +
      std::to_string(free_port()) + " --no_python " + ml::testing::shell_quote(ML_BINARY_PATH) +
      " train --config " + ml::testing::shell_quote(dir.file("config.json")) +
      " --set run.dir=" + ml::testing::shell_quote(run_dir) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  // Rank 0 alone reports: one JSON summary, and the run folder is complete.
  const auto summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["iterations"], 10);
  EXPECT_EQ(summary["run_dir"], run_dir);
  EXPECT_TRUE(fs::exists(run_dir + "/checkpoints/latest.mlckpt"));
  EXPECT_EQ(losses_of(run_dir + "/metrics.jsonl").size(), 2u);
  EXPECT_TRUE(ml::testing::contains(ml::testing::slurp(run_dir + "/train.log"),
                                    "data-parallel: rank 0 of 2, computing tasks 0..1 of each "
                                    "meta-batch of 4"));
  // The split of a meta-iteration and what it sends: every dense gradient as float32, a float64
  // flag per parameter plus the loss, and the stop signal.
  std::int64_t bytes = 8;
  const auto weights = weights_of(run_dir + "/checkpoints/latest.mlckpt");
  for (const Tensor& w : weights) bytes += w.numel() * 4;
  bytes += static_cast<std::int64_t>(weights.size() + 1) * 8;
  const std::string log = ml::testing::slurp(run_dir + "/train.log");
  EXPECT_TRUE(ml::testing::contains(log, "ms of it in collectives")) << log;
  EXPECT_TRUE(
      ml::testing::contains(log, "it all-reduces " + std::to_string(bytes) + " bytes over 2 ranks"))
      << log;
}

}  // namespace
