// The SVG bar-chart builder: see bar_chart.hpp.
#include "report/bar_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "report/svg_chart.hpp"
#include "report/text_escape.hpp"
#include "util/strings.hpp"

namespace ml::report {

namespace {

// Layout in viewBox units, matching svg_chart.cpp's type sizes.
constexpr double kTitleBaseline = 20;
constexpr double kLegendRow = 18;
constexpr double kCharWidth = 6.6;  // average width of a 12px sans-serif character
constexpr double kBarHeight = 11, kBarGap = 2, kRowGap = 8;
constexpr double kRightMargin = 18, kBottomMargin = 40;
constexpr std::size_t kMaxLabelChars = 34;

std::string num(double v) {
  return fixed(v, 1);
}

// `s` cut to `max_chars` characters (UTF-8 lead bytes), with an ellipsis where it was cut.
std::string cut_to(const std::string& s, std::size_t max_chars) {
  std::size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (++chars > max_chars) break;
  }
  return i < s.size() ? s.substr(0, i) + "\xE2\x80\xA6" : s;
}

std::string short_label(const std::string& s) {
  return cut_to(s, kMaxLabelChars);
}

std::string value_text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", v);
  return buffer;
}

}  // namespace

std::string render_bar_svg(const BarChart& chart) {
  const std::size_t rows = chart.labels.size();
  const std::size_t bars = std::max<std::size_t>(1, chart.series.size());
  const bool legend =
      chart.series.size() > 1 || (chart.series.size() == 1 && !chart.series.front().name.empty());
  std::size_t longest = 0;
  for (const auto& l : chart.labels) longest = std::max(longest, short_label(l).size());
  const double left = 12 + kCharWidth * static_cast<double>(std::min(longest, kMaxLabelChars));
  const double top = kTitleBaseline + 14 + (legend ? kLegendRow + 4 : 0);
  const double row_height = static_cast<double>(bars) * (kBarHeight + kBarGap) + kRowGap;
  const double plot_bottom = top + row_height * static_cast<double>(std::max<std::size_t>(rows, 1));
  const double width = chart.width, height = plot_bottom + kBottomMargin;
  const double right = width - kRightMargin;

  double lo = 0, hi = 0;
  for (const auto& s : chart.series)
    for (double v : s.values)
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  const std::vector<double> ticks = nice_ticks(lo, hi, 5);
  const double x_min = ticks.front(), x_max = ticks.back();
  const double span = x_max > x_min ? x_max - x_min : 1;
  auto px = [&](double v) { return left + (v - x_min) / span * (right - left); };
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;

  std::ostringstream o;
  o << "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << num(width)
    << " " << num(height) << "\" role=\"img\" aria-label=\"" << escape_html(chart.title) << "\">\n";
  // A title wider than the chart (a row's key cells, a long text) is cut at its end, so that
  // its start (the row number) stays in view; the whole of it is the tooltip.
  const auto title_chars =
      static_cast<std::size_t>(std::max(10.0, (width - 20) / (kCharWidth * 14.0 / 12.0)));
  o << "<text x=\"" << num(width / 2) << "\" y=\"" << num(kTitleBaseline)
    << "\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"600\">"
    << escape_html(cut_to(chart.title, title_chars)) << "<title>" << escape_html(chart.title)
    << "</title></text>\n";
  if (legend) {
    double x = left;
    const double y = kTitleBaseline + 14;
    for (const auto& s : chart.series) {
      o << "<rect x=\"" << num(x) << "\" y=\"" << num(y) << "\" width=\"14\" height=\"10\" fill=\""
        << escape_html(s.colour) << "\"/>";
      o << "<text x=\"" << num(x + 18) << "\" y=\"" << num(y + 9) << "\" font-size=\"12\">"
        << escape_html(s.name) << "</text>\n";
      x += 18 + kCharWidth * static_cast<double>(s.name.size()) + 22;
    }
  }
  // Grid and value axis.
  for (double t : ticks) {
    o << "<line x1=\"" << num(px(t)) << "\" y1=\"" << num(top) << "\" x2=\"" << num(px(t))
      << "\" y2=\"" << num(plot_bottom) << "\" stroke=\"#e6e6e6\"/>";
    o << "<text x=\"" << num(px(t)) << "\" y=\"" << num(plot_bottom + 14)
      << "\" text-anchor=\"middle\" font-size=\"11\">" << tick_label(t, step) << "</text>\n";
  }
  o << "<text x=\"" << num((left + right) / 2) << "\" y=\"" << num(plot_bottom + 32)
    << "\" text-anchor=\"middle\" font-size=\"12\">" << escape_html(chart.value_label)
    << "</text>\n";
  // Rows: the label, then one bar per series from the zero line.
  for (std::size_t r = 0; r < rows; ++r) {
    const double y0 = top + row_height * static_cast<double>(r);
    o << "<text x=\"" << num(left - 6) << "\" y=\"" << num(y0 + (row_height - kRowGap) / 2 + 4)
      << "\" text-anchor=\"end\" font-size=\"12\">" << escape_html(short_label(chart.labels[r]))
      << "<title>" << escape_html(chart.labels[r]) << "</title></text>\n";
    for (std::size_t s = 0; s < chart.series.size(); ++s) {
      const BarSeries& series = chart.series[s];
      const double v = r < series.values.size() ? series.values[r] : NAN;
      if (!std::isfinite(v)) continue;
      const double a = px(0), b = px(v);
      const double y = y0 + static_cast<double>(s) * (kBarHeight + kBarGap);
      o << "<rect x=\"" << num(std::min(a, b)) << "\" y=\"" << num(y) << "\" width=\""
        << num(std::max(std::fabs(b - a), 0.5)) << "\" height=\"" << num(kBarHeight) << "\" fill=\""
        << escape_html(series.colour) << "\"><title>" << escape_html(chart.labels[r])
        << (series.name.empty() ? "" : " (" + escape_html(series.name) + ")") << ": "
        << value_text(v) << "</title></rect>\n";
    }
  }
  o << "<line x1=\"" << num(px(0)) << "\" y1=\"" << num(top) << "\" x2=\"" << num(px(0))
    << "\" y2=\"" << num(plot_bottom) << "\" stroke=\"#333\"/>\n";
  o << "</svg>";
  return o.str();
}

}  // namespace ml::report
