#!/usr/bin/env bash
# Extracts the build dependencies a machine without Debian's -dev packages lacks (the GPU
# machine of docs/CUDA.md: a pip PyTorch with CUDA and CMake, nothing else) from Debian 12's own
# packages, with `apt-get download` + `dpkg -x` (no root, nothing installed here), into one
# folder that travels with the source tree:
#   CLI11, nlohmann_json, spdlog and fmt (spdlog and fmt used header-only there: CMake option
#   ML_PORTABLE_DEPS; their shared libraries come along only because their CMake packages check
#   that the files they name exist); GoogleTest's sources (built with the pip LibTorch's C++ ABI flag);
#   xxHash, SentencePiece and ICU (headers and shared libraries; C or string-free interfaces towards the
#   tool, so their C++ ABI does not have to match LibTorch's); the Boost.Math headers the tool
#   includes, pruned to their include closure (all of Boost is ~170 MB unpacked).
# Usage: scripts/device_deps.sh [DEST]   (default .deps/device; git ignores .deps/)
# Prints the folder's size; scripts/gpu_check.sh expects it at .deps/device.
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."
dest=${1:-.deps/device}
packages=(libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev googletest libxxhash-dev
          libxxhash0 libsentencepiece-dev libsentencepiece0 libspdlog1.10 libfmt9 libicu-dev
          libicu72)
boost=libboost1.74-dev
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt-get download writes into the current folder, as the _apt user where it can.
chmod 777 "$work"
(cd "$work" && apt-get download -q "${packages[@]}" "$boost" >/dev/null)
rm -rf "$dest.partial"
mkdir -p "$dest.partial/root"
for package in "${packages[@]}"; do
  dpkg -x "$work/${package}"_*.deb "$dest.partial/root"
done
# Boost: only the headers that src/ includes, and what they include in turn.
dpkg -x "$work/${boost}"_*.deb "$work/boost"
boost_includes=$(grep -rhoE '#include <boost/[^>]+>' src tests bench | sort -u)
printf '%s\n#include <boost/version.hpp>\n' "$boost_includes" |
  g++ -std=c++17 -I "$work/boost/usr/include" -M -x c++ - 2>/dev/null |
  tr ' \\' '\n\n' | grep "^$work/boost/usr/include/boost/" | sort -u |
  while read -r header; do
    relative=${header#"$work/boost/"}
    mkdir -p "$dest.partial/root/$(dirname "$relative")"
    cp "$header" "$dest.partial/root/$relative"
  done
rm -rf "$dest"
mv "$dest.partial" "$dest"
du -sh "$dest"
