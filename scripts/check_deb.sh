#!/usr/bin/env bash
# Builds the .deb with CPack from a configured, built tree and checks it: lintian must report no
# errors (warnings are printed; docs/PACKAGING.md explains the ones that remain), Depends must
# name Debian's runtime packages, and the package must hold the tool, man page, completion and
# example configs. Also the ctest test install.deb when lintian and dpkg-dev are installed.
#
#   scripts/check_deb.sh [BUILD_DIR]      # default build/
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
build=$(cd "${1:-build}" && pwd)
fail() {
  echo "check_deb: $*" >&2
  exit 1
}
for tool in cpack dpkg-deb dpkg-shlibdeps lintian; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup.sh --test installs it)"
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# A private output folder, so a concurrent run cannot pick up another build's package.
(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) ||
  { tail -30 "$out/cpack.log" >&2; fail "cpack failed (log above)"; }
deb=$(find "$out" -maxdepth 1 -name 'metalearn_*.deb' | head -1)
[[ -n $deb ]] || fail "cpack made no metalearn_*.deb"

depends=$(dpkg-deb -f "$deb" Depends)
echo "check_deb: $(basename "$deb"), Depends: $depends"
for needed in libtorch libopenblas libspdlog libxxhash libfmt libsentencepiece libicu; do
  grep -q "$needed" <<<"$depends" || fail "Depends lacks $needed"
done
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/metalearn ./usr/share/bash-completion/completions/metalearn \
  ./usr/share/metalearn/configs/synthetic.json ./usr/share/doc/metalearn/copyright \
  ./usr/share/doc/metalearn/changelog.gz ./usr/share/man/man1/metalearn.1.gz \
  ./usr/lib/metalearn/libmetalearn_sentencepiece.so; do
  grep -qF " $path" <<<"$contents" || fail "the package lacks $path"
done
if grep -qF include/metalearn <<<"$contents"; then fail "the package holds the library headers"; fi

# --fail-on error: warnings are reported but do not fail the check.
lintian --fail-on error --tag-display-limit 0 "$deb" | tee "$out/lintian.log" ||
  fail "lintian reported errors (E: lines above)"
mkdir -p "$build/packages"
cp "$deb" "$build/packages/"
echo "check_deb: $build/packages/$(basename "$deb"): lintian: $(grep -c '^E:' "$out/lintian.log" || true) errors, $(grep -c '^W:' "$out/lintian.log" || true) warnings"
