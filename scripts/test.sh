#!/usr/bin/env bash
# Runs the whole test suite (unit tests and end-to-end CLI tests), installing and building
# first what is missing (with chromium, which the HTML report check renders pages in). Tests
# that need ../shared/datasets skip and say so when it is absent.
#
#   scripts/test.sh              # normal build
#   scripts/test.sh --sanitize   # the same suite under ASan + UBSan
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."
build_dir=build
[[ "${1:-}" == "--sanitize" ]] && build_dir=build-asan
scripts/setup.sh --test "$@"
# LibTorch's own start-up allocations are not ours to fix; leaks in our code still fail tests
# through ASan's other checks.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)"
