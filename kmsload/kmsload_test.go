package kmsload_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/kmsload"
)

// A real `trent dev` cluster under each operation: every answer checked,
// no errors; the wrong secret: nothing but errors.
func TestRunAgainstDev(t *testing.T) {
	dir := t.TempDir()
	c, err := dev.Start(dev.Options{Dir: dir, HSMs: 1, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1}, nil)
	require.NoError(t, err)
	defer c.Stop()
	creds, err := kmsapi.ReadCredentials(filepath.Join(dir, "credentials.json"))
	require.NoError(t, err)
	cr := creds.Credentials[0]
	base := kmsload.Config{Endpoint: c.KMSURL, AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.SecretAccessKey,
		Region: creds.Region, Clients: 4, Duration: 2 * time.Second, KeyID: "alias/load",
		EncryptionContext: map[string]string{"purpose": "kmsload"}, Keep: 8}
	ctx := context.Background()
	cl := kmsload.NewClient(base, kmsload.NewHTTPClient(1))
	key, err := cl.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err)
	_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/load"), TargetKeyId: key.KeyMetadata.KeyId})
	require.NoError(t, err)

	type run struct{ op, client string }
	runs := []run{{kmsload.OpEncrypt, ""}, {kmsload.OpDecrypt, ""}, {kmsload.OpGenerateDataKey, ""}, {kmsload.OpMixed, ""},
		{kmsload.OpMixed, kmsload.ClientSigner}, {kmsload.OpDecrypt, kmsload.ClientSigner}}
	for _, rn := range runs {
		op := rn.op
		cfg := base
		cfg.Op, cfg.Client = op, rn.client
		if op != kmsload.OpMixed {
			cfg.Duration = time.Second
		}
		r, err := kmsload.Run(ctx, cfg)
		require.NoError(t, err, op)
		t.Logf("%s: %d ops in %v, %.0f ops/s, p50 %v, p99 %v", op, r.Ops, r.Elapsed, r.Throughput, r.P50, r.P99)
		assert.Positive(t, r.Ops, op)
		assert.Zero(t, r.Errors, "%s: %v", op, r.ErrorTexts)
		assert.Empty(t, r.ErrorTexts, op)
		assert.GreaterOrEqual(t, r.Elapsed, cfg.Duration, op)
		assert.InDelta(t, float64(r.Ops)/r.Elapsed.Seconds(), r.Throughput, 1e-6, op)
		assert.Positive(t, r.P50, op)
		assert.GreaterOrEqual(t, r.P99, r.P50, op)
		assert.Less(t, r.P99, cfg.Duration+kmsload.RequestTimeout, op)
		if op == kmsload.OpDecrypt {
			assert.Empty(t, r.Kept, "Decrypt makes no ciphertexts")
			continue
		}
		// The kept ciphertexts decrypt to their plaintexts, in their
		// context only.
		require.Len(t, r.Kept, cfg.Keep, op)
		for _, k := range r.Kept {
			assert.Equal(t, "alias/load", k.KeyID)
			out, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: k.CiphertextBlob, EncryptionContext: k.EncryptionContext})
			require.NoError(t, err, op)
			assert.Equal(t, k.Plaintext, out.Plaintext, op)
			_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: k.CiphertextBlob})
			require.Error(t, err, "%s: the context is bound", op)
		}
	}

	// A wrong secret: every request is refused, and counted.
	bad := base
	bad.SecretAccessKey = "not-the-secret-0000000000000000"
	bad.Op, bad.Duration = kmsload.OpEncrypt, 500*time.Millisecond
	r, err := kmsload.Run(ctx, bad)
	require.NoError(t, err)
	assert.Zero(t, r.Ops)
	assert.Positive(t, r.Errors)
	require.NotEmpty(t, r.ErrorTexts)
	assert.LessOrEqual(t, len(r.ErrorTexts), kmsload.MaxErrorTexts)
	assert.Contains(t, r.ErrorTexts[0], "InvalidSignatureException")
	bad.Client = kmsload.ClientSigner
	r, err = kmsload.Run(ctx, bad)
	require.NoError(t, err)
	assert.Zero(t, r.Ops)
	require.NotEmpty(t, r.ErrorTexts)
	assert.Contains(t, r.ErrorTexts[0], "InvalidSignatureException", "the signer client's errors name the exception")
	bad.Op = kmsload.OpDecrypt
	_, err = kmsload.Run(ctx, bad)
	assert.ErrorContains(t, err, "set-up", "Decrypt needs a ciphertext first")
}

