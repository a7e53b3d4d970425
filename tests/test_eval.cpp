// Tests of the cold-start evaluation: a small synthetic shop trained for real, then the grid,
// its pairing, intervals and baselines checked against independent computations, and the CLI.
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
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "eval/cold_start.hpp"
#include "meta/meta_learner.hpp"
#include "metrics/metrics.hpp"
#include "models/query_metrics.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "runtime/device.hpp"
#include "synth/synthetic_log.hpp"
#include "tasks/episode_sampler.hpp"
#include "tasks/task_set.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

#ifndef ML_BINARY_PATH
#error "ML_BINARY_PATH must be defined by tests/CMakeLists.txt"
#endif

namespace {

using ml::testing::TempDir;
using Result = ml::testing::CliResult;
std::string q(const std::string& s) {
  return ml::testing::shell_quote(s);
}
Result run_binary(const std::string& args) {
  return ml::testing::run_cli(args);
}

namespace fs = std::filesystem;
using nlohmann::json;

// A small shop, a config like configs/synthetic.json with a small model and budget, and a run
// trained on it with maml. Built once per test process (each test that needs it shares it).
struct TrainedRun {
  TempDir dir;
  std::string run_dir;
  json json_config;
  ml::config::Config config;

  TrainedRun() {
    ml::synth::SynthOptions synth;
    synth.users = 300;
    synth.categories = 12;
    synth.sessions = 6000;
    const std::string data = dir.file("synth");
    ml::synth::write_synthetic_log(synth, data);
    run_dir = dir.file("run");
    json c = {
        {"seed", 42},
        {"data",
         {{"files", {data + "/events.csv"}},
          {"columns",
           {{"user", "user_id"},
            {"item", "item_id"},
            {"task", "category"},
            {"timestamp", "timestamp"},
            {"event", "event"},
            {"price", "price"},
            {"quantity", "quantity"}}},
          {"features", {{"numeric", {"price"}}}},
          {"side_tables",
           {{{"files", {data + "/items.csv"}},
             {"join", "item"},
             {"key", "item_id"},
             {"features", {{"numeric", {"base_price"}}, {"categorical", {"brand", "price_tier"}}}}},
            {{"files", {data + "/users.csv"}},
             {"join", "user"},
             {"key", "user_id"},
             {"features",
              {{"numeric", {"signup_days", "loyalty_member"}},
               {"categorical", {"age_band", "region"}}}}}}}}},
        {"task",
         {{"label",
           {{"kind", "event_binary"},
            {"positive_events", {"purchase"}},
            {"negative_events", {"view", "cart"}}}},
          {"support", 6},
          {"query", 10}}},
        // Half the categories held out, so the intervals span several new tasks.
        {"split",
         {{"new_fraction", 0.5}, {"validation_fraction", 0.2}, {"time_cutoff", "2026-03-01"}}},
        {"model", {{"hidden", {32}}}},
        {"meta",
         {{"algorithm", "maml"}, {"iterations", 30}, {"meta_batch", 4}, {"inner_steps", 2}}},
        {"train", {{"validate_every", 0}}},
        {"run", {{"dir", run_dir}, {"device", "cpu"}, {"threads", 1}}}};
    json_config = c;
    config = ml::config::config_from_json(c);
    ml::train::run_training(config, {});
  }

