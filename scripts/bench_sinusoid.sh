#!/usr/bin/env bash
# The MAML paper's sinusoid regression at full size (the test suite runs a short version).
# Prints query MSE after 0, 1, 5 and 10 adaptation steps for MAML and the pretrained baseline.
#   scripts/bench_sinusoid.sh [iterations (default 20000)] [algorithm (default maml)]
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."
scripts/setup.sh
build/metalearn_sinusoid "${1:-20000}" "${2:-maml}"
