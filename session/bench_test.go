package session_test

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"syscall"
	"testing"

	"github.com/trentkms/trent/session"
)

// BenchmarkHandshake measures full C(2,2) handshakes with both ends in one
// process on SoftHSM tokens (the host's identity key in a token of its
// own), and in the same run the bound: the primitives the two ends must pay
// and nothing else. docs/benchmarks.md records the ratio bound/handshake.
func BenchmarkHandshake(b *testing.B) {
	w := newWorld(b)
	b.Run("impl=handshake", func(b *testing.B) {
		for b.Loop() {
			p, hello, err := w.host.Begin()
			if err != nil {
				b.Fatal(err)
			}
			reply, err := w.hsm1.Handshake(hello)
			if err != nil {
				b.Fatal(err)
			}
			s, err := p.Finish(reply)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("impl=bound", func(b *testing.B) {
		d := sha512.Sum384([]byte("m"))
		hostSigner := w.host.Signer
		hsmSigner := w.hsm1Keys.Signing
		sig, err := hsmSigner.Sign(nil, d[:], crypto.SHA384)
		if err != nil {
			b.Fatal(err)
		}
		hostPub := hostSigner.Public().(*ecdsa.PublicKey)
		hostSig, _ := hostSigner.Sign(nil, d[:], crypto.SHA384)
		for b.Loop() {
			// Host: ephemeral key pair and Sig1.
			d1, _ := ecdh.P384().GenerateKey(rand.Reader)
			if _, err := hostSigner.Sign(nil, d[:], crypto.SHA384); err != nil {
				b.Fatal(err)
			}
			// HSM: verify Sig1, make d2 and Z in the token, sign Sig2.
			ecdsa.VerifyASN1(hostPub, d[:], hostSig)
			d2, err := w.hsm1Tok.GenerateEphemeralAgreementKey()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := d2.ECDH(d1.PublicKey().Bytes()); err != nil {
				b.Fatal(err)
			}
			if _, err := hsmSigner.Sign(nil, d[:], crypto.SHA384); err != nil {
				b.Fatal(err)
			}
			// Host: verify Sig2, compute Z.
			ecdsa.VerifyASN1(hsmSigner.PublicKey(), d[:], sig)
			d1.ECDH(d2.PublicKey())
			b.StopTimer()
			d2.Destroy() // the handshake destroys d2 too; the bound leaves it out
			b.StartTimer()
		}
	})
}

// BenchmarkHybridHandshake is BenchmarkHandshake for the hybrid
// (ML-KEM-1024 + P-384) handshake, with its bound: the classical bound's
// primitives plus the host's ML-KEM key generation and decapsulation and
// the HSM's key check and encapsulation. docs/benchmarks.md ("2026-12-02:
// hybrid sessions") compares the two.
func BenchmarkHybridHandshake(b *testing.B) {
	w := newWorld(b)
	host := *w.host
	host.Hybrid = func() bool { return true }
	b.Run("impl=handshake", func(b *testing.B) {
		for b.Loop() {
			p, hello, err := host.Begin()
			if err != nil {
				b.Fatal(err)
			}
			reply, err := w.hsm1.Handshake(hello)
			if err != nil {
				b.Fatal(err)
			}
			s, err := p.Finish(reply)
			if err != nil {
				b.Fatal(err)
			}
			if !s.Hybrid {
				b.Fatal("not hybrid")
			}
			s.Close()
		}
	})
	b.Run("impl=bound", func(b *testing.B) {
		d := sha512.Sum384([]byte("m"))
		hostSigner := w.host.Signer
		hsmSigner := w.hsm1Keys.Signing
		sig, err := hsmSigner.Sign(nil, d[:], crypto.SHA384)
		if err != nil {
			b.Fatal(err)
		}
		hostPub := hostSigner.Public().(*ecdsa.PublicKey)
		hostSig, _ := hostSigner.Sign(nil, d[:], crypto.SHA384)
		seed := make([]byte, session.KEMSeedSize)
		m := make([]byte, 32)
		for b.Loop() {
			// Host: ephemeral key pairs (P-384, ML-KEM-1024) and Sig1.
			d1, _ := ecdh.P384().GenerateKey(rand.Reader)
			rand.Read(seed)
			dk, ekBytes, err := session.KEMKeyFromSeed(seed)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := hostSigner.Sign(nil, d[:], crypto.SHA384); err != nil {
				b.Fatal(err)
			}
			// HSM: verify Sig1, check ek and encapsulate, make d2 and Z in
			// the token, sign Sig2.
			ecdsa.VerifyASN1(hostPub, d[:], hostSig)
			ek, err := session.ParseKEMKey(ekBytes)
			if err != nil {
				b.Fatal(err)
			}
			rand.Read(m)
			ct, ss := make([]byte, session.KEMCiphertextSize), make([]byte, 32)
			ek.EncapsulateTo(ct, ss, m)
			d2, err := w.hsm1Tok.GenerateEphemeralAgreementKey()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := d2.ECDH(d1.PublicKey().Bytes()); err != nil {
				b.Fatal(err)
			}
			if _, err := hsmSigner.Sign(nil, d[:], crypto.SHA384); err != nil {
				b.Fatal(err)
			}
			// Host: verify Sig2, compute Z and decapsulate.
			ecdsa.VerifyASN1(hsmSigner.PublicKey(), d[:], sig)
			d1.ECDH(d2.PublicKey())
			dk.DecapsulateTo(ss, ct)
			b.StopTimer()
			d2.Destroy()
			b.StartTimer()
		}
	})
}

// BenchmarkHybridAddition is what the hybrid handshake adds to the
// classical one, in Go alone: the host's ML-KEM-1024 key from a seed, the
// HSM's check of the encapsulation key and its encapsulation, the host's
// decapsulation, and the two SHA-384 hashes of ek and ct in FixedInfo.
func BenchmarkHybridAddition(b *testing.B) {
	seed := make([]byte, session.KEMSeedSize)
	m := make([]byte, 32)
	rand.Read(seed)
	rand.Read(m)
	for b.Loop() {
		dk, ekBytes, err := session.KEMKeyFromSeed(seed)
		if err != nil {
			b.Fatal(err)
		}
		ek, err := session.ParseKEMKey(ekBytes)
		if err != nil {
			b.Fatal(err)
		}
		ct, ss := make([]byte, session.KEMCiphertextSize), make([]byte, 32)
		ek.EncapsulateTo(ct, ss, m)
		dk.DecapsulateTo(ss, ct)
		sha512.Sum384(ekBytes)
		sha512.Sum384(ct)
	}
}

// BenchmarkEnvelope measures enveloped round trips of an empty command with
// the session cached: host Seal, HSM Open, response Seal, host Open, in one
// process, on one core (make bench runs -cpu 1; the target and the figures
// are in docs/benchmarks.md, Sessions).
func BenchmarkEnvelope(b *testing.B) {
	w := newWorld(b)
	s := w.handshake(w.host, w.hsm1)
	for b.Loop() {
		req, _, err := s.Seal(cmdEcho, nil)
		if err != nil {
			b.Fatal(err)
		}
		r, err := w.hsm1.Open(req)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := r.Seal(nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Open(req, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnvelopeHTTP2 is the same round trip over HTTP/2 on loopback
// (an HSM that serves only HTTP, to which the client falls back), one
// connection, GOMAXPROCS goroutines at once.
func BenchmarkEnvelopeHTTP2(b *testing.B) {
	w := newWorld(b)
	benchTransport(b, w, httpOnlyHSM(b, w), 0)
}

// BenchmarkEnvelopeFrames is the same over frames (frame.go), with 1
// caller (latency) and GOMAXPROCS callers.
func BenchmarkEnvelopeFrames(b *testing.B) {
	w := newWorld(b)
	u1, _ := serveB(b, w.hsm1)
	b.Run("callers=1", func(b *testing.B) { benchTransport(b, w, u1, 1) })
	b.Run("callers=procs", func(b *testing.B) { benchTransport(b, w, u1, 0) })
}

// benchTransport runs envelopes to url, from one goroutine if callers is
// 1, else from GOMAXPROCS.
func benchTransport(b *testing.B, w *world, url string, callers int) {
	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{url}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Do(ctx, cmdEcho, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	defer func() { b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op") }()
	b.ResetTimer()
	if callers == 1 {
		for b.Loop() {
			if _, err := c.Do(ctx, cmdEcho, nil); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Do(ctx, cmdEcho, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// processCPU is the process's user and system CPU time so far, in ns: on a
// shared machine, CPU per operation varies less than time per operation.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
