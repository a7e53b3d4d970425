// Tests of `metalearn explain` on text: Integrated Gradients over the transformer's token
// embeddings (explain/model_input.hpp) satisfy completeness on a random model, padding gets
// nothing, and on a tiny intent task where one planted word decides the class the attributions
// land on that word.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "explain/explanation.hpp"
#include "explain/integrated_gradients.hpp"
#include "explain/model_input.hpp"
#include "inference/adaptation.hpp"
#include "inference/adapted_model.hpp"
#include "models/transformer.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/learner_state.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

#ifndef ML_BINARY_PATH
#error "ML_BINARY_PATH must be defined by tests/CMakeLists.txt"
#endif

namespace {

using ml::testing::contains;
using ml::testing::TempDir;
using nlohmann::json;
using torch::Tensor;
namespace ex = ml::explain;

const char* const kIntents[] = {"card", "topup", "refund", "pin", "fee", "lost"};

// Six intents of twelve texts of three to five filler words. One planted word decides the class
// of the run's two training intents (tiny_text_run's split): a "topup" text holds the word
// "topup" at a random place, a "card" text only filler. The other intents hold their own word.
// The adapted model knows the two intents from five texts each (a support CSV) and is explained
// on ten new texts of each.
struct PlantedText {
  TempDir dir;
  std::string run, adapted, texts;
  std::vector<std::string> planted;  // the intent of each row of `texts`

