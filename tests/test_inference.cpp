// Tests of adaptation and prediction on a small trained synthetic shop: adapted checkpoints,
// what adaptation changes, typed refusals, row scores, recommendations and the CLI end to end.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/csv_reader.hpp"
#include "eval/adaptation_choice.hpp"
#include "inference/adaptation.hpp"
#include "inference/adapted_model.hpp"
#include "inference/prediction.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "run/validated_adaptation.hpp"
#include "runtime/device.hpp"
#include "synth/synthetic_log.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

#ifndef ML_BINARY_PATH
#error "ML_BINARY_PATH must be defined by tests/CMakeLists.txt"
#endif

namespace {

using ml::testing::run_cli;
using ml::testing::slurp;
using ml::testing::TempDir;
using ml::testing::write_file;
using Result = ml::testing::CliResult;
std::string q(const std::string& s) {
  return ml::testing::shell_quote(s);
}

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A small shop, trained once per test process: like configs/synthetic.json (purchase vs
// view/cart per category, both side tables, a time cutoff), scaled down to seconds.
struct TrainedShop {
  TempDir dir;
  std::string events, run;
  ml::config::Config config;
  json config_json;
  std::vector<std::string> new_tasks;  // held out by the run, sorted

  TrainedShop() {
    ml::synth::SynthOptions o;
    o.users = 300;
    o.categories = 10;
    o.sessions = 5000;
    o.seed = 5;
    auto files = ml::synth::write_synthetic_log(o, dir.file("synth")).files;
    events = files.events;
    run = dir.file("run");
    json j = {
        {"seed", 42},
        {"data",
         {{"files", {files.events}},
          {"columns",
           {{"user", "user_id"},
            {"item", "item_id"},
            {"task", "category"},
            {"timestamp", "timestamp"},
            {"event", "event"},
            {"rating", "rating"},
            {"price", "price"},
            {"quantity", "quantity"}}},
          {"features", {{"numeric", {"price"}}}},
          {"side_tables",
           {{{"files", {files.items}},
             {"join", "item"},
             {"key", "item_id"},
             {"features",
              {{"numeric", {"base_price"}},
               {"categorical", {"brand", "price_tier"}},
               {"text", {"title"}}}}},
            {{"files", {files.users}},
             {"join", "user"},
             {"key", "user_id"},
             {"features",
              {{"numeric", {"signup_days", "loyalty_member"}},
               {"categorical", {"age_band", "region"}}}}}}}}},
        {"features", {{"text_buckets", 32}}},
        {"task",
         {{"label",
           {{"kind", "event_binary"},
            {"positive_events", {"purchase"}},
            {"negative_events", {"view", "cart"}}}},
          {"support", 6},
          {"query", 10}}},
        {"split",
         {{"new_fraction", 0.2}, {"validation_fraction", 0.1}, {"time_cutoff", "2026-03-01"}}},
        {"model", {{"hidden", {32}}}},
        {"meta", {{"iterations", 30}, {"meta_batch", 4}}},
        {"train", {{"log_every", 10}, {"validate_every", 0}}},
        {"run", {{"dir", run}, {"device", "cpu"}, {"threads", 1}}}};
    config_json = j;
    config = ml::config::config_from_json(j);
    ml::train::run_training(config, {});
    auto loaded = ml::run::load_run(run, {}, "cpu");
    for (const auto* t : loaded.data->tasks.with_role(ml::tasks::TaskRole::kNew))
      new_tasks.push_back(t->name);
  }
};

const TrainedShop& shop() {
  static TrainedShop s;
  return s;
}

ml::inference::AdaptOptions adapt_options(const std::string& task, const std::string& out) {
  ml::inference::AdaptOptions o;
  o.checkpoint = shop().run;
  o.tasks = {task};
  o.out_dir = out;
  o.device = "cpu";
  o.threads = 1;
  return o;
}

std::vector<torch::Tensor> weights(const std::string& checkpoint) {
  auto run = ml::run::load_run(checkpoint, {}, "cpu");
  std::vector<torch::Tensor> out;
  for (const auto& p : run.learner->model()->params()) out.push_back(p.detach().clone());
  return out;
}

// ---- adapt ---------------------------------------------------------------------------------

TEST(AdaptNewTask, WritesALoadableAdaptedCheckpointWithFiniteMetrics) {
  const TrainedShop& s = shop();
  ASSERT_FALSE(s.new_tasks.empty());
  TempDir out;
  auto summary = ml::inference::adapt(adapt_options(s.new_tasks[0], out.file("adapted")));
  ASSERT_EQ(summary.tasks.size(), 1u);
  const auto& t = summary.tasks[0];
  EXPECT_EQ(t.task, s.new_tasks[0]);
  EXPECT_EQ(t.role, "new");
  EXPECT_EQ(t.support_size, 6);
  EXPECT_EQ(t.query_size, 10);
  EXPECT_EQ(t.steps, s.config.meta.adapt_steps);
  EXPECT_GT(t.adapt_ms, 0);
  for (const auto* m : {&t.before, &t.after}) {
    EXPECT_TRUE(std::isfinite(m->auc));  // every binary query holds both classes
    EXPECT_TRUE(std::isfinite(m->log_loss));
    EXPECT_GE(m->accuracy, 0);
    EXPECT_LE(m->accuracy, 1);
    EXPECT_TRUE(std::isnan(m->rmse));  // not a regression task
  }
  EXPECT_EQ(t.checkpoint,
            out.file("adapted") + "/" + ml::inference::adapted_file_name(s.new_tasks[0]));
  ASSERT_TRUE(fs::exists(t.checkpoint));
  auto meta = ml::run::read_checkpoint_meta(t.checkpoint);
  EXPECT_EQ(meta.kind, "adapted");
  EXPECT_EQ(meta.progress["task"], s.new_tasks[0]);
  EXPECT_EQ(meta.progress["shots"], 6);
  EXPECT_EQ(meta.progress["steps"], s.config.meta.adapt_steps);
  EXPECT_EQ(meta.progress["source_checkpoint"], summary.source_checkpoint);
  auto loaded = ml::run::load_run(t.checkpoint, {}, "cpu");
  EXPECT_EQ(loaded.kind, "adapted");

  // The same call again adapts on the same episode: the same numbers.
  auto again = ml::inference::adapt(adapt_options(s.new_tasks[0], out.file("again")));
  EXPECT_EQ(again.tasks[0].after.auc, t.after.auc);
  EXPECT_EQ(again.tasks[0].after.log_loss, t.after.log_loss);

  const json j = ml::inference::to_json(summary);
  EXPECT_EQ(j["metric"], "AUC");
  EXPECT_EQ(j["tasks"][0]["support"], 6);
  EXPECT_TRUE(j["tasks"][0]["after"]["auc"].is_number());
  const std::string table = ml::inference::format_table(summary);
  EXPECT_NE(table.find(s.new_tasks[0]), std::string::npos) << table;
  EXPECT_NE(table.find("AUC before -> after"), std::string::npos) << table;
}

TEST(AdaptSteps, ZeroStepsKeepTheRunsWeightsAndStepsMoveThem) {
  const TrainedShop& s = shop();
  TempDir out;
  auto zero = adapt_options(s.new_tasks[0], out.file("zero"));
  zero.steps = 0;
  auto moved = adapt_options(s.new_tasks[0], out.file("moved"));
  moved.steps = 3;
  moved.inner_lr = 0.1;
  auto z = ml::inference::adapt(zero).tasks.at(0);
  auto m = ml::inference::adapt(moved).tasks.at(0);
  // Before and after are scored by different code paths (the stacked inner loop, a plain
  // forward) whose float sums may differ in the last bit (they do on LibTorch's matmul,
  // ML_TORCH_GEMM); that 0 steps change no weight is checked exactly below.
  EXPECT_NEAR(z.before.log_loss, z.after.log_loss, 1e-6);
  EXPECT_EQ(m.before.log_loss, z.before.log_loss);  // the same episode, the same init
  EXPECT_NE(m.after.log_loss, m.before.log_loss);
  EXPECT_EQ(m.inner_lr, 0.1);

  auto run = weights(s.run), w0 = weights(z.checkpoint), w3 = weights(m.checkpoint);
  ASSERT_EQ(run.size(), w0.size());
  double changed = 0;
  for (std::size_t i = 0; i < run.size(); ++i) {
    EXPECT_TRUE(torch::equal(run[i], w0[i])) << "parameter " << i;
    changed += (w3[i] - run[i]).abs().sum().item<double>();
  }
  EXPECT_GT(changed, 1e-6);
  EXPECT_EQ(ml::run::read_checkpoint_meta(m.checkpoint).progress["inner_lr"], 0.1);
}

TEST(AdaptShots, AllIsEveryExampleOfTheTaskNotInTheQuery) {
  const TrainedShop& s = shop();
  TempDir out;
  auto o = adapt_options(s.new_tasks[0], out.file("adapted"));
  o.shots = ml::config::kSupportAll;
  const auto t = ml::inference::adapt(o).tasks.at(0);
  const auto run = ml::run::load_run(s.run, {}, "cpu");
  const auto* task = run.data->tasks.find(s.new_tasks[0]);
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(t.query_size, s.config.task.query);
  EXPECT_EQ(t.support_size, static_cast<std::int64_t>(task->examples.size()) - t.query_size);
  EXPECT_GT(t.support_size, s.config.task.support);
  EXPECT_EQ(ml::run::read_checkpoint_meta(t.checkpoint).progress["shots"], "all");
}

// train ends by choosing the adaptation setting on validation tasks (eval::choose_adaptation);
// adapt then uses it unless told otherwise, and says where its setting came from.
TEST(AdaptDefaults, UseTheSettingChosenOnValidationTasks) {
  const TrainedShop& s = shop();
  TempDir dir;
  // The shop was trained as a library call: no adaptation.json, so the config's settings, and
  // the summary says so (help and README promise this fallback).
  ASSERT_FALSE(fs::exists(ml::run::RunLayout(s.run).validated_adaptation()));
  const auto fallback = ml::inference::adapt(adapt_options(s.new_tasks[0], dir.file("config")));
  EXPECT_EQ(fallback.tasks[0].steps, s.config.meta.adapt_steps);
  EXPECT_EQ(fallback.tasks[0].inner_lr, s.config.meta.inner_lr);
  EXPECT_NE(fallback.settings_source.find("meta.adapt_steps"), std::string::npos)
      << fallback.settings_source;
  EXPECT_NE(fallback.settings_source.find(
                "no " + ml::run::RunLayout(s.run).validated_adaptation().string()),
            std::string::npos)
      << fallback.settings_source;

  const std::string copy = dir.file("run");
  fs::copy(s.run, copy, fs::copy_options::recursive);
  ml::config::Config config = s.config;
  config.run.dir = copy;
  const auto chosen = ml::eval::choose_adaptation(config, "cpu", 1);
  ASSERT_TRUE(chosen.has_value());
  const std::string file = ml::run::RunLayout(copy).validated_adaptation().string();
  ASSERT_TRUE(fs::exists(file));
  const auto read = ml::run::read_validated_adaptation(file);
  ASSERT_TRUE(read.has_value());
  ASSERT_EQ(read->settings.size(), 1u);
  const ml::run::ValidatedSetting v = read->settings[0];
  EXPECT_EQ(v.shots, config.task.support);
  EXPECT_EQ(read->metric, "auc");
  EXPECT_NE(std::find(read->steps_grid.begin(), read->steps_grid.end(), v.steps),
            read->steps_grid.end());
  EXPECT_NE(std::find(read->inner_lr_grid.begin(), read->inner_lr_grid.end(), v.inner_lr),
            read->inner_lr_grid.end());
  EXPECT_GT(v.tasks, 0);

  auto o = adapt_options(s.new_tasks[0], dir.file("adapted"));
  o.checkpoint = copy;
  auto summary = ml::inference::adapt(o);
  EXPECT_EQ(summary.tasks[0].steps, v.steps);
  EXPECT_EQ(summary.tasks[0].inner_lr, v.inner_lr);
  EXPECT_NE(summary.settings_source.find("validation tasks"), std::string::npos)
      << summary.settings_source;
  EXPECT_NE(ml::inference::format_table(summary).find("validation tasks"), std::string::npos);
  o.steps = v.steps + 1;  // the command line wins, the rest stays validated
  summary = ml::inference::adapt(o);
  EXPECT_EQ(summary.tasks[0].steps, v.steps + 1);
  EXPECT_EQ(summary.tasks[0].inner_lr, v.inner_lr);
  EXPECT_NE(summary.settings_source.find("override"), std::string::npos);

  // The file records which run it was chosen for, and adapt holds it to the run it adapts.
  const auto meta = ml::run::read_checkpoint_meta(ml::run::resolve_checkpoint_path(copy));
  EXPECT_EQ(read->config, ml::run::validated_config_of(meta.config));
  json copied = json::parse(slurp(file));
  copied["config"]["task"]["query"] = 9;  // as if copied from a run with another query size
  write_file(file, copied.dump());
  o.steps = -1;
  try {
    ml::inference::adapt(o);
    ADD_FAILURE() << "no CheckpointError for another run's adaptation.json";
  } catch (const ml::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("task.query (9 in the file, 10 in the run's checkpoint)"),
              std::string::npos)
        << e.what();
  }

  // A damaged file is refused with its name, never silently ignored.
  std::ofstream(file) << "{\"format\": 1, \"settings\": [";
  o.steps = -1;
  try {
    ml::inference::adapt(o);
    ADD_FAILURE() << "no CheckpointError for a damaged adaptation.json";
  } catch (const ml::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("adaptation.json"), std::string::npos) << e.what();
  }
}

