// Tests of Integrated Gradients (explain/integrated_gradients.hpp) on functions with known
// attributions, of the model glue (explain/model_input.hpp) on random mlp and embedding_mlp
// models, and of `metalearn explain` on a purchase log with one planted decisive feature:
// completeness, exactness for a linear model, zero for what the model cannot see, the planted
// feature on top, before/after adaptation, the CLI's outputs and refusals.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "explain/explanation.hpp"
#include "explain/integrated_gradients.hpp"
#include "explain/model_input.hpp"
#include "inference/adaptation.hpp"
#include "inference/adapted_model.hpp"
#include "pipeline/run_data.hpp"
#include "report/bar_chart.hpp"
#include "report/explanation_page.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "tasks/task_set.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"

#ifndef ML_BINARY_PATH
#error "ML_BINARY_PATH must be defined by tests/CMakeLists.txt"
#endif

namespace {

using ml::testing::contains;
using ml::testing::run_cli;
using ml::testing::slurp;
using ml::testing::TempDir;
using ml::testing::write_file;
using nlohmann::json;
using torch::Tensor;
namespace fs = std::filesystem;
namespace ex = ml::explain;

std::string q(const std::string& s) {
  return ml::testing::shell_quote(s);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

Tensor f64(const Tensor& t) {
  return t.to(torch::kFloat64);
}

// ---- the method --------------------------------------------------------------------------

TEST(ExplainGaussLegendre, WeightsSumToOneAndIntegrateHighDegreePolynomialsExactly) {
  for (int m : {1, 2, 5, 50}) {
    const ex::Quadrature q = ex::gauss_legendre(m);
    ASSERT_EQ(q.nodes.size(), static_cast<std::size_t>(m));
    double sum = 0, integral = 0;
    for (int k = 0; k < m; ++k) {
      EXPECT_GT(q.nodes[k], 0);
      EXPECT_LT(q.nodes[k], 1);
      if (k > 0) {
        EXPECT_GT(q.nodes[k], q.nodes[k - 1]);
      }
      sum += q.weights[k];
      integral += q.weights[k] * std::pow(q.nodes[k], 2 * m - 1);  // degree 2m - 1: exact
    }
    EXPECT_NEAR(sum, 1.0, 1e-13) << m;
    EXPECT_NEAR(integral, 1.0 / (2 * m), 1e-13) << m;
  }
  EXPECT_THROW(ex::gauss_legendre(0), std::invalid_argument);
}

TEST(ExplainIntegratedGradients, ALinearFunctionGetsDifferenceTimesWeightExactly) {
  torch::manual_seed(3);
  const Tensor w = f64(torch::randn({6})), x = f64(torch::randn({9, 6})),
               base = f64(torch::randn({9, 6}));
  const ex::RowFunction f = [&](const Tensor& points, const Tensor&) {
    return points.matmul(w) + 0.7;
  };
  for (int steps : {1, 3, 50}) {
    const ex::Attributions a = ex::integrated_gradients(f, x, base, steps);
    EXPECT_TRUE(torch::allclose(a.attributions, (x - base) * w, 0, 1e-12)) << steps;
    EXPECT_LT(a.gap.max().item<double>(), 1e-12) << steps;
    EXPECT_TRUE(torch::allclose(a.output, x.matmul(w) + 0.7, 0, 1e-12));
    EXPECT_TRUE(torch::allclose(a.baseline_output, base.matmul(w) + 0.7, 0, 1e-12));
  }
}

// A random two-layer network: ReLU (the MLP's) and tanh (smooth, like the transformer's GELU).
struct RandomNet {
  Tensor w1, b1, w2;
  bool relu = true;
  explicit RandomNet(bool use_relu) : relu(use_relu) {
    // nn.Linear's initialisation, as the models' (uniform in +-1/sqrt(fan_in)).
    torch::manual_seed(11);
    w1 = f64(torch::rand({8, 32}) * 2 - 1) / std::sqrt(8.0);
    b1 = f64(torch::rand({32}) * 2 - 1) / std::sqrt(8.0);
    w2 = f64(torch::rand({32}) * 2 - 1) / std::sqrt(32.0);
  }
  ex::RowFunction function() const {
    return [this](const Tensor& points, const Tensor&) {
      const Tensor h = points.matmul(w1) + b1;
      return (relu ? torch::relu(h) : torch::tanh(h)).matmul(w2);
    };
  }
};

double mean_gap(const ex::RowFunction& f, const Tensor& x, const Tensor& base, int steps) {
  return ex::integrated_gradients(f, x, base, steps).gap.mean().item<double>();
}

TEST(ExplainIntegratedGradients, CompletenessHoldsOnRandomRowsAndTheGapShrinksWithSteps) {
  torch::manual_seed(5);
  const Tensor x = f64(torch::randn({40, 8})), base = torch::zeros({40, 8}, torch::kFloat64);
  for (bool relu : {true, false}) {
    const RandomNet net(relu);
    const ex::RowFunction f = net.function();
    const ex::Attributions a = ex::integrated_gradients(f, x, base, ex::kDefaultSteps);
    const Tensor difference = (a.output - a.baseline_output).abs();
    const Tensor tolerance = torch::clamp_min(difference * ex::kRelativeTolerance, ex::kGapFloor);
    EXPECT_TRUE((a.gap <= tolerance).all().item<bool>())
        << (relu ? "relu" : "tanh") << ": largest gap " << a.gap.max().item<double>() << ", "
        << (a.gap > tolerance).sum().item<std::int64_t>() << " of 40 rows over the tolerance";
    const double coarse = mean_gap(f, x, base, 4), fine = mean_gap(f, x, base, 400);
    EXPECT_LT(fine, coarse * 0.2) << (relu ? "relu" : "tanh") << ": " << coarse << " -> " << fine;
  }
  // A smooth path converges fast: Gauss-Legendre's strength.
  EXPECT_LT(mean_gap(RandomNet(false).function(), x, base, ex::kDefaultSteps), 1e-6);
}

TEST(ExplainIntegratedGradients, WhatTheFunctionIgnoresAndWhatEqualsTheBaselineGetExactlyZero) {
  torch::manual_seed(7);
  Tensor x = f64(torch::randn({12, 5})), base = f64(torch::randn({12, 5}));
  x.select(1, 3).copy_(base.select(1, 3));  // column 3 at its baseline value
  const ex::RowFunction f = [](const Tensor& p, const Tensor&) {
    // Column 2 is never read.
    return torch::relu(p.select(1, 0) * p.select(1, 1)) +
           torch::tanh(p.select(1, 3) + p.select(1, 4));
  };
  const ex::Attributions a = ex::integrated_gradients(f, x, base, 20);
  EXPECT_TRUE((a.attributions.select(1, 2) == 0).all().item<bool>()) << a.attributions;
  EXPECT_TRUE((a.attributions.select(1, 3) == 0).all().item<bool>()) << a.attributions;
  EXPECT_GT(a.attributions.select(1, 0).abs().sum().item<double>(), 0);
}

TEST(ExplainIntegratedGradients, PassesOfAnySizeGiveTheSameAttributions) {
  torch::manual_seed(9);
  const RandomNet net(true);
  const Tensor x = f64(torch::randn({17, 8})), base = f64(torch::randn({17, 8}));
  const ex::RowFunction f = [&](const Tensor& points, const Tensor& rows) {
    // Each point's row index names the row it lies on: a point of row r is base[r] + a (x[r] -
    // base[r]) with a in (0, 1) (or x[r] or base[r] themselves).
    const Tensor along = points - base.index_select(0, rows);
    const Tensor span = (x - base).index_select(0, rows);
    const Tensor a = (along * span).sum(1) / (span * span).sum(1);
    EXPECT_TRUE(torch::allclose(along, a.unsqueeze(1) * span, 1e-9, 1e-9));
    EXPECT_LE(a.max().item<double>(), 1 + 1e-12);
    EXPECT_GE(a.min().item<double>(), -1e-12);
    return net.function()(points, rows);
  };
  const ex::Attributions whole = ex::integrated_gradients(f, x, base, 10);
  const ex::Attributions small = ex::integrated_gradients(f, x, base, 10, /*max_values=*/100);
  EXPECT_TRUE(torch::allclose(whole.attributions, small.attributions, 0, 1e-12));
  EXPECT_TRUE(torch::allclose(whole.gap, small.gap, 0, 1e-12));
  // Passes of 3 points of one row (3 + 3 + 3 + 1 of the 10): the path in chunks.
  const ex::Attributions chunked = ex::integrated_gradients(f, x, base, 10, /*max_values=*/8 * 3);
  EXPECT_TRUE(torch::allclose(whole.attributions, chunked.attributions, 0, 1e-12));
  EXPECT_TRUE(torch::allclose(whole.gap, chunked.gap, 0, 1e-12));
  EXPECT_THROW(ex::integrated_gradients(f, x, base, 0), std::invalid_argument);
  EXPECT_THROW(ex::integrated_gradients(f, x, base, ex::kMaxSteps + 1), std::invalid_argument);
  EXPECT_THROW(ex::gauss_legendre(ex::kMaxSteps + 1), std::invalid_argument);
}

TEST(ExplainIntegratedGradients, SegmentsSumTheirElementsAndSkipNone) {
  const Tensor a = torch::tensor({1.0, 2.0, 4.0, 8.0, 16.0, 32.0}, torch::kFloat64).view({2, 3});
  const Tensor segment = torch::tensor({0, 0, 1, -1, 1, 1}, torch::kInt64).view({2, 3});
  const Tensor s = ex::sum_by_segment(a, segment, 2);
  EXPECT_TRUE(torch::equal(s, torch::tensor({3.0, 4.0, 0.0, 48.0}, torch::kFloat64).view({2, 2})))
      << s;
}

// ---- the page ---------------------------------------------------------------------------------

TEST(ExplainReport, ThePageIsSelfContainedEscapesNamesAndCountsItsCharts) {
  ex::Explanation e;
  e.label_kind = "binary";
  e.explained = "the logit";
  e.baseline = "the mean";
  e.key_columns = {"user_id", "item_id", "category"};
  e.model.checkpoint = "runs/x/adapted/<Snacks & Dips>.mlckpt";
  e.model.kind = "adapted";
  for (int r = 0; r < 8; ++r) {
    ex::RowExplanation row;
    row.key = {"u" + std::to_string(r), "i1", "<Snacks & Dips>"};
    row.score = r;
    row.probability = 0.5;
    row.attributions = {{"item:brand", "<b>acme</b>", 0.5 * r}, {"row:price", "3.5", -0.25}};
    e.model.rows.push_back(row);
  }
  e.model.importance = {{"item:brand", 1.75, 8}, {"row:price", 0.25, 8}};
  ex::ModelExplanation before = e.model;
  before.kind = "before";
  e.before = before;
  e.changes = {{"item:brand", 0.5, 1.75}, {"row:price", 0.25, 0.25}};
  const std::string html = ml::report::render_explanation_html(e, 2);
  // Global importance, before vs after, and the six highest-scored rows.
  EXPECT_TRUE(contains(html, "data-charts=\"8\"")) << html.substr(0, 200);
  EXPECT_EQ(static_cast<int>(std::count(html.begin(), html.end(), '\n')) > 20, true);
  std::size_t charts = 0;
  for (auto at = html.find("<svg class=\"chart\""); at != std::string::npos;
       at = html.find("<svg class=\"chart\"", at + 1))
    ++charts;
  EXPECT_EQ(charts, 8u);
  EXPECT_FALSE(contains(html, "<b>acme</b>"));
  EXPECT_TRUE(contains(html, "&lt;b&gt;acme&lt;/b&gt;"));
  EXPECT_FALSE(contains(html, "<Snacks"));
  EXPECT_TRUE(contains(html, "row 8 · u7"));   // the highest score first
  EXPECT_FALSE(contains(html, "row 1 · u0"));  // the two lowest are left out
  EXPECT_FALSE(contains(html, "src=\"http"));
  EXPECT_FALSE(contains(html, "href=\"http"));
}

// A row's title (its number, key cells and class) can be longer than the chart is wide: it is
// cut at its end, so the row number stays in view, and the whole of it is the tooltip.
TEST(ExplainReport, ALongChartTitleIsCutAtItsEndWithTheWholeAsItsTooltip) {
  ml::report::BarChart chart;
  chart.title =
      "row 10 \xC2\xB7 t10 \xC2\xB7 " + std::string(300, 'x') + " \xC2\xB7 class apple_pay";
  chart.labels = {"a"};
  chart.series = {{"", "#000", {1.0}}};
  const std::string svg = ml::report::render_bar_svg(chart);
  EXPECT_TRUE(contains(svg, ">row 10 \xC2\xB7 t10 \xC2\xB7 xxx")) << svg.substr(0, 400);
  EXPECT_TRUE(contains(svg, "x\xE2\x80\xA6<title>row 10 ")) << svg.substr(0, 400);
  EXPECT_TRUE(contains(svg, "class apple_pay</title>"));
  chart.title = "short";
  EXPECT_TRUE(contains(ml::report::render_bar_svg(chart), ">short<title>short</title>"));
}

// ---- a log with one planted decisive feature ----------------------------------------------

// Eight categories of 80 rows; whether a row is a purchase is decided by its `signal` column
// alone (signal > 0); `noise` and `color` are random.
struct PlantedRun {
  TempDir dir;
  std::string events, run, rows, adapted;
  std::string new_task;
  ml::config::Config config;

  PlantedRun() {
    std::mt19937 rng(17);
    std::normal_distribution<double> normal;
    const char* colors[] = {"red", "green", "blue"};
    const std::string header = "user_id,item_id,category,event,timestamp,signal,noise,color\n";
    std::string csv = header;
    std::vector<std::vector<std::string>> by_category(8);
    long long time = 1767225600;  // 2026-01-01
    int user = 0;
    for (int c = 0; c < 8; ++c)
      for (int r = 0; r < 80; ++r) {
        const double signal = normal(rng), noise = normal(rng);
        std::ostringstream line;
        line << "u" << user++ << ",i" << (rng() % 40) << ",cat" << c << ","
             << (signal > 0 ? "purchase" : "view") << "," << (time += 60) << "," << signal << ","
             << noise << "," << colors[rng() % 3] << "\n";
        csv += line.str();
        by_category[static_cast<std::size_t>(c)].push_back(line.str());
      }
    events = dir.file("events.csv");
    write_file(events, csv);
    run = dir.file("run");
    json j = {
        {"seed", 3},
        {"data",
         {{"files", {events}},
          {"columns",
           {{"user", "user_id"},
            {"item", "item_id"},
            {"task", "category"},
            {"timestamp", "timestamp"},
            {"event", "event"}}},
          {"features", {{"numeric", {"signal", "noise"}}, {"categorical", {"color"}}}}}},
        {"features", {{"hash_buckets", 512}, {"aggregates", json::array()}}},
        {"task",
         {{"label",
           {{"kind", "event_binary"},
            {"positive_events", {"purchase"}},
            {"negative_events", {"view"}}}},
          {"support", 8},
          {"query", 16}}},
        {"split", {{"new_fraction", 0.25}, {"validation_fraction", 0.0}}},
        {"model", {{"hidden", {16}}}},
        {"meta", {{"iterations", 100}, {"meta_batch", 4}, {"inner_lr", 0.1}, {"outer_lr", 0.01}}},
        {"train", {{"log_every", 30}, {"validate_every", 0}}},
        {"run", {{"dir", run}, {"device", "cpu"}, {"threads", 1}}}};
    config = ml::config::config_from_json(j);
    ml::train::run_training(config, {});
    // The rows to explain: 20 of each category the run held out as new.
    std::vector<std::string> held_out;
    const auto loaded = ml::run::load_run(run, {}, "cpu");
    for (const auto* t : loaded.data->tasks.with_role(ml::tasks::TaskRole::kNew))
      held_out.push_back(t->name);
    std::sort(held_out.begin(), held_out.end());
    EXPECT_EQ(held_out.size(), 2u);
    std::string query = header;
    for (const auto& name : held_out)
      for (int r = 0; r < 20; ++r)
        query += by_category.at(static_cast<std::size_t>(std::stoi(name.substr(3))))
                     .at(static_cast<std::size_t>(r));
    rows = dir.file("rows.csv");
    write_file(rows, query);
    new_task = held_out.at(0);
    ml::inference::AdaptOptions o;
    o.checkpoint = run;
    o.tasks = {new_task};
    o.out_dir = dir.file("adapted");
    o.steps = 5;
    o.inner_lr = 0.3;
    o.device = "cpu";
    o.threads = 1;
    adapted = ml::inference::adapt(o).tasks.at(0).checkpoint;
  }
};

const PlantedRun& planted() {
  static PlantedRun p;
  return p;
}

ex::ExplainOptions options(const std::string& checkpoint, const std::string& rows) {
  ex::ExplainOptions o;
  o.checkpoint = checkpoint;
  o.input = rows;
  o.device = "cpu";
  o.threads = 1;
  return o;
}

// A batch of random rows in the model's input space.
ml::models::Batch random_rows(const ml::inference::ScoringModel& m, std::int64_t n) {
  ml::models::Batch b;
  b.dense = torch::randn({n, static_cast<std::int64_t>(m.features.dense_dim())}) * 2;
  std::vector<Tensor> ids;
  for (std::int64_t c : m.features.id_field_cardinalities())
    ids.push_back(torch::randint(0, c, {n, 1}, torch::kInt64));
  b.ids = torch::cat(ids, 1);
  b.target = torch::zeros({n});
  return b;
}

ex::Attributions attribute(const ex::ModelInput& in, int steps) {
  return ex::integrated_gradients(in.output, in.input, in.baseline, steps);
}

TEST(ExplainModels, CompletenessOnRandomMlpAndEmbeddingMlp) {
  for (const auto type : {ml::config::ModelType::kMlp, ml::config::ModelType::kEmbeddingMlp}) {
    auto m = ml::inference::load_scoring_model(planted().run, "cpu", "explain");
    m->config.model.type = type;
    m->config.model.hidden = {32, 16};
    torch::manual_seed(1);
    m->learner = ml::run::build_learner(m->config, m->features, m->device);
    const auto rows = random_rows(*m, 30);
    const ex::ModelInput in = ex::model_input(*m, rows, torch::zeros({30}, torch::kInt64));
    const std::string name = type == ml::config::ModelType::kMlp ? "mlp" : "embedding_mlp";
    // The function at the input is the model's own output.
    const ex::Attributions a = attribute(in, ex::kDefaultSteps);
    EXPECT_TRUE(
        torch::allclose(a.output.to(torch::kFloat32), m->outputs(rows).select(1, 0), 1e-4, 1e-5))
        << name;
    const Tensor tolerance = torch::clamp_min(
        (a.output - a.baseline_output).abs() * ex::kRelativeTolerance, ex::kGapFloor);
    EXPECT_TRUE((a.gap <= tolerance).all().item<bool>())
        << name << ": largest gap " << a.gap.max().item<double>();
    EXPECT_LT(attribute(in, 300).gap.mean().item<double>(),
              attribute(in, 3).gap.mean().item<double>())
        << name;
    // Segments: dense features by name (signal, noise), the one-hot colour column with the
    // colour's embedding (embedding_mlp) as one, user and item ids.
    std::vector<std::string> names;
    for (const auto& s : in.segments[0]) names.push_back(s.name);
    for (const char* want : {"row:signal", "row:noise", "row:color"})
      EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << name << " " << want;
    const bool ids = type == ml::config::ModelType::kEmbeddingMlp;
    EXPECT_EQ(std::find(names.begin(), names.end(), "user") != names.end(), ids) << name;
    EXPECT_EQ(std::count(names.begin(), names.end(), "row:color"), 1) << name;
  }
}

TEST(ExplainModels, ALinearModelGetsDifferenceTimesWeightExactly) {
  auto m = ml::inference::load_scoring_model(planted().run, "cpu", "explain");
  m->config.model.hidden.clear();  // the head alone: score = w . x + b
  m->learner = ml::run::build_learner(m->config, m->features, m->device);
  const auto rows = random_rows(*m, 10);
  const ex::ModelInput in = ex::model_input(*m, rows, torch::zeros({10}, torch::kInt64));
  const Tensor w = f64(m->learner->model()->params().at(0)).view({-1});
  const ex::Attributions a = attribute(in, 7);
  EXPECT_TRUE(torch::allclose(a.attributions, (in.input - in.baseline) * w, 0, 1e-12));
  EXPECT_LT(a.gap.max().item<double>(), 1e-10);
}

TEST(ExplainModels, AFeatureTheModelCannotSeeOrThatIsAtItsBaselineGetsExactlyZero) {
  auto m = ml::inference::load_scoring_model(planted().run, "cpu", "explain");
  const auto& names = m->features.dense_names();
  const auto noise = std::find(names.begin(), names.end(), "row:noise") - names.begin();
  const auto signal = std::find(names.begin(), names.end(), "row:signal") - names.begin();
  ASSERT_LT(noise, static_cast<long>(names.size()));
  {
    torch::NoGradGuard no_grad;
    m->learner->model()->params().at(0).select(1, noise).zero_();  // first layer blind to it
  }
  auto rows = random_rows(*m, 25);
  rows.dense.select(1, signal).zero_();  // every row's signal at the training mean
  const ex::ModelInput in = ex::model_input(*m, rows, torch::zeros({25}, torch::kInt64));
  const Tensor by = ex::sum_by_segment(attribute(in, 30).attributions, in.segment, in.max_segments);
  std::int64_t noise_segment = -1, signal_segment = -1;
  for (std::size_t s = 0; s < in.segments[0].size(); ++s) {
    if (in.segments[0][s].name == "row:noise") noise_segment = static_cast<std::int64_t>(s);
    if (in.segments[0][s].name == "row:signal") signal_segment = static_cast<std::int64_t>(s);
  }
  ASSERT_GE(noise_segment, 0);
  ASSERT_GE(signal_segment, 0);
  EXPECT_TRUE((by.select(1, noise_segment) == 0).all().item<bool>()) << by.select(1, noise_segment);
  EXPECT_TRUE((by.select(1, signal_segment) == 0).all().item<bool>())
      << by.select(1, signal_segment);
  EXPECT_GT(by.abs().sum().item<double>(), 0);
}

TEST(ExplainPlanted, TheDecisiveFeatureIsMostRowsTopAttribution) {
  const PlantedRun& p = planted();
  for (const std::string& checkpoint : {p.run, p.adapted}) {
    const ex::Explanation e = ex::explain(options(checkpoint, p.rows));
    ASSERT_EQ(e.model.rows.size(), 40u);
    int top_signal = 0;
    for (const auto& row : e.model.rows) {
      ASSERT_FALSE(row.attributions.empty());
      top_signal += row.attributions.front().feature == "row:signal";
      EXPECT_LE(row.gap, row.tolerance) << checkpoint;
      double sum = 0;
      for (const auto& a : row.attributions) sum += a.attribution;
      EXPECT_NEAR(sum, row.score - row.baseline_score, row.gap + 1e-9);
      EXPECT_NEAR(row.probability, 1 / (1 + std::exp(-row.score)), 1e-5);
    }
    EXPECT_GE(top_signal, 32) << checkpoint << ": row:signal on top in " << top_signal << " of 40";
    ASSERT_FALSE(e.model.importance.empty());
    EXPECT_EQ(e.model.importance.front().feature, "row:signal") << checkpoint;
  }
}

TEST(ExplainPlanted, AnAdaptedModelIsComparedWithTheRunItWasAdaptedFrom) {
  const PlantedRun& p = planted();
  const ex::Explanation e = ex::explain(options(p.adapted, p.rows));
  EXPECT_EQ(e.model.kind, "adapted");
  EXPECT_EQ(e.task, p.new_task);
  ASSERT_TRUE(e.before.has_value()) << e.before_note;
  EXPECT_EQ(e.before->rows.size(), e.model.rows.size());
  EXPECT_EQ(e.before->kind, "before");
  ASSERT_FALSE(e.changes.empty());
  for (std::size_t i = 1; i < e.changes.size(); ++i)
    EXPECT_GE(std::abs(e.changes[i - 1].change()), std::abs(e.changes[i].change()));
  // Adaptation moved the scores, so at least one feature's importance moved.
  EXPECT_GT(std::abs(e.changes.front().change()), 0);
  // --before overrides; a run's own model has nothing before it unless asked.
  ex::ExplainOptions o = options(p.run, p.rows);
  EXPECT_FALSE(ex::explain(o).before.has_value());
  o.before = p.adapted;
  EXPECT_TRUE(ex::explain(o).before.has_value());

  const json j = ex::to_json(e, 3);
  EXPECT_EQ(j["method"], "integrated_gradients");
  EXPECT_EQ(j["model"]["rows"].size(), 40u);
  EXPECT_EQ(j["model"]["rows"][0]["attributions"].size(), 3u);
  EXPECT_TRUE(j["before"].is_object());
  EXPECT_TRUE(j["changes"].is_array());
  EXPECT_EQ(j["task"], p.new_task);
}

TEST(ExplainPlanted, WithoutInputAnAdaptedModelIsExplainedOnItsOwnQueryRows) {
  const PlantedRun& p = planted();
  const ex::Explanation e = ex::explain(options(p.adapted, ""));
  ASSERT_EQ(e.model.rows.size(), 16u);  // task.query
  for (const auto& row : e.model.rows) EXPECT_EQ(row.key.back(), p.new_task);
  ASSERT_TRUE(e.before.has_value());
  EXPECT_EQ(e.before->rows.size(), 16u);
  // The run itself has no query of its own.
  try {
    ex::explain(options(p.run, ""));
    ADD_FAILURE() << "a run explained without --input";
  } catch (const ml::UsageError& error) {
    EXPECT_TRUE(contains(error.what(), "explain needs --input")) << error.what();
  }
}

// Rows of the same count are not the same rows: a log whose task now draws other query rows of
// the size the adapted model recorded is refused, by the checksum adapt recorded.
TEST(ExplainPlanted, WithoutInputALogThatChangedTheQueryRowsIsRefused) {
  const PlantedRun& p = planted();
  const std::string original = slurp(p.events);
  struct Restore {
    std::string path, text;
    ~Restore() { std::ofstream(path, std::ios::binary) << text; }
  } restore{p.events, original};
  // The new task's rows with another `noise` value (column 7 of 8): the same rows, encoded
  // otherwise.
  std::istringstream in(original);
  std::string line, changed;
  std::getline(in, line);
  changed = line + "\n";
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream split(line);
    for (std::string cell; std::getline(split, cell, ',');) cells.push_back(cell);
    if (cells.size() == 8 && cells[2] == p.new_task) cells[6] = "9.5";
    std::string joined;
    for (std::size_t c = 0; c < cells.size(); ++c) joined += (c ? "," : "") + cells[c];
    changed += joined + "\n";
  }
  ASSERT_NE(changed, original);
  std::ofstream(p.events, std::ios::binary) << changed;
  try {
    ex::explain(options(p.adapted, ""));
    ADD_FAILURE() << "explained other query rows than the model was adapted with";
  } catch (const ml::DataError& error) {
    EXPECT_TRUE(contains(error.what(), "the log changed")) << error.what();
  }
}

// adapt records the run's path as it was given; a relative one is looked up from the folders
// above the adapted model too, and a checkpoint at that path is the run only when its training
// record is the one the adapted model recorded.
TEST(ExplainPlanted, TheRecordedRunIsFoundFromAnyFolderAndRecognisedByItsRecord) {
  const PlantedRun& p = planted();
  const auto q = ml::testing::shell_quote;
  const fs::path parent = fs::path(p.run).parent_path();
  const std::string binary = q(ML_BINARY_PATH) + " --log-level warn ";
  auto r = ml::testing::run_command("cd " + q(parent.string()) + " && " + binary +
                                    "adapt --device cpu --threads 1 --checkpoint " +
                                    fs::path(p.run).filename().string() + " --task " +
                                    q(p.new_task) + " --out relative_adapted");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string adapted =
      (parent / "relative_adapted" / ml::inference::adapted_file_name(p.new_task)).string();
  const std::string recorded =
      ml::run::read_checkpoint_meta(adapted).progress.at("source_checkpoint").get<std::string>();
  ASSERT_TRUE(fs::path(recorded).is_relative()) << recorded;

  // From another folder holding another checkpoint at that relative path.
  TempDir elsewhere;
  fs::create_directories(fs::path(elsewhere.file(recorded)).parent_path());
  fs::copy_file(p.adapted, elsewhere.file(recorded));
  const std::string explain = "explain --device cpu --threads 1 --steps 10 --json --checkpoint ";
  r = ml::testing::run_command("cd " + q(elsewhere.path()) + " && " + binary + explain +
                               q(adapted));
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_TRUE(j["before"].is_object()) << j.value("before_note", "");
  EXPECT_EQ(fs::canonical(j["before"]["checkpoint"].get<std::string>()),
            fs::canonical(parent / recorded));

  // Moved where no folder above it leads to the run: the decoy alone is found, and refused.
  fs::create_directories(elsewhere.file("moved"));
  const std::string moved = elsewhere.file("moved/adapted.mlckpt");
  fs::copy_file(adapted, moved);
  r = ml::testing::run_command("cd " + q(elsewhere.path()) + " && " + binary + explain + q(moved));
  ASSERT_EQ(r.code, 0) << r.err;
  j = json::parse(r.out);
  EXPECT_TRUE(j["before"].is_null());
  EXPECT_TRUE(contains(j.value("before_note", ""), "is not the one")) << j.dump();
}

// A value shared by every row shifts every score alike: marked, so that it is not read as what
// ranks the rows.
TEST(ExplainPlanted, AFeatureWithOneValueInEveryRowIsMarkedConstant) {
  const PlantedRun& p = planted();
  std::string red;
  for (const std::string& line : lines_of(slurp(p.rows)))
    if (red.empty() || contains(line, ",red")) red += line + "\n";  // the header, then red rows
  TempDir dir;
  write_file(dir.file("red.csv"), red);
  const ex::Explanation e = ex::explain(options(p.run, dir.file("red.csv")));
  ASSERT_GE(e.model.rows.size(), 2u);
  int seen = 0;
  for (const ex::FeatureImportance& f : e.model.importance) {
    if (f.feature == "row:color") {
      EXPECT_TRUE(f.constant);
      ++seen;
    }
    if (f.feature == "row:signal") {
      EXPECT_FALSE(f.constant);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 2);
  EXPECT_TRUE(ex::to_json(e, 1)["model"]["importance"][0].contains("constant"));
}

// attributions compare feature by feature only between models that read the same inputs.
TEST(ExplainPlanted, ABeforeModelOfAnotherModelTypeIsRefusedSayingWhatDiffers) {
  const PlantedRun& p = planted();
  TempDir dir;
  ml::config::Config other = p.config;
  other.model.type = ml::config::ModelType::kEmbeddingMlp;
  other.meta.iterations = 3;
  other.run.dir = dir.file("embedding_run");
  ml::train::run_training(other, {});
  ex::ExplainOptions o = options(p.adapted, p.rows);
  o.before = other.run.dir;
  try {
    ex::explain(o);
    ADD_FAILURE() << "an embedding_mlp run accepted as the mlp's model before adaptation";
  } catch (const ml::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "model type differs")) << e.what();
  }
}

