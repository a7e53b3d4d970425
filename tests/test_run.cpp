// Tests of the run module and the process-wide settings around it: run-directory paths, typed
// training progress (including progress JSON as older checkpoints wrote it), thread-count
// precedence, the torch device helper and the scoped log file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>
#include <optional>

#include "config/config.hpp"
#include "run/run_files.hpp"
#include "run/run_layout.hpp"
#include "run/split_record.hpp"
#include "run/training_progress.hpp"
#include "runtime/device.hpp"
#include "tasks/task_set.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"
#include "util/logging.hpp"

namespace {

using ml::testing::slurp;
using ml::testing::TempDir;
namespace fs = std::filesystem;

TEST(RunLayout, NamesEveryFileOfARunDirectory) {
  const ml::run::RunLayout layout("runs/x");
  EXPECT_EQ(layout.config(), fs::path("runs/x/config.json"));
  EXPECT_EQ(layout.metrics(), fs::path("runs/x/metrics.jsonl"));
  EXPECT_EQ(layout.train_log(), fs::path("runs/x/train.log"));
  EXPECT_EQ(layout.best_checkpoint(), fs::path("runs/x/checkpoints/best.mlckpt"));
  EXPECT_EQ(layout.latest_checkpoint(), fs::path("runs/x/checkpoints/latest.mlckpt"));
  EXPECT_EQ(layout.adapted(), fs::path("runs/x/adapted"));
  EXPECT_EQ(layout.pretrain_baseline(), fs::path("runs/x/baselines/pretrain"));
}

TEST(RunLayout, RunDirOfACheckpointArgument) {
  TempDir dir;
  const std::string run = dir.file("run");
  fs::create_directories(run);
  EXPECT_EQ(ml::run::run_dir_of(run), fs::path(run));  // a directory is the run itself
  EXPECT_EQ(ml::run::run_dir_of(run + "/checkpoints/best.mlckpt"), fs::path(run));
  EXPECT_EQ(ml::run::run_dir_of(run + "/adapted/Frozen_Pizza.mlckpt"), fs::path(run));
  EXPECT_EQ(ml::run::run_dir_of(run + "/elsewhere/model.mlckpt"), fs::path(run + "/elsewhere"));
  EXPECT_EQ(ml::run::run_dir_of("model.mlckpt"), fs::path("."));
}

// What no command may write an output over: the checkpoint, the data, the run's own files.
TEST(RunFiles, ARunOwnsItsRecordsCheckpointsAndDataButNotOtherFiles) {
  ml::testing::TempDir dir;
  const std::string run = dir.file("run");
  ml::config::Config config;
  config.data.files = {dir.file("events.csv")};
  const ml::run::RunFiles files = ml::run::run_files(run + "/checkpoints/best.mlckpt", config);
  EXPECT_EQ(files.dir, std::filesystem::path(run));
  for (const std::string& owned :
       {run + "/checkpoints/best.mlckpt", run + "/./checkpoints/latest.mlckpt",
        run + "/config.json", run + "/adaptation.json", run + "/metrics.jsonl", run + "/train.log",
        run + "/baselines/pretrain/config.json", run + "/adapted/Frozen_Pizza.mlckpt",
        dir.file("events.csv"), dir.file("sub/../events.csv")})
    EXPECT_FALSE(ml::run::part_of_run(files, owned).empty()) << owned;
  for (const std::string& free : {run + "/report.html", run + "/adapted/explained.csv",
                                  dir.file("report.json"), dir.file("run2/config.json")})
    EXPECT_TRUE(ml::run::part_of_run(files, free).empty()) << free;
  try {
    ml::run::refuse_output_over_run(files, "--json-out", run + "/adaptation.json");
    ADD_FAILURE() << "an output over the run's adaptation.json";
  } catch (const ml::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--json-out"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("run directory"), std::string::npos) << e.what();
  }
}

// A log that gained or lost tasks splits otherwise; the recorded split says which tasks moved.
TEST(SplitRecord, TheSameSplitPassesAndAnotherNamesTheTasksThatMoved) {
  using ml::tasks::TaskRole;
  ml::tasks::TaskSet set;
  auto task = [](const std::string& name, TaskRole role) {
    ml::tasks::Task t;
    t.name = name;
    t.role = role;
    return t;
  };
  set.tasks = {task("Bread", TaskRole::kValidation), task("Chocolate", TaskRole::kTrain),
               task("Dog Food", TaskRole::kNew), task("Eggs", TaskRole::kTrain)};
  const nlohmann::json progress = {{"iteration", 3},
                                   {ml::run::kSplitKey, ml::run::split_record(set)}};
  EXPECT_EQ(progress[ml::run::kSplitKey]["new"], nlohmann::json({"Dog Food"}));
  EXPECT_NO_THROW(ml::run::check_split_record(progress, set, "run/best.mlckpt"));
  // A checkpoint written before the split was recorded is not checked.
  EXPECT_NO_THROW(ml::run::check_split_record({{"iteration", 3}}, set, "run/best.mlckpt"));

  ml::tasks::TaskSet moved = set;
  moved.tasks[1].role = TaskRole::kNew;    // Chocolate trained, now new
  moved.tasks[2].role = TaskRole::kTrain;  // Dog Food was new
  try {
    ml::run::check_split_record(progress, moved, "run/best.mlckpt");
    ADD_FAILURE() << "another split passed";
  } catch (const ml::DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("2 task(s) changed role"), std::string::npos) << what;
    EXPECT_NE(what.find("'Chocolate' train then, new now"), std::string::npos) << what;
    EXPECT_NE(what.find("'Dog Food' new then, train now"), std::string::npos) << what;
    EXPECT_NE(what.find("run/best.mlckpt"), std::string::npos) << what;
  }
  ml::tasks::TaskSet gone = set;
  gone.tasks.erase(gone.tasks.begin() + 2);  // Dog Food's rows removed
  EXPECT_THROW(ml::run::check_split_record(progress, gone, "run/best.mlckpt"), ml::DataError);
}