// Without validation tasks train chooses nothing and says why (for its summary line), rather
// than choosing on nothing; adapt then falls back to the config and says so.
TEST(AdaptDefaults, NothingIsChosenWithoutValidationTasksAndTheReasonIsGiven) {
  const TrainedShop& s = shop();
  TempDir dir;
  json j = s.config_json;
  j["split"]["validation_fraction"] = 0;
  j["meta"]["iterations"] = 3;
  j["run"]["dir"] = dir.file("run");
  const ml::config::Config config = ml::config::config_from_json(j);
  ml::train::run_training(config, {});
  std::string why;
  EXPECT_FALSE(ml::eval::choose_adaptation(config, "cpu", 1, &why).has_value());
  EXPECT_NE(why.find("no validation task (split.validation_fraction = 0 selected none)"),
            std::string::npos)
      << why;
  EXPECT_FALSE(fs::exists(ml::run::RunLayout(dir.file("run")).validated_adaptation()));
  auto o = adapt_options(s.new_tasks[0], dir.file("adapted"));
  o.checkpoint = dir.file("run");
  EXPECT_EQ(ml::inference::adapt(o).settings_source.rfind("the config's meta.adapt_steps", 0), 0u);
  // A K beyond eval's grid is no longer a config: task.support is bounded by eval's largest K.
  j["task"]["support"] = 2000000000;
  EXPECT_THROW(ml::config::config_from_json(j), ml::ConfigError);
}

