#!/usr/bin/env bash
# ctest install.tree: `cmake --install` into a temporary prefix, then the installed tool works on
# its own: --version, --help, the man page, the bash completion, and a synth + inspect run with
# an installed example config.
#
#   tests/install/check_install.sh BUILD_DIR HAVE_MAN_PAGE(ON|OFF)
set -euo pipefail
build=$1
have_man=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "install.tree: $*" >&2
  exit 1
}

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
bin=$prefix/bin/metalearn
[[ -x $bin ]] || fail "no executable at $bin"
# The installed binary must not lean on the build tree (a leftover RUNPATH into it).
if readelf -d "$bin" | grep -E 'R(UN)?PATH' | grep -qF "$build"; then
  fail "the installed binary keeps a RUNPATH into the build tree"
fi

version=$("$bin" --version)
[[ $version == "metalearn "* ]] || fail "--version printed '$version'"
help=$("$bin" --help)
for command in train adapt eval predict export inspect synth; do
  grep -qw "$command" <<<"$help" || fail "--help does not list $command"
done
grep -qw completion <<<"$help" && fail "--help lists the hidden completion command"

if [[ $have_man == ON ]]; then
  page=$prefix/share/man/man1/metalearn.1.gz
  [[ -f $page ]] || fail "no man page at $page"
  man_text=$(gzip -dc "$page")
  grep -q '^\.SH "\?EXIT STATUS' <<<"$man_text" || fail "the man page lacks EXIT STATUS"
  grep -q 'synth' <<<"$man_text" || fail "the man page lacks the subcommands"
fi

completion=$prefix/share/bash-completion/completions/metalearn
[[ -f $completion ]] || fail "no bash completion at $completion"
# complete WORDS...: what the completion offers for the last word.
complete_words() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _metalearn;
           printf "%s\n" "${COMPREPLY[@]}"' _ "$completion" "$@"
}
[[ $(complete_words metalearn ins) == inspect ]] || fail "'metalearn ins<TAB>' did not give inspect"
[[ $(complete_words metalearn synth --us) == --users ]] || fail "'synth --us<TAB>' did not give --users"
[[ -z $(complete_words metalearn inspect --config "") ]] ||
  fail "after --config the completion should leave file names to bash"
grep -qx -- --print-config <(complete_words metalearn train --pr) || fail "'train --pr<TAB>'"

configs=$prefix/share/metalearn/configs
[[ -f $configs/synthetic.json ]] || fail "no example configs in $configs"
[[ -f $prefix/share/doc/metalearn/README.md ]] || fail "no README in share/doc/metalearn"
[[ -f $prefix/include/metalearn/util/version.hpp ]] || fail "no headers in include/metalearn"
[[ -f $prefix/lib/cmake/metalearn/metalearnConfig.cmake ||
   -n $(find "$prefix" -name metalearnConfig.cmake) ]] || fail "no metalearnConfig.cmake"

# The example config as a user would use it: copied beside the data it names (../data/synth).
work=$tmp/work
mkdir -p "$work/configs"
cp "$configs/synthetic.json" "$work/configs/"
cd "$work"
"$bin" --log-level warn synth --out data/synth --users 150 --categories 6 --sessions 1500 \
  --seed 3 >/dev/null
"$bin" --log-level warn inspect --config configs/synthetic.json --set data.cache=off --json \
  >profile.json
# Pretty-printed JSON: "kept": N under "rows".
grep -Eq '"kept": [1-9]' profile.json || fail "inspect with the installed config kept no rows"
echo "install.tree: ok ($prefix)"
