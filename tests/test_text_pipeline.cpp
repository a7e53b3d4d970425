// A text run end to end: its data path (pipeline/text_run_data.hpp: config -> text dataset ->
// class split -> tokenizer trained on the training classes only -> N-way K-shot episodes ->
// token batches that stack, concatenate and slice like feature batches), and meta-training the
// transformer on it with checkpoints that carry the tokenizer and the class names.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "eval/text_eval.hpp"
#include "inference/adaptation.hpp"
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
    EXPECT_NE(m.find("the train split has 4 of the 6 classes"), std::string::npos) << m;
    EXPECT_NE(m.find("task.label.ways = 5"), std::string::npos) << m;
    EXPECT_NE(m.find("split.new_classes / split.validation_classes"), std::string::npos) << m;
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

TEST(TextRunCli, TrainThenEvalAndWhatAdaptAndPredictNeedFirst) {
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
  // A text run adapts to classes, not to a --task; predict needs an adapted model (the run's
  // head names no classes).
  const std::string q_texts = ml::testing::shell_quote(config.data.files.front());
  const std::vector<std::pair<std::string, std::string>> refusals = {
      {"adapt --checkpoint " + q_run + " --task lost", "a text run adapts to classes"},
      {"adapt --checkpoint " + q_run, "nothing to adapt to: give --all-new"},
      {"adapt --checkpoint " + q_run + " --all-new --support-csv " + q_texts, "not both"},
      {"predict --checkpoint " + q_run + " --input " + q_texts, "until it is adapted"}};
  std::vector<std::string> commands;
  for (const auto& r : refusals) commands.push_back(r.first);
  const auto refused = ml::testing::run_cli_many(commands);
  for (std::size_t i = 0; i < refusals.size(); ++i) {
    SCOPED_TRACE(refusals[i].first);
    EXPECT_EQ(refused[i].code, 2) << refused[i].err;
    EXPECT_EQ(refused[i].err_lines(), 1) << refused[i].err;
    EXPECT_NE(refused[i].err.find(refusals[i].second), std::string::npos) << refused[i].err;
  }
}

}  // namespace

// ---- adapt, predict and inspect on a text run -------------------------------------------------

namespace {

// The CSV predict reads back: header cells and the rows' cells (no quoted commas in the test's
// texts).
std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    rows.emplace_back();
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) rows.back().push_back(cell);
  }
  return rows;
}

