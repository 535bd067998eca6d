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

echo
echo "KMS API throughput: trent dev (1 host, 3 HSMs) vs moto, 1 and 16 clients (medians of 3 runs)"
# BenchmarkKMS runs each fixed-duration load once per call (TRENT_BENCH_SECONDS,
# 5 s by default): -benchtime 1x, and -count 3 for three samples each.
go test -c -o bench/dev.test ./dev/
./bench/dev.test -test.run '^$' -test.bench BenchmarkKMS -test.count 3 -test.benchtime 1x | tee bench/kms-raw.txt
# "sub-benchmark metric median", one line each.
grep '^BenchmarkKMS/' bench/kms-raw.txt |
  awk '{ n = $1; sub(/-[0-9]+$/, "", n)
         for (i = 3; i <= NF; i++) if ($i == "ops/s" || $i == "p50-ms" || $i == "p99-ms") print n, $i, $(i-1) }' |
  sort -k1,1 -k2,2 -k3,3g |
  awk 'function flush() { print prev, (n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2), n; n = 0 }
       { key = $1 " " $2; if (key != prev && prev != "") flush(); prev = key; v[++n] = $3 }
       END { if (n) flush() }' > bench/kms-medians.txt
awk '{ split($1, p, "/"); t = p[2]; sub(/^target=/, "", t); k = p[3] "/" p[4]; m[t, k, $2] = $3; runs[t, k] = $4; keys[k] = 1 }
     END {
       printf "%-32s %10s %8s %8s | %10s %8s %8s | %11s\n", "operation/clients", "trent op/s", "p50 ms", "p99 ms", "moto op/s", "p50 ms", "p99 ms", "trent/moto"
       split("op=Encrypt/clients=1 op=Encrypt/clients=16 op=Decrypt/clients=1 op=Decrypt/clients=16 op=GenerateDataKey/clients=1 op=GenerateDataKey/clients=16", order, " ")
       for (i = 1; i <= 6; i++) {
         k = order[i]
         if (!(k in keys)) continue
         tr = m["trent", k, "ops/s"]; mo = m["moto", k, "ops/s"]
         printf "%-32s %10.0f %8.2f %8.2f | ", k, tr, m["trent", k, "p50-ms"], m["trent", k, "p99-ms"]
         if (mo != "") printf "%10.0f %8.2f %8.2f | %10.1fx\n", mo, m["moto", k, "p50-ms"], m["moto", k, "p99-ms"], tr / mo
         else printf "%10s %8s %8s | %11s\n", "-", "-", "-", "(no moto)"
       }
       printf "(medians; trent runs per row: %s)\n", runs["trent", "op=Encrypt/clients=16"]
     }' bench/kms-medians.txt | tee bench/kms.txt

echo
echo "Sign and Verify per second, ECC_NIST_P256 and RSA_2048, 16 clients (medians of 3 runs)"
./bench/dev.test -test.run '^$' -test.bench BenchmarkSignVerify -test.count 3 -test.benchtime 1x | tee bench/sign-raw.txt
grep '^BenchmarkSignVerify/' bench/sign-raw.txt |
  awk '{ n = $1; sub(/-[0-9]+$/, "", n); for (i = 3; i <= NF; i++) if ($i == "ops/s") print n, $(i-1) }' |
  sort -k1,1 -k2,2g |
  awk '{ if ($1 != prev && prev != "") { print prev, (c % 2 ? v[(c+1)/2] : (v[c/2] + v[c/2+1]) / 2), "ops/s"; c = 0 } prev = $1; v[++c] = $2 }
       END { if (c) print prev, (c % 2 ? v[(c+1)/2] : (v[c/2] + v[c/2+1]) / 2), "ops/s" }' | tee bench/sign.txt

echo
echo "Recipient GenerateDataKey beside plain GenerateDataKey and the bound of its public-key work, 16 clients (medians of 3 runs)"
./bench/dev.test -test.run '^$' -test.bench BenchmarkRecipient -test.count 3 -test.benchtime 1x | tee bench/recipient-raw.txt
grep '^BenchmarkRecipient/' bench/recipient-raw.txt |
  awk '{ n = $1; sub(/-[0-9]+$/, "", n); for (i = 3; i <= NF; i++) if ($i ~ /ops\/s$/ || $i ~ /^of-/ || $i ~ /^cpu-/) print n, $i, $(i-1) }' |
  sort -k1,1 -k2,2 -k3,3g |
  awk 'function flush() { print prev, (c % 2 ? v[(c+1)/2] : (v[c/2] + v[c/2+1]) / 2); c = 0 }
       { key = $1 " " $2; if (key != prev && prev != "") flush(); prev = key; v[++c] = $3 }
       END { if (c) flush() }' | tee bench/recipient.txt
echo
echo "attestation document verification: cabundle cache on and off, one ES384 verification (GOMAXPROCS 1)"
go test -run '^$' -bench BenchmarkVerify -count "$count" -cpu 1 ./nitro/ | tee bench/nitro.txt
go run "$benchstat" bench/nitro.txt | tee bench/nitro-benchstat.txt

echo
echo "side by side with local-kms and moto (issue 17): trent dev in production shape, rounds interleaved, the bound, the floor and the target against it"
bash scripts/bench-peers.sh | tee bench/peers.txt