// fakeKMS answers Encrypt and GenerateDataKey, and Decrypt with the wrong
// plaintext when lie is set.
func fakeKMS(t *testing.T, lie bool) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Plaintext      []byte
			CiphertextBlob []byte
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			// A request the client cancelled mid-body (TestRunCancelled):
			// nothing to answer, and no test to fail from this goroutine.
			w.WriteHeader(400)
			return
		}
		var out any
		switch strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.") {
		case "Encrypt":
			out = map[string]any{"CiphertextBlob": append([]byte("ct:"), req.Plaintext...), "KeyId": "k"}
		case "GenerateDataKey":
			pt := make([]byte, 32)
			out = map[string]any{"Plaintext": pt, "CiphertextBlob": append([]byte("ct:"), pt...), "KeyId": "k"}
		case "Decrypt":
			pt := req.CiphertextBlob[3:]
			if lie { // flip a bit: always another plaintext (setting a byte to 1 was not, when it was 1)
				pt = append([]byte{pt[0] ^ 1}, pt[1:]...)
			}
			out = map[string]any{"Plaintext": pt, "KeyId": "k"}
		default:
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(s.Close)
	return s
}

// A Decrypt that does not give back the plaintext is an error.
func TestRunChecksPlaintexts(t *testing.T) {
	for _, lie := range []bool{false, true} {
		s := fakeKMS(t, lie)
		cfg := kmsload.Config{Endpoint: s.URL, AccessKeyID: "AKIA0", SecretAccessKey: "x", Clients: 2,
			Duration: 200 * time.Millisecond, Op: kmsload.OpMixed, KeyID: "k", PlaintextSize: 16}
		r, err := kmsload.Run(context.Background(), cfg)
		require.NoError(t, err)
		assert.Positive(t, r.Ops)
		if !lie {
			assert.Zero(t, r.Errors, r.ErrorTexts)
			continue
		}
		// Encrypt and GenerateDataKey succeed, every Decrypt fails.
		assert.Positive(t, r.Errors)
		assert.InDelta(t, r.Ops, r.Errors, 4, "one Decrypt per Encrypt and per GenerateDataKey")
		require.NotEmpty(t, r.ErrorTexts)
		assert.Contains(t, r.ErrorTexts[0], "differs")
	}
}

// The load stops when its context ends, and says so.
func TestRunCancelled(t *testing.T) {
	s := fakeKMS(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := kmsload.Run(ctx, kmsload.Config{Endpoint: s.URL, AccessKeyID: "AKIA0", SecretAccessKey: "x", Clients: 2,
		Duration: time.Minute, Op: kmsload.OpEncrypt, KeyID: "k"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotNil(t, r)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Positive(t, r.Ops)
}

func TestConfigRefusals(t *testing.T) {
	good := kmsload.Config{Endpoint: "http://127.0.0.1:1", Clients: 1, Duration: time.Second, Op: kmsload.OpEncrypt, KeyID: "k"}
	for name, mod := range map[string]func(*kmsload.Config){
		"no endpoint":  func(c *kmsload.Config) { c.Endpoint = "" },
		"no clients":   func(c *kmsload.Config) { c.Clients = 0 },
		"no duration":  func(c *kmsload.Config) { c.Duration = 0 },
		"unknown op":   func(c *kmsload.Config) { c.Op = "Sign" },
		"no key":       func(c *kmsload.Config) { c.KeyID = "" },
		"empty key":    func(c *kmsload.Config) { c.KeyIDs = []string{"a", ""} },
		"huge text":    func(c *kmsload.Config) { c.PlaintextSize = 4097 },
		"negative":     func(c *kmsload.Config) { c.PlaintextSize = -1 },
		"keep below 0": func(c *kmsload.Config) { c.Keep = -1 },
	} {
		cfg := good
		mod(&cfg)
		_, err := kmsload.Run(context.Background(), cfg)
		assert.Error(t, err, name)
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	assert.Equal(t, time.Duration(50), kmsload.Percentile(s, 0.5))
	assert.Equal(t, time.Duration(99), kmsload.Percentile(s, 0.99))
	assert.Equal(t, time.Duration(100), kmsload.Percentile(s, 1))
	assert.Equal(t, time.Duration(1), kmsload.Percentile(s, 0.001))
	assert.Equal(t, time.Duration(7), kmsload.Percentile([]time.Duration{7}, 0.99))
	assert.Equal(t, time.Duration(2), kmsload.Percentile([]time.Duration{1, 2, 3}, 0.5))
	assert.Zero(t, kmsload.Percentile(nil, 0.5))
}
