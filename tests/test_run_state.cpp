// Tests of a run's state across failures: divergence (the rule, the mark, the refusals), runs
// that stop before their first checkpoint, resuming a finished run, temporaries left by killed
// writers, signals and file-system errors; in process and through the binary.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "run/checkpoint.hpp"
#include "run/divergence.hpp"
#include "run/learner_state.hpp"
#include "run/training_progress.hpp"
#include "test_support.hpp"
#include "train/outer_optimizer.hpp"
#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"

#ifndef ML_BINARY_PATH
#error "ML_BINARY_PATH must be defined by tests/CMakeLists.txt"
#endif

extern char** environ;

namespace {

using ml::testing::contains;
using ml::testing::slurp;
using ml::testing::synthetic_shop;
using ml::testing::TempDir;
using ml::testing::write_file;
namespace fs = std::filesystem;

std::string q(const std::string& s) {
  return ml::testing::shell_quote(s);
}

// Every file under `dir` with its bytes.
std::map<std::string, std::string> files_under(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file())
      files[fs::relative(entry.path(), dir).string()] = slurp(entry.path().string());
  return files;
}

std::vector<std::string> temporaries_under(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (contains(entry.path().filename().string(), ".tmp-")) found.push_back(entry.path());
  return found;
}

// A PID that ran and has exited (and been reaped), so no process has it now.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

// ---- the divergence rule -------------------------------------------------------------------

ml::tasks::Task task_with_labels(const std::vector<float>& labels) {
  ml::tasks::Task task;
  for (float label : labels) {
    ml::tasks::Example e;
    e.label = label;
    task.examples.push_back(e);
  }
  return task;
}

TEST(Divergence, TheLossLimitIsTenThousandConstantPredictionLosses) {
  using ml::tasks::LabelKind;
  // Regression: the mean squared target, (1e6 + 1e6 + 4e6) / 3 = 2e6.
  const ml::tasks::Task prices = task_with_labels({1000, -1000});
  const ml::tasks::Task more = task_with_labels({2000});
  const double price_limit =
      ml::run::exploding_loss_limit(LabelKind::kRegression, {&prices, &more});
  EXPECT_DOUBLE_EQ(price_limit, 1e4 * 2e6);
  // Small targets: never below 10^4 (max(1, L0)).
  const ml::tasks::Task rates = task_with_labels({0.1f, 0.2f});
  EXPECT_DOUBLE_EQ(ml::run::exploding_loss_limit(LabelKind::kRegression, {&rates}), 1e4);
  // Binary: log 2 < 1.
  EXPECT_DOUBLE_EQ(ml::run::exploding_loss_limit(LabelKind::kBinary, {&rates}), 1e4);
  // Multiclass: log C, with C one more than the largest class id.
  const ml::tasks::Task classes = task_with_labels({0, 4, 19});
  EXPECT_DOUBLE_EQ(ml::run::exploding_loss_limit(LabelKind::kMulticlass, {&classes}),
                   1e4 * std::log(20.0));

  // Large losses on large targets are not an explosion; 1e28 is, finite as it is.
  EXPECT_EQ(ml::run::divergence_reason(5e9, price_limit, 12.0), "");
  EXPECT_EQ(ml::run::divergence_reason(0.69, 1e4, NAN), "");
  const std::string exploded = ml::run::divergence_reason(1e28, price_limit, NAN);
  EXPECT_TRUE(contains(exploded, "exploded")) << exploded;
  EXPECT_TRUE(contains(exploded, "1e+28")) << exploded;
  EXPECT_TRUE(contains(ml::run::divergence_reason(NAN, 1e4, NAN), "nan"));
  EXPECT_TRUE(contains(ml::run::divergence_reason(INFINITY, 1e4, NAN), "inf"));
  const std::string gradient = ml::run::divergence_reason(0.5, 1e4, INFINITY);
  EXPECT_TRUE(contains(gradient, "meta-gradient norm is inf")) << gradient;
}

