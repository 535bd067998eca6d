// Package peers runs issue 17's side-by-side benchmark: the same SigV4-
// signed KMS loads (package kmsload) against Trent, as `trent dev` runs it
// in production shape (every HSM node and the service host a process of
// its own, the audit trail on), and against two peers, local-kms
// (nsmithuk/local-kms, the emulator most CI pipelines use) and moto's KMS
// server. It measures in the same run the bound (the primitives one
// request must pay) and the floor (the extra work Trent's design requires
// and local-kms does none of), and holds Trent to issue 17's target
// against that floor.
//
// # Method
//
// Run starts the three servers, each with one symmetric key under an
// alias, then for each load (Encrypt of 64 bytes, Decrypt of a ciphertext
// made before the clock starts, every answer checked, and GenerateDataKey
// AES_256; at 16 clients, then at 1) runs Config.Rounds rounds, and in
// each round every target in turn (trent, local-kms, moto, trent, …): a
// warm-up of the same load, then the measured load. A round's figures are
// requests per second, p50 and p99 over every request, errors, and the
// server's CPU per request: utime+stime from /proc/PID/stat before and
// after the measured load, summed over the server's whole process tree
// (for Trent the `trent dev` supervisor and every HSM and host process
// under it), divided by the requests answered. The load generator runs in
// the harness's process; its own CPU per request (getrusage) is reported
// beside. Cores says where each runs: split (the load generator on half
// the CPUs, every server process on the rest; Cores.Apply, before any
// server starts) or shared (all of them on every CPU).
//
// An extra target, trent-in-process (StartTrentInProcess), runs the same
// cluster as `trent dev --in-process`: every HSM node and the host in one
// process. It is not the production shape; beside Trent's row it gives
// the cost of the process hop by difference. Another, trent-nss
// (StartTrentNSS), is the production shape with the HSMs' tokens in NSS's
// softoken (`trent dev --hsm-module nss`): beside Trent's row it gives the
// cost of the PKCS#11 module.
//
// # The bound
//
// Bound measures, on one goroutine, what no implementation of Trent's
// design can skip per request: SigV4 verification of a signed Encrypt
// request with the signing key cached (minimal code in this package:
// canonical request, two SHA-256, one HMAC), one HMAC-SHA256 in the token
// through PKCS#11 (hsm's BenchmarkHMAC64, impl=backend, on SoftHSM: the
// per-ciphertext key K), AES-256-GCM of 64 bytes under a fresh key in Go
// (key schedule included: K is new per ciphertext), and one session
// envelope round trip (session's BenchmarkEnvelope: host seal, HSM open,
// response seal, host open). The HSM hop is batched, so a request pays a
// fraction of the envelope; counting a whole one makes the bound larger
// and Trent's multiple of it smaller.
//
// # The floor and the target
//
// MeasureFloor measures the bound and, beside it, the rest of the extra
// work per request that local-kms does none of: the audit record (audit's
// BenchmarkEvent/Redact and /Write), the read barrier on one host (host's
// BenchmarkReadBarrierOneHost: CPU per barrier at 16 readers, time per
// barrier at 1), and the bare process hop (kmsload/cmd/hopfloor: a
// 68-byte message and its echo between two processes over TCP loopback,
// no batching; CPU of both at 16 callers, time at 1). Bound.Floor sums the
// medians of FloorParts (SigV4, the token's HMAC, the envelope, the audit
// record, the barrier at 16 and the hop at 16: not AES-GCM, which
// local-kms does too); Bound.SerialExtra sums those of SerialParts (the
// same with the hop and the barrier at 1 caller, in time).
//
// TargetRows holds each load on which both trent and local-kms ran to the
// target docs/benchmarks.md proposes ("Issue 17's target against the
// design's floor"), from the medians of the rounds: at more than one
// client, Trent's CPU per request ≤ local-kms's + the floor, and its
// requests per second, as a ratio to local-kms's, ≥ PredictedRatio (what
// that CPU allows when both servers are CPU-bound: local-kms CPU ÷ target
// CPU on cores of their own, (local-kms CPU + its client CPU) ÷ (target
// CPU + Trent's client CPU) on cores shared with the load generator); at
// 1 client, Trent's p50 ≤ local-kms's + the serial extra. TargetTable
// prints it.
//
// # Limits
//
// Linux only (/proc). local-kms listens on every interface: Run expects to
// be in a private network namespace (see Isolated; the kmspeers command
// re-executes itself under `unshare -n`) and warns otherwise. Nothing here
// is safe for concurrent use.
package peers
