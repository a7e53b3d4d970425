#!/usr/bin/env bash
# Installs what metalearn needs from Debian's packages (only what is missing) and builds it.
# Idempotent: on a machine that has everything it only runs an incremental build.
#
#   scripts/setup.sh              # release build in build/
#   scripts/setup.sh --sanitize   # ASan + UBSan build in build-asan/
#   scripts/setup.sh --test       # also what only the tests need (chromium for the report check,
#                                 # lintian and dpkg-dev for the .deb check)
#   scripts/setup.sh --fuzz       # also clang and libFuzzer (scripts/fuzz.sh)
#   scripts/setup.sh --deps-only  # install the missing packages, do not build
#   BUILD_TYPE=Debug scripts/setup.sh
#
# apt's output goes to BUILD_DIR/setup-apt.log (or $SETUP_LOG); the terminal gets one summary line, or on failure
# the log's last lines and its path (exit status 1).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}")
packages=(cmake g++ make libtorch-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
          libgtest-dev libgloo-dev libopenblas0-pthread libopenblas-dev libboost-math-dev
          libxxhash-dev help2man)
build=1
for arg in "$@"; do
  case "$arg" in
    --sanitize)
      build_dir=build-asan
      cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DML_SANITIZE=ON)
      ;;
    # chromium: scripts/check_report.sh renders the HTML report; lintian, dpkg-dev: the .deb check
    --test) packages+=(chromium lintian dpkg-dev) ;;
    --fuzz) packages+=(clang libclang-rt-dev) ;;
    --deps-only) build=0 ;;
    *) echo "setup: unknown option $arg (expected --sanitize, --test, --fuzz or --deps-only)" >&2; exit 2 ;;
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

if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${cmake_args[@]}" >&2
fi
cmake --build "$build_dir" -j"$(nproc)" >&2
echo "setup: built $build_dir/metalearn" >&2
