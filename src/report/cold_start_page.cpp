// The HTML cold-start report and the files beside it: see cold_start_page.hpp.
#include "report/cold_start_page.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "config/choices.hpp"
#include "report/importance_section.hpp"
#include "report/page_style.hpp"
#include "report/results_table.hpp"
#include "report/svg_chart.hpp"
#include "report/text_escape.hpp"
#include "run/run_files.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/same_file.hpp"
#include "util/strings.hpp"
#include "util/version.hpp"

namespace ml::report {

namespace fs = std::filesystem;

namespace {

const char* const kPalette[] = {"#0072b2", "#009e73", "#cc79a7", "#56b4e9",
                                "#d55e00", "#7e5ba8", "#8c6d31", "#1a1a1a"};

std::string h(const std::string& s) {
  return escape_html(s);
}

std::string steps_word(int steps) {
  return std::to_string(steps) + (steps == 1 ? " step" : " steps");
}

// Classes for a paired difference cell: better / worse when the CI excludes zero.
std::string difference_class(const metrics::Interval& d, bool higher_is_better) {
  if (d.n == 0 || !std::isfinite(d.half_width)) return "num even";
  if (d.lower > 0) return higher_is_better ? "num better" : "num worse";
  if (d.upper < 0) return higher_is_better ? "num worse" : "num better";
  return "num even";
}

class Page {
 public:
  Page(const eval::ColdStartResult& r, const std::vector<TrainingLog>& logs,
       const explain::NewTaskImportance* importance)
      : r_(r), logs_(logs), importance_(importance), table_(results_table(r)) {}

  std::string render() {
    std::ostringstream body;
    header(body);
    summary(body);
    conclusions(body);
    charts(body);
    results(body);
    all_metrics(body);
    if (importance_) body << importance_html(*importance_, charts_);
    training(body);
    new_tasks(body);
    body << "<footer>Written by metalearn " << kToolVersion
         << ". The same tables are in the Markdown and JSON files beside this page; "
            "<code>metalearn eval --json-out</code> gives every per-task value.</footer>\n";

    std::ostringstream o;
    o << "<!DOCTYPE html>\n<html lang=\"en\" data-charts=\"" << charts_ << "\">\n<head>\n"
      << "<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<meta name=\"generator\" content=\"metalearn " << kToolVersion << "\">\n"
      << "<title>Cold-start report: " << h(r_.run_dir) << "</title>\n<style>" << kPageStyle
      << "</style>\n</head>\n<body>\n<main>\n"
      << body.str() << "</main>\n<script>" << kPageScript << "</script>\n</body>\n</html>\n";
    return o.str();
  }

 private:
  const eval::MetricInfo& primary() const { return r_.metrics.front(); }

  void header(std::ostream& o) {
    o << "<header>\n<h1>Cold-start evaluation of " << h(r_.algorithm) << "</h1>\n"
      << "<p class=\"lede\"><span class=\"path\">" << h(r_.run_dir) << "</span> &middot; "
      << h(r_.run.model) << " &middot; " << r_.new_tasks << " new tasks held out whole &middot; "
      << "main metric " << h(primary().title) << " ("
      << (primary().higher_is_better ? "higher" : "lower") << " is better)</p>\n</header>\n";
  }

  void summary(std::ostream& o) {
    o << "<section id=\"summary\">\n<h2>Run, data and protocol</h2>\n<div class=\"cards\">\n";
    for (const auto& group : summary_facts(r_)) {
      o << "<div class=\"card\"><h3>" << h(group.title) << "</h3><dl>\n";
      for (const auto& f : group.facts)
        o << "<dt>" << h(f.label) << "</dt><dd>" << h(f.value) << "</dd>\n";
      o << "</dl></div>\n";
    }
    o << "</div>\n</section>\n";
  }

