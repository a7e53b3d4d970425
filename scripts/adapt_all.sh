#!/usr/bin/env bash
# Batch job: adapts a trained run to every task it held out as new and writes a JSON summary.
#
#   scripts/adapt_all.sh RUN [SUMMARY.json] [-- extra 'metalearn adapt' options]
#
#   RUN            a run directory (or a checkpoint file) written by 'metalearn train'
#   SUMMARY.json   where the summary goes; default RUN/adapted/summary.json
#   extra options  passed to 'metalearn adapt', e.g. -- --shots 10 --steps 5 --device cpu
#
# The adapted models go to RUN/adapted/<task>.mlckpt (or --out DIR). The summary is written
# through a temporary file, so a failed job never leaves a partial one. The exit code is
# metalearn's (see README.md, "Exit codes"); METALEARN overrides the binary (default
# build/metalearn of this checkout).
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"

usage() {
  # The header comment above, without its '#'.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  usage
  [[ $# -ge 1 ]] && exit 0 || exit 2
fi

run=$1
shift
summary=""
if [[ $# -gt 0 && "$1" != "--" ]]; then
  summary=$1
  shift
fi
if [[ $# -gt 0 ]]; then
  if [[ "$1" != "--" ]]; then
    echo "adapt_all.sh: error: unexpected argument '$1' (extra options go after --)" >&2
    usage >&2
    exit 2
  fi
  shift
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${METALEARN:-$repo/build/metalearn}
if [[ ! -x "$bin" ]]; then
  echo "adapt_all.sh: error: no metalearn binary at '$bin' (build it, or set METALEARN)" >&2
  exit 1
fi
if [[ -z "$summary" ]]; then
  # The run folder, as metalearn finds it: RUN itself, or the folder above the checkpoints/
  # (or adapted/) folder a checkpoint file sits in.
  root=$run
  if [[ ! -d "$run" ]]; then
    root=$(dirname "$run")
    case $(basename "$root") in checkpoints | adapted) root=$(dirname "$root") ;; esac
  fi
  summary=$root/adapted/summary.json
fi

# Outside the run until it succeeded, so a mistyped RUN does not leave a folder behind; then
# moved next to the summary under a temporary name and renamed, which is atomic.
tmp=$(mktemp "${TMPDIR:-/tmp}/adapt_all.XXXXXX")
near="$summary.tmp-$$"
trap 'rm -f "$tmp" "$near"' EXIT
status=0
"$bin" adapt --checkpoint "$run" --all-new --json "$@" >"$tmp" || status=$?
if [[ $status -ne 0 ]]; then
  echo "adapt_all.sh: error: metalearn adapt failed with exit code $status" >&2
  exit "$status"
fi
mkdir -p "$(dirname "$summary")"
mv "$tmp" "$near"
mv "$near" "$summary"
echo "adapt_all.sh: adapted $(grep -c '"checkpoint":' "$summary" || true) task(s); summary in $summary" >&2
echo "$summary"
