// The cold-start report's tables as Markdown: see cold_start_page.hpp.
#include <sstream>

#include "report/cold_start_page.hpp"
#include "report/importance_section.hpp"
#include "report/results_table.hpp"
#include "report/text_escape.hpp"
#include "util/errors.hpp"

namespace ml::report {

namespace {

std::string md(const std::string& s) {
  return escape_markdown(s);
}

std::string bold_if(const std::string& s, bool bold) {
  return bold ? "**" + s + "**" : s;
}

}  // namespace

std::string render_markdown(const eval::ColdStartResult& r,
                            const explain::NewTaskImportance* importance) {
  if (r.metrics.empty()) throw DataError("the cold-start result has no metric to report");
  const ResultsTable table = results_table(r);
  const eval::MetricInfo& primary = r.metrics.front();
  std::ostringstream o;
  o << "# Cold-start evaluation of " << md(r.algorithm) << "\n\n";
  for (const auto& group : summary_facts(r)) {
    o << "## " << md(group.title) << "\n\n";
    for (const auto& f : group.facts) o << "- " << md(f.label) << ": " << md(f.value) << "\n";
    o << "\n";
  }

  o << "## Conclusions\n\n" << md(conclusion_summary(r, table)) << "\n\n";
  for (const auto& v : r.verdicts)
    o << "- " << (baseline_wins(v, table) ? "**A baseline wins.** " : "") << md(v.text) << "\n";

  o << "\n## Results: " << md(primary.title) << "\n\n"
    << "Exploration: the full grid, never used to choose. Mean ± 95% CI half width over "
       "tasks; Δ: paired per-task difference (cell − the baseline chosen on validation tasks "
       "at that K), mean [95% CI]; in bold the two settings chosen on validation tasks that the "
       "verdict compares.\n\n"
    << "| K | steps | method | tasks | " << md(primary.title) << " | Δ vs chosen baseline |";
  o << "\n|---:|---:|---|---:|---:|---:|\n";
  for (const auto& row : table.rows) {
    const eval::Cell& c = *row.cell;
    const auto& iv = c.metrics.front().interval;
    o << "| " << c.shots << " | " << c.steps << " | " << md(c.method)
      << (c.diverged_episodes > 0 ? " (!)" : "") << " | " << iv.n << " | "
      << bold_if(metrics::format_interval(iv, 3), row.chosen) << " |";
    const eval::Comparison* cmp = chosen_baseline_difference(c, primary.name);
    o << " " << (cmp ? metrics::format_difference(cmp->difference, 3) : "-") << " |\n";
  }

  if (r.metrics.size() > 1) {
    const std::vector<std::size_t> shown = shown_metrics(r);
    o << "\n## All metrics\n\nMean ± 95% CI half width (exploration); the settings chosen on "
         "validation tasks in bold.\n\n| K | steps | method |";
    for (std::size_t x : shown)
      o << " " << md(r.metrics[x].title)
        << (r.metrics[x].higher_is_better ? "" : " (lower is better)") << " |";
    o << "\n|---:|---:|---|";
    for (std::size_t i = 0; i < shown.size(); ++i) o << "---:|";
    o << "\n";
    for (const auto& row : table.rows) {
      const eval::Cell& c = *row.cell;
      o << "| " << c.shots << " | " << c.steps << " | " << md(c.method) << " |";
      for (std::size_t x : shown)
        o << " "
          << bold_if(metric_cell_text(r, c, x),
                     row.chosen && !r.fixed_by_query(r.metrics[x].name, c.shots))
          << " |";
      o << "\n";
    }
    if (const std::string note = eval::fixed_by_query_note(r); !note.empty())
      o << "\n" << md(note) << "\n";
  }

  if (importance) o << "\n" << importance_markdown(*importance);

  o << "\n## New tasks\n\n";
  for (const auto& t : r.tasks) {
    o << "- K = " << t.shots << ": " << t.evaluated.size() << " of " << r.new_tasks << " evaluated";
    if (!t.skipped.empty()) o << ", " << md(eval::skipped_counts_text(t));
    o << "\n";
  }
  return o.str();
}

}  // namespace ml::report
