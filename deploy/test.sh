#!/usr/bin/env bash
# The test command: installs dependencies, builds, runs every test suite with
# ctest; then the unit and ledger tests again under ASan + UBSan, the consume
# crash scenario under TSan, and each libFuzzer target for TALLY_FUZZ_SECONDS
# (default 30) from its seed corpus in an instrumented clang build.
# TALLY_SANITIZERS=0 skips the sanitizer builds (for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash deploy/install-deps.sh
bash deploy/build.sh
source deploy/ccache.sh
jobs=$(nproc)
echo "== unit, integration, property and golden tests"
(cd build && ctest --output-on-failure -j "$jobs")
if [ "${TALLY_SANITIZERS:-1}" != 0 ]; then
  echo "== unit and ledger tests under ASan + UBSan"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_SANITIZE=address "${TALLY_LAUNCHER[@]}" >/dev/null
  cmake --build build-asan -j "$jobs" --target tally_base_tests tally_pricing_tests tally_ingest_tests \
    tally_property_tests tally_ledger_tests tally_render_tests tally_billing_tests tally_app_tests tally_quote_tests \
    tally_documents_tests tally_api_tests
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$root/tests/lsan.supp" ctest --output-on-failure -j "$jobs" -L 'unit|ledger')
  echo "== the consume crash scenario under TSan"
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_SANITIZE=thread -DTALLY_TESTS=OFF \
    "${TALLY_LAUNCHER[@]}" >/dev/null
  cmake --build build-tsan -j "$jobs" --target tally
  state=$(mktemp -d)/pg.state
  bash tests/ledger/pg_fixture.sh start "$state"
  trap 'bash tests/ledger/pg_fixture.sh stop "$state"' EXIT
  TSAN_OPTIONS="halt_on_error=1 exitcode=66 history_size=4 suppressions=$root/tests/tsan.supp" \
    bash tests/e2e/consume_e2e.sh build-tsan/tally "$PWD" "$state" crash
  echo "== tally serve and its usage refresher under TSan, while consume bills"
  TSAN_OPTIONS="halt_on_error=1 exitcode=66 history_size=4 suppressions=$root/tests/tsan.supp" \
    bash tests/e2e/serve_tsan.sh build-tsan/tally "$PWD" "$state"
  bash tests/ledger/pg_fixture.sh stop "$state"
  trap - EXIT
fi
echo "== fuzz targets (clang, ASan + UBSan), ${TALLY_FUZZ_SECONDS:-30} s each (fuzz_http: TALLY_FUZZ_HTTP_SECONDS, 20 s)"
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_FUZZ=ON -DTALLY_TESTS=OFF \
    -DTALLY_FUZZ_SECONDS="${TALLY_FUZZ_SECONDS:-30}" -DTALLY_FUZZ_HTTP_SECONDS="${TALLY_FUZZ_HTTP_SECONDS:-20}" "${TALLY_LAUNCHER[@]}" >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz_event fuzz_plan fuzz_http
(cd build-fuzz && ctest --output-on-failure)