TEST(ValidatedAdaptation, NearestShotsAndRoundTrip) {
  ml::run::ValidatedAdaptation a;
  a.method = "maml";
  a.metric = "auc";
  a.episodes = 5;
  a.steps_grid = {0, 5};
  a.inner_lr_grid = {0.1, NAN};
  a.settings = {{1, 5, 0.1, 0.7, 0.02, 4}, {10, 0, NAN, 0.8, NAN, 4}};
  EXPECT_EQ(a.for_shots(1)->shots, 1);
  EXPECT_EQ(a.for_shots(4)->shots, 1);
  EXPECT_EQ(a.for_shots(8)->shots, 10);
  EXPECT_EQ(a.for_shots(50)->shots, 10);
  TempDir dir;
  ml::run::write_validated_adaptation(dir.file("a.json"), a);
  const auto b = ml::run::read_validated_adaptation(dir.file("a.json"));
  ASSERT_TRUE(b.has_value());
  ASSERT_EQ(b->settings.size(), 2u);
  EXPECT_EQ(b->settings[0].inner_lr, 0.1);
  EXPECT_TRUE(std::isnan(b->settings[1].inner_lr));
  EXPECT_TRUE(std::isnan(b->settings[1].half_width));
  EXPECT_FALSE(ml::run::read_validated_adaptation(dir.file("none.json")).has_value());
}

