package xks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trentkms/trent/internal/boundedio"
)

// DefaultTimeout bounds a call when Config.Timeout is zero. AWS KMS gives
// a proxy 250 ms; the default leaves room for a loaded test machine.
const DefaultTimeout = 2 * time.Second

// maxResponseSize bounds an answer's body.
const maxResponseSize = 1 << 20

// Config is how a Client reaches one proxy: AWS's XksProxyUriEndpoint,
// XksProxyUriPath and XksProxyAuthenticationCredential, and the region
// the requests are signed for.
type Config struct {
	Endpoint        string // "https://host[:port]", no path
	URIPath         string // "[/<prefix>]/kms/xks/v1"
	AccessKeyID     string
	SecretAccessKey string
	Region          string      // the SigV4 region, e.g. "us-east-1"
	TLS             *tls.Config // nil: the system roots, TLS 1.2 or later
	Timeout         time.Duration
}

// Client calls one proxy. It is safe for concurrent use.
type Client struct {
	base    string // endpoint + URI path
	region  string
	creds   aws.Credentials
	signer  *v4.Signer
	http    *http.Client
	timeout time.Duration
}

// New checks cfg and makes a Client. Nothing is sent.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%w: endpoint must be https://host[:port]", ErrInvalidInput)
	}
	if !ValidURIPath(cfg.URIPath) {
		return nil, fmt.Errorf("%w: URI path must be [/<prefix>]%s, at most %d characters of A-Z a-z 0-9 / - _", ErrInvalidInput, PathSuffix, MaxURIPathLen)
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" || cfg.Region == "" {
		return nil, fmt.Errorf("%w: access key ID, secret access key and region are required", ErrInvalidInput)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
		if tc.MinVersion < tls.VersionTLS12 {
			tc.MinVersion = tls.VersionTLS12
		}
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Client{
		base:    "https://" + u.Host + cfg.URIPath,
		region:  cfg.Region,
		creds:   aws.Credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey},
		signer:  v4.NewSigner(),
		http:    &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		timeout: timeout,
	}, nil
}

// Close closes the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Health calls GetHealthStatus. md needs KMSRequestID and KMSOperation
// (CreateCustomKeyStore, ConnectCustomKeyStore, UpdateCustomKeyStore or
// KmsHealthCheck).
func (c *Client) Health(ctx context.Context, md RequestMetadata) (*HealthResponse, error) {
	const op = "GetHealthStatus"
	body := struct {
		RequestMetadata RequestMetadata `json:"requestMetadata"`
	}{md}
	raw, err := c.call(ctx, op, "/health", body)
	if err != nil {
		return nil, err
	}
	out, ferr := parseHealth(raw)
	if ferr != nil {
		return nil, invalid(op, ferr)
	}
	return out, nil
}

// GetKeyMetadata calls GetKeyMetadata for the external key keyID.
func (c *Client) GetKeyMetadata(ctx context.Context, keyID string, md RequestMetadata) (*KeyMetadata, error) {
	const op = "GetKeyMetadata"
	if !ValidKeyID(keyID) {
		return nil, fmt.Errorf("%w: malformed external key ID", ErrInvalidInput)
	}
	body := struct {
		RequestMetadata RequestMetadata `json:"requestMetadata"`
	}{md}
	raw, err := c.call(ctx, op, "/keys/"+keyID+"/metadata", body)
	if err != nil {
		return nil, err
	}
	out, ferr := parseKeyMetadata(raw)
	if ferr != nil {
		return nil, invalid(op, ferr)
	}
	return out, nil
}

// Encrypt calls Encrypt with the external key keyID. The answer is
// checked: a 12- or 16-byte IV, a 16-byte tag, a ciphertext as long as the
// plaintext, at most 20 bytes of metadata, and, if req asked for it, the
// CDIV recomputed and compared (a mismatch is an invalid response).
func (c *Client) Encrypt(ctx context.Context, keyID string, req EncryptRequest) (*EncryptResponse, error) {
	const op = "Encrypt"
	if !ValidKeyID(keyID) {
		return nil, fmt.Errorf("%w: malformed external key ID", ErrInvalidInput)
	}
	if len(req.Plaintext) > MaxDataSize || len(req.AdditionalAuthenticatedData) > MaxAADSize {
		return nil, fmt.Errorf("%w: plaintext above %d or AAD above %d bytes", ErrInvalidInput, MaxDataSize, MaxAADSize)
	}
	if req.EncryptionAlgorithm == "" {
		req.EncryptionAlgorithm = AlgorithmAESGCM
	}
	raw, err := c.call(ctx, op, "/keys/"+keyID+"/encrypt", req)
	if err != nil {
		return nil, err
	}
	out, ferr := parseEncryptResponse(raw)
	if ferr == nil && len(out.Ciphertext) != len(req.Plaintext) {
		ferr = badField("ciphertext", "%d bytes for %d of plaintext", len(out.Ciphertext), len(req.Plaintext))
	}
	if ferr == nil && req.CiphertextDataIntegrityValueAlgorithm != "" {
		want := CDIV(req.AdditionalAuthenticatedData, out.CiphertextMetadata, out.InitializationVector, out.Ciphertext, out.AuthenticationTag)
		switch {
		case out.CiphertextDataIntegrityValue == nil:
			ferr = badField("ciphertextDataIntegrityValue", "missing")
		case subtle.ConstantTimeCompare(want, out.CiphertextDataIntegrityValue) != 1:
			ferr = badField("ciphertextDataIntegrityValue", "does not match the answer")
		}
	}
	if ferr != nil {
		return nil, invalid(op, ferr)
	}
	return out, nil
}

