// `metalearn export` (export/torchscript_export.hpp): the TorchScript module of each model family
// (MLP, embedding_mlp, an adapted protonet's prototypes, regression, multiclass, the adapted text
// transformer), loaded back with LibTorch and with Debian's python3-torch, scores the rows that
// export encoded as `metalearn predict` scores them; and what export refuses, with one line.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "export/torchscript_export.hpp"
#include "inference/adaptation.hpp"
#include "inference/adapted_model.hpp"
#include "inference/prediction.hpp"
#include "run/learner_state.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

namespace {

using ml::config::Json;
using ml::testing::shell_quote;

// Scores of float32 models computed by the same ops in two executors: equal to float rounding.
void expect_close(double actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, 1e-5 * std::max(1.0, std::abs(expected))) << what;
}

// Why Debian's python3-torch cannot be used ("" when it can). /usr/bin/python3 explicitly: the
// python3 first on a developer's PATH may be another one without torch.
std::string python_torch_missing() {
  const auto r = ml::testing::run_command("/usr/bin/python3 -c 'import torch'");
  return r.code == 0 ? ""
                     : "/usr/bin/python3 cannot import torch (Debian: python3-torch): " + r.err;
}

// tests/export_score.py on (model, rows) pairs: one object per pair.
Json python_scores(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string command = "/usr/bin/python3 " + shell_quote(ML_SOURCE_DIR "/tests/export_score.py");
  for (const auto& [model, rows] : pairs)
    command += " " + shell_quote(model) + " " + shell_quote(rows);
  const auto r = ml::testing::run_command(command);
  if (r.code != 0) {
    ADD_FAILURE() << "export_score.py failed: " << r.err;
    return Json::array();
  }
  return Json::parse(r.out);
}

// forward() of the exported module on the exported rows, in LibTorch.
torch::Tensor libtorch_scores(const std::string& model, const std::string& rows) {
  torch::jit::Module m = torch::jit::load(model);
  torch::jit::Module r = torch::jit::load(rows);
  const auto inputs = r.get_method("inputs")({}).toTuple()->elements();
  torch::NoGradGuard no_grad;
  return m.forward(std::vector<c10::IValue>(inputs.begin(), inputs.end()))
      .toTensor()
      .to(torch::kFloat64);
}

std::vector<std::string> string_list(const c10::IValue& value) {
  std::vector<std::string> out;
  for (const auto& s : value.toListRef()) out.push_back(s.toStringRef());
  return out;
}

ml::exporting::ExportSummary export_model(const std::string& checkpoint, const std::string& rows,
                                          const ml::testing::TempDir& dir,
                                          const std::string& name) {
  ml::exporting::ExportOptions o;
  o.checkpoint = checkpoint;
  o.output = dir.file(name + ".pt");
  o.inputs.option = "--inputs";
  if (!rows.empty()) {
    o.inputs.path = rows;
    o.inputs_output = dir.file(name + "_rows.pt");
  }
  o.threads = 1;
  return ml::exporting::export_torchscript(o);
}

// The first `count` rows of the shop's events.csv, and a row of a user and an item the log does
// not know (their side-table values missing: NaN in the raw inputs the module standardises).
std::string rows_csv(const ml::testing::TempDir& dir, const std::string& events, int count) {
  std::ifstream in(events);
  std::string line, csv;
  std::getline(in, line);
  csv = line + "\n";
  std::string first;
  for (int i = 0; i < count && std::getline(in, line); ++i) {
    if (first.empty()) first = line;
    csv += line + "\n";
  }
  // user_id,item_id,category,...: a stranger buys an unknown item of the first row's category.
  csv += "stranger,unknown_item" + first.substr(first.find(',', first.find(',') + 1)) + "\n";
  const std::string path = dir.file("rows.csv");
  ml::testing::write_file(path, csv);
  return path;
}