// A damaged or hand-edited RUN/adaptation.json is refused in one line naming the file, the key,
// the value found and what was expected; never read with a wrong type, cut to an int, or used
// with a value out of range.
TEST(ValidatedAdaptation, EveryBadFileIsRefusedNamingTheKeyAndTheValue) {
  const json good = {{"format", 1},
                     {"chosen_on", "validation tasks"},
                     {"method", "maml"},
                     {"metric", "auc"},
                     {"episodes_per_task", 5},
                     {"steps_grid", {0, 1, 5}},
                     {"inner_lr_grid", {0.1, 0.3}},
                     {"settings",
                      {{{"shots", 6},
                        {"steps", 1},
                        {"inner_lr", 0.3},
                        {"value", 0.6},
                        {"half_width", 0.05},
                        {"validation_tasks", 4}}}}};
  TempDir dir;
  const std::string file = dir.file("adaptation.json");
  write_file(file, good.dump());
  ASSERT_TRUE(ml::run::read_validated_adaptation(file).has_value());
  // (pointer, bad value, what the message must name)
  const std::vector<std::tuple<std::string, json, std::string>> cases = {
      {"/settings/0/steps", "5", "settings[0].steps = \"5\""},
      {"/settings/0/steps", 2.5, "settings[0].steps = 2.5"},
      {"/settings/0/steps", 10000000000LL, "settings[0].steps = 10000000000"},
      {"/settings/0/steps", 1000001, "from 0 to 1000000"},
      {"/settings/0/shots", 0, "settings[0].shots = 0"},
      {"/settings/0/inner_lr", 1e300, "settings[0].inner_lr = 1e+300"},
      {"/settings/0/inner_lr", "0.3", "settings[0].inner_lr = \"0.3\""},
      {"/settings/0/half_width", -1, "settings[0].half_width = -1"},
      {"/settings/0/validation_tasks", 0, "settings[0].validation_tasks = 0"},
      {"/settings", json::array(), "expected at least one setting"},
      {"/settings", json::object(), "settings = {}"},
      {"/steps_grid/1", -1, "steps_grid[1] = -1"},
      {"/inner_lr_grid/0", 0, "inner_lr_grid[0] = 0"},
      {"/episodes_per_task", 0, "episodes_per_task = 0"},
      {"/format", 2, "format = 2"},
      {"/method", "mamll", "did you mean 'maml'"},
      {"/metric", 3, "metric = 3"},
  };
  for (const auto& [pointer, value, expected] : cases) {
    json bad = good;
    bad[json::json_pointer(pointer)] = value;
    write_file(file, bad.dump());
    try {
      ml::run::read_validated_adaptation(file);
      ADD_FAILURE() << "no CheckpointError for " << pointer << " = " << value.dump();
    } catch (const ml::CheckpointError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(expected), std::string::npos) << pointer << ": " << what;
      EXPECT_EQ(what.rfind("'" + file + "'", 0), 0u) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
  json two_at_one_k = good;
  two_at_one_k["settings"].push_back(good["settings"][0]);
  json misspelt = good;  // a key a setting depends on, misspelt: missing, not a silent default
  misspelt["settings"][0]["inner_lrr"] = misspelt["settings"][0]["inner_lr"];
  misspelt["settings"][0].erase("inner_lr");
  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::string>>{
           {two_at_one_k.dump(), "settings[1].shots = 6: a K given twice"},
           {misspelt.dump(), "settings[0].inner_lr: missing"},
           {"", "not valid JSON"},
           {good.dump().substr(0, 40), "not valid JSON"}}) {
    write_file(file, text);
    try {
      ml::run::read_validated_adaptation(file);
      ADD_FAILURE() << "no CheckpointError for " << text;
    } catch (const ml::CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

TEST(ValidatedAdaptation, UsableInnerLearningRatesAreThoseAFloatHolds) {
  EXPECT_TRUE(ml::run::usable_inner_lr(0.1));
  EXPECT_TRUE(ml::run::usable_inner_lr(1e38));
  for (double lr : {0.0, -0.1, 1e39, 1e300, 1e-40, double(NAN), double(INFINITY)})
    EXPECT_FALSE(ml::run::usable_inner_lr(lr)) << lr;
}

TEST(ValidatedAdaptation, AFileOfAnotherRunIsRefusedNamingTheDifference) {
  json config = {{"seed", 1},
                 {"meta", {{"algorithm", "maml"}, {"inner_lr", 0.3}}},
                 {"run", {{"dir", "runs/a"}}}};
  ml::run::ValidatedAdaptation a;
  a.method = "maml";
  a.config = ml::run::validated_config_of(config);
  EXPECT_FALSE(a.config.contains("run"));
  config["run"]["dir"] = "runs/moved";  // where a run lives is not what it is
  ml::run::check_validated_adaptation("f.json", a, config);
  json other = config;
  other["meta"]["inner_lr"] = 0.1;
  try {
    ml::run::check_validated_adaptation("f.json", a, other);
    ADD_FAILURE() << "no CheckpointError for another meta.inner_lr";
  } catch (const ml::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("meta.inner_lr (0.3 in the file, 0.1 in the run's"),
              std::string::npos)
        << e.what();
  }
  other = config;
  other["meta"]["algorithm"] = "anil";
  a.config = nullptr;  // a file of an earlier version: held to its method alone
  try {
    ml::run::check_validated_adaptation("f.json", a, other);
    ADD_FAILURE() << "no CheckpointError for another method";
  } catch (const ml::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("chosen for method maml, the run is anil"),
              std::string::npos)
        << e.what();
  }
  ml::run::check_validated_adaptation("f.json", a, config);
}

// A damaged RUN/adaptation.json is one CheckpointError naming the file, where in it, and the way
// out; nlohmann's own exceptions named neither the key nor the position, and get<int> wrapped.
TEST(ValidatedAdaptation, DamagedFilesNameTheKeyOrPosition) {
  TempDir dir;
  ml::run::ValidatedAdaptation a;
  a.method = "maml";
  a.metric = "auc";
  a.episodes = 5;
  a.steps_grid = {0, 5};
  a.inner_lr_grid = {0.1};
  a.settings = {{5, 5, 0.1, 0.7, 0.02, 4}};
  const std::string good = dir.file("good.json");
  ml::run::write_validated_adaptation(good, a);
  const nlohmann::json written = nlohmann::json::parse(ml::testing::slurp(good));
  auto error_for = [&](const std::string& text) {
    const std::string path = dir.file("adaptation.json");
    ml::testing::write_file(path, text);
    try {
      ml::run::read_validated_adaptation(path);
    } catch (const ml::CheckpointError& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.rfind("'" + path + "': ", 0), 0u) << m;
      EXPECT_NE(m.find("delete it to adapt with"), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
      return m;
    }
    ADD_FAILURE() << "no CheckpointError for " << text.substr(0, 80);
    return std::string();
  };
  auto with = [&](const std::string& pointer, const nlohmann::json& value) {
    nlohmann::json j = written;
    j[nlohmann::json::json_pointer(pointer)] = value;
    return j.dump(2);
  };
  EXPECT_NE(error_for("{\"format\": 1,\n \"settings\": [").find("line 2, column "),
            std::string::npos);
  EXPECT_NE(error_for(std::string(1000, '[')).find("nested deeper than 100 levels"),
            std::string::npos);
  EXPECT_NE(error_for("[1]").find("(top level) = [1]: expected an object"), std::string::npos);
  nlohmann::json no_metric = written;
  no_metric.erase("metric");
  EXPECT_NE(error_for(no_metric.dump()).find("metric: missing"), std::string::npos);
  EXPECT_NE(error_for(with("/settings/0/steps", "x")).find("settings[0].steps = \"x\""),
            std::string::npos);
  EXPECT_NE(error_for(with("/settings/0/shots", 4294967297ULL))
                .find("settings[0].shots = 4294967297: expected a whole number from 1 to"),
            std::string::npos);
  EXPECT_NE(error_for(with("/settings/0/inner_lr", 1e300)).find("settings[0].inner_lr = 1e+300"),
            std::string::npos);
  EXPECT_NE(error_for(with("/inner_lr_grid/0", "fast")).find("inner_lr_grid[0] = \"fast\""),
            std::string::npos);
  EXPECT_NE(error_for(with("/settings", 3)).find("settings = 3: expected a list of objects"),
            std::string::npos);
  // Keys a newer writer may add are left alone; null rates still read as "none".
  const std::string extra = with("/settings/0/inner_lr", nullptr);
  auto read = nlohmann::json::parse(extra);
  read["chosen_by"] = "a later version";
  ml::testing::write_file(dir.file("extra.json"), read.dump());
  const auto b = ml::run::read_validated_adaptation(dir.file("extra.json"));
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(std::isnan(b->settings.at(0).inner_lr));
  fs::create_directories(dir.file("folder.json"));
  try {
    ml::run::read_validated_adaptation(dir.file("folder.json"));
    ADD_FAILURE() << "a folder read as an adaptation file";
  } catch (const ml::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("a folder, not a file"), std::string::npos) << e.what();
  }
}