  // Another run on the same data: the config merge-patched with `patch`, trained into `dir`
  // (stopped after `stop_after` iterations when > 0). Returns its run directory.
  std::string train_variant(const std::string& dir, const json& patch, int stop_after = 0) const {
    json c = json_config;
    c.merge_patch(patch);
    c["run"]["dir"] = dir;
    ml::train::TrainOptions options;
    options.stop_after = stop_after;
    ml::train::run_training(ml::config::config_from_json(c), options);
    return dir;
  }
};

const TrainedRun& trained_run() {
  static TrainedRun run;
  return run;
}

ml::eval::ColdStartOptions small_grid(const std::string& checkpoint) {
  ml::eval::ColdStartOptions o;
  o.checkpoint = checkpoint;
  o.shots = {6, 1, 3};  // unsorted on purpose: the result sorts
  o.steps = {3, 0, 1};
  o.episodes = 5;
  o.baseline_lrs = {};  // the pretrain baselines at the run's inner lr only: a smaller grid
  o.inner_lrs = {0.3};  // the meta-learners at the runs' meta.inner_lr only, likewise
  o.device = "cpu";
  o.threads = 1;
  return o;
}

const std::vector<std::string> kBaselineFamilies{"pretrain", "pretrain_head", "linear_probe",
                                                 "scratch"};

// The first evaluation of the shared run (it trains the pretrain baseline), shared too.
const ml::eval::ColdStartResult& first_result() {
  static ml::eval::ColdStartResult r = ml::eval::run_cold_start(small_grid(trained_run().run_dir));
  return r;
}

std::vector<double> values_of(const ml::eval::MetricResult& m) {
  std::vector<double> v;
  for (const auto& t : m.per_task) v.push_back(t.value);
  return v;
}

TEST(EvalColdStart, GridIsCompleteAndEveryMethodSawTheSameEpisodes) {
  const auto& r = first_result();
  EXPECT_EQ(r.algorithm, "maml");
  EXPECT_EQ(r.label_kind, "binary");
  EXPECT_EQ(r.shots, (std::vector<int>{1, 3, 6}));
  EXPECT_EQ(r.steps, (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(r.methods,
            (std::vector<std::string>{"maml", "pretrain", "pretrain_head", "linear_probe l2=0.01",
                                      "linear_probe l2=0.1", "linear_probe l2=1",
                                      "linear_probe l2=10", "scratch"}));
  ASSERT_FALSE(r.metrics.empty());
  EXPECT_EQ(r.metrics.front().name, "auc");
  EXPECT_GE(r.new_tasks, 4);
  ASSERT_EQ(r.cells.size(), 8u * 3u * 3u);
  // Stage 1 ran the same grid on the validation tasks, none of them a new task.
  ASSERT_EQ(r.validation_cells.size(), r.cells.size());
  ASSERT_EQ(r.validation_tasks.size(), r.shots.size());
  for (const auto& vt : r.validation_tasks)
    for (const auto& name : vt.evaluated)
      for (const auto& t : r.tasks)
        EXPECT_EQ(std::count(t.evaluated.begin(), t.evaluated.end(), name), 0) << name;
  for (const auto& m : r.methods)
    for (int k : r.shots)
      for (int s : r.steps) EXPECT_NE(r.cell(m, k, s), nullptr) << m << " " << k << " " << s;

  for (int k : r.shots) {
    const auto* tasks = r.tasks_at(k);
    ASSERT_NE(tasks, nullptr);
    EXPECT_EQ(tasks->evaluated.size() + tasks->skipped.size(),
              static_cast<std::size_t>(r.new_tasks));
    EXPECT_GE(tasks->evaluated.size(), 3u) << "K=" << k;
    const auto* reference = r.cell("scratch", k, 0)->metric("auc");
    for (const auto& cell : r.cells) {
      if (cell.shots != k) continue;
      EXPECT_EQ(cell.diverged_episodes, 0) << cell.method;
      ASSERT_EQ(cell.metrics.size(), r.metrics.size());
      for (const auto& m : cell.metrics) EXPECT_EQ(m.per_task.size(), tasks->evaluated.size());
      // Every query holds both classes, so every episode gives an AUC: the same count for every
      // method and step is what a paired comparison needs.
      const auto* auc = cell.metric("auc");
      for (std::size_t t = 0; t < auc->per_task.size(); ++t) {
        EXPECT_EQ(auc->per_task[t].episodes, r.episodes) << cell.method << " K=" << k;
        EXPECT_EQ(auc->per_task[t].episodes, reference->per_task[t].episodes);
      }
    }
  }
}

TEST(EvalColdStart, IntervalsAndPairedDifferencesAgreeWithTheirDefinitions) {
  const auto& r = first_result();
  for (const auto& cell : r.cells) {
    for (const auto& m : cell.metrics) {
      const auto& iv = m.interval;
      if (iv.n >= 2) {
        EXPECT_LE(iv.lower, iv.mean) << cell.method << " " << m.metric;
        EXPECT_GE(iv.upper, iv.mean) << cell.method << " " << m.metric;
      }
      // The mean over tasks, recomputed.
      double sum = 0;
      std::size_t n = 0;
      for (const auto& t : m.per_task)
        if (!std::isnan(t.value)) sum += t.value, ++n;
      EXPECT_EQ(iv.n, n);
      if (n > 0) {
        EXPECT_NEAR(iv.mean, sum / static_cast<double>(n), 1e-12);
      }
    }
    // Every cell but the chosen baseline's own is paired against the baseline chosen on
    // validation tasks at its K, in every metric.
    const auto* verdict = &r.verdicts.at(static_cast<std::size_t>(
        std::find(r.shots.begin(), r.shots.end(), cell.shots) - r.shots.begin()));
    const bool is_chosen_baseline =
        cell.method == verdict->against_method && cell.steps == verdict->against_steps;
    EXPECT_EQ(cell.comparisons.size(), is_chosen_baseline ? 0u : r.metrics.size()) << cell.method;
    for (const auto& cmp : cell.comparisons) {
      EXPECT_EQ(cmp.baseline, verdict->against_method);
      EXPECT_EQ(cmp.baseline_steps, verdict->against_steps);
      const auto* base = r.cell(cmp.baseline, cell.shots, cmp.baseline_steps);
      ASSERT_NE(base, nullptr);
      auto a = values_of(*cell.metric(cmp.metric)), c = values_of(*base->metric(cmp.metric));
      double sum = 0;
      std::size_t n = 0;
      for (std::size_t i = 0; i < a.size(); ++i)
        if (std::isfinite(a[i]) && std::isfinite(c[i])) sum += a[i] - c[i], ++n;
      EXPECT_EQ(cmp.difference.n, n);
      if (n > 0) {
        EXPECT_NEAR(cmp.difference.mean, sum / static_cast<double>(n), 1e-12);
      }
    }
  }
}

TEST(EvalColdStart, BaselinesBehaveAsBaselines) {
  const auto& r = first_result();
  // Random weights without adaptation rank purchases no better than chance across tasks.
  for (int k : r.shots) {
    const auto& auc = r.cell("scratch", k, 0)->metric("auc")->interval;
    EXPECT_TRUE(std::abs(auc.mean - 0.5) < 0.1 || (auc.lower <= 0.5 && 0.5 <= auc.upper))
        << "scratch AUC at K=" << k << ": " << ml::metrics::format_interval(auc, 3);
  }
  EXPECT_EQ(r.pretrain_source, "trained");
  EXPECT_TRUE(fs::exists(trained_run().run_dir + "/baselines/pretrain/checkpoints/latest.mlckpt"));
  EXPECT_FALSE(r.pretrain_checkpoint.empty());
  ASSERT_EQ(r.verdicts.size(), r.shots.size());
  for (const auto& v : r.verdicts) {
    EXPECT_EQ(v.chosen_on, "validation") << v.text;
    EXPECT_GT(v.validation_tasks, 0) << v.text;
    EXPECT_NE(v.text.find("chosen on"), std::string::npos) << v.text;
    EXPECT_EQ(v.compared_method, "maml") << v.text;
    ASSERT_NE(r.method(v.against_method), nullptr) << v.text;
    EXPECT_TRUE(r.method(v.against_method)->baseline) << v.text;
    // The verdict's values are its chosen cells' on the new tasks, scored once.
    EXPECT_EQ(v.compared_value.mean,
              r.cell(v.compared_method, v.shots, v.compared_steps)->metrics[0].interval.mean);
    EXPECT_EQ(v.against_value.mean,
              r.cell(v.against_method, v.shots, v.against_steps)->metrics[0].interval.mean);
  }
  // Each family's choice is its best setting on the validation cells.
  for (const auto& c : r.choices) {
    for (const auto& cell : r.validation_cells) {
      const auto* info = r.method(cell.method);
      if (cell.shots != c.shots || info->family != c.family || cell.diverged_episodes > 0) continue;
      EXPECT_LE(cell.metrics[0].interval.mean, c.validation.mean) << cell.method;
    }
  }
}

// A planted grid where the new tasks favour a step count the validation tasks do not: the
// choice is made on the validation cells alone, and a diverged setting is never chosen.
TEST(EvalProtocol, ChoosesOnValidationCellsNeverOnTestCells) {
  using ml::eval::Cell;
  auto cell = [](const std::string& method, int steps, double mean, int diverged = 0) {
    Cell c;
    c.method = method;
    c.shots = 5;
    c.steps = steps;
    c.diverged_episodes = diverged;
    ml::eval::MetricResult m;
    m.metric = "auc";
    m.interval.mean = mean;
    m.interval.n = 3;
    c.metrics.push_back(m);
    return c;
  };
  const std::vector<ml::eval::MethodInfo> methods{{"maml", "maml", 0.3, false},
                                                  {"pretrain lr=0.1", "pretrain", 0.1, true},
                                                  {"pretrain lr=0.3", "pretrain", 0.3, true}};
  const std::vector<Cell> validation{cell("maml", 0, 0.60),
                                     cell("maml", 1, 0.70),
                                     cell("maml", 10, 0.65),
                                     cell("pretrain lr=0.1", 1, 0.62),
                                     cell("pretrain lr=0.3", 1, 0.90, /*diverged=*/2),
                                     cell("pretrain lr=0.3", 10, 0.64)};
  // On the new tasks 10 steps would look best for maml: irrelevant to the choice.
  const std::vector<Cell> test{cell("maml", 1, 0.55), cell("maml", 10, 0.95)};
  (void)test;
  const auto choices = ml::eval::choose_on_validation(validation, methods, {5}, true);
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[0].family, "maml");
  EXPECT_EQ(choices[0].steps, 1);
  EXPECT_FALSE(choices[0].baseline);
  EXPECT_EQ(choices[1].family, "pretrain");
  EXPECT_EQ(choices[1].method, "pretrain lr=0.3");  // the diverged 0.90 is excluded
  EXPECT_EQ(choices[1].steps, 10);
  EXPECT_EQ(choices[1].excluded, 1);
  EXPECT_TRUE(choices[1].baseline);
  // Lower is better (RMSE): the smallest validation mean wins.
  const auto lower = ml::eval::choose_on_validation(validation, methods, {5}, false);
  EXPECT_EQ(lower[0].steps, 0);
  // Equal validation means keep the fewest steps.
  const auto tied = ml::eval::choose_on_validation({cell("maml", 0, 0.7), cell("maml", 5, 0.7)},
                                                   methods, {5}, true);
  EXPECT_EQ(tied[0].steps, 0);
}

TEST(EvalProtocol, RunChoicesAreRecomputedFromValidationCellsAlone) {
  const auto& r = first_result();
  const auto again = ml::eval::choose_on_validation(r.validation_cells, r.method_info, r.shots,
                                                    r.metrics[0].higher_is_better);
  ASSERT_EQ(again.size(), r.choices.size());
  for (std::size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again[i].method, r.choices[i].method);
    EXPECT_EQ(again[i].steps, r.choices[i].steps);
  }
  // Every family at every K was chosen for: the meta-learner and the four baselines.
  EXPECT_EQ(r.choices.size(), r.shots.size() * 5);
}

TEST(EvalColdStart, ReusesThePretrainBaselineAndRepeatsItsNumbers) {
  const auto& first = first_result();
  auto again = ml::eval::run_cold_start(small_grid(trained_run().run_dir));
  EXPECT_EQ(again.pretrain_source, "reused");
  ASSERT_EQ(again.cells.size(), first.cells.size());
  for (std::size_t i = 0; i < first.cells.size(); ++i) {
    const auto a = values_of(first.cells[i].metrics.front());
    const auto b = values_of(again.cells[i].metrics.front());
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t t = 0; t < a.size(); ++t)
      EXPECT_EQ(a[t], b[t]) << first.cells[i].method << " K=" << first.cells[i].shots;
  }
}

