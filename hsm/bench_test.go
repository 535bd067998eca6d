package hsm_test

import (
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"syscall"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

// Each benchmark runs the same mechanism twice in one process: impl=bare
// through direct miekg/pkcs11 calls on a session of its own, impl=backend
// through this package. `make bench` compares the two columns with
// benchstat; docs/benchmarks.md records the medians and ratios.

type benchEnv struct {
	tok   *hsm.Token
	id    *hsm.Identity
	aes   *hsm.SecretKey
	mac   *hsm.SecretKey
	peer  []byte
	ctx   *pkcs11.Ctx
	slot  uint
	msg64 []byte
}

func newBenchEnv(b *testing.B) *benchEnv {
	tok := softhsmtest.NewToken(b)
	id, _, err := tok.EnsureIdentity()
	if err != nil {
		b.Fatal(err)
	}
	aes, err := tok.GenerateSecretKey(hsm.AES256)
	if err != nil {
		b.Fatal(err)
	}
	mac, err := tok.GenerateSecretKey(hsm.HMACSHA256)
	if err != nil {
		b.Fatal(err)
	}
	peer, _ := ecdh.P384().GenerateKey(rand.Reader)
	ctx, slot := tok.Raw()
	return &benchEnv{tok: tok, id: id, aes: aes, mac: mac, peer: peer.PublicKey().Bytes(), ctx: ctx, slot: slot, msg64: make([]byte, 64)}
}

func (e *benchEnv) session(b *testing.B) pkcs11.SessionHandle {
	s, err := e.ctx.OpenSession(e.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.ctx.CloseSession(s) })
	return s
}

func check(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

// Bare operations: exactly the PKCS#11 calls the backend makes.

func (e *benchEnv) bareSign(s pkcs11.SessionHandle, d []byte) error {
	if err := e.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, e.id.Signing.PrivateHandle()); err != nil {
		return err
	}
	_, err := e.ctx.Sign(s, d)
	return err
}

func (e *benchEnv) bareDerive(s pkcs11.SessionHandle) error {
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 48),
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(pkcs11.CKD_NULL, nil, e.peer))}
	h, err := e.ctx.DeriveKey(s, mech, e.id.Agreement.PrivateHandle(), tmpl)
	if err != nil {
		return err
	}
	_, err = e.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	e.ctx.DestroyObject(s, h)
	return err
}

func (e *benchEnv) bareGCM(s pkcs11.SessionHandle, nonce []byte) error {
	p := pkcs11.NewGCMParams(nonce, nil, 128)
	defer p.Free()
	if err := e.ctx.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, p)}, pkcs11.ObjectHandle(e.aes.Handle())); err != nil {
		return err
	}
	_, err := e.ctx.Encrypt(s, e.msg64)
	return err
}

func (e *benchEnv) bareHMAC(s pkcs11.SessionHandle) error {
	if err := e.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, pkcs11.ObjectHandle(e.mac.Handle())); err != nil {
		return err
	}
	_, err := e.ctx.Sign(s, e.msg64)
	return err
}

func BenchmarkSign(b *testing.B) {
	e := newBenchEnv(b)
	d := digest("bench")
	b.Run("impl=bare", func(b *testing.B) {
		s := e.session(b)
		for b.Loop() {
			check(b, e.bareSign(s, d))
		}
	})
	b.Run("impl=backend", func(b *testing.B) {
		for b.Loop() {
			_, err := e.id.Signing.Sign(nil, d, crypto.SHA384)
			check(b, err)
		}
	})
}

func BenchmarkDerive(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("impl=bare", func(b *testing.B) {
		s := e.session(b)
		for b.Loop() {
			check(b, e.bareDerive(s))
		}
	})
	b.Run("impl=backend", func(b *testing.B) {
		for b.Loop() {
			z, err := e.id.Agreement.ECDH(e.peer)
			check(b, err)
			clear(z)
		}
	})
}

func BenchmarkGCM64(b *testing.B) {
	e := newBenchEnv(b)
	nonce := make([]byte, 12)
	b.Run("impl=bare", func(b *testing.B) {
		s := e.session(b)
		b.SetBytes(64)
		for b.Loop() {
			check(b, e.bareGCM(s, nonce))
		}
	})
	b.Run("impl=backend", func(b *testing.B) {
		b.SetBytes(64)
		for b.Loop() {
			_, err := e.aes.Seal(nonce, e.msg64, nil)
			check(b, err)
		}
	})
}