TEST(AdaptAllNew, AdaptsEveryNewTaskIntoTheRunsAdaptedFolder) {
  const TrainedShop& s = shop();
  ml::inference::AdaptOptions o;
  o.checkpoint = s.run;
  o.all_new = true;
  o.shots = 4;
  o.device = "cpu";
  o.threads = 1;
  auto summary = ml::inference::adapt(o);
  ASSERT_EQ(summary.tasks.size(), s.new_tasks.size());
  for (std::size_t i = 0; i < summary.tasks.size(); ++i) {
    EXPECT_EQ(summary.tasks[i].task, s.new_tasks[i]);
    EXPECT_EQ(summary.tasks[i].support_size, 4);
    EXPECT_EQ(fs::path(summary.tasks[i].checkpoint),
              fs::path(s.run) / "adapted" / ml::inference::adapted_file_name(s.new_tasks[i]));
    EXPECT_TRUE(fs::exists(summary.tasks[i].checkpoint));
  }
  // Tasks adapted side by side on 3 workers: the same models and metrics as one after another;
  // files named by the task's place where asked (names that map to one file cannot collide).
  TempDir out;
  o.out_dir = out.file("three");
  o.threads = 3;
  o.numbered_file_names = true;
  auto three = ml::inference::adapt(o);
  ASSERT_EQ(three.tasks.size(), summary.tasks.size());
  for (std::size_t i = 0; i < summary.tasks.size(); ++i) {
    const auto &a = summary.tasks[i], &b = three.tasks[i];
    EXPECT_EQ(b.task, a.task);
    const std::string number = std::to_string(i + 1);
    EXPECT_EQ(fs::path(b.checkpoint).filename().string(),
              std::string(5 - number.size(), '0') + number + ".mlckpt");
    for (auto m : {&ml::metrics::QueryMetrics::auc, &ml::metrics::QueryMetrics::log_loss})
      EXPECT_TRUE(b.after.*m == a.after.*m || (std::isnan(a.after.*m) && std::isnan(b.after.*m)))
          << a.task << ": " << a.after.*m << " and " << b.after.*m;
    const auto wa = weights(a.checkpoint), wb = weights(b.checkpoint);
    for (std::size_t w = 0; w < wa.size(); ++w)
      EXPECT_TRUE(torch::equal(wa[w], wb[w])) << a.task << " parameter " << w;
  }
  fs::remove_all(fs::path(s.run) / "adapted");  // other tests read the run, not this folder
}

TEST(AdaptSupportCsv, EveryRowIsSupportAndThereIsNoQuery) {
  const TrainedShop& s = shop();
  TempDir out;
  // The task's rows of the log, as a user would export them for a launch.
  std::vector<std::string> lines = lines_of(slurp(s.events));
  std::string csv = lines[0] + "\n";
  int rows = 0;
  for (std::size_t i = 1; i < lines.size() && rows < 40; ++i)
    if (lines[i].find("," + s.new_tasks[0] + ",") != std::string::npos) {
      csv += lines[i] + "\n";
      ++rows;
    }
  ASSERT_GT(rows, 5);
  write_file(out.file("support.csv"), csv);
  auto o = adapt_options(s.new_tasks[0], out.file("adapted"));
  o.support_csv = out.file("support.csv");
  auto t = ml::inference::adapt(o).tasks.at(0);
  EXPECT_EQ(t.query_size, 0);
  EXPECT_GT(t.support_size, 0);
  EXPECT_LE(t.support_size, rows);  // rows of one user and item make one example
  EXPECT_TRUE(std::isnan(t.after.auc));
  EXPECT_TRUE(fs::exists(t.checkpoint));
  EXPECT_EQ(ml::run::read_checkpoint_meta(t.checkpoint).progress["support_source"],
            out.file("support.csv"));

  o.tasks = {"No Such Category"};
  EXPECT_THROW(ml::inference::adapt(o), ml::DataError);
  o.tasks = {s.new_tasks[0]};
  o.shots = 3;
  EXPECT_THROW(ml::inference::adapt(o), ml::UsageError);
}

TEST(AdaptErrors, UnknownTaskSuggestsAndTooSmallTaskNamesSizes) {
  const TrainedShop& s = shop();
  TempDir out;
  const std::string name = s.new_tasks[0];
  const std::string typo = name.substr(0, name.size() - 1);
  try {
    ml::inference::adapt(adapt_options(typo, out.file("a")));
    FAIL() << "an unknown task must be refused";
  } catch (const ml::DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'" + typo + "'"), std::string::npos) << what;
    EXPECT_NE(what.find("did you mean '" + name + "'"), std::string::npos) << what;
    // A category the log lacks is adapted to from its rows: the message says how.
    EXPECT_NE(what.find("--support-csv"), std::string::npos) << what;
  }
  auto big = adapt_options(name, out.file("b"));
  big.shots = 100000;
  try {
    ml::inference::adapt(big);
    FAIL() << "an episode larger than the task must be refused";
  } catch (const ml::DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("100000 support + 10 query"), std::string::npos) << what;
  }
  auto none = adapt_options(name, out.file("c"));
  none.tasks.clear();
  EXPECT_THROW(ml::inference::adapt(none), ml::UsageError);
  none.checkpoint = out.file("no-such-run");
  none.tasks = {name};
  EXPECT_THROW(ml::inference::adapt(none), ml::CheckpointError);
  EXPECT_FALSE(fs::exists(out.file("a")));  // nothing written on refusal
}