// A step with a NaN or Inf gradient moves nothing: not the weights and not the optimiser's
// state, so the next good step is the one a fresh optimiser would take.
TEST(Divergence, ANonFiniteGradientLeavesWeightsAndOptimiserAlone) {
  using torch::Tensor;
  for (const char* name : {"adam", "sgd"}) {
    SCOPED_TRACE(name);
    ml::config::MetaConfig meta;
    meta.outer_optimizer = ml::testing::choice<ml::config::OuterOptimizer>(name);
    meta.outer_lr = 0.1;
    const Tensor start = torch::tensor({1.0, -2.0, 3.0}, torch::kFloat64);
    Tensor dense = start.clone().requires_grad_(true);
    Tensor table = torch::ones({4, 2}, torch::kFloat64).requires_grad_(true);
    ml::train::OuterOptimizer optimizer(meta, {dense, table}, {false, true});
    const Tensor rows = torch::tensor({1, 3}, torch::kInt64);

    optimizer.zero_grad();
    dense.mutable_grad() = torch::tensor({0.5, std::nan(""), 0.5}, torch::kFloat64);
    const double norm = optimizer.step(
        {ml::meta::RowSparseGradient{1, rows, torch::ones({2, 2}, torch::kFloat64)}});
    EXPECT_FALSE(std::isfinite(norm));
    EXPECT_TRUE(torch::equal(dense, start));
    EXPECT_TRUE(torch::equal(table, torch::ones({4, 2}, torch::kFloat64)));

    optimizer.zero_grad();
    dense.mutable_grad() = torch::tensor({0.5, 0.5, 0.5}, torch::kFloat64);
    const Tensor inf_rows = torch::full({2, 2}, INFINITY, torch::kFloat64);
    EXPECT_FALSE(std::isfinite(optimizer.step({ml::meta::RowSparseGradient{1, rows, inf_rows}})));
    EXPECT_TRUE(torch::equal(dense, start));
    EXPECT_TRUE(torch::equal(table, torch::ones({4, 2}, torch::kFloat64)));

    // The next good step equals a fresh optimiser's first.
    Tensor fresh = start.clone().requires_grad_(true);
    ml::train::OuterOptimizer reference(meta, {fresh}, {false});
    for (auto [opt, weights] :
         {std::make_pair(&optimizer, &dense), std::make_pair(&reference, &fresh)}) {
      opt->zero_grad();
      weights->mutable_grad() = torch::tensor({0.5, -0.25, 1.0}, torch::kFloat64);
      EXPECT_DOUBLE_EQ(opt->step({}), std::sqrt(0.25 + 0.0625 + 1.0));
    }
    EXPECT_TRUE(torch::equal(dense, fresh));
    EXPECT_FALSE(torch::equal(dense, start));
  }
}

// ---- divergence in a training run ----------------------------------------------------------

// A run that trains for a few iterations (checkpointing each one) and then diverges: plain SGD
// with an outer learning rate far too high.
ml::config::Config diverging_later(const TempDir& dir) {
  auto config = synthetic_shop(dir);
  config.meta.outer_optimizer = ml::config::OuterOptimizer::kSgd;
  config.meta.outer_lr = 1e3;
  config.train.checkpoint_every = 1;
  config.train.validate_every = 0;
  return config;
}

