#!/usr/bin/env bash
# ctest install.consumer: installs into a temporary prefix and builds a small project against the
# exported CMake package (find_package(metalearn), metalearn::metalearn), then runs it.
#
#   tests/install/check_consumer.sh BUILD_DIR CXX_COMPILER
set -euo pipefail
build=$1
compiler=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "install.consumer: $*" >&2
  exit 1
}

cmake --install "$build" --prefix "$tmp/prefix" --component development >"$tmp/install.log"
cmake -S "$here/consumer" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_BUILD_TYPE=Release >"$tmp/configure.log" 2>&1 ||
  { tail -30 "$tmp/configure.log" >&2; fail "configuring the consumer failed"; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 ||
  { tail -30 "$tmp/build.log" >&2; fail "building the consumer failed"; }
output=$("$tmp/build/consumer")
echo "$output"
grep -q '^t 2.262157' <<<"$output" || fail "unexpected output from the consumer"
