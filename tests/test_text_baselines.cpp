// The honest baselines of text runs and the many-way evaluation: pretrain as supervised
// training over all training classes (a joint head, global class ids carried through the
// episodes), eval training it into RUN/baselines/pretrain and scoring the baselines on its
// encoder, and the all-new-classes task, every setting chosen on the validation classes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "config/config.hpp"
#include "eval/text_eval.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

namespace {

using ml::config::Json;

// Eight intents of nine distinct texts, each intent with a word of its own; "lost" and "fee"
// are new, "pin" and "refund" validation, the other four train.
const char* const kIntents[] = {"card", "topup", "cash", "limit", "refund", "pin", "fee", "lost"};

std::string intents_csv(const std::string& new_word = "") {
  std::string csv = "text,category\n";
  for (const char* intent : kIntents)
    for (int i = 0; i < 9; ++i) {
      const bool renamed = !new_word.empty() && std::string(intent) == "lost";
      csv += "\"my " + std::string(renamed ? new_word : intent) + " question " + std::to_string(i) +
             " please " + std::to_string(i * 7 % 5) + (renamed ? " again" : "") + "\"," + intent +
             "\n";
    }
  return csv;
}

ml::config::Config eight_intents(const ml::testing::TempDir& dir, const std::string& run,
                                 const std::string& algorithm) {
  ml::testing::write_file(dir.file("intents.csv"), intents_csv());
  Json j = Json::parse(R"({
    "data": {"text": {"column": "text", "class_column": "category"}},
    "task": {"label": {"kind": "multiclass", "ways": 2}, "support": 2, "query": 3},
    "model": {"type": "transformer",
              "transformer": {"dim": 16, "heads": 2, "layers": 1, "ff_dim": 24, "max_len": 10}},
    "features": {"tokenizer": {"vocab_size": 60, "hash_buckets": 16}},
    "split": {"new_classes": ["lost", "fee"], "validation_classes": ["pin", "refund"]},
    "meta": {"iterations": 6, "meta_batch": 2, "inner_steps": 1, "adapt_steps": 1},
    "train": {"validate_every": 3, "checkpoint_every": 3, "validation_episodes": 2},
    "run": {"threads": 1}
  })");
  j["data"]["files"] = {dir.file("intents.csv")};
  j["meta"]["algorithm"] = algorithm;
  j["run"]["dir"] = dir.file(run);
  return ml::config::config_from_json(j);
}

TEST(TextPretrain, EpisodesCarryEachClassesRowOfTheJointHead) {
  ml::testing::TempDir dir;
  const auto config = eight_intents(dir, "run", "pretrain");
  const auto data = ml::pipeline::prepare_text_run_data(config);
  ASSERT_EQ(data->split.train.size(), 4u);
  EXPECT_EQ(ml::pipeline::text_head_outputs(config, data->split), 4);
  auto maml = config;
  maml.meta.algorithm = ml::config::Algorithm::kMaml;
  EXPECT_EQ(ml::pipeline::text_head_outputs(maml, data->split), 2);
  for (std::uint64_t e = 0; e < 5; ++e) {
    const auto episode = data->sampler(ml::tasks::ClassSplitPart::kTrain).sample(e);
    const auto batch = ml::pipeline::make_text_task_batch(*data, episode, torch::kCPU);
    ASSERT_EQ(batch.classes.size(0), 2);
    for (std::size_t i = 0; i < episode.classes.size(); ++i) {
      // The row names the class: the training class at that row is the episode's class i.
      const auto row = batch.classes[static_cast<std::int64_t>(i)].item<std::int64_t>();
      ASSERT_GE(row, 0);
      EXPECT_EQ(data->split.train[static_cast<std::size_t>(row)], episode.classes[i]);
    }
  }
  // Classes outside the training split have no row.
  const auto held_out = ml::pipeline::make_text_task_batch(
      *data, data->sampler(ml::tasks::ClassSplitPart::kNew).sample(0), torch::kCPU);
  EXPECT_TRUE(held_out.classes.eq(-1).all().item<bool>());
  // The joint head has a row per training class, and refuses an episode of other classes.
  auto learner = ml::run::build_text_learner(config, *data, torch::kCPU);
  EXPECT_EQ(learner->model()->outputs(), 4);
  try {
    learner->accumulate_meta_gradient({held_out});
    ADD_FAILURE() << "pretrain trained on new classes";
  } catch (const ml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("outside the 4 training classes"), std::string::npos)
        << e.what();
  }
}

