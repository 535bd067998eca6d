// Package kmsload is a load generator for the AWS KMS JSON API: Trent's
// (`trent dev`), moto's, or any other endpoint that speaks it.
//
// The contract of Run:
//
//   - Config.Clients workers run at once for Config.Duration of wall time.
//     Each has its own aws-sdk-go-v2 kms.Client, so every request is signed
//     with SigV4 by the SDK exactly as an application's would be; the
//     SDK's retries are off (RetryMaxAttempts 1), so every failure is
//     counted, none hidden by a retry. With Config.Client ClientSigner a
//     worker instead builds each JSON 1.1 request and signs it with the
//     SDK's SigV4 signer alone (the same requests, less client CPU). All
//     workers share one HTTP transport that keeps at least one idle
//     connection per worker.
//   - An operation is one KMS request. Op "Encrypt", "Decrypt" and
//     "GenerateDataKey" repeat that request; "Mixed" repeats Encrypt,
//     Decrypt of its ciphertext, GenerateDataKey (AES_256) and Decrypt of
//     its ciphertext, four operations per round. Every answer is checked:
//     a Decrypt must give back exactly the plaintext that was encrypted
//     (or generated), an Encrypt and a GenerateDataKey must give a
//     ciphertext (and a 32-byte plaintext); anything else is an error.
//   - For Op "Decrypt" each worker first encrypts one plaintext (not
//     counted, before the clock starts) and then decrypts it repeatedly;
//     if that set-up fails, Run returns its error and no load is run.
//   - A worker starts no request after the Duration is up, and the
//     requests in flight then are completed, not cancelled: Result.Elapsed
//     runs from the start of the load to the end of the last request, and
//     Result.Throughput is Result.Ops / Result.Elapsed.
//   - Result.Ops counts the successful operations, Result.Errors the
//     failed ones (with the text of the first few); latencies are recorded
//     for every operation, failed or not, and P50 and P99 are exact
//     nearest-rank percentiles of them all.
//   - Run returns an error for an invalid Config, a failed Decrypt set-up,
//     or when ctx ends before the Duration is up (with the Result so far).
package kmsload

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Operations Config.Op may name.
const (
	OpEncrypt         = "Encrypt"
	OpDecrypt         = "Decrypt"
	OpGenerateDataKey = "GenerateDataKey"
	OpMixed           = "Mixed"
)

// Defaults.
const (
	DefaultPlaintextSize = 64
	DefaultRegion        = "us-east-1"
	// MaxErrorTexts is how many error texts Result keeps.
	MaxErrorTexts = 10
	// RequestTimeout bounds one request.
	RequestTimeout = 30 * time.Second
	dataKeySize    = 32 // GenerateDataKey's KeySpec AES_256
)

// Config configures a load.
type Config struct {
	Endpoint        string // the KMS API's URL, e.g. http://127.0.0.1:4599
	AccessKeyID     string
	SecretAccessKey string
	Region          string // DefaultRegion if empty
	Clients         int    // concurrent workers, each with its own kms.Client
	Duration        time.Duration
	Op              string // OpEncrypt, OpDecrypt, OpGenerateDataKey or OpMixed
	// KeyID names the KMS key (key ID, ARN, alias name or alias ARN).
	// KeyIDs, if not empty, replaces it: worker w's round r uses
	// KeyIDs[(w+r) % len(KeyIDs)].
	KeyID             string
	KeyIDs            []string
	PlaintextSize     int // bytes per Encrypt (1 to 4096); DefaultPlaintextSize if zero
	EncryptionContext map[string]string
	// Client is how workers make requests: ClientSDK (the default) or
	// ClientSigner.
	Client string
	// Keep is how many ciphertexts made during the load (by Encrypt and
	// GenerateDataKey, checked or not by a Decrypt) Result.Kept holds: a
	// uniform sample of them, for checks after the load.
	Keep int
}

// Result is a load's outcome.
type Result struct {
	Ops        int64         // successful operations (requests)
	Errors     int64         // failed operations
	ErrorTexts []string      // the first MaxErrorTexts errors
	Elapsed    time.Duration // from the start of the load to the end of its last request
	Throughput float64       // Ops per second of Elapsed
	P50, P99   time.Duration // of every operation's latency
	Kept       []Ciphertext  // see Config.Keep
}

// Ciphertext is a ciphertext made during the load and what it decrypts to.
type Ciphertext struct {
	KeyID             string // as the request named it
	EncryptionContext map[string]string
	Plaintext         []byte
	CiphertextBlob    []byte
}

