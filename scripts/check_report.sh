#!/usr/bin/env bash
# Looks at a metalearn HTML report as a person would: renders it in headless Chromium, checks
# that the page loaded (its script ran without error and every chart has a size on screen) and
# keeps a screenshot for people to look at.
#
#   scripts/check_report.sh REPORT.html [SCREENSHOT.png]   # screenshot default: REPORT.png
#   WINDOW=1280,4000 scripts/check_report.sh report.html   # a taller screenshot
#
# Exit 0 when the page is fine; 1 with a reason when it is not; 2 when chromium is missing.
# Needs Debian's chromium package (scripts/setup.sh --test installs it).
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: scripts/check_report.sh REPORT.html [SCREENSHOT.png]" >&2
  exit 2
fi
report=$1
shot=${2:-${report%.*}.png}
window=${WINDOW:-1280,2400}
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [[ -z "$chromium" || ! -x "$chromium" ]]; then
  echo "check_report: chromium not found (install Debian's chromium package, or set CHROMIUM)" >&2
  exit 2
fi
[[ -f "$report" ]] || { echo "check_report: no such file: $report" >&2; exit 1; }

fail() {
  echo "check_report: $report: $*" >&2
  exit 1
}

expected=$(grep -o -m1 'data-charts="[0-9]*"' "$report" | grep -o '[0-9]\+' || true)
[[ -n "$expected" ]] || fail "not a metalearn report (no data-charts attribute)"
# Self-contained: nothing may be fetched from the network.
if grep -Eqi '(src|href)[[:space:]]*=[[:space:]]*"?(https?:)?//' "$report"; then
  fail "refers to a network resource: $(grep -Eoi '(src|href)[[:space:]]*=[[:space:]]*"?(https?:)?//[^" >]*' "$report" | head -1)"
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
url="file://$(realpath "$report")"
flags=(--headless=new --no-sandbox --disable-gpu --no-first-run --no-default-browser-check
       --disable-extensions --hide-scrollbars --user-data-dir="$profile"
       --virtual-time-budget=5000)

# The DOM after the page's script ran: it sets data-charts-rendered to the number of charts with
# a size on screen, and data-report-error on any script error.
if ! dom=$(timeout 90 "$chromium" "${flags[@]}" --dump-dom "$url" 2>"$profile/dom.log"); then
  tail -5 "$profile/dom.log" >&2
  fail "chromium could not load the page"
fi
if grep -q 'data-report-error=' <<<"$dom"; then
  fail "script error: $(grep -o 'data-report-error="[^"]*"' <<<"$dom" | head -1)"
fi
svgs=$(grep -o '<svg class="chart"' <<<"$dom" | wc -l)
rendered=$(grep -o 'data-charts-rendered="[0-9]*"' <<<"$dom" | grep -o '[0-9]\+' || true)
[[ "$svgs" -eq "$expected" ]] || fail "the DOM holds $svgs charts, the page says $expected"
[[ -n "$rendered" ]] || fail "the page's script did not run (no data-charts-rendered)"
[[ "$rendered" -eq "$expected" ]] || fail "$rendered of $expected charts have a size on screen"

rm -f "$shot"
if ! timeout 90 "$chromium" "${flags[@]}" --window-size="$window" --screenshot="$shot" "$url" \
    >"$profile/shot.log" 2>&1; then
  tail -5 "$profile/shot.log" >&2
  fail "chromium could not take a screenshot"
fi
[[ -s "$shot" ]] || fail "no screenshot was written to $shot"
# A blank page of this size compresses to a few kilobytes; text and charts to far more.
bytes=$(stat -c %s "$shot")
((bytes > 40000)) || fail "the screenshot $shot is only $bytes bytes: is the page blank?"
echo "check_report: $report: $expected charts rendered, screenshot $shot ($bytes bytes)"