TEST(AdaptFileNames, AreSafeAndReadable) {
  using ml::inference::adapted_file_name;
  EXPECT_EQ(adapted_file_name("FROZEN PIZZA"), "FROZEN_PIZZA.mlckpt");
  EXPECT_EQ(adapted_file_name("Dogs/Cats: Food"), "Dogs_Cats__Food.mlckpt");
  EXPECT_EQ(adapted_file_name(".."), "task...mlckpt");
  EXPECT_EQ(adapted_file_name(""), "task.mlckpt");
  EXPECT_EQ(adapted_file_name(".hidden"), "_hidden.mlckpt");
}

// ---- predict -------------------------------------------------------------------------------

// The header and the first `n` rows of the log, then its first row again.
std::string sample_rows(const TrainedShop& s, int n) {
  auto lines = lines_of(slurp(s.events));
  std::string csv = lines[0] + "\n";
  for (int i = 1; i <= n; ++i) csv += lines[static_cast<std::size_t>(i)] + "\n";
  return csv + lines[1] + "\n";
}

// Protonet (no inner loop: prototypes) and regression (other metrics) on the same shop.
TEST(AdaptOtherModels, ProtonetScoresThroughPrototypesAndRegressionReportsErrors) {
  const TrainedShop& s = shop();
  TempDir dir;
  auto train_variant = [&](const std::string& name, const json& patch) {
    json j = s.config_json;
    j.merge_patch(patch);
    j["run"]["dir"] = dir.file(name);
    j["meta"]["iterations"] = 8;
    ml::train::run_training(ml::config::config_from_json(j), {});
    return dir.file(name);
  };
  const std::string proto = train_variant("proto", {{"meta", {{"algorithm", "protonet"}}}});
  auto o = adapt_options(s.new_tasks[0], dir.file("proto_adapted"));
  o.checkpoint = proto;
  auto p = ml::inference::adapt(o).tasks.at(0);
  EXPECT_TRUE(std::isnan(p.before.auc));  // no classifier before the prototypes
  EXPECT_TRUE(std::isfinite(p.after.auc));
  EXPECT_TRUE(std::isfinite(p.after.log_loss));
  EXPECT_TRUE(torch::equal(weights(proto)[0], weights(p.checkpoint)[0]));  // nothing fine-tuned

  write_file(dir.file("rows.csv"), sample_rows(s, 4));
  ml::inference::PredictOptions rows;
  rows.checkpoint = p.checkpoint;
  rows.input = dir.file("rows.csv");
  rows.device = "cpu";
  rows.threads = 1;
  auto scores = ml::inference::score_rows(rows);
  ASSERT_EQ(scores.rows.size(), 5u);
  for (const auto& r : scores.rows) {
    EXPECT_GT(r.score, 0);
    EXPECT_LT(r.score, 1);
  }
  rows.checkpoint = proto;  // a protonet run has no prototypes to score against
  EXPECT_THROW(ml::inference::score_rows(rows), ml::UsageError);

  const std::string reg =
      train_variant("reg", {{"task", {{"label", {{"kind", "regression"}, {"target", "quantity"}}}}},
                            {"meta", {{"inner_lr", 0.01}}}});
  o.checkpoint = reg;
  o.out_dir = dir.file("reg_adapted");
  auto r = ml::inference::adapt(o);
  EXPECT_EQ(r.label_kind, ml::tasks::LabelKind::kRegression);
  const auto& t = r.tasks.at(0);
  EXPECT_TRUE(std::isfinite(t.before.rmse));
  EXPECT_TRUE(std::isfinite(t.after.rmse));
  EXPECT_LE(t.after.mae, t.after.rmse + 1e-12);  // MAE never exceeds RMSE
  EXPECT_TRUE(std::isnan(t.after.auc));
  EXPECT_NE(ml::inference::format_table(r).find("RMSE before -> after"), std::string::npos);
  rows.checkpoint = t.checkpoint;
  for (const auto& row : ml::inference::score_rows(rows).rows)
    EXPECT_TRUE(std::isfinite(row.score));
}

TEST(PredictRows, OneProbabilityPerRowAndAdaptationChangesThem) {
  const TrainedShop& s = shop();
  TempDir out;
  write_file(out.file("rows.csv"), sample_rows(s, 5));
  ml::inference::PredictOptions p;
  p.checkpoint = s.run;
  p.input = out.file("rows.csv");
  p.device = "cpu";
  p.threads = 1;
  auto base = ml::inference::score_rows(p);
  EXPECT_EQ(base.model_kind, "meta");
  ASSERT_EQ(base.rows.size(), 6u);
  EXPECT_EQ(base.rows_read, 6);
  for (const auto& r : base.rows) {
    EXPECT_GT(r.score, 0);
    EXPECT_LT(r.score, 1);
    EXPECT_FALSE(r.user.empty());
    EXPECT_FALSE(r.item.empty());
  }
  // Identical rows, to float rounding: BLAS kernels may sum a row's products in an order that
  // depends on where in the matrix the row sits (OpenBLAS's AVX-512 kernels do).
  EXPECT_NEAR(base.rows[0].score, base.rows[5].score, 1e-6);
  EXPECT_EQ(base.rows[0].user, base.rows[5].user);

  auto o = adapt_options(s.new_tasks[0], out.file("adapted"));
  o.steps = 5;
  p.checkpoint = ml::inference::adapt(o).tasks.at(0).checkpoint;
  auto adapted = ml::inference::score_rows(p);
  EXPECT_EQ(adapted.model_kind, "adapted");
  ASSERT_EQ(adapted.rows.size(), base.rows.size());
  double diff = 0;
  for (std::size_t i = 0; i < base.rows.size(); ++i)
    diff += std::abs(adapted.rows[i].score - base.rows[i].score);
  EXPECT_GT(diff, 1e-6);

  std::ostringstream csv;
  ml::inference::write_scores_csv(adapted, csv);
  auto lines = lines_of(csv.str());
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[0], "user_id,item_id,category,score");
  EXPECT_EQ(lines[1].rfind(adapted.rows[0].user + "," + adapted.rows[0].item + ",", 0), 0u)
      << lines[1];
}