// Decrypt calls Decrypt with the external key keyID. The plaintext must be
// as long as the ciphertext.
func (c *Client) Decrypt(ctx context.Context, keyID string, req DecryptRequest) (*DecryptResponse, error) {
	const op = "Decrypt"
	if !ValidKeyID(keyID) {
		return nil, fmt.Errorf("%w: malformed external key ID", ErrInvalidInput)
	}
	if len(req.Ciphertext) > MaxDataSize || len(req.AdditionalAuthenticatedData) > MaxAADSize || len(req.CiphertextMetadata) > MaxCiphertextMeta {
		return nil, fmt.Errorf("%w: ciphertext, AAD or ciphertext metadata too long", ErrInvalidInput)
	}
	if req.EncryptionAlgorithm == "" {
		req.EncryptionAlgorithm = AlgorithmAESGCM
	}
	raw, err := c.call(ctx, op, "/keys/"+keyID+"/decrypt", req)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	var w struct {
		Plaintext json.RawMessage `json:"plaintext"`
	}
	if ferr := unmarshal(raw, maxResponseSize, &w); ferr != nil {
		return nil, invalid(op, ferr)
	}
	pt, ferr := rawBlob("plaintext", w.Plaintext, MaxDataSize)
	if ferr == nil && len(pt) != len(req.Ciphertext) {
		clear(pt)
		ferr = badField("plaintext", "not as long as the ciphertext")
	}
	if ferr != nil {
		return nil, invalid(op, ferr)
	}
	return &DecryptResponse{Plaintext: pt}, nil
}

func invalid(op string, err error) *Error {
	return &Error{Op: op, Kind: KindInvalidResponse, Status: http.StatusOK, Message: err.Error()}
}

// call signs and sends body to path and returns the body of a 200 answer,
// or the *Error for anything else.
func (c *Client) call(ctx context.Context, op, path string, body any) ([]byte, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("xks: %s: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("xks: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(payload)
	if err := c.signer.SignHTTP(ctx, c.creds, req, hex.EncodeToString(sum[:]), SigV4ServiceName, c.region, time.Now().UTC()); err != nil {
		return nil, fmt.Errorf("xks: %s: sign: %w", op, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(ctx, op, err)
	}
	defer resp.Body.Close()
	raw, err := boundedio.ReadAll(resp.Body, resp.ContentLength, maxResponseSize)
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return nil, &Error{Op: op, Kind: KindTimeout, Status: resp.StatusCode, Message: "reading the answer", Err: err}
		}
		return nil, &Error{Op: op, Kind: KindInvalidResponse, Status: resp.StatusCode, Message: "reading the answer", Err: err}
	}
	if resp.StatusCode == http.StatusOK {
		return raw, nil
	}
	return nil, errorAnswer(op, resp.StatusCode, raw)
}

// errorAnswer classifies a non-200 answer by its errorName, which must be
// one the specification lists with this status.
func errorAnswer(op string, status int, raw []byte) *Error {
	e := &Error{Op: op, Kind: KindInvalidResponse, Status: status}
	var w struct {
		ErrorName    *string `json:"errorName"`
		ErrorMessage *string `json:"errorMessage"`
	}
	if err := unmarshal(raw, maxResponseSize, &w); err != nil || w.ErrorName == nil {
		e.Message = "error answer without a JSON errorName"
		return e
	}
	e.Name = printable(*w.ErrorName, 64)
	if w.ErrorMessage != nil {
		e.Message = printable(*w.ErrorMessage, MaxErrorMessageLen)
	}
	k, ok := kindOfName[*w.ErrorName]
	if want, listed := errorStatus[*w.ErrorName]; !ok || !listed || want != status {
		e.Message = "errorName not in the specification's table for this status"
		return e
	}
	e.Kind = k
	return e
}

