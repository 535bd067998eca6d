package dev_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/veraison/go-cose"

	"github.com/trentkms/trent/kmsload"
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
// many goroutines as clients on the same cores, in the same run: the
// three loads take turns in half-second slices. The
// clients send requests made and serialized before the load (SigV4-signed
// per request over net/http, as kmsload's signer client), so that the
// load generator takes little of the shared cores. Each
// sub-benchmark is one load of TRENT_BENCH_SECONDS (see BenchmarkKMS; run
// with -benchtime 1x). It reports the Recipient requests' ops/s, the
// plain requests' (plain-ops/s), the bound's (bound-ops/s) and the
// ratios of-bound and of-plain; beside them the process CPU time a
// Recipient request took (cpu-us/op: the cluster and the load generator
// run in this process) and the bound's CPU time per operation over it
// (cpu-of-bound).
func BenchmarkRecipient(b *testing.B) {
	wall := benchWall(b)
	const clients = 16
	c, creds := startBenchCluster(b)
	cr := creds.Credentials[0]
	ctx := context.Background()
	admin := kms.NewFromConfig(aws.Config{Region: creds.Region, Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, "")},
		func(o *kms.Options) { o.BaseEndpoint = aws.String(c.KMSURL) })
	key, err := admin.CreateKey(ctx, &kms.CreateKeyInput{})
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

	// load runs op from clients goroutines for d; it returns the
	// operations done, the time taken and the CPU time this process
	// spent (the cluster runs in it).
	load := func(b *testing.B, d time.Duration, op func(worker, i int) error) (int64, time.Duration, time.Duration) {
		var ops, errs atomic.Int64
		var firstErr atomic.Value
		cpu0 := processCPU(b)
		start := time.Now()
		stop := start.Add(d)
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
		took := time.Since(start)
		return ops.Load(), took, processCPU(b) - cpu0
	}
	// The load generator's requests are made once, before the load, and
	// each is signed (SigV4, the SDK's signer) and sent over net/http:
	// the clients share the cores with the cluster, so they do as little
	// as they can.
	hc := kmsload.NewHTTPClient(clients)
	signer := v4.NewSigner()
	awsCreds := aws.Credentials{AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.SecretAccessKey}
	type prepared struct {
		body []byte
		hash string
	}
	prepare := func(in any) prepared {
		body, err := json.Marshal(in)
		if err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(body)
		return prepared{body, hex.EncodeToString(sum[:])}
	}
	plainReq := prepare(map[string]any{"KeyId": *key.KeyMetadata.KeyId, "KeySpec": "AES_256"})
	rcptReqs := make([]prepared, len(docs))
	for i, d := range docs {
		rcptReqs[i] = prepare(map[string]any{"KeyId": *key.KeyMetadata.KeyId, "KeySpec": "AES_256",
			"Recipient": map[string]any{"AttestationDocument": d, "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}})
	}
	send := func(p prepared, wantField string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.KMSURL+"/", bytes.NewReader(p.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "TrentService.GenerateDataKey")
		if err := signer.SignHTTP(ctx, awsCreds, req, p.hash, "kms", creds.Region, time.Now()); err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(data, []byte(`"`+wantField+`"`)) {
			return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, data)
		}
		return nil
	}
	gdk := func(rcpt bool) func(w, i int) error {
		return func(w, i int) error {
			if rcpt {
				return send(rcptReqs[i%len(rcptReqs)], "CiphertextForRecipient")
			}
			return send(plainReq, "Plaintext")
		}
	}
	// Warm up both paths (sessions, caches, the heap), unreported.
	load(b, warmUp, gdk(true))
	load(b, warmUp, gdk(false))

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
	boundOp := func(_, i int) error {
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
	}
	// The three loads take turns in slices of half a second until each
	// has run for wall, so that the machine's drift (it is shared) falls
	// on all three alike. Once per call, whatever b.N (see BenchmarkKMS).
	b.Run("op=GenerateDataKey", func(b *testing.B) {
		kinds := []func(w, i int) error{boundOp, gdk(false), gdk(true)}
		ops := make([]int64, len(kinds))
		took := make([]time.Duration, len(kinds))
		cpu := make([]time.Duration, len(kinds))
		const slice = 500 * time.Millisecond
		for took[len(kinds)-1] < wall {
			for k, op := range kinds {
				n, d, c := load(b, slice, op)
				ops[k] += n
				took[k] += d
				cpu[k] += c
			}
		}
		rate := func(k int) float64 { return float64(ops[k]) / took[k].Seconds() }
		cpuPerOp := func(k int) float64 { return cpu[k].Seconds() / float64(ops[k]) }
		bound, plain, rcpt := rate(0), rate(1), rate(2)
		// The ratio of CPU time per operation: what the rates' ratio
		// would be if both loads kept the cores equally busy. On a
		// shared machine (a VM whose time is stolen) it varies less.
		b.ReportMetric(cpuPerOp(0)/cpuPerOp(2), "cpu-of-bound")
		b.ReportMetric(cpuPerOp(2)*1e6, "cpu-us/op")
		b.ReportMetric(rcpt, "ops/s")
		b.ReportMetric(1e9/rcpt, "ns/op")
		b.ReportMetric(plain, "plain-ops/s")
		b.ReportMetric(bound, "bound-ops/s")
		b.ReportMetric(rcpt/bound, "of-bound")
		b.ReportMetric(rcpt/plain, "of-plain")
	})
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
