package dev_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/kmsload"
)

// BenchmarkSignVerify measures Sign and Verify per second for
// ECC_NIST_P256 and RSA_2048 keys on a `trent dev` cluster (1 host, 3
// HSMs), with 16 aws-sdk-go-v2 clients for a fixed wall time
// (TRENT_BENCH_SECONDS, 5 s by default; the load runs once per call, as in
// BenchmarkKMS: use -benchtime 1x). Sign runs in the HSMs; Verify in the
// host, from the public key.
func BenchmarkSignVerify(b *testing.B) {
	wall := benchWall(b)
	cfg := startTrentTarget(b)
	hc := kmsload.NewHTTPClient(16)
	cl := kmsload.NewClient(cfg, hc)
	ctx := context.Background()
	msg := []byte("benchmark message")
	for _, c := range []struct {
		spec types.KeySpec
		alg  types.SigningAlgorithmSpec
	}{{types.KeySpecEccNistP256, types.SigningAlgorithmSpecEcdsaSha256}, {types.KeySpecRsa2048, types.SigningAlgorithmSpecRsassaPssSha256}} {
		md, err := cl.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: types.KeyUsageTypeSignVerify})
		if err != nil {
			b.Fatal(err)
		}
		sig, err := cl.Sign(ctx, &kms.SignInput{KeyId: md.KeyMetadata.KeyId, Message: msg, SigningAlgorithm: c.alg})
		if err != nil {
			b.Fatal(err)
		}
		for _, op := range []string{"Sign", "Verify"} {
			b.Run("spec="+string(c.spec)+"/op="+op, func(b *testing.B) {
				var ops, errs atomic.Int64
				deadline := time.Now().Add(wall)
				start := time.Now()
				var wg sync.WaitGroup
				for range 16 {
					w := kmsload.NewClient(cfg, hc)
					wg.Go(func() {
						for time.Now().Before(deadline) {
							var err error
							if op == "Sign" {
								_, err = w.Sign(ctx, &kms.SignInput{KeyId: md.KeyMetadata.KeyId, Message: msg, SigningAlgorithm: c.alg})
							} else {
								_, err = w.Verify(ctx, &kms.VerifyInput{KeyId: md.KeyMetadata.KeyId, Message: msg, Signature: sig.Signature, SigningAlgorithm: c.alg})
							}
							if err != nil {
								errs.Add(1)
								continue
							}
							ops.Add(1)
						}
					})
				}
				wg.Wait()
				if errs.Load() > 0 {
					b.Fatalf("%d errors", errs.Load())
				}
				b.ReportMetric(float64(ops.Load())/time.Since(start).Seconds(), "ops/s")
			})
		}
	}
}