TEST(Export, PurchaseLogModelsScoreInLibTorchAndPythonAsPredictDoes) {
  ml::testing::TempDir dir;
  const ml::config::Config shop = ml::testing::synthetic_shop(dir, 200, 8, 3000);
  const std::string rows = rows_csv(dir, shop.data.files.at(0), 12);
  struct Variant {
    std::string name;
    ml::config::ModelType type;
    ml::config::Algorithm algorithm;
    ml::config::LabelKind label;
    bool adapted;
  };
  using ml::config::Algorithm;
  using ml::config::LabelKind;
  using ml::config::ModelType;
  const std::vector<Variant> variants = {
      {"mlp_run", ModelType::kMlp, Algorithm::kMaml, LabelKind::kEventBinary, false},
      {"embedding_mlp_adapted", ModelType::kEmbeddingMlp, Algorithm::kMaml, LabelKind::kEventBinary,
       true},
      {"protonet_adapted", ModelType::kMlp, Algorithm::kProtonet, LabelKind::kEventBinary, true},
      {"regression_run", ModelType::kMlp, Algorithm::kFomaml, LabelKind::kRegression, false},
      {"multiclass_adapted", ModelType::kMlp, Algorithm::kMaml, LabelKind::kMulticlass, true}};
  std::vector<std::pair<std::string, std::string>> exported;
  // Per variant and row: the score predict gives, and for multiclass the output column of the
  // class it names, whose probability that score is.
  std::vector<std::vector<double>> predicted;
  std::vector<std::vector<std::int64_t>> columns;
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    ml::config::Config config = shop;
    config.model.type = v.type;
    config.model.hidden = {8, 4};
    config.model.embedding_dim = 4;
    config.features.hash_buckets = 64;
    config.meta.algorithm = v.algorithm;
    config.task.label.kind = v.label;
    config.task.label.target = ml::config::LabelTarget::kPrice;
    config.task.label.class_column.name = "price_tier";  // the item table's
    config.task.label.class_from = ml::config::ColumnSource::kItem;
    config.task.label.ways = 2;
    config.meta.iterations = 4;
    // Prices are tens of units: a smaller step keeps 4 iterations of their squared error finite.
    if (v.label == LabelKind::kRegression) config.meta.inner_lr = 0.001;
    config.train.validate_every = 0;
    config.run.dir = dir.file(v.name);
    ml::train::run_training(config, {});
    std::string checkpoint = config.run.dir;
    if (v.adapted) {
      ml::inference::AdaptOptions a;
      a.checkpoint = checkpoint;
      a.all_new = true;
      a.steps = 2;
      a.device = "cpu";
      a.threads = 1;
      checkpoint = ml::inference::adapt(a).tasks.at(0).checkpoint;
    }
    const auto summary = export_model(checkpoint, rows, dir, v.name);
    EXPECT_EQ(summary.checkpoint_kind, v.adapted ? "adapted" : "meta");
    EXPECT_EQ(summary.rows, 13);
    EXPECT_EQ(summary.input_names, (std::vector<std::string>{"dense", "ids"}));

    ml::inference::PredictOptions p;
    p.checkpoint = checkpoint;
    p.input = rows;
    p.device = "cpu";
    p.threads = 1;
    const auto scores = ml::inference::score_rows(p);
    ASSERT_EQ(scores.rows.size(), 13u);
    const torch::Tensor ours =
        libtorch_scores(dir.file(v.name + ".pt"), dir.file(v.name + "_rows.pt"));
    const bool multiclass = v.label == LabelKind::kMulticlass;
    const std::vector<std::int64_t> shape =
        multiclass ? std::vector<std::int64_t>{13, 2} : std::vector<std::int64_t>{13};
    ASSERT_EQ(ours.sizes(), shape);
    const torch::jit::Module module = torch::jit::load(dir.file(v.name + ".pt"));
    const auto classes = string_list(module.attr("class_names"));
    EXPECT_EQ(classes.size(), multiclass ? 2u : 0u);
    predicted.emplace_back();
    columns.emplace_back();
    for (std::size_t r = 0; r < scores.rows.size(); ++r) {
      const auto row = static_cast<std::int64_t>(r);
      std::int64_t column = -1;
      if (multiclass) {
        column =
            std::find(classes.begin(), classes.end(), scores.rows[r].class_name) - classes.begin();
        ASSERT_LT(column, 2) << scores.rows[r].class_name;
        EXPECT_EQ(ours[row].argmax().item<std::int64_t>(), column) << "row " << r;
      }
      expect_close((multiclass ? ours[row][column] : ours[row]).item<double>(),
                   scores.rows[r].score, "LibTorch, row " + std::to_string(r));
      predicted.back().push_back(scores.rows[r].score);
      columns.back().push_back(column);
    }
    // Scores that differ: a model that ignored its inputs would pass the comparison too.
    EXPECT_GT((ours - ours[0]).abs().max().item<double>(), 1e-7);
    EXPECT_EQ(module.attr("output_kind").toStringRef(), multiclass ? "class_probabilities"
                                                        : v.label == LabelKind::kRegression
                                                            ? "value"
                                                            : "probability");
    EXPECT_EQ(module.attr("model_family").toStringRef(), ml::enum_name(v.type));
    // The weights under the checkpoint's names.
    const auto loaded = ml::inference::load_scoring_model(checkpoint, "cpu");
    std::vector<std::string> names;
    for (const auto& named : module.named_parameters()) names.push_back(named.name);
    EXPECT_EQ(names, loaded->learner->model()->names());
    // The stranger's row: raw inputs hold NaN for the values the log does not have, which the
    // module reads as the training mean.
    const torch::jit::Module encoded = torch::jit::load(dir.file(v.name + "_rows.pt"));
    const auto features = string_list(module.attr("feature_names"));
    const auto loyalty = std::find(features.begin(), features.end(), "user:loyalty_member");
    ASSERT_NE(loyalty, features.end());
    const torch::Tensor dense = encoded.attr("dense").toTensor();
    EXPECT_TRUE(std::isnan(dense[12][loyalty - features.begin()].item<float>()));
    EXPECT_FALSE(std::isnan(dense[0][loyalty - features.begin()].item<float>()));
    EXPECT_EQ(string_list(encoded.attr("users")).back(), "stranger");
    exported.emplace_back(dir.file(v.name + ".pt"), dir.file(v.name + "_rows.pt"));
  }

  if (const std::string missing = python_torch_missing(); !missing.empty()) GTEST_SKIP() << missing;
  const Json python = python_scores(exported);
  ASSERT_EQ(python.size(), variants.size());
  for (std::size_t m = 0; m < variants.size(); ++m) {
    SCOPED_TRACE(variants[m].name + " in Python");
    EXPECT_EQ(python[m]["input_names"], Json::array({"dense", "ids"}));
    EXPECT_EQ(python[m]["rows_input_names"], python[m]["input_names"]);
    const auto& scores = python[m]["scores"];
    ASSERT_EQ(scores.size(), predicted[m].size());
    for (std::size_t r = 0; r < scores.size(); ++r)
      expect_close((columns[m][r] < 0 ? scores[r] : scores[r][columns[m][r]]).get<double>(),
                   predicted[m][r], "row " + std::to_string(r));
  }
}

