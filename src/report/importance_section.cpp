// Importance charts and eval's importance section: see importance_section.hpp.
#include "report/importance_section.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "report/text_escape.hpp"

namespace ml::report {

namespace {

constexpr std::size_t kFeaturesAcrossTasks = 15;  // bars and table rows of the mean over tasks
constexpr std::size_t kFeaturesPerTask = 8;       // bars per task's chart
constexpr std::size_t kChangesListed = 5;         // a task's changes in the Markdown

std::string h(const std::string& s) {
  return escape_html(s);
}

std::string md(const std::string& s) {
  return escape_markdown(s);
}

std::string signed_figure(double v) {
  return (v > 0 ? "+" : "") + importance_figure(v);
}

// A task's features with the largest importance before or after adaptation first: what the
// model leaned on either way, not only what moved.
std::vector<explain::FeatureChange> by_importance(const explain::TaskImportance& t) {
  std::vector<explain::FeatureChange> features = t.changes;
  if (!t.before)
    for (const auto& f : t.after.importance) features.push_back({f.feature, 0.0, f.mean_abs});
  std::stable_sort(features.begin(), features.end(),
                   [](const explain::FeatureChange& a, const explain::FeatureChange& b) {
                     return std::max(a.before, a.after) > std::max(b.before, b.after);
                   });
  return features;
}

std::string task_title(const explain::TaskImportance& t) {
  return t.task + " · support " + std::to_string(t.support_size) + ", query " +
         std::to_string(t.query_size);
}

}  // namespace

std::string importance_figure(double v) {
  if (!std::isfinite(v)) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", v);
  return buffer;
}

BarChart before_after_chart(const std::string& title,
                            const std::vector<explain::FeatureChange>& features, std::size_t shown,
                            bool with_before) {
  BarChart c;
  c.title = title;
  c.value_label = "mean |attribution| (score units)";
  BarSeries before{"before adaptation", kBeforeColour, {}}, after{"after adaptation", kAfterColour, {}};
  if (!with_before) after.name.clear();  // a lone series needs no legend
  for (std::size_t i = 0; i < std::min(shown, features.size()); ++i) {
    c.labels.push_back(features[i].feature);
    before.values.push_back(features[i].before);
    after.values.push_back(features[i].after);
  }
  if (with_before) c.series.push_back(std::move(before));
  c.series.push_back(std::move(after));
  return c;
}

std::string importance_html(const explain::NewTaskImportance& n, int& charts) {
  const bool with_before = n.before_note.empty();
  std::ostringstream o;
  o << "<section id=\"importance\">\n<h2>What adaptation taught each new task</h2>\n"
    << "<p class=\"note\">Each new task adapted as <code>metalearn adapt --all-new</code> adapts "
       "it (steps and inner lr: "
    << h(n.settings_source)
    << ") and explained on its own query rows by Integrated Gradients (Sundararajan et al. 2017; "
    << n.steps
    << " Gauss-Legendre steps): a feature's importance is its mean |attribution| over the rows, "
       "in the units of the score explained, "
    << h(n.explained) << "; the baseline is " << h(n.baseline) << ". "
    << (with_before ? "Before: the run's meta-learned model on the same rows. "
                    : "No model before adaptation: " + h(n.before_note) + ". ")
    << "Largest completeness gap " << importance_figure(n.max_gap) << "; "
    << n.rows_over_tolerance << " of " << n.rows
    << " row explanations over the tolerance. <code>metalearn explain --checkpoint "
       "RUN/adapted/TASK.mlckpt</code> shows a task's rows one by one after <code>metalearn adapt "
       "--all-new</code>.</p>\n";
  const std::size_t shown = std::min(kFeaturesAcrossTasks, n.across_tasks.size());
  o << "<div class=\"charts\">\n<figure>"
    << render_bar_svg(before_after_chart(
           "Mean over the " + std::to_string(n.tasks.size()) + " new tasks", n.across_tasks,
           shown, with_before))
    << "<figcaption>Each feature's importance averaged over the new tasks (0 for a task whose "
       "rows lack it), the "
    << shown << " largest after adaptation.</figcaption></figure>\n</div>\n";
  ++charts;
  o << "<div class=\"table-wrap\"><table>\n<thead><tr><th>feature</th>"
    << (with_before ? "<th>before</th>" : "") << "<th>after</th>"
    << (with_before ? "<th>change</th>" : "") << "</tr></thead>\n<tbody>\n";
  for (std::size_t i = 0; i < shown; ++i) {
    const explain::FeatureChange& f = n.across_tasks[i];
    o << "<tr><td>" << h(f.feature) << "</td>";
    if (with_before) o << "<td class=\"num\">" << importance_figure(f.before) << "</td>";
    o << "<td class=\"num\">" << importance_figure(f.after) << "</td>";
    if (with_before) o << "<td class=\"num\">" << signed_figure(f.change()) << "</td>";
    o << "</tr>\n";
  }
  o << "</tbody></table></div>\n";

  const std::size_t tasks = std::min(kTasksCharted, n.tasks.size());
  o << "<h3>Per task</h3>\n";
  if (tasks < n.tasks.size())
    o << "<p class=\"note\">The first " << tasks << " of " << n.tasks.size()
      << " new tasks; the Markdown and JSON files beside this page hold every task.</p>\n";
  o << "<div class=\"charts\">\n";
  for (std::size_t i = 0; i < tasks; ++i) {
    const explain::TaskImportance& t = n.tasks[i];
    o << "<figure>"
      << render_bar_svg(before_after_chart(task_title(t), by_importance(t), kFeaturesPerTask,
                                           with_before))
      << "<figcaption>Adapted with " << t.adapt_steps << " step(s) at inner lr "
      << importance_figure(t.inner_lr);
    if (!t.changes.empty())
      o << "; changed most: " << h(t.changes.front().feature) << " "
        << signed_figure(t.changes.front().change());
    o << "; largest completeness gap " << importance_figure(t.after.max_gap)
      << ".</figcaption></figure>\n";
    ++charts;
  }
  o << "</div>\n</section>\n";
  return o.str();
}

std::string importance_markdown(const explain::NewTaskImportance& n) {
  const bool with_before = n.before_note.empty();
  std::ostringstream o;
  o << "## What adaptation taught each new task\n\n"
    << "Each new task adapted as `metalearn adapt --all-new` adapts it (steps and inner lr: "
    << md(n.settings_source)
    << ") and explained on its own query rows by Integrated Gradients (Sundararajan et al. "
       "2017; "
    << n.steps
    << " Gauss-Legendre steps). Importance: mean |attribution| over the task's query rows, in "
       "the units of the score explained, "
    << md(n.explained) << ". "
    << (with_before ? "Before: the run's meta-learned model on the same rows."
                    : "No model before adaptation: " + md(n.before_note) + ".")
    << " Largest completeness gap " << importance_figure(n.max_gap) << "; "
    << n.rows_over_tolerance << " of " << n.rows << " row explanations over the tolerance.\n\n"
    << "Mean over the " << n.tasks.size() << " new tasks:\n\n| feature |"
    << (with_before ? " before |" : "") << " after |" << (with_before ? " change |" : "")
    << "\n|---|" << (with_before ? "---:|" : "") << "---:|" << (with_before ? "---:|" : "")
    << "\n";
  for (std::size_t i = 0; i < std::min(kFeaturesAcrossTasks, n.across_tasks.size()); ++i) {
    const explain::FeatureChange& f = n.across_tasks[i];
    o << "| " << md(f.feature) << " |";
    if (with_before) o << " " << importance_figure(f.before) << " |";
    o << " " << importance_figure(f.after) << " |";
    if (with_before) o << " " << signed_figure(f.change()) << " |";
    o << "\n";
  }
  o << "\n| task | support | query | " << (with_before ? "changed most" : "most important")
    << " |\n|---|---:|---:|---|\n";
  for (const explain::TaskImportance& t : n.tasks) {
    std::vector<std::string> listed;
    if (with_before)
      for (std::size_t i = 0; i < std::min(kChangesListed, t.changes.size()); ++i)
        listed.push_back(md(t.changes[i].feature) + " " +
                         importance_figure(t.changes[i].before) + " → " +
                         importance_figure(t.changes[i].after));
    else
      for (std::size_t i = 0; i < std::min(kChangesListed, t.after.importance.size()); ++i)
        listed.push_back(md(t.after.importance[i].feature) + " " +
                         importance_figure(t.after.importance[i].mean_abs));
    o << "| " << md(t.task) << " | " << t.support_size << " | " << t.query_size << " | ";
    for (std::size_t i = 0; i < listed.size(); ++i) o << (i ? ", " : "") << listed[i];
    o << " |\n";
  }
  return o.str();
}

}  // namespace ml::report