TEST(TrainDivergence, ADivergedStepIsNeverSavedAndTheRunIsMarkedAndRefused) {
  TempDir dir;
  const auto config = diverging_later(dir);
  std::string message;
  try {
    ml::train::run_training(config, {});
    FAIL() << "the run must diverge";
  } catch (const ml::NumericError& e) {
    message = e.what();
  }
  EXPECT_TRUE(contains(message, "meta.outer_lr")) << message;
  const ml::run::RunLayout layout(config.run.dir);
  const auto mark = ml::run::read_divergence(layout);
  ASSERT_TRUE(mark.has_value()) << message;
  EXPECT_GE(mark->checkpoint, 1) << "the run must diverge after its first checkpoint";
  EXPECT_EQ(mark->checkpoint, mark->iteration) << "a checkpoint every iteration: the one before";
  EXPECT_EQ(mark->reason.substr(0, 15), message.substr(0, 15));

  // The checkpoint holds the weights from before the diverged step, all finite.
  const auto latest = ml::run::load_checkpoint(layout.latest_checkpoint().string());
  EXPECT_EQ(latest.meta.progress["iteration"].get<int>(), mark->checkpoint);
  latest.read_state(
      [&](torch::serialize::InputArchive& archive) {
        torch::serialize::InputArchive model;
        archive.read("model", model);
        for (const auto& key : model.keys()) {
          torch::Tensor value;
          model.read(key, value);
          EXPECT_TRUE(torch::isfinite(value).all().item<bool>()) << key;
        }
      },
      torch::kCPU);

  // Every use of the run is refused with the mark's story, whichever file is named.
  for (const std::string& path :
       {config.run.dir, layout.latest_checkpoint().string(), layout.best_checkpoint().string()}) {
    try {
      ml::run::resolve_checkpoint_path(path);
      ADD_FAILURE() << path << " was accepted";
    } catch (const ml::NumericError& e) {
      EXPECT_TRUE(contains(e.what(), "diverged")) << e.what();
      EXPECT_TRUE(contains(e.what(), layout.divergence().string())) << e.what();
    }
  }
  EXPECT_THROW(ml::run::load_run(config.run.dir, {}, "cpu"), ml::NumericError);
  ml::train::TrainOptions resume;
  resume.resume = true;
  EXPECT_THROW(ml::train::run_training(config, resume), ml::NumericError);
  try {
    ml::train::run_training(config, {});
    FAIL() << "a fresh run over a diverged one must be refused";
  } catch (const ml::ConfigError& e) {
    EXPECT_TRUE(contains(e.what(), "diverged at meta-iteration")) << e.what();
  }
}

TEST(TrainDivergence, AFiniteButExplodingLossStopsTheRun) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.meta.inner_lr = 300;  // adapted logits in the billions: a finite, absurd loss
  try {
    ml::train::run_training(config, {});
    FAIL() << "an exploding loss must stop the run";
  } catch (const ml::NumericError& e) {
    EXPECT_TRUE(contains(e.what(), "exploded")) << e.what();
    EXPECT_TRUE(contains(e.what(), "meta.inner_lr")) << e.what();
  }
}

// ---- runs that stop before their first checkpoint ------------------------------------------

TEST(FreshRun, StoppingBeforeTheFirstCheckpointLeavesNothingAndTheFolderIsReused) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  auto too_large = config;
  too_large.task.support = 5000;

  // Folders the run created go with it.
  too_large.run.dir = dir.file("new/deeper/run");
  EXPECT_THROW(ml::train::run_training(too_large, {}), ml::DataError);
  EXPECT_FALSE(fs::exists(dir.path() / "new"));

  // In a folder that was there, the files it wrote go, the folder stays.
  fs::create_directories(dir.path() / "mine");
  write_file(dir.file("mine/notes.txt"), "the user's");
  too_large.run.dir = dir.file("mine");
  EXPECT_THROW(ml::train::run_training(too_large, {}), ml::DataError);
  auto left = files_under(dir.path() / "mine");
  EXPECT_EQ(left.size(), 1u);
  EXPECT_EQ(left["notes.txt"], "the user's");
  EXPECT_FALSE(fs::exists(dir.path() / "mine" / "checkpoints"));

  // Diverging at the first step: no checkpoint, so no run and no mark either.
  auto diverging = config;
  diverging.run.dir = dir.file("mine");
  diverging.meta.inner_lr = 1e38;
  EXPECT_THROW(ml::train::run_training(diverging, {}), ml::NumericError);
  EXPECT_EQ(files_under(dir.path() / "mine").size(), 1u);

  // The next train takes the folder over.
  config.run.dir = dir.file("mine");
  config.meta.iterations = 3;
  EXPECT_EQ(ml::train::run_training(config, {}).iterations, 3);
  EXPECT_TRUE(fs::exists(dir.path() / "mine" / "checkpoints" / "latest.mlckpt"));
}

