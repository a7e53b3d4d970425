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

// A feature's name, marked when its value is the same on every row.
std::string feature_label(const explain::FeatureChange& f) {
  return report::feature_label(f.feature, f.constant);
}

std::string signed_figure(double v) {
  return (v > 0 ? "+" : "") + importance_figure(v);
}

// A task's features with the largest importance before or after adaptation first: what the
// model leaned on either way, not only what moved.
std::vector<explain::FeatureChange> by_importance(const explain::TaskImportance& t) {
  std::vector<explain::FeatureChange> features = explain::task_features(t);
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

// The tasks adapted with 0 steps (the setting chosen on validation tasks can be "do not
// adapt"): their model is the run's, so before and after are equal.
std::size_t unadapted(const explain::NewTaskImportance& n) {
  return static_cast<std::size_t>(
      std::count_if(n.tasks.begin(), n.tasks.end(),
                    [](const explain::TaskImportance& t) { return t.adapt_steps == 0; }));
}

// What the page and the Markdown say about a task's adaptation: steps, inner lr and the
// headline metric on its query before and after.
std::string adaptation_text(const explain::TaskImportance& t) {
  std::string text = std::to_string(t.adapt_steps) + (t.adapt_steps == 1 ? " step" : " steps");
  if (t.adapt_steps == 0) return text + " (not adapted: before = after)";
  text += " at inner lr " + importance_figure(t.inner_lr);
  if (!t.metric.empty())
    text += "; query " + t.metric + " " + importance_figure(t.metric_before) + " → " +
            importance_figure(t.metric_after);
  return text;
}

constexpr const char* kConstantNote =
    "(constant): the same value on every query row of the task (of every task, in the mean): "
    "its attribution moves every row's score alike, an offset rather than what ranks the rows "
    "(e.g. item_popularity = 0 for every item of a category the training log never saw).";

}  // namespace

std::string feature_label(const std::string& feature, bool constant) {
  return constant ? feature + " (constant)" : feature;
}

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
  BarSeries before{"before adaptation", kBeforeColour, {}},
      after{"after adaptation", kAfterColour, {}};
  if (!with_before) after.name.clear();  // a lone series needs no legend
  for (std::size_t i = 0; i < std::min(shown, features.size()); ++i) {
    c.labels.push_back(feature_label(features[i]));
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
    << "<p class=\"note\">Each new task of <span class=\"path\">" << h(n.checkpoint)
    << "</span> adapted as <code>metalearn adapt --all-new</code> adapts it (steps and inner lr: "
    << h(n.settings_source)
    << ") and explained on its own query rows by Integrated Gradients (Sundararajan et al. 2017; "
    << n.steps
    << " Gauss-Legendre steps): a feature's importance is its mean |attribution| over the rows, "
       "in the units of the score explained, "
    << h(n.explained) << "; the baseline is " << h(n.baseline) << ". "
    << (with_before ? "Before: the run's meta-learned model on the same rows. "
                    : "No model before adaptation: " + h(n.before_note) + ". ")
    << "Largest completeness gap " << importance_figure(n.max_gap) << "; " << n.rows_over_tolerance
    << " of " << n.rows
    << " row explanations over the tolerance. <code>metalearn explain --checkpoint "
       "RUN/adapted/TASK.mlckpt</code> shows a task's rows one by one after <code>metalearn adapt "
       "--all-new</code>.</p>\n";
  if (const std::size_t none = unadapted(n); none > 0)
    o << "<p class=\"note\">" << none << " of " << n.tasks.size()
      << " task(s) adapted with 0 steps, the setting chosen on validation tasks: their model is "
         "the run's, and before equals after.</p>\n";
  const std::size_t shown = std::min(kFeaturesAcrossTasks, n.across_tasks.size());
  o << "<div class=\"charts\">\n<figure>"
    << render_bar_svg(
           before_after_chart("Mean over the " + std::to_string(n.tasks.size()) + " new tasks",
                              n.across_tasks, shown, with_before))
    << "<figcaption>Each feature's importance averaged over the new tasks (0 for a task whose "
       "rows lack it), the "
    << shown << " of " << n.across_tasks.size()
    << " features largest before or after adaptation.</figcaption></figure>\n</div>\n";
  ++charts;
  o << "<div class=\"table-wrap\"><table>\n<thead><tr><th>feature</th>"
    << (with_before ? "<th>before</th>" : "") << "<th>after</th>"
    << (with_before ? "<th>change</th>" : "") << "</tr></thead>\n<tbody>\n";
  bool constant = false;
  for (std::size_t i = 0; i < shown; ++i) {
    const explain::FeatureChange& f = n.across_tasks[i];
    constant = constant || f.constant;
    o << "<tr><td>" << h(feature_label(f)) << "</td>";
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
    const std::vector<explain::FeatureChange> features = by_importance(t);
    for (std::size_t f = 0; f < std::min(kFeaturesPerTask, features.size()); ++f)
      constant = constant || features[f].constant;
    o << "<figure>"
      << render_bar_svg(before_after_chart(task_title(t), features, kFeaturesPerTask, with_before))
      << "<figcaption>Adapted with " << h(adaptation_text(t));
    if (!t.changes.empty() && t.adapt_steps > 0)
      o << "; changed most: " << h(t.changes.front().feature) << " "
        << signed_figure(t.changes.front().change());
    o << "; largest completeness gap " << importance_figure(t.after.max_gap)
      << ".</figcaption></figure>\n";
    ++charts;
  }
  o << "</div>\n";
  if (constant) o << "<p class=\"note\">" << h(kConstantNote) << "</p>\n";
  o << "</section>\n";
  return o.str();
}

