// Package xkstest runs XKS proxies for tests: Trent's handler (package
// xks) over any Backend, behind a real TLS listener (httptest), with a
// fresh SigV4 credential, and a Config a client can use at once. Memory
// is a Backend in process memory (Go's crypto/aes) for unit tests of code
// that calls a proxy; tests that need the real thing give Start an
// xks/p11 Backend over a SoftHSM token, or run `trent xks serve`.
package xkstest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/trentkms/trent/xks"
)

// URIPath is the URI path of the proxies Start runs.
const URIPath = "/xkstest/kms/xks/v1"

// Proxy is a running proxy.
type Proxy struct {
	Server     *httptest.Server
	Handler    *xks.Handler
	Credential xks.Credential
	// Config reaches the proxy: endpoint, URI path, credential, region
	// us-east-1, TLS trusting the test server, a 10 s timeout.
	Config xks.Config
}

// Start serves be until t ends (or Close).
func Start(t testing.TB, be xks.Backend) *Proxy {
	t.Helper()
	cred, err := xks.NewCredential()
	if err != nil {
		t.Fatalf("xkstest: %v", err)
	}
	h, err := xks.NewHandler(xks.ServerConfig{URIPath: URIPath, Credentials: []xks.Credential{cred}, Backend: be, Vendor: "Trent", Model: "xkstest"})
	if err != nil {
		t.Fatalf("xkstest: %v", err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return &Proxy{Server: srv, Handler: h, Credential: cred, Config: xks.Config{
		Endpoint: srv.URL, URIPath: URIPath, AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey,
		Region: "us-east-1", TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig, Timeout: 10 * time.Second,
	}}
}

// Close stops the proxy: calls then fail as unreachable.
func (p *Proxy) Close() { p.Server.Close() }

// Memory is an xks.Backend in memory. Safe for concurrent use.
type Memory struct {
	mu   sync.Mutex
	keys map[string]*memKey
}

type memKey struct {
	aead     cipher.AEAD
	md       xks.KeyMetadata
	disabled bool
}

// NewMemory is an empty Memory.
func NewMemory() *Memory { return &Memory{keys: map[string]*memKey{}} }

// AddKey makes a random AES-256 key with the usages given
// (xks.UsageEncrypt, xks.UsageDecrypt).
func (m *Memory) AddKey(id string, usages ...string) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	blk, _ := aes.NewCipher(k)
	aead, _ := cipher.NewGCM(blk)
	clear(k)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[id] = &memKey{aead: aead, md: xks.KeyMetadata{KeySpec: xks.KeySpecAES256, KeyUsage: append([]string{}, usages...), KeyStatus: xks.StatusEnabled}}
}

// SetEnabled sets a key's keyStatus (a disabled key's operations are
// InvalidStateException).
func (m *Memory) SetEnabled(id string, enabled bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[id]; ok {
		k.md.KeyStatus = xks.StatusEnabled
		if !enabled {
			k.md.KeyStatus = xks.StatusDisabled
		}
	}
}

func (m *Memory) key(id string) (*memKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return nil, xks.ErrKeyNotFound
	}
	return k, nil
}

// Health is always ACTIVE.
func (m *Memory) Health(context.Context) xks.Health {
	return xks.Health{Vendor: "xkstest", Detail: xks.EkmFleetDetail{ID: "memory", Model: "xkstest.Memory", HealthStatus: xks.HealthActive}}
}

// Key is the key's metadata.
func (m *Memory) Key(_ context.Context, id string) (xks.KeyMetadata, error) {
	k, err := m.key(id)
	if err != nil {
		return xks.KeyMetadata{}, err
	}
	md := k.md
	md.KeyUsage = append([]string{}, md.KeyUsage...)
	return md, nil
}

// Seal encrypts with a random 12-byte IV.
func (m *Memory) Seal(_ context.Context, id string, pt, aad []byte) (iv, ct, tag []byte, err error) {
	k, err := m.key(id)
	if err != nil {
		return nil, nil, nil, err
	}
	iv = make([]byte, 12)
	if _, err := rand.Read(iv); err != nil {
		return nil, nil, nil, err
	}
	out := k.aead.Seal(nil, iv, pt, aad)
	return iv, out[:len(pt):len(pt)], out[len(pt):], nil
}

// Open decrypts; a failed check is xks.ErrInvalidCiphertext.
func (m *Memory) Open(_ context.Context, id string, iv, ct, tag, aad []byte) ([]byte, error) {
	k, err := m.key(id)
	if err != nil {
		return nil, err
	}
	if len(iv) != 12 {
		return nil, xks.ErrInvalidCiphertext
	}
	pt, err := k.aead.Open(nil, iv, append(append([]byte{}, ct...), tag...), aad)
	if err != nil {
		return nil, xks.ErrInvalidCiphertext
	}
	return pt, nil
}
