#!/usr/bin/env bash
# Workload W3 side by side (issue 12): the text transformer on BANKING77 episodes
# (configs/w3.json: 2 layers, width 128, 4 heads, feed-forward 256, 32 tokens, 5-way 5-shot,
# 15 queries per class, meta-batch 8, 3 inner steps on the head and the last layer), ours
# (build-release/metalearn_bench_meta --workload W3) against scripts/peers/w3_transformer.py's
# per-task loop and functorch vmap in Debian's python3-torch, for maml, fomaml and protonet.
# The peers read metalearn's export (--export-w3): the same initial weights, the same 64
# episodes with the same token ids, and each first checks that its meta-gradient of the first
# meta-batch equals ours (it exits 1 otherwise). Everything runs on 1 thread with the same
# OpenBLAS kernels (scripts/lib/blas_core.sh) and metalearn's allocator settings for the peers
# too (GLIBC_TUNABLES, as scripts/bench_peers.sh's "tuned"); ROUNDS interleaved rounds, medians.
# Prints a Markdown table on stdout: meta-iterations/s per program and algorithm, and ours
# against the better peer.
#
#   scripts/bench_w3.sh                      # about 4 minutes
#   ROUNDS=5 ITERS=10 SECONDS_PER_CELL=15 scripts/bench_w3.sh   # steadier figures to quote
#   NO_BUILD=1 BUILD_DIR=build scripts/bench_w3.sh             # an existing build as it is
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
source "$(dirname "$0")/lib/blas_core.sh"
source "$(dirname "$0")/lib/peers.sh"
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-2}
iters=${ITERS:-6}               # timed meta-iterations per peer run (after 2 warm-up ones)
budget=${SECONDS_PER_CELL:-6}   # seconds of ours per algorithm and round
python=/usr/bin/python3
build_dir=${BUILD_DIR:-build-release}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tuned=$ml_tuned_malloc

ml_peer_python
[[ -n ${NO_BUILD:-} ]] || ml_release_build "$build_dir"
ml_export_blas_core "$build_dir"/metalearn

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
algos=(maml fomaml protonet)
echo "W3: exporting the episodes and our meta-gradients for the peers ..." >&2
"$build_dir"/metalearn_bench_meta --workload W3 --export-w3 "$tmp/w3.pt" 2> /dev/null
for round in $(seq "$rounds"); do
  echo "W3 round $round of $rounds ..." >&2
  "$build_dir"/metalearn_bench_meta --workload W3 --seconds "$budget" --adapt-reps 20 \
    --algorithms "$(IFS=,; echo "${algos[*]}")" 2> /dev/null | tail -n +2 |
    while read -r line; do
      algo=$(sed 's/.*"algorithm":"\([a-z]*\)".*/\1/' <<< "$line")
      echo "ours $algo $line"
    done >> "$tmp/results"
  for algo in "${algos[@]}"; do
    for impl in per_task vmap; do
      GLIBC_TUNABLES="$tuned" "$python" scripts/peers/w3_transformer.py --data "$tmp/w3.pt" \
        --impl "$impl" --algo "$algo" --iters "$iters" | sed "s/^/$impl $algo /" >> "$tmp/results"
    done
  done
done

"$python" - "$tmp/results" <<'PY'
import json, statistics, sys
rates, diffs = {}, {}
for line in open(sys.argv[1]):
    program, algo, payload = line.split(" ", 2)
    r = json.loads(payload)
    rates.setdefault((program, algo), []).append(r.get("stacked_it_per_s", r.get("meta_iters_per_sec")))
    if "max_rel_grad_diff" in r:
        diffs[(program, algo)] = r["max_rel_grad_diff"]
programs = ["ours", "per_task", "vmap"]
print("| algorithm | ours it/s | per-task loop it/s | functorch vmap it/s | ours / better peer | peers' meta-gradient vs ours (max rel. diff) |")
print("|---|---:|---:|---:|---:|---|")
for algo in ("maml", "fomaml", "protonet"):
    med = {p: statistics.median(rates[(p, algo)]) for p in programs if (p, algo) in rates}
    peers = {p: v for p, v in med.items() if p != "ours"}
    best = max(peers.values()) if peers else None
    ratio = f"{med['ours'] / best:.2f}x" if best and "ours" in med else "—"
    cells = " | ".join(f"{med[p]:.2f}" if p in med else "—" for p in programs)
    d = ", ".join(f"{p} {diffs[(p, algo)]:.1e}" for p in ("per_task", "vmap") if (p, algo) in diffs)
    print(f"| {algo} | {cells} | {ratio} | {d} |")
PY