TEST(TextAdaptCli, AdaptsToTheNewClassesAndPredictRanksThemWithTheTrainingClasses) {
  ml::testing::TempDir dir;
  auto config = tiny_text_run(dir, "adapt_run");
  config.split.new_classes = {"lost", "fee"};
  config.split.validation_classes = {"pin", "refund"};
  config.meta.adapt_steps = 2;
  ml::train::run_training(config, {});
  const std::string q_run = ml::testing::shell_quote(config.run.dir);
  ml::testing::write_file(dir.file("texts.csv"),
                          "id,text\n7,my lost question number 1 please\n9,my fee please\n");
  // Labelled texts of classes the run never saw, next to one of its training classes.
  ml::testing::write_file(dir.file("support.csv"),
                          "text,category\nwhere is my parcel,delivery\nparcel not here,delivery\n"
                          "change my address,address\nnew address please,address\n"
                          "my card question number 0 please,card\n");
  const std::string q_texts = ml::testing::shell_quote(dir.file("texts.csv"));
  const std::string q_support = ml::testing::shell_quote(dir.file("support.csv"));
  const std::string with_known = dir.file("with_known");
  const auto adapted = ml::testing::run_cli_many(
      {"adapt --checkpoint " + q_run + " --all-new --shots 2 --json",
       "adapt --checkpoint " + q_run + " --all-new --shots 2 --with-training-classes --out " +
           ml::testing::shell_quote(with_known),
       "adapt --checkpoint " + q_run + " --support-csv " + q_support + " --steps 1 --json"});
  ASSERT_EQ(adapted[0].code, 0) << adapted[0].err;
  const Json all_new = Json::parse(adapted[0].out);
  // Neither --steps nor --inner-lr: chosen on the 2 validation classes among eval's many-way
  // settings: 0 steps, and 1, 2 (meta.adapt_steps), 3, 5 or 10 steps at meta.inner_lr or a
  // tenth of it.
  EXPECT_NE(all_new["settings_source"].get<std::string>().find(
                "chosen on the 2 validation classes at K=2 (the best of 11 settings"),
            std::string::npos)
      << all_new["settings_source"];
  const Json task = all_new["tasks"][0];
  EXPECT_EQ(task["task"], "new_classes");
  EXPECT_EQ(std::set<std::string>(task["classes"].begin(), task["classes"].end()),
            (std::set<std::string>{"fee", "lost"}));
  EXPECT_EQ(task["support"], 4);  // K = 2 of 2 classes
  EXPECT_EQ(task["query"], 12);   // the other 6 texts of each
  const int chosen_steps = task["steps"];
  EXPECT_TRUE(std::set<int>({0, 1, 2, 3, 5, 10}).count(chosen_steps) == 1) << chosen_steps;
  const double chosen_lr = task["inner_lr"];
  EXPECT_TRUE(chosen_lr == config.meta.inner_lr || chosen_lr == config.meta.inner_lr / 10)
      << chosen_lr;
  for (const char* when : {"before", "after"}) {
    const double accuracy = task[when]["accuracy"].get<double>();
    EXPECT_GE(accuracy, 0.0) << when;
    EXPECT_LE(accuracy, 1.0) << when;
  }
  const std::string model = task["checkpoint"];
  const auto meta = ml::run::read_checkpoint_meta(model);
  // Format 4: a build from before adapted text models says "upgrade" instead of misreading it.
  EXPECT_EQ(meta.format, ml::run::kAdaptedTextCheckpointFormat);
  EXPECT_GT(ml::run::kAdaptedTextCheckpointFormat, ml::run::kCheckpointFormat);
  EXPECT_EQ(meta.progress["classes"], task["classes"]);

  // The table: classes, K, accuracy before -> after.
  ASSERT_EQ(adapted[1].code, 0) << adapted[1].err;
  EXPECT_NE(adapted[1].out.find("4 (2 training)"), std::string::npos) << adapted[1].out;
  EXPECT_NE(adapted[1].out.find("accuracy before -> after"), std::string::npos) << adapted[1].out;
  EXPECT_NE(adapted[1].out.find("chosen on the 2 validation classes"), std::string::npos)
      << adapted[1].out;

  ASSERT_EQ(adapted[2].code, 0) << adapted[2].err;
  const Json from_csv = Json::parse(adapted[2].out)["tasks"][0];
  EXPECT_EQ(from_csv["task"], "support");
  EXPECT_EQ(from_csv["classes"], Json::array({"delivery", "address", "card"}));
  EXPECT_EQ(from_csv["training_classes"], 1);
  EXPECT_EQ(from_csv["support"], 5);
  EXPECT_EQ(from_csv["query"], 0);
  EXPECT_TRUE(from_csv["after"].is_null());

  const std::string out = dir.file("predicted.csv");
  const auto predicted = ml::testing::run_cli_many(
      {"predict --checkpoint " + ml::testing::shell_quote(model) + " --input " + q_texts +
           " --top-k 2 --output " + ml::testing::shell_quote(out),
       "predict --checkpoint " + ml::testing::shell_quote(with_known + "/new_classes.mlckpt") +
           " --input " + q_texts + " --top-k 9",
       "predict --checkpoint " + ml::testing::shell_quote(from_csv["checkpoint"]) + " --input " +
           q_texts});
  ASSERT_EQ(predicted[0].code, 0) << predicted[0].err;
  const auto rows = csv_rows(ml::testing::slurp(out));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"id", "text", "class_1", "probability_1", "class_2",
                                               "probability_2"}));
  EXPECT_EQ(rows[1][0], "7");
  EXPECT_EQ(rows[2][1], "my fee please");
  for (std::size_t r = 1; r < rows.size(); ++r) {
    // Both classes, best first, their probabilities summing to one.
    EXPECT_EQ(std::set<std::string>({rows[r][2], rows[r][4]}),
              (std::set<std::string>{"fee", "lost"}));
    const double p1 = std::stod(rows[r][3]), p2 = std::stod(rows[r][5]);
    EXPECT_GE(p1, p2);
    EXPECT_NEAR(p1 + p2, 1.0, 1e-5);
  }
  // --top-k beyond the 4 classes (2 new, 2 training) lists all 4.
  ASSERT_EQ(predicted[1].code, 0) << predicted[1].err;
  const auto known = csv_rows(predicted[1].out);
  ASSERT_EQ(known.size(), 3u);
  EXPECT_EQ(known[0].size(), 2u + 2u * 4u);
  EXPECT_NE(predicted[1].err.find("knows 4 classes"), std::string::npos) << predicted[1].err;
  std::set<std::string> ranked;
  for (std::size_t c = 2; c < known[1].size(); c += 2) ranked.insert(known[1][c]);
  EXPECT_EQ(ranked, (std::set<std::string>{"card", "fee", "lost", "topup"}));
  ASSERT_EQ(predicted[2].code, 0) << predicted[2].err;
  const auto three = csv_rows(predicted[2].out);
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(three[0].size(), 4u);  // id, text, class_1, probability_1 (the default --top-k 1)
  EXPECT_TRUE(three[1][2] == "delivery" || three[1][2] == "address" || three[1][2] == "card");

  // Files whose columns have other names: --column text=... and class_column=... map them.
  ml::testing::write_file(dir.file("renamed.csv"),
                          "message,intent\nwhere is my parcel,delivery\nparcel not here,delivery\n"
                          "change my address,address\n");
  ml::testing::write_file(dir.file("renamed_texts.csv"), "id,message\n7,my fee please\n");
  const auto renamed = ml::testing::run_cli_many(
      {"adapt --checkpoint " + q_run + " --support-csv " +
           ml::testing::shell_quote(dir.file("renamed.csv")) +
           " --column text=message --column class_column=intent --steps 1 --json",
       "predict --checkpoint " + ml::testing::shell_quote(from_csv["checkpoint"]) + " --input " +
           ml::testing::shell_quote(dir.file("renamed_texts.csv")) + " --column text=message",
       "predict --checkpoint " + ml::testing::shell_quote(from_csv["checkpoint"]) + " --input " +
           ml::testing::shell_quote(dir.file("renamed_texts.csv")) + " --column path_column=x"});
  ASSERT_EQ(renamed[0].code, 0) << renamed[0].err;
  EXPECT_EQ(Json::parse(renamed[0].out)["tasks"][0]["classes"],
            Json::array({"delivery", "address"}));
  ASSERT_EQ(renamed[1].code, 0) << renamed[1].err;
  EXPECT_EQ(csv_rows(renamed[1].out).size(), 2u);
  // The run reads its classes from a column, not a path: one line saying so.
  EXPECT_NE(renamed[2].code, 0);
  EXPECT_TRUE(ml::testing::contains(renamed[2].err, "data.text.path_column is not set"))
      << renamed[2].err;
}

