#!/usr/bin/env bash
# make bench: the backend against bare miekg/pkcs11 calls in the same run
# (benchstat compares the impl=bare and impl=backend columns), then the
# scaling check: one process with two goroutines against two processes with
# one goroutine each, bare calls, so the module's own behaviour is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCHCOUNT:-6}
benchstat=${BENCHSTAT:?}
mkdir -p bench
go test -c -o bench/hsm.test ./hsm/
# One pass per count, so that bare and backend samples alternate in time and
# the drift of a shared machine falls on both columns alike.
: > bench/hsm.txt
for i in $(seq "$count"); do
  echo "bench: pass $i/$count" >&2
  ./bench/hsm.test -test.run '^$' -test.bench . -test.count 1 -test.cpu 1,2 | tee -a bench/hsm.txt
done
go run "$benchstat" -col /impl bench/hsm.txt | tee bench/hsm-benchstat.txt

echo
echo "scaling: GCM64 and HMAC64 bare, 1 process x 2 goroutines vs 2 processes x 1 goroutine"
for b in GCM64Parallel HMAC64Parallel; do
  ./bench/hsm.test -test.run '^$' -test.bench "$b/impl=bare" -test.count "$count" -test.cpu 1 > "bench/$b-1proc-1g.txt"
  ./bench/hsm.test -test.run '^$' -test.bench "$b/impl=bare" -test.count "$count" -test.cpu 2 > "bench/$b-1proc-2g.txt"
  ./bench/hsm.test -test.run '^$' -test.bench "$b/impl=bare" -test.count "$count" -test.cpu 1 > "bench/$b-2proc-a.txt" &
  ./bench/hsm.test -test.run '^$' -test.bench "$b/impl=bare" -test.count "$count" -test.cpu 1 > "bench/$b-2proc-b.txt"
  wait
  median() { grep '^Benchmark' "$@" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  one=$(median "bench/$b-1proc-1g.txt")
  two_g=$(median "bench/$b-1proc-2g.txt")
  two_p=$(median "bench/$b-2proc-a.txt" "bench/$b-2proc-b.txt")
  # ns/op of RunParallel is wall time per operation of all goroutines; two
  # processes each report their own, so their aggregate is half of it.
  awk -v b="$b" -v one="$one" -v g="$two_g" -v p="$two_p" 'BEGIN {
    printf "%-16s 1 goroutine %8.0f ns/op | 1 process, 2 goroutines %8.0f ns/op (throughput x%.2f) | 2 processes %8.0f ns/op each (throughput x%.2f)\n",
      b, one, g, one/g, p, 2*one/p }' | tee -a bench/scaling.txt
done

echo
echo "session: handshakes against the bound of their primitives, envelope round trips (GOMAXPROCS 1)"
go test -c -o bench/session.test ./session/
: > bench/session.txt
for i in $(seq "$count"); do
  echo "bench: session pass $i/$count" >&2
  ./bench/session.test -test.run '^$' -test.bench . -test.count 1 -test.cpu 1 | tee -a bench/session.txt
done
go run "$benchstat" -col /impl -filter '.name:Handshake' bench/session.txt | tee bench/session-benchstat.txt
go run "$benchstat" -filter '-.name:Handshake' bench/session.txt | tee -a bench/session-benchstat.txt

echo
echo "domain tokens (3, 10, 100 members) and EKT re-encryption (GOMAXPROCS 1)"
go test -c -o bench/node.test ./hsm/node/
: > bench/node.txt
for i in $(seq "$count"); do
  echo "bench: node pass $i/$count" >&2
  ./bench/node.test -test.run '^$' -test.bench . -test.count 1 -test.cpu 1 | tee -a bench/node.txt
done
go run "$benchstat" bench/node.txt | tee bench/node-benchstat.txt

echo
echo "quorum command commit on 3 hosts and 2 HSMs, beside bare raft Apply (40 commands per run)"
go test -c -o bench/host.test ./host/
: > bench/host.txt
for i in $(seq "$count"); do
  ./bench/host.test -test.run '^$' -test.bench Commit -test.benchtime 40x -test.count 1 | tee -a bench/host.txt
done
go run "$benchstat" bench/host.txt | tee bench/host-benchstat.txt
