// model.type = "backbone": a TorchScript text encoder, scripted and saved at test time with
// Debian's python3-torch (tests/python/make_backbone.py), under the tool's head and adapters.
// Loading checks (inputs, output shape, not TorchScript), the frozen backbone's cache, the
// task-stacked meta-gradient against the per-task loop with FiLM, LoRA and a trainable backbone,
// what each inner_params choice adapts, a SentencePiece model as the tokenizer, and the CLI
// end to end with a changed backbone file refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "config/config.hpp"
#include "features/tokenizer.hpp"
#include "meta/meta_learner.hpp"
#include "meta_gradients.hpp"
#include "models/backbone_model.hpp"
#include "models/model.hpp"
#include "models/torchscript_backbone.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/learner_state.hpp"
#include "run/run_layout.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

namespace {

using ml::config::Json;
using ml::meta::MetaLearner;
using ml::meta::TaskBatch;
using ml::models::BackboneModelImpl;
using ml::models::TorchScriptBackbone;
using torch::Tensor;

constexpr const char* kPython = "/usr/bin/python3";

// Whether Debian's python3-torch can script the test encoders (CI installs it: scripts/setup.sh).
bool have_python_torch() {
  static const bool ok =
      std::system((std::string(kPython) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  return ok;
}

#define REQUIRE_PYTHON_TORCH()                                                   \
  if (!have_python_torch())                                                      \
  GTEST_SKIP() << kPython                                                        \
               << " cannot import torch (apt install python3-torch): the tests " \
                  "script their backbones with it"

// Scripts make_backbone.py's `variant` into `path`.
void make_backbone(const std::string& path, std::int64_t vocab, std::int64_t dim,
                   const std::string& variant) {
  const std::string command =
      std::string(kPython) + " " +
      ml::testing::shell_quote(std::string(ML_SOURCE_DIR) + "/tests/python/make_backbone.py") +
      " " + ml::testing::shell_quote(path) + " " + std::to_string(vocab) + " " +
      std::to_string(dim) + " " + variant;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

// Six intents of eight texts each (as tests/test_text_pipeline.cpp's), a tokenizer trained on
// all of them written as a metalearn tokenizer file, and a config of model.type "backbone"
// over a pooled encoder of width 8.
struct BackboneRun {
  ml::config::Json json;
  std::int64_t vocab = 0;
  std::string backbone, tokenizer;
};

BackboneRun intents_with_backbone(const ml::testing::TempDir& dir,
                                  const std::string& variant = "pooled") {
  BackboneRun r;
  std::string csv = "text,category\n";
  std::vector<std::string> texts;
  for (const char* intent : {"card", "topup", "refund", "pin", "fee", "lost"})
    for (int i = 0; i < 8; ++i) {
      const std::string text =
          "my " + std::string(intent) + " question number " + std::to_string(i) + " please";
      csv += "\"" + text + "\"," + intent + "\n";
      texts.push_back(text);
    }
  ml::testing::write_file(dir.file("intents.csv"), csv);
  ml::features::TokenizerOptions options;
  options.vocab_size = 40;
  options.hash_buckets = 8;
  const auto tokenizer = ml::features::Tokenizer::train(texts, options);
  r.vocab = tokenizer.vocab_size();
  r.tokenizer = dir.file("intents.tokenizer");
  ml::testing::write_file(r.tokenizer, tokenizer.to_bytes());
  r.backbone = dir.file("encoder.pt");
  make_backbone(r.backbone, r.vocab, 8, variant);
  r.json = Json::parse(R"({
    "data": {"text": {"column": "text", "class_column": "category"}},
    "task": {"label": {"kind": "multiclass", "ways": 3}, "support": 2, "query": 3},
    "model": {"type": "backbone", "hidden": [6],
              "backbone": {"dim": 8, "max_len": 10}},
    "meta": {"algorithm": "fomaml", "meta_batch": 2, "inner_steps": 2, "inner_lr": 0.3},
    "split": {"new_classes": ["lost"], "validation_classes": ["fee"]}
  })");
  r.json["data"]["files"] = {dir.file("intents.csv")};
  r.json["model"]["backbone"]["file"] = r.backbone;
  r.json["model"]["backbone"]["tokenizer"] = r.tokenizer;
  return r;
}

ml::config::Config config_of(const Json& j) {
  return ml::config::config_from_json(j);
}

std::string load_error(const Json& j) {
  try {
    TorchScriptBackbone::load(config_of(j), torch::kCPU);
  } catch (const ml::DataError& e) {
    return e.what();
  }
  return "";
}

TEST(BackboneLoad, ChecksTheDeclaredInputsAndOutputAgainstTheModule) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir);
  EXPECT_EQ(load_error(r.json), "");

  Json wrong_dim = r.json;
  wrong_dim["model"]["backbone"]["dim"] = 16;
  EXPECT_TRUE(ml::testing::contains(load_error(wrong_dim), "returns shape [2, 8]"))
      << load_error(wrong_dim);
  EXPECT_TRUE(ml::testing::contains(load_error(wrong_dim), "expect [2, 16]"));

  Json ids_only = r.json;
  ids_only["model"]["backbone"]["inputs"] = "ids";
  EXPECT_TRUE(ml::testing::contains(load_error(ids_only), "its forward takes 2 input(s)"))
      << load_error(ids_only);

  // A tokenizer with more ids than the backbone's token table: refused at load, with the cause.
  try {
    TorchScriptBackbone::load(config_of(r.json), torch::kCPU, 0, r.vocab + 10);
    ADD_FAILURE() << "ids beyond the backbone's vocabulary were accepted";
  } catch (const ml::DataError& e) {
    EXPECT_TRUE(ml::testing::contains(e.what(), "with ids up to " + std::to_string(r.vocab + 9)))
        << e.what();
    EXPECT_TRUE(ml::testing::contains(e.what(), "index out of range")) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
  Json folder = r.json;
  folder["model"]["backbone"]["file"] = dir.path().string();
  EXPECT_TRUE(ml::testing::contains(load_error(folder), "is a folder")) << load_error(folder);

  Json no_such_method = r.json;
  no_such_method["model"]["backbone"]["method"] = "encode";
  EXPECT_TRUE(ml::testing::contains(load_error(no_such_method), "has no method 'encode'"))
      << load_error(no_such_method);

  Json token_states = r.json;
  token_states["model"]["backbone"]["output"] = "mean";
  EXPECT_TRUE(ml::testing::contains(load_error(token_states), "expect [2, 10, 8]"))
      << load_error(token_states);

  const std::string tuple = dir.file("tuple.pt");
  make_backbone(tuple, r.vocab, 8, "tuple");
  Json returns_tuple = r.json;
  returns_tuple["model"]["backbone"]["file"] = tuple;
  EXPECT_TRUE(ml::testing::contains(load_error(returns_tuple), "not a tensor"))
      << load_error(returns_tuple);

  Json not_torchscript = r.json;
  not_torchscript["model"]["backbone"]["file"] = dir.file("intents.csv");
  EXPECT_TRUE(ml::testing::contains(load_error(not_torchscript), "not a TorchScript module"))
      << load_error(not_torchscript);
  EXPECT_TRUE(ml::testing::contains(load_error(not_torchscript), "intents.csv"));
}

TEST(BackboneLoad, EveryDeclaredSignatureGivesTheSameVectors) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir);
  const auto pooled = TorchScriptBackbone::load(config_of(r.json), torch::kCPU);
  const Tensor ids = torch::tensor({{3, 4, 5, 0}, {6, 7, 0, 0}}, torch::kInt64);
  const Tensor mask = ids.ne(0);
  const Tensor expected = pooled->encode(ids, mask);
  ASSERT_EQ(expected.sizes(), (std::vector<std::int64_t>{2, 8}));

