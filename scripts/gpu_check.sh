#!/usr/bin/env bash
# The one prepared run on a GPU machine (issue 17, docs/CUDA.md): builds metalearn against the
# machine's pip LibTorch on every core, runs the CUDA tests, then the GPU benchmark, writing
# every log under $OUT (default ./gpu-out). Sized to finish well inside ten minutes on 16 cores.
#
# What the machine must have: a pip PyTorch 2.x built for CUDA (its LibTorch is found through
# `torch.utils.cmake_prefix_path`), CMake, a C++17 compiler (ninja used when present); what it
# lacks comes with the source tree: .deps/device from scripts/device_deps.sh (header-only CLI11,
# nlohmann_json, spdlog, fmt; GoogleTest's sources; xxHash, SentencePiece; Boost.Math headers).
# From the CPU machine: `scripts/device_deps.sh`, then the device tool's run with
# carry [".deps/device"] and command `scripts/gpu_check.sh`.
#
# Exit status: 0 when the build and the CUDA tests passed (the benchmark is best effort), 1 when
# the build failed, 2 when a prerequisite is missing, 3 when a CUDA test failed.
set -uo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
jobs=$(nproc)
summary="$out/summary.txt"
say() { echo "[$(date -u +%T)] $*" | tee -a "$summary"; }
fail() { say "FAILED: $1"; exit "$2"; }

deps="$PWD/.deps/device/root/usr"
[[ -d "$deps" ]] || fail ".deps/device is missing: run scripts/device_deps.sh on the CPU machine and carry .deps/device" 2
python3 - >"$out/torch.txt" 2>&1 <<'PY' || fail "python3 cannot import torch (see torch.txt)" 2
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch.compiled_with_cxx11_abi())
print("devices", [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
print("cmake prefix", torch.utils.cmake_prefix_path)
PY
cat "$out/torch.txt" >>"$summary"
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
say "configure (pip LibTorch at $torch_prefix, dependencies from .deps/device)"
cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$deps" -DML_PORTABLE_DEPS=ON -DML_TORCH_GEMM=ON -DBoost_NO_BOOST_CMAKE=ON \
  >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log" >>"$summary"; fail "configure (configure.log)" 1; }
say "build on $jobs cores"
start=$(date +%s)
cmake --build build-gpu -j"$jobs" --target metalearn metalearn_tests >"$out/build.log" 2>&1 ||
  { grep -m20 -E "error|Error" "$out/build.log" >>"$summary"; fail "build (build.log)" 1; }
say "built in $(( $(date +%s) - start )) s"
# The benchmark binary separately: a failure there must not cost the tests.
cmake --build build-gpu -j"$jobs" --target metalearn_bench_meta >"$out/build-bench.log" 2>&1 ||
  say "benchmark binary did not build (build-bench.log)"

say "CUDA tests"
build-gpu/tests/metalearn_tests --gtest_filter='Cuda*' --gtest_output="xml:$out/cuda-tests.xml" \
  >"$out/cuda-tests.log" 2>&1
tests_status=$?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests ran" "$out/cuda-tests.log" >>"$summary"
# The CPU suite's core on the same binary: the pip LibTorch's numerics against the tests'
# expectations (a subset; the whole suite is the CPU machine's job).
timeout 150 build-gpu/tests/metalearn_tests \
  --gtest_filter='TorchGemm*:MetaGradient*:StackedInnerLoop*:DenseSecondOrder*:Transformer*:TextMeta*:BatchedMatmul*' \
  >"$out/core-tests.log" 2>&1
say "core CPU tests on the pip LibTorch: exit $? ($(grep -c '^\[       OK \]' "$out/core-tests.log") passed, $(grep -c '^\[  FAILED  \]' "$out/core-tests.log") failed lines)"

if [[ -x build-gpu/metalearn_bench_meta ]]; then
  bench="$out/bench.jsonl"
  say "benchmark: W1 and W2, every algorithm, cuda then cpu (1 thread)"
  for device in cuda cpu; do
    timeout 150 build-gpu/metalearn_bench_meta --device "$device" --workload all --seconds 2 \
      --algorithms maml,fomaml,reptile,anil >>"$bench" 2>>"$out/bench.err"
  done
  say "benchmark: W1 maml by meta-batch size (where the GPU starts to win)"
  for meta_batch in 1 4 16 64 256; do
    for device in cuda cpu; do
      timeout 60 build-gpu/metalearn_bench_meta --device "$device" --workload W1 --seconds 1.5 \
        --algorithms maml --meta-batch "$meta_batch" >>"$bench" 2>>"$out/bench.err"
    done
  done
  python3 - "$bench" >>"$summary" 2>&1 <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| workload | algorithm | device | meta-batch | it/s | adapt ms (median) |")
print("|---|---|---|---|---|---|")
for r in rows:
    if "workload" in r:
        print(f"| {r['workload']} | {r['algorithm']} | {r['device']} | {r['meta_batch']} | "
              f"{r['stacked_it_per_s']:.1f} | {r['adapt_ms_median']:.3f} |")
    else:
        print("matmul 1024^2 GFLOP/s:", round(r["matmul_1024_gflops"], 1))
PY
fi
say "done; CUDA tests exit $tests_status"
[[ $tests_status -eq 0 ]] || exit 3
