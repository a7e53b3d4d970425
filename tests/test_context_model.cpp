// Tests of the item-text and user-sequence encoders of purchase-log runs (model.item_text,
// model.user_sequence; models/context_model.hpp): exact point-in-time sequences, a tokenizer
// that never reads held-out tasks' items, the second-order meta-gradient against finite
// differences in float64, the stacked and row-sparse paths against the per-task reference,
// checkpoint round trips and config errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/purchase_log.hpp"
#include "features/feature_space.hpp"
#include "meta/meta_learner.hpp"
#include "meta_gradients.hpp"
#include "models/batch.hpp"
#include "models/context_model.hpp"
#include "pipeline/run_data.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/training_progress.hpp"
#include "tasks/task_set.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"
#include "util/rng.hpp"

namespace {

using ml::features::FeatureSpace;
using ml::meta::MetaLearner;
using ml::meta::TaskBatch;
using ml::models::Batch;
using ml::models::ContextModelImpl;
using ml::testing::TempDir;
using ml::testing::write_file;
using torch::Tensor;

// --- The user sequence: exact, point in time --------------------------------------------------

struct LogRow {
  std::string user, item, task;
  std::int64_t ts;
  int rating;
};

// Tasks A, B (training; either may become validation, so both are listed as new_tasks-free) and
// C (held out). u1's rows in time: a1@100, b1@200, a2@300, b2@300 (the same moment), a3@400;
// u2 buys c1 (held-out task C) at 250 and a4 at 500. One row has no time.
std::vector<LogRow> sequence_rows() {
  return {{"u1", "a1", "A", 100, 5}, {"u1", "b1", "B", 200, 1}, {"u1", "a2", "A", 300, 4},
          {"u1", "b2", "B", 300, 2}, {"u1", "a3", "A", 400, 5}, {"u2", "a1", "A", 150, 2},
          {"u2", "c1", "C", 250, 5}, {"u2", "a4", "A", 500, 1}, {"u2", "b3", "B", 600, 5},
          {"u3", "b1", "B", 110, 4}, {"u3", "c2", "C", 120, 1}, {"u3", "c3", "C", 130, 5},
          {"u3", "c1", "C", 140, 2}, {"u3", "a2", "A", 160, 1}, {"u3", "b2", "B", 170, 5},
          {"u1", "b3", "B", 0, 3}};  // ts 0: written as an empty cell below
}

struct SequenceLog {
  TempDir dir;
  ml::config::Config config;
  std::unique_ptr<ml::pipeline::RunData> data;

  explicit SequenceLog(const std::string& cutoff = "", int length = 2,
                       const std::vector<std::string>& new_tasks = {"C"}) {
    std::string csv = "user,item,task,ts,rating\n";
    for (const auto& r : sequence_rows())
      csv += r.user + "," + r.item + "," + r.task + "," + (r.ts ? std::to_string(r.ts) : "") + "," +
             std::to_string(r.rating) + "\n";
    write_file(dir.file("log.csv"), csv);
    // Training items are titled in Latin letters; C's items in Greek ones only.
    write_file(dir.file("items.csv"),
               "item,title\na1,crunchy oats\na2,oat bran flakes\na3,corn flakes\na4,rice "
               "crisps\nb1,green tea\nb2,black tea\nb3,tea bags\nc1,ωμέγα ψ\nc2,ζήτα ξ\nc3,φ "
               "χι\n");
    ml::config::Json j = {
        {"data",
         {{"files", {dir.file("log.csv")}},
          {"columns",
           {{"user", "user"},
            {"item", "item"},
            {"task", "task"},
            {"timestamp", "ts"},
            {"rating", "rating"}}},
          {"side_tables",
           {{{"files", {dir.file("items.csv")}},
             {"join", "item"},
             {"key", "item"},
             {"features", {{"text", {"title"}}}}}}},
          {"time_format", "unix"},
          {"bad_rows", "skip"}}},
        {"features", {{"aggregates", ml::config::Json::array()}, {"hash_buckets", 1021}}},
        {"task",
         {{"label", {{"kind", "threshold"}, {"target", "rating"}, {"threshold", 4}}},
          {"support", 1},
          {"query", 1},
          {"stratify", "none"}}},
        {"split",
         {{"new_tasks", new_tasks}, {"validation_fraction", 0.0}, {"time_cutoff", cutoff}}},
        {"model",
         {{"type", "embedding_mlp"},
          {"hidden", {4}},
          {"embedding_dim", 4},
          {"item_text", {{"columns", {"title"}}, {"dim", 4}, {"heads", 2}, {"max_len", 6}}},
          {"user_sequence", {{"length", length}, {"heads", 2}, {"ff_dim", 4}}}}},
        {"run", {{"dir", dir.file("run")}, {"device", "cpu"}, {"threads", 1}}}};
    config = ml::config::config_from_json(j);
    data = ml::pipeline::prepare_run_data(config);
  }

