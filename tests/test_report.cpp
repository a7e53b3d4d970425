// Tests of the cold-start report: escaping, the SVG chart builder's scaling, the tables against
// the ColdStartResult they come from, the page being self-contained, the training-log reader,
// and end to end through `metalearn eval --report` rendered in headless Chromium.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/cold_start.hpp"
#include "metrics/confidence.hpp"
#include "report/cold_start_page.hpp"
#include "report/results_table.hpp"
#include "report/svg_chart.hpp"
#include "report/text_escape.hpp"
#include "report/training_log.hpp"
#include "run/learner_state.hpp"
#include "tasks/task_set.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"

namespace {

namespace fs = std::filesystem;
using ml::testing::TempDir;
using nlohmann::json;
namespace eval = ml::eval;
namespace report = ml::report;

const std::string kNastyTask = "<script>alert('x')</script>";

// A result built by hand, shaped like run_cold_start's: four methods (two meta-learners, two
// baselines) over K {1, 5} x steps {0, 1, 5}, AUC and log loss on three tasks. Every family's
// validation choice is 5 steps; the verdict compares maml with pretrain, and cells are paired
// with that chosen baseline as eval pairs them. Pretrain scores better at K=1, maml at K=5.
eval::ColdStartResult synthetic_result() {
  eval::ColdStartResult r;
  r.checkpoint_path = "runs/a&b/checkpoints/best.mlckpt";
  r.run_dir = "runs/a&b";
  r.algorithm = "maml";
  r.label_kind = "binary";
  r.metrics = {{"auc", "AUC", true}, {"log_loss", "log loss", false}};
  r.shots = {1, 5};
  r.steps = {0, 1, 5};
  r.methods = {"maml", "anil", "pretrain", "scratch"};
  r.method_info = {{"maml", "maml", 0.3, false},
                   {"anil", "anil", 0.3, false},
                   {"pretrain", "pretrain", 0.3, true},
                   {"scratch", "scratch", 0.3, true}};
  r.task_role = "new";
  r.episodes = 4;
  r.query = 10;
  r.new_tasks = 4;
  r.pretrain_source = "reused";
  r.run.model = "mlp 32";
  r.run.data_files = {"data/<events>.csv"};
  r.run.tasks = 20;
  for (int k : r.shots) {
    eval::ShotTasks t;
    t.shots = k;
    t.evaluated = {kNastyTask, "Snacks & Dips", "a|b"};
    t.skipped = {{"Tiny <cat>", "needs 15 examples, has 9"}};
    r.tasks.push_back(t);
  }
  const std::vector<std::vector<double>> bonus = {{0.10, 0.08, 0.15, 0.0},    // K=1
                                                  {0.20, 0.15, 0.12, 0.05}};  // K=5
  for (std::size_t ki = 0; ki < r.shots.size(); ++ki)
    for (std::size_t si = 0; si < r.steps.size(); ++si)
      for (std::size_t mi = 0; mi < r.methods.size(); ++mi) {
        eval::Cell c;
        c.method = r.methods[mi];
        c.shots = r.shots[ki];
        c.steps = r.steps[si];
        eval::MetricResult auc{"auc", {}, {}}, loss{"log_loss", {}, {}};
        std::vector<double> a, l;
        for (int task = 0; task < 3; ++task) {
          double v = 0.55 + 0.02 * task + bonus[ki][mi] + 0.01 * si +
                     0.01 * ((task * 7 + static_cast<int>(si) * 3 + static_cast<int>(mi)) % 5);
          if (c.method == "scratch" && c.shots == 1 && c.steps == 0 && task == 2) v = NAN;
          auc.per_task.push_back({v, 4});
          loss.per_task.push_back({1 - v, 4});
          a.push_back(v);
          l.push_back(1 - v);
        }
        auc.interval = ml::metrics::mean_ci(a);
        loss.interval = ml::metrics::mean_ci(l);
        c.metrics = {auc, loss};
        r.cells.push_back(c);
      }
  for (int k : r.shots)
    for (const auto& m : r.method_info) {
      eval::Choice c;
      c.shots = k;
      c.family = m.family;
      c.method = m.name;
      c.steps = 5;
      c.baseline = m.baseline;
      c.test = r.cell(m.name, k, 5)->metrics[0].interval;
      c.validation = c.test;
      c.validation.mean += 0.01;
      r.choices.push_back(c);
    }
  for (auto& c : r.cells) {
    const eval::Cell* base = r.cell("pretrain", c.shots, 5);
    if (base == &c) continue;
    for (std::size_t x = 0; x < 2; ++x) {
      std::vector<double> a, z;
      for (const auto& t : c.metrics[x].per_task) a.push_back(t.value);
      for (const auto& t : base->metrics[x].per_task) z.push_back(t.value);
      c.comparisons.push_back(
          {"pretrain", 5, r.metrics[x].name, ml::metrics::paired_difference_ci(a, z)});
    }
  }
  for (int k : r.shots) {
    eval::Verdict v;
    v.shots = k;
    v.chosen_on = "validation";
    v.validation_tasks = 3;
    v.compared_method = "maml";
    v.compared_steps = 5;
    v.against_method = "pretrain";
    v.against_steps = 5;
    v.compared_value = r.cell("maml", k, 5)->metrics[0].interval;
    v.against_value = r.cell("pretrain", k, 5)->metrics[0].interval;
    const bool maml_better = v.compared_value.mean > v.against_value.mean;
    v.best_method = maml_better ? "maml" : "pretrain";
    v.best_steps = 5;
    v.best_value = maml_better ? v.compared_value : v.against_value;
    v.excludes_zero = true;  // pretrain significantly better at K=1, maml at K=5
    v.text = "K=" + std::to_string(k) + ": chosen on 3 validation tasks: " + v.best_method;
    r.verdicts.push_back(v);
  }
  return r;
}

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

// ---- escaping -------------------------------------------------------------------------------

TEST(ReportEscape, HtmlAndMarkdown) {
  EXPECT_EQ(report::escape_html("<a href=\"x\">Tom's & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp; Jerry&#39;s&lt;/a&gt;");
  EXPECT_EQ(report::escape_html("plain ± text"), "plain ± text");
  EXPECT_EQ(report::escape_markdown("a|b *c* _d_ `e`\nf <g> it's event_binary [1, 2]"),
            "a\\|b \\*c\\* \\_d\\_ \\`e\\` f &lt;g&gt; it's event_binary [1, 2]");
  EXPECT_EQ(report::escape_markdown("[x](javascript:y)"), "\\[x\\](javascript:y)");
}

// ---- the chart builder ----------------------------------------------------------------------

TEST(ReportChart, NiceTicksCoverTheRangeWithRoundSteps) {
  auto t = report::nice_ticks(0.512, 0.987);
  ASSERT_GE(t.size(), 3u);
  EXPECT_LE(t.front(), 0.512);
  EXPECT_GE(t.back(), 0.987);
  const double step = t[1] - t[0];
  EXPECT_NEAR(step, 0.1, 1e-12);
  for (std::size_t i = 1; i < t.size(); ++i) EXPECT_NEAR(t[i] - t[i - 1], step, 1e-12);

  t = report::nice_ticks(0, 3000, 6);
  EXPECT_EQ(t.front(), 0);
  EXPECT_EQ(t.back(), 3000);
  EXPECT_NEAR(t[1] - t[0], 500, 1e-9);

  t = report::nice_ticks(0.7, 0.7);  // a flat line still gets an axis around it
  EXPECT_LT(t.front(), 0.7);
  EXPECT_GT(t.back(), 0.7);
}

report::Chart sample_chart() {
  report::Chart c;
  c.title = "AUC <vs> steps";
  c.x_label = "adaptation steps";
  c.y_label = "AUC";
  c.x_categories = {0, 1, 5, 10};
  report::ChartSeries a{"maml", "#0072b2", false, {}};
  a.points = {{0, 0.6, 0.55, 0.65, ""},
              {1, 0.7, 0.62, 0.78, ""},
              {5, 0.8, 0.75, 0.85, ""},
              {10, 0.82, 0.7, 0.94, ""}};
  report::ChartSeries b{"pretrain & co", "#e69f00", true, {}};
  // NaN y at 5 breaks the line; 7 is not a category and is left out; 10 has no band.
  b.points = {{0, 0.65, 0.6, 0.7, ""},
              {1, 0.66, 0.61, 0.71, ""},
              {5, NAN, NAN, NAN, ""},
              {7, 0.9, 0.1, 1.9, ""},
              {10, 0.5, NAN, NAN, ""}};
  c.series = {a, b};
  return c;
}

TEST(ReportChart, EverythingDrawnLiesInsideTheViewBoxAndDataInsideThePlot) {
  const report::Chart chart = sample_chart();
  const report::ChartLayout l = report::layout_chart(chart);
  const std::string svg = report::render_svg(chart);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex("viewBox=\"0 0 ([0-9.]+) ([0-9.]+)\"")));
  const double width = std::stod(m[1]), height = std::stod(m[2]);
  EXPECT_NEAR(width, l.width, 0.1);
  EXPECT_NEAR(height, l.height, 0.1);
  // The y axis covers every value and band bound that is drawn (not the left-out x = 7).
  EXPECT_LE(l.y_min, 0.5);
  EXPECT_GE(l.y_max, 0.94);
  EXPECT_LT(l.y_max, 1.5);