TEST(EvalColdStart, ThreadsChangeNoNumber) {
  // Episodes run on 3 workers and are added up in episode order: every number equals the
  // 1-thread evaluation's to the last bit. Only the time and the pretrain baseline's source
  // (trained by the first evaluation, reused here) differ.
  auto o = small_grid(trained_run().run_dir);
  o.threads = 3;
  json a = ml::eval::to_json(first_result()), b = ml::eval::to_json(ml::eval::run_cold_start(o));
  for (json* j : {&a, &b}) {
    j->erase("seconds");
    (*j)["pretrain"].erase("source");
  }
  EXPECT_EQ(a, b) << json::diff(a, b).dump();
}

TEST(EvalColdStart, JsonAndTableCarryTheCells) {
  const auto& r = first_result();
  TempDir dir;
  ml::eval::write_json(r, dir.file("eval.json"));
  std::ifstream in(dir.file("eval.json"));
  const json j = json::parse(in);
  EXPECT_EQ(j["algorithm"], "maml");
  EXPECT_EQ(j["primary_metric"], "auc");
  EXPECT_EQ(j["grid"]["shots"], json({1, 3, 6}));
  ASSERT_EQ(j["cells"].size(), r.cells.size());
  for (std::size_t i = 0; i < r.cells.size(); ++i) {
    const json& c = j["cells"][i];
    const auto& cell = r.cells[i];
    EXPECT_EQ(c["method"], cell.method);
    EXPECT_EQ(c["shots"], cell.shots);
    EXPECT_EQ(c["steps"], cell.steps);
    const auto& auc = cell.metric("auc")->interval;
    EXPECT_DOUBLE_EQ(c["metrics"]["auc"]["mean"].get<double>(), auc.mean);
    EXPECT_EQ(c["metrics"]["auc"]["n"], auc.n);
    EXPECT_EQ(c["metrics"]["auc"]["per_task"].size(), r.tasks_at(cell.shots)->evaluated.size());
    EXPECT_EQ(c["chosen"], r.chosen(cell));
    if (!cell.comparisons.empty()) {
      EXPECT_TRUE(
          c["paired_difference_vs_chosen_baseline"][cell.comparisons[0].baseline].contains("auc"));
    }
  }
  EXPECT_EQ(j["verdicts"].size(), r.shots.size());
  EXPECT_EQ(j["choices"].size(), r.choices.size());
  EXPECT_EQ(j["method_info"].size(), r.methods.size());
  const std::string table = ml::eval::format_table(r);
  for (const char* s : {"maml", "pretrain_head", "linear_probe", "scratch", "vs chosen baseline",
                        "AUC", "Chosen on validation tasks", "Exploration", "chosen on"})
    EXPECT_NE(table.find(s), std::string::npos) << s << "\n" << table;
}