TEST(FreshRun, ResumingAFinishedRunChangesNoFile) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.meta.iterations = 4;
  const auto first = ml::train::run_training(config, {});
  const auto before = files_under(config.run.dir);
  ASSERT_TRUE(before.count("config.json") && before.count("train.log")) << before.size();
  ml::train::TrainOptions resume;
  resume.resume = true;
  const auto again = ml::train::run_training(config, resume);
  EXPECT_TRUE(again.already_finished);
  EXPECT_EQ(again.iterations, 4);
  EXPECT_EQ(again.last_loss, first.last_loss);
  EXPECT_EQ(again.best_iteration, first.best_iteration);
  EXPECT_EQ(again.selection_metric, first.selection_metric);
  EXPECT_TRUE(files_under(config.run.dir) == before) << "a file changed";
}

// ---- temporaries of killed writers ---------------------------------------------------------

TEST(StaleTemporaries, ThoseOfDeadProcessesGoOthersStay) {
  TempDir dir;
  const std::string dead = std::to_string(dead_pid());
  const std::string alive = std::to_string(::getppid());
  const std::string not_a_pid = "x.csv.tmp-notapid";
  for (const std::string& name : {"x.csv.tmp-" + dead, "x.csv.tmp-" + alive,
                                  "other.csv.tmp-" + dead, not_a_pid, "x.csv.tmp-" + dead + ".bak"})
    write_file(dir.file(name), "half");
  // The next write of x.csv removes its own dead temporary only.
  ml::write_file_atomically(dir.file("x.csv"), [](std::ostream& out) { out << "whole"; });
  EXPECT_EQ(slurp(dir.file("x.csv")), "whole");
  EXPECT_FALSE(fs::exists(dir.file("x.csv.tmp-" + dead)));
  for (const std::string& name :
       {"x.csv.tmp-" + alive, "other.csv.tmp-" + dead, not_a_pid, "x.csv.tmp-" + dead + ".bak"})
    EXPECT_TRUE(fs::exists(dir.file(name))) << name;
  // A folder: every file's.
  EXPECT_EQ(ml::remove_stale_temporaries(dir.path().string()), 1);
  EXPECT_FALSE(fs::exists(dir.file("other.csv.tmp-" + dead)));
  EXPECT_TRUE(fs::exists(dir.file("x.csv.tmp-" + alive)));
}

// ---- signals -------------------------------------------------------------------------------

// In a child process, so the test process keeps its own signal dispositions. The exit code, or
// -N when signal N killed it (with no handler), which a shell would also show as 128 + N.
int exit_code_of_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

TEST(Interrupt, TheFirstSignalIsRecordedTheSecondExitsAtOnce) {
  for (int signal : {SIGINT, SIGTERM}) {
    const int code = exit_code_of_child([signal] {
      // stderr is the test's: keep the handler's lines out of the test log.
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDERR_FILENO);
      ml::install_interrupt_handlers();
      if (ml::interrupt_signal() != 0) return 1;
      ::raise(signal);
      if (ml::interrupt_signal() != signal) return 2;  // the first only records it
      try {
        ml::throw_if_interrupted("testing");
        return 3;
      } catch (const ml::InterruptedError& e) {
        if (static_cast<int>(e.code()) != 128 + signal) return 4;
      }
      ::raise(signal);  // exits here
      return 5;
    });
    EXPECT_EQ(code, 128 + signal) << ml::signal_name(signal);
  }
}

// ---- through the binary --------------------------------------------------------------------

// The synthetic shop's config as a file, for the binary.
std::string config_file(const TempDir& dir, const ml::config::Config& config) {
  nlohmann::json j;
  to_json(j, config);
  const std::string path = dir.file("config.json");
  write_file(path, j.dump(2));
  return path;
}

// The binary running in the background with stdout and stderr in files.
struct Child {
  pid_t pid = -1;
  std::string out, err;
};

Child spawn_cli(const std::vector<std::string>& args, const TempDir& dir, const std::string& tag) {
  Child child;
  child.out = dir.file(tag + ".out");
  child.err = dir.file(tag + ".err");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, child.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, child.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  // Whatever this process blocks or ignores, the child starts with the defaults.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> words{ML_BINARY_PATH};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  EXPECT_EQ(posix_spawn(&child.pid, ML_BINARY_PATH, &actions, &attributes, argv.data(), environ),
            0);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  return child;
}