TEST(TextAdaptCli, RefusesWhatCannotBeAdaptedWithOneLine) {
  ml::testing::TempDir dir;
  auto config = tiny_text_run(dir, "refusing_run");
  config.meta.iterations = 2;
  ml::train::run_training(config, {});
  ml::testing::write_file(dir.file("one_class.csv"), "text,category\na b,x\nc d,x\n");
  ml::testing::write_file(dir.file("no_text.csv"), "words,category\na b,x\nc d,y\n");
  ml::inference::AdaptOptions o;
  o.checkpoint = config.run.dir;
  o.device = "cpu";
  o.support_csv = dir.file("one_class.csv");
  try {
    ml::inference::adapt(o);
    ADD_FAILURE() << "one class adapted";
  } catch (const ml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("holds texts of 1 class"), std::string::npos) << e.what();
  }
  o.support_csv = dir.file("no_text.csv");
  try {
    ml::inference::adapt(o);
    ADD_FAILURE() << "a CSV without the text column adapted";
  } catch (const ml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'text': no such column"), std::string::npos) << e.what();
  }
  // The new class "lost" has 8 texts: K = 8 leaves none for the query.
  o.support_csv.clear();
  o.all_new = true;
  o.shots = 8;
  EXPECT_THROW(ml::inference::adapt(o), ml::DataError);
  o.shots = ml::config::kSupportAll;
  EXPECT_THROW(ml::inference::adapt(o), ml::UsageError);
  // An adapted text model is adapted from its run, and eval scores the run.
  o.shots = 2;
  o.with_training_classes = true;
  const auto summary = ml::inference::adapt(o);
  ASSERT_EQ(summary.tasks.size(), 1u);
  EXPECT_EQ(summary.tasks[0].classes.size(), 1u + 3u);  // lost + the 3 training classes
  o.checkpoint = summary.tasks[0].checkpoint;
  EXPECT_THROW(ml::inference::adapt(o), ml::UsageError);
  ml::eval::TextEvalOptions e;
  e.checkpoint = summary.tasks[0].checkpoint;
  EXPECT_THROW(ml::eval::evaluate_text_run(e), ml::UsageError);
  // A CSV's classes first, then K texts of each training class it does not have.
  ml::testing::write_file(dir.file("two.csv"),
                          "text,category\nwhere is my parcel,delivery\n"
                          "my card question number 0 please,card\n");
  o.checkpoint = config.run.dir;
  o.all_new = false;
  o.support_csv = dir.file("two.csv");
  o.out_dir = dir.file("csv_out");
  const auto csv = ml::inference::adapt(o);
  ASSERT_EQ(csv.tasks.size(), 1u);
  EXPECT_EQ(csv.tasks[0].classes,
            (std::vector<std::string>{"delivery", "card", "refund", "topup"}));
  EXPECT_EQ(csv.tasks[0].training_classes, 3);
  EXPECT_EQ(csv.tasks[0].support_size, 2 + 2 * 2);
  EXPECT_TRUE(std::filesystem::exists(dir.file("csv_out/two.mlckpt")));
}