TEST(TrainingProgress, RoundTripsThroughJson) {
  ml::run::TrainingProgress p;
  p.iteration = 40;
  p.algorithm = "anil";
  p.selection_metric = "auc";
  p.best_iteration = 30;
  p.best_validation = 0.6875;
  p.window_loss_sum = 1.0 / 3.0;  // not a round number: it must come back to the last bit
  p.window_iterations = 3;
  p.last_loss = 0.1 + 0.2;
  p.seconds = 12.5;
  const nlohmann::json j = p;
  EXPECT_EQ(j["iteration"], 40);
  EXPECT_EQ(j["best_validation"], 0.6875);
  const auto back = nlohmann::json::parse(j.dump()).get<ml::run::TrainingProgress>();
  EXPECT_EQ(back.iteration, 40);
  EXPECT_EQ(back.algorithm, "anil");
  EXPECT_EQ(back.selection_metric, "auc");
  EXPECT_EQ(back.best_iteration, 30);
  EXPECT_EQ(back.best_validation, 0.6875);
  EXPECT_EQ(back.window_loss_sum, 1.0 / 3.0);
  EXPECT_EQ(back.window_iterations, 3);
  EXPECT_EQ(back.last_loss, 0.1 + 0.2);
  EXPECT_EQ(back.seconds, 12.5);
}

TEST(TrainingProgress, NothingMeasuredYetIsNullAndReadsBackAsNaN) {
  const nlohmann::json j = ml::run::TrainingProgress{};
  EXPECT_TRUE(j["best_validation"].is_null());
  EXPECT_TRUE(j["last_loss"].is_null());
  EXPECT_EQ(j["best_iteration"], -1);
  const auto back = j.get<ml::run::TrainingProgress>();
  EXPECT_TRUE(std::isnan(back.best_validation));
  EXPECT_TRUE(std::isnan(back.last_loss));
}

TEST(TrainingProgress, ReadsWhatExistingCheckpointsHold) {
  // As train wrote it before checkpoints were chosen by a metric, plus a key it does not know.
  const auto old = nlohmann::json::parse(
                       R"({"iteration": 13, "algorithm": "maml", "best_iteration": 10,
                           "best_validation_loss": 0.5, "extra": true})")
                       .get<ml::run::TrainingProgress>();
  EXPECT_EQ(old.iteration, 13);
  EXPECT_EQ(old.algorithm, "maml");
  EXPECT_EQ(old.best_iteration, 10);
  EXPECT_EQ(old.selection_metric, "loss");  // what chose it then
  EXPECT_EQ(old.best_validation, 0.5);
  EXPECT_EQ(old.window_iterations, 0);  // no open window was saved: it starts empty
  const auto none = nlohmann::json::parse(R"({"iteration": 13, "best_validation_loss": null})")
                        .get<ml::run::TrainingProgress>();
  EXPECT_TRUE(std::isnan(none.best_validation));
  // Missing or mistyped fields keep their defaults instead of failing the load.
  const auto sparse =
      nlohmann::json::parse(R"({"iteration": "x"})").get<ml::run::TrainingProgress>();
  EXPECT_EQ(sparse.iteration, 0);
  EXPECT_EQ(sparse.best_iteration, -1);
  EXPECT_EQ(sparse.selection_metric, "");
}