TEST(EvalColdStart, RankingMetricsTheQueryCompositionFixesAreMarked) {
  // The default ranking lists are a user's query rows when they hold both classes: such a list
  // fixes P@5 (at R / 5) exactly when it has at most 5 rows, and never fixes NDCG@5 or MRR@5
  // (two rows or more, not all relevant). Re-draw eval's episodes and check the marks.
  const auto& r = first_result();
  const auto& run = trained_run();
  auto data = ml::pipeline::prepare_run_data(run.config);
  bool any_fixed = false;
  for (int k : r.shots) {
    ml::tasks::EpisodeShape shape = ml::tasks::episode_shape(run.config.task);
    shape.support = k;
    const ml::tasks::EpisodeSampler sampler(data->tasks.kind, shape, run.config.seed);
    bool any_list = false, all_short = true;
    for (const auto& name : r.tasks_at(k)->evaluated)
      for (int e = 0; e < r.episodes; ++e) {
        const auto episode = sampler.sample(
            *data->tasks.find(name), ml::eval::kEvalEpisodeBase + static_cast<std::uint64_t>(e));
        std::map<std::int32_t, std::pair<int, int>> rows;  // per user: positives, negatives
        for (std::size_t i : episode.query) {
          const auto& x = episode.task->examples[i];
          (x.label > 0.5f ? rows[x.user].first : rows[x.user].second)++;
        }
        for (const auto& [user, count] : rows) {
          if (count.first == 0 || count.second == 0) continue;
          any_list = true;
          all_short = all_short && count.first + count.second <= 5;
        }
      }
    EXPECT_EQ(r.fixed_by_query("precision@5", k), any_list && all_short) << "K=" << k;
    EXPECT_FALSE(r.fixed_by_query("ndcg@5", k));
    EXPECT_FALSE(r.fixed_by_query("mrr@5", k));
    EXPECT_FALSE(r.fixed_by_query("auc", k));
    if (!r.fixed_by_query("precision@5", k)) continue;
    any_fixed = true;
    // Fixed means no scoring changes it: every method at every step count has the same values.
    // (A task without a list has no value, NaN, for every method alike.)
    std::vector<double> reference;
    for (const auto& c : r.cells)
      if (c.shots == k && reference.empty()) reference = values_of(*c.metric("precision@5"));
    for (const auto& c : r.cells) {
      if (c.shots != k) continue;
      const auto v = values_of(*c.metric("precision@5"));
      ASSERT_EQ(v.size(), reference.size());
      for (std::size_t t = 0; t < v.size(); ++t)
        EXPECT_TRUE(v[t] == reference[t] || (std::isnan(v[t]) && std::isnan(reference[t])))
            << c.method << " task " << t << ": " << v[t] << " vs " << reference[t];
    }
  }
  bool fixed_everywhere = true;
  for (int k : r.shots) fixed_everywhere = fixed_everywhere && r.fixed_by_query("precision@5", k);
  for (const auto& m : r.metrics)
    EXPECT_EQ(m.fixed_by_query, m.name == "precision@5" && fixed_everywhere) << m.name;
  if (any_fixed) {
    EXPECT_NE(ml::eval::format_table(r).find("P@5 is fixed by the query composition"),
              std::string::npos);
  }

  // Dropped tasks are counted by their own causes.
  int dropped = 0;
  for (const auto& [cause, n] : r.run.dropped_by_cause) {
    int tasks = 0;
    for (const auto& t : data->tasks.tasks)
      tasks += t.role == ml::tasks::TaskRole::kDropped && t.drop_cause == cause;
    EXPECT_EQ(n, tasks) << ml::enum_name(cause);
    dropped += n;
  }
  EXPECT_EQ(dropped, r.run.dropped_tasks);
}

TEST(EvalStepOutputs, MatchAdaptedOutputsForEveryAlgorithm) {
  const auto& run = trained_run();
  auto data = ml::pipeline::prepare_run_data(run.config);
  const auto tasks = data->tasks.with_role(ml::tasks::TaskRole::kNew);
  ASSERT_FALSE(tasks.empty());
  ml::tasks::EpisodeSampler sampler(data->tasks.kind, ml::tasks::episode_shape(run.config.task),
                                    run.config.seed);
  const auto episode = sampler.sample(*tasks.front(), 0);
  const auto batch = ml::meta::make_task_batch(data->features, data->encoder, episode, torch::kCPU);
  const std::vector<int> steps{3, 0, 1, 3};
  for (const char* algorithm : {"maml", "anil", "reptile", "metasgd", "protonet", "scratch"}) {
    json j;
    to_json(j, run.config);
    j["meta"]["algorithm"] = algorithm;
    const auto config = ml::config::config_from_json(j);
    auto learner = ml::run::build_learner(config, data->features, torch::kCPU);
    if (std::string(algorithm) == "metasgd") {  // learned rates differ per weight
      torch::NoGradGuard no_grad;
      for (auto& lr : learner->inner_learning_rates()) lr.mul_(torch::rand_like(lr) + 0.5);
    }
    const auto outs = learner->outputs_at_steps(batch.support, batch.query, steps);
    ASSERT_EQ(outs.size(), steps.size());
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const auto expected = learner->adapted_outputs(batch.support, batch.query, steps[i]);
      EXPECT_TRUE(torch::equal(outs[i], expected)) << algorithm << " at " << steps[i] << " steps";
    }
    if (std::string(algorithm) != "protonet") {  // adaptation moves the outputs
      EXPECT_FALSE(torch::equal(outs[0], outs[1])) << algorithm;
    }
  }
}

TEST(EvalErrors, TypedErrorsForUserMistakes) {
  const auto& run = trained_run();
  auto o = small_grid(run.run_dir);
  o.checkpoint = run.run_dir + "/nowhere";
  EXPECT_THROW(ml::eval::run_cold_start(o), ml::CheckpointError);

  o = small_grid(run.run_dir);
  o.shots = {4000, 5000};
  try {
    ml::eval::run_cold_start(o);
    ADD_FAILURE() << "no DataError for shots larger than every task";
  } catch (const ml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("4000,5000"), std::string::npos) << e.what();
  }

  o = small_grid(run.run_dir);
  o.methods = {"maml", "fancy"};
  EXPECT_THROW(ml::eval::run_cold_start(o), ml::UsageError);
  o = small_grid(run.run_dir);
  o.steps = {-1};
  EXPECT_THROW(ml::eval::run_cold_start(o), ml::UsageError);
  o = small_grid(run.run_dir);
  o.pretrain = false;
  o.methods = {"pretrain"};
  EXPECT_THROW(ml::eval::run_cold_start(o), ml::UsageError);

  if (!ml::runtime::resolve_device("auto").cuda) {
    o = small_grid(run.run_dir);
    o.device = "cuda";
    EXPECT_THROW(ml::eval::run_cold_start(o), ml::DeviceError);
  }
}