TEST(TextInspectCli, ProfilesClassesDuplicatesTokenLengthsAndOutOfVocabularyRates) {
  ml::testing::TempDir dir;
  auto config = six_intents(dir);
  config.model.transformer.max_len = 6;
  // Two more copies of one text: one duplicate group of three.
  {
    std::ofstream csv(dir.file("intents.csv"), std::ios::app);
    csv << "\"my card question number 0 please\",card\n\"my card question number 0 please\",card\n";
  }
  Json j;
  to_json(j, config);
  ml::testing::write_file(dir.file("text.json"), j.dump(2));
  const std::string q_config = ml::testing::shell_quote(dir.file("text.json"));
  const auto runs = ml::testing::run_cli_many(
      {"inspect --config " + q_config + " --json", "inspect --config " + q_config + " --tasks"});
  ASSERT_EQ(runs[0].code, 0) << runs[0].err;
  const Json p = Json::parse(runs[0].out);
  EXPECT_EQ(p["rows"], 50);
  EXPECT_EQ(p["classes"], 6);
  EXPECT_EQ(p["texts_per_class"]["min"], 8);
  EXPECT_EQ(p["texts_per_class"]["max"], 10);
  EXPECT_EQ(p["duplicates"]["duplicate_groups"], 1);
  EXPECT_EQ(p["duplicates"]["largest_group"], 3);
  EXPECT_EQ(p["duplicates"]["rows_in_duplicate_groups"], 3);
  ASSERT_EQ(p["splits"].size(), 3u);
  const Json train = p["splits"][0], fresh = p["splits"][2];
  EXPECT_EQ(train["part"], "train");
  EXPECT_EQ(fresh["part"], "new");
  EXPECT_EQ(fresh["class_names"], Json::array({"lost"}));
  EXPECT_EQ(train["classes"], 4);
  // The tokenizer learnt the training texts; only "lost" uses the unseen letter 'ж'.
  EXPECT_EQ(train["oov_rate"], 0.0);
  EXPECT_GT(fresh["oov_rate"].get<double>(), 0.0);
  EXPECT_GT(fresh["unknown_pieces"].get<std::int64_t>(), 0);
  for (const Json& s : p["splits"]) {
    // Six words per text at least, max_len 6: some are cut, and the share says how many.
    const auto count = s["tokens_per_text"]["count"].get<std::int64_t>();
    const auto truncated = s["truncated"].get<std::int64_t>();
    EXPECT_EQ(truncated > 0, s["tokens_per_text"]["max"].get<std::int64_t>() > 6) << s["part"];
    EXPECT_NEAR(s["truncated_share"].get<double>(),
                static_cast<double>(truncated) / static_cast<double>(count), 1e-12);
    EXPECT_LE(s["tokens_per_text"]["p50"], s["tokens_per_text"]["p99"]);
  }
  ASSERT_EQ(runs[1].code, 0) << runs[1].err;
  for (const char* line : {"out of vocabulary", "truncated", "duplicate groups", "texts per class",
                           "card, pin, refund, topup"})
    EXPECT_NE(runs[1].out.find(line), std::string::npos) << line << "\n" << runs[1].out;
}

}  // namespace
