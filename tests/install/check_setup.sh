#!/usr/bin/env bash
# ctest setup.quiet_apt: scripts/setup.sh keeps apt's and the build's output in logs and prints
# one line per step, or on failure the log's tail, its path and a non-zero status; it builds only
# the tool unless --test, and answers --help with its usage. apt-get, dpkg-query, id and cmake
# are stand-ins on PATH, so nothing is installed or built.
#
#   tests/install/check_setup.sh SOURCE_DIR
set -euo pipefail
source_dir=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "setup.quiet_apt: $*" >&2
  exit 1
}

mkdir "$tmp/bin"
cat >"$tmp/bin/dpkg-query" <<'SH'
#!/bin/sh
# Every package is missing except cmake.
for last; do :; done
[ "$last" = cmake ] && printf 'install ok installed'
exit 0
SH
cat >"$tmp/bin/apt-get" <<'SH'
#!/bin/sh
echo "apt-get $*" >>"$FAKE_APT_CALLS"
i=0
while [ $i -lt 300 ]; do echo "Unpacking package $i ..."; i=$((i + 1)); done
if [ "$1" = install ] && [ -n "${FAKE_APT_FAIL:-}" ]; then
  echo "E: Unable to locate package libtorch-dev"
  exit 100
fi
exit 0
SH
printf '#!/bin/sh\necho 0\n' >"$tmp/bin/id"
chmod +x "$tmp/bin/"*
export PATH="$tmp/bin:$PATH" FAKE_APT_CALLS="$tmp/calls" SETUP_LOG="$tmp/log/apt.log"

# Success: one line on the terminal, the whole output in the log, every missing package asked for.
"$source_dir/scripts/setup.sh" --deps-only >"$tmp/out" 2>"$tmp/err" || fail "setup failed: $(cat "$tmp/err")"
[[ ! -s $tmp/out ]] || fail "setup wrote to stdout: $(head -3 "$tmp/out")"
[[ $(wc -l <"$tmp/err") -eq 1 ]] || fail "expected one line, got: $(cat "$tmp/err")"
grep -Eq "^setup: installed [0-9]+ packages \(log: $SETUP_LOG\)$" "$tmp/err" ||
  fail "unexpected summary: $(cat "$tmp/err")"
[[ $(grep -c Unpacking "$SETUP_LOG") -eq 600 ]] || fail "apt's output is not all in the log"
grep -q '^apt-get install .*libxxhash-dev' "$tmp/calls" || fail "libxxhash-dev was not installed"
grep -q '^apt-get install .* cmake' "$tmp/calls" && fail "cmake was installed though present"
count=$(grep '^apt-get install' "$tmp/calls" | wc -w)
grep -q "installed $((count - 4)) packages" "$tmp/err" ||
  fail "the count does not match the packages asked for: $(cat "$tmp/err")"

# Failure: non-zero, apt's last lines and the log path, not the whole output.
if FAKE_APT_FAIL=1 "$source_dir/scripts/setup.sh" --deps-only >/dev/null 2>"$tmp/err"; then
  fail "setup succeeded although apt-get failed"
fi
grep -q "E: Unable to locate package libtorch-dev" "$tmp/err" || fail "no apt error shown"
grep -qF "$SETUP_LOG" "$tmp/err" || fail "the log path is not shown"
[[ $(wc -l <"$tmp/err") -le 20 ]] || fail "too much output on failure: $(wc -l <"$tmp/err") lines"
# --help: the header comment, nothing installed or built, like every script in scripts/.
: >"$FAKE_APT_CALLS"
for script in "$source_dir"/scripts/*.sh; do
  help=$("$script" --help 2>&1) || fail "$script --help exits non-zero: $help"
  first=$(sed -n 2p "$script" | sed 's/^# //')
  [[ $(head -1 <<<"$help") == "$first" ]] || fail "$script --help does not start with its header: $help"
  grep -q '^#' <<<"$help" && fail "$script --help prints the comment marks: $help"
done
[[ ! -s $FAKE_APT_CALLS ]] || fail "--help ran apt-get"

# The build: cmake's output in BUILD_DIR/setup-build.log, one line before and one after; only
# the tool's target unless --test.
cat >"$tmp/bin/cmake" <<'SH'
#!/bin/sh
echo "cmake $*" >>"$FAKE_CMAKE_CALLS"
i=0
while [ $i -lt 300 ]; do echo "[ $i%] Building CXX object src/x$i.cpp.o"; i=$((i + 1)); done
if [ "$1" = --build ] && [ -n "${FAKE_CMAKE_FAIL:-}" ]; then
  echo "src/x.cpp:1:1: error: expected unqualified-id"
  exit 2
fi
exit 0
SH
chmod +x "$tmp/bin/cmake"
export FAKE_CMAKE_CALLS="$tmp/cmake_calls" BUILD_DIR="$tmp/build"
build_log="$BUILD_DIR/setup-build.log"
"$source_dir/scripts/setup.sh" >"$tmp/out" 2>"$tmp/err" || fail "setup failed: $(cat "$tmp/err")"
[[ ! -s $tmp/out ]] || fail "setup wrote to stdout: $(head -3 "$tmp/out")"
[[ $(wc -l <"$tmp/err") -eq 3 ]] || fail "expected three lines (apt, building, built), got: $(cat "$tmp/err")"
grep -qF "log: $build_log" "$tmp/err" || fail "the build log is not named: $(cat "$tmp/err")"
grep -q "Building CXX" "$tmp/err" && fail "the build's output reached the terminal"
[[ $(grep -c "Building CXX" "$build_log") -eq 600 ]] || fail "cmake's output is not all in the log"
grep -q -- "--build $BUILD_DIR .*--target tool" "$FAKE_CMAKE_CALLS" ||
  fail "the tool's target was not the one built: $(cat "$FAKE_CMAKE_CALLS")"
: >"$FAKE_CMAKE_CALLS"
"$source_dir/scripts/setup.sh" --test >/dev/null 2>"$tmp/err" || fail "setup --test failed: $(cat "$tmp/err")"
grep -q -- "--build" "$FAKE_CMAKE_CALLS" || fail "setup --test built nothing"
grep -q -- "--target" "$FAKE_CMAKE_CALLS" && fail "setup --test built only some targets: $(cat "$FAKE_CMAKE_CALLS")"

# A failed build: non-zero, the compiler's error and the log's path, not the whole output.
if FAKE_CMAKE_FAIL=1 "$source_dir/scripts/setup.sh" >/dev/null 2>"$tmp/err"; then
  fail "setup succeeded although the build failed"
fi
grep -q "error: expected unqualified-id" "$tmp/err" || fail "no build error shown: $(cat "$tmp/err")"
grep -qF "$build_log" "$tmp/err" || fail "the build log path is not shown"
[[ $(wc -l <"$tmp/err") -le 30 ]] || fail "too much output on failure: $(wc -l <"$tmp/err") lines"
echo "setup.quiet_apt: ok"