  const ml::data::PurchaseLog& log() const { return data->log; }
  // The example of the log's row holding (user, item, ts).
  const ml::tasks::Example& example(const std::string& user, const std::string& item,
                                    std::int64_t ts) const {
    const auto u = log().users.find(user), i = log().items.find(item);
    for (const auto& t : data->tasks.tasks)
      for (const auto& e : t.examples)
        if (u && i && e.user == *u && e.item == *i && e.time == ts) return e;
    throw std::runtime_error("no example " + user + "/" + item + "@" + std::to_string(ts));
  }
  // The item-table row of `item`: its hashed id (bucket 0 is "missing"), as ids column 1.
  std::int64_t bucket(const std::string& item) const {
    return static_cast<std::int64_t>(
        1 + ml::hash_bytes(item.data(), item.size()) %
                static_cast<std::uint64_t>(config.features.hash_buckets - 1));
  }
  std::vector<std::int64_t> buckets(const std::vector<std::string>& items) const {
    std::vector<std::int64_t> out;
    for (const auto& i : items) out.push_back(bucket(i));
    return out;
  }
};

TEST(UserSequence, HoldsTheUsersLastItemsStrictlyBeforeTheExample) {
  SequenceLog fx("", /*length=*/2);
  const auto& enc = fx.data->encoder;
  // The encoder's ids agree with the test's bucket().
  std::vector<float> dense(fx.data->features.dense_dim());
  std::vector<std::int64_t> ids(fx.data->features.id_fields());
  enc.encode(fx.example("u1", "a3", 400), dense.data(), ids.data());
  ASSERT_EQ(ids[ml::models::kItemIdField], fx.bucket("a3"));
  // Never the example's own row, nor one at the same moment (b2@300), nor a later one.
  EXPECT_EQ(enc.recent_items(fx.example("u1", "a1", 100)), fx.buckets({}));
  EXPECT_EQ(enc.recent_items(fx.example("u1", "b1", 200)), fx.buckets({"a1"}));
  EXPECT_EQ(enc.recent_items(fx.example("u1", "a2", 300)), fx.buckets({"a1", "b1"}));
  EXPECT_EQ(enc.recent_items(fx.example("u1", "b2", 300)), fx.buckets({"a1", "b1"}));
  EXPECT_EQ(enc.recent_items(fx.example("u1", "a3", 400)), fx.buckets({"a2", "b2"}));
  // A user's past in a held-out task is still their past (items, never labels).
  EXPECT_EQ(enc.recent_items(fx.example("u2", "a4", 500)), fx.buckets({"a1", "c1"}));
  // The rows of a batch carry the same, left-padded, with the mask on the real items.
  const ml::tasks::Task* task = nullptr;
  for (const auto& t : fx.data->tasks.tasks)
    if (t.name == "A") task = &t;
  ASSERT_NE(task, nullptr);
  std::vector<std::size_t> all(task->examples.size());
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = k;
  const Batch b = ml::models::make_batch(enc, fx.data->features.dense_dim(),
                                         fx.data->features.id_fields(), *task, all);
  ASSERT_TRUE(b.history.defined());
  ASSERT_EQ(b.history.sizes(), (std::vector<std::int64_t>{b.size(), 2}));
  for (std::int64_t r = 0; r < b.size(); ++r) {
    const auto expected = enc.recent_items(task->examples[static_cast<std::size_t>(r)]);
    const auto n = static_cast<std::int64_t>(expected.size());
    EXPECT_EQ(b.history_mask[r].sum().item<std::int64_t>(), n);
    for (std::int64_t k = 0; k < n; ++k) {
      EXPECT_EQ(b.history[r][2 - n + k].item<std::int64_t>(),
                expected[static_cast<std::size_t>(k)]);
      EXPECT_TRUE(b.history_mask[r][2 - n + k].item<bool>());
    }
  }
}

TEST(UserSequence, TimeCutoffEndsEverySequenceBeforeIt) {
  SequenceLog fx("300", /*length=*/3, {"B"});  // C has no row from the cutoff on
  const auto& enc = fx.data->encoder;
  // Examples are at or after the cutoff; their sequences hold rows before it only.
  EXPECT_EQ(enc.recent_items(fx.example("u1", "a3", 400)), fx.buckets({"a1", "b1"}));
  EXPECT_EQ(enc.recent_items(fx.example("u1", "a2", 300)), fx.buckets({"a1", "b1"}));
  EXPECT_EQ(enc.recent_items(fx.example("u2", "a4", 500)), fx.buckets({"a1", "c1"}));
  // Rows new to the run (predict --input) read the user's last items over the whole history
  // before the cutoff, whatever their time.
  const auto new_rows = fx.data->features.bind(fx.log());
  EXPECT_EQ(new_rows.recent_items(fx.example("u1", "a3", 400)), fx.buckets({"a1", "b1"}));
  EXPECT_EQ(new_rows.recent_items(fx.example("u1", "a2", 300)), fx.buckets({"a1", "b1"}));
}

TEST(UserSequence, RowsNewToTheRunReadTheWholeHistory) {
  SequenceLog fx("", /*length=*/2);
  const auto new_rows = fx.data->features.bind(fx.log());
  // u1's last two purchases with a time: b2@300 (row after a2@300), a3@400; b3 has no time.
  EXPECT_EQ(new_rows.recent_items(fx.example("u1", "a1", 100)), fx.buckets({"b2", "a3"}));
  // ... and so after the statistics' JSON round trip, which a checkpoint holds.
  nlohmann::json j;
  to_json(j, fx.data->features);
  FeatureSpace back;
  from_json(j, back);
  const auto loaded = back.bind(fx.log());
  EXPECT_EQ(loaded.recent_items(fx.example("u1", "a1", 100)), fx.buckets({"b2", "a3"}));
  EXPECT_EQ(back.sequence_length(), 2);
}

// --- Item text: the tokenizer reads training tasks' items only --------------------------------

TEST(ItemText, TokenizerNeverSeesHeldOutItemsTitles) {
  auto unknown_pieces = [](const FeatureSpace& f, const std::string& text) {
    ml::features::EncodeStats stats;
    f.item_tokenizer()->encode(text, &stats);
    return stats.unknown_pieces;
  };
  SequenceLog held_out("", 2, {"C"});
  const FeatureSpace& f = held_out.data->features;
  ASSERT_NE(f.item_tokenizer(), nullptr);
  EXPECT_EQ(unknown_pieces(f, "crunchy oats"), 0);
  // C's titles are Greek and C is held out: its letters are unknown to the pieces.
  EXPECT_GT(unknown_pieces(f, "ωμέγα ψ"), 0);
  EXPECT_GT(unknown_pieces(f, "ζήτα ξ"), 0);
  // The check can tell: with C among the training tasks its letters are pieces.
  SequenceLog trained("", 2, {"A"});
  EXPECT_EQ(unknown_pieces(trained.data->features, "ωμέγα ψ"), 0);
  // Every distinct item of a batch is encoded once, and rows point at their item's text.
  const auto& task = held_out.data->tasks.tasks.front();
  std::vector<std::size_t> rows(task.examples.size());
  for (std::size_t k = 0; k < rows.size(); ++k) rows[k] = k;
  const Batch b =
      ml::models::make_batch(held_out.data->encoder, f.dense_dim(), f.id_fields(), task, rows);
  std::map<std::int32_t, std::int64_t> items;
  for (const auto& e : task.examples) items.emplace(e.item, 0);
  EXPECT_EQ(b.item_tokens.size(0), static_cast<std::int64_t>(items.size()));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& ids = held_out.data->encoder.item_tokens(task.examples[r]);
    const auto slot = b.item_slot[static_cast<std::int64_t>(r)].item<std::int64_t>();
    ASSERT_FALSE(ids.empty());
    for (std::size_t k = 0; k < ids.size(); ++k)
      EXPECT_EQ(b.item_tokens[slot][static_cast<std::int64_t>(k)].item<std::int64_t>(), ids[k]);
  }
}

