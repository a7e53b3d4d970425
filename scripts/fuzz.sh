#!/usr/bin/env bash
# Fuzzes one input reader with libFuzzer (+ ASan + UBSan), seeded from the tests' inputs.
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#     TARGET: csv | config | time | checkpoint   (the harnesses are tests/fuzz/fuzz_TARGET.cpp)
#
# Installs clang and libFuzzer if missing (scripts/setup.sh --fuzz), configures build-fuzz/
# with clang and ML_FUZZ=ON, and builds only the target (a few src/ files, not the library).
# The inputs it finds go to build-fuzz/fuzz/TARGET/corpus/ (kept between runs, so a second run
# goes on where the first stopped); the checked-in seeds in tests/fuzz/corpus/TARGET/ are
# read, never written. A crash, sanitizer report, failed property, leak, timeout or
# out-of-memory stops the run and is saved as build-fuzz/fuzz/TARGET/findings/KIND-HASH: rerun
# it with `build-fuzz/tests/fuzz/fuzz_TARGET FILE`. Add -fork=1 -ignore_crashes=1 to go on past
# findings. One line at the end gives executions, time and findings; libFuzzer's output is in
# build-fuzz/fuzz/TARGET/fuzz.log. Exit status: 0 without findings, 1 with, 2 for bad usage.
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."

targets=(csv config time checkpoint)
usage="usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...] (TARGET: ${targets[*]})"
if (($# < 2)) || [[ ! " ${targets[*]} " == *" $1 "* ]] || [[ ! "$2" =~ ^[0-9]+$ ]]; then
  echo "$usage" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2

build_dir=build-fuzz
SETUP_LOG="$build_dir/setup-apt.log" scripts/setup.sh --fuzz --deps-only
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build_dir" -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DML_FUZZ=ON -DML_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
fi
cmake --build "$build_dir" --target "fuzz_$target" -j"$(nproc)" >/dev/null

work="$build_dir/fuzz/$target"
mkdir -p "$work/corpus" "$work/findings"
flags=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10
       -artifact_prefix="$work/findings/")
case "$target" in
  config)
    # Every key and choice of docs/CONFIG.md, so mutations try real names.
    { grep -o '`[a-z_]*\(\.[a-z_]*\)*`' docs/CONFIG.md | tr -d '`' | tr '.' '\n'
      grep -o '`[a-z_]*\(\.[a-z_]*\)*`' docs/CONFIG.md | tr -d '`'
      grep -o '`"[a-z0-9_:]*"`' docs/CONFIG.md | tr -d '`"'
    } | sort -u | grep -v '^$' | sed 's/.*/"&"/' >"$work/config.dict"
    flags+=(-dict="$work/config.dict")
    ;;
  checkpoint) flags+=(-rss_limit_mb=4096) ;;
esac
# LibTorch allocates at start-up and never frees; only the checkpoint harness loads it.
[[ "$target" == checkpoint ]] && export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"

mapfile -t earlier < <(find "$work/findings" -type f | sort)
start=$(date +%s)
status=0
"$build_dir/tests/fuzz/fuzz_$target" "${flags[@]}" "$@" "$work/corpus" \
  "tests/fuzz/corpus/$target" >"$work/fuzz.log" 2>&1 || status=$?
elapsed=$(($(date +%s) - start))

# The final stats line; with -fork=N (no such line) the last progress line's count.
executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/fuzz.log" |
             awk '{print $2}' || true)
[[ -n "$executions" ]] ||
  executions=$(grep -o '^#[0-9]*' "$work/fuzz.log" | tail -n 1 | tr -d '#' || true)
mapfile -t found < <(comm -13 <(printf '%s\n' "${earlier[@]}") <(find "$work/findings" -type f | sort))
echo "fuzz: $target: $executions executions in ${elapsed}s, ${#found[@]} findings" \
     "(${#earlier[@]} from earlier runs in $work/findings), corpus $(ls "$work/corpus" | wc -l) inputs"
for f in "${found[@]}"; do echo "  finding: $f"; done
if ((status != 0)) || ((${#found[@]} > 0)); then
  echo "fuzz: libFuzzer exited with status $status; the end of $work/fuzz.log:" >&2
  grep -v '^#[0-9]' "$work/fuzz.log" | tail -n 40 | sed 's/^/  /' >&2
  exit 1
fi