TEST(TextPretrain, TheJointLossFallsAndTrainingSelectsByNearestClassMean) {
  ml::testing::TempDir dir;
  auto config = eight_intents(dir, "run", "pretrain");
  const auto data = ml::pipeline::prepare_text_run_data(config);
  auto learner = ml::run::build_text_learner(config, *data, torch::kCPU);
  std::vector<ml::meta::TaskBatch> batches;
  for (std::uint64_t e = 0; e < 4; ++e)
    batches.push_back(ml::pipeline::make_text_task_batch(
        *data, data->sampler(ml::tasks::ClassSplitPart::kTrain).sample(e), torch::kCPU));
  torch::optim::Adam adam(learner->meta_parameters(), torch::optim::AdamOptions(0.01));
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    adam.zero_grad();
    last = learner->accumulate_meta_gradient(batches);
    if (step == 0) first = last;
    adam.step();
  }
  // Cross-entropy over 4 classes starts near log 4; the same texts are learned.
  EXPECT_NEAR(first, std::log(4.0), 0.5);
  EXPECT_LT(last, 0.5 * first);
  // Trained by the trainer: its validation scores nearest-class-mean accuracy on the validation
  // classes' 2-way episodes (the joint head has no row for them).
  const auto summary = ml::train::run_training(config, {});
  EXPECT_EQ(summary.iterations, 6);
  EXPECT_GE(summary.best_iteration, 3);
  EXPECT_GE(summary.best_validation, 0.0);
  EXPECT_LE(summary.best_validation, 1.0);
}

ml::eval::TextEvalOptions small_eval(const std::string& checkpoint) {
  ml::eval::TextEvalOptions o;
  o.checkpoint = checkpoint;
  o.shots = {1};
  o.steps = {0, 2};
  o.episodes = 4;
  o.baseline_lrs = {0.1};
  o.many_way_shots = {2};
  o.many_way_draws = 2;
  o.device = "cpu";
  o.threads = 1;
  return o;
}

const ml::eval::TextMethodScore* find(const std::vector<ml::eval::TextMethodScore>& scores,
                                      const std::string& method) {
  for (const auto& s : scores)
    if (s.method == method) return &s;
  return nullptr;
}

TEST(TextEvalBaselines, TrainsThePretrainBaselineAndScoresEveryMethodNWayAndManyWay) {
  ml::testing::TempDir dir;
  const auto config = eight_intents(dir, "run", "maml");
  ml::train::run_training(config, {});
  const auto o = small_eval(config.run.dir);
  const auto result = ml::eval::evaluate_text_run(o);
  EXPECT_EQ(result.pretrain_source, "trained");
  const ml::run::RunLayout baseline(ml::run::RunLayout(config.run.dir).pretrain_baseline());
  EXPECT_TRUE(std::filesystem::exists(baseline.best_checkpoint()));
  EXPECT_EQ(result.pretrain_checkpoint, baseline.best_checkpoint().string());
  const std::vector<std::string> methods = {
      "maml",          "nearest_class_mean[maml]", "linear_probe[maml]", "pretrain",
      "pretrain_head", "nearest_class_mean",       "linear_probe"};
  ASSERT_EQ(result.scores.size(), methods.size());
  ASSERT_EQ(result.many_way.size(), 1u);
  const auto& many = result.many_way[0];
  EXPECT_EQ(many.skipped, "");
  EXPECT_EQ(many.classes, 2);
  EXPECT_EQ(many.validation_classes, 2);
  // Every other text of the two new classes is a query: 2 x (9 - 2).
  EXPECT_EQ(many.queries, 14);
  ASSERT_EQ(many.scores.size(), methods.size());
  for (const auto* scores : {&result.scores, &many.scores})
    for (std::size_t i = 0; i < methods.size(); ++i) {
      const auto& s = (*scores)[i];
      EXPECT_EQ(s.method, methods[i]);
      EXPECT_GE(s.accuracy.mean, 0.0);
      EXPECT_LE(s.accuracy.mean, 1.0);
      EXPECT_GT(s.validation.n, 0u) << s.method;
      EXPECT_EQ(s.compared, i > 0);
      if (s.compared) {
        // Paired by episode or draw: the mean difference is the difference of the means.
        EXPECT_NEAR(s.run_minus_this.mean, (*scores)[0].accuracy.mean - s.accuracy.mean, 1e-12);
      }
    }
  EXPECT_EQ(many.scores[0].accuracy.n, 2u);  // over the draws
  // Fine-tuning is chosen from 0 steps (the prototype head) and lr {0.1, meta.inner_lr 0.3} x
  // steps {2}.
  for (const char* family : {"pretrain", "pretrain_head"}) {
    const std::string setting = find(result.scores, family)->setting;
    EXPECT_TRUE(setting == "0 steps" || setting == "lr 0.1, 2 steps" ||
                setting == "lr 0.3, 2 steps")
        << family << ": " << setting;
  }
  // On all new classes at once maml chose among what adapt chooses among: 0 steps, or 2 steps
  // at meta.inner_lr 0.3 or a tenth of it (eval/class_adaptation_choice.hpp).
  const std::string many_setting = many.scores[0].setting;
  EXPECT_TRUE(many_setting == "0 steps" || many_setting == "2 steps, lr 0.3" ||
              many_setting == "2 steps, lr 0.03")
      << many_setting;
  EXPECT_EQ(result.scores[0].setting.find("lr"), std::string::npos) << result.scores[0].setting;
  const Json j = ml::eval::to_json(result);
  EXPECT_EQ(j["many_way"]["shots"][0]["classes"], 2);
  EXPECT_EQ(j["pretrain"]["source"], "trained");
  const std::string table = ml::eval::format_table(result);
  EXPECT_NE(table.find("all 2 new classes at once"), std::string::npos) << table;
  // The next eval reuses the baseline; --no-pretrain leaves its methods out.
  auto again = o;
  again.many_way_shots = {};
  EXPECT_EQ(ml::eval::evaluate_text_run(again).pretrain_source, "reused");
  again.pretrain = false;
  const auto without = ml::eval::evaluate_text_run(again);
  EXPECT_EQ(without.scores.size(), 3u);
  EXPECT_EQ(without.pretrain_source, "");
  // K = 9 leaves no query text in any new class: the many-way task says why it is skipped.
  again.many_way_shots = {9};
  const auto skipped = ml::eval::evaluate_text_run(again);
  ASSERT_EQ(skipped.many_way.size(), 1u);
  EXPECT_NE(skipped.many_way[0].skipped.find("0 new classes with 10 distinct texts"),
            std::string::npos)
      << skipped.many_way[0].skipped;
}

