package xks

import (
	"errors"
	"strconv"
	"strings"
)

// Kind classifies a failed call (the package documentation maps each to
// AWS KMS's exceptions).
type Kind int

// The kinds of failure.
const (
	KindUnreachable          Kind = iota + 1 // no TCP or TLS connection to the proxy
	KindTimeout                              // no answer within the deadline, or DependencyTimeoutException
	KindThrottled                            // ThrottlingException
	KindAuthenticationFailed                 // AuthenticationFailedException: the SigV4 credential was refused
	KindInvalidURIPath                       // InvalidUriPathException
	KindInvalidResponse                      // a malformed answer, or one the specification forbids
	KindValidation                           // ValidationException: the proxy found the request invalid
	KindInternal                             // InternalException
	KindKeyNotFound                          // KeyNotFoundException
	KindInvalidState                         // InvalidStateException: the key or store is disabled
	KindInvalidKeyUsage                      // InvalidKeyUsageException
	KindInvalidCiphertext                    // InvalidCiphertextException
	KindAccessDenied                         // AccessDeniedException
	KindUnsupported                          // UnsupportedOperationException
)

// Sentinels, one per Kind: an *Error unwraps to its Kind's.
var (
	ErrUnreachable          = errors.New("xks: proxy unreachable")
	ErrTimeout              = errors.New("xks: proxy timed out")
	ErrThrottled            = errors.New("xks: proxy throttled the request")
	ErrAuthenticationFailed = errors.New("xks: proxy refused the authentication credential")
	ErrInvalidURIPath       = errors.New("xks: proxy refused the URI path")
	ErrInvalidResponse      = errors.New("xks: invalid response from the proxy")
	ErrValidation           = errors.New("xks: proxy found the request invalid")
	ErrInternal             = errors.New("xks: proxy internal error")
	ErrKeyNotFound          = errors.New("xks: external key not found")
	ErrInvalidState         = errors.New("xks: external key or key store not enabled")
	ErrInvalidKeyUsage      = errors.New("xks: external key does not support the operation")
	ErrInvalidCiphertext    = errors.New("xks: invalid ciphertext")
	ErrAccessDenied         = errors.New("xks: proxy denied access")
	ErrUnsupported          = errors.New("xks: operation not supported by the proxy")
)

// ErrInvalidInput is returned, not as an *Error, for a call the client
// refuses before sending anything (a malformed key ID, an oversized
// input): the caller's mistake, not the proxy's answer.
var ErrInvalidInput = errors.New("xks: invalid input")

var kindInfo = map[Kind]struct {
	name     string
	sentinel error
	errName  string // the proxy's errorName for this kind, if one
}{
	KindUnreachable:          {"Unreachable", ErrUnreachable, ""},
	KindTimeout:              {"Timeout", ErrTimeout, ErrNameDependencyTimeout},
	KindThrottled:            {"Throttled", ErrThrottled, ErrNameThrottling},
	KindAuthenticationFailed: {"AuthenticationFailed", ErrAuthenticationFailed, ErrNameAuthenticationFail},
	KindInvalidURIPath:       {"InvalidURIPath", ErrInvalidURIPath, ErrNameInvalidURIPath},
	KindInvalidResponse:      {"InvalidResponse", ErrInvalidResponse, ""},
	KindValidation:           {"Validation", ErrValidation, ErrNameValidation},
	KindInternal:             {"Internal", ErrInternal, ErrNameInternal},
	KindKeyNotFound:          {"KeyNotFound", ErrKeyNotFound, ErrNameKeyNotFound},
	KindInvalidState:         {"InvalidState", ErrInvalidState, ErrNameInvalidState},
	KindInvalidKeyUsage:      {"InvalidKeyUsage", ErrInvalidKeyUsage, ErrNameInvalidKeyUsage},
	KindInvalidCiphertext:    {"InvalidCiphertext", ErrInvalidCiphertext, ErrNameInvalidCiphertext},
	KindAccessDenied:         {"AccessDenied", ErrAccessDenied, ErrNameAccessDenied},
	KindUnsupported:          {"Unsupported", ErrUnsupported, ErrNameUnsupported},
}

// kindOfName maps a proxy's errorName to its Kind.
var kindOfName = func() map[string]Kind {
	m := map[string]Kind{}
	for k, i := range kindInfo {
		if i.errName != "" {
			m[i.errName] = k
		}
	}
	return m
}()

func (k Kind) String() string {
	if i, ok := kindInfo[k]; ok {
		return i.name
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Retryable reports whether the failure is transient: the same request
// may succeed later (unreachable, timeout, throttled, internal error).
func (k Kind) Retryable() bool {
	switch k {
	case KindUnreachable, KindTimeout, KindThrottled, KindInternal:
		return true
	}
	return false
}

// Error is a failed call. It carries no plaintext, key material or secret.
type Error struct {
	Op     string // "GetHealthStatus", "GetKeyMetadata", "Encrypt" or "Decrypt"
	Kind   Kind
	Status int    // the HTTP status, 0 if no answer came
	Name   string // the proxy's errorName, if it sent one
	// Message is the proxy's errorMessage (printable ASCII, bounded) or
	// what was wrong with its answer.
	Message string
	Err     error // the transport error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("xks: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Status != 0 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		if e.Name != "" {
			b.WriteString(" ")
			b.WriteString(e.Name)
		}
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the Kind's sentinel and the transport error, if any.
func (e *Error) Unwrap() []error {
	s := kindInfo[e.Kind].sentinel
	if e.Err != nil {
		return []error{s, e.Err}
	}
	return []error{s}
}

// KindOf is the Kind of err's *Error, or 0 if it has none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
