#!/usr/bin/env bash
# Installs everything Tally needs to build, test and run, from Debian 12
# packages only. Safe to run again: it installs only what is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  ccache                                   # deploy/ccache.sh: a rebuild compiles only what changed
  python3                                  # test scripts (float ban, e2e comparisons)
  clang libclang-rt-14-dev                 # libFuzzer and sanitizers for the fuzz targets
  libfmt-dev libyaml-cpp-dev libsimdjson-dev libhowardhinnant-date-dev tzdata
  libcli11-dev
  libboost1.81-dev                         # Boost.Beast and Asio (tally serve), headers only
  curl                                     # tests/e2e/serve_e2e.sh talks to tally serve with it
  wrk                                      # bench/serve_bench.sh: HTTP load on tally serve
  chromium                                 # tests/browser: headless chromium driven by playwright-core (npm ci)
  libgtest-dev libgmock-dev
  libpqxx-dev librdkafka-dev postgresql-15   # the ledger and the Kafka consumer
  libssl-dev                               # SHA-256 (dedup keys)
  libpango1.0-dev libcairo2-dev            # the invoice PDF (render/: pangocairo)
  fonts-noto-cjk                           # its font, Noto Sans CJK SC: Chinese names must render
  poppler-utils                            # pdftotext, pdffonts, pdfinfo, pdftoppm: the PDF tests read it back
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm for tests/browser: Debian's nodejs and npm, unless a node
# with its own npm is installed already (NodeSource's nodejs bundles npm
# and conflicts with Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