func BenchmarkHMAC64(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("impl=bare", func(b *testing.B) {
		s := e.session(b)
		b.SetBytes(64)
		cpu0 := processCPU()
		for b.Loop() {
			check(b, e.bareHMAC(s))
		}
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("impl=backend", func(b *testing.B) {
		b.SetBytes(64)
		cpu0 := processCPU()
		for b.Loop() {
			_, err := e.mac.MAC(e.msg64)
			check(b, err)
		}
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

func BenchmarkRandom32(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("impl=bare", func(b *testing.B) {
		s := e.session(b)
		for b.Loop() {
			_, err := e.ctx.GenerateRandom(s, 32)
			check(b, err)
		}
	})
	b.Run("impl=backend", func(b *testing.B) {
		for b.Loop() {
			_, err := e.tok.Random(32)
			check(b, err)
		}
	})
}

// The parallel benchmarks run GOMAXPROCS goroutines (make bench uses -cpu
// 1,2): the bare side gives each goroutine a session of its own, the
// backend shares its pool. Throughput should grow with the core count.

func BenchmarkGCM64Parallel(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("impl=bare", func(b *testing.B) {
		b.SetBytes(64)
		b.RunParallel(func(pb *testing.PB) {
			s, err := e.ctx.OpenSession(e.slot, pkcs11.CKF_SERIAL_SESSION)
			check(b, err)
			defer e.ctx.CloseSession(s)
			nonce := make([]byte, 12)
			for pb.Next() {
				check(b, e.bareGCM(s, nonce))
			}
		})
	})
	b.Run("impl=backend", func(b *testing.B) {
		b.SetBytes(64)
		b.RunParallel(func(pb *testing.PB) {
			nonce := make([]byte, 12)
			for pb.Next() {
				_, err := e.aes.Seal(nonce, e.msg64, nil)
				check(b, err)
			}
		})
	})
}

func BenchmarkHMAC64Parallel(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("impl=bare", func(b *testing.B) {
		b.SetBytes(64)
		b.RunParallel(func(pb *testing.PB) {
			s, err := e.ctx.OpenSession(e.slot, pkcs11.CKF_SERIAL_SESSION)
			check(b, err)
			defer e.ctx.CloseSession(s)
			for pb.Next() {
				check(b, e.bareHMAC(s))
			}
		})
	})
	b.Run("impl=backend", func(b *testing.B) {
		b.SetBytes(64)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, err := e.mac.MAC(e.msg64)
				check(b, err)
			}
		})
	})
}

// BenchmarkPoolOverhead measures what the backend adds around a PKCS#11
// call (closed check, borrowing and returning a session, error mapping),
// serially and from GOMAXPROCS goroutines at once.
func BenchmarkPoolOverhead(b *testing.B) {
	tok := softhsmtest.NewToken(b)
	nop := func() error { return nil }
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			check(b, tok.Do("nop", nop))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				check(b, tok.Do("nop", nop))
			}
		})
	})
}

// BenchmarkHMACKeyAttributes measures C_SignInit + C_Sign (HMAC-SHA256 of
// 64 bytes) on two session objects that differ only in CKA_PRIVATE:
// SoftHSM keeps a private object's CKA_VALUE encrypted under its token key
// and decrypts it (AES-256-CBC) at every C_SignInit. The HMAC is the same.
func BenchmarkHMACKeyAttributes(b *testing.B) {
	e := newBenchEnv(b)
	s := e.session(b)
	for _, private := range []bool{true, false} {
		h, err := e.ctx.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, private),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, make([]byte, 32)),
		})
		check(b, err)
		name := "private=false"
		if private {
			name = "private=true"
		}
		b.Run(name, func(b *testing.B) {
			cpu0 := processCPU()
			for b.Loop() {
				check(b, e.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, h))
				_, err := e.ctx.Sign(s, e.msg64)
				check(b, err)
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the process's user and system CPU time so far, in ns: on a
// shared machine, CPU per operation varies less than time per operation.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