// A text run adapted to its new classes and training classes together (adapt --all-new
// --with-training-classes) with `steps` steps: the adapted model's file.
std::string adapt_to_every_class(const std::string& run, int steps) {
  ml::inference::AdaptOptions a;
  a.checkpoint = run;
  a.all_new = true;
  a.with_training_classes = true;
  a.steps = steps;
  a.device = "cpu";
  a.threads = 1;
  return ml::inference::adapt(a).tasks.at(0).checkpoint;
}

// predict's 4 most probable classes of each text of `csv`.
ml::inference::TextPredictions predict_top4(const std::string& adapted, const std::string& csv) {
  ml::inference::TextPredictOptions p;
  p.checkpoint = adapted;
  p.input = csv;
  p.top_k = 4;
  p.device = "cpu";
  p.threads = 1;
  return ml::inference::predict_texts(p);
}

TEST(Export, AdaptedTextModelScoresInLibTorchAndPythonAsPredictDoes) {
  ml::testing::TempDir dir;
  const auto config = ml::testing::tiny_text_run(dir);
  ml::train::run_training(config, {});
  const std::string adapted = adapt_to_every_class(config.run.dir, 1);
  // The run itself names no classes: export, like predict, wants the adapted model.
  try {
    export_model(config.run.dir, "", dir, "unadapted");
    ADD_FAILURE() << "a text run's unadapted model was exported";
  } catch (const ml::UsageError& e) {
    EXPECT_TRUE(ml::testing::contains(e.what(), "first and export the model it writes"))
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("unadapted.pt")));
  // A text longer than max_len (cut, as predict cuts it), one of an unknown word, an empty id.
  ml::testing::write_file(dir.file("texts.csv"),
                          "id,text\n7,my lost question 1 please\n8,my fee please\n,zzz\n"
                          "9,my card question 3 please and then some more words after it\n");
  const auto summary = export_model(adapted, dir.file("texts.csv"), dir, "text");
  EXPECT_EQ(summary.family, "transformer");
  EXPECT_EQ(summary.output_kind, "class_probabilities");
  EXPECT_EQ(summary.classes, 4);  // the 2 new and the 2 training classes
  EXPECT_EQ(summary.rows, 4);

  const auto predictions = predict_top4(adapted, dir.file("texts.csv"));
  ASSERT_EQ(predictions.rows.size(), 4u);
  const torch::jit::Module module = torch::jit::load(dir.file("text.pt"));
  const auto classes = string_list(module.attr("class_names"));
  ASSERT_EQ(classes.size(), 4u);
  // predict's probabilities by class name, per row.
  std::vector<std::vector<double>> expected(4, std::vector<double>(4, -1));
  for (std::size_t r = 0; r < 4; ++r)
    for (const auto& [name, probability] : predictions.rows[r].top) {
      const auto c = std::find(classes.begin(), classes.end(), name);
      ASSERT_NE(c, classes.end()) << name;
      expected[r][static_cast<std::size_t>(c - classes.begin())] = probability;
    }
  const torch::Tensor ours = libtorch_scores(dir.file("text.pt"), dir.file("text_rows.pt"));
  ASSERT_EQ(ours.sizes(), (std::vector<std::int64_t>{4, 4}));
  for (std::int64_t r = 0; r < 4; ++r)
    for (std::int64_t c = 0; c < 4; ++c)
      expect_close(
          ours[r][c].item<double>(), expected[r][c],
          "LibTorch, row " + std::to_string(r) + ", class " + classes[static_cast<std::size_t>(c)]);
  EXPECT_GT((ours - ours[0]).abs().max().item<double>(), 1e-7);
  const torch::jit::Module encoded = torch::jit::load(dir.file("text_rows.pt"));
  EXPECT_EQ(string_list(encoded.attr("row_ids")), (std::vector<std::string>{"7", "8", "", "9"}));
  EXPECT_EQ(encoded.attr("tokens").toTensor().size(1), 10);

  if (const std::string missing = python_torch_missing(); !missing.empty()) GTEST_SKIP() << missing;
  const Json python = python_scores({{dir.file("text.pt"), dir.file("text_rows.pt")}});
  ASSERT_EQ(python.size(), 1u);
  EXPECT_EQ(python[0]["class_names"], Json(classes));
  EXPECT_EQ(python[0]["output_kind"], "class_probabilities");
  EXPECT_EQ(python[0]["input_names"], Json::array({"tokens", "mask"}));
  const auto& scores = python[0]["scores"];
  ASSERT_EQ(scores.size(), 4u);
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t c = 0; c < 4; ++c)
      expect_close(scores[r][c].get<double>(), expected[r][c],
                   "Python, row " + std::to_string(r) + ", class " + classes[c]);
}

