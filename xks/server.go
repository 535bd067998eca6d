package xks

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trentkms/trent/internal/boundedio"
)

// Backend is the external key manager behind a Handler: the keys, by
// external key ID, and AES-256-GCM with them. Its errors are the
// package's sentinels where they apply (ErrKeyNotFound,
// ErrInvalidKeyUsage, ErrInvalidCiphertext for a failed tag check,
// ErrInvalidState, ErrTimeout, ErrThrottled); any other error is answered
// as InternalException. Errors must not contain plaintext or key material.
type Backend interface {
	// Health checks that the key manager can do cryptography now (a deep
	// check, with a test key) and describes it.
	Health(ctx context.Context) Health
	// Key is the key's metadata, or ErrKeyNotFound.
	Key(ctx context.Context, keyID string) (KeyMetadata, error)
	// Seal encrypts plaintext with AES-256-GCM under the key with
	// additional data aad, returning a fresh 12-byte IV, the ciphertext
	// (as long as plaintext) and the 16-byte tag.
	Seal(ctx context.Context, keyID string, plaintext, aad []byte) (iv, ciphertext, tag []byte, err error)
	// Open decrypts and authenticates; a failed check is
	// ErrInvalidCiphertext and nothing else.
	Open(ctx context.Context, keyID string, iv, ciphertext, tag, aad []byte) ([]byte, error)
}

// Health is what a Backend says of its key manager for GetHealthStatus.
type Health struct {
	Vendor string         // ekmVendor
	Detail EkmFleetDetail // its one entry of ekmFleetDetails
}

// ServerConfig configures a Handler.
type ServerConfig struct {
	URIPath     string       // "[/<prefix>]/kms/xks/v1"
	Credentials []Credential // accepted SigV4 credentials (two during a rotation)
	// Region, if not empty, is the only SigV4 region accepted; empty
	// accepts the region the caller signed for (AWS KMS signs with its
	// own).
	Region  string
	Backend Backend
	// Vendor and Model are xksProxyVendor and xksProxyModel.
	Vendor, Model string
	// MaxInFlight bounds concurrent requests; one more is answered
	// ThrottlingException (429). 0 means 64.
	MaxInFlight int
	// OpTimeout bounds each Backend call; past it the answer is
	// DependencyTimeoutException (503). 0 means 5 s.
	OpTimeout time.Duration
	Log       *slog.Logger     // nil: no log
	Now       func() time.Time // nil: time.Now
}

// Handler serves the XKS Proxy API. It is safe for concurrent use.
type Handler struct {
	cfg   ServerConfig
	creds atomic.Pointer[[]Credential]
	slots chan struct{}
}

// NewHandler checks cfg and makes a Handler.
func NewHandler(cfg ServerConfig) (*Handler, error) {
	if !ValidURIPath(cfg.URIPath) {
		return nil, fmt.Errorf("%w: URI path must be [/<prefix>]%s, at most %d characters of A-Z a-z 0-9 / - _", ErrInvalidInput, PathSuffix, MaxURIPathLen)
	}
	if len(cfg.Credentials) == 0 || cfg.Backend == nil {
		return nil, fmt.Errorf("%w: a credential and a backend are required", ErrInvalidInput)
	}
	if err := checkCredentials(cfg.Credentials); err != nil {
		return nil, err
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight)}
	cs := append([]Credential{}, cfg.Credentials...)
	h.creds.Store(&cs)
	return h, nil
}

func checkCredentials(cs []Credential) error {
	seen := map[string]bool{}
	for _, c := range cs {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" || seen[c.AccessKeyID] {
			return fmt.Errorf("%w: every credential needs an access key ID of its own and a secret", ErrInvalidInput)
		}
		seen[c.AccessKeyID] = true
	}
	if len(cs) == 0 {
		return fmt.Errorf("%w: no credential", ErrInvalidInput)
	}
	return nil
}

// SetCredentials replaces the accepted credentials, for requests that
// arrive afterwards: a credential rotation without a restart.
func (h *Handler) SetCredentials(cs []Credential) error {
	if err := checkCredentials(cs); err != nil {
		return err
	}
	cs = append([]Credential{}, cs...)
	h.creds.Store(&cs)
	return nil
}

// apiError is an error answer.
type apiError struct {
	name string
	msg  string
}

func fail(name, msg string) *apiError { return &apiError{name: name, msg: msg} }

