#!/usr/bin/env bash
# Installs what metalearn needs from Debian's packages (only what is missing) and builds it.
# Idempotent: on a machine that has everything it only runs an incremental build.
#
#   scripts/setup.sh              # release build in build/
#   scripts/setup.sh --sanitize   # ASan + UBSan build in build-asan/
#   scripts/setup.sh --test       # also what only the tests need (chromium, for the report check)
#   BUILD_TYPE=Debug scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}")
packages=(cmake g++ make libtorch-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev
          libgloo-dev libopenblas0-pthread)
for arg in "$@"; do
  case "$arg" in
    --sanitize)
      build_dir=build-asan
      cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DML_SANITIZE=ON)
      ;;
    --test) packages+=(chromium) ;;  # scripts/check_report.sh renders the HTML report with it
    *) echo "setup: unknown option $arg (expected --sanitize or --test)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${cmake_args[@]}" >&2
fi
cmake --build "$build_dir" -j"$(nproc)" >&2
echo "setup: built $build_dir/metalearn" >&2
