#!/usr/bin/env bash
# W1 against the strongest Python peers, side by side: metalearn's task-batched meta-step
# (build-release/metalearn_bench_meta) against scripts/peers/w1_batched.py's hand-batched (bmm)
# and functorch vmap implementations and ../shared/peer/maml_peer.py's per-task loop, each
# peer with glibc's default allocator and with the allocator settings metalearn makes itself
# (src/runtime/device.cpp: mallopt M_MMAP_THRESHOLD = M_TRIM_THRESHOLD = 1 GiB, M_TOP_PAD =
# 256 MiB; GLIBC_TUNABLES gives Python the same). Every peer first checks that its
# meta-gradient equals the per-task reference's (w1_batched.py exits 1 otherwise).
# Everything runs on 1 thread with the same OpenBLAS kernels (scripts/lib/blas_core.sh);
# ROUNDS interleaved rounds (default 3), medians reported.
# Prints a Markdown table on stdout: it/s per program and algorithm, and ours / best peer.
#
#   scripts/bench_peers.sh            # about 6 minutes
#   ROUNDS=5 ITERS=300 scripts/bench_peers.sh
#   BUILD_DIR=build scripts/bench_peers.sh   # an existing build instead of build-release/
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
source "$(dirname "$0")/lib/blas_core.sh"
source "$(dirname "$0")/lib/peers.sh"
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
iters=${ITERS:-200}
python=/usr/bin/python3
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tuned=$ml_tuned_malloc

ml_peer_python
build_dir=${BUILD_DIR:-build-release}
ml_release_build "$build_dir"
ml_export_blas_core "$build_dir"/metalearn

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for round in $(seq "$rounds"); do
  echo "round $round of $rounds ..." >&2
  for algo in maml fomaml reptile; do
    "$build_dir"/metalearn_bench_meta --workload W1 --algorithms "$algo" --seconds 3 > "$tmp/ours"
    head -n 1 "$tmp/ours" >> "$tmp/matmul"  # this core's 1024² float matmul rate, just before
    tail -n +2 "$tmp/ours" | sed "s/^/ours $algo /" >> "$tmp/results"
    # The same binary with every product on OpenBLAS (no LIBXSMM kernels): what they add.
    METALEARN_SMALL_GEMM=blas "$build_dir"/metalearn_bench_meta --workload W1 --algorithms "$algo" \
      --seconds 3 | tail -n +2 | sed "s/^/ours-openblas $algo /" >> "$tmp/results"
    for impl in bmm vmap; do
      for malloc in default tuned; do
        env_set=()
        [[ $malloc == tuned ]] && env_set=(GLIBC_TUNABLES="$tuned")
        env "${env_set[@]}" "$python" scripts/peers/w1_batched.py --impl "$impl" --algo "$algo" \
          --iters "$iters" | sed "s/^/$impl-$malloc $algo /" >> "$tmp/results"
      done
    done
    for malloc in default tuned; do
      env_set=()
      [[ $malloc == tuned ]] && env_set=(GLIBC_TUNABLES="$tuned")
      env "${env_set[@]}" "$python" ../shared/peer/maml_peer.py --algo "$algo" --threads 1 \
        --iters "$iters" | sed "s/^/per_task-$malloc $algo /" >> "$tmp/results"
    done
  done
done

"$python" - "$tmp/results" "$tmp/matmul" <<'PY'
import json, statistics, sys
# Multiply-adds x 2 of one W1 meta-iteration as the per-task reference computes it (meta-batch
# 16, 5 inner steps, 10 + 40 rows, 32-128-64-1; docs/BENCHMARKS.md).
reference_flop = {"maml": 191e6, "fomaml": 95.9e6, "reptile": 69.6e6}
matmul = statistics.median(json.loads(l)["matmul_1024_gflops"] for l in open(sys.argv[2]))
rates = {}
for line in open(sys.argv[1]):
    program, algo, payload = line.split(" ", 2)
    r = json.loads(payload)
    rate = r.get("stacked_it_per_s", r.get("meta_iters_per_sec"))
    rates.setdefault((program, algo), []).append(rate)
programs = ["ours", "ours-openblas", "bmm-default", "bmm-tuned", "vmap-default", "vmap-tuned",
            "per_task-default", "per_task-tuned"]
print("| algorithm | " + " | ".join(programs) + " | best peer | ours / best peer |")
print("|---|" + "---:|" * (len(programs) + 2))
for algo in ("maml", "fomaml", "reptile"):
    med = {p: statistics.median(rates[(p, algo)]) for p in programs if (p, algo) in rates}
    peers = {p: v for p, v in med.items() if not p.startswith("ours")}
    best = max(peers, key=peers.get)
    cells = " | ".join(f"{med[p]:.1f}" if p in med else "—" for p in programs)
    print(f"| {algo} | {cells} | {best} | {med['ours'] / peers[best]:.2f}x |")
print(f"\nOne 1024² float matmul on this core: {matmul:.1f} GFLOP/s (median over the rounds).\n")
print("| algorithm | ours GFLOP/s (reference FLOPs) | share of the matmul rate |")
print("|---|---:|---:|")
for algo in ("maml", "fomaml", "reptile"):
    ours = statistics.median(rates[("ours", algo)]) * reference_flop[algo] / 1e9
    print(f"| {algo} | {ours:.1f} | {100 * ours / matmul:.0f}% |")
PY