  // The same weights (seed 0) behind each signature make_backbone.py writes.
  struct Variant {
    const char* name;
    Json backbone;
  } variants[] = {{"tokens", {{"output", "mean"}}},
                  {"ids", {{"inputs", "ids"}}},
                  {"long_mask", {{"mask", "int64"}}}};
  for (const auto& v : variants) {
    Json j = r.json;
    const std::string file = dir.file(std::string(v.name) + ".pt");
    make_backbone(file, r.vocab, 8, v.name);
    j["model"]["backbone"]["file"] = file;
    j["model"]["backbone"].update(v.backbone);
    const auto backbone = TorchScriptBackbone::load(config_of(j), torch::kCPU);
    EXPECT_TRUE(torch::allclose(backbone->encode(ids, mask), expected, 1e-5, 1e-6)) << v.name;
  }
}

TEST(BackboneLoad, ATrainableBackboneRunsAndIsDifferentiatedWithTheWeightsGiven) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir);
  r.json["model"]["backbone"]["trainable"] = true;
  const auto backbone = TorchScriptBackbone::load(config_of(r.json), torch::kCPU);
  const Tensor ids = torch::tensor({{3, 4, 5, 0}, {6, 7, 0, 0}}, torch::kInt64);
  const Tensor mask = ids.ne(0);
  const Tensor own = backbone->encode(ids, mask);
  std::vector<Tensor> weights;
  for (const auto& w : backbone->parameters())
    weights.push_back(w.detach().clone().requires_grad_());
  const Tensor same = backbone->encode(ids, mask, &weights);
  EXPECT_TRUE(torch::allclose(same, own, 1e-6, 1e-7));
  const auto grads = torch::autograd::grad({same.pow(2).sum()}, weights, {}, false, false, true);
  std::size_t with_gradient = 0;
  for (const auto& g : grads)
    if (g.defined() && g.abs().sum().item<double>() > 0) ++with_gradient;
  EXPECT_EQ(with_gradient, weights.size());
  // Other weights, other vectors; the module's own weights are untouched.
  std::vector<Tensor> doubled;
  for (const auto& w : weights) doubled.push_back(w.detach() * 2);
  EXPECT_FALSE(torch::allclose(backbone->encode(ids, mask, &doubled), own, 1e-3, 1e-3));
  EXPECT_TRUE(torch::allclose(backbone->encode(ids, mask), own, 1e-6, 1e-7));
}

