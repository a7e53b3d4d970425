#!/usr/bin/env bash
# Ingestion figures (issue 5), not a timed test: CSV parse speed of a ~10 million row synthetic
# log, cold (data.cache = "off") and warm (from the parsed-log cache), against pandas read_csv
# on the same events file (timed inside Python), and the peak RSS of `metalearn inspect` on it.
# Prints one Markdown table (the one in docs/BENCHMARKS.md, "Ingestion").
#
#   scripts/bench_ingest.sh            # needs build/metalearn (scripts/setup.sh builds it)
#   SESSIONS=250000 scripts/bench_ingest.sh   # a ~1M row log instead, for a quick look
#
# The log is generated once into data/bench-10m (or data/bench-$SESSIONS) and reused. Every
# reader starts with the file in the page cache (it is read once first), so the figures are
# parse speed, not disk speed. Our parse uses one thread per core; pandas uses one.
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."

sessions=${SESSIONS:-2500000}
data=data/bench-10m
[[ "$sessions" == 2500000 ]] || data=data/bench-$sessions
bin=${METALEARN:-build/metalearn}
[[ -x "$bin" ]] || scripts/setup.sh
python=/usr/bin/python3

if [[ ! -f "$data/events.csv" ]]; then
  echo "generating $data (once) ..." >&2
  "$bin" synth --out "$data" --sessions "$sessions" --users 50000 --seed 7 >&2
fi
# configs/synthetic.json pointed at the bench log (relative paths resolve against this file).
sed -e 's|"\.\./data/synth/|"|g' -e 's|"dir": "runs/synthetic"|"dir": "runs/bench-ingest"|' \
  configs/synthetic.json > "$data/bench.json"
events=$data/events.csv
cache=$data/cache
bytes=$(stat -c %s "$events")
cat "$events" > /dev/null  # into the page cache

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# inspect NAME [--set ...]: runs inspect under /usr/bin/time -v, stderr to $tmp/NAME.
inspect() {
  local name=$1
  shift
  /usr/bin/time -v "$bin" --log-level debug inspect --config "$data/bench.json" "$@" \
    > /dev/null 2> "$tmp/$name"
}
rss_mb() { awk '/Maximum resident set size/ {printf "%.0f", $6 / 1024}' "$tmp/$1"; }
# "parsed the log: R rows, M MB in S s (...)" -> "R S"
parse_figures() { sed -n 's/.*parsed the log: \([0-9]*\) rows, [0-9.]* MB in \([0-9.]*\) s.*/\1 \2/p' "$tmp/$1"; }
cache_seconds() { sed -n 's/.*read the parsed log from the cache .*: [0-9]* rows in \([0-9.]*\) s.*/\1/p' "$tmp/$1"; }

inspect cold --set data.cache=off
read -r rows cold_s <<< "$(parse_figures cold)"
rm -rf "$cache"
inspect write --set data.cache="$cache"    # parses and writes the cache
inspect warm --set data.cache="$cache"
warm_s=$(cache_seconds warm)
[[ -n "$warm_s" ]] || { echo "the warm run did not read the cache:" >&2; cat "$tmp/warm" >&2; exit 1; }

pandas_s=n/a  # when python3-pandas is missing
"$python" -c 'import pandas' 2> /dev/null && pandas_s=$("$python" - "$events" <<'PY'
import sys, time
import pandas
start = time.perf_counter()
frame = pandas.read_csv(sys.argv[1])
print(f"{time.perf_counter() - start:.3f}")
assert len(frame) > 0
PY
)

awk -v bytes="$bytes" -v rows="$rows" -v cold="$cold_s" -v warm="$warm_s" -v pandas="$pandas_s" \
  -v rss_cold="$(rss_mb cold)" -v rss_warm="$(rss_mb warm)" -v cores="$(nproc)" \
  -v file="$events" 'BEGIN {
  mb = bytes / 1e6
  printf "%s: %.0f MB, %d rows; %d cores\n\n", file, mb, rows, cores
  printf "| reader | seconds | MB/s | rows/s | vs pandas |\n|---|---:|---:|---:|---:|\n"
  ratio = pandas == "n/a" ? "n/a" : sprintf("%.1fx", pandas / cold)
  printf "| metalearn, cold (CSV parse) | %.2f | %.0f | %.2fM | %s |\n", cold, mb / cold, rows / cold / 1e6, ratio
  ratio = pandas == "n/a" ? "n/a" : sprintf("%.1fx", pandas / warm)
  printf "| metalearn, warm (parsed-log cache) | %.2f | %.0f | %.2fM | %s |\n", warm, mb / warm, rows / warm / 1e6, ratio
  if (pandas == "n/a") printf "| pandas read_csv (1 thread) | n/a (python3-pandas missing) | | | |\n\n"
  else printf "| pandas read_csv (1 thread) | %.2f | %.0f | %.2fM | 1.0x |\n\n", pandas, mb / pandas, rows / pandas / 1e6
  printf "peak RSS of metalearn inspect: %s MB cold, %s MB warm\n", rss_cold, rss_warm
}'
