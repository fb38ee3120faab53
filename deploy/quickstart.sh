#!/usr/bin/env bash
# The main job on the bundled example data: installs dependencies, builds,
# checks the example price plans, and prices the example call events of every
# customer under its plan and contract terms, printing one invoice per
# customer and month.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
echo
echo "== tally plan validate deploy/plans/*.yaml"
./build/tally plan validate deploy/plans/*.yaml
echo
echo "== tally rate (example events under the example plans and subscriptions)"
set +e
./build/tally rate \
  --plan deploy/plans/doubao-seed-1.6.yaml --plan deploy/plans/deepseek.yaml \
  --plan deploy/plans/gemini-2.5-pro.yaml --plan deploy/plans/qwen-plus.yaml \
  --subscriptions deploy/subscriptions.yaml \
  --events deploy/events/doubao.jsonl --events deploy/events/deepseek.jsonl \
  --events deploy/events/gemini.jsonl --events deploy/events/qwen.jsonl
code=$?
set -e
# Exit code 3 means some example lines were rejected, which the examples do
# on purpose (a truncated line, a prompt above the top band, ...).
if [ $code -ne 0 ] && [ $code -ne 3 ]; then exit $code; fi
echo
echo "The same as JSON: add --format json. Rejected lines are listed with their file, line and reason."
