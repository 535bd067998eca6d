package dev_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/veraison/go-cose"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/host/kmsapi"
	"github.com/trentkms/trent/nitro"
)

// recipientDocs is how many distinct attestation documents the benchmark
// cycles through (an enclave SDK attests each request anew).
const recipientDocs = 512

// BenchmarkRecipient compares GenerateDataKey with a Recipient against
// plain GenerateDataKey and against the bound set by the public-key work
// a Recipient request costs Trent: four ES384 verifications (the leaf
// certificate and the document signature, in the host and again in the
// HSM; the cabundles are cached) and one RSA-OAEP encryption, run by as
// many goroutines as clients on the same cores, in the same run. Each
// sub-benchmark is one load of TRENT_BENCH_SECONDS (see BenchmarkKMS; run
// with -benchtime 1x). The recipient sub-benchmark reports of-bound, its
// throughput over the bound's.
func BenchmarkRecipient(b *testing.B) {
	wall := benchWall(b)
	const clients = 16
	dir, err := os.MkdirTemp("", "trent-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	c, err := dev.Start(dev.Options{Dir: dir, HSMs: 3, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Stop() })
	creds, err := kmsapi.ReadCredentials(filepath.Join(dir, "credentials.json"))
	if err != nil {
		b.Fatal(err)
	}
	cr := creds.Credentials[0]
	newClient := func() *kms.Client {
		return kms.NewFromConfig(aws.Config{Region: creds.Region, Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, "")},
			func(o *kms.Options) { o.BaseEndpoint = aws.String(c.KMSURL) })
	}
	ctx := context.Background()
	key, err := newClient().CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	sim, err := nitro.LoadSimCA(c.SimNSMFile)
	if err != nil {
		b.Fatal(err)
	}
	enclave, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&enclave.PublicKey)
	pcrs, _ := nitro.MeasureImage([]byte("benchmark enclave"))
	docs := make([][]byte, recipientDocs)
	for i := range docs {
		if docs[i], err = sim.Attest(nitro.AttestRequest{PCRs: nitro.EnclavePCRs(pcrs, false), PublicKey: spki, Time: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}

	// load runs op from clients goroutines for wall and returns ops/s.
	load := func(b *testing.B, op func(worker, i int) error) float64 {
		var ops, errs atomic.Int64
		var firstErr atomic.Value
		stop := time.Now().Add(wall)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range clients {
			wg.Go(func() {
				for i := w; time.Now().Before(stop); i += clients {
					if err := op(w, i); err != nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err)
						continue
					}
					ops.Add(1)
				}
			})
		}
		wg.Wait()
		if errs.Load() > 0 {
			b.Fatalf("%d errors, the first: %v", errs.Load(), firstErr.Load())
		}
		rate := float64(ops.Load()) / time.Since(start).Seconds()
		b.ReportMetric(rate, "ops/s")
		b.ReportMetric(1e9/rate, "ns/op")
		return rate
	}
	workers := make([]*kms.Client, clients)
	for i := range workers {
		workers[i] = newClient()
	}
	gdk := func(rcpt bool) func(w, i int) error {
		return func(w, i int) error {
			in := &kms.GenerateDataKeyInput{KeyId: key.KeyMetadata.KeyId, KeySpec: types.DataKeySpecAes256}
			if rcpt {
				in.Recipient = &types.RecipientInfo{AttestationDocument: docs[i%len(docs)], KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}
			}
			_, err := workers[w].GenerateDataKey(ctx, in)
			return err
		}
	}
	// Warm up both paths (sessions, caches, the heap), unreported.
	warm := wall
	wall = warmUp
	load(b, gdk(true))
	load(b, gdk(false))
	wall = warm

	// The bound: the primitives of the public-key work, on parsed
	// documents (parsing is not public-key work).
	type parsed struct {
		d   *nitro.Document
		msg *cose.Sign1Message
	}
	ps := make([]parsed, len(docs))
	for i, raw := range docs {
		d, msg, err := nitro.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = parsed{d, msg}
	}
	var bound float64
	b.Run("work=public-key-bound", func(b *testing.B) {
		bound = load(b, func(_, i int) error {
			p := ps[i%len(ps)]
			issuer := p.d.CABundle[len(p.d.CABundle)-1]
			ver, err := cose.NewVerifier(cose.AlgorithmES384, p.d.Certificate.PublicKey)
			if err != nil {
				return err
			}
			for range 2 { // the host, then the HSM
				if err := p.d.Certificate.CheckSignatureFrom(issuer); err != nil {
					return err
				}
				if err := p.msg.Verify(nil, ver); err != nil {
					return err
				}
			}
			var dk [32]byte
			_, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, &enclave.PublicKey, dk[:], nil)
			return err
		})
	})
	var plain float64
	b.Run("op=GenerateDataKey/recipient=no", func(b *testing.B) { plain = load(b, gdk(false)) })
	b.Run("op=GenerateDataKey/recipient=yes", func(b *testing.B) {
		r := load(b, gdk(true))
		if bound > 0 {
			b.ReportMetric(r/bound, "of-bound")
		}
		if plain > 0 {
			b.ReportMetric(r/plain, "of-plain")
		}
	})
}
