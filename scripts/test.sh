#!/usr/bin/env bash
# make test's test step: every package with the race detector, on real
# SoftHSM tokens. Prints the per-package results (the whole log if anything
# failed) and ends with one line counting tests and subtests.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
overlay=$(mktemp -d)
trap 'rm -rf "$log" "$overlay"' EXIT
go test -race -count=1 -v ./... > "$log" 2>&1
rc=$?
# The conformance suites' mutation tests: a test build (-tags
# trentmutation) of the product files patched with their mutants (the
# overlay internal/mutation/cmd/mkoverlay writes), in which each check's
# mutation must fail that check and no other (internal/mutation). Without
# -race: each runs a suite once per check.
if [ "$rc" -eq 0 ]; then
  go run ./internal/mutation/cmd/mkoverlay -o "$overlay" >> "$log" 2>&1 &&
    go test -count=1 -v -tags trentmutation -overlay "$overlay/overlay.json" -run 'TestMutation' ./conformance/... >> "$log" 2>&1
  rc=$?
fi
if [ "$rc" -ne 0 ]; then
  cat "$log"
else
  grep -aE '^(ok|FAIL|\?) ' "$log"
fi
passed=$(grep -acE '^[[:space:]]*--- PASS' "$log")
failed=$(grep -acE '^[[:space:]]*--- FAIL' "$log")
echo "tests: $passed passed, $failed failed"
exit "$rc"