std::string importance_markdown(const explain::NewTaskImportance& n) {
  const bool with_before = n.before_note.empty();
  std::ostringstream o;
  o << "## What adaptation taught each new task\n\n"
    << "Each new task of `" << n.checkpoint
    << "` adapted as `metalearn adapt --all-new` adapts it (steps and inner lr: "
    << md(n.settings_source)
    << ") and explained on its own query rows by Integrated Gradients (Sundararajan et al. "
       "2017; "
    << n.steps
    << " Gauss-Legendre steps). Importance: mean |attribution| over the task's query rows, in "
       "the units of the score explained, "
    << md(n.explained) << ". "
    << (with_before ? "Before: the run's meta-learned model on the same rows."
                    : "No model before adaptation: " + md(n.before_note) + ".")
    << " Largest completeness gap " << importance_figure(n.max_gap) << "; " << n.rows_over_tolerance
    << " of " << n.rows << " row explanations over the tolerance.";
  if (const std::size_t none = unadapted(n); none > 0)
    o << " " << none << " of " << n.tasks.size()
      << " task(s) adapted with 0 steps, the setting chosen on validation tasks: their model is "
         "the run's, and before equals after.";
  const std::size_t shown = std::min(kFeaturesAcrossTasks, n.across_tasks.size());
  o << "\n\nMean over the " << n.tasks.size() << " new tasks, the " << shown << " of "
    << n.across_tasks.size() << " features largest before or after:\n\n| feature |"
    << (with_before ? " before |" : "") << " after |" << (with_before ? " change |" : "")
    << "\n|---|" << (with_before ? "---:|" : "") << "---:|" << (with_before ? "---:|" : "") << "\n";
  bool constant = false;
  for (std::size_t i = 0; i < shown; ++i) {
    const explain::FeatureChange& f = n.across_tasks[i];
    constant = constant || f.constant;
    o << "| " << md(feature_label(f)) << " |";
    if (with_before) o << " " << importance_figure(f.before) << " |";
    o << " " << importance_figure(f.after) << " |";
    if (with_before) o << " " << signed_figure(f.change()) << " |";
    o << "\n";
  }
  o << "\n| task | support | query | adaptation | "
    << (with_before ? "changed most" : "most important") << " |\n|---|---:|---:|---|---|\n";
  for (const explain::TaskImportance& t : n.tasks) {
    std::vector<std::string> listed;
    if (with_before && t.adapt_steps > 0)
      for (std::size_t i = 0; i < std::min(kChangesListed, t.changes.size()); ++i) {
        constant = constant || t.changes[i].constant;
        listed.push_back(md(feature_label(t.changes[i])) + " " +
                         importance_figure(t.changes[i].before) + " → " +
                         importance_figure(t.changes[i].after));
      }
    else
      for (std::size_t i = 0; i < std::min(kChangesListed, t.after.importance.size()); ++i) {
        const explain::FeatureImportance& f = t.after.importance[i];
        constant = constant || f.constant;
        listed.push_back(md(feature_label(f.feature, f.constant)) + " " +
                         importance_figure(f.mean_abs));
      }
    o << "| " << md(t.task) << " | " << t.support_size << " | " << t.query_size << " | "
      << md(adaptation_text(t)) << " | ";
    for (std::size_t i = 0; i < listed.size(); ++i) o << (i ? ", " : "") << listed[i];
    o << " |\n";
  }
  if (constant) o << "\n" << md(kConstantNote) << "\n";
  return o.str();
}

}  // namespace ml::report
