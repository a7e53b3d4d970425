// Feature importance before and after adaptation, drawn for people: the bar chart of features
// against their mean |attribution| from the model before and after adaptation (explain's page
// and eval's report share it), and the part of `metalearn eval --importance`'s report that
// shows what adaptation taught each new task (explain/explanation.hpp, explain_new_tasks), as an
// HTML section and as Markdown.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "explain/explanation.hpp"
#include "report/bar_chart.hpp"

namespace ml::report {

// The colours of the two models in every importance chart: after adaptation (or the one model
// explained) Okabe-Ito blue, before it orange.
inline constexpr const char* kAfterColour = "#0072b2";
inline constexpr const char* kBeforeColour = "#e69f00";

// A feature's name as the pages show it, marked "(constant)" when its value is the same in every
// row (explain::FeatureImportance::constant).
std::string feature_label(const std::string& feature, bool constant);

// An importance, attribution or gap as the pages print it: 4 significant digits, "-" for NaN.
std::string importance_figure(double v);

// The first `shown` of `features` as bars, before (when `with_before`) and after side by side,
// in their order; the value axis is mean |attribution| in score units.
BarChart before_after_chart(const std::string& title,
                            const std::vector<explain::FeatureChange>& features, std::size_t shown,
                            bool with_before);

// The tasks given a chart of their own on the page (in the run's order of its new tasks); the
// Markdown and JSON hold every task.
inline constexpr std::size_t kTasksCharted = 24;

// <section id="importance">: what was explained and how, the mean over the new tasks as a chart
// and a table, and a chart per task (its features with the largest importance before or after).
// `charts` grows by the number of <svg class="chart"> written, for the page's data-charts.
std::string importance_html(const explain::NewTaskImportance& importance, int& charts);

// The same as a Markdown section: the mean over tasks as a table, and per task its features
// whose importance changed most.
std::string importance_markdown(const explain::NewTaskImportance& importance);

}  // namespace ml::report