  void conclusions(std::ostream& o) {
    bool any_baseline = false;
    for (const auto& v : r_.verdicts) any_baseline = any_baseline || baseline_wins(v, table_);
    o << "<section id=\"conclusions\">\n<h2>Conclusions</h2>\n<p class=\"summary"
      << (any_baseline ? " baseline-wins" : "") << "\">" << h(conclusion_summary(r_, table_))
      << "</p>\n<ul class=\"verdicts\">\n";
    for (const auto& v : r_.verdicts) {
      std::string badge = "<span class=\"badge\">no significant difference</span>";
      if (v.best_method.empty())
        badge = "<span class=\"badge\">no data</span>";
      else if (baseline_wins(v, table_))
        badge = "<span class=\"badge baseline\">a baseline wins</span>";
      else if (v.excludes_zero)
        badge = "<span class=\"badge significant\">significant</span>";
      else if (v.compared_method.empty())
        badge = "<span class=\"badge\">nothing to compare</span>";
      o << "<li class=\"verdict\">" << badge << h(v.text) << "</li>\n";
    }
    o << "</ul>\n</section>\n";
  }

  void results(std::ostream& o) {
    const eval::MetricInfo& m = primary();
    o << "<section id=\"results\">\n<h2>Results: " << h(m.title) << "</h2>\n"
      << "<p class=\"note\">Exploration: the full grid on the new tasks, never used to choose. "
         "Mean &plusmn; 95% CI half width over tasks. &Delta;: the paired per-task difference "
         "(cell &minus; the baseline chosen on validation tasks at that K), mean [95% CI]; green "
         "when the cell is significantly better, red when significantly worse. Highlighted: the "
         "two settings chosen on validation tasks that the verdict compares.</p>\n"
      << "<div class=\"table-wrap\"><table class=\"results\">\n<thead><tr><th>steps</th>"
         "<th>method</th><th class=\"num\">tasks</th><th>"
      << h(m.title) << "</th>";
    o << "<th>&Delta; vs chosen baseline</th></tr></thead>\n<tbody>\n";
    const std::size_t columns = 5;
    int group = -1;
    bool diverged = false;
    for (const auto& row : table_.rows) {
      const eval::Cell& c = *row.cell;
      if (c.shots != group) {
        group = c.shots;
        const eval::ShotTasks* t = r_.tasks_at(c.shots);
        o << "<tr class=\"group\"><th colspan=\"" << columns << "\">K = " << c.shots << " ("
          << (t ? t->evaluated.size() : 0) << " of " << r_.new_tasks << " new tasks)</th></tr>\n";
      }
      const auto& iv = c.metrics.front().interval;
      diverged = diverged || c.diverged_episodes > 0;
      o << "<tr><td class=\"num\">" << c.steps << "</td><td>" << h(c.method)
        << (c.diverged_episodes > 0 ? " (!)" : "") << "</td><td class=\"num\">" << iv.n
        << "</td><td class=\"num" << (row.chosen ? " best" : "") << "\">"
        << h(metrics::format_interval(iv, 3)) << "</td>";
      if (const eval::Comparison* cmp = chosen_baseline_difference(c, m.name))
        o << "<td class=\"" << difference_class(cmp->difference, m.higher_is_better) << "\">"
          << h(metrics::format_difference(cmp->difference, 3)) << "</td>";
      else
        o << "<td class=\"num even\">&mdash;</td>";
      o << "</tr>\n";
    }
    o << "</tbody></table></div>\n";
    if (diverged)
      o << "<p class=\"note\">(!) some episodes of this method gave NaN/Inf outputs at that "
           "cell; they are left out of its mean.</p>\n";
    o << "</section>\n";
  }

  std::string colour(const std::string& method) const { return method_colour(r_.methods, method); }

  ChartSeries series_for(const std::string& method) const {
    ChartSeries s;
    s.name = method;
    s.colour = colour(method);
    s.dashed = table_.is_baseline(method);
    return s;
  }

  static ChartPoint point(double x, const metrics::Interval& iv, const std::string& note) {
    ChartPoint p;
    p.x = x;
    p.y = iv.mean;
    if (std::isfinite(iv.half_width)) p.lower = iv.lower, p.upper = iv.upper;
    p.note = note;
    return p;
  }