  PlantedText() {
    std::mt19937 rng(5);
    const std::vector<std::string> filler = {"hello", "please", "thanks", "today", "again",
                                             "quick", "small",  "issue",  "with",  "account"};
    auto text_of = [&](const std::string& word) {
      std::vector<std::string> words;
      const int count = 3 + static_cast<int>(rng() % 3);
      for (int w = 0; w < count; ++w) words.push_back(filler[rng() % filler.size()]);
      if (word != "card")
        words.insert(words.begin() + static_cast<long>(rng() % (words.size() + 1)), word);
      std::string text;
      for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
      return text;
    };
    std::string csv = "text,category\n";
    for (const char* intent : kIntents)
      for (int i = 0; i < 12; ++i) csv += text_of(intent) + "," + intent + "\n";
    auto config = ml::testing::tiny_text_run(dir);
    ml::testing::write_file(dir.file("intents.csv"), csv);  // the file tiny_text_run names
    config.features.tokenizer.vocab_size = 120;
    config.meta.iterations = 150;
    config.meta.outer_lr = 0.01;
    ml::train::run_training(config, {});
    run = config.run.dir;
    std::string support = "text,category\n";
    for (const char* intent : {"card", "topup"})
      for (int i = 0; i < 5; ++i) support += text_of(intent) + "," + intent + "\n";
    ml::testing::write_file(dir.file("support.csv"), support);
    ml::inference::AdaptOptions a;
    a.checkpoint = run;
    a.support_csv = dir.file("support.csv");
    a.steps = 5;
    a.inner_lr = 0.1;
    a.out_dir = dir.file("adapted");
    a.device = "cpu";
    a.threads = 1;
    adapted = ml::inference::adapt(a).tasks.at(0).checkpoint;
    std::string rows = "id,text\n";
    int id = 0;
    for (const char* intent : {"card", "topup"})
      for (int i = 0; i < 10; ++i) {
        rows += std::to_string(++id) + "," + text_of(intent) + "\n";
        planted.push_back(intent);
      }
    texts = dir.file("texts.csv");
    ml::testing::write_file(texts, rows);
  }
};

const PlantedText& planted() {
  static PlantedText p;
  return p;
}

ex::ExplainOptions options(const std::string& checkpoint, const std::string& input) {
  ex::ExplainOptions o;
  o.checkpoint = checkpoint;
  o.input = input;
  o.device = "cpu";
  o.threads = 1;
  return o;
}

TEST(ExplainText, CompletenessOnARandomTransformerAndNothingOnPadding) {
  auto m = ml::inference::load_scoring_model(planted().adapted, "cpu", "explain");
  torch::manual_seed(2);
  m->learner = ml::run::build_text_learner(m->config, *m->tokenizer, m->device,
                                           static_cast<std::int64_t>(m->class_names.size()));
  const std::vector<std::string> texts = {"hello topup please", "card", "quick small issue today",
                                          "thanks again with account card topup"};
  const ml::models::Batch batch = ml::inference::text_batch(*m, texts);
  const Tensor classes = torch::tensor({0, 1, 0, 1}, torch::kInt64);
  const ex::ModelInput in = ex::model_input(*m, batch, classes);
  const ex::Attributions a = ex::integrated_gradients(in.output, in.input, in.baseline, 50);
  // The function at the input is the model's own logit of the class.
  const Tensor logits = m->outputs(batch).gather(1, classes.unsqueeze(1)).squeeze(1);
  EXPECT_TRUE(torch::allclose(a.output.to(torch::kFloat32), logits, 1e-4, 1e-5))
      << a.output << logits;
  const Tensor tolerance = torch::clamp_min(
      (a.output - a.baseline_output).abs() * ex::kRelativeTolerance, ex::kGapFloor);
  EXPECT_TRUE((a.gap <= tolerance).all().item<bool>()) << a.gap;
  const double coarse =
      ex::integrated_gradients(in.output, in.input, in.baseline, 2).gap.mean().item<double>();
  EXPECT_LT(a.gap.mean().item<double>(), coarse);
  // Padding positions equal their baseline: exactly nothing.
  const Tensor per_position = a.attributions.sum(2);
  EXPECT_TRUE((per_position.masked_select(batch.mask.logical_not()) == 0).all().item<bool>());
  // One segment per real token, named by its piece.
  for (std::int64_t r = 0; r < batch.size(); ++r)
    EXPECT_EQ(static_cast<std::int64_t>(in.segments[static_cast<std::size_t>(r)].size()),
              batch.mask[r].sum().item<std::int64_t>());
  std::string pieces;
  for (const auto& segment : in.segments[0])
    if (segment.name != "\u2581") pieces += segment.name;
  EXPECT_TRUE(contains(pieces, "topup")) << pieces;
}

TEST(ExplainText, AttributionsLandOnThePlantedWord) {
  const PlantedText& p = planted();
  const ex::Explanation e = ex::explain(options(p.adapted, p.texts));
  ASSERT_EQ(e.model.rows.size(), p.planted.size());
  EXPECT_EQ(e.label_kind, "multiclass");
  EXPECT_EQ(e.key_columns, (std::vector<std::string>{"id", "text"}));
  int on_planted = 0, right = 0, planted_right = 0;
  std::string seen;  // for a failure's message
  for (std::size_t r = 0; r < e.model.rows.size(); ++r) {
    const auto& row = e.model.rows[r];
    seen +=
        row.key.at(1) + " -> " + row.class_name + ", top " + row.attributions.at(0).feature + "\n";
    EXPECT_EQ(row.key.at(0), std::to_string(r + 1));
    if (row.class_name != p.planted[r]) continue;
    ++right;
    if (p.planted[r] != "topup") continue;  // a card text holds no planted word
    ++planted_right;
    on_planted += row.attributions.at(0).feature == "topup";
  }
  EXPECT_GE(right, 14) << "the adapted model classifies its planted words\n" << seen;
  // A trained transformer's path turns sharply (measured here: the largest gap 0.70 at 50
  // steps, 0.012 at 400): the gap shrinks with steps.
  ex::ExplainOptions fine = options(p.adapted, p.texts);
  fine.steps = 400;
  const ex::Explanation finer = ex::explain(fine);
  EXPECT_LT(finer.model.max_gap, e.model.max_gap);
  double coarse_sum = 0, fine_sum = 0;
  for (std::size_t r = 0; r < e.model.rows.size(); ++r) {
    coarse_sum += e.model.rows[r].gap;
    fine_sum += finer.model.rows[r].gap;
  }
  EXPECT_LT(fine_sum, coarse_sum * 0.75) << coarse_sum << " -> " << fine_sum;
  EXPECT_GE(planted_right, 8) << seen;
  EXPECT_GE(on_planted * 10, planted_right * 7) << on_planted << " of " << planted_right << "\n"
                                                << seen;
  // A text model's init names no classes: nothing before adaptation, and the reason is given.
  EXPECT_FALSE(e.before.has_value());
  EXPECT_TRUE(contains(e.before_note, "names no classes")) << e.before_note;

  // --class explains one class's logit for every row.
  ex::ExplainOptions o = options(p.adapted, p.texts);
  o.class_name = "topup";
  for (const auto& row : ex::explain(o).model.rows) EXPECT_EQ(row.class_name, "topup");
  o.class_name = "cart";
  try {
    ex::explain(o);
    ADD_FAILURE() << "an unknown class";
  } catch (const ml::UsageError& error) {
    EXPECT_TRUE(contains(error.what(), "did you mean 'card'")) << error.what();
  }
}

TEST(ExplainTextCli, WritesOneLinePerTokenRankInInputOrder) {
  const PlantedText& p = planted();
  const auto r = ml::testing::run_cli(
      "explain --checkpoint " + ml::testing::shell_quote(p.adapted) + " --input " +
      ml::testing::shell_quote(p.texts) + " --top 1 --device cpu --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line,
            "row,id,text,model,class,score,probability,baseline_score,completeness_gap,rank,"
            "feature,value,attribution");
  for (int row = 1; std::getline(in, line); ++row)
    EXPECT_EQ(line.rfind(std::to_string(row) + "," + std::to_string(row) + ",", 0), 0u) << line;
  EXPECT_TRUE(contains(r.err, "names no classes")) << r.err;
}

}  // namespace