// route maps a path to its operation and key ID; ok is false for a path
// that is not one of the API's under the configured URI path.
func (h *Handler) route(path string) (op operation, keyID string, ok bool) {
	rest, found := strings.CutPrefix(path, h.cfg.URIPath+"/")
	if !found {
		return 0, "", false
	}
	if rest == "health" {
		return opHealth, "", true
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] != "keys" {
		return 0, "", false
	}
	switch parts[2] {
	case "metadata":
		op = opMetadata
	case "encrypt":
		op = opEncrypt
	case "decrypt":
		op = opDecrypt
	default:
		return 0, "", false
	}
	return op, parts[1], true
}

// ServeHTTP answers one request: route (InvalidUriPathException, 405 for
// a method other than POST), throttle, read the body, verify SigV4,
// decode, run.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.cfg.Now()
	op, keyID, ok := h.route(r.URL.EscapedPath())
	if !ok || r.URL.RawQuery != "" {
		h.answerError(w, r, 0, "", RequestMetadata{}, start, fail(ErrNameInvalidURIPath, "no such path"))
		return
	}
	if r.Method != http.MethodPost {
		// The specification's error table has no name for it: a bare 405.
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		h.answerError(w, r, op, keyID, RequestMetadata{}, start, fail(ErrNameThrottling, "too many requests in flight"))
		return
	}
	body, err := boundedio.ReadAll(r.Body, r.ContentLength, MaxBodySize)
	if err != nil {
		name := ErrNameValidation
		if errors.Is(err, boundedio.ErrTooLarge) {
			name = ErrNameUnsupported
		}
		h.answerError(w, r, op, keyID, RequestMetadata{}, start, fail(name, "request body unreadable or above the size limit"))
		return
	}
	defer clear(body)
	akid, err := verifySigV4(r, body, *h.creds.Load(), h.cfg.Region, h.cfg.Now())
	if err != nil {
		h.cfg.Log.Warn("xks: authentication failed", "op", op.String(), "reason", err.Error(), "remote", r.RemoteAddr)
		h.answerError(w, r, op, keyID, RequestMetadata{}, start, fail(ErrNameAuthenticationFail, "the request signature could not be verified"))
		return
	}
	if op == opHealth {
		// The specification lists no ValidationException for
		// GetHealthStatus: its body is read for the log, not refused.
		req, _ := decodeRequest(op, body)
		var md RequestMetadata
		if req != nil {
			md = req.md
		}
		h.answer(w, r, op, "", md, akid, start, h.health(r.Context()), nil)
		return
	}
	if !ValidKeyID(keyID) {
		h.answerError(w, r, op, keyID, RequestMetadata{}, start, fail(ErrNameValidation, "malformed external key ID"))
		return
	}
	req, err := decodeRequest(op, body)
	if err != nil {
		var fe *fieldError
		name := ErrNameValidation
		if errors.As(err, &fe) && fe.tooLarge {
			name = ErrNameUnsupported
		}
		h.answerError(w, r, op, keyID, RequestMetadata{}, start, fail(name, err.Error()))
		return
	}
	defer req.clear()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.OpTimeout)
	defer cancel()
	out, aerr := h.run(ctx, op, keyID, req)
	h.answer(w, r, op, keyID, req.md, akid, start, out, aerr)
	if d, ok := out.(*DecryptResponse); ok {
		clear(d.Plaintext)
	}
}

func (h *Handler) health(ctx context.Context) *HealthResponse {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.OpTimeout)
	defer cancel()
	hl := h.cfg.Backend.Health(ctx)
	return &HealthResponse{
		XksProxyFleetSize: 1,
		XksProxyVendor:    h.cfg.Vendor,
		XksProxyModel:     h.cfg.Model,
		EkmVendor:         hl.Vendor,
		EkmFleetDetails:   []EkmFleetDetail{hl.Detail},
	}
}