  int coordinates = 0;
  const std::regex attribute("\\b(x|x1|x2|cx)=\"(-?[0-9.]+)\"|\\b(y|y1|y2|cy)=\"(-?[0-9.]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), attribute);
       it != std::sregex_iterator(); ++it, ++coordinates) {
    const bool is_x = (*it)[1].matched;
    const double v = std::stod(is_x ? (*it)[2] : (*it)[4]);
    EXPECT_GE(v, 0) << it->str();
    EXPECT_LE(v, is_x ? width : height) << it->str();
  }
  EXPECT_GT(coordinates, 40);

  // Lines, bands and markers: every point inside the plot area.
  const std::regex points("points=\"([^\"]*)\"");
  std::vector<std::vector<std::pair<double, double>>> shapes;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), points); it != std::sregex_iterator();
       ++it) {
    shapes.emplace_back();
    std::istringstream in((*it)[1].str());
    std::string pair;
    while (in >> pair) {
      const auto comma = pair.find(',');
      const double x = std::stod(pair.substr(0, comma)), y = std::stod(pair.substr(comma + 1));
      EXPECT_GE(x, l.left - 0.1);
      EXPECT_LE(x, l.right + 0.1);
      EXPECT_GE(y, l.top - 0.1);
      EXPECT_LE(y, l.bottom + 0.1);
      shapes.back().push_back({x, y});
    }
  }
  // maml: a band polygon over its 4 points (upper forward, lower back) and one line; pretrain:
  // a band over its first two points, a line over them, and no line through the NaN.
  EXPECT_EQ(occurrences(svg, "<polygon"), 2u);
  EXPECT_EQ(occurrences(svg, "<polyline"), 2u);
  std::size_t eights = 0, fours = 0;
  for (const auto& s : shapes) eights += s.size() == 8, fours += s.size() == 4;
  EXPECT_EQ(eights, 1u);  // maml's band
  EXPECT_EQ(fours, 2u);   // maml's line and pretrain's band
  // The band's upper edge is above its lower edge (smaller y on screen) at every point.
  for (const auto& s : shapes) {
    if (s.size() != 8) continue;
    for (std::size_t i = 0; i < 4; ++i) EXPECT_LT(s[i].second, s[7 - i].second);
  }
  // Markers: 4 + 3 drawn points (NaN and x = 7 are not), each with a tooltip, plus 2 in the legend.
  EXPECT_EQ(occurrences(svg, "<circle"), 9u);
  EXPECT_EQ(occurrences(svg, "<title>"), 1u + 7u);
  // The ordinal axis spaces categories evenly and in order.
  EXPECT_NEAR(l.px(1) - l.px(0), l.px(3) - l.px(2), 1e-9);
  EXPECT_NEAR(l.py(l.y_min), l.bottom, 1e-9);
  EXPECT_NEAR(l.py(l.y_max), l.top, 1e-9);
  // Text from data is escaped; the dashed series is dashed in the legend too.
  EXPECT_NE(svg.find("AUC &lt;vs&gt; steps"), std::string::npos);
  EXPECT_NE(svg.find("pretrain &amp; co"), std::string::npos);
  EXPECT_EQ(svg.find("<vs>"), std::string::npos);
  EXPECT_EQ(occurrences(svg, "stroke-dasharray"), 2u);
}

