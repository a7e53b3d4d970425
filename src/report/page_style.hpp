// The look shared by the self-contained HTML pages metalearn writes (eval's cold-start report,
// explain's explanation page): one inline style sheet and the few lines of script that let
// scripts/check_report.sh see that every chart rendered. Nothing is fetched from the network.
#pragma once

namespace ml::report {

// Readable on a laptop and in print; numbers in tables line up (tabular figures).
inline constexpr const char* kPageStyle = R"css(
:root { --ink: #1a1a1a; --muted: #5b5b5b; --line: #d9d9d9; --card: #ffffff; --page: #f6f6f4;
        --best: #fff1c2; --good: #0b6e3a; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 8px; }
.lede { color: var(--muted); margin: 0 0 8px; }
code, .path { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px;
              overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
.card h3 { margin-top: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; font-size: 14px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.summary { font-size: 16px; background: var(--card); border-left: 4px solid #0072b2;
           padding: 10px 14px; margin: 8px 0 12px; }
.summary.baseline-wins { border-left-color: #e69f00; }
ul.verdicts { list-style: none; padding: 0; margin: 0; }
ul.verdicts li { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
                 padding: 8px 12px; margin: 6px 0; }
.badge { display: inline-block; font-size: 12px; font-weight: 600; border-radius: 10px;
         padding: 1px 9px; margin-right: 8px; color: #fff; background: #5b5b5b; }
.badge.baseline { background: #a15c00; }
.badge.significant { background: var(--good); }
table { border-collapse: collapse; background: var(--card); font-size: 14px; margin: 6px 0 4px;
        font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ececec; text-align: left; white-space: nowrap; }
thead th { border-bottom: 2px solid #bdbdbd; position: sticky; top: 0; background: var(--card); }
td.num { text-align: right; }
tr.group th { background: #eef3f8; font-weight: 600; border-top: 1px solid #c8d3de; }
td.best { background: var(--best); font-weight: 700; }
td.better { color: var(--good); font-weight: 600; }
td.worse { color: var(--bad); font-weight: 600; }
td.even { color: var(--muted); }
.table-wrap { overflow-x: auto; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 14px; }
figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 6px;
         padding: 8px 10px 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 2px; }
svg.chart { display: block; width: 100%; height: auto; }
svg.chart text { fill: #333; }
details { margin: 6px 0; }
summary { cursor: pointer; }
footer { margin-top: 40px; color: var(--muted); font-size: 13px; }
)css";

// Marks the page as rendered for scripts/check_report.sh: how many charts have a size on
// screen, and any script error. The page reads the same without it.
inline constexpr const char* kPageScript = R"js(
window.addEventListener('error', function (e) {
  document.documentElement.setAttribute('data-report-error', String(e.message || 'error'));
});
(function () {
  var charts = document.querySelectorAll('svg.chart'), shown = 0;
  for (var i = 0; i < charts.length; i++) {
    var box = charts[i].getBoundingClientRect();
    if (box.width > 0 && box.height > 0) shown++;
  }
  document.documentElement.setAttribute('data-charts-rendered', String(shown));
})();
)js";

}  // namespace ml::report
