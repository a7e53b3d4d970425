// The explanation page: see explanation_page.hpp.
#include "report/explanation_page.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "report/bar_chart.hpp"
#include "report/importance_section.hpp"
#include "report/page_style.hpp"
#include "report/text_escape.hpp"
#include "util/atomic_file.hpp"
#include "util/strings.hpp"
#include "util/version.hpp"

namespace ml::report {

namespace {

constexpr std::size_t kFeaturesShown = 15;  // bars per importance chart
constexpr std::size_t kRowsShown = 6;       // row charts

std::string h(const std::string& s) {
  return escape_html(s);
}

std::string row_title(const explain::Explanation& e, const explain::RowExplanation& row,
                      std::size_t number) {
  std::string title = "row " + std::to_string(number);
  for (std::size_t c = 0; c < row.key.size() && c < e.key_columns.size(); ++c)
    if (!row.key[c].empty()) title += " · " + row.key[c];
  if (!row.class_name.empty()) title += " · class " + row.class_name;
  return title;
}

class Page {
 public:
  Page(const explain::Explanation& e, int top) : e_(e), top_(static_cast<std::size_t>(top)) {}

  std::string render() {
    std::ostringstream body;
    header(body);
    summary(body);
    importance(body);
    if (e_.before) changes(body);
    rows(body);
    body << "<footer>Written by metalearn " << kToolVersion
         << ". Integrated Gradients: Sundararajan, Taly &amp; Yan 2017, <em>Axiomatic Attribution "
            "for Deep Networks</em> (arXiv:1703.01365). <code>metalearn explain --json-out</code> "
            "gives every row's attributions, its <code>--top</code> largest (a large "
            "<code>--top</code>: all of them).</footer>\n";
    std::ostringstream o;
    o << "<!DOCTYPE html>\n<html lang=\"en\" data-charts=\"" << charts_ << "\">\n<head>\n"
      << "<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<meta name=\"generator\" content=\"metalearn " << kToolVersion << "\">\n"
      << "<title>Explanation: " << h(e_.model.checkpoint) << "</title>\n<style>" << kPageStyle
      << "figure.single { max-width: 780px; }\n</style>\n</head>\n<body>\n<main>\n"
      << body.str() << "</main>\n<script>" << kPageScript << "</script>\n</body>\n</html>\n";
    return o.str();
  }

 private:
  std::string chart(const BarChart& c) {
    ++charts_;
    return render_bar_svg(c);
  }

  void header(std::ostream& o) {
    o << "<header>\n<h1>Why the model scores as it does</h1>\n<p class=\"lede\"><span "
         "class=\"path\">"
      << h(e_.model.checkpoint) << "</span>";
    if (!e_.task.empty()) o << " &middot; adapted to " << h(e_.task);
    o << " &middot; " << e_.model.rows.size() << " row(s)</p>\n</header>\n";
  }

  void summary(std::ostream& o) {
    const explain::ModelExplanation& m = e_.model;
    o << "<section id=\"summary\">\n<h2>What is explained</h2>\n<div class=\"cards\">\n"
      << "<div class=\"card\"><h3>Method</h3><dl>\n"
      << "<dt>attributions</dt><dd>Integrated Gradients, " << e_.steps
      << " Gauss-Legendre steps on the straight path from the baseline to each row</dd>\n"
      << "<dt>score</dt><dd>" << h(e_.explained) << "</dd>\n"
      << "<dt>baseline</dt><dd>" << h(e_.baseline) << "</dd>\n"
      << "</dl></div>\n<div class=\"card\"><h3>Completeness</h3><dl>\n"
      << "<dt>meaning</dt><dd>a row's attributions add up to its score minus the baseline's "
         "score; the gap is what the numerical integral leaves out</dd>\n"
      << "<dt>largest gap</dt><dd>" << importance_figure(m.max_gap) << "</dd>\n"
      << "<dt>tolerance</dt><dd>" << importance_figure(explain::kRelativeTolerance * 100)
      << "% of |score - baseline score|, at least " << importance_figure(explain::kGapFloor)
      << "</dd>\n"
      << "<dt>rows over it</dt><dd>" << m.rows_over_tolerance << " of " << m.rows.size()
      << "</dd>\n";
    if (e_.before)
      o << "<dt>before adaptation</dt><dd>largest gap " << importance_figure(e_.before->max_gap)
        << ", " << e_.before->rows_over_tolerance << " row(s) over the tolerance</dd>\n";
    o << "</dl></div>\n</div>\n";
    if (!e_.before_note.empty())
      o << "<p class=\"note\">No explanation before adaptation: " << h(e_.before_note) << "</p>\n";
    if (e_.rows_of_other_tasks > 0)
      o << "<p class=\"note\">" << e_.rows_of_other_tasks << " of " << m.rows.size()
        << " row(s) belong to other tasks than " << h(e_.task)
        << ", the task this model was adapted to: their attributions are those of a model "
           "adapted to another task.</p>\n";
    o << "</section>\n";
  }

