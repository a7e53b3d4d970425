// The SVG line-chart builder: see svg_chart.hpp.
#include "report/svg_chart.hpp"

#include <algorithm>
#include <sstream>

#include "report/text_escape.hpp"
#include "util/strings.hpp"

namespace ml::report {

namespace {

// Layout in viewBox units, chosen so a 600-wide chart reads well at half a laptop screen.
constexpr double kTitleBaseline = 20;
constexpr double kLegendTop = 36;
constexpr double kLegendRow = 18;
constexpr double kLegendSwatch = 22;
constexpr double kCharWidth = 6.6;  // average width of a 12px sans-serif character
constexpr double kLeftMargin = 64, kRightMargin = 18, kBottomMargin = 48;
constexpr double kMarkerRadius = 3.5;

std::string num(double v) {
  return fixed(v, 1);
}

std::string category_label(double v) {
  if (v == std::round(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  std::string s = fixed(v, 3);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

double legend_item_width(const ChartSeries& s) {
  return kLegendSwatch + 8 + kCharWidth * static_cast<double>(s.name.size()) + 18;
}

// The x position of a point in layout terms: the category index (ordinal) or x itself; NaN when
// an ordinal chart has no such category.
double layout_x(const Chart& chart, double x) {
  if (chart.x_categories.empty()) return x;
  for (std::size_t i = 0; i < chart.x_categories.size(); ++i)
    if (chart.x_categories[i] == x) return static_cast<double>(i);
  return NAN;
}

struct Placed {
  double x, y, lower, upper;  // in viewBox units: `upper` is the band's top edge (smaller y)
  const ChartPoint* point;
};

// The series' drawable points in x order, in viewBox units (band bounds NaN where absent).
std::vector<Placed> place(const Chart& chart, const ChartLayout& layout, const ChartSeries& s) {
  std::vector<Placed> out;
  for (const auto& p : s.points) {
    const double lx = layout_x(chart, p.x);
    if (!std::isfinite(lx)) continue;
    const bool band = std::isfinite(p.lower) && std::isfinite(p.upper);
    out.push_back({layout.px(lx), std::isfinite(p.y) ? layout.py(p.y) : NAN,
                   band ? layout.py(p.lower) : NAN, band ? layout.py(p.upper) : NAN, &p});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Placed& a, const Placed& b) { return a.x < b.x; });
  return out;
}

std::string marker_tooltip(const Chart& chart, const ChartSeries& s, const ChartPoint& p) {
  std::string t = s.name + ": " + (chart.x_label.empty() ? "x" : chart.x_label) + " " +
                  category_label(p.x) + ", " + (chart.y_label.empty() ? "y" : chart.y_label) + " " +
                  fixed(p.y, 4);
  if (std::isfinite(p.lower) && std::isfinite(p.upper))
    t += " [" + fixed(p.lower, 4) + ", " + fixed(p.upper, 4) + "]";
  if (!p.note.empty()) t += " (" + p.note + ")";
  return t;
}

}  // namespace

std::string tick_label(double v, double step) {
  int digits = 0;
  if (step > 0 && step < 1) digits = static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  if (std::fabs(v) < step * 1e-6) v = 0;
  return fixed(v, digits);
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  target = std::max(target, 2);
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  const double first = std::floor(lo / step + 1e-9);
  const double last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double i = first; i <= last + 0.5; i += 1) {
    double v = i * step;
    if (std::fabs(v) < step * 1e-9) v = 0;
    ticks.push_back(v);
  }
  return ticks;
}

double ChartLayout::px(double x) const {
  return left + (x - x_min) / (x_max - x_min) * (right - left);
}

double ChartLayout::py(double y) const {
  return bottom - (y - y_min) / (y_max - y_min) * (bottom - top);
}

ChartLayout layout_chart(const Chart& chart) {
  ChartLayout l;
  l.width = chart.width;
  l.left = kLeftMargin;
  l.right = chart.width - kRightMargin;

  // Legend rows: items laid out left to right, wrapping at the plot's right edge.
  if (!chart.series.empty()) {
    l.legend_rows = 1;
    double x = l.left;
    for (const auto& s : chart.series) {
      const double w = legend_item_width(s);
      if (x > l.left && x + w > l.right) {
        ++l.legend_rows;
        x = l.left;
      }
      x += w;
    }
  }
  l.top = kLegendTop + l.legend_rows * kLegendRow + 8;
  l.bottom = l.top + chart.plot_height;
  l.height = l.bottom + kBottomMargin;

  double y_lo = INFINITY, y_hi = -INFINITY, x_lo = INFINITY, x_hi = -INFINITY;
  for (const auto& s : chart.series)
    for (const auto& p : s.points) {
      const double lx = layout_x(chart, p.x);
      if (!std::isfinite(lx)) continue;
      for (double v : {p.y, p.lower, p.upper})
        if (std::isfinite(v)) y_lo = std::min(y_lo, v), y_hi = std::max(y_hi, v);
      if (std::isfinite(p.y)) x_lo = std::min(x_lo, lx), x_hi = std::max(x_hi, lx);
    }
  if (!std::isfinite(y_lo)) y_lo = 0, y_hi = 1;
  l.y_ticks = nice_ticks(y_lo, y_hi, 5);
  l.y_min = l.y_ticks.front();
  l.y_max = l.y_ticks.back();
  if (!chart.x_categories.empty()) {
    for (std::size_t i = 0; i < chart.x_categories.size(); ++i)
      l.x_ticks.push_back(static_cast<double>(i));
    l.x_min = -0.5;
    l.x_max = static_cast<double>(chart.x_categories.size()) - 0.5;
  } else {
    if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1;
    l.x_ticks = nice_ticks(x_lo, x_hi, 6);
    l.x_min = l.x_ticks.front();
    l.x_max = l.x_ticks.back();
  }
  return l;
}

std::string render_svg(const Chart& chart) {
  const ChartLayout l = layout_chart(chart);
  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << num(l.width) << " " << num(l.height)
    << "\" role=\"img\" font-family=\"system-ui, 'DejaVu Sans', sans-serif\" font-size=\"12\">\n"
    << "<title>" << escape_html(chart.title) << "</title>\n";
  o << "<text x=\"" << num(l.left) << "\" y=\"" << num(kTitleBaseline)
    << "\" font-size=\"15\" font-weight=\"600\" fill=\"#1a1a1a\">" << escape_html(chart.title)
    << "</text>\n";

  // Grid and ticks.
  const double y_step = l.y_ticks.size() > 1 ? l.y_ticks[1] - l.y_ticks[0] : 1;
  const double x_step = l.x_ticks.size() > 1 ? l.x_ticks[1] - l.x_ticks[0] : 1;
  o << "<g class=\"grid\" stroke=\"#e2e2e2\" stroke-width=\"1\">\n";
  for (double t : l.y_ticks)
    o << "<line x1=\"" << num(l.left) << "\" x2=\"" << num(l.right) << "\" y1=\"" << num(l.py(t))
      << "\" y2=\"" << num(l.py(t)) << "\"/>\n";
  for (double t : l.x_ticks)
    o << "<line x1=\"" << num(l.px(t)) << "\" x2=\"" << num(l.px(t)) << "\" y1=\"" << num(l.top)
      << "\" y2=\"" << num(l.bottom) << "\"/>\n";
  o << "</g>\n<g class=\"axes\" fill=\"#333\">\n";
  o << "<line x1=\"" << num(l.left) << "\" x2=\"" << num(l.left) << "\" y1=\"" << num(l.top)
    << "\" y2=\"" << num(l.bottom) << "\" stroke=\"#666\"/>\n";
  o << "<line x1=\"" << num(l.left) << "\" x2=\"" << num(l.right) << "\" y1=\"" << num(l.bottom)
    << "\" y2=\"" << num(l.bottom) << "\" stroke=\"#666\"/>\n";
  for (double t : l.y_ticks)
    o << "<text x=\"" << num(l.left - 6) << "\" y=\"" << num(l.py(t) + 4)
      << "\" text-anchor=\"end\">" << tick_label(t, y_step) << "</text>\n";
  for (std::size_t i = 0; i < l.x_ticks.size(); ++i) {
    const double t = l.x_ticks[i];
    const std::string label =
        chart.x_categories.empty() ? tick_label(t, x_step) : category_label(chart.x_categories[i]);
    o << "<text x=\"" << num(l.px(t)) << "\" y=\"" << num(l.bottom + 17)
      << "\" text-anchor=\"middle\">" << escape_html(label) << "</text>\n";
  }
  o << "<text x=\"" << num((l.left + l.right) / 2) << "\" y=\"" << num(l.bottom + 38)
    << "\" text-anchor=\"middle\" font-size=\"13\">" << escape_html(chart.x_label) << "</text>\n";
  const double y_mid = (l.top + l.bottom) / 2;
  o << "<text x=\"16\" y=\"" << num(y_mid) << "\" text-anchor=\"middle\" font-size=\"13\" "
    << "transform=\"rotate(-90 16 " << num(y_mid) << ")\">" << escape_html(chart.y_label)
    << "</text>\n</g>\n";

  // Bands first, so every line stays visible above every band.
  for (const auto& s : chart.series) {
    const auto pts = place(chart, l, s);
    const std::string colour = escape_html(s.colour);
    std::size_t i = 0;
    while (i < pts.size()) {
      if (!std::isfinite(pts[i].lower)) {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < pts.size() && std::isfinite(pts[j].lower)) ++j;
      if (j - i == 1) {  // a lone interval: an error bar
        const Placed& p = pts[i];
        o << "<path class=\"band\" d=\"M" << num(p.x) << " " << num(p.upper) << "V" << num(p.lower)
          << "M" << num(p.x - 4) << " " << num(p.upper) << "h8M" << num(p.x - 4) << " "
          << num(p.lower) << "h8\" stroke=\"" << colour
          << "\" stroke-opacity=\"0.6\" fill=\"none\"/>\n";
      } else {
        // A faint edge keeps overlapping bands apart.
        o << "<polygon class=\"band\" fill=\"" << colour << "\" fill-opacity=\"0.13\" stroke=\""
          << colour << "\" stroke-opacity=\"0.35\" stroke-width=\"0.8\" points=\"";
        for (std::size_t k = i; k < j; ++k)
          o << (k > i ? " " : "") << num(pts[k].x) << "," << num(pts[k].upper);
        for (std::size_t k = j; k-- > i;) o << " " << num(pts[k].x) << "," << num(pts[k].lower);
        o << "\"/>\n";
      }
      i = j;
    }
  }
  for (const auto& s : chart.series) {
    const auto pts = place(chart, l, s);
    const std::string colour = escape_html(s.colour);
    o << "<g class=\"series\" data-series=\"" << escape_html(s.name) << "\">\n";
    std::size_t i = 0;
    while (i < pts.size()) {  // one polyline per run of defined values
      if (!std::isfinite(pts[i].y)) {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < pts.size() && std::isfinite(pts[j].y)) ++j;
      if (j - i > 1) {
        o << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2.2\""
          << (s.dashed ? " stroke-dasharray=\"7 4\"" : "") << " points=\"";
        for (std::size_t k = i; k < j; ++k)
          o << (k > i ? " " : "") << num(pts[k].x) << "," << num(pts[k].y);
        o << "\"/>\n";
      }
      i = j;
    }
    if (pts.size() <= 60)  // markers on grids; dense curves (training) read better without
      for (const auto& p : pts)
        if (std::isfinite(p.y))
          o << "<circle cx=\"" << num(p.x) << "\" cy=\"" << num(p.y) << "\" r=\"" << kMarkerRadius
            << "\" fill=\"" << colour << "\" stroke=\"#fff\" stroke-width=\"1\"><title>"
            << escape_html(marker_tooltip(chart, s, *p.point)) << "</title></circle>\n";
    o << "</g>\n";
  }

  // Legend.
  o << "<g class=\"legend\">\n";
  double x = l.left, y = kLegendTop;
  for (const auto& s : chart.series) {
    const double w = legend_item_width(s);
    if (x > l.left && x + w > l.right) {
      x = l.left;
      y += kLegendRow;
    }
    const std::string colour = escape_html(s.colour);
    o << "<line x1=\"" << num(x) << "\" x2=\"" << num(x + kLegendSwatch) << "\" y1=\"" << num(y)
      << "\" y2=\"" << num(y) << "\" stroke=\"" << colour << "\" stroke-width=\"2.5\""
      << (s.dashed ? " stroke-dasharray=\"7 4\"" : "") << "/>\n"
      << "<circle cx=\"" << num(x + kLegendSwatch / 2) << "\" cy=\"" << num(y) << "\" r=\""
      << kMarkerRadius << "\" fill=\"" << colour << "\"/>\n"
      << "<text x=\"" << num(x + kLegendSwatch + 6) << "\" y=\"" << num(y + 4)
      << "\" fill=\"#1a1a1a\">" << escape_html(s.name) << "</text>\n";
    x += w;
  }
  o << "</g>\n</svg>\n";
  return o.str();
}

}  // namespace ml::report