TEST(ReportChart, LinearAxisAndManySeriesWrapTheLegend) {
  report::Chart c;
  c.title = "Training loss";
  for (int s = 0; s < 9; ++s) {
    report::ChartSeries series{"method-with-a-long-name-" + std::to_string(s), "#333", false, {}};
    for (int i = 1; i <= 100; ++i) series.points.push_back({10.0 * i, 1.0 / i + s, NAN, NAN, ""});
    c.series.push_back(series);
  }
  const auto l = report::layout_chart(c);
  EXPECT_GT(l.legend_rows, 1);
  EXPECT_LE(l.x_min, 10);
  EXPECT_GE(l.x_max, 1000);
  const std::string svg = report::render_svg(c);
  EXPECT_EQ(occurrences(svg, "<polyline"), 9u);
  EXPECT_EQ(occurrences(svg, "<title>"), 1u);  // dense curves: no markers
}

// ---- tables ---------------------------------------------------------------------------------

TEST(ReportTables, RowsBestCellsAndJsonAgreeWithTheResult) {
  const auto r = synthetic_result();
  const auto table = report::results_table(r);
  EXPECT_EQ(table.baselines, (std::vector<std::string>{"pretrain", "scratch"}));
  ASSERT_EQ(table.rows.size(), r.cells.size());
  // At each K the marked cells are exactly the verdict's two settings chosen on validation
  // tasks, whatever scores best on the new tasks.
  for (const auto& row : table.rows) {
    const eval::Cell& c = *row.cell;
    EXPECT_EQ(row.chosen, (c.method == "maml" || c.method == "pretrain") && c.steps == 5)
        << c.method << " K=" << c.shots << " steps " << c.steps;
  }
  EXPECT_TRUE(report::baseline_wins(r.verdicts[0], table));
  EXPECT_FALSE(report::baseline_wins(r.verdicts[1], table));

  const json j = report::results_json(r, table);
  ASSERT_EQ(j["rows"].size(), r.cells.size());
  for (const auto& row : j["rows"]) {
    const eval::Cell* c = r.cell(row["method"], row["shots"], row["steps"]);
    ASSERT_NE(c, nullptr);
    for (const auto& m : c->metrics) {
      const auto& iv = row["metrics"][m.metric];
      EXPECT_EQ(iv["n"], m.interval.n);
      if (std::isfinite(m.interval.mean)) {
        EXPECT_DOUBLE_EQ(iv["mean"].get<double>(), m.interval.mean);
      }
      if (std::isfinite(m.interval.half_width)) {
        EXPECT_DOUBLE_EQ(iv["upper"].get<double>(), m.interval.upper);
      } else {
        EXPECT_TRUE(iv["upper"].is_null());
      }
    }
    const json& paired = row["paired_difference_vs_chosen_baseline"];
    EXPECT_EQ(paired.empty(), c->comparisons.empty());
    for (const auto& cmp : c->comparisons) {
      EXPECT_EQ(paired["baseline"], cmp.baseline);
      EXPECT_DOUBLE_EQ(paired[cmp.metric]["mean"].get<double>(), cmp.difference.mean);
    }
    EXPECT_EQ(row["chosen_on_validation"], r.chosen(*c));
  }
  EXPECT_EQ(j["verdicts"][0]["baseline_wins"], true);
  EXPECT_EQ(j["verdicts"][1]["baseline_wins"], false);
  EXPECT_EQ(j["run"]["model"], "mlp 32");
}