  void figure(std::ostream& o, const Chart& chart, const std::string& caption) {
    o << "<figure>\n"
      << render_svg(chart) << "<figcaption>" << caption << "</figcaption>\n</figure>\n";
    ++charts_;
  }

  void charts(std::ostream& o) {
    const eval::MetricInfo& m = primary();
    o << "<section id=\"charts\">\n<h2>" << h(m.title) << " against adaptation steps</h2>\n"
      << "<div class=\"charts\">\n";
    for (int k : r_.shots) {
      Chart chart;
      chart.title = "K = " + std::to_string(k) + ": " + m.title + " after adaptation";
      chart.x_label = "adaptation steps";
      chart.y_label = m.title;
      for (int s : r_.steps) chart.x_categories.push_back(s);
      for (const auto& method : r_.methods) {
        ChartSeries series = series_for(method);
        for (int s : r_.steps)
          if (const eval::Cell* c = r_.cell(method, k, s))
            series.points.push_back(
                point(s, c->metrics.front().interval,
                      std::to_string(c->metrics.front().interval.n) + " tasks"));
        chart.series.push_back(std::move(series));
      }
      figure(o, chart,
             "Mean over new tasks with its 95% CI band, " + std::to_string(k) +
                 " support examples per task; baselines dashed.");
    }
    o << "</div>\n<h2>" << h(m.title) << " against shots</h2>\n<div class=\"charts\">\n";
    Chart chart;
    chart.title = m.title + " against shots, each family at its setting chosen on validation";
    chart.x_label = "shots (support examples per task)";
    chart.y_label = m.title;
    for (int k : r_.shots) chart.x_categories.push_back(k);
    std::vector<std::string> families;
    for (const auto& c : r_.choices)
      if (std::find(families.begin(), families.end(), c.family) == families.end())
        families.push_back(c.family);
    const bool on_new = r_.task_role == "new";
    for (const auto& family : families) {
      ChartSeries series;
      series.name = family;
      series.colour = colour(family);
      series.dashed = false;
      for (int k : r_.shots)
        if (const eval::Choice* c = r_.choice(family, k)) {
          series.dashed = c->baseline;
          series.points.push_back(
              point(k, on_new ? c->test : c->validation, c->method + ", " + steps_word(c->steps)));
        }
      chart.series.push_back(std::move(series));
    }
    figure(o, chart,
           on_new ? "Each point is the family's variant and step count chosen on validation tasks "
                    "at that K (hover a point for it), scored on the new tasks, with the 95% CI "
                    "band over tasks; baselines dashed."
                  : "Each point is the family's variant and step count chosen on these validation "
                    "tasks (hover a point for it), with the 95% CI band; baselines dashed.");
    o << "</div>\n</section>\n";
  }

  void all_metrics(std::ostream& o) {
    if (r_.metrics.size() < 2) return;
    const std::vector<std::size_t> shown = shown_metrics(r_);
    o << "<section id=\"all-metrics\">\n<h2>All metrics</h2>\n"
      << "<p class=\"note\">Mean &plusmn; 95% CI half width over tasks (exploration); the "
         "settings chosen on validation tasks are highlighted. Lower is better for ";
    std::vector<std::string> lower;
    for (const auto& m : r_.metrics)
      if (!m.higher_is_better) lower.push_back(h(m.title));
    o << (lower.empty() ? "none of them" : join(lower, ", ")) << ".</p>\n"
      << "<div class=\"table-wrap\"><table class=\"all-metrics\">\n<thead><tr><th>steps</th>"
         "<th>method</th>";
    for (std::size_t x : shown) o << "<th>" << h(r_.metrics[x].title) << "</th>";
    o << "</tr></thead>\n<tbody>\n";
    int group = -1;
    for (const auto& row : table_.rows) {
      const eval::Cell& c = *row.cell;
      if (c.shots != group) {
        group = c.shots;
        o << "<tr class=\"group\"><th colspan=\"" << 2 + shown.size() << "\">K = " << c.shots
          << "</th></tr>\n";
      }
      o << "<tr><td class=\"num\">" << c.steps << "</td><td>" << h(c.method) << "</td>";
      for (std::size_t x : shown)
        o << "<td class=\"num"
          << (row.chosen && !r_.fixed_by_query(r_.metrics[x].name, c.shots) ? " best" : "") << "\">"
          << h(metric_cell_text(r_, c, x)) << "</td>";
      o << "</tr>\n";
    }
    o << "</tbody></table></div>\n";
    if (const std::string note = eval::fixed_by_query_note(r_); !note.empty())
      o << "<p class=\"note fixed-by-query\">" << h(note) << "</p>\n";
    o << "</section>\n";
  }

