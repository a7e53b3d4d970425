// A text run end to end: its data path (pipeline/text_run_data.hpp: config -> text dataset ->
// class split -> tokenizer trained on the training classes only -> N-way K-shot episodes ->
// token batches that stack, concatenate and slice like feature batches), and meta-training the
// transformer on it with checkpoints that carry the tokenizer and the class names.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "config/config.hpp"
#include "eval/text_eval.hpp"
#include "models/task_stack.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

namespace {

using ml::config::Json;
using ml::tasks::ClassSplitPart;

// Six intents of eight distinct texts; the held-out one, "lost", is the only class whose texts
// use the letter 'ж'.
ml::config::Config six_intents(const ml::testing::TempDir& dir) {
  std::string csv = "text,category\n";
  const char* intents[] = {"card", "topup", "refund", "pin", "fee", "lost"};
  for (const char* intent : intents)
    for (int i = 0; i < 8; ++i) {
      const std::string word = std::string(intent) == "lost" ? "жук" : intent;
      csv +=
          "\"my " + word + " question number " + std::to_string(i) + " please\"," + intent + "\n";
    }
  ml::testing::write_file(dir.file("intents.csv"), csv);
  Json j = Json::parse(R"({
    "data": {"text": {"column": "text", "class_column": "category"}},
    "task": {"label": {"kind": "multiclass", "ways": 3}, "support": 2, "query": 3},
    "model": {"type": "transformer", "transformer": {"max_len": 12}},
    "features": {"tokenizer": {"vocab_size": 60, "hash_buckets": 16}},
    "split": {"new_classes": ["lost"], "validation_classes": ["fee"]}
  })");
  j["data"]["files"] = {dir.file("intents.csv")};
  return ml::config::config_from_json(j);
}

TEST(TextRunData, SplitsClassesTrainsTheTokenizerOnTrainingTextsAndEncodesEveryRow) {
  ml::testing::TempDir dir;
  const auto config = six_intents(dir);
  const auto data = ml::pipeline::prepare_text_run_data(config);
  ASSERT_EQ(data->dataset.size(), 48u);
  EXPECT_EQ(data->split.train.size(), 4u);
  ASSERT_EQ(data->split.new_classes.size(), 1u);
  EXPECT_EQ(data->class_names()[static_cast<std::size_t>(data->split.new_classes[0])], "lost");
  EXPECT_EQ(data->tokens.sizes(), (std::vector<std::int64_t>{48, 12}));
  EXPECT_TRUE(data->mask.eq(data->tokens.ne(0)).all().item<bool>());
  // 'ж' only occurs in a held-out class: the tokenizer never saw it.
  ml::features::EncodeStats held_out, training;
  data->tokenizer->encode(data->dataset.texts.back(), &held_out);
  data->tokenizer->encode(data->dataset.texts.front(), &training);
  EXPECT_GT(held_out.unknown_pieces, 0);
  EXPECT_EQ(training.unknown_pieces, 0);
  // The saved bytes give back the same encoding.
  const std::string bytes = data->tokenizer->to_bytes();
  const auto again = ml::pipeline::prepare_text_run_data(config, &bytes);
  EXPECT_TRUE(again->tokens.equal(data->tokens));
}