// The backbone path of issue 13 end to end: a text run's encoder exported (--encoder), read
// back as another run's frozen TorchScript backbone with LoRA adapters, meta-trained, adapted
// and exported again: the encoder gives the run's own representation, and the adapted backbone
// model scores in LibTorch as predict does.
TEST(Export, ATextRunsEncoderBecomesABackboneWhoseAdaptedModelExports) {
  ml::testing::TempDir dir;
  const auto config = ml::testing::tiny_text_run(dir);
  ml::train::run_training(config, {});
  ml::exporting::ExportOptions e;
  e.checkpoint = config.run.dir;
  e.encoder = true;
  e.output = dir.file("encoder.pt");
  e.threads = 1;
  try {
    ml::exporting::export_torchscript(e);
    ADD_FAILURE() << "--encoder without --tokenizer-output was accepted";
  } catch (const ml::UsageError& error) {
    EXPECT_TRUE(ml::testing::contains(error.what(), "--tokenizer-output")) << error.what();
  }
  e.tokenizer_output = dir.file("encoder.tokenizer");
  const auto summary = ml::exporting::export_torchscript(e);
  EXPECT_EQ(summary.output_kind, "vectors");
  EXPECT_EQ(summary.vector_dim, 16);

  Json j;
  ml::config::to_json(j, config);
  j["model"] = Json::parse(R"({"type": "backbone", "hidden": [8],
      "backbone": {"dim": 16, "max_len": 10}, "adapter": {"kind": "lora", "rank": 2}})");
  j["model"]["backbone"]["file"] = e.output;
  j["model"]["backbone"]["tokenizer"] = e.tokenizer_output;
  j["meta"]["inner_params"] = "adapters";
  j["run"]["dir"] = dir.file("backbone_run");
  const auto backbone_config = ml::config::config_from_json(j);
  ml::train::run_training(backbone_config, {});

  // The encoder computes the first run's representation of every text.
  const auto first = ml::run::load_text_run(config.run.dir, torch::kCPU, "");
  const auto second = ml::run::load_text_run(backbone_config.run.dir, torch::kCPU, "");
  EXPECT_TRUE(second.data->tokens.equal(first.data->tokens));
  ml::models::Batch all;
  all.tokens = first.data->tokens;
  all.mask = first.data->mask;
  all.dense = torch::empty({all.tokens.size(0), 0});
  all.ids = torch::empty({all.tokens.size(0), 0}, torch::kInt64);
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor represented =
        first.learner->model()->represent(all, first.learner->model()->params());
    EXPECT_TRUE(torch::allclose(second.data->vectors, represented, 1e-5, 1e-5));
  }

  const std::string adapted = adapt_to_every_class(backbone_config.run.dir, 2);
  ml::testing::write_file(dir.file("texts.csv"),
                          "id,text\n7,my lost question 1 please\n8,my fee please\n9,my card\n");
  const auto exported = export_model(adapted, dir.file("texts.csv"), dir, "backbone");
  EXPECT_EQ(exported.family, "backbone");
  const auto predictions = predict_top4(adapted, dir.file("texts.csv"));
  const torch::jit::Module module = torch::jit::load(dir.file("backbone.pt"));
  const auto classes = string_list(module.attr("class_names"));
  const torch::Tensor ours = libtorch_scores(dir.file("backbone.pt"), dir.file("backbone_rows.pt"));
  ASSERT_EQ(ours.size(0), 3);
  for (std::size_t r = 0; r < 3; ++r)
    for (const auto& [name, probability] : predictions.rows[r].top) {
      const auto c = std::find(classes.begin(), classes.end(), name);
      ASSERT_NE(c, classes.end()) << name;
      expect_close(ours[static_cast<std::int64_t>(r)][c - classes.begin()].item<double>(),
                   probability, "row " + std::to_string(r) + ", class " + name);
    }
}