func (c *Config) check() error {
	switch {
	case c.Endpoint == "":
		return errors.New("kmsload: no endpoint")
	case c.Client != "" && c.Client != ClientSDK && c.Client != ClientSigner:
		return fmt.Errorf("kmsload: client kind %q", c.Client)
	case c.Clients < 1:
		return fmt.Errorf("kmsload: %d clients", c.Clients)
	case c.Duration <= 0:
		return fmt.Errorf("kmsload: duration %v", c.Duration)
	case c.KeyID == "" && len(c.KeyIDs) == 0:
		return errors.New("kmsload: no key")
	case c.PlaintextSize < 0 || c.PlaintextSize > 4096:
		return fmt.Errorf("kmsload: plaintext of %d bytes", c.PlaintextSize)
	case c.Keep < 0:
		return fmt.Errorf("kmsload: keep %d", c.Keep)
	}
	switch c.Op {
	case OpEncrypt, OpDecrypt, OpGenerateDataKey, OpMixed:
	default:
		return fmt.Errorf("kmsload: unknown op %q", c.Op)
	}
	if slices.Contains(c.KeyIDs, "") {
		return errors.New("kmsload: empty key ID")
	}
	return nil
}

// NewHTTPClient is the HTTP client Run's workers share: one transport that
// keeps an idle connection for each of up to clients workers.
func NewHTTPClient(clients int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * clients
	t.MaxIdleConnsPerHost = 2 * clients
	return &http.Client{Transport: t, Timeout: RequestTimeout}
}

// NewClient is a KMS client of cfg's endpoint through hc, with SDK retries
// off.
func NewClient(cfg Config, hc *http.Client) *kms.Client {
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	return kms.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		HTTPClient:  hc,
	}, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(cfg.Endpoint)
		o.RetryMaxAttempts = 1
	})
}

// Run runs the load cfg describes (see the package doc).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.PlaintextSize == 0 {
		cfg.PlaintextSize = DefaultPlaintextSize
	}
	keys := cfg.KeyIDs
	if len(keys) == 0 {
		keys = []string{cfg.KeyID}
	}
	hc := NewHTTPClient(cfg.Clients)
	defer hc.CloseIdleConnections()
	ws := make([]*worker, cfg.Clients)
	for i := range ws {
		var seed [32]byte
		crand.Read(seed[:])
		var a api = sdkAPI{NewClient(cfg, hc)}
		if cfg.Client == ClientSigner {
			a = newSignerAPI(&cfg, hc)
		}
		ws[i] = &worker{cfg: &cfg, id: i, keys: keys, api: a, rnd: rand.NewChaCha8(seed),
			keep: (cfg.Keep + cfg.Clients - 1) / cfg.Clients}
	}
	if cfg.Op == OpDecrypt {
		var wg sync.WaitGroup
		errs := make([]error, len(ws))
		for i, w := range ws {
			wg.Go(func() { errs[i] = w.setup(ctx) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("kmsload: set-up: %w", err)
		}
	}

	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { w.run(ctx, deadline) })
	}
	wg.Wait()
	r := &Result{Elapsed: time.Since(start)}
	var lat []time.Duration
	for _, w := range ws {
		r.Ops += w.ops
		r.Errors += w.errs
		for _, e := range w.errTexts {
			if len(r.ErrorTexts) < MaxErrorTexts {
				r.ErrorTexts = append(r.ErrorTexts, e)
			}
		}
		lat = append(lat, w.lat...)
		r.Kept = append(r.Kept, w.kept...)
	}
	if len(r.Kept) > cfg.Keep {
		r.Kept = r.Kept[:cfg.Keep]
	}
	r.Throughput = float64(r.Ops) / r.Elapsed.Seconds()
	slices.Sort(lat)
	r.P50, r.P99 = Percentile(lat, 0.50), Percentile(lat, 0.99)
	if err := ctx.Err(); err != nil && time.Now().Before(deadline) {
		return r, fmt.Errorf("kmsload: %w", err)
	}
	return r, nil
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 1) of sorted,
// 0 if it is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// worker is one client's state; only its goroutine touches it until Run
// reads it after the load.
type worker struct {
	cfg  *Config
	id   int
	keys []string
	api  api
	rnd  *rand.ChaCha8

	ops, errs int64
	errTexts  []string
	lat       []time.Duration

	// Decrypt's ciphertext and its plaintext (set-up).
	blob, plain []byte

	keep, seen int // reservoir sampling of kept ciphertexts
	kept       []Ciphertext
}