  void importance(std::ostream& o) {
    BarChart c;
    c.title = "Global importance: mean |attribution| per row";
    c.value_label = "mean |attribution| (score units)";
    BarSeries s{"", kAfterColour, {}};
    for (std::size_t i = 0; i < std::min(kFeaturesShown, e_.model.importance.size()); ++i) {
      const explain::FeatureImportance& f = e_.model.importance[i];
      c.labels.push_back(feature_label(f.feature, f.constant));
      s.values.push_back(e_.model.importance[i].mean_abs);
    }
    c.series.push_back(s);
    o << "<section id=\"importance\">\n<h2>Global importance</h2>\n<p class=\"note\">The "
      << std::min(kFeaturesShown, e_.model.importance.size())
      << " features with the largest mean |attribution| over the " << e_.model.rows.size()
      << " row(s) (a row without the feature counts 0).</p>\n<figure class=\"single\">" << chart(c)
      << "</figure>\n";
    if (std::any_of(e_.model.importance.begin(), e_.model.importance.end(),
                    [](const explain::FeatureImportance& f) { return f.constant; }))
      o << "<p class=\"note\">(constant): the same value in every row, so its attribution moves "
           "every row's score alike - an offset rather than what ranks the rows.</p>\n";
    o << "</section>\n";
  }

  void changes(std::ostream& o) {
    const std::size_t shown = std::min(kFeaturesShown, e_.changes.size());
    const BarChart c = before_after_chart(
        "What adaptation changed: mean |attribution| before and after", e_.changes, shown, true);
    o << "<section id=\"changes\">\n<h2>What adaptation changed</h2>\n<p class=\"note\">The "
      << shown
      << " features whose mean |attribution| changed most between the model before adaptation "
         "(<span class=\"path\">"
      << h(e_.before->checkpoint)
      << "</span>) and after it, on the same rows.</p>\n<figure class=\"single\">" << chart(c)
      << "</figure>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>feature</th>"
      << "<th>before</th><th>after</th><th>change</th></tr></thead>\n<tbody>\n";
    for (std::size_t i = 0; i < shown; ++i) {
      const auto& f = e_.changes[i];
      o << "<tr><td>" << h(f.feature) << "</td><td class=\"num\">" << importance_figure(f.before)
        << "</td><td class=\"num\">" << importance_figure(f.after) << "</td><td class=\"num\">"
        << (f.change() > 0 ? "+" : "") << importance_figure(f.change()) << "</td></tr>\n";
    }
    o << "</tbody></table></div>\n</section>\n";
  }

  void rows(std::ostream& o) {
    const auto& rows = e_.model.rows;
    std::vector<std::size_t> order(rows.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return rows[a].score > rows[b].score; });
    order.resize(std::min(order.size(), kRowsShown));
    o << "<section id=\"rows\">\n<h2>The highest-scored rows</h2>\n<p class=\"note\">Each row's "
      << top_
      << " largest attributions (signed: a positive one raised the score above the baseline's). "
         "The CSV and JSON outputs hold every row.</p>\n<div class=\"charts\">\n";
    for (std::size_t r : order) {
      const auto& row = rows[r];
      BarChart c;
      c.title = row_title(e_, row, r + 1);
      c.value_label = "attribution (score units)";
      BarSeries s{"", kAfterColour, {}};
      for (std::size_t i = 0; i < std::min(top_, row.attributions.size()); ++i) {
        const auto& a = row.attributions[i];
        c.labels.push_back(a.value.empty() ? a.feature : a.feature + " = " + a.value);
        s.values.push_back(a.attribution);
      }
      c.series.push_back(s);
      o << "<figure>" << chart(c) << "<figcaption>score " << importance_figure(row.score);
      if (std::isfinite(row.probability))
        o << " (probability " << importance_figure(row.probability) << ")";
      o << ", baseline score " << importance_figure(row.baseline_score) << ", completeness gap "
        << importance_figure(row.gap) << "</figcaption></figure>\n";
    }
    o << "</div>\n</section>\n";
  }

  const explain::Explanation& e_;
  std::size_t top_;
  int charts_ = 0;
};

}  // namespace

std::string render_explanation_html(const explain::Explanation& explanation, int top) {
  return Page(explanation, std::max(top, 1)).render();
}

void write_explanation_report(const explain::Explanation& explanation, int top,
                              const std::string& path) {
  const std::string html = render_explanation_html(explanation, top);
  write_file_atomically(path, [&](std::ostream& out) { out << html; });
}

}  // namespace ml::report
