#!/usr/bin/env bash
# The test command: installs dependencies, builds, runs every test suite with
# ctest, then runs each libFuzzer target for TALLY_FUZZ_SECONDS (default 30)
# from its seed corpus in an instrumented clang build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
echo "== unit, integration, property and golden tests"
(cd build && ctest --output-on-failure -j "$(nproc)")
echo "== fuzz targets (clang, ASan + UBSan), ${TALLY_FUZZ_SECONDS:-30} s each"
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_FUZZ=ON -DTALLY_TESTS=OFF \
    -DTALLY_FUZZ_SECONDS="${TALLY_FUZZ_SECONDS:-30}" >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_event fuzz_plan
(cd build-fuzz && ctest --output-on-failure)