  void training_chart(std::ostream& o, const std::string& title, const std::string& y_label,
                      std::vector<TrainingPoint> TrainingLog::*field, const std::string& caption) {
    Chart chart;
    chart.title = title;
    chart.x_label = "meta-iteration";
    chart.y_label = y_label;
    for (const auto& log : logs_) {
      if ((log.*field).empty()) continue;
      ChartSeries series = series_for(log.method);
      for (const auto& p : log.*field)
        series.points.push_back({double(p.iteration), p.value, NAN, NAN, ""});
      chart.series.push_back(std::move(series));
    }
    if (chart.series.empty()) return;
    figure(o, chart, caption);
  }

  void training(std::ostream& o) {
    o << "<section id=\"training\">\n<h2>Training curves</h2>\n";
    if (logs_.empty()) {
      std::vector<std::string> dirs;
      for (const auto& run : r_.runs)
        dirs.push_back("<span class=\"path\">" + h(run.run_dir) + "</span>");
      if (dirs.empty()) dirs.push_back("<span class=\"path\">" + h(r_.run_dir) + "</span>");
      o << "<p class=\"note\">No <code>metrics.jsonl</code> with training points was found in "
        << join(dirs, ", ") << ".</p>\n</section>\n";
      return;
    }
    o << "<p class=\"note\">From ";
    std::vector<std::string> sources;
    for (const auto& log : logs_) {
      std::string s = h(log.method) + ": <span class=\"path\">" + h(log.path) + "</span>";
      if (log.skipped_lines > 0)
        s += " (" + std::to_string(log.skipped_lines) + " unreadable lines skipped)";
      sources.push_back(s);
    }
    o << join(sources, "; ") << ". The run's loss is its meta-objective (the query loss after "
      << "the inner loop); the pretrain baseline's is its joint training loss.</p>\n"
      << "<div class=\"charts\">\n";
    training_chart(o, "Training loss", "loss", &TrainingLog::loss,
                   "Mean training loss of each logged window of meta-iterations.");
    training_chart(o, "Validation query loss", "query loss", &TrainingLog::validation_loss,
                   "Query loss after adaptation on the validation tasks; the best checkpoint is "
                   "the lowest.");
    training_chart(o, "Validation AUC", "AUC", &TrainingLog::validation_auc,
                   "Query AUC after adaptation on the validation tasks.");
    o << "</div>\n</section>\n";
  }

  void new_tasks(std::ostream& o) {
    o << "<section id=\"tasks\">\n<h2>New tasks</h2>\n";
    for (const auto& t : r_.tasks) {
      o << "<details><summary>K = " << t.shots << ": " << t.evaluated.size() << " of "
        << r_.new_tasks << " new tasks evaluated";
      if (!t.skipped.empty()) o << ", " << h(eval::skipped_counts_text(t));
      o << "</summary>\n<p>";
      std::vector<std::string> names;
      for (const auto& name : t.evaluated) names.push_back(h(name));
      o << join(names, ", ") << "</p>\n";
      if (!t.skipped.empty()) {
        o << "<ul>\n";
        for (const auto& s : t.skipped)
          o << "<li>" << h(s.task) << ": " << h(s.reason) << "</li>\n";
        o << "</ul>\n";
      }
      o << "</details>\n";
    }
    o << "</section>\n";
  }