// --- The model: meta-gradients ----------------------------------------------------------------

ml::models::ContextShape tiny_shape() {
  ml::models::ContextShape s;
  s.mlp.type = ml::config::ModelType::kEmbeddingMlp;
  s.mlp.hidden = {5};
  s.mlp.embedding_dim = 4;
  s.mlp.dense_dim = 3;
  s.mlp.id_cardinalities = {6, 9};
  s.mlp.outputs = 1;
  s.text_vocab = 11;
  s.text_dim = 4;
  s.text_heads = 2;
  s.text_ff = 6;
  s.text_max_len = 3;
  s.text_layers = 1;
  s.sequence_length = 3;
  s.sequence_layers = 1;
  s.sequence_heads = 2;
  s.sequence_ff = 6;
  return s;
}

// n rows with float64 features, binary targets, histories of 0..3 items (some empty) and item
// texts over `items` distinct items (one without text).
Batch random_batch(std::int64_t n, std::int64_t items = 3) {
  Batch b;
  b.dense = torch::randn({n, 3}, torch::kFloat64);
  // Item ids 1-4 by the id field, 1-8 in histories: rows 5-8 are read through sequences only.
  b.ids = torch::stack(
      {torch::randint(1, 6, {n}, torch::kInt64), torch::randint(1, 5, {n}, torch::kInt64)}, 1);
  b.target = torch::randint(0, 2, {n}, torch::kInt64).to(torch::kFloat64);
  b.history = torch::randint(1, 9, {n, 3}, torch::kInt64);
  b.history_mask = torch::zeros({n, 3}, torch::kBool);
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int64_t length = r % 4;  // 0 (no history) to 3
    for (std::int64_t k = 3 - length; k < 3; ++k) b.history_mask[r][k] = true;
    for (std::int64_t k = 0; k < 3 - length; ++k) b.history[r][k] = 0;
  }
  b.item_tokens = torch::randint(1, 11, {items, 3}, torch::kInt64);
  b.item_token_mask = torch::ones({items, 3}, torch::kBool);
  b.item_token_mask[0][2] = false;
  b.item_token_mask[items - 1].fill_(false);  // an item without text
  b.item_tokens.masked_fill_(b.item_token_mask.logical_not(), 0);
  b.item_slot = torch::randint(0, items, {n}, torch::kInt64);
  return b;
}