TEST(ExportCli, WritesTheModelAndRowsAndRefusesWithOneLineAndItsExitCode) {
  ml::testing::TempDir dir;
  ml::config::Config config = ml::testing::synthetic_shop(dir, 200, 8, 3000);
  config.model.hidden = {8};
  config.meta.iterations = 2;
  config.train.validate_every = 0;
  ml::train::run_training(config, {});
  // The item-title / user-sequence model: not exported yet.
  ml::config::Config context = config;
  context.model.type = ml::config::ModelType::kEmbeddingMlp;
  context.features.hash_buckets = 64;
  context.model.user_sequence.length = 2;
  context.run.dir = dir.file("context_run");
  ml::train::run_training(context, {});
  const std::string rows = rows_csv(dir, config.data.files.at(0), 3);
  ml::testing::write_file(dir.file("old.pt"), "old");
  ml::testing::write_file(dir.file("file"), "a file, not a folder");
  const std::string q_run = shell_quote(config.run.dir), q_rows = shell_quote(rows);
  const std::string out = dir.file("out");
  struct Case {
    std::string args;
    int code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"export --checkpoint " + q_run + " --output " + shell_quote(out + "/model.pt") +
           " --inputs " + q_rows + " --inputs-output " + shell_quote(out + "/rows.pt"),
       0, ""},
      // New rows for a module exported before: no model written.
      {"export --checkpoint " + q_run + " --inputs " + q_rows + " --inputs-output " +
           shell_quote(out + "/more_rows.pt"),
       0, ""},
      {"export --checkpoint " + q_rows + " --output " + shell_quote(dir.file("old.pt")), 5,
       "is not a metalearn checkpoint"},
      {"export --checkpoint " + q_run + " --output " + shell_quote(dir.file("file") + "/model.pt"),
       9, "cannot write"},
      {"export --checkpoint " + q_run, 2, "nothing to write"},
      {"export --checkpoint " + q_run + " --output " + shell_quote(dir.file("x.pt")) +
           " --inputs " + q_rows,
       2, "needs --inputs-output"},
      {"export --checkpoint " + q_run + " --output " + shell_quote(dir.file("y.pt")) +
           " --inputs " + q_rows + " --inputs-output " + q_rows,
       2, "is the --inputs file"},
      {"export --checkpoint " + shell_quote(context.run.dir) + " --output " +
           shell_quote(dir.file("context.pt")),
       8, "model.item_text / model.user_sequence"}};
  std::vector<std::string> args;
  for (const auto& c : cases) args.push_back(c.args);
  const auto results = ml::testing::run_cli_many(args);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].args);
    EXPECT_EQ(results[i].code, cases[i].code) << results[i].err;
    if (cases[i].code == 0) continue;
    EXPECT_EQ(results[i].err_lines(), 1) << results[i].err;
    EXPECT_EQ(results[i].err.rfind("metalearn export: error: ", 0), 0u) << results[i].err;
    EXPECT_TRUE(ml::testing::contains(results[i].err, cases[i].says)) << results[i].err;
  }
  // The summary says what the module reads and returns.
  EXPECT_TRUE(ml::testing::contains(results[0].out, "model(dense [n, ")) << results[0].out;
  EXPECT_TRUE(ml::testing::contains(results[0].out, "-> probability [n]")) << results[0].out;
  EXPECT_TRUE(ml::testing::contains(results[0].out, "4 encoded rows")) << results[0].out;
  EXPECT_EQ(torch::jit::load(out + "/rows.pt").attr("ids").toTensor().size(0), 4);
  EXPECT_TRUE(ml::testing::contains(results[1].out, "wrote " + out + "/more_rows.pt: 4 encoded"))
      << results[1].out;
  EXPECT_FALSE(ml::testing::contains(results[1].out, "model(dense")) << results[1].out;
  EXPECT_TRUE(torch::allclose(torch::jit::load(out + "/more_rows.pt").attr("dense").toTensor(),
                              torch::jit::load(out + "/rows.pt").attr("dense").toTensor(),
                              /*rtol=*/0, /*atol=*/0, /*equal_nan=*/true));
  // A failed export leaves what was there, and no temporary beside it.
  EXPECT_EQ(ml::testing::slurp(dir.file("old.pt")), "old");
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  for (const char* never : {"x.pt", "y.pt", "context.pt"})
    EXPECT_FALSE(std::filesystem::exists(dir.file(never))) << never;
}

}  // namespace