TEST(BackboneRunData, AFrozenBackboneEncodesEveryTextOnceAndBatchesCarryItsVectors) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir);
  const auto config = config_of(r.json);
  const auto data = ml::pipeline::prepare_text_run_data(config);
  ASSERT_TRUE(data->backbone);
  ASSERT_EQ(data->tokens.size(1), 10);
  ASSERT_EQ(data->vectors.sizes(), (std::vector<std::int64_t>{48, 8}));
  EXPECT_TRUE(
      torch::allclose(data->vectors, data->backbone->encode(data->tokens, data->mask), 1e-5, 1e-6));
  EXPECT_FALSE(data->vectors.requires_grad());

  auto learner = ml::run::build_text_learner(config, *data, torch::kCPU);
  const auto& model = dynamic_cast<const BackboneModelImpl&>(*learner->model());
  // Frozen: the backbone's weights are not the model's parameters.
  for (const auto& name : model.names()) EXPECT_NE(name.rfind("backbone_", 0), 0u) << name;
  // A batch with the cached vectors and one with tokens alone score alike.
  const auto batch = data->batch({0, 9, 17}, {0, 1, 2});
  ml::models::Batch tokens_only = batch;
  tokens_only.dense = torch::empty({3, 0});
  EXPECT_TRUE(torch::allclose(model.forward(batch, model.params()),
                              model.forward(tokens_only, model.params()), 1e-5, 1e-6));
}

std::vector<TaskBatch> episodes(const ml::pipeline::TextRunData& data, int count) {
  std::vector<TaskBatch> tasks;
  const auto& sampler = data.sampler(ml::tasks::ClassSplitPart::kTrain);
  for (int t = 0; t < count; ++t)
    tasks.push_back(ml::pipeline::make_text_task_batch(data, sampler.sample(t), torch::kCPU));
  return tasks;
}