ml::config::MetaConfig maml(int steps, double lr) {
  ml::config::MetaConfig m;
  m.algorithm = ml::config::Algorithm::kMaml;
  m.inner_steps = steps;
  m.inner_lr = lr;
  return m;
}

TEST(ContextModelMetaGradient, SecondOrderMatchesFiniteDifferences) {
  torch::manual_seed(5);
  auto model = std::make_shared<ContextModelImpl>(tiny_shape());
  model->to(torch::kFloat64);
  const Batch support = random_batch(6), query = random_batch(7);
  const int steps = 2;
  const double lr = 0.5;
  const auto kind = ml::tasks::LabelKind::kBinary;
  // Every weight adapts, the encoders and tables included: second order through both
  // attentions and the shared item table.
  const std::vector<bool> adapt(model->names().size(), true);
  std::vector<Tensor> theta;
  for (const auto& p : model->params()) theta.push_back(p.detach().clone().requires_grad_(true));
  auto fast = ml::meta::inner_loop(*model, theta, adapt, support, kind, steps, lr, true);
  Tensor lq = ml::models::task_loss(model->forward(query, fast), query.target, kind);
  const auto analytic = torch::autograd::grad({lq}, theta, {}, false, false, true);

  auto query_loss = [&](const std::vector<Tensor>& start) {
    std::vector<Tensor> leaves;
    for (const auto& p : start) leaves.push_back(p.clone().requires_grad_(true));
    auto adapted = ml::meta::inner_loop(*model, leaves, adapt, support, kind, steps, lr, false);
    torch::NoGradGuard no_grad;
    return ml::models::task_loss(model->forward(query, adapted), query.target, kind).item<double>();
  };
  const auto compared = ml::testing::expect_finite_differences(
      ml::testing::detached_clones(model->params()), query_loss, analytic, model->names(), 4);
  const auto checked = compared.size();
  std::map<std::string, double> largest;
  for (const auto& [i, numeric] : compared) {
    const std::string part = model->names()[i].substr(0, 9);
    largest[part] = std::max(largest[part], std::abs(numeric));
  }
  EXPECT_GT(checked, 100u);
  // Real gradients reached both encoders, not zeros agreeing.
  EXPECT_GT(largest["item_text"], 1e-5);
  EXPECT_GT(largest["user_sequ"], 1e-5);
}

