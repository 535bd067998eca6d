package peers

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Primitive names in a Bound.
const (
	PrimSigV4    = "SigV4 verification, signing key cached"
	PrimTokenMAC = "HMAC-SHA256 in the token (PKCS#11, SoftHSM): K"
	PrimGCM      = "AES-256-GCM seal of 64 B in Go, fresh key"
	PrimEnvelope = "session envelope round trip (2 seals, 2 opens)"
)

// Primitives lists a Bound's primitives in order.
var Primitives = []string{PrimSigV4, PrimTokenMAC, PrimGCM, PrimEnvelope}

// Bound is the measured cost of each primitive one request pays: every
// sample (ns per operation, one goroutine) by primitive name. MeasureFloor
// adds the floor's other parts (FloorParts, SerialParts) to the same map;
// Total counts only the bound's Primitives.
type Bound map[string][]float64

// Median is a primitive's median in ns.
func (b Bound) Median(prim string) float64 { return median(b[prim]) }

// Total is the sum of the primitives' medians: the bound, in ns of CPU
// per request.
func (b Bound) Total() float64 {
	var t float64
	for _, p := range Primitives {
		t += b.Median(p)
	}
	return t
}

// BoundConfig says where the test binaries of the reused benchmarks are.
type BoundConfig struct {
	HSMTest     string // go test -c ./hsm/ (BenchmarkHMAC64)
	SessionTest string // go test -c ./session/ (BenchmarkEnvelope)
	Count       int    // samples of each
	Benchtime   time.Duration
}

// MeasureBound measures each primitive cfg.Count times into b.
func MeasureBound(cfg BoundConfig, b Bound) error {
	bt := cfg.Benchtime.String()
	mac, err := runGoBench(cfg.HSMTest, "^BenchmarkHMAC64$/^impl=backend$", bt, cfg.Count, "ns/op")
	if err != nil {
		return err
	}
	b[PrimTokenMAC] = append(b[PrimTokenMAC], mac...)
	env, err := runGoBench(cfg.SessionTest, "^BenchmarkEnvelope$", bt, cfg.Count, "ns/op")
	if err != nil {
		return err
	}
	b[PrimEnvelope] = append(b[PrimEnvelope], env...)
	v, err := newSigV4Bench()
	if err != nil {
		return err
	}
	for range cfg.Count {
		b[PrimSigV4] = append(b[PrimSigV4], nsPerOp(testing.Benchmark(v.bench)))
		b[PrimGCM] = append(b[PrimGCM], nsPerOp(testing.Benchmark(benchGCM64)))
	}
	return nil
}

func nsPerOp(r testing.BenchmarkResult) float64 {
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

// runGoBench runs one benchmark of a test binary at GOMAXPROCS 1, count
// times, and returns the samples of its metric (its unit as the benchmark
// prints it: "ns/op", or one of its own from b.ReportMetric such as
// "cpu-ns/op").
func runGoBench(bin, pattern, benchtime string, count int, metric string) ([]float64, error) {
	res, out, err := runGoBenches(bin, pattern, benchtime, count)
	if err != nil {
		return nil, err
	}
	if len(res) != 1 {
		return nil, fmt.Errorf("peers: %s -test.bench %s: %d benchmarks ran, want 1\n%s", bin, pattern, len(res), out)
	}
	for _, m := range res {
		if len(m[metric]) == 0 {
			return nil, fmt.Errorf("peers: %s -test.bench %s: no %s\n%s", bin, pattern, metric, out)
		}
		return m[metric], nil
	}
	panic("unreachable")
}

// runGoBenches runs the benchmarks of a test binary that match pattern at
// GOMAXPROCS 1, count times, and returns their results as
// parseGoBench does, and the output.
func runGoBenches(bin, pattern, benchtime string, count int) (map[string]map[string][]float64, []byte, error) {
	cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime,
		"-test.count", strconv.Itoa(count), "-test.cpu", "1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, out, fmt.Errorf("peers: %s -test.bench %s: %v\n%s", bin, pattern, err, out)
	}
	res := parseGoBench(string(out))
	if len(res) == 0 {
		return nil, out, fmt.Errorf("peers: %s -test.bench %s: no result\n%s", bin, pattern, out)
	}
	return res, out, nil
}