TEST(BackboneMetaLearning, StackedMetaGradientMatchesThePerTaskLoopWithEachAdapter) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir);
  struct Case {
    const char* name;
    Json model;
    const char* algorithm;
  } cases[] = {
      {"film maml", {{"adapter", {{"kind", "film"}}}}, "maml"},
      {"film maml without a tower",
       {{"hidden", Json::array()}, {"adapter", {{"kind", "film"}}}},
       "maml"},
      {"lora maml", {{"adapter", {{"kind", "lora"}, {"rank", 2}}}}, "maml"},
      {"lora metasgd", {{"adapter", {{"kind", "lora"}, {"rank", 2}}}}, "metasgd"},
      {"trainable fomaml", {{"backbone", {{"trainable", true}}}}, "fomaml"},
      {"trainable maml film",
       {{"backbone", {{"trainable", true}}}, {"adapter", {{"kind", "film"}}}},
       "maml"},
  };
  for (const auto& c : cases) {
    Json j = r.json;
    j["model"].merge_patch(c.model);
    j["meta"]["algorithm"] = c.algorithm;
    j["meta"]["inner_params"] = "adapters";
    const auto config = config_of(j);
    const auto data = ml::pipeline::prepare_text_run_data(config);
    auto learner = ml::run::build_text_learner(config, *data, torch::kCPU);
    const auto tasks = episodes(*data, 3);
    const double stacked_loss = learner->accumulate_meta_gradient(tasks);
    const auto stacked = ml::testing::take_gradients(*learner);
    const double reference_loss = learner->accumulate_meta_gradient_per_task(tasks);
    const auto reference = ml::testing::take_gradients(*learner);
    ASSERT_TRUE(std::isfinite(stacked_loss)) << c.name;
    EXPECT_NEAR(stacked_loss, reference_loss, 1e-5) << c.name;
    const auto& names = learner->model()->names();
    bool backbone_moved = false;
    for (std::size_t i = 0; i < stacked.size(); ++i) {
      const std::string name = i < names.size() ? names[i] : "inner lr";
      EXPECT_TRUE(torch::allclose(stacked[i], reference[i], 1e-4, 1e-6)) << c.name << ": " << name;
      if (name.rfind("backbone_", 0) == 0 && stacked[i].abs().sum().item<double>() > 0)
        backbone_moved = true;
    }
    // A trainable backbone's weights are the model's leaves and get a meta-gradient (through
    // its TorchScript graph).
    for (std::size_t i = 0; i < names.size(); ++i)
      EXPECT_TRUE(learner->model()->params()[i].is_leaf()) << names[i];
    EXPECT_EQ(backbone_moved, config.model.backbone.trainable) << c.name;
  }
}

TEST(BackboneMetaLearning, InnerParamsAdaptersAdaptsTheAdaptersAndHeadAndNeverTheBackbone) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir);
  Json j = r.json;
  j["model"]["adapter"] = {{"kind", "lora"}, {"rank", 2}};
  j["model"]["backbone"]["trainable"] = true;
  for (const char* which : {"adapters", "dense", "all"}) {
    j["meta"]["inner_params"] = which;
    const auto config = config_of(j);
    const auto data = ml::pipeline::prepare_text_run_data(config);
    auto learner = ml::run::build_text_learner(config, *data, torch::kCPU);
    const auto& names = learner->model()->names();
    const auto& mask = learner->inner_mask();
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string& n = names[i];
      const bool backbone = n.rfind("backbone_", 0) == 0;
      const bool adapter_or_head = n.find("lora") != std::string::npos || n.rfind("head", 0) == 0;
      const bool expected = !backbone && (std::string(which) != "adapters" || adapter_or_head);
      EXPECT_EQ(mask[i], expected) << which << ": " << n;
    }
  }
}

TEST(BackboneTraining, ATrainableBackboneIsMetaTrainedSavedAndResumedToTheSameWeights) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir);
  r.json["model"]["backbone"]["trainable"] = true;
  r.json["model"]["backbone"]["lr"] = 0.01;
  r.json["meta"]["iterations"] = 4;
  r.json["train"] = {{"validate_every", 2}, {"checkpoint_every", 2}};
  r.json["run"] = {{"dir", dir.file("whole")}, {"threads", 1}};
  const auto whole = config_of(r.json);
  ml::train::run_training(whole, {});
  r.json["run"]["dir"] = dir.file("resumed");
  const auto resumed = config_of(r.json);
  ml::train::run_training(resumed, {false, 2});
  ml::train::run_training(resumed, {true, 0});

  const auto file = TorchScriptBackbone::load(whole, torch::kCPU);
  const auto a = ml::run::load_text_run(
      ml::run::RunLayout(whole.run.dir).latest_checkpoint().string(), torch::kCPU, "");
  const auto b = ml::run::load_text_run(
      ml::run::RunLayout(resumed.run.dir).latest_checkpoint().string(), torch::kCPU, "");
  const auto& names = a.learner->model()->names();
  const auto pa = a.learner->model()->params(), pb = b.learner->model()->params();
  const auto original = file->parameters();
  std::size_t moved = 0;
  for (std::size_t i = 0; i < original.size(); ++i) {
    ASSERT_EQ(names[i].rfind("backbone_", 0), 0u) << names[i];
    // Exact resume: the same weights, bit for bit.
    EXPECT_TRUE(pa[i].equal(pb[i])) << names[i];
    if (!pa[i].equal(original[i])) ++moved;
  }
  // Meta-training moved the backbone away from the file's weights (at model.backbone.lr).
  EXPECT_GT(moved, original.size() / 2);
}