// run performs a key operation. The key must exist, be enabled, be an
// AES_256 key and allow the operation.
func (h *Handler) run(ctx context.Context, op operation, keyID string, req *request) (any, *apiError) {
	md, err := h.cfg.Backend.Key(ctx, keyID)
	if err != nil {
		return nil, backendError(err)
	}
	if md.KeyUsage == nil {
		md.KeyUsage = []string{} // an array, never null
	}
	if op == opMetadata {
		return &md, nil
	}
	if md.KeyStatus != StatusEnabled {
		return nil, fail(ErrNameInvalidState, "the external key is not enabled")
	}
	usage := UsageEncrypt
	if op == opDecrypt {
		usage = UsageDecrypt
	}
	if md.KeySpec != KeySpecAES256 || !md.Allows(usage) {
		return nil, fail(ErrNameInvalidKeyUsage, "the external key does not allow "+op.String())
	}
	if op == opDecrypt {
		if len(req.iv) != 12 {
			// Only 12-byte IVs are ever made here.
			return nil, fail(ErrNameInvalidCiphertext, "the ciphertext was not made by this proxy")
		}
		pt, err := h.cfg.Backend.Open(ctx, keyID, req.iv, req.ciphertext, req.tag, AAD(req.aad, req.meta))
		if err != nil {
			return nil, backendError(err)
		}
		return &DecryptResponse{Plaintext: pt}, nil
	}
	iv, ct, tag, err := h.cfg.Backend.Seal(ctx, keyID, req.plaintext, AAD(req.aad, nil))
	if err != nil {
		return nil, backendError(err)
	}
	if len(iv) != 12 || len(ct) != len(req.plaintext) || len(tag) != TagSize {
		return nil, fail(ErrNameInternal, "the key manager's answer is malformed")
	}
	out := &EncryptResponse{Ciphertext: ct, InitializationVector: iv, AuthenticationTag: tag}
	if req.cdiv {
		// Appendix C: the CDIV first, then a decrypt of the answer, so
		// that a corruption after the hash fails the decrypt here.
		out.CiphertextDataIntegrityValue = CDIV(req.aad, nil, iv, ct, tag)
		pt, err := h.cfg.Backend.Open(ctx, keyID, iv, ct, tag, AAD(req.aad, nil))
		if err != nil {
			return nil, backendError(err)
		}
		same := subtle.ConstantTimeCompare(pt, req.plaintext) == 1
		clear(pt)
		if !same {
			return nil, fail(ErrNameInternal, "the key manager's ciphertext did not decrypt to the plaintext")
		}
	}
	return out, nil
}

// backendError maps a Backend error to its answer.
func backendError(err error) *apiError {
	switch {
	case errors.Is(err, ErrKeyNotFound):
		return fail(ErrNameKeyNotFound, "the external key was not found")
	case errors.Is(err, ErrInvalidKeyUsage):
		return fail(ErrNameInvalidKeyUsage, "the external key does not allow the operation")
	case errors.Is(err, ErrInvalidCiphertext):
		return fail(ErrNameInvalidCiphertext, "the ciphertext, IV, additional authenticated data or tag is invalid")
	case errors.Is(err, ErrInvalidState):
		return fail(ErrNameInvalidState, "the external key or key manager is not enabled")
	case errors.Is(err, ErrThrottled):
		return fail(ErrNameThrottling, "the key manager is busy")
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fail(ErrNameDependencyTimeout, "the key manager did not answer in time")
	}
	return fail(ErrNameInternal, "the key manager failed")
}

func (h *Handler) answerError(w http.ResponseWriter, r *http.Request, op operation, keyID string, md RequestMetadata, start time.Time, e *apiError) {
	h.answer(w, r, op, keyID, md, "", start, nil, e)
}

// answer writes out (200) or e, and logs the request: its metadata, never
// its plaintext or key material.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, op operation, keyID string, md RequestMetadata, akid string, start time.Time, out any, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	status := http.StatusOK
	var body []byte
	if e != nil {
		status = errorStatus[e.name]
		body, _ = json.Marshal(ErrorBody{ErrorName: e.name, ErrorMessage: printable(e.msg, MaxErrorMessageLen)})
	} else {
		body, _ = json.Marshal(out)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	clear(body)
	attrs := []any{"op", op.String(), "status", status, "ms", h.cfg.Now().Sub(start).Milliseconds(),
		"kmsRequestId", md.KMSRequestID, "kmsOperation", md.KMSOperation, "remote", r.RemoteAddr}
	if keyID != "" {
		attrs = append(attrs, "keyId", printable(keyID, MaxKeyIDLen+8))
	}
	if md.AWSPrincipalARN != "" {
		attrs = append(attrs, "awsPrincipalArn", md.AWSPrincipalARN, "kmsKeyArn", md.KMSKeyARN)
	}
	if akid != "" {
		attrs = append(attrs, "accessKeyId", akid)
	}
	if e != nil {
		attrs = append(attrs, "error", e.name, "message", e.msg)
	}
	h.cfg.Log.Info("xks: request", attrs...)
}
