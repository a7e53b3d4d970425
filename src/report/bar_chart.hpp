// A horizontal bar-chart builder that writes plain SVG (no script, no external resources), for
// the self-contained HTML pages: one row per label, one bar per series in each row (before and
// after adaptation side by side), signed values drawn from a zero line, a value axis with
// "nice" ticks, a title and a legend. Each bar carries an SVG <title>, which browsers show as a
// tooltip. The element has class "chart", like svg_chart.hpp's, so the renderer check counts it.
#pragma once

#include <string>
#include <vector>

namespace ml::report {

struct BarSeries {
  std::string name;            // the legend's; "" for a lone series (no legend)
  std::string colour;          // any CSS colour
  std::vector<double> values;  // one per label; NaN draws no bar
};

struct BarChart {
  std::string title, value_label;
  std::vector<std::string> labels;  // top to bottom
  std::vector<BarSeries> series;
  double width = 600;  // viewBox width; the height grows with the rows
};

// The chart as one <svg class="chart"> element with a viewBox, sized by CSS.
std::string render_bar_svg(const BarChart& chart);

}  // namespace ml::report
