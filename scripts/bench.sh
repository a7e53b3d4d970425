#!/usr/bin/env bash
# The speed figures of docs/BENCHMARKS.md in one run, side by side (ratios on a noisy machine
# are only meaningful when both sides run back to back): builds in release mode into
# build-release/, then prints Markdown tables on stdout:
#   1. meta-iterations/s on W1 and W2 for maml, fomaml, reptile, anil: ours (task-batched),
#      our per-task reference loop, and the Python reference ../shared/peer/maml_peer.py (W1
#      only: it has no embedding model), with ratios and achieved GFLOP/s (FLOPs per
#      meta-iteration as torch.profiler counts them in the reference) against a measured
#      1024^2 matmul rate; one-task adaptation latency (median, p99);
#   2. `metalearn train` end to end on W1 (data pipeline included) and its peak RSS;
#   3. W1 against the strongest Python peers (scripts/bench_peers.sh: hand-batched and vmap,
#      with glibc's default allocator and with metalearn's allocator settings);
#   3b. W3, the text transformer on BANKING77 episodes, against its Python peers
#      (scripts/bench_w3.sh: per-task loop and functorch vmap) unless --no-w3;
#   4. thread scaling (scripts/bench_threads.sh): 1 thread against 2 task workers on W1 and W2,
#      alone and beside a busy process, unless --no-threads;
#   5. ingestion (scripts/bench_ingest.sh) unless --no-ingest;
#   6. data-parallel scaling (scripts/bench_dist.sh: 1 process against 2 torchrun ranks on W1
#      and W3, with a projection for 8 and 64 ranks) unless --no-dist (or without torchrun).
# Sections 1 to 3b run with 1 thread (OMP, OpenBLAS, torch) for every program.
#
#   scripts/bench.sh                 # about 26 minutes with everything, 10 with none
#   scripts/bench.sh --no-ingest --no-threads --no-w3
#   SECONDS_PER_CELL=5 scripts/bench.sh
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
source "$(dirname "$0")/lib/blas_core.sh"
cd "$(dirname "$0")/.."
ingest=1 threads=1 w3=1 dist=1
for arg in "$@"; do
  case "$arg" in
    --no-ingest) ingest=0 ;;
    --no-threads) threads=0 ;;
    --no-w3) w3=0 ;;
    --no-dist) dist=0 ;;
    *) echo "bench.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
budget=${SECONDS_PER_CELL:-3}
python=/usr/bin/python3
peer=../shared/peer/maml_peer.py
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

scripts/setup.sh >&2  # dependencies; the release build below is separate
dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed" ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-numpy >&2; }
[[ -f build-release/CMakeCache.txt ]] ||
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DML_BUILD_TESTS=OFF >&2
cmake --build build-release -j"$(nproc)" --target metalearn metalearn_bench_meta >&2
ml_export_blas_core build-release/metalearn

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "ours: in-process meta-steps (build-release/metalearn_bench_meta) ..." >&2
build-release/metalearn_bench_meta --workload all --reference --seconds "$budget" > "$tmp/ours.jsonl"
echo "reference: maml_peer.py (300 meta-iterations each, plus one counted with the profiler) ..." >&2
for algo in maml fomaml reptile; do
  "$python" "$peer" --algo "$algo" --threads 1 --flops > "$tmp/peer-$algo.json"
done

echo "ours: metalearn train on W1 end to end ..." >&2
mkdir -p data/peer
[[ -f data/peer/tasks.csv ]] || "$python" "$peer" --export-csv data/peer/tasks.csv > /dev/null
for algo in maml fomaml; do
  rm -rf "$tmp/run-$algo"
  /usr/bin/time -v build-release/metalearn --log-level warn train --config configs/peer.json \
    --set meta.algorithm=$algo --set run.dir="$tmp/run-$algo" --set run.threads=1 \
    > /dev/null 2> "$tmp/train-$algo.time"
done

"$python" - "$tmp" <<'PY'
import json, os, re, sys
tmp = sys.argv[1]
lines = [json.loads(l) for l in open(os.path.join(tmp, "ours.jsonl"))]
gflops_peak = lines[0]["matmul_1024_gflops"]
ours = {(l["workload"], l["algorithm"]): l for l in lines[1:]}
peer = {}
for algo in ("maml", "fomaml", "reptile"):
    r = json.load(open(os.path.join(tmp, f"peer-{algo}.json")))
    peer[algo] = (r["meta_iters_per_sec"], r.get("flops_one_meta_iter", {}).get("profiler_flops"))
print(f"1024² float32 matmul, 1 thread: {gflops_peak:.1f} GFLOP/s\n")
print("| workload | algorithm | ours it/s | per-task loop it/s | reference it/s | ours / reference | ours GFLOP/s (% of matmul) | adapt one task, median / p99 ms |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for (w, a), l in ours.items():
    p, flops = peer.get(a, (None, None)) if w == "W1" else (None, None)
    ratio = f"{l['stacked_it_per_s'] / p:.1f}x" if p else "—"
    achieved = "—"
    if flops:
        g = flops * l["stacked_it_per_s"] / 1e9
        achieved = f"{g:.1f} ({100 * g / gflops_peak:.0f}%)"
    per_task = f"{l['per_task_it_per_s']:.2f}" if "per_task_it_per_s" in l else "—"
    print(f"| {w} | {a} | {l['stacked_it_per_s']:.1f} | {per_task} | "
          f"{p if p else '—'} | {ratio} | {achieved} | {l['adapt_ms_median']:.2f} / {l['adapt_ms_p99']:.2f} |")
print("\n| `metalearn train`, W1 (configs/peer.json, 300 iterations, data pipeline included) | wall s | it/s | peak RSS MB |")
print("|---|---:|---:|---:|")
for algo in ("maml", "fomaml"):
    t = open(os.path.join(tmp, f"train-{algo}.time")).read()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", t)
    secs = (int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
    train_s = None
    for l in open(os.path.join(tmp, f"run-{algo}", "metrics.jsonl")):
        j = json.loads(l)
        if "seconds" in j: train_s = j["seconds"]
    print(f"| {algo} | {secs:.1f} | {300 / train_s:.1f} | {rss:.0f} |")
PY
echo
echo "W1 against the strongest Python peers (hand-batched bmm, functorch vmap), 1 thread:"
echo
scripts/bench_peers.sh
if ((w3)); then
  echo
  echo "W3 (text transformer, BANKING77 episodes) against its Python peers, 1 thread:"
  echo
  NO_BUILD=1 scripts/bench_w3.sh
fi
if ((threads)); then
  echo
  scripts/bench_threads.sh
fi
if ((ingest)); then
  echo
  METALEARN=build-release/metalearn scripts/bench_ingest.sh
fi
if ((dist)) && command -v torchrun > /dev/null; then
  echo
  BINARY=build-release/metalearn scripts/bench_dist.sh
fi