TEST(TextEvalBaselines, SettingsAreChosenOnTheValidationClassesAlone) {
  ml::testing::TempDir dir;
  const auto config = eight_intents(dir, "run", "maml");
  ml::train::run_training(config, {});
  auto o = small_eval(config.run.dir);
  o.pretrain = false;
  const auto before = ml::eval::evaluate_text_run(o);
  // A new class's texts change to read like the other new class's: what was measured on the
  // validation classes, and so every choice, stays bit for bit; the new classes' scores move.
  ml::testing::write_file(dir.file("intents.csv"), intents_csv("fee"));
  const auto after = ml::eval::evaluate_text_run(o);
  bool moved = false;
  for (const auto* pair : {&before.scores, &before.many_way[0].scores}) {
    const auto& other = pair == &before.scores ? after.scores : after.many_way[0].scores;
    ASSERT_EQ(pair->size(), other.size());
    for (std::size_t i = 0; i < pair->size(); ++i) {
      EXPECT_EQ((*pair)[i].validation.mean, other[i].validation.mean) << (*pair)[i].method;
      EXPECT_EQ((*pair)[i].setting, other[i].setting) << (*pair)[i].method;
      moved = moved || (*pair)[i].accuracy.mean != other[i].accuracy.mean;
    }
  }
  EXPECT_TRUE(moved) << "the new classes' texts changed, no score did";
}

TEST(TextEvalBaselines, OptionsOutOfRangeAndUnknownMethodsAreNamed) {
  ml::testing::TempDir dir;
  const auto config = eight_intents(dir, "run", "maml");
  ml::train::run_training(config, {});
  auto o = small_eval(config.run.dir);
  o.pretrain = false;
  o.many_way_draws = 1;
  EXPECT_THROW(ml::eval::evaluate_text_run(o), ml::UsageError);
  o.many_way_draws = 2;
  o.methods = {"pretrain"};
  try {
    ml::eval::evaluate_text_run(o);
    ADD_FAILURE() << "--methods pretrain with --no-pretrain was accepted";
  } catch (const ml::UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("--methods pretrain"), std::string::npos) << m;
    EXPECT_NE(m.find("linear_probe[maml]"), std::string::npos) << m;
  }
  o.methods = {"maml", "linear_probe[maml]"};
  const auto two = ml::eval::evaluate_text_run(o);
  ASSERT_EQ(two.scores.size(), 2u);
  EXPECT_EQ(two.scores[1].method, "linear_probe[maml]");
}

TEST(TextEvalBaselines, APretrainRunIsItsOwnBaseline) {
  ml::testing::TempDir dir;
  const auto config = eight_intents(dir, "run", "pretrain");
  ml::train::run_training(config, {});
  auto o = small_eval(config.run.dir);
  o.many_way_shots = {};
  const auto result = ml::eval::evaluate_text_run(o);
  EXPECT_EQ(result.pretrain_source, "run");
  EXPECT_FALSE(std::filesystem::exists(ml::run::RunLayout(config.run.dir).pretrain_baseline()));
  ASSERT_EQ(result.scores.size(), 4u);
  EXPECT_EQ(result.scores[0].method, "pretrain");
  EXPECT_FALSE(result.scores[0].compared);
  EXPECT_TRUE(result.scores[3].compared);
  o.pretrain = false;
  EXPECT_THROW(ml::eval::evaluate_text_run(o), ml::UsageError);
}

}  // namespace