TEST(ContextModelMetaGradient, StackedAndRowSparseMatchThePerTaskReference) {
  // The MLP's hand-written passes must not take this model (they would leave the encoders out):
  // the stacked, row-sparse meta-gradient equals the plain per-task autograd one.
  for (const auto inner : {ml::config::InnerParams::kDense, ml::config::InnerParams::kAll}) {
    for (const auto algorithm : {ml::config::Algorithm::kMaml, ml::config::Algorithm::kFomaml,
                                 ml::config::Algorithm::kReptile}) {
      SCOPED_TRACE(ml::enum_name(inner) + " / " + ml::enum_name(algorithm));
      torch::manual_seed(9);
      auto model = std::make_shared<ContextModelImpl>(tiny_shape());
      model->to(torch::kFloat64);
      auto config = maml(2, 0.3);
      config.algorithm = algorithm;
      config.inner_params = inner;
      MetaLearner learner(config, ml::tasks::LabelKind::kBinary, model);
      std::vector<TaskBatch> tasks;
      for (std::int64_t t = 0; t < 3; ++t)
        tasks.push_back({random_batch(4 + t, 2 + t), random_batch(6 - t, 3)});
      auto gradients = [&](bool stacked) {
        for (auto& p : learner.meta_parameters()) p.mutable_grad() = Tensor();
        const double loss = stacked ? learner.accumulate_meta_gradient(tasks)
                                    : learner.accumulate_meta_gradient_per_task(tasks);
        std::vector<Tensor> g;
        for (const auto& p : learner.meta_parameters())
          g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
        if (stacked)
          for (const auto& sparse : learner.row_sparse_gradients())
            g[sparse.parameter].index_copy_(0, sparse.rows, sparse.values);
        return std::make_pair(loss, g);
      };
      const auto [stacked_loss, stacked] = gradients(true);
      const auto [reference_loss, reference] = gradients(false);
      EXPECT_NEAR(stacked_loss, reference_loss, 1e-9 * (1 + std::abs(reference_loss)));
      double size = 0;
      for (std::size_t i = 0; i < reference.size(); ++i) {
        EXPECT_TRUE(torch::allclose(stacked[i], reference[i], 1e-7, 1e-10))
            << model->names()[i] << ": largest difference "
            << (stacked[i] - reference[i]).abs().max().item<double>();
        size += reference[i].abs().sum().item<double>();
      }
      EXPECT_GT(size, 1e-3);
      // The item table's gradient reaches rows read only through the sequences.
      const auto item_table = static_cast<std::size_t>(ml::models::kItemIdField);
      std::vector<std::int64_t> sequence_only;
      for (std::int64_t row = 1; row < 9; ++row) {
        bool by_id = false, by_history = false;
        for (const auto& t : tasks)
          for (const Batch* b : {&t.support, &t.query}) {
            by_id = by_id || b->ids.select(1, 1).eq(row).any().item<bool>();
            by_history = by_history || (b->history.eq(row) & b->history_mask).any().item<bool>();
          }
        if (by_history && !by_id) sequence_only.push_back(row);
      }
      ASSERT_FALSE(sequence_only.empty());
      // First-order MAML differentiates the query loss alone, which rows read only in a support
      // sequence do not enter.
      if (algorithm == ml::config::Algorithm::kFomaml) continue;
      for (std::int64_t row : sequence_only) {
        EXPECT_GT(reference[item_table][row].abs().sum().item<double>(), 0) << "row " << row;
      }
    }
  }
}