TEST(PredictRecommend, TopKUnseenItemsPerUserSortedByScore) {
  const TrainedShop& s = shop();
  const std::string task = s.new_tasks[0];
  // Independently of the library: the task's items and each user's items in it.
  std::set<std::string> catalogue;
  std::map<std::string, std::set<std::string>> seen;
  ml::data::CsvReader reader(s.events, {',', true, '"'});
  ml::data::CsvRecord rec;
  while (reader.next(rec)) {
    if (rec.fields[2] != task) continue;
    catalogue.insert(std::string(rec.fields[1]));
    seen[std::string(rec.fields[0])].insert(std::string(rec.fields[1]));
  }
  const std::size_t k = 5;
  std::vector<std::string> users;
  for (const auto& [user, items] : seen)
    if (catalogue.size() - items.size() >= k && users.size() < 3) users.push_back(user);
  ASSERT_EQ(users.size(), 3u);

  ml::inference::RecommendOptions r;
  r.checkpoint = s.run;
  r.task = task;
  r.users = users;
  r.top_k = static_cast<int>(k);
  r.device = "cpu";
  r.threads = 1;
  auto recs = ml::inference::recommend(r);
  ASSERT_EQ(recs.size(), k * users.size());
  for (std::size_t u = 0; u < users.size(); ++u) {
    std::set<std::string> items;
    for (std::size_t i = 0; i < k; ++i) {
      const auto& rec_i = recs[u * k + i];
      EXPECT_EQ(rec_i.user, users[u]);
      EXPECT_EQ(rec_i.rank, static_cast<int>(i + 1));
      EXPECT_TRUE(catalogue.count(rec_i.item)) << rec_i.item;
      EXPECT_FALSE(seen[users[u]].count(rec_i.item)) << users[u] << " saw " << rec_i.item;
      EXPECT_GT(rec_i.score, 0);
      EXPECT_LT(rec_i.score, 1);
      if (i > 0) {
        EXPECT_GE(recs[u * k + i - 1].score, rec_i.score);
      }
      items.insert(rec_i.item);
    }
    EXPECT_EQ(items.size(), k);  // no item twice
  }

  r.users = {users[0] + "x"};
  EXPECT_THROW(ml::inference::recommend(r), ml::DataError);
  r.users = users;
  r.task = task + "x";
  try {
    ml::inference::recommend(r);
    FAIL() << "an unknown task must be refused";
  } catch (const ml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean '" + task + "'"), std::string::npos)
        << e.what();
  }
}

TEST(PredictOutput, IsWrittenAtomically) {
  TempDir dir;
  const std::string path = dir.file("scores.csv");
  write_file(path, "old\n");
  EXPECT_THROW(ml::inference::write_output(path, std::cout,
                                           [](std::ostream& out) {
                                             out << "half";
                                             throw ml::DataError("fails midway");
                                           }),
               ml::DataError);
  EXPECT_EQ(slurp(path), "old\n");
  ml::inference::write_output(path, std::cout, [](std::ostream& out) { out << "new\n"; });
  EXPECT_EQ(slurp(path), "new\n");
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.file(""))) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1);  // no temporary left behind
  // Without a path the output goes to the stream the caller passes, not to the process's stdout.
  std::ostringstream standard_output;
  ml::inference::write_output("", standard_output, [](std::ostream& out) { out << "a,b\n"; });
  EXPECT_EQ(standard_output.str(), "a,b\n");
  // Missing folders are created, as for checkpoints and reports; a path through a file fails
  // with the I/O error (exit code 9).
  ml::inference::write_output(dir.file("new/folder/x.csv"), std::cout,
                              [](std::ostream& out) { out << "x\n"; });
  EXPECT_EQ(slurp(dir.file("new/folder/x.csv")), "x\n");
  EXPECT_THROW(
      ml::inference::write_output(dir.file("scores.csv/x.csv"), std::cout, [](std::ostream&) {}),
      ml::IoError);
}

// An --output that cannot be written fails before the model is loaded and the rows scored
// (on a large log that took minutes, then failed), with the I/O code and nothing written.
TEST(PredictOutput, AnUnwritableOutputFailsBeforeTheWork) {
  TempDir dir;
  write_file(dir.file("plain"), "a file");
  const Result r =
      run_cli("predict --checkpoint " + q(shop().run) + " --input " + q(shop().events) +
              " --output " + q(dir.file("plain/scores.csv")) + " --device cpu");
  EXPECT_EQ(r.code, static_cast<int>(ml::ExitCode::kIo)) << r.err;
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_NE(r.err.find(dir.file("plain/scores.csv")), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("scored"), std::string::npos) << r.err;
}

// ---- the CLI end to end --------------------------------------------------------------------