TEST(ReportTables, ConclusionSaysPlainlyWhenABaselineWins) {
  const auto r = synthetic_result();
  const std::string s = report::conclusion_summary(r, report::results_table(r));
  EXPECT_NE(s.find("chosen baseline is significantly better than the chosen meta-learner at K=1 "
                   "(pretrain over maml)"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("meta-learner is significantly better than the chosen baseline at K=5 (maml "
                   "over pretrain)"),
            std::string::npos)
      << s;
  EXPECT_EQ(s.find("No significant difference"), std::string::npos) << s;
}

TEST(ReportTables, ABaselineAheadWithoutSignificanceIsATieNotAWin) {
  auto r = synthetic_result();
  for (auto& v : r.verdicts) v.excludes_zero = false;  // pretrain's mean still higher at K=1
  const auto table = report::results_table(r);
  for (const auto& v : r.verdicts) EXPECT_FALSE(report::baseline_wins(v, table)) << v.text;
  const std::string s = report::conclusion_summary(r, table);
  EXPECT_EQ(s.find("significantly better"), std::string::npos) << s;
  EXPECT_NE(s.find("No significant difference at K=1, K=5"), std::string::npos) << s;
  EXPECT_NE(s.find("the baseline's mean is the higher at K=1)"), std::string::npos) << s;
  const std::string md = report::render_markdown(r);
  EXPECT_EQ(md.find("A baseline wins"), std::string::npos);
  const std::string html = report::render_html(r, {});
  EXPECT_EQ(html.find("a baseline wins"), std::string::npos);
  EXPECT_NE(html.find("no significant difference"), std::string::npos);
  EXPECT_EQ(report::results_json(r, table)["verdicts"][0]["baseline_wins"], false);
}

TEST(ReportTables, AnotherRunTrainedAsABaselineCountsAsOne) {
  // e.g. a pretrain run with head-only fine-tuning evaluated beside the meta-learners (eval marks
  // it a baseline by its algorithm): when the verdict's baseline wins, the report says so.
  auto r = synthetic_result();
  r.methods.push_back("head_only");
  r.method_info.push_back({"head_only", "head_only", 0.1, true});
  const auto table = report::results_table(r);
  EXPECT_TRUE(table.is_baseline("head_only"));
  EXPECT_FALSE(table.is_baseline("anil"));
  eval::Verdict v = r.verdicts[1];
  v.against_method = v.best_method = "head_only";
  EXPECT_TRUE(report::baseline_wins(v, table));
}

// synthetic_result() with P@5 added, fixed by the query composition at the given K: every
// method's value there is 0.2 (one relevant item in each list of at most 5).
eval::ColdStartResult with_fixed_precision(const std::vector<int>& fixed_at) {
  auto r = synthetic_result();
  r.metrics.push_back({"precision@5", "P@5", true});
  for (auto& c : r.cells) {
    const bool fixed = std::find(fixed_at.begin(), fixed_at.end(), c.shots) != fixed_at.end();
    eval::MetricResult p{"precision@5", {}, {}};
    std::vector<double> v;
    for (int task = 0; task < 3; ++task) {
      v.push_back(fixed ? 0.2 : 0.2 + 0.01 * task + 0.03 * static_cast<double>(c.method.size()));
      p.per_task.push_back({v.back(), 4});
    }
    p.interval = ml::metrics::mean_ci(v);
    c.metrics.push_back(p);
  }
  for (auto& t : r.tasks)
    if (std::find(fixed_at.begin(), fixed_at.end(), t.shots) != fixed_at.end())
      t.fixed_by_query = {"precision@5"};
  r.metrics.back().fixed_by_query = fixed_at.size() == r.shots.size();
  return r;
}

TEST(ReportTables, AMetricFixedByTheQueryCompositionIsSaidSoNotShownAsAResult) {
  const auto r = with_fixed_precision({1, 5});
  const std::size_t p5 = 2;
  ASSERT_EQ(r.metrics[p5].name, "precision@5");
  const auto table = report::results_table(r);
  const json j = report::results_json(r, table);
  EXPECT_EQ(j["metrics"][p5]["fixed_by_query"], true);
  for (const auto& row : j["rows"]) {
    EXPECT_EQ(row["metrics"]["precision@5"]["fixed_by_query"], true);
    EXPECT_EQ(row["metrics"]["auc"]["fixed_by_query"], false);
  }
  const json full = eval::to_json(r);
  EXPECT_EQ(full["tasks"][0]["fixed_by_query"], json({"precision@5"}));

  const std::string note = eval::fixed_by_query_note(r);
  EXPECT_NE(note.find("P@5 is fixed by the query composition (0.200 at K=1, 0.200 at K=5)"),
            std::string::npos)
      << note;
  EXPECT_NE(eval::format_table(r).find("note: " + note), std::string::npos);
  // Neither the page nor the Markdown shows P@5 as a column of results; both say why.
  const std::string html = report::render_html(r, {});
  const std::string md = report::render_markdown(r);
  EXPECT_EQ(html.find("<th>P@5</th>"), std::string::npos);
  EXPECT_EQ(md.find("| P@5 |"), std::string::npos);
  EXPECT_NE(html.find(report::escape_html(note)), std::string::npos);
  EXPECT_NE(md.find(report::escape_markdown(note)), std::string::npos);
  EXPECT_NE(md.find("P@5 (fixed by the query composition)"), std::string::npos);
  EXPECT_EQ(html.find(ml::metrics::format_interval(r.cells[0].metrics[p5].interval, 3)),
            std::string::npos);

  // Fixed at K=1 only: a column, whose K=1 cells say "fixed" and whose K=5 cells are results.
  const auto partly = with_fixed_precision({1});
  EXPECT_FALSE(partly.metrics[p5].fixed_by_query);
  const std::string partly_md = report::render_markdown(partly);
  EXPECT_NE(partly_md.find(" P@5 |"), std::string::npos);
  // The chosen settings' row is in bold, but not a value the query composition fixes.
  EXPECT_NE(partly_md.find("| fixed by the query composition |"), std::string::npos);
  EXPECT_EQ(partly_md.find("**fixed by the query composition**"), std::string::npos);
  EXPECT_EQ(report::render_html(partly, {}).find("num best\">fixed by"), std::string::npos);
  for (const auto& c : partly.cells) {
    const std::string text = report::metric_cell_text(partly, c, p5);
    if (c.shots == 1) {
      EXPECT_EQ(text, "fixed by the query composition");
    } else {
      EXPECT_EQ(text, ml::metrics::format_interval(c.metrics[p5].interval, 3));
    }
  }
  EXPECT_NE(eval::fixed_by_query_note(partly).find("at some K (0.200 at K=1)"), std::string::npos)
      << eval::fixed_by_query_note(partly);
  EXPECT_EQ(eval::fixed_by_query_note(synthetic_result()), "");
}

TEST(ReportTables, DroppedAndSkippedTasksAreCountedByTheirRealCause) {
  auto r = synthetic_result();
  r.new_tasks = 5;
  r.run.dropped_tasks = 5;
  r.run.dropped_by_cause = {{ml::tasks::DropCause::kTooFewExamples, 2},
                            {ml::tasks::DropCause::kTooManyExamples, 3}};
  r.tasks[0].skipped.push_back(
      {"Buyers only", "only one label class", ml::tasks::DropCause::kOneLabelClass});
  std::string tasks_fact;
  for (const auto& group : report::summary_facts(r))
    for (const auto& f : group.facts)
      if (f.label == "tasks") tasks_fact = f.value;
  EXPECT_NE(tasks_fact.find("5 dropped (2 too small, 3 above task.max_examples)"),
            std::string::npos)
      << tasks_fact;
  EXPECT_EQ(tasks_fact.find("5 too small"), std::string::npos) << tasks_fact;
  const std::string md = report::render_markdown(r);
  EXPECT_NE(md.find("K = 1: 3 of 5 evaluated, 1 too small, 1 one label class"), std::string::npos)
      << md;
  EXPECT_NE(report::render_html(r, {}).find("1 too small, 1 one label class"), std::string::npos);
  EXPECT_NE(eval::format_table(r).find("cannot give an episode and were left out (1 too small, 1 "
                                       "one label class; e.g."),
            std::string::npos)
      << eval::format_table(r);
  const json j = eval::to_json(r);
  EXPECT_EQ(j["run"]["tasks"]["dropped_by_cause"],
            json({{"too_few_examples", 2}, {"too_many_examples", 3}}));
  EXPECT_EQ(j["tasks"][0]["skipped"][1]["cause"], "one_label_class");
}

// ---- the page and the Markdown ----------------------------------------------------------------

TEST(ReportPage, SelfContainedEscapedAndHoldsEveryNumber) {
  const auto r = synthetic_result();
  report::TrainingLog log;
  log.method = "maml";
  log.path = "runs/a&b/metrics.jsonl";
  for (int i = 1; i <= 10; ++i) log.loss.push_back({i * 10, 1.0 / i});
  log.validation_loss = {{50, 0.7}, {100, 0.6}};
  const std::string html = report::render_html(r, {log});

  // Self-contained: nothing to fetch, no external stylesheet or script.
  for (const char* banned : {"src=", "href=", "<link", "@import", "url(", "http://", "https://"})
    EXPECT_EQ(html.find(banned), std::string::npos) << banned;
  EXPECT_EQ(occurrences(html, "<script"), 1u);  // only the page's own inline script

  // Charts: one per K against steps, one against shots, training loss and validation loss.
  const std::size_t charts = r.shots.size() + 1 + 2;
  EXPECT_EQ(occurrences(html, "<svg class=\"chart\""), charts);
  EXPECT_NE(html.find("data-charts=\"" + std::to_string(charts) + "\""), std::string::npos);

  // Data is escaped wherever it appears.
  EXPECT_EQ(html.find(kNastyTask), std::string::npos);
  EXPECT_NE(html.find(report::escape_html(kNastyTask)), std::string::npos);
  EXPECT_EQ(html.find("runs/a&b"), std::string::npos);
  EXPECT_NE(html.find("runs/a&amp;b"), std::string::npos);
  EXPECT_NE(html.find("Tiny &lt;cat&gt;"), std::string::npos);

  // Every cell's main interval and every paired difference is in the results table; the two
  // chosen cells per K are marked in the results table and in every metric of all-metrics.
  for (const auto& c : r.cells) {
    EXPECT_NE(html.find(ml::metrics::format_interval(c.metrics[0].interval, 3)), std::string::npos);
    for (const auto& cmp : c.comparisons) {
      if (cmp.baseline == c.method || cmp.metric != "auc") continue;
      EXPECT_NE(html.find(ml::metrics::format_difference(cmp.difference, 3)), std::string::npos);
    }
  }
  EXPECT_EQ(occurrences(html, "num best\""), r.shots.size() * 2 * (1 + r.metrics.size()));
  // Every method is in the legends, with its own colour, and a baseline's win is said plainly.
  for (const auto& m : r.methods)
    EXPECT_NE(html.find("data-series=\"" + m + "\""), std::string::npos) << m;
  EXPECT_NE(report::method_colour(r.methods, "maml"), report::method_colour(r.methods, "anil"));
  EXPECT_NE(html.find("a baseline wins"), std::string::npos);
}

TEST(ReportPage, MarkdownTablesAgreeWithTheResult) {
  const auto r = synthetic_result();
  const std::string md = report::render_markdown(r);
  for (const auto& c : r.cells) {
    const std::string main = ml::metrics::format_interval(c.metrics[0].interval, 3);
    const bool best = r.chosen(c);
    const std::string row = "| " + std::to_string(c.shots) + " | " + std::to_string(c.steps) +
                            " | " + c.method + " | " + std::to_string(c.metrics[0].interval.n) +
                            " | " + (best ? "**" + main + "**" : main) + " |";
    EXPECT_NE(md.find(row), std::string::npos) << row;
  }
  EXPECT_NE(md.find("**A baseline wins.** K=1"), std::string::npos);
  EXPECT_EQ(md.find("<events>"), std::string::npos);
  EXPECT_NE(md.find("data/&lt;events&gt;.csv"), std::string::npos);
}

TEST(ReportPage, FilesAreWrittenBesideTheHtml) {
  TempDir dir;
  EXPECT_THROW(report::report_paths(dir.file("r.md")), ml::UsageError);
  EXPECT_THROW(report::report_paths(dir.file("r.JSON")), ml::UsageError);
  auto r = synthetic_result();
  r.run_dir = dir.file("no-run");  // no metrics.jsonl: the page says so
  const auto paths = report::write_report(r, dir.file("out.html"));
  EXPECT_EQ(paths.markdown, dir.file("out.md"));
  EXPECT_EQ(paths.json, dir.file("out.json"));
  const std::string html = ml::testing::slurp(paths.html);
  EXPECT_NE(html.find("No <code>metrics.jsonl</code>"), std::string::npos);
  EXPECT_EQ(json::parse(ml::testing::slurp(paths.json))["rows"].size(), r.cells.size());
  EXPECT_NE(ml::testing::slurp(paths.markdown).find("## Results: AUC"), std::string::npos);
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 3);  // no temporaries left behind
}

