#!/usr/bin/env bash
# Thread scaling of meta-training (issue 15), not a timed test. Prints Markdown tables:
#   1. meta-iterations/s of W1 and W2 (docs/BENCHMARKS.md) for maml, fomaml, reptile and anil
#      with 1 thread and with 2 task workers (the meta-batch cut into 2 chunks), measured in
#      process by metalearn_bench_meta, interleaved (1, 2, 1, 2, ...: REPS rounds, medians);
#      once on the machine as it is and once with a busy loop pinned to its last CPU (the
#      loaded case: another process holding a core); with the ceiling of the ratio (half a
#      meta-batch on one thread: each worker's own share, with nothing else to pay);
#   2. `metalearn train` on W1 end to end (configs/peer.json, maml) with --threads 1, 2 and 0
#      (the automatic choice, which measures both at start-up), in both cases, with the choice
#      it logged.
#
#   scripts/bench_threads.sh             # about 6 minutes; builds build-release/ if needed
#   REPS=5 SECONDS_PER_CELL=2 scripts/bench_threads.sh
#   NO_BUILD=1 scripts/bench_threads.sh   # measure build-release/ as it is
#   BUILD_DIR=build NO_BUILD=1 scripts/bench_threads.sh   # measure another build as it is
#
# The end-to-end rows need data/peer/tasks.csv, which scripts/bench.sh exports from the Python
# reference (they are left out without it). Say what else ran on the machine beside the figures.
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
source "$(dirname "$0")/lib/blas_core.sh"
cd "$(dirname "$0")/.."
# `--threads 0` is the automatic choice only where no thread variable sets the budget.
unset OMP_NUM_THREADS OPENBLAS_NUM_THREADS
reps=${REPS:-3}
budget=${SECONDS_PER_CELL:-2}
build_dir=${BUILD_DIR:-build-release}
if [[ ${NO_BUILD:-0} != 1 ]]; then  # NO_BUILD=1: measure $build_dir as it is
  [[ -f $build_dir/CMakeCache.txt ]] ||
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DML_BUILD_TESTS=OFF >&2
  cmake --build "$build_dir" -j"$(nproc)" --target metalearn metalearn_bench_meta >&2
fi
ml_export_blas_core "$build_dir"/metalearn
command -v taskset > /dev/null || { echo "bench_threads.sh: needs taskset (util-linux)" >&2; exit 1; }

# The raw figures stay in $build_dir/bench-threads/ (one JSON object per line), so that a
# run cut short still leaves what it measured.
tmp=$build_dir/bench-threads
rm -rf "$tmp" && mkdir -p "$tmp"
hog=
# The busy loop dies of the SIGTERM, so its wait status is 143: not an error of this script.
stop_hog() {
  if [[ -n "$hog" ]]; then
    kill "$hog" 2> /dev/null || true
    wait "$hog" 2> /dev/null || true
  fi
  hog=
}
trap 'stop_hog' EXIT
last_cpu=$(($(nproc) - 1))

measure() {  # $1: case name
  for ((r = 0; r < reps; r++)); do
    for threads in 1 2; do
      echo "  $1: round $((r + 1))/$reps, $threads thread(s) ..." >&2
      "$build_dir"/metalearn_bench_meta --workload all --seconds "$budget" --threads "$threads" |
        sed "s/^{/{\"case\": \"$1\", \"threads\": $threads, /" >> "$tmp/meta.jsonl"
    done
    [[ $1 == idle ]] || continue
    # Half a meta-batch on one thread: what each of 2 workers computes, so the rate 2 workers
    # would reach if nothing but the chunk itself cost time (the ceiling of the 2 / 1 ratio).
    echo "  $1: round $((r + 1))/$reps, half a meta-batch ..." >&2
    for w in W1:8 W2:16; do
      "$build_dir"/metalearn_bench_meta --workload "${w%:*}" --meta-batch "${w#*:}" \
        --seconds "$budget" | sed 's/^{/{"case": "half", "threads": 1, /' >> "$tmp/meta.jsonl"
    done
  done
}

