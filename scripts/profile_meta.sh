#!/usr/bin/env bash
# Where a meta-step's time goes (issue 5: "a profile, not a guess"), from `perf` samples with
# call stacks, so nothing is added to the timed code: the share of the meta-step spent in BLAS,
# libtorch and the allocator, then per innermost ATen operator, split into the forward passes,
# the inner steps' gradients and the outer backward. docs/BENCHMARKS.md quotes its output.
#
#   scripts/profile_meta.sh              # W1 maml
#   scripts/profile_meta.sh W2 fomaml
#   scripts/profile_meta.sh W3 maml      # the text transformer (configs/w3.json)
#
# Needs perf (Debian: apt-get install linux-perf) and the release benchmark binary that
# scripts/bench.sh builds (BUILD_DIR=DIR: that build's instead). For self time per operator and input shapes instead, use
# build-release/metalearn_bench_meta --op-table (torch's profiler: it slows small operators
# down about 2x, so its shares lean towards them).
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."
workload=${1:-W1}
algorithm=${2:-maml}
command -v perf > /dev/null || { echo "perf not found (Debian: apt-get install linux-perf)" >&2; exit 2; }
[[ -x ${BUILD_DIR:-build-release}/metalearn_bench_meta ]] ||
  { echo "${BUILD_DIR:-build-release}/metalearn_bench_meta missing: run scripts/bench.sh first" >&2; exit 2; }
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
perf record -q --call-graph dwarf,32768 -F 1000 -o "$tmp/perf.data" \
  ${BUILD_DIR:-build-release}/metalearn_bench_meta --workload "$workload" --algorithms "$algorithm" \
  --seconds 4 > /dev/null 2>&1
perf script -i "$tmp/perf.data" 2> /dev/null > "$tmp/stacks.txt"
/usr/bin/python3 - "$tmp/stacks.txt" "$workload" "$algorithm" <<'PY'
import collections, re, sys
path, workload, algorithm = sys.argv[1:]
frame = re.compile(r"\s*[0-9a-f]+ (.*) \((.*)\)$")
op_call = re.compile(r"at::_ops::(\w+)::call")
samples = 0
where = collections.Counter()
by_op = collections.Counter()
by_phase = collections.Counter()
for block in open(path).read().split("\n\n"):
    frames = [frame.match(l) for l in block.strip().split("\n")[1:]]
    frames = [(m.group(1), m.group(2).rsplit("/", 1)[-1]) for m in frames if m]
    names = [f for f, _ in frames]
    # LIBXSMM's generated kernels (models/blas_gemm.cpp) are code without unwind tables: perf
    # names them by its JIT map (/tmp/perf-PID.map) and gets no stack above them. Only the
    # meta-step's products run on them.
    jit = bool(frames) and re.match(r"perf-\d+\.map$", frames[0][1]) is not None
    # Only the timed meta-step: the gradient of one meta-batch.
    if not jit and not any("accumulate_meta_gradient" in n for n in names):
        continue
    samples += 1
    leaf, library = frames[0]
    if jit:
        where["small products (LIBXSMM's generated kernels)"] += 1
    elif "sgemm" in leaf or "dgemm" in leaf or "libxsmm" in leaf:
        where["BLAS (OpenBLAS gemm; LIBXSMM's dispatch and transposes)"] += 1
    elif library.startswith("libc.so") or "malloc" in leaf or "free" in leaf:
        where["allocator and memset (libc)"] += 1
    elif "kernel" in library:
        where["kernel (page faults, syscalls)"] += 1
    else:
        where["libtorch, c10 and ours (dispatch, autograd, elementwise)"] += 1
    ops = [op_call.search(n).group(1) for n in names if op_call.search(n)]
    if any("torch::autograd::backward" in n for n in names):
        phase = "outer backward"
    elif any("torch::autograd::grad" in n for n in names):
        phase = "inner-step gradients"
    else:
        phase = "forward passes"
    by_phase[phase] += 1
    by_op[(phase, ops[0] if ops else "(no ATen op: our gemm, autograd engine)")] += 1
print(f"{workload} {algorithm}: {samples} samples in the meta-step\n")
print("| where | share |\n|---|---:|")
for k, v in where.most_common():
    print(f"| {k} | {100 * v / samples:.0f}% |")
print("\n| phase | share |\n|---|---:|")
for k, v in by_phase.most_common():
    print(f"| {k} | {100 * v / samples:.0f}% |")
print("\n| phase | innermost ATen operator | share |\n|---|---|---:|")
for (phase, op), v in by_op.most_common(14):
    print(f"| {phase} | {op} | {100 * v / samples:.1f}% |")
PY