TEST(ContextModel, EmptyHistoryGivesTheLearnedNoHistoryValueWithoutNaN) {
  torch::manual_seed(3);
  auto model = std::make_shared<ContextModelImpl>(tiny_shape());
  Batch b = random_batch(4);
  b.dense = b.dense.to(torch::kFloat32);
  b.history_mask.fill_(false);
  b.history.fill_(0);
  const auto stacked = ml::models::stack_tasks({b});
  const Tensor seq = model->user_sequence_stacked(stacked, model->params());
  EXPECT_TRUE(torch::isfinite(seq).all().item<bool>());
  // Every row without history reads the same value, whatever padding ids it holds ...
  Batch other = b;
  other.history = torch::randint(1, 9, {4, 3}, torch::kInt64);
  const Tensor seq2 =
      model->user_sequence_stacked(ml::models::stack_tasks({other}), model->params());
  EXPECT_TRUE(torch::allclose(seq, seq2));
  EXPECT_TRUE(torch::allclose(seq[0][0], seq[0][3]));
  // ... and the read-out token, a parameter, decides it.
  auto p = model->params();
  for (std::size_t i = 0; i < p.size(); ++i)
    // Not a constant shift, which the layer norms remove.
    if (model->names()[i] == "user_sequence_readout") p[i] = p[i] + torch::randn_like(p[i]);
  const Tensor moved = model->user_sequence_stacked(stacked, p);
  EXPECT_FALSE(torch::allclose(seq, moved));
}

// --- Checkpoints and the pipeline --------------------------------------------------------------

// A small synthetic shop (test_support.hpp) with both encoders over its item titles.
ml::config::Config shop_with_encoders(const TempDir& dir) {
  ml::config::Config c = ml::testing::synthetic_shop(dir, 120, 8, 2500);
  c.data.side_tables[0].features.text = {{"title", 0}};
  c.model.type = ml::config::ModelType::kEmbeddingMlp;
  c.model.embedding_dim = 4;
  c.model.hidden = {8};
  c.features.hash_buckets = 512;
  c.features.tokenizer.vocab_size = 60;
  c.model.item_text.columns = {"title"};
  c.model.item_text.dim = 4;
  c.model.item_text.ff_dim = 8;
  c.model.item_text.max_len = 6;
  c.model.user_sequence.length = 4;
  c.model.user_sequence.ff_dim = 8;
  c.meta.iterations = 3;
  c.meta.meta_batch = 2;
  ml::config::validate(c);
  return c;
}