TEST(TextRunData, EpisodesBecomeTokenBatchesThatStackConcatenateAndSlice) {
  ml::testing::TempDir dir;
  const auto config = six_intents(dir);
  const auto data = ml::pipeline::prepare_text_run_data(config);
  const auto& sampler = data->sampler(ClassSplitPart::kTrain);
  const auto episode = sampler.sample(7);
  const auto batch = ml::pipeline::make_text_task_batch(*data, episode, torch::kCPU);
  ASSERT_EQ(batch.support.size(), 6);  // 3-way 2-shot
  ASSERT_EQ(batch.query.size(), 9);
  EXPECT_EQ(batch.support.tokens.sizes(), (std::vector<std::int64_t>{6, 12}));
  EXPECT_EQ(batch.support.dense.size(1), 0);
  for (std::size_t i = 0; i < episode.query.size(); ++i) {
    const auto row = static_cast<std::int64_t>(i);
    EXPECT_TRUE(
        batch.query.tokens[row].equal(data->tokens[static_cast<std::int64_t>(episode.query[i])]));
    EXPECT_EQ(batch.query.target[row].item<std::int64_t>(), episode.query_labels[i]);
    // Episode label i is the dataset's class episode.classes[i].
    EXPECT_EQ(episode.classes[static_cast<std::size_t>(episode.query_labels[i])],
              data->dataset.label[episode.query[i]]);
  }
  const auto stacked = ml::models::stack_tasks({batch.support, batch.query});
  EXPECT_EQ(stacked.tokens.sizes(), (std::vector<std::int64_t>{2, 9, 12}));
  // The shorter task's padding rows have no real token.
  EXPECT_FALSE(stacked.mask[0].narrow(0, 6, 3).any().item<bool>());
  EXPECT_TRUE(stacked.tokens[0].narrow(0, 0, 6).equal(batch.support.tokens));
  const auto picked = ml::models::select_rows(stacked, {{1, 0}, {8}});
  EXPECT_TRUE(picked.tokens[1][0].equal(batch.query.tokens[8]));
  const auto joined = ml::models::concat(batch.support, batch.query);
  EXPECT_EQ(joined.tokens.size(0), 15);
  EXPECT_TRUE(joined.rows(6, 15).tokens.equal(batch.query.tokens));
  // Texts encoded to different lengths are padded to the longer.
  auto shorter = batch.query;
  shorter.tokens = shorter.tokens.narrow(1, 0, 5);
  shorter.mask = shorter.mask.narrow(1, 0, 5);
  const auto mixed = ml::models::concat(batch.support, shorter);
  EXPECT_EQ(mixed.tokens.size(1), 12);
  EXPECT_FALSE(mixed.mask.narrow(0, 6, 9).narrow(1, 5, 7).any().item<bool>());
  EXPECT_EQ(ml::models::stack_tasks({batch.support, shorter}).mask.size(2), 12);
}

TEST(TextRunData, TooFewTrainingClassesForTheWaysIsAClearError) {
  ml::testing::TempDir dir;
  auto config = six_intents(dir);
  config.task.label.ways = 5;  // 4 training classes
  try {
    ml::pipeline::prepare_text_run_data(config);
    FAIL() << "expected a DataError";
  } catch (const ml::DataError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("the train classes give 4"), std::string::npos) << m;
    EXPECT_NE(m.find("task.label.ways"), std::string::npos) << m;
  }
}

}  // namespace

// ---- meta-training a text run (train/trainer.hpp) ---------------------------------------------

namespace {

// The model's tensors `names` as a checkpoint holds them.
std::vector<torch::Tensor> saved_weights(const std::string& path,
                                         const std::vector<std::string>& names) {
  const auto checkpoint = ml::run::load_checkpoint(path);
  std::vector<torch::Tensor> out;
  checkpoint.read_state(
      [&](torch::serialize::InputArchive& archive) {
        torch::serialize::InputArchive model;
        archive.read("model", model);
        for (const auto& name : names) {
          torch::Tensor t;
          model.read(name, t);
          out.push_back(t);
        }
      },
      torch::kCPU);
  return out;
}

ml::config::Config tiny_text_run(const ml::testing::TempDir& dir, const std::string& run) {
  auto config = six_intents(dir);
  config.model.transformer = {16, 2, 1, 24, 12, ml::config::Activation::kGelu};
  config.meta.iterations = 6;
  config.meta.meta_batch = 2;
  config.meta.inner_steps = 1;
  config.train.validate_every = 3;
  config.train.checkpoint_every = 2;
  config.train.validation_episodes = 2;
  config.run.dir = dir.file(run);
  config.run.threads = 1;
  // 2-way episodes: three training classes, one pair of validation classes.
  config.task.label.ways = 2;
  config.split.validation_classes = {"fee", "pin"};
  return config;
}

TEST(TextTraining, MetaTrainsTheTransformerAndResumesToTheSameWeights) {
  ml::testing::TempDir dir;
  const std::vector<std::string> names = {"token_embedding", "layer_0_ff1_weight", "head_bias"};
  for (const char* algorithm : {"maml", "protonet"}) {
    auto config = tiny_text_run(dir, std::string("straight_") + algorithm);
    config.meta.algorithm = *ml::enum_from_name<ml::config::Algorithm>(algorithm);
    const auto summary = ml::train::run_training(config, {});
    EXPECT_EQ(summary.iterations, 6) << algorithm;
    EXPECT_TRUE(std::isfinite(summary.last_loss)) << algorithm;
    const ml::run::RunLayout layout(config.run.dir);
    const auto meta = ml::run::read_checkpoint_meta(layout.latest_checkpoint().string());
    // The checkpoint names the classes and carries the tokenizer.
    EXPECT_EQ(meta.features["text"]["class_names"].size(), 6u);
    auto checkpoint = ml::run::load_checkpoint(layout.latest_checkpoint().string());
    EXPECT_EQ(checkpoint.meta.format, 3u);
    EXPECT_GT(ml::features::Tokenizer::from_bytes(ml::run::read_tokenizer(checkpoint)).vocab_size(),
              16);
    // A checkpoint of a format from before text runs is named as such.
    checkpoint.meta.format = 2;
    try {
      ml::run::read_tokenizer(checkpoint);
      ADD_FAILURE() << "a format 2 checkpoint gave a tokenizer";
    } catch (const ml::CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find("checkpoint format 2, from before text runs"),
                std::string::npos)
          << e.what();
    }
    const auto trained = saved_weights(layout.latest_checkpoint().string(), names);
    // Interrupted after 4 and resumed: the same weights as the uninterrupted run.
    auto resumed = config;
    resumed.run.dir = dir.file(std::string("resumed_") + algorithm);
    ml::train::run_training(resumed, {false, 4});
    ml::train::run_training(resumed, {true, 0});
    const auto again =
        saved_weights(ml::run::RunLayout(resumed.run.dir).latest_checkpoint().string(), names);
    for (std::size_t i = 0; i < names.size(); ++i)
      EXPECT_TRUE(torch::equal(again[i], trained[i])) << algorithm << " " << names[i];
  }
}

}  // namespace