func (w *worker) setup(ctx context.Context) error {
	pt := w.plaintext()
	blob, err := w.api.encrypt(ctx, w.keys[w.id%len(w.keys)], pt, w.cfg.EncryptionContext)
	if err != nil {
		return fmt.Errorf("worker %d: Encrypt: %w", w.id, err)
	}
	if len(blob) == 0 {
		return fmt.Errorf("worker %d: Encrypt: no ciphertext", w.id)
	}
	w.blob, w.plain = blob, pt
	return nil
}

func (w *worker) plaintext() []byte {
	b := make([]byte, w.cfg.PlaintextSize)
	w.rnd.Read(b)
	return b
}

// done reports whether no request may start any more.
func done(ctx context.Context, deadline time.Time) bool {
	return ctx.Err() != nil || !time.Now().Before(deadline)
}

func (w *worker) run(ctx context.Context, deadline time.Time) {
	for round := 0; !done(ctx, deadline); round++ {
		key := w.keys[(w.id+round)%len(w.keys)]
		switch w.cfg.Op {
		case OpEncrypt:
			pt := w.plaintext()
			if blob, ok := w.encrypt(ctx, key, pt); ok {
				w.sample(key, pt, blob)
			}
		case OpGenerateDataKey:
			if pt, blob, ok := w.generateDataKey(ctx, key); ok {
				w.sample(key, pt, blob)
			}
		case OpDecrypt:
			w.decrypt(ctx, w.blob, w.plain)
		case OpMixed:
			pt := w.plaintext()
			blob, ok := w.encrypt(ctx, key, pt)
			if ok && !done(ctx, deadline) && w.decrypt(ctx, blob, pt) {
				w.sample(key, pt, blob)
			}
			if done(ctx, deadline) {
				return
			}
			pt, blob, ok = w.generateDataKey(ctx, key)
			if ok && !done(ctx, deadline) && w.decrypt(ctx, blob, pt) {
				w.sample(key, pt, blob)
			}
		}
	}
}

// call times one request (do, which also checks its answer) and counts
// its outcome.
func (w *worker) call(do func() error) bool {
	start := time.Now()
	err := do()
	w.lat = append(w.lat, time.Since(start))
	if err != nil {
		w.errs++
		if len(w.errTexts) < MaxErrorTexts {
			w.errTexts = append(w.errTexts, err.Error())
		}
		return false
	}
	w.ops++
	return true
}

func (w *worker) encrypt(ctx context.Context, key string, pt []byte) (blob []byte, ok bool) {
	ok = w.call(func() error {
		out, err := w.api.encrypt(ctx, key, pt, w.cfg.EncryptionContext)
		if err != nil {
			return err // the text names the operation
		}
		if len(out) == 0 {
			return errors.New("kmsload: Encrypt gave no ciphertext")
		}
		blob = out
		return nil
	})
	return blob, ok
}

func (w *worker) generateDataKey(ctx context.Context, key string) (pt, blob []byte, ok bool) {
	ok = w.call(func() error {
		p, b, err := w.api.generateDataKey(ctx, key, w.cfg.EncryptionContext)
		if err != nil {
			return err
		}
		if len(p) != dataKeySize || len(b) == 0 {
			return fmt.Errorf("kmsload: GenerateDataKey gave a %d-byte plaintext, %d-byte ciphertext", len(p), len(b))
		}
		pt, blob = p, b
		return nil
	})
	return pt, blob, ok
}

func (w *worker) decrypt(ctx context.Context, blob, want []byte) bool {
	return w.call(func() error {
		out, err := w.api.decrypt(ctx, blob, w.cfg.EncryptionContext)
		if err != nil {
			return err
		}
		if !bytes.Equal(out, want) {
			return fmt.Errorf("kmsload: Decrypt gave a %d-byte plaintext that differs from the %d bytes encrypted", len(out), len(want))
		}
		return nil
	})
}

// sample offers a ciphertext to the worker's reservoir.
func (w *worker) sample(key string, pt, blob []byte) {
	if w.keep == 0 {
		return
	}
	w.seen++
	c := Ciphertext{KeyID: key, EncryptionContext: w.cfg.EncryptionContext, Plaintext: pt, CiphertextBlob: blob}
	if len(w.kept) < w.keep {
		w.kept = append(w.kept, c)
		return
	}
	if i := int(w.rnd.Uint64() % uint64(w.seen)); i < w.keep {
		w.kept[i] = c
	}
}