TEST(BackboneTraining, ATrainableBackboneThatCannotTrainIsSaidSo) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir, "detached");
  r.json["model"]["backbone"]["trainable"] = true;
  r.json["meta"]["iterations"] = 2;
  r.json["train"] = {{"validate_every", 0}};
  r.json["run"] = {{"dir", dir.file("run")}, {"threads", 1}};
  ml::testing::write_file(dir.file("config.json"), r.json.dump());
  const auto train = ml::testing::run_cli("train --config " + dir.file("config.json"));
  ASSERT_EQ(train.code, 0) << train.err;
  EXPECT_TRUE(ml::testing::contains(train.err, "gave none of the backbone's weights a gradient"))
      << train.err;
  // A backbone that does train is not warned about.
  BackboneRun good = intents_with_backbone(dir);
  good.json["model"]["backbone"]["trainable"] = true;
  good.json["meta"]["iterations"] = 2;
  good.json["train"] = {{"validate_every", 0}};
  good.json["run"] = {{"dir", dir.file("good")}, {"threads", 1}};
  ml::testing::write_file(dir.file("good.json"), good.json.dump());
  const auto trains = ml::testing::run_cli("train --config " + dir.file("good.json"));
  ASSERT_EQ(trains.code, 0) << trains.err;
  EXPECT_FALSE(ml::testing::contains(trains.err, "gave none of the backbone's weights"))
      << trains.err;
}

TEST(BackboneTokenizer, ASentencePieceModelIsReadAsItIsWithItsOwnUnknownId) {
  ml::testing::TempDir dir;
  std::vector<std::string> texts;
  for (int i = 0; i < 30; ++i)
    texts.push_back("card topup refund pin fee number " + std::to_string(i));
  ml::features::TokenizerOptions options;
  options.vocab_size = 30;
  const auto trained = ml::features::Tokenizer::train(texts, options);
  // The SentencePiece model inside a metalearn tokenizer: what follows its two header lines.
  const std::string bytes = trained.to_bytes();
  const std::size_t model_at = bytes.find('\n', bytes.find('\n') + 1) + 1;
  ml::testing::write_file(dir.file("plain.model"), bytes.substr(model_at));
  ml::testing::write_file(dir.file("ours.tokenizer"), bytes);

  const auto plain = ml::features::Tokenizer::from_file(dir.file("plain.model"));
  const auto ours = ml::features::Tokenizer::from_file(dir.file("ours.tokenizer"));
  EXPECT_EQ(plain.hash_buckets(), 0);
  EXPECT_EQ(plain.vocab_size(), trained.piece_count());
  EXPECT_EQ(ours.vocab_size(), trained.vocab_size());
  EXPECT_EQ(plain.encode("card fee 12"), trained.encode("card fee 12"));
  // An unseen character: ours hashes it into a fallback bucket, the plain model keeps <unk> (1).
  const auto unknown_plain = plain.encode("жук");
  const auto unknown_ours = ours.encode("жук");
  EXPECT_NE(std::find(unknown_plain.begin(), unknown_plain.end(), 1), unknown_plain.end());
  for (std::int64_t id : unknown_ours) EXPECT_NE(id, 1);

  ml::testing::write_file(dir.file("newer.tokenizer"), "metalearn-tokenizer 99\n{}\nxyz");
  try {
    ml::features::Tokenizer::from_file(dir.file("newer.tokenizer"));
    ADD_FAILURE() << "a tokenizer of another format was read";
  } catch (const ml::DataError& e) {
    EXPECT_TRUE(ml::testing::contains(e.what(), "of another format ('metalearn-tokenizer 99')"))
        << e.what();
  }
  ml::testing::write_file(dir.file("garbage.model"), "not a model\xff\x01 at all");
  try {
    ml::features::Tokenizer::from_file(dir.file("garbage.model"));
    ADD_FAILURE() << "a file that is no tokenizer was read";
  } catch (const ml::DataError& e) {
    EXPECT_TRUE(ml::testing::contains(
        e.what(), "neither a metalearn tokenizer, a SentencePiece model nor a WordPiece"))
        << e.what();
  }
  // Text is taken for a vocabulary that lacks its [UNK], not handed to SentencePiece's parser.
  ml::testing::write_file(dir.file("words.txt"), "not a model at all");
  try {
    ml::features::Tokenizer::from_file(dir.file("words.txt"));
    ADD_FAILURE() << "a text file that is no tokenizer was read";
  } catch (const ml::DataError& e) {
    EXPECT_TRUE(ml::testing::contains(e.what(), "no line \"[UNK]\" among its 1 lines")) << e.what();
  }
}