// transportError classifies a failed round trip: the deadline passed (or
// the caller gave up) is a timeout, anything else (refused, reset, DNS,
// TLS handshake or certificate failure) is unreachable.
func transportError(ctx context.Context, op string, err error) *Error {
	if ctx.Err() != nil || isTimeout(err) {
		return &Error{Op: op, Kind: KindTimeout, Err: err}
	}
	return &Error{Op: op, Kind: KindUnreachable, Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

func parseHealth(raw []byte) (*HealthResponse, error) {
	var w struct {
		XksProxyFleetSize *int    `json:"xksProxyFleetSize"`
		XksProxyVendor    *string `json:"xksProxyVendor"`
		XksProxyModel     *string `json:"xksProxyModel"`
		EkmVendor         *string `json:"ekmVendor"`
		EkmFleetDetails   *[]struct {
			ID           *string `json:"id"`
			Model        *string `json:"model"`
			HealthStatus *string `json:"healthStatus"`
		} `json:"ekmFleetDetails"`
	}
	if err := unmarshal(raw, maxResponseSize, &w); err != nil {
		return nil, err
	}
	out := &HealthResponse{}
	if w.XksProxyFleetSize == nil || *w.XksProxyFleetSize < 1 {
		return nil, badField("xksProxyFleetSize", "missing or not above zero")
	}
	out.XksProxyFleetSize = *w.XksProxyFleetSize
	var err error
	for _, f := range []struct {
		name string
		p    *string
		to   *string
	}{{"xksProxyVendor", w.XksProxyVendor, &out.XksProxyVendor}, {"xksProxyModel", w.XksProxyModel, &out.XksProxyModel}, {"ekmVendor", w.EkmVendor, &out.EkmVendor}} {
		if *f.to, err = required(f.name, f.p); err != nil {
			return nil, err
		}
	}
	if w.EkmFleetDetails == nil || len(*w.EkmFleetDetails) < 1 || len(*w.EkmFleetDetails) > MaxFleetDetails {
		return nil, badField("ekmFleetDetails", "must have 1 to %d entries", MaxFleetDetails)
	}
	for i, d := range *w.EkmFleetDetails {
		var e EkmFleetDetail
		field := fmt.Sprintf("ekmFleetDetails[%d]", i)
		if e.ID, err = required(field+".id", d.ID); err != nil {
			return nil, err
		}
		if e.Model, err = required(field+".model", d.Model); err != nil {
			return nil, err
		}
		if e.HealthStatus, err = required(field+".healthStatus", d.HealthStatus); err != nil {
			return nil, err
		}
		switch e.HealthStatus {
		case HealthActive, HealthDegraded, HealthUnavailable:
		default:
			return nil, badField(field+".healthStatus", "not ACTIVE, DEGRADED or UNAVAILABLE")
		}
		out.EkmFleetDetails = append(out.EkmFleetDetails, e)
	}
	return out, nil
}

func parseKeyMetadata(raw []byte) (*KeyMetadata, error) {
	var w struct {
		KeySpec   *string   `json:"keySpec"`
		KeyUsage  *[]string `json:"keyUsage"`
		KeyStatus *string   `json:"keyStatus"`
	}
	if err := unmarshal(raw, maxResponseSize, &w); err != nil {
		return nil, err
	}
	out := &KeyMetadata{}
	var err error
	if out.KeySpec, err = required("keySpec", w.KeySpec); err != nil {
		return nil, err
	}
	if w.KeyUsage == nil || len(*w.KeyUsage) > MaxKeyUsages {
		return nil, badField("keyUsage", "missing or more than %d values", MaxKeyUsages)
	}
	out.KeyUsage = append([]string{}, *w.KeyUsage...)
	if out.KeyStatus, err = required("keyStatus", w.KeyStatus); err != nil {
		return nil, err
	}
	if out.KeyStatus != StatusEnabled && out.KeyStatus != StatusDisabled {
		return nil, badField("keyStatus", "not ENABLED or DISABLED")
	}
	return out, nil
}

func parseEncryptResponse(raw []byte) (*EncryptResponse, error) {
	var w struct {
		Ciphertext                   *string `json:"ciphertext"`
		CiphertextMetadata           *string `json:"ciphertextMetadata"`
		InitializationVector         *string `json:"initializationVector"`
		AuthenticationTag            *string `json:"authenticationTag"`
		CiphertextDataIntegrityValue *string `json:"ciphertextDataIntegrityValue"`
	}
	if err := unmarshal(raw, maxResponseSize, &w); err != nil {
		return nil, err
	}
	out := &EncryptResponse{}
	var err error
	if out.Ciphertext, err = requiredBlob("ciphertext", w.Ciphertext, MaxDataSize); err != nil {
		return nil, err
	}
	if out.CiphertextMetadata, err = optionalBlob("ciphertextMetadata", w.CiphertextMetadata, MaxCiphertextMeta); err != nil {
		return nil, err
	}
	if out.InitializationVector, err = requiredBlob("initializationVector", w.InitializationVector, 16); err != nil {
		return nil, err
	}
	if n := len(out.InitializationVector); n != 12 && n != 16 {
		return nil, badField("initializationVector", "%d bytes, not 12 or 16", n)
	}
	if out.AuthenticationTag, err = requiredBlob("authenticationTag", w.AuthenticationTag, TagSize); err != nil {
		return nil, err
	}
	if len(out.AuthenticationTag) != TagSize {
		return nil, badField("authenticationTag", "not %d bytes", TagSize)
	}
	if out.CiphertextDataIntegrityValue, err = optionalBlob("ciphertextDataIntegrityValue", w.CiphertextDataIntegrityValue, sha256.Size); err != nil {
		return nil, err
	}
	return out, nil
}