// eval checks its output files before evaluating: two options naming one file (by any spelling)
// and a file that cannot be written are refused at once.
TEST(ReportPage, OutputsAreCheckedBeforeTheEvaluation) {
  TempDir dir;
  fs::create_directories(dir.file("sub"));
  const std::string html = dir.file("r.html");
  report::check_outputs(dir.file("e.json"), html);  // distinct and writable
  report::check_outputs("", html);
  report::check_outputs(dir.file("e.json"), "");
  for (const std::string& json_out : {html, dir.file("r.md"), dir.file("r.json"),
                                      dir.file("sub/../r.json"), dir.file("./r.json")}) {
    try {
      report::check_outputs(json_out, html);
      ADD_FAILURE() << "no UsageError for --json-out " << json_out;
    } catch (const ml::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--json-out and --report"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(report::check_outputs(dir.file("sub"), ""), ml::FileWriteError);
  EXPECT_THROW(report::check_outputs("", dir.file("sub")), ml::FileWriteError);
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1);  // sub: the checks wrote nothing
}

// ---- training logs --------------------------------------------------------------------------

TEST(ReportTrainingLog, ReadsTrainingAndValidationLinesAndSkipsBrokenOnes) {
  TempDir dir;
  ml::testing::write_file(dir.file("metrics.jsonl"),
                          "{\"iteration\": 10, \"loss\": 0.9, \"seconds\": 1}\n"
                          "{\"iteration\": 20, \"loss\": 0.8, \"seconds\": 2}\n"
                          "{\"iteration\": 20, \"validation\": {\"loss\": 0.7, \"auc\": 0.6}}\n"
                          "\n"
                          "{\"iteration\": 20, \"loss\": 0.75, \"seconds\": 3}\n"  // resumed
                          "{\"iteration\": 30, \"validation\": {\"loss\": null, \"auc\": null}}\n"
                          "{\"iteration\": 40, \"lo");  // cut off by a crash
  const auto log = report::read_training_log(dir.file("metrics.jsonl"), "maml");
  ASSERT_EQ(log.loss.size(), 2u);
  EXPECT_EQ(log.loss[1].iteration, 20);
  EXPECT_DOUBLE_EQ(log.loss[1].value, 0.75);
  ASSERT_EQ(log.validation_loss.size(), 2u);
  EXPECT_TRUE(std::isnan(log.validation_loss[1].value));
  ASSERT_EQ(log.validation_auc.size(), 2u);
  EXPECT_DOUBLE_EQ(log.validation_auc[0].value, 0.6);
  EXPECT_EQ(log.skipped_lines, 1);
  EXPECT_TRUE(report::read_training_log(dir.file("absent.jsonl"), "maml").empty());
}

TEST(ReportTrainingLog, EveryEvaluatedRunHasItsTrainingCurve) {
  // Three runs compared in one eval, plus the pretrain baseline trained into a folder of its own:
  // each one's curve is in the training charts, under its method name.
  TempDir dir;
  auto r = synthetic_result();
  r.runs.clear();
  const std::vector<std::pair<std::string, std::string>> runs = {
      {"maml", "runs/maml"}, {"anil", "runs/anil"}, {"maml@second", "runs/second"}};
  for (const auto& [method, folder] : runs) {
    fs::create_directories(dir.file(folder));
    ml::testing::write_file(dir.file(folder + "/metrics.jsonl"),
                            "{\"iteration\": 10, \"loss\": 0.9, \"seconds\": 1}\n"
                            "{\"iteration\": 20, \"loss\": 0.7, \"seconds\": 2}\n");
    r.runs.push_back(
        {method, "maml", dir.file(folder + "/checkpoints/best.mlckpt"), dir.file(folder)});
  }
  r.methods = {"maml", "anil", "maml@second", "pretrain", "scratch"};
  fs::create_directories(dir.file("runs/maml/baselines/pretrain/checkpoints"));
  ml::testing::write_file(dir.file("runs/maml/baselines/pretrain/metrics.jsonl"),
                          "{\"iteration\": 10, \"loss\": 0.5, \"seconds\": 1}\n");
  r.pretrain_checkpoint = dir.file("runs/maml/baselines/pretrain/checkpoints/latest.mlckpt");

  const auto logs = report::read_training_logs(r);
  std::vector<std::string> methods;
  for (const auto& log : logs) methods.push_back(log.method);
  EXPECT_EQ(methods, (std::vector<std::string>{"maml", "anil", "maml@second", "pretrain"}));
  const std::string html = report::render_html(r, logs);
  const std::size_t from = html.find("<title>Training loss</title>");
  ASSERT_NE(from, std::string::npos);
  const std::string chart = html.substr(from, html.find("</svg>", from) - from);
  for (const auto& m : methods)
    EXPECT_NE(chart.find("data-series=\"" + m + "\""), std::string::npos) << m;
}

// ---- end to end, rendered as a person would see it --------------------------------------------

TEST(ReportEndToEnd, EvalWritesAReportThatChromiumRendersWithItsCharts) {
  TempDir dir;
  const ml::config::Config config = ml::testing::synthetic_shop(dir);
  ml::train::run_training(config, {});
  const std::string html = dir.file("out/report.html");
  fs::create_directories(dir.file("out"));
  const auto r = ml::testing::run_cli(
      "--log-level warn eval --checkpoint " + ml::testing::shell_quote(config.run.dir) +
      " --shots 1,3 --steps 0,1,2 --episodes 2 --device cpu --threads 1 --report " +
      ml::testing::shell_quote(html));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("K=3"), std::string::npos) << r.out;  // the table still goes to stdout
  const std::string page = ml::testing::slurp(html);
  // Two K, one shots chart, training loss and validation loss/AUC of the run and the baseline.
  EXPECT_EQ(occurrences(page, "<svg class=\"chart\""), 2u + 1u + 3u);
  EXPECT_NE(page.find("data-series=\"pretrain\""), std::string::npos);
  EXPECT_TRUE(fs::exists(dir.file("out/report.md")));
  const json tables = json::parse(ml::testing::slurp(dir.file("out/report.json")));
  EXPECT_GE(tables["grid"]["methods"].size(), 5u);  // maml and the four kinds of baseline
  EXPECT_EQ(tables["rows"].size(), tables["grid"]["methods"].size() * 2u * 3u);
  EXPECT_EQ(tables["choices"].size(), 2u * 5u);  // per K: maml and the four baseline families

  if (!fs::exists("/usr/bin/chromium"))
    GTEST_SKIP() << "/usr/bin/chromium is absent, so the rendered check is skipped "
                    "(scripts/test.sh installs it)";
  const std::string shot = dir.file("out/report.png");
  const auto check = ml::testing::run_command(
      ml::testing::shell_quote(std::string(ML_SOURCE_DIR) + "/scripts/check_report.sh") + " " +
      ml::testing::shell_quote(html) + " " + ml::testing::shell_quote(shot));
  ASSERT_EQ(check.code, 0) << check.err << check.out;
  EXPECT_NE(check.out.find("6 charts rendered"), std::string::npos) << check.out;
  const std::string png = ml::testing::slurp(shot);
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  EXPECT_GT(png.size(), 40000u);  // a blank 1280x2400 page is about 14 kB
}