// Values no evaluation can use are refused before any work, naming the option and the bounds:
// a K whose support + query overflows, a million steps or episodes, a learning rate a float
// cannot hold (it used to end in torch's "cannot be converted to type float").
TEST(EvalErrors, OutOfRangeGridValuesAreUsageErrorsNamingTheBounds) {
  const auto& run = trained_run();
  struct Case {
    std::function<void(ml::eval::ColdStartOptions&)> set;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](auto& o) { o.shots = {2147483647}; }, "--shots 2147483647: must be from 1 to 1000000"},
      {[](auto& o) { o.steps = {1000001}; }, "--steps 1000001: must be from 0 to 1000000"},
      {[](auto& o) { o.episodes = 1000001; }, "--episodes 1000001: must be from 1 to 1000000"},
      {[](auto& o) { o.inner_lrs = {1e300}; }, "--inner-lrs 1e+300: a learning rate must be"},
      {[](auto& o) { o.baseline_lrs = {1e-320}; }, "--baseline-lrs"},
      {[](auto& o) { o.inner_lrs = {NAN}; }, "--inner-lrs nan"},
  };
  for (const auto& c : cases) {
    auto o = small_grid(run.run_dir);
    c.set(o);
    try {
      ml::eval::run_cold_start(o);
      ADD_FAILURE() << "no UsageError; expected " << c.expected;
    } catch (const ml::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
    }
  }
}