// ---- eval on held-out classes (eval/text_eval.hpp) ---------------------------------------------

namespace {

TEST(TextEval, ScoresTheNewClassesWithSettingsChosenOnTheValidationClasses) {
  ml::testing::TempDir dir;
  auto config = tiny_text_run(dir, "eval_run");
  // Two classes of each split, 2-way episodes.
  config.split.new_classes = {"lost", "fee"};
  config.split.validation_classes = {"pin", "refund"};
  ml::train::run_training(config, {});
  EXPECT_TRUE(ml::run::is_text_run_checkpoint(config.run.dir));
  ml::eval::TextEvalOptions o;
  o.checkpoint = config.run.dir;
  o.shots = {1, 2};
  o.steps = {0, 2};
  o.episodes = 6;
  o.pretrain = false;  // the baselines on the pretrain run: test_text_baselines.cpp
  o.many_way_shots = {};
  o.device = "cpu";
  o.threads = 1;
  const auto result = ml::eval::evaluate_text_run(o);
  EXPECT_EQ(result.algorithm, "maml");
  EXPECT_EQ(result.new_classes, 2);
  EXPECT_EQ(result.validation_classes, 2);
  EXPECT_EQ(result.not_chosen, "");
  // per K: the run's method, nearest class mean and a probe on its encoder
  ASSERT_EQ(result.scores.size(), 6u);
  for (std::size_t i = 0; i < result.scores.size(); ++i) {
    const auto& s = result.scores[i];
    const auto& run = result.scores[i - i % 3];
    EXPECT_EQ(s.shots, i < 3 ? 1 : 2);
    EXPECT_GE(s.accuracy.mean, 0.0);
    EXPECT_LE(s.accuracy.mean, 1.0);
    EXPECT_TRUE(std::isfinite(s.accuracy.half_width)) << s.method;
    EXPECT_EQ(s.compared, i % 3 != 0);
    // Paired by episode: the mean difference is the difference of the means.
    if (s.compared) {
      EXPECT_NEAR(s.run_minus_this.mean, run.accuracy.mean - s.accuracy.mean, 1e-12) << s.method;
    }
  }
  EXPECT_EQ(result.scores[0].method, "maml");
  EXPECT_EQ(result.scores[1].method, "nearest_class_mean[maml]");
  EXPECT_EQ(result.scores[2].method, "linear_probe[maml]");
  EXPECT_TRUE(result.scores[0].setting == "0 steps" || result.scores[0].setting == "2 steps")
      << result.scores[0].setting;
  // The same episodes and settings again: the same numbers.
  const auto again = ml::eval::evaluate_text_run(o);
  for (std::size_t i = 0; i < result.scores.size(); ++i)
    EXPECT_EQ(again.scores[i].accuracy.mean, result.scores[i].accuracy.mean);
  const std::string table = ml::eval::format_table(result);
  EXPECT_NE(table.find("2-way accuracy on the 2 new classes"), std::string::npos) << table;
  EXPECT_EQ(ml::eval::to_json(result)["scores"].size(), 6u);
  // The new classes have 8 texts each: K = 6 leaves no 3 query texts.
  o.shots = {6};
  try {
    ml::eval::evaluate_text_run(o);
    ADD_FAILURE() << "K = 6 gave episodes";
  } catch (const ml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("eval at K=6"), std::string::npos) << e.what();
  }
}

}  // namespace