// eval --importance: the section, its charts, the Markdown and JSON, and its refusals.
TEST(ReportEndToEnd, EvalImportanceShowsWhatAdaptationTaughtEachNewTask) {
  TempDir dir;
  ml::config::Config config = ml::testing::synthetic_shop(dir);
  ml::train::run_training(config, {});
  const auto q = ml::testing::shell_quote;
  const std::string run = config.run.dir, html = dir.file("out/report.html");
  const std::string eval = "--log-level warn eval --checkpoint " + q(run) +
                           " --shots 3 --steps 0,1 --episodes 2 --device cpu --threads 1";
  fs::create_directories(dir.file("tmp"));
  const auto r = ml::testing::run_command("TMPDIR=" + q(dir.file("tmp")) + " " + q(ML_BINARY_PATH) +
                                          " " + eval + " --importance --report " + q(html));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::is_empty(dir.file("tmp")));  // the adapted models are gone

  std::vector<std::string> new_tasks;
  const ml::run::LoadedRun loaded = ml::run::load_run(run, {}, "cpu");
  for (const auto* t : loaded.data->tasks.with_role(ml::tasks::TaskRole::kNew))
    new_tasks.push_back(t->name);
  ASSERT_EQ(new_tasks.size(), 3u);
  const json tables = json::parse(ml::testing::slurp(dir.file("out/report.json")));
  const json& importance = tables.at("importance");
  EXPECT_EQ(importance["method"], "integrated_gradients");
  ASSERT_EQ(importance["tasks"].size(), new_tasks.size());
  for (const json& task : importance["tasks"]) {
    EXPECT_NE(std::find(new_tasks.begin(), new_tasks.end(), task["task"]), new_tasks.end())
        << task["task"];
    EXPECT_EQ(task["query"], 10);  // task.query
    ASSERT_FALSE(task["features"].empty());
    for (const json& f : task["features"])
      EXPECT_NEAR(f["change"].get<double>(), f["after"].get<double>() - f["before"].get<double>(),
                  1e-12);
  }
  // A chart for the mean over tasks and one per task, inside the section.
  const std::string page = ml::testing::slurp(html);
  const std::size_t from = page.find("<section id=\"importance\">");
  ASSERT_NE(from, std::string::npos);
  const std::string section = page.substr(from, page.find("</section>", from) - from);
  EXPECT_EQ(occurrences(section, "<svg class=\"chart\""), 1u + new_tasks.size());
  const std::regex declared("data-charts=\"([0-9]+)\"");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(page, m, declared));
  EXPECT_EQ(std::stoul(m[1].str()), occurrences(page, "<svg class=\"chart\""));
  const std::string markdown = ml::testing::slurp(dir.file("out/report.md"));
  EXPECT_NE(markdown.find("## What adaptation taught each new task"), std::string::npos);
  for (const auto& name : new_tasks)
    EXPECT_NE(markdown.find("| " + name + " |"), std::string::npos) << name;

  // Refused before any evaluation, with one line and nothing written: without --report, with
  // --tasks validation, on a protonet run.
  config.meta.algorithm = ml::config::Algorithm::kProtonet;
  config.meta.iterations = 4;
  config.run.dir = dir.file("protonet");
  ml::train::run_training(config, {});
  const std::string proto = "--log-level warn eval --checkpoint " + q(config.run.dir) +
                            " --shots 3 --steps 0 --episodes 2 --device cpu --threads 1";
  const std::string other = dir.file("other/report.html");
  const auto refused = ml::testing::run_cli_many(
      {eval + " --importance", eval + " --importance --tasks validation --report " + q(other),
       proto + " --importance --report " + q(other)});
  for (const auto& x : refused) {
    EXPECT_EQ(x.code, 2) << x.err;
    EXPECT_EQ(x.err_lines(), 1) << x.err;
  }
  EXPECT_NE(refused[0].err.find("--report"), std::string::npos) << refused[0].err;
  EXPECT_NE(refused[1].err.find("--tasks validation"), std::string::npos) << refused[1].err;
  EXPECT_NE(refused[2].err.find("protonet"), std::string::npos) << refused[2].err;
  EXPECT_FALSE(fs::exists(dir.file("other")));
}

}  // namespace
