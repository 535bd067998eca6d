package xks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trentkms/trent/conformance"
)

// The capabilities the suite's checks may need: the IDs of keys whose
// usages are restricted.
const (
	CapEncryptOnly conformance.Capability = "encrypt-only-key"
	CapDecryptOnly conformance.Capability = "decrypt-only-key"
	CapNoUsage     conformance.Capability = "no-usage-key"
)

// Config says which proxy to test.
type Config struct {
	Endpoint        string // "https://host[:port]"
	URIPath         string // "[/<prefix>]/kms/xks/v1"
	AccessKeyID     string
	SecretAccessKey string
	Region          string      // SigV4 region (default us-east-1)
	TLS             *tls.Config // nil: the system's roots
	// KeyID is an external key allowing ENCRYPT and DECRYPT (required).
	KeyID string
	// Keys with restricted usages, for the checks that need them.
	EncryptOnlyKeyID, DecryptOnlyKeyID, NoUsageKeyID string
}

// Env is a configured run of the suite.
type Env struct {
	cfg  Config
	http *http.Client
}

var uriPathPattern = regexp.MustCompile(`^(/[A-Za-z0-9_-]+)*/kms/xks/v1$`)

// NewEnv checks cfg.
func NewEnv(cfg Config) (*Env, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, errors.New("conformance/xks: endpoint must be https://host[:port]")
	}
	cfg.Endpoint = "https://" + u.Host
	if !uriPathPattern.MatchString(cfg.URIPath) {
		return nil, errors.New("conformance/xks: URI path must be [/<prefix>]/kms/xks/v1")
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" || cfg.KeyID == "" {
		return nil, errors.New("conformance/xks: an access key ID, a secret and a key ID are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	tc := cfg.TLS
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 4, ResponseHeaderTimeout: 30 * time.Second}
	return &Env{cfg: cfg, http: &http.Client{Transport: tr, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// Target is the proxy's base URL.
func (e *Env) Target() string { return e.cfg.Endpoint + e.cfg.URIPath }

// Missing is the capabilities the configuration lacks.
func (e *Env) Missing() map[conformance.Capability]string {
	m := map[conformance.Capability]string{}
	if e.cfg.EncryptOnlyKeyID == "" {
		m[CapEncryptOnly] = "no encrypt-only key ID given (--encrypt-only-key)"
	}
	if e.cfg.DecryptOnlyKeyID == "" {
		m[CapDecryptOnly] = "no decrypt-only key ID given (--decrypt-only-key)"
	}
	if e.cfg.NoUsageKeyID == "" {
		m[CapNoUsage] = "no key ID of a key without usages given (--no-usage-key)"
	}
	return m
}

// call is one raw request: a POST of Body to URIPath+Path (FullPath
// replaces both), signed at At (now if zero) with the configured
// credential unless told otherwise.
type call struct {
	Method   string
	Path     string
	FullPath string
	Body     []byte
	At       time.Time
	AKID     string
	Secret   string
	Service  string
	// BeforeSign and AfterSign change the request around the signing.
	BeforeSign func(*http.Request)
	AfterSign  func(*http.Request)
}

// answer is what came back.
type answer struct {
	Status int
	Body   []byte
}

func (a *answer) String() string {
	return fmt.Sprintf("HTTP %d %s", a.Status, truncate(string(a.Body), 300))
}

// errorName is the answer's errorName, or "" if its body has none.
func (a *answer) errorName() string {
	var e struct {
		ErrorName string `json:"errorName"`
	}
	_ = json.Unmarshal(a.Body, &e)
	return e.ErrorName
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// do sends c.
func (e *Env) do(ctx context.Context, c call) (*answer, error) {
	if c.Method == "" {
		c.Method = http.MethodPost
	}
	path := c.FullPath
	if path == "" {
		path = e.cfg.URIPath + c.Path
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, e.cfg.Endpoint+path, bytes.NewReader(c.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.BeforeSign != nil {
		c.BeforeSign(req)
	}
	at, akid, secret, service := c.At, c.AKID, c.Secret, c.Service
	if at.IsZero() {
		at = time.Now()
	}
	if akid == "" {
		akid = e.cfg.AccessKeyID
	}
	if secret == "" {
		secret = e.cfg.SecretAccessKey
	}
	if service == "" {
		service = "kms-xks-proxy"
	}
	sum := sha256.Sum256(c.Body)
	err = v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, req,
		hex.EncodeToString(sum[:]), service, e.cfg.Region, at.UTC())
	if err != nil {
		return nil, err
	}
	if c.AfterSign != nil {
		c.AfterSign(req)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &answer{Status: resp.StatusCode, Body: body}, nil
}