  const eval::ColdStartResult& r_;
  const std::vector<TrainingLog>& logs_;
  const explain::NewTaskImportance* importance_;
  ResultsTable table_;
  int charts_ = 0;
};

}  // namespace

std::string method_colour(const std::vector<std::string>& methods, const std::string& method) {
  if (method == enum_name(config::Algorithm::kPretrain)) return "#e69f00";
  if (method == enum_name(config::Algorithm::kScratch)) return "#6b6b6b";
  std::size_t index = 0;
  for (const auto& m : methods) {
    if (m == method) break;
    if (!config::is_baseline_name(m)) ++index;
  }
  return kPalette[index % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

std::string render_html(const eval::ColdStartResult& result, const std::vector<TrainingLog>& logs,
                        const explain::NewTaskImportance* importance) {
  if (result.metrics.empty()) throw DataError("the cold-start result has no metric to report");
  return Page(result, logs, importance).render();
}

ReportPaths report_paths(const std::string& html_path) {
  fs::path path(html_path);
  const std::string ext = to_lower(path.extension().string());
  if (ext == ".md" || ext == ".json")
    throw UsageError("--report " + html_path +
                     ": give the HTML file's name (e.g. report.html); the .md and .json files "
                     "are written beside it");
  ReportPaths p;
  p.html = html_path;
  p.markdown = fs::path(html_path).replace_extension(".md").string();
  p.json = fs::path(html_path).replace_extension(".json").string();
  return p;
}

void check_outputs(const std::string& json_out, const std::string& html_path,
                   const std::vector<std::string>& runs) {
  std::vector<std::pair<std::string, std::string>> outputs;  // (option, path)
  if (!json_out.empty()) outputs.emplace_back("--json-out", json_out);
  if (!html_path.empty()) {
    const ReportPaths paths = report_paths(html_path);
    const std::string report = "--report " + html_path;
    outputs.emplace_back(report, paths.html);
    outputs.emplace_back(report + " (its tables)", paths.markdown);
    outputs.emplace_back(report + " (its tables)", paths.json);
  }
  for (std::size_t j = 0; j < outputs.size(); ++j)
    for (std::size_t i = 0; i < j; ++i)
      if (same_file(outputs[i].second, outputs[j].second))
        throw UsageError(outputs[i].first + " and " + outputs[j].first + " both write '" +
                         outputs[j].second + "': name another file");
  for (const std::string& checkpoint : runs) {
    const run::RunFiles files = run::run_files(checkpoint);
    for (const auto& [option, path] : outputs) run::refuse_output_over_run(files, option, path);
  }
  for (const auto& output : outputs) check_writable(output.second);
}

ReportPaths write_report(const eval::ColdStartResult& result, const std::string& html_path,
                         const explain::NewTaskImportance* importance) {
  const ReportPaths paths = report_paths(html_path);
  const std::string html = render_html(result, read_training_logs(result), importance);
  const std::string markdown = render_markdown(result, importance);
  nlohmann::json tables = results_json(result, results_table(result));
  if (importance) tables["importance"] = explain::to_json(*importance);
  const std::string json = tables.dump(2) + "\n";
  const fs::path folder = fs::path(paths.html).parent_path();
  std::error_code ec;
  if (!folder.empty()) fs::create_directories(folder, ec);
  if (ec)
    throw DataError("--report " + html_path + ": cannot create '" + folder.string() +
                    "': " + ec.message());
  // All three complete before any becomes visible: a failure leaves none of them half-updated.
  AtomicFile html_file(paths.html), markdown_file(paths.markdown), json_file(paths.json);
  html_file.write(html);
  markdown_file.write(markdown);
  json_file.write(json);
  for (AtomicFile* file : {&html_file, &markdown_file, &json_file}) file->finish();
  for (AtomicFile* file : {&html_file, &markdown_file, &json_file}) file->publish();
  return paths;
}

}  // namespace ml::report