TEST(ContextModelRun, TrainsAndACheckpointRoundTripPredictsIdentically) {
  TempDir dir;
  const ml::config::Config config = shop_with_encoders(dir);
  const auto summary = ml::train::run_training(config, {});
  EXPECT_TRUE(std::isfinite(summary.last_loss));
  auto run = ml::run::load_run(config.run.dir, {}, "cpu");
  ASSERT_NE(dynamic_cast<const ContextModelImpl*>(run.learner->model().get()), nullptr);
  EXPECT_EQ(ml::run::read_checkpoint_meta(run.checkpoint_path).format,
            ml::run::kContextCheckpointFormat);

  // Save the loaded run again and load that: the same predictions, bit for bit, for the
  // run's own examples and for rows new to it.
  ml::run::CheckpointMeta meta;
  meta.kind = ml::run::kCheckpointKindMeta;
  ml::config::to_json(meta.config, run.config);
  to_json(meta.features, run.data->features);
  meta.progress = run.progress;
  const std::string again = dir.file("again.mlckpt");
  ml::run::save_checkpoint(again, meta, [&](torch::serialize::OutputArchive& archive) {
    ml::run::write_learner(archive, *run.learner);
  });
  auto back = ml::run::load_run(again, {}, "cpu");
  const ml::tasks::Task* task = nullptr;
  for (const auto& t : run.data->tasks.tasks)
    if (t.role == ml::tasks::TaskRole::kNew) task = &t;
  ASSERT_NE(task, nullptr);
  std::vector<std::size_t> rows(std::min<std::size_t>(task->examples.size(), 40));
  for (std::size_t k = 0; k < rows.size(); ++k) rows[k] = k;
  auto predict = [&](const ml::run::LoadedRun& r, bool new_rows) {
    const auto& f = r.data->features;
    const auto encoder = new_rows ? f.bind(r.data->log) : r.data->encoder;
    const Batch b = ml::models::make_batch(encoder, f.dense_dim(), f.id_fields(), *task, rows);
    EXPECT_GT(b.history_mask.sum().item<std::int64_t>(), 0);
    torch::NoGradGuard no_grad;
    return r.learner->model()->forward(b, r.learner->model()->params());
  };
  for (bool new_rows : {false, true}) {
    const Tensor a = predict(run, new_rows), c = predict(back, new_rows);
    EXPECT_TRUE(torch::isfinite(a).all().item<bool>());
    EXPECT_TRUE(torch::equal(a, c)) << (new_rows ? "new rows" : "the run's rows");
  }
}

// --- Config errors name the key -----------------------------------------------------------------

TEST(ContextModelConfig, ErrorsNameTheKey) {
  TempDir dir;
  ml::config::Json base;
  ml::config::to_json(base, shop_with_encoders(dir));
  // Without aggregates, so that only the user sequence asks for the timestamp.
  base["features"]["aggregates"] = ml::config::Json::array();
  auto error_of = [&](const std::string& key, const ml::config::Json& value) {
    ml::config::Json j = base;
    if (value.is_null())
      j["data"]["columns"].erase(key.substr(key.rfind('.') + 1));  // data.columns.X left out
    else
      ml::config::apply_override(j, key + "=" + value.dump());
    try {
      ml::config::config_from_json(j);
    } catch (const ml::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto expect_names = [](const std::string& error, const std::string& key) {
    EXPECT_NE(error.find(key), std::string::npos) << error;
  };
  expect_names(error_of("model.item_text.columns", {"synopsis"}), "model.item_text.columns[0]");
  expect_names(error_of("model.item_text.columns", {"title"}), "no error");
  expect_names(error_of("model.item_text.dim", 5), "model.item_text.dim");
  expect_names(error_of("model.item_text.max_len", 0), "model.item_text.max_len");
  expect_names(error_of("model.user_sequence.length", 100000), "model.user_sequence.length");
  expect_names(error_of("model.user_sequence.heads", 3), "model.user_sequence.heads");
  expect_names(error_of("model.type", "mlp"), "model.item_text");
  expect_names(error_of("data.columns.timestamp", nullptr),
               "data.columns.timestamp: required by model.user_sequence");
}

}  // namespace
