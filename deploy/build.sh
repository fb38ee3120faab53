#!/usr/bin/env bash
# Configures and builds Tally into build/ (warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
source deploy/ccache.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_WERROR=ON "${TALLY_LAUNCHER[@]}" >/dev/null
cmake --build build -j "$jobs"