// --checkpoint arguments: NAME=PATH spelled wrong, one run given twice under any spelling, and
// a folder holding runs are refused in words that say what to give instead.
TEST(EvalErrors, CheckpointArgumentsAreCheckedBeforeLoading) {
  const auto& run = trained_run();
  const std::string best = run.run_dir + "/checkpoints/best.mlckpt";
  const std::vector<std::pair<std::vector<std::string>, std::string>> usage = {
      {{""}, "an empty value"},
      {{"=" + run.run_dir}, "no NAME before '='"},
      {{"x="}, "no PATH after '='"},
      {{"my run=" + run.run_dir}, "NAME 'my run' may hold only letters"},
      {{run.run_dir, run.run_dir}, "are the same run"},
      {{"a=" + run.run_dir, "b=" + best}, "are the same run"},
  };
  for (const auto& [arguments, expected] : usage) {
    auto o = small_grid(arguments.front());
    o.compare.assign(arguments.begin() + 1, arguments.end());
    try {
      ml::eval::run_cold_start(o);
      ADD_FAILURE() << "no UsageError; expected " << expected;
    } catch (const ml::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
  TempDir dir;
  for (const char* name : {"b_run", "a_run"})
    fs::create_directories(dir.path() / name / "checkpoints");
  fs::create_directories(dir.path() / "not_a_run");
  try {
    ml::eval::run_cold_start(small_grid(dir.path().string()));
    ADD_FAILURE() << "no CheckpointError for a folder of runs";
  } catch (const ml::CheckpointError& e) {
    const std::string a = (dir.path() / "a_run").string(), b = (dir.path() / "b_run").string();
    EXPECT_NE(std::string(e.what()).find("is a folder of runs, not a run: name the runs, e.g. "
                                         "--checkpoint " +
                                         a + "," + b),
              std::string::npos)
        << e.what();
  }
}

// Two inner lrs that print alike at 6 digits are two methods with two names, each with its
// own cells (they used to share a name, and every lookup found the first one's cells).
TEST(EvalColdStart, InnerLearningRatesThatPrintAlikeStillGetTheirOwnNames) {
  auto o = small_grid(trained_run().run_dir);
  o.inner_lrs = {0.3, 0.3000001};
  o.methods = {"maml"};
  o.pretrain = false;
  o.shots = {3};
  o.steps = {1};
  o.episodes = 1;
  const auto r = ml::eval::run_cold_start(o);
  ASSERT_EQ(r.methods.size(), 2u);
  EXPECT_EQ(r.methods[0], "maml lr=0.3");
  EXPECT_EQ(r.methods[1], "maml lr=0.3000001");
  EXPECT_EQ(r.method("maml lr=0.3000001")->inner_lr, 0.3000001);
}

TEST(EvalColdStart, NoPretrainLeavesTheBaselineOut) {
  auto o = small_grid(trained_run().run_dir);
  o.pretrain = false;
  o.shots = {2};
  o.steps = {0, 2};
  o.episodes = 2;
  const auto r = ml::eval::run_cold_start(o);
  EXPECT_EQ(r.methods, (std::vector<std::string>{"maml", "scratch"}));
  EXPECT_EQ(r.cells.size(), 4u);
  // Scratch is the only baseline, so the one chosen and the one every cell is paired with.
  const auto& v = r.verdicts.at(0);
  EXPECT_EQ(v.against_method, "scratch") << v.text;
  for (const auto& c : r.cells) {
    EXPECT_EQ(c.comparison("pretrain", "auc"), nullptr);
    if (c.method == "maml") {
      EXPECT_NE(c.comparison("scratch", "auc"), nullptr);
    }
  }
}

TEST(EvalColdStart, PretrainBaselineGetsTheRunsBudget) {
  TempDir dir;
  // A run stopped early: the baseline trained for it stops at the same iteration.
  const std::string stopped = trained_run().train_variant(dir.file("stopped"), json::object(), 7);
  auto o = small_grid(stopped);
  o.methods = {"pretrain"};
  o.shots = {3};
  o.steps = {0};
  o.episodes = 1;
  const auto r = ml::eval::run_cold_start(o);
  EXPECT_EQ(r.methods, (std::vector<std::string>{"pretrain"}));
  EXPECT_EQ(r.pretrain_source, "trained");
  const auto meta =
      ml::run::read_checkpoint_meta(stopped + "/baselines/pretrain/checkpoints/latest.mlckpt");
  EXPECT_EQ(meta.progress.value("iteration", -1), 7);
  EXPECT_EQ(meta.config["meta"]["algorithm"], "pretrain");
  EXPECT_EQ(meta.config["meta"]["iterations"], 30);

  // A run that is itself pretrain is not duplicated: it is the pretrain method.
  const std::string own =
      trained_run().train_variant(dir.file("own"), {{"meta", {{"algorithm", "pretrain"}}}});
  o = small_grid(own);
  o.steps = {0};
  o.episodes = 1;
  const auto p = ml::eval::run_cold_start(o);
  EXPECT_EQ(p.methods.size(), 1u + 1u + 4u + 1u);  // pretrain, its head, 4 probes, scratch
  EXPECT_EQ(p.methods.front(), "pretrain");
  EXPECT_TRUE(p.method("pretrain")->baseline);
  EXPECT_EQ(p.pretrain_source, "run");
  EXPECT_FALSE(fs::exists(own + "/baselines"));  // the families on pretrain use the run itself
  for (const auto& v : p.verdicts) {  // baselines only: nothing to compare a meta-learner with
    EXPECT_TRUE(v.compared_method.empty()) << v.text;
    EXPECT_NE(v.text.find("no meta-learner to compare"), std::string::npos) << v.text;
  }
}

TEST(EvalColdStart, RegressionAndMulticlassRunsUseTheirMetrics) {
  TempDir dir;
  // The shown price as a regression target: lower RMSE is better, and the verdict must know it.
  const std::string regression = trained_run().train_variant(
      dir.file("regression"), {{"task", {{"label", {{"kind", "regression"}, {"target", "price"}}}}},
                               {"meta", {{"iterations", 5}}}});
  auto o = small_grid(regression);
  o.steps = {0, 2};
  o.episodes = 2;
  o.pretrain = false;
  const auto r = ml::eval::run_cold_start(o);
  EXPECT_EQ(r.label_kind, "regression");
  ASSERT_EQ(r.metrics.size(), 2u);
  EXPECT_EQ(r.metrics[0].name, "rmse");
  EXPECT_FALSE(r.metrics[0].higher_is_better);
  // Chosen by the lowest validation RMSE.
  for (const auto& ch : r.choices)
    for (const auto& c : r.validation_cells)
      if (c.shots == ch.shots && r.method(c.method)->family == ch.family &&
          c.diverged_episodes == 0) {
        EXPECT_GE(c.metrics.front().interval.mean, ch.validation.mean) << c.method;
      }
  EXPECT_NE(ml::eval::format_table(r).find("RMSE (lower is better)"), std::string::npos);

  // The event type as a 3-way class (view / cart / purchase), with prototypical networks.
  const std::string multiclass = trained_run().train_variant(
      dir.file("multiclass"),
      {{"task",
        {{"label", {{"kind", "multiclass"}, {"class_column", "event"}, {"ways", 3}}},
         {"support", 2},
         {"query", 4}}},
       {"meta", {{"algorithm", "protonet"}, {"iterations", 5}}}});
  o = small_grid(multiclass);
  o.shots = {1, 2};
  o.steps = {0, 1};
  o.episodes = 2;
  o.methods = {"protonet", "nearest_class_mean", "linear_probe", "scratch"};
  const auto m = ml::eval::run_cold_start(o);
  EXPECT_EQ(m.label_kind, "multiclass");
  ASSERT_EQ(m.metrics.size(), 1u);
  EXPECT_EQ(m.metrics[0].name, "accuracy");
  for (int k : m.shots) {  // prototypes take no steps: the same outputs at every step count
    const auto a = values_of(m.cell("protonet", k, 0)->metrics[0]);
    EXPECT_EQ(a, values_of(m.cell("protonet", k, 1)->metrics[0]));
    for (double x : a) EXPECT_TRUE(std::isnan(x) || (x >= 0 && x <= 1)) << x;
    for (const char* probe : {"nearest_class_mean", "linear_probe l2=1"}) {
      const auto* c = m.cell(probe, k, 1);
      ASSERT_NE(c, nullptr) << probe;
      EXPECT_GT(c->metrics[0].interval.n, 0u) << probe;
      EXPECT_EQ(values_of(c->metrics[0]), values_of(m.cell(probe, k, 0)->metrics[0])) << probe;
    }
  }
}

// ---- through the binary ---------------------------------------------------------------------

TEST(EvalCli, MissingCheckpointIsOneLineWithExitCode5) {
  TempDir dir;
  Result r = run_binary("eval --checkpoint " + q(dir.file("no-such-run")));
  EXPECT_EQ(r.code, static_cast<int>(ml::ExitCode::kCheckpoint)) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("metalearn eval: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no-such-run"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;

  // A report name its .md and .json siblings would overwrite fails before any work.
  r = run_binary("eval --checkpoint " + q(dir.file("no-such-run")) + " --report " +
                 q(dir.file("r.md")));
  EXPECT_EQ(r.code, static_cast<int>(ml::ExitCode::kUsage)) << r.err;
  EXPECT_NE(r.err.find("--report"), std::string::npos) << r.err;
}

TEST(EvalCli, JsonOnStdoutAndInAFile) {
  const auto& run = trained_run();
  first_result();  // the pretrain baseline exists, so the binary reuses it
  TempDir dir;
  Result r = run_binary("--log-level warn eval --checkpoint " + q(run.run_dir) +
                        " --shots 2 --steps 0,1 --episodes 2 --threads 1 --device cpu --json "
                        "--json-out " +
                        q(dir.file("eval.json")));
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);  // stdout holds only the JSON
  // maml at the run's lr / 3, x 1, x 3 (0.1, 0.3, 0.9: train's adaptation grid), pretrain and
  // pretrain_head at three lrs each (0.01, 0.1 and the run's 0.3), linear_probe at four
  // penalties, scratch; two step counts.
  EXPECT_EQ(j["grid"]["methods"].size(), 14u);
  EXPECT_EQ(j["grid"]["methods"][0], "maml lr=0.1");
  EXPECT_EQ(j["grid"]["methods"][2], "maml lr=0.9");
  EXPECT_EQ(j["cells"].size(), 14u * 2u);
  EXPECT_EQ(j["pretrain"]["source"], "reused");
  std::ifstream in(dir.file("eval.json"));
  const json file = json::parse(in);
  EXPECT_EQ(file["cells"], j["cells"]);
}

// --- several runs on the same episodes, and validation tasks -------------------------------------

TEST(EvalSeveralRuns, EveryRunAndBaselineOnIdenticalEpisodes) {
  TempDir dir;
  const auto& run = trained_run();
  first_result();  // the pretrain baseline exists
  // Another algorithm with another model and feature settings: same seed, data, task and split.
  const std::string fomaml = run.train_variant(
      dir.file("fomaml"), {{"meta", {{"algorithm", "fomaml"}}}, {"model", {{"hidden", {16}}}}}, 10);
  const std::string maml2 = run.train_variant(
      dir.file("maml_more_aggregates"),
      {{"features", {{"aggregates", {"user_frequency", "item_popularity", "item_buyers"}}}}}, 10);
  auto o = small_grid(run.run_dir);
  o.compare = {fomaml, maml2};
  const auto r = ml::eval::run_cold_start(o);
  // Two maml runs are named by their folders (never by argument order); NAME=PATH names one.
  EXPECT_EQ(std::vector<std::string>(r.methods.begin(), r.methods.begin() + 5),
            (std::vector<std::string>{"run", "fomaml", "maml_more_aggregates", "pretrain",
                                      "pretrain_head"}));
  ASSERT_EQ(r.runs.size(), 3u);
  EXPECT_EQ(r.runs[1].algorithm, "fomaml");
  EXPECT_EQ(r.runs[2].method, "maml_more_aggregates");
  auto named = o;
  named.checkpoint = "base=" + run.run_dir;
  named.compare = {"more=" + maml2};
  named.shots = {3};
  named.steps = {0};
  named.episodes = 1;
  EXPECT_EQ(ml::eval::run_cold_start(named).runs[1].method, "more");
  named.compare = {"run=" + maml2};
  named.checkpoint = "run=" + run.run_dir;
  EXPECT_THROW(ml::eval::run_cold_start(named), ml::UsageError);  // one name for two runs
  EXPECT_EQ(r.pretrain_source, "reused");
  // The first run's methods give bit-identical numbers with or without the compared runs: the
  // episodes are the same ones, not just the same number of them.
  const auto& alone = first_result();
  for (const auto& m : {"maml", "pretrain", "scratch"})
    for (int k : r.shots)
      for (int st : r.steps) {
        const auto* a = alone.cell(m, k, st);
        const auto* b = r.cell(std::string(m) == "maml" ? "run" : m, k, st);
        ASSERT_TRUE(a && b);
        for (std::size_t x = 0; x < a->metrics.size(); ++x) {
          const auto va = values_of(a->metrics[x]), vb = values_of(b->metrics[x]);
          ASSERT_EQ(va.size(), vb.size());
          for (std::size_t t = 0; t < va.size(); ++t)  // NaN (no ranking list) on both sides too
            EXPECT_TRUE(va[t] == vb[t] || (std::isnan(va[t]) && std::isnan(vb[t])))
                << m << " K=" << k << " " << a->metrics[x].metric << " task " << t;
        }
      }
  // The compared runs are scored on every task and episode, paired against both baselines.
  for (const auto& m : {"fomaml", "maml_more_aggregates"})
    for (int k : r.shots) {
      const auto* cell = r.cell(m, k, 1);
      ASSERT_NE(cell, nullptr);
      for (const auto& t : cell->metric("auc")->per_task) EXPECT_EQ(t.episodes, r.episodes);
      EXPECT_FALSE(cell->comparisons.empty());
    }
  const json j = ml::eval::to_json(r);
  EXPECT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["runs"][1]["method"], "fomaml");
  // Each run with other features or another model gets its own baselines, trained with its
  // config into its own folder: a meta-learner is never compared against baselines that lack
  // its features or model.
  for (const std::string m : {"fomaml", "maml_more_aggregates"}) {
    for (const std::string& b : kBaselineFamilies) {
      const std::string family = b + "[" + m + "]";
      const auto info = std::find_if(r.method_info.begin(), r.method_info.end(),
                                     [&](const auto& i) { return i.family == family; });
      ASSERT_NE(info, r.method_info.end()) << family;
      EXPECT_TRUE(info->baseline);
    }
    const std::string run_dir = m == "fomaml" ? fomaml : maml2;
    const auto meta =
        ml::run::read_checkpoint_meta(run_dir + "/baselines/pretrain/checkpoints/latest.mlckpt");
    const json expected =
        ml::run::read_checkpoint_meta(run_dir + "/checkpoints/latest.mlckpt").config;
    EXPECT_EQ(meta.config["features"], expected["features"]) << m;
    EXPECT_EQ(meta.config["model"], expected["model"]) << m;
    EXPECT_EQ(meta.config["meta"]["algorithm"], "pretrain");
  }
  // The verdict's baseline is chosen among every group's baselines.
  for (const auto& v : r.verdicts) {
    if (v.against_method.empty()) continue;
    EXPECT_TRUE(r.method(v.against_method)->baseline) << v.text;
  }
}

TEST(EvalSeveralRuns, RunsWithOtherTasksOrDataAreRefusedNamingTheKey) {
  TempDir dir;
  const auto& run = trained_run();
  const std::string other =
      run.train_variant(dir.file("support4"), {{"task", {{"support", 4}}}}, 2);
  auto o = small_grid(run.run_dir);
  o.compare = {other};
  try {
    ml::eval::run_cold_start(o);
    ADD_FAILURE() << "no ConfigError for a run with another task.support";
  } catch (const ml::ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("task.support (6 there, 4 here)"), std::string::npos) << what;
    EXPECT_NE(what.find("must share seed, data, task and split"), std::string::npos) << what;
  }
  const std::string reseeded = run.train_variant(dir.file("seed"), {{"seed", 43}}, 2);
  o.compare = {reseeded};
  EXPECT_THROW(ml::eval::run_cold_start(o), ml::ConfigError);
}

