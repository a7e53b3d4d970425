#!/usr/bin/env bash
# ctest setup.quiet_apt: scripts/setup.sh keeps apt's output in a log and prints one summary
# line, or on failure the log's tail, its path and a non-zero status. apt-get, dpkg-query and id
# are stand-ins on PATH, so nothing is installed.
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
echo "setup.quiet_apt: ok"