// ---- the commands on a text run ---------------------------------------------------------------

namespace {

TEST(TextRunCli, TrainThenEvalAndTheCommandsThatDoNotReadTextRunsSaySo) {
  ml::testing::TempDir dir;
  auto config = tiny_text_run(dir, "cli_run");
  config.split.new_classes = {"lost", "fee"};
  config.split.validation_classes = {"pin", "refund"};
  Json j;
  to_json(j, config);
  ml::testing::write_file(dir.file("text.json"), j.dump(2));
  const std::string q_config = ml::testing::shell_quote(dir.file("text.json"));
  const std::string q_run = ml::testing::shell_quote(config.run.dir);
  const auto train = ml::testing::run_cli("train --config " + q_config + " --json");
  ASSERT_EQ(train.code, 0) << train.err;
  EXPECT_EQ(Json::parse(train.out)["iterations"], 6);
  const auto eval = ml::testing::run_cli(
      "eval --checkpoint " + q_run +
      " --shots 1 --steps 0,1 --episodes 2 --many-way-shots 2 --many-way-draws 2 --json");
  ASSERT_EQ(eval.code, 0) << eval.err;
  const Json result = Json::parse(eval.out);
  // The run's method, two classifiers on its encoder, and four methods on the pretrain
  // baseline eval trained beside it.
  ASSERT_EQ(result["scores"].size(), 7u);
  EXPECT_EQ(result["scores"][0]["method"], "maml");
  EXPECT_EQ(result["pretrain"]["source"], "trained");
  EXPECT_EQ(result["many_way"]["shots"][0]["classes"], 2);
  EXPECT_EQ(result["many_way"]["shots"][0]["scores"].size(), 7u);
  const auto without = ml::testing::run_cli("eval --checkpoint " + q_run +
                                            " --shots 1 --episodes 1 --many-way-shots 0 "
                                            "--no-pretrain --methods maml --json");
  ASSERT_EQ(without.code, 0) << without.err;
  EXPECT_EQ(Json::parse(without.out)["scores"].size(), 1u);
  EXPECT_EQ(Json::parse(without.out)["many_way"]["shots"].size(), 0u);
  const auto report = ml::testing::run_cli("eval --checkpoint " + q_run + " --report " +
                                           ml::testing::shell_quote(dir.file("report")));
  EXPECT_NE(report.code, 0);
  EXPECT_NE(report.err.find("does not take --report"), std::string::npos) << report.err;
  const auto inspect = ml::testing::run_cli("inspect --config " + q_config);
  EXPECT_NE(inspect.code, 0);
  EXPECT_NE(inspect.err.find("does not read a text run"), std::string::npos) << inspect.err;
  // adapt and predict refuse a text run first, whatever else their options lack (a new user
  // met "give --task" first, then the refusal; predict called the checkpoint corrupt).
  const std::string q_texts = ml::testing::shell_quote(config.data.files.front());
  for (const std::string& command :
       {"adapt --checkpoint " + q_run + " --task lost", "adapt --checkpoint " + q_run,
        "predict --checkpoint " + q_run + " --input " + q_texts}) {
    SCOPED_TRACE(command);
    const auto refused = ml::testing::run_cli(command);
    EXPECT_EQ(refused.code, 2) << refused.err;
    EXPECT_NE(refused.err.find("adapt and predict do not read text runs yet"), std::string::npos)
        << refused.err;
  }
}

}  // namespace