// The exit code, or -N when signal N killed it (the handlers exit instead: a shell shows 128 + N
// either way, so only this tells them apart); -1000 after `seconds` (the child is killed).
// The child is reaped either way (pid -1 after).
int wait_for(Child& child, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (::waitpid(child.pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      ::kill(child.pid, SIGKILL);
      ::waitpid(child.pid, &status, 0);
      child.pid = -1;
      return -1000;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  child.pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

int metrics_lines(const fs::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// SIGINT and SIGTERM stop train after the meta-iteration in progress, with that iteration in
// latest.mlckpt (checkpoint_every alone would not have saved any), no temporary left, the
// documented exit code, and a run --resume continues.
TEST(CliRunState, SigintAndSigtermStopTrainingWithALatestCheckpoint) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.meta.iterations = 1000000;
  config.train.checkpoint_every = 1000000;
  config.train.validate_every = 0;
  config.train.log_every = 1;
  std::vector<std::pair<int, Child>> runs;
  // A failed assertion must not leave a child training for hours.
  struct KillLeftovers {
    std::vector<std::pair<int, Child>>& runs;
    ~KillLeftovers() {
      for (auto& run : runs)
        if (run.second.pid > 0) {  // not reaped yet, so the PID is still our child's
          ::kill(run.second.pid, SIGKILL);
          ::waitpid(run.second.pid, nullptr, 0);
        }
    }
  } kill_leftovers{runs};
  for (int signal : {SIGINT, SIGTERM}) {
    config.run.dir = dir.file("run_" + std::to_string(signal));
    const std::string path = dir.file("config_" + std::to_string(signal) + ".json");
    nlohmann::json j;
    to_json(j, config);
    write_file(path, j.dump(2));
    runs.emplace_back(signal, spawn_cli({"train", "--config", path}, dir, std::to_string(signal)));
  }
  for (auto& [signal, child] : runs) {
    const fs::path run_dir = dir.path() / ("run_" + std::to_string(signal));
    // Once it trains: a few metrics lines.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (metrics_lines(run_dir) < 3 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_GE(metrics_lines(run_dir), 3) << slurp(child.err);
    ::kill(child.pid, signal);
  }
  for (auto& [signal, child] : runs) {
    SCOPED_TRACE(ml::signal_name(signal));
    const fs::path run_dir = dir.path() / ("run_" + std::to_string(signal));
    EXPECT_EQ(wait_for(child, 60), 128 + signal);
    const std::string err = slurp(child.err);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(err, m,
                                  std::regex("interrupted \\(" + ml::signal_name(signal) +
                                             "\\) at meta-iteration ([0-9]+) of 1000000")))
        << err;
    const int stopped = std::stoi(m[1]);
    EXPECT_TRUE(contains(err, "--resume")) << err;
    const auto meta =
        ml::run::read_checkpoint_meta((run_dir / "checkpoints/latest.mlckpt").string());
    EXPECT_EQ(meta.progress["iteration"].get<int>(), stopped);
    // No finished iteration is lost: the last logged one is in the checkpoint.
    std::ifstream in(run_dir / "metrics.jsonl");
    int last_logged = 0;
    for (std::string line; std::getline(in, line);)
      last_logged = nlohmann::json::parse(line)["iteration"].get<int>();
    EXPECT_EQ(last_logged, stopped);
    EXPECT_TRUE(temporaries_under(run_dir).empty());
  }
  // The SIGINT run continues from there.
  const fs::path run_dir = dir.path() / ("run_" + std::to_string(SIGINT));
  const int stopped =
      ml::run::read_checkpoint_meta((run_dir / "checkpoints/latest.mlckpt").string())
          .progress["iteration"]
          .get<int>();
  const auto resumed = ml::testing::run_cli(
      "train --config " + q(dir.file("config_" + std::to_string(SIGINT) + ".json")) +
      " --resume --stop-after 2 --json");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(nlohmann::json::parse(resumed.out)["iterations"].get<int>(), stopped + 2);
}

// A validation pass can take hours on a large log: Ctrl-C used to wait for all of it. It stops
// between episodes; latest.mlckpt holds the iteration with the validation marked pending (a
// resumed run does it first: TrainRun.APendingValidationIsDoneFirstWhenTheRunResumes), and
// metrics.jsonl has no line for it.
TEST(CliRunState, SigintDuringAValidationStopsItAndRecordsItPending) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  config.meta.iterations = 100;
  config.train.validate_every = 10;
  config.train.validation_episodes = 10000;  // long: the signal ends it first
  config.train.log_every = 10;
  config.train.checkpoint_every = 1000;
  Child child = spawn_cli({"train", "--config", config_file(dir, config)}, dir, "validation");
  struct KillLeftover {
    Child& child;
    ~KillLeftover() {
      if (child.pid > 0) {
        ::kill(child.pid, SIGKILL);
        ::waitpid(child.pid, nullptr, 0);
      }
    }
  } kill_leftover{child};
  const fs::path run_dir = config.run.dir;
  // The loss line of iteration 10 is written just before its validation starts.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (metrics_lines(run_dir) < 1 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(metrics_lines(run_dir), 1) << slurp(child.err);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(child.pid, SIGINT);
  EXPECT_EQ(wait_for(child, 60), 130);
  const std::string err = slurp(child.err);
  EXPECT_TRUE(contains(err, "interrupted (SIGINT) at meta-iteration 10 of 100")) << err;
  const auto meta = ml::run::read_checkpoint_meta((run_dir / "checkpoints/latest.mlckpt").string());
  EXPECT_EQ(meta.progress["iteration"], 10);
  EXPECT_EQ(meta.progress.value("validation_pending", false), true);
  EXPECT_EQ(metrics_lines(run_dir), 1);  // no validation line
  EXPECT_FALSE(fs::exists(run_dir / "checkpoints/best.mlckpt"));
  EXPECT_TRUE(temporaries_under(run_dir).empty());
}

// A run.dir that cannot be created: the documented I/O code and one line naming the folder and
// the system's reason (a path through a plain file fails for root too, unlike permissions).
TEST(CliRunState, AnUnwritableRunDirIsAnIoErrorNamingTheFolder) {
  TempDir dir;
  auto config = synthetic_shop(dir);
  write_file(dir.file("plain"), "a file");
  config.run.dir = dir.file("plain/run");
  const auto r = ml::testing::run_cli("train --config " + q(config_file(dir, config)));
  EXPECT_EQ(r.code, static_cast<int>(ml::ExitCode::kIo)) << r.err;
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_TRUE(contains(r.err, dir.file("plain/run"))) << r.err;
  EXPECT_TRUE(contains(r.err, "Not a directory")) << r.err;
  EXPECT_FALSE(contains(r.err, "internal error")) << r.err;
}

// predict, eval, adapt and train --resume refuse a run marked diverged, one line each.
TEST(CliRunState, ADivergedRunIsRefusedByEveryCommand) {
  TempDir dir;
  auto config = diverging_later(dir);
  EXPECT_THROW(ml::train::run_training(config, {}), ml::NumericError);
  const ml::run::RunLayout layout(config.run.dir);
  ASSERT_TRUE(fs::exists(layout.latest_checkpoint()));
  const std::string events = config.data.files.front();
  const auto results = ml::testing::run_cli_many(
      {"eval --checkpoint " + q(config.run.dir),
       "adapt --checkpoint " + q(config.run.dir) + " --all-new",
       "predict --checkpoint " + q(layout.latest_checkpoint().string()) + " --input " + q(events),
       "train --config " + q(config_file(dir, config)) + " --resume"});
  for (const auto& r : results) {
    EXPECT_EQ(r.code, static_cast<int>(ml::ExitCode::kNumeric)) << r.err;
    EXPECT_EQ(r.err_lines(), 1) << r.err;
    EXPECT_TRUE(contains(r.err, "diverged")) << r.err;
    EXPECT_TRUE(contains(r.err, config.run.dir)) << r.err;
  }
}

}  // namespace