TEST(EvalValidationTasks, EvaluatesTheValidationTasksOnly) {
  const auto& run = trained_run();
  auto o = small_grid(run.run_dir);
  o.task_role = "validation";
  o.shots = {3};
  o.steps = {0, 1};
  o.episodes = 2;
  const auto r = ml::eval::run_cold_start(o);
  EXPECT_EQ(r.task_role, "validation");
  const auto loaded = ml::run::load_run(run.run_dir, {}, "cpu");
  std::set<std::string> validation, held_out_new;
  for (const auto* t : loaded.data->tasks.with_role(ml::tasks::TaskRole::kValidation))
    validation.insert(t->name);
  for (const auto* t : loaded.data->tasks.with_role(ml::tasks::TaskRole::kNew))
    held_out_new.insert(t->name);
  ASSERT_FALSE(validation.empty());
  EXPECT_EQ(r.new_tasks, static_cast<int>(validation.size()));
  const auto* at3 = r.tasks_at(3);
  ASSERT_NE(at3, nullptr);
  for (const auto& name : at3->evaluated) {
    EXPECT_EQ(validation.count(name), 1u) << name;
    EXPECT_EQ(held_out_new.count(name), 0u) << name;
  }
  EXPECT_EQ(ml::eval::to_json(r)["task_role"], "validation");
  // Exploring validation tasks chooses (on them) but gives no verdict.
  EXPECT_FALSE(r.choices.empty());
  for (const auto& v : r.verdicts) {
    EXPECT_TRUE(v.compared_method.empty()) << v.text;
    EXPECT_NE(v.text.find("no verdict"), std::string::npos) << v.text;
  }

  o.task_role = "test";
  EXPECT_THROW(ml::eval::run_cold_start(o), ml::UsageError);
}