// Sets (or unsets) an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Threads, PrecedenceIsSettingThenEnvironmentThenTheUsableCores) {
  ScopedEnv omp("OMP_NUM_THREADS", nullptr);
  ScopedEnv blas("OPENBLAS_NUM_THREADS", nullptr);
  const ml::runtime::ThreadBudget all = ml::runtime::thread_budget(0);
  EXPECT_TRUE(all.automatic);
  EXPECT_EQ(all.threads, ml::runtime::usable_cores().threads);
  EXPECT_EQ(ml::runtime::resolve_threads(0), all.threads);
  {
    ScopedEnv user_blas("OPENBLAS_NUM_THREADS", "2");
    EXPECT_EQ(ml::runtime::resolve_threads(0), 2);
    EXPECT_EQ(ml::runtime::thread_budget(0).source, "OPENBLAS_NUM_THREADS");
    ScopedEnv user_omp("OMP_NUM_THREADS", "3");
    EXPECT_EQ(ml::runtime::resolve_threads(0), 3);  // OMP_NUM_THREADS first
    EXPECT_FALSE(ml::runtime::thread_budget(0).automatic);
    EXPECT_EQ(ml::runtime::resolve_threads(5), 5);  // an explicit setting wins
    EXPECT_FALSE(ml::runtime::thread_budget(5).automatic);
  }
  ScopedEnv junk("OMP_NUM_THREADS", "lots");
  EXPECT_EQ(ml::runtime::resolve_threads(0), all.threads);  // not a count: ignored
}

TEST(Threads, AThreadVariableHasRunThreadsBound) {
  ScopedEnv omp("OMP_NUM_THREADS", nullptr);
  ScopedEnv blas("OPENBLAS_NUM_THREADS", std::to_string(ml::config::kMaxThreads).c_str());
  EXPECT_EQ(ml::runtime::resolve_threads(0), ml::config::kMaxThreads);  // the bound itself
  ScopedEnv too_many("OMP_NUM_THREADS", std::to_string(ml::config::kMaxThreads + 1).c_str());
  try {
    ml::runtime::resolve_threads(0);
    FAIL() << "OMP_NUM_THREADS above the bound was accepted";
  } catch (const ml::UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "OMP_NUM_THREADS = 1025: must be from 1 to 1024 (the bound of run.threads and "
              "--threads); lower it, or give --threads");
  }
  EXPECT_EQ(ml::runtime::resolve_threads(3), 3);  // --threads / run.threads: not read at all
}

TEST(Threads, ProductsStayOnOneThreadUnlessAPlanGivesALoneLargeProductMore) {
  ScopedEnv omp("OMP_NUM_THREADS", "2");
  ScopedEnv blas("OPENBLAS_NUM_THREADS", nullptr);
  const ml::runtime::ThreadBudget budget = ml::runtime::configure_compute(0);
  EXPECT_EQ(budget.threads, 2);
  EXPECT_EQ(torch::get_num_threads(), 1);
  ml::runtime::WorkShape lone_large;
  lone_large.largest_product = ml::runtime::kIntraOpMinMultiplyAdds;
  EXPECT_EQ(ml::runtime::apply_thread_plan(budget, lone_large, "rows").intra_op, 2);
  EXPECT_EQ(torch::get_num_threads(), 2);
  ml::runtime::WorkShape tasks = lone_large;
  tasks.units = 16;
  EXPECT_EQ(ml::runtime::apply_thread_plan(budget, tasks, "tasks").workers, 2);
  EXPECT_EQ(torch::get_num_threads(), 1);
  // The user's variables are read, never rewritten.
  EXPECT_STREQ(std::getenv("OMP_NUM_THREADS"), "2");
  EXPECT_EQ(std::getenv("OPENBLAS_NUM_THREADS"), nullptr);
}

TEST(TorchDevice, FromTheRunDeviceSetting) {
  EXPECT_EQ(ml::runtime::torch_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_THROW(ml::runtime::torch_device("tpu"), ml::DeviceError);
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(ml::runtime::torch_device("auto"), torch::Device(torch::kCPU));
    EXPECT_THROW(ml::runtime::torch_device("cuda:0"), ml::DeviceError);
  } else {
    EXPECT_EQ(ml::runtime::torch_device("auto"), torch::Device(torch::kCUDA, 0));
  }
}

TEST(ScopedLogFile, CopiesLinesOnlyWhileInScope) {
  TempDir dir;
  const std::string path = dir.file("train.log");
  auto logger = spdlog::default_logger();
  const std::size_t sinks = logger->sinks().size();
  const auto level = logger->level();
  logger->set_level(spdlog::level::info);
  {
    ml::ScopedLogFile file(path);
    EXPECT_EQ(logger->sinks().size(), sinks + 1);
    spdlog::info("inside the run");
  }
  EXPECT_EQ(logger->sinks().size(), sinks);
  spdlog::info("after the run");
  logger->flush();
  logger->set_level(level);
  const std::string text = slurp(path);
  EXPECT_NE(text.find("inside the run"), std::string::npos);
  EXPECT_EQ(text.find("after the run"), std::string::npos);
}

}  // namespace