TEST(AdaptCli, AdaptsAndPredictsEndToEnd) {
  const TrainedShop& s = shop();
  TempDir dir;
  const std::string task = s.new_tasks[0];
  Result a =
      run_cli("adapt --checkpoint " + q(s.run) + " --task " + q(task) + " --out " +
              q(dir.file("adapted")) + " --shots 4 --steps 2 --device cpu --threads 1 --json");
  ASSERT_EQ(a.code, 0) << a.err;
  const json j = json::parse(a.out);  // stdout holds only the JSON
  ASSERT_EQ(j["tasks"].size(), 1u);
  EXPECT_EQ(j["tasks"][0]["task"], task);
  EXPECT_EQ(j["tasks"][0]["support"], 4);
  EXPECT_EQ(j["tasks"][0]["steps"], 2);
  const std::string adapted = j["tasks"][0]["checkpoint"].get<std::string>();
  EXPECT_TRUE(fs::exists(adapted)) << adapted;

  Result all =
      run_cli("adapt --checkpoint " + q(s.run) + " --task " + q(task) + " --out " +
              q(dir.file("all")) + " --shots all --steps 0 --device cpu --threads 1 --json");
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_GT(json::parse(all.out)["tasks"][0]["support"].get<int>(), 4);
  Result bad = run_cli("adapt --checkpoint " + q(s.run) + " --task " + q(task) + " --shots some");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("'some' is neither a whole number from 0 to 1000000 nor \"all\""),
            std::string::npos)
      << bad.err;

  Result table = run_cli("adapt --checkpoint " + q(s.run) + " --task " + q(task) + " --out " +
                         q(dir.file("adapted")) + " --device cpu --threads 1");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("AUC before -> after"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(task), std::string::npos) << table.out;

  write_file(dir.file("rows.csv"), sample_rows(s, 3));
  Result p = run_cli("predict --checkpoint " + q(adapted) + " --input " + q(dir.file("rows.csv")) +
                     " --output " + q(dir.file("scores.csv")) + " --device cpu --threads 1");
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_TRUE(p.out.empty()) << p.out;  // the scores went to the file
  auto lines = lines_of(slurp(dir.file("scores.csv")));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "user_id,item_id,category,score");
  EXPECT_EQ(lines[1].substr(lines[1].rfind(',')), lines[4].substr(lines[4].rfind(',')));

  // An adapted model is its task's model: --recommend ranks that task's items without --task,
  // and refuses another task's.
  const std::string first_event = lines_of(slurp(s.events)).at(1);
  const std::string user = first_event.substr(0, first_event.find(','));
  const std::string common = " --user " + q(user) + " --top-k 3 --device cpu --threads 1";
  Result own = run_cli("predict --checkpoint " + q(adapted) + " --recommend" + common);
  ASSERT_EQ(own.code, 0) << own.err;
  const auto ranked = lines_of(own.out);
  ASSERT_EQ(ranked.size(), 4u) << own.out;
  EXPECT_EQ(ranked[0], "user,rank,item,score");
  // This shop's items have attributes (item side table): their scores are not tied.
  EXPECT_EQ(own.err.find("distinct score"), std::string::npos) << own.err;
  const std::string other = s.new_tasks.at(1);
  Result refused =
      run_cli("predict --checkpoint " + q(adapted) + " --recommend --task " + q(other) + common);
  EXPECT_EQ(refused.code, static_cast<int>(ml::ExitCode::kUsage)) << refused.err;
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_NE(refused.err.find("was adapted to task '" + task + "'"), std::string::npos)
      << refused.err;
  // The run directory, the unadapted init, ranks any task's items.
  Result init =
      run_cli("predict --checkpoint " + q(s.run) + " --recommend --task " + q(other) + common);
  EXPECT_EQ(init.code, 0) << init.err;
  EXPECT_EQ(lines_of(init.out).size(), 4u) << init.out;
}

// A checkpoint whose checksum holds but whose feature statistics this build cannot use (a key
// missing, sizes that disagree, a scale of 0) used to be a data error (exit 4) without the
// file's name. Every command that loads one (load_run: adapt, eval, train --resume;
// load_scoring_model: predict) says which file, as a checkpoint error (exit 5).
TEST(DamagedCheckpoint, FeatureStatisticsNameTheFile) {
  TempDir dir;
  auto source = ml::run::load_run(shop().run, {}, "cpu");
  const auto good = ml::run::load_checkpoint(source.checkpoint_path).meta;
  struct Damage {
    std::string name, expected;
    std::function<void(json&)> apply;
  };
  const std::vector<Damage> damages = {
      {"no_mean", "incomplete or corrupt", [](json& f) { f.erase("mean"); }},
      {"short_scale", "mean/scale sizes differ", [](json& f) { f["scale"] = json::array({1.0}); }},
      {"zero_scale", "has scale 0 (a positive scale)", [](json& f) { f["scale"][0] = 0.0; }},
      {"not_an_object", "incomplete or corrupt", [](json& f) { f = json::object(); }},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.name);
    const std::string path = dir.file(d.name + ".mlckpt");
    auto meta = good;
    d.apply(meta.features);
    ml::run::save_checkpoint(path, meta, [&](torch::serialize::OutputArchive& archive) {
      ml::run::write_learner(archive, *source.learner);
    });
    for (int reader = 0; reader < 2; ++reader) {
      try {
        if (reader == 0)
          ml::run::load_run(path, {}, "cpu");
        else
          ml::inference::load_scoring_model(path, "cpu");
        ADD_FAILURE() << "loaded";
      } catch (const ml::CheckpointError& e) {
        const std::string m = e.what();
        EXPECT_EQ(m.rfind("'" + path + "' is corrupt: its feature statistics", 0), 0u) << m;
        EXPECT_NE(m.find(d.expected), std::string::npos) << m;
      }
    }
  }
  const std::string log = slurp(shop().events);
  write_file(dir.file("rows.csv"), log.substr(0, log.find('\n', 2000) + 1));
  const Result r = run_cli("predict --checkpoint " + q(dir.file("no_mean.mlckpt")) + " --input " +
                           q(dir.file("rows.csv")) + " --device cpu");
  EXPECT_EQ(r.code, static_cast<int>(ml::ExitCode::kCheckpoint)) << r.err;
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_TRUE(r.err.find(dir.file("no_mean.mlckpt")) != std::string::npos) << r.err;
}

TEST(PredictCli, MissingCheckpointExitsFiveWithOneLine) {
  TempDir dir;
  write_file(dir.file("rows.csv"), "user_id,item_id,category\n");
  const std::string missing = q(dir.file("no-such-run"));
  Result a = run_cli("adapt --checkpoint " + missing + " --task X --device cpu");
  Result p = run_cli("predict --checkpoint " + missing + " --input " + q(dir.file("rows.csv")) +
                     " --output " + q(dir.file("out.csv")) + " --device cpu");
  for (const Result* r : {&a, &p}) {
    EXPECT_EQ(r->code, static_cast<int>(ml::ExitCode::kCheckpoint)) << r->err;
    EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
    EXPECT_NE(r->err.find("no-such-run"), std::string::npos) << r->err;
  }
  EXPECT_FALSE(fs::exists(dir.file("out.csv")));
}

}  // namespace