// A BERT-style vocab.txt as the backbone's tokenizer: texts reach the module as [CLS] pieces
// [SEP], the run's checkpoint keeps the vocabulary (a later edit of the file changes nothing),
// and a case setting beside a SentencePiece tokenizer is refused.
TEST(BackboneTokenizer, AWordPieceVocabularyFeedsTheBackboneAndTravelsInTheCheckpoint) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir);
  std::vector<std::string> vocab = {"[PAD]",    "[UNK]",  "[CLS]",  "[SEP]", "my",
                                    "question", "number", "please", "card",  "top",
                                    "##up",     "refund", "pin",    "fee",   "lost"};
  for (int i = 0; i < 8; ++i) vocab.push_back(std::to_string(i));
  std::string text;
  for (const auto& t : vocab) text += t + "\n";
  ml::testing::write_file(dir.file("vocab.txt"), text);
  make_backbone(r.backbone, static_cast<std::int64_t>(vocab.size()), 8, "pooled");
  r.json["model"]["backbone"]["tokenizer"] = dir.file("vocab.txt");
  r.json["meta"]["iterations"] = 2;
  r.json["train"] = {{"validate_every", 0}};
  r.json["run"] = {{"dir", dir.file("run")}, {"threads", 1}};
  const auto config = config_of(r.json);
  const auto data = ml::pipeline::prepare_text_run_data(config);
  EXPECT_EQ(data->tokenizer->kind(), "wordpiece, lower-cased");
  // "My TOPUP question number 3 please": [CLS] my top ##up question number 3 please [SEP].
  const std::vector<std::int64_t> expected = {2, 4, 9, 10, 5, 6, 18, 7, 3};
  EXPECT_EQ(data->tokenizer->encode("My TOPUP question number 3 please"), expected);
  const auto row = std::find(data->dataset.texts.begin(), data->dataset.texts.end(),
                             "my topup question number 3 please");
  ASSERT_NE(row, data->dataset.texts.end());
  const auto r_index = row - data->dataset.texts.begin();
  EXPECT_TRUE(data->tokens[r_index].slice(0, 0, 9).equal(torch::tensor(expected)));
  EXPECT_TRUE(
      torch::allclose(data->vectors, data->backbone->encode(data->tokens, data->mask), 1e-5, 1e-6));

  ml::train::run_training(config, {});
  ml::testing::write_file(dir.file("vocab.txt"), "[UNK]\n");  // the run no longer needs it
  const auto run = ml::run::load_text_run(
      ml::run::RunLayout(config.run.dir).latest_checkpoint().string(), torch::kCPU, "");
  EXPECT_EQ(run.data->tokenizer->kind(), "wordpiece, lower-cased");
  EXPECT_EQ(run.data->tokenizer->encode("My TOPUP question number 3 please"), expected);

  BackboneRun spm = intents_with_backbone(dir);
  spm.json["model"]["backbone"]["lowercase"] = "yes";
  try {
    ml::pipeline::prepare_text_run_data(config_of(spm.json));
    ADD_FAILURE() << "lowercase beside a SentencePiece tokenizer was accepted";
  } catch (const ml::ConfigError& e) {
    EXPECT_TRUE(ml::testing::contains(e.what(),
                                      "model.backbone.lowercase = \"yes\": applies to a "
                                      "WordPiece vocabulary"))
        << e.what();
  }
}

