// A small line-chart builder that writes plain SVG (no script, no external resources), for the
// self-contained HTML report: one line per series with markers, an optional shaded band per
// series (a 95% CI), axes with "nice" ticks, axis labels, a title and a legend. Each marker
// carries an SVG <title>, which browsers show as a tooltip.
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace ml::report {

struct ChartPoint {
  double x = 0, y = 0;
  double lower = NAN, upper = NAN;  // the band around y; NaN: no band at this point
  std::string note;                 // extra tooltip text ("5 steps", "n = 12 tasks")
};

struct ChartSeries {
  std::string name;
  std::string colour;              // any CSS colour
  bool dashed = false;             // baselines are dashed, so lines differ by more than colour
  std::vector<ChartPoint> points;  // NaN y breaks the line
};

struct Chart {
  std::string title, x_label, y_label;
  // Non-empty: an ordinal x axis, evenly spaced at these values in this order (grids such as
  // shots 1, 5, 10, 20); points whose x is not among them are left out. Empty: a linear x axis.
  std::vector<double> x_categories;
  double width = 600;  // viewBox width; the height grows with the legend
  double plot_height = 250;
  std::vector<ChartSeries> series;
};

// About `target` round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi];
// the first is <= lo and the last >= hi. lo == hi gets a small range around it.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// A tick label of `v` with as many decimals as the tick spacing `step` needs ("0.25" for steps
// of 0.05, "3" for steps of 1); a value within a millionth of a step of zero prints as 0.
std::string tick_label(double v, double step);

// Where data lands in the picture: the plot area inside the viewBox and the data domain.
struct ChartLayout {
  double width = 0, height = 0;                       // the viewBox
  double left = 0, top = 0, right = 0, bottom = 0;    // the plot area, in viewBox units
  std::vector<double> x_ticks, y_ticks;               // data values of the ticks
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;  // the data domain (ordinal: indices)
  int legend_rows = 0;

  double px(double x) const;  // x as data (ordinal: the category index) -> viewBox
  double py(double y) const;
};

ChartLayout layout_chart(const Chart& chart);

// The chart as one <svg> element with class "chart" and a viewBox, sized by CSS.
std::string render_svg(const Chart& chart);

}  // namespace ml::report
