#!/usr/bin/env bash
# Installs what metalearn needs from Debian's packages (only what is missing) and builds it.
# Idempotent: on a machine that has everything it only runs an incremental build.
#
#   scripts/setup.sh              # the tool (build target `tool`) in build/, release mode
#   scripts/setup.sh --test       # also the tests and benchmarks, and what only the tests need
#                                 # (chromium for the report check, lintian and dpkg-dev for the
#                                 # .deb check)
#   scripts/setup.sh --sanitize   # ASan + UBSan build (tool and tests) in build-asan/
#   scripts/setup.sh --fuzz       # also clang and libFuzzer (scripts/fuzz.sh)
#   scripts/setup.sh --deps-only  # install the missing packages, do not build
#   BUILD_TYPE=Debug scripts/setup.sh      # BUILD_DIR=DIR: build there instead
#
# A first build of the tool takes about 10 minutes on 2 cores (the tests as much again). apt's
# output goes to BUILD_DIR/setup-apt.log (or $SETUP_LOG), cmake's to BUILD_DIR/setup-build.log;
# the terminal gets one line per step, or on failure the log's last lines and its path (exit
# status 1).
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build}
targets=(--target tool)
cmake_args=(-DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}")
packages=(cmake g++ make libtorch-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
          libgtest-dev libgloo-dev libopenblas0-pthread libopenblas-dev libboost-math-dev
          libxxhash-dev libsentencepiece-dev libicu-dev libxsmm-dev libjemalloc-dev help2man)
build=1
for arg in "$@"; do
  case "$arg" in
    --sanitize)
      build_dir=${BUILD_DIR:-build-asan}
      cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DML_SANITIZE=ON)
      targets=()  # a sanitizer build is for running the tests
      ;;
    # chromium: scripts/check_report.sh renders the HTML report; lintian, dpkg-dev: the .deb check;
    # python3-torch: torchrun, which the data-parallel test launches (libgloo-dev, above, builds it)
    --test)
      packages+=(chromium lintian dpkg-dev python3-torch)
      targets=()
      ;;
    --fuzz) packages+=(clang libclang-rt-dev) ;;
    --deps-only) build=0 ;;
    *)
      echo "setup: unknown option $arg (expected --sanitize, --test, --fuzz or --deps-only; --help for usage)" >&2
      exit 2
      ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log="${SETUP_LOG:-$build_dir/setup-apt.log}"
  mkdir -p "$(dirname "$log")"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  # env, not a prefix assignment: sudo would drop DEBIAN_FRONTEND from the environment.
  if ! { $sudo apt-get update && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y \
           --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 </dev/null; then
    echo "setup: installing ${missing[*]} failed; the end of $log:" >&2
    tail -n 15 "$log" | sed 's/^/  /' >&2
    exit 1
  fi
  echo "setup: installed ${#missing[@]} packages (log: $log)" >&2
fi
((build)) || exit 0

build_log="$build_dir/setup-build.log"
mkdir -p "$build_dir"
what="the tool"
((${#targets[@]})) || what="the tool, tests and benchmarks"
echo "setup: building $what in $build_dir (a first build takes minutes; log: $build_log)" >&2
# `set -e` does not apply inside an `if` condition: the steps are chained with && instead.
if ! {
  { [[ -f "$build_dir/CMakeCache.txt" ]] || cmake -S . -B "$build_dir" "${cmake_args[@]}"; } &&
    cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
} >"$build_log" 2>&1 </dev/null; then
  echo "setup: the build failed; the end of $build_log:" >&2
  tail -n 25 "$build_log" | sed 's/^/  /' >&2
  exit 1
fi
echo "setup: built $build_dir/metalearn" >&2