TEST(BackboneConfig, RefusesWhatCannotWorkWithOneLineNamingTheKey) {
  ml::testing::TempDir dir;
  Json base = Json::parse(R"({
    "data": {"files": ["x.csv"], "text": {"column": "text", "class_column": "category"}},
    "task": {"label": {"kind": "multiclass", "ways": 3}, "support": 2, "query": 3},
    "model": {"type": "backbone", "backbone": {"file": "e.pt", "tokenizer": "t.model", "dim": 8}}
  })");
  auto error_of = [](const Json& j) -> std::string {
    try {
      config_of(j);
    } catch (const ml::ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error_of(base), "");
  Json no_dim = base;
  no_dim["model"]["backbone"].erase("dim");
  EXPECT_TRUE(ml::testing::contains(error_of(no_dim), "model.backbone.dim: required"));
  Json no_file = base;
  no_file["model"]["backbone"].erase("file");
  EXPECT_TRUE(ml::testing::contains(error_of(no_file), "model.backbone.file: required"));
  Json reptile = base;
  reptile["model"]["backbone"]["trainable"] = true;
  reptile["meta"]["algorithm"] = "reptile";
  EXPECT_TRUE(ml::testing::contains(error_of(reptile), "meta.algorithm = \"reptile\""));
  Json adapter_on_transformer = base;
  adapter_on_transformer["model"] = {{"type", "transformer"}, {"adapter", {{"kind", "lora"}}}};
  EXPECT_TRUE(ml::testing::contains(error_of(adapter_on_transformer), "model.adapter.kind"));
  Json adapters_on_transformer = base;
  adapters_on_transformer["model"] = {{"type", "transformer"}};
  adapters_on_transformer["meta"]["inner_params"] = "adapters";
  EXPECT_TRUE(
      ml::testing::contains(error_of(adapters_on_transformer), "meta.inner_params = \"adapters\""));
  Json no_tower = base;
  no_tower["model"]["hidden"] = Json::array();
  EXPECT_EQ(error_of(no_tower), "");
  no_tower["model"]["adapter"] = {{"kind", "lora"}};
  EXPECT_TRUE(ml::testing::contains(error_of(no_tower), "model.hidden is empty"));
  Json mlp_without_tower = Json::parse(R"({"data": {"files": ["x.csv"], "columns": {"task": "c"}},
    "model": {"hidden": []}})");
  EXPECT_TRUE(ml::testing::contains(error_of(mlp_without_tower), "needs at least one layer"));
  Json purchase_log = Json::parse(R"({"data": {"files": ["x.csv"], "columns": {"task": "c"}},
    "model": {"type": "backbone", "backbone": {"file": "e.pt", "tokenizer": "t", "dim": 8}}})");
  EXPECT_TRUE(ml::testing::contains(error_of(purchase_log), "data.text.column"));
}

TEST(BackboneCli, TrainsAdaptsAndPredictsAndRefusesABackboneFileThatChanged) {
  REQUIRE_PYTHON_TORCH();
  ml::testing::TempDir dir;
  BackboneRun r = intents_with_backbone(dir);
  r.json["model"]["adapter"] = {{"kind", "film"}};
  r.json["meta"]["iterations"] = 6;
  r.json["train"] = {{"validate_every", 3}, {"checkpoint_every", 3}};
  r.json["run"] = {{"dir", dir.file("run")}, {"threads", 1}};
  ml::testing::write_file(dir.file("config.json"), r.json.dump());
  const auto train = ml::testing::run_cli("train --config " + dir.file("config.json"));
  ASSERT_EQ(train.code, 0) << train.err;
  EXPECT_TRUE(ml::testing::contains(train.err, "frozen backbone encoded 48 texts")) << train.err;

  const auto adapt =
      ml::testing::run_cli("adapt --checkpoint " + dir.file("run") +
                           " --all-new --shots 2 --with-training-classes --json --threads 1");
  ASSERT_EQ(adapt.code, 0) << adapt.err;
  const std::string adapted = Json::parse(adapt.out)["tasks"][0]["checkpoint"];
  ml::testing::write_file(dir.file("rows.csv"), "text\nmy lost question number 3 please\n");
  const auto predict =
      ml::testing::run_cli("predict --checkpoint " + adapted + " --input " + dir.file("rows.csv"));
  ASSERT_EQ(predict.code, 0) << predict.err;
  EXPECT_TRUE(ml::testing::contains(predict.out, "lost")) << predict.out;

  // Another backbone in the same file: the run's weights no longer mean anything over it.
  make_backbone(r.backbone, r.vocab, 8, "long_mask");
  const auto changed =
      ml::testing::run_cli("predict --checkpoint " + adapted + " --input " + dir.file("rows.csv"));
  EXPECT_EQ(changed.code, 4) << changed.err;
  EXPECT_TRUE(ml::testing::contains(changed.err, "has changed since the run was trained"))
      << changed.err;
  EXPECT_EQ(changed.err_lines(), 1) << changed.err;
}

}  // namespace