TEST(ExplainPlanted, RefusalsAreTypedAndNameTheValue) {
  const PlantedRun& p = planted();
  ex::ExplainOptions o = options(p.run, p.rows);
  o.steps = 0;
  EXPECT_THROW(ex::explain(o), ml::UsageError);
  o = options(p.run, p.rows);
  o.top = 0;
  EXPECT_THROW(ex::explain(o), ml::UsageError);
  o = options(p.run, p.rows);
  o.class_name = "x";
  try {
    ex::explain(o);
    ADD_FAILURE() << "--class on a binary model";
  } catch (const ml::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "--class")) << e.what();
  }
  EXPECT_THROW(ex::explain(options(p.dir.file("nothing"), p.rows)), ml::CheckpointError);
  EXPECT_THROW(ex::explain(options(p.run, p.dir.file("none.csv"))), ml::DataError);
}

// ---- every new task, before and after (eval --importance) -----------------------------------

// The temporary folder of the adapted models goes where TMPDIR says while the test runs.
struct TemporaryFolderHere {
  std::string before;
  bool had = false;
  explicit TemporaryFolderHere(const std::string& folder) {
    if (const char* v = std::getenv("TMPDIR")) before = v, had = true;
    setenv("TMPDIR", folder.c_str(), 1);
  }
  ~TemporaryFolderHere() { had ? setenv("TMPDIR", before.c_str(), 1) : unsetenv("TMPDIR"); }
};