train() {  # $1: case name, $2: --threads value
  [[ -f data/peer/tasks.csv ]] || return 0
  for ((r = 0; r < reps; r++)); do
    local dir="$tmp/run-$1-$2-$r"
    echo "  $1: metalearn train --threads $2 ($((r + 1))/$reps) ..." >&2
    "$build_dir"/metalearn --log-level info train --config configs/peer.json \
      --set run.dir="$dir" --threads "$2" > /dev/null 2> "$dir.log" ||
      { echo "  (failed: see $dir.log)" >&2; continue; }
    python3 - "$1" "$2" "$dir" >> "$tmp/train.jsonl" <<'PY'
import json, os, re, sys
case, threads, d = sys.argv[1:4]
seconds = [json.loads(l)["seconds"] for l in open(os.path.join(d, "metrics.jsonl")) if "seconds" in l]
log = open(d + ".log").read()
choice = re.search(r"meta-steps: each meta-batch in (.*)", log)
print(json.dumps({"case": case, "threads": threads, "it_per_s": 300 / seconds[-1],
                  "choice": choice.group(1) if choice else ""}))
PY
  done
}

echo "machine as it is (load average: $(cut -d' ' -f1-3 /proc/loadavg)) ..." >&2
measure idle
train idle 1; train idle 2; train idle 0
echo "with a busy loop pinned to CPU $last_cpu ..." >&2
taskset -c "$last_cpu" sh -c 'while :; do :; done' &
hog=$!
measure loaded
train loaded 1; train loaded 2; train loaded 0
stop_hog

python3 - "$tmp" "$reps" <<'PY'
import json, os, statistics, sys
tmp, reps = sys.argv[1], sys.argv[2]
rates = {}
for l in open(os.path.join(tmp, "meta.jsonl")):
    j = json.loads(l)
    if "workload" in j:
        rates.setdefault((j["case"], j["workload"], j["algorithm"], j["threads"]), []).append(
            j["stacked_it_per_s"])
med = {k: statistics.median(v) for k, v in rates.items()}
print(f"In-process meta-iterations/s (metalearn_bench_meta), medians of {reps} interleaved rounds:\n")
print("| workload | algorithm | 1 thread | 2 workers | 2 / 1 | ceiling | loaded: 1 thread | loaded: 2 workers | loaded: 2 / 1 |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for (case, w, a, t) in sorted(k for k in med if k[0] == "idle" and k[3] == 1):
    one, two = med[("idle", w, a, 1)], med[("idle", w, a, 2)]
    half = med.get(("half", w, a, 1))
    ceiling = f"{half / one:.2f}x" if half else "—"
    lone, ltwo = med.get(("loaded", w, a, 1)), med.get(("loaded", w, a, 2))
    loaded = f"{lone:.1f} | {ltwo:.1f} | {ltwo / lone:.2f}x" if lone and ltwo else "— | — | —"
    print(f"| {w} | {a} | {one:.1f} | {two:.1f} | {two / one:.2f}x | {ceiling} | {loaded} |")
print("\nceiling: the rate of half a meta-batch on one thread over the whole one's, i.e. 2 / 1 "
      "if the workers cost nothing but their chunks.")
path = os.path.join(tmp, "train.jsonl")
if os.path.exists(path):
    runs = {}
    for l in open(path):
        j = json.loads(l)
        runs.setdefault((j["case"], j["threads"]), []).append(j)
    print(f"\n`metalearn train` on W1 (configs/peer.json, maml, 300 iterations), medians of {reps}:\n")
    print("| case | --threads | it/s | what it chose (run.threads = 0) |")
    print("|---|---:|---:|---|")
    for (case, threads), js in runs.items():
        choices = sorted({j["choice"] for j in js}) if threads == "0" else []
        print(f"| {case} | {threads} | {statistics.median(j['it_per_s'] for j in js):.1f} | "
              f"{'; '.join(choices)} |")
PY
