#!/usr/bin/env bash
# make test's test step: every package with the race detector, on real
# SoftHSM tokens. Prints the per-package results (the whole log if anything
# failed) and ends with one line counting tests and subtests.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test -race -count=1 -v ./... > "$log" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$log"
else
  grep -E '^(ok|FAIL|\?) ' "$log"
fi
passed=$(grep -cE '^[[:space:]]*--- PASS' "$log")
failed=$(grep -cE '^[[:space:]]*--- FAIL' "$log")
echo "tests: $passed passed, $failed failed"
exit "$rc"