TEST(ExplainNewTasks, EachNewTaskIsExplainedAsAdaptAllNewThenExplainWould) {
  const PlantedRun& p = planted();
  TempDir scratch;
  ex::NewTaskImportance n;
  {
    const TemporaryFolderHere here(scratch.path());
    n = ex::explain_new_tasks(p.run, 20, "cpu", 1);
  }
  EXPECT_TRUE(fs::is_empty(scratch.path()));  // the adapted models went with their folder
  ASSERT_EQ(n.tasks.size(), 2u);              // the planted run's two new categories
  EXPECT_TRUE(n.before_note.empty()) << n.before_note;
  EXPECT_EQ(n.steps, 20);

  // The same as `adapt --all-new` and `explain --checkpoint ADAPTED` without --input.
  ml::inference::AdaptOptions a;
  a.checkpoint = p.run;
  a.all_new = true;
  a.out_dir = scratch.file("adapted");
  a.device = "cpu";
  a.threads = 1;
  const ml::inference::AdaptSummary adapted = ml::inference::adapt(a);
  ASSERT_EQ(adapted.tasks.size(), n.tasks.size());
  for (std::size_t t = 0; t < n.tasks.size(); ++t) {
    const ex::TaskImportance& task = n.tasks[t];
    EXPECT_EQ(task.task, adapted.tasks[t].task);
    EXPECT_EQ(task.query_size, 16);
    EXPECT_EQ(task.after.rows.size(), 16u);
    ex::ExplainOptions o = options(adapted.tasks[t].checkpoint, "");
    o.steps = 20;
    const ex::Explanation e = ex::explain(o);
    ASSERT_TRUE(e.before.has_value() && task.before.has_value());
    ASSERT_EQ(e.model.importance.size(), task.after.importance.size());
    for (std::size_t f = 0; f < e.model.importance.size(); ++f) {
      EXPECT_EQ(e.model.importance[f].feature, task.after.importance[f].feature);
      EXPECT_NEAR(e.model.importance[f].mean_abs, task.after.importance[f].mean_abs, 1e-12);
    }
    ASSERT_EQ(e.changes.size(), task.changes.size());
    for (std::size_t f = 0; f < e.changes.size(); ++f) {
      EXPECT_EQ(e.changes[f].feature, task.changes[f].feature);
      EXPECT_NEAR(e.changes[f].before, task.changes[f].before, 1e-12);
    }
    // The planted feature decides every task, before adaptation and after.
    EXPECT_EQ(task.after.importance.front().feature, "row:signal");
    EXPECT_EQ(task.before->importance.front().feature, "row:signal");
  }

  // The mean over tasks is the mean of the tasks' importances, largest after first.
  ASSERT_FALSE(n.across_tasks.empty());
  EXPECT_EQ(n.across_tasks.front().feature, "row:signal");
  for (const ex::FeatureChange& f : n.across_tasks) {
    double before = 0, after = 0;
    for (const ex::TaskImportance& task : n.tasks) {
      for (const auto& i : task.after.importance)
        if (i.feature == f.feature) after += i.mean_abs;
      for (const auto& i : task.before->importance)
        if (i.feature == f.feature) before += i.mean_abs;
    }
    EXPECT_NEAR(f.after, after / 2, 1e-12) << f.feature;
    EXPECT_NEAR(f.before, before / 2, 1e-12) << f.feature;
  }
  for (std::size_t i = 1; i < n.across_tasks.size(); ++i) {
    const ex::FeatureChange &a = n.across_tasks[i - 1], &b = n.across_tasks[i];
    EXPECT_GE(std::max(a.before, a.after), std::max(b.before, b.after));
  }
  // A continuous feature never repeats over a task's query rows.
  for (const ex::FeatureChange& f : n.across_tasks) {
    if (f.feature == "row:signal") {
      EXPECT_FALSE(f.constant);
    }
  }
  EXPECT_TRUE(n.tasks[0].metric == "AUC" && std::isfinite(n.tasks[0].metric_after));

  const json j = ex::to_json(n);
  EXPECT_EQ(j["tasks"].size(), 2u);
  EXPECT_EQ(j["tasks"][0]["features"].size(), n.tasks[0].changes.size());
  EXPECT_DOUBLE_EQ(j["tasks"][0]["features"][0]["change"].get<double>(),
                   n.tasks[0].changes[0].change());
  EXPECT_EQ(j["across_tasks"][0]["feature"], "row:signal");
  EXPECT_FALSE(j.contains("before_note"));

  EXPECT_THROW(ex::explain_new_tasks(p.run, 0, "cpu", 1), ml::UsageError);
  EXPECT_THROW(ex::explain_new_tasks(p.dir.file("nothing"), 20, "cpu", 1), ml::CheckpointError);
}