// parseGoBench reads `go test -bench` output: for each benchmark (its
// name without the -GOMAXPROCS suffix), each metric's samples by unit
// (ns/op, B/op, cpu-ns/op, …), one a line in the order printed.
func parseGoBench(out string) map[string]map[string][]float64 {
	res := map[string]map[string][]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil { // the iteration count
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		for i := 3; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i-1], 64)
			if err != nil {
				continue
			}
			if res[name] == nil {
				res[name] = map[string][]float64{}
			}
			res[name][f[i]] = append(res[name][f[i]], v)
		}
	}
	return res
}

// benchGCM64 seals 64 bytes with AES-256-GCM under a key it schedules
// each time, as the HSM does with each ciphertext's own key K.
func benchGCM64(b *testing.B) {
	key := make([]byte, 32)
	nonce := make([]byte, 12)
	msg := make([]byte, 64)
	rand.Read(key)
	dst := make([]byte, 0, 64+16)
	for b.Loop() {
		blk, err := aes.NewCipher(key)
		if err != nil {
			b.Fatal(err)
		}
		g, err := cipher.NewGCM(blk)
		if err != nil {
			b.Fatal(err)
		}
		dst = g.Seal(dst[:0], nonce, msg, nil)
	}
}

// sigV4Bench is an Encrypt request as kmsload sends it, signed by the AWS
// SDK's signer, and the signing key a server would have cached.
type sigV4Bench struct {
	req  *http.Request
	body []byte
	key  []byte
}

func newSigV4Bench() (*sigV4Bench, error) {
	const secret = "bound-secret-0123456789abcdef"
	body := []byte(`{"EncryptionContext":{"bench":"kms"},"KeyId":"alias/bench","Plaintext":"` +
		strings.Repeat("A", 86) + `=="}`)
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:4599/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	req.Header.Set("User-Agent", "Go-http-client/1.1")
	now := time.Now().UTC()
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIABOUND", SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), "kms", "us-east-1", now); err != nil {
		return nil, err
	}
	k := hmacSum([]byte("AWS4"+secret), now.Format("20060102"))
	k = hmacSum(k, "us-east-1")
	k = hmacSum(k, "kms")
	k = hmacSum(k, "aws4_request")
	v := &sigV4Bench{req: req, body: body, key: k}
	if err := verifySigV4(req, body, k); err != nil {
		return nil, fmt.Errorf("peers: the bound's SigV4 verification refuses the SDK's signature: %w", err)
	}
	return v, nil
}

func (v *sigV4Bench) bench(b *testing.B) {
	for b.Loop() {
		if err := verifySigV4(v.req, v.body, v.key); err != nil {
			b.Fatal(err)
		}
	}
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// verifySigV4 is the least a server does to verify a SigV4-signed POST to
// "/" with the signing key (for the credential's day, region and service)
// already derived: parse the Authorization header, rebuild the canonical
// request from the signed headers, hash the body and the canonical
// request, one HMAC, a constant-time compare. It checks no clock skew
// and no scope; the bound counts the hashing, not the policy.
func verifySigV4(r *http.Request, body, key []byte) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return errors.New("not SigV4")
	}
	var cred, signed, sig string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	_, scope, ok := strings.Cut(cred, "/")
	if !ok || signed == "" || len(sig) != 64 {
		return errors.New("malformed Authorization")
	}
	var buf [1024]byte
	c := append(buf[:0], "POST\n/\n\n"...)
	for n := range strings.SplitSeq(signed, ";") {
		c = append(c, n...)
		c = append(c, ':')
		switch v := r.Header.Get(n); {
		case n == "host":
			c = append(c, r.Host...)
		case n == "content-length" && v == "":
			c = strconv.AppendInt(c, r.ContentLength, 10) // net/http keeps it in the field
		default:
			c = append(c, strings.TrimSpace(v)...)
		}
		c = append(c, '\n')
	}
	c = append(c, '\n')
	c = append(c, signed...)
	c = append(c, '\n')
	bsum := sha256.Sum256(body)
	c = hex.AppendEncode(c, bsum[:])
	csum := sha256.Sum256(c)
	amzDate := r.Header.Get("X-Amz-Date")
	s := append(buf[:0], "AWS4-HMAC-SHA256\n"...)
	s = append(s, amzDate...)
	s = append(s, '\n')
	s = append(s, scope...)
	s = append(s, '\n')
	s = hex.AppendEncode(s, csum[:])
	m := hmac.New(sha256.New, key)
	m.Write(s)
	var want [32]byte
	var got [32]byte
	m.Sum(want[:0])
	if _, err := hex.Decode(got[:], []byte(sig)); err != nil || !hmac.Equal(want[:], got[:]) {
		return errors.New("signature mismatch")
	}
	return nil
}

// median of samples (0 if none).
func median(samples []float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
