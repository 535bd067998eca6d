#!/usr/bin/env bash
# Issue 17's side-by-side benchmark, alone or from make bench: Trent as
# `trent dev` (3 HSM processes, 1 host process, audit trail on) beside
# local-kms (installed at a pinned version into bench/gobin) and moto,
# rounds interleaved, with the bound and the floor measured in the same run
# and, when trent and local-kms both run, issue 17's target against the
# floor (docs/benchmarks.md). It runs in a private network namespace
# (unshare -n) where permitted, and says so where not. Writes
# bench/peers/table.md (and the raw samples) and prints the table. Arguments go to kmspeers (go doc ./kmsload/cmd/kmspeers), e.g.
#   scripts/bench-peers.sh -duration 3s -rounds 1 -loads Encrypt/16
#   scripts/bench-peers.sh -profile 10s     # then CPU profiles of the host and the HSMs (under Encrypt/16;
#                                           # -profile-load Decrypt/16 for another load)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/peers/bin
go build -o bench/peers/bin/kmspeers ./kmsload/cmd/kmspeers
exec ./bench/peers/bin/kmspeers -rounds "${PEERS_ROUNDS:-3}" -duration "${PEERS_DURATION:-8s}" "$@"