// ---- the command line ----------------------------------------------------------------------

TEST(ExplainCli, WritesTheCsvInInputOrderWithBeforeAndAfter) {
  const PlantedRun& p = planted();
  TempDir out;
  const std::string csv = out.file("explained.csv"), json_file = out.file("e.json"),
                    page = out.file("page.html");
  auto r = run_cli("explain --checkpoint " + q(p.adapted) + " --input " + q(p.rows) +
                   " --top 2 --steps 20 --output " + q(csv) + " --json-out " + q(json_file) +
                   " --report " + q(page) + " --device cpu --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(contains(r.err, "largest completeness gap")) << r.err;
  EXPECT_TRUE(contains(r.err, "tolerance 5%")) << r.err;
  // Half the rows are the other new category's, which this model was not adapted to.
  EXPECT_TRUE(contains(r.err, "20 of 40 row(s) belong to other tasks than '" + p.new_task + "'"))
      << r.err;
  EXPECT_EQ(json::parse(slurp(json_file))["rows_of_other_tasks"], 20);
  EXPECT_TRUE(contains(slurp(page), "20 of 40 row(s) belong to other tasks")) << page;
  const auto lines = lines_of(slurp(csv));
  ASSERT_EQ(lines.size(), 1u + 40 * 2 * 2) << slurp(csv);  // rows x top x (adapted, before)
  EXPECT_EQ(lines[0],
            "row,user_id,item_id,category,model,score,probability,baseline_score,"
            "completeness_gap,rank,feature,value,attribution");
  // Rows in input order: the input's users, each row's two ranks together.
  const auto input = lines_of(slurp(p.rows));
  for (int r = 0; r < 40; ++r) {
    const std::string user = input[1 + r].substr(0, input[1 + r].find(','));
    for (int k = 0; k < 2; ++k) {
      const std::string& line = lines[1 + 2 * r + k];
      EXPECT_EQ(line.rfind(std::to_string(r + 1) + "," + user + ",", 0), 0u) << line;
      EXPECT_TRUE(contains(line, ",adapted,")) << line;
      EXPECT_TRUE(contains(line, "," + std::to_string(k + 1) + ",row:") ||
                  contains(line, "," + std::to_string(k + 1) + ",user,") ||
                  contains(line, "," + std::to_string(k + 1) + ",item,"))
          << line;
    }
  }
  EXPECT_TRUE(contains(lines[1 + 80], ",before,")) << lines[1 + 80];
  const json j = json::parse(slurp(json_file));
  EXPECT_EQ(j["steps"], 20);
  EXPECT_EQ(j["model"]["rows"].size(), 40u);
  EXPECT_FALSE(j["changes"].empty());
  const std::string html = slurp(page);
  EXPECT_TRUE(contains(html, "data-charts=\"8\"")) << html.substr(0, 300);  // 1 + 1 + 6 rows
  EXPECT_EQ(std::count(html.begin(), html.end(), '\n') > 10, true);
  EXPECT_TRUE(contains(html, "What adaptation changed"));
  EXPECT_FALSE(contains(html, "http://") && !contains(html, "http://www.w3.org/2000/svg"));

  // --json prints the JSON instead of the CSV.
  auto js = run_cli("explain --checkpoint " + q(p.run) + " --input " + q(p.rows) +
                    " --json --top 1 --device cpu --threads 1");
  ASSERT_EQ(js.code, 0) << js.err;
  const json k = json::parse(js.out);
  EXPECT_TRUE(k["before"].is_null());
  EXPECT_EQ(k["model"]["rows"][0]["attributions"].size(), 1u);
}

TEST(ExplainCli, BadOptionsExitWithTheDocumentedCodeAndOneLine) {
  const PlantedRun& p = planted();
  TempDir out;
  const std::string base = "explain --device cpu --threads 1 --checkpoint " + q(p.run);
  const std::vector<std::pair<std::string, int>> cases = {
      {base + " --input " + q(p.rows) + " --steps 0", 2},
      {base + " --input " + q(p.rows) + " --top 0", 2},
      {base + " --input " + q(p.rows) + " --steps many", 2},
      {base + " --input " + q(p.rows) + " --class x", 2},
      {base + " --input " + q(p.rows) + " --output " + q(p.rows), 2},
      {base + " --input " + q(p.rows) + " --json --output " + q(out.file("x.csv")), 2},
      {base + " --input " + q(out.file("missing.csv")), 4},
      {"explain --checkpoint " + q(out.file("no_run")) + " --input " + q(p.rows), 5},
      {base, 2},  // no --input for a run's model
      // Two spellings of one file that does not exist yet.
      {base + " --input " + q(p.rows) + " --output " + q(out.file("s.out")) + " --json-out " +
           q(out.file("./s.out")),
       2},
      // Files the explanation reads: the run's log, the adapted checkpoint itself.
      {base + " --input " + q(p.rows) + " --output " + q(p.events), 2},
      {"explain --device cpu --threads 1 --checkpoint " + q(p.adapted) + " --input " + q(p.rows) +
           " --json-out " + q(p.adapted),
       2},
      {base + " --input " + q(p.rows) + " --steps 10001", 2},  // past the quadrature's limit
      // Files of the run explain does not read: another checkpoint, the run's records.
      {base + " --input " + q(p.rows) + " --output " + q(p.run + "/checkpoints/latest.mlckpt"), 2},
      {base + " --input " + q(p.rows) + " --json-out " + q(p.run + "/config.json"), 2},
  };
  const std::string events_before = slurp(p.events), adapted_before = slurp(p.adapted),
                    config_before = slurp(p.run + "/config.json");
  std::vector<std::string> args;
  for (const auto& c : cases) args.push_back(c.first);
  const auto results = ml::testing::run_cli_many(args);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(results[i].code, cases[i].second) << cases[i].first << "\n" << results[i].err;
    EXPECT_EQ(results[i].err_lines(), 1) << cases[i].first << "\n" << results[i].err;
  }
  EXPECT_TRUE(contains(results[0].err, "--steps")) << results[0].err;
  EXPECT_TRUE(contains(results[6].err, "missing.csv")) << results[6].err;
  EXPECT_TRUE(fs::is_empty(out.path()));  // nothing half-written
  EXPECT_TRUE(contains(results[10].err, "is the data file")) << results[10].err;
  EXPECT_EQ(slurp(p.events), events_before);
  EXPECT_EQ(slurp(p.adapted), adapted_before);
  EXPECT_EQ(slurp(p.run + "/config.json"), config_before);
}

}  // namespace