TEST(EvalCli, SeveralCheckpointsValidationTasksAndClearRefusals) {
  const auto& run = trained_run();
  first_result();
  TempDir dir;
  const std::string other = run.train_variant(dir.file("query5"), {{"task", {{"query", 5}}}}, 2);
  const std::string reptile =
      run.train_variant(dir.file("reptile"), {{"meta", {{"algorithm", "reptile"}}}}, 2);
  auto results = ml::testing::run_cli_many(
      {"--log-level warn eval --checkpoint " + q(run.run_dir) + " --checkpoint " + q(other) +
           " --threads 1 --device cpu",
       "--log-level warn eval --checkpoint " + q(run.run_dir) + "," + q(reptile) +
           " --tasks validation --shots 2 --steps 0 --episodes 1 --inner-lrs 0.3 --threads 1 "
           "--device cpu --json",
       "--log-level warn eval --checkpoint " + q(run.run_dir) + " --tasks tests"});
  EXPECT_EQ(results[0].code, 3) << results[0].err;
  EXPECT_EQ(results[0].err_lines(), 1) << results[0].err;
  EXPECT_NE(results[0].err.find("task.query (10 there, 5 here)"), std::string::npos)
      << results[0].err;
  ASSERT_EQ(results[1].code, 0) << results[1].err;
  const json j = json::parse(results[1].out);
  EXPECT_EQ(j["task_role"], "validation");
  EXPECT_EQ(j["grid"]["methods"][0], "maml");
  EXPECT_EQ(j["grid"]["methods"][1], "reptile");
  EXPECT_NE(results[2].code, 0);
  EXPECT_EQ(results[2].err_lines(), 1) << results[2].err;
  EXPECT_NE(results[2].err.find("--tasks tests: must be new or validation"), std::string::npos)
      << results[2].err;
}

// Each bad value is one line naming the option, with its exit code, before any work: empty list
// values (CLI11 reads "" as 0), adapt's "all" where eval's grid is K-shot, empty file names.
// A K no task can give is one line too: the per-K warnings are not printed before the error.
TEST(EvalCli, BadOptionValuesAreOneLineNamingTheOption) {
  const auto& run = trained_run();
  TempDir dir;
  const std::string eval = "--log-level warn eval --checkpoint " + q(run.run_dir) +
                           " --threads 1 --device cpu --no-pretrain --episodes 1 ";
  struct Case {
    std::string options, message;
    int code;
  };
  const std::vector<Case> cases = {
      {"--shots ''", "--shots: an empty value", 2},
      {"--shots all", "--shots: \"all\" is adapt's", 2},
      {"--json-out ''", "--json-out: an empty value", 2},
      {"--json-out " + q(dir.path().string()), "it is a folder", 9},
      {"--shots 4000", "no new task can give an episode for --shots 4000", 4},
  };
  std::vector<std::string> args;
  for (const auto& c : cases) args.push_back(eval + c.options);
  const auto results = ml::testing::run_cli_many(args);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Result& r = results[i];
    EXPECT_EQ(r.code, cases[i].code) << cases[i].options << ": " << r.err;
    EXPECT_EQ(r.err_lines(), 1) << cases[i].options << ": " << r.err;
    EXPECT_NE(r.err.find(cases[i].message), std::string::npos) << cases[i].options << ": " << r.err;
  }
}

TEST(QueryMetrics, OneCalculationForEvalAndAdapt) {
  const torch::Tensor logits = torch::tensor({2.0f, -1.0f, 0.5f, -3.0f}).unsqueeze(1);
  const torch::Tensor labels = torch::tensor({1.0f, 0.0f, 1.0f, 0.0f});
  const auto binary = ml::models::query_metrics(logits, labels, ml::tasks::LabelKind::kBinary);
  EXPECT_DOUBLE_EQ(binary.auc, 1.0);
  EXPECT_DOUBLE_EQ(binary.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(binary.log_loss, ml::metrics::log_loss_from_logits({2.0f, -1.0f, 0.5f, -3.0f},
                                                                      {1.0f, 0.0f, 1.0f, 0.0f}));
  EXPECT_TRUE(std::isnan(binary.rmse));
  const auto regression =
      ml::models::query_metrics(logits, labels, ml::tasks::LabelKind::kRegression);
  EXPECT_NEAR(regression.mae, (1.0 + 1.0 + 0.5 + 3.0) / 4, 1e-6);
  EXPECT_TRUE(std::isnan(regression.auc));
  // Multiclass: argmax of each row against the class ids.
  const torch::Tensor scores = torch::tensor({{0.1f, 0.9f}, {0.8f, 0.2f}, {0.3f, 0.7f}});
  const auto multiclass = ml::models::query_metrics(scores, torch::tensor({1, 0, 0}),
                                                    ml::tasks::LabelKind::kMulticlass);
  EXPECT_NEAR(multiclass.accuracy, 2.0 / 3.0, 1e-9);
  const auto empty = ml::models::query_metrics(torch::zeros({0, 1}), torch::zeros({0}),
                                               ml::tasks::LabelKind::kBinary);
  EXPECT_TRUE(std::isnan(empty.auc));
}

}  // namespace
