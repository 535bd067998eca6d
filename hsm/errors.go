package hsm

import (
	"errors"
	"strings"

	"github.com/miekg/pkcs11"
)

// Sentinel errors. Every error returned by this package is an *Error that
// unwraps to exactly one of these and, when the module produced it, to the
// pkcs11.Error code as well, so both errors.Is(err, ErrPINIncorrect) and
// errors.As(err, &code) work.
var (
	ErrModuleNotFound      = errors.New("hsm: PKCS#11 module not found or not loadable")
	ErrModuleConflict      = errors.New("hsm: module already initialised in this process with a different environment or initialisation string")
	ErrTokenNotFound       = errors.New("hsm: no initialised token with that label")
	ErrTokenAmbiguous      = errors.New("hsm: more than one token with that label")
	ErrTokenExists         = errors.New("hsm: a token with that label already exists")
	ErrTokenNotInitialized = errors.New("hsm: token not initialised")
	ErrNoFreeSlot          = errors.New("hsm: no slot with an uninitialised token")
	ErrTokenNotPresent     = errors.New("hsm: token not present")
	ErrDevice              = errors.New("hsm: device error")
	ErrSessionLost         = errors.New("hsm: session lost")
	ErrPINIncorrect        = errors.New("hsm: PIN incorrect")
	ErrPINLocked           = errors.New("hsm: PIN locked")
	ErrPINNotInitialized   = errors.New("hsm: user PIN not initialised")
	ErrNotLoggedIn         = errors.New("hsm: the token's login lapsed and could not be restored")
	ErrKeyNotFound         = errors.New("hsm: key not found")
	ErrKeyExists           = errors.New("hsm: key already exists")
	ErrObjectNotFound      = errors.New("hsm: data object not found")
	ErrObjectAmbiguous     = errors.New("hsm: more than one data object with that label")
	ErrInvalidHandle       = errors.New("hsm: key handle invalid or destroyed")
	ErrAuthentication      = errors.New("hsm: message authentication failed")
	ErrInvalidPublicKey    = errors.New("hsm: invalid peer public key")
	ErrInvalidInput        = errors.New("hsm: invalid input")
	ErrInputTooLarge       = errors.New("hsm: input too large")
	ErrUnsupported         = errors.New("hsm: mechanism not supported by the module")
	ErrClosed              = errors.New("hsm: token closed")
	ErrPKCS11              = errors.New("hsm: PKCS#11 call failed")
)

// Error is the error type of this package. It never carries key material,
// PINs or plaintext: only the operation, the sentinel and the CKR_* code.
type Error struct {
	Op   string       // the backend operation, e.g. "sign" or "open session"
	Err  error        // one of the sentinels above
	Code pkcs11.Error // the module's return value; 0 when the error is ours
	Msg  string       // optional detail without secrets (a label, a length)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("hsm: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "hsm: "))
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Code != 0 {
		b.WriteString(" (")
		b.WriteString(codeName(e.Code))
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the sentinel and, when present, the PKCS#11 code.
func (e *Error) Unwrap() []error {
	if e.Code != 0 {
		return []error{e.Err, e.Code}
	}
	return []error{e.Err}
}

// codeName is "CKR_PIN_INCORRECT" for a known code, else the hex value.
func codeName(c pkcs11.Error) string {
	s := c.Error() // "pkcs11: 0xA0: CKR_PIN_INCORRECT"
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// sentinelFor maps a CKR_* value to the sentinel callers branch on.
func sentinelFor(c pkcs11.Error) error {
	switch uint(c) {
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE:
		return ErrPINIncorrect
	case pkcs11.CKR_PIN_LOCKED:
		return ErrPINLocked
	case pkcs11.CKR_USER_PIN_NOT_INITIALIZED:
		return ErrPINNotInitialized
	case pkcs11.CKR_USER_NOT_LOGGED_IN:
		return ErrNotLoggedIn
	case pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_DEVICE_REMOVED:
		return ErrTokenNotPresent
	case pkcs11.CKR_TOKEN_NOT_RECOGNIZED:
		return ErrTokenNotInitialized
	case pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_MEMORY:
		return ErrDevice
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED:
		return ErrSessionLost
	case pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID:
		return ErrInvalidHandle
	case pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		pkcs11.CKR_SIGNATURE_INVALID, pkcs11.CKR_SIGNATURE_LEN_RANGE:
		return ErrAuthentication
	case pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_DATA_INVALID, pkcs11.CKR_ARGUMENTS_BAD:
		return ErrInvalidInput
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID,
		pkcs11.CKR_FUNCTION_NOT_SUPPORTED, pkcs11.CKR_KEY_TYPE_INCONSISTENT:
		return ErrUnsupported
	case pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return ErrClosed
	}
	return ErrPKCS11
}

// wrap turns any error into an *Error for op. A pkcs11.Error keeps its code;
// an *Error from a lower layer keeps its sentinel and code but takes op.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return &Error{Op: op, Err: e.Err, Code: e.Code, Msg: e.Msg}
	}
	var c pkcs11.Error
	if errors.As(err, &c) {
		return &Error{Op: op, Err: sentinelFor(c), Code: c}
	}
	return &Error{Op: op, Err: ErrPKCS11, Msg: err.Error()}
}

// fail builds an *Error that did not come from the module.
func fail(op string, sentinel error, msg string) error {
	return &Error{Op: op, Err: sentinel, Msg: msg}
}

// retriable reports whether err means the session (not the request) is bad:
// the pool then reopens a session and retries the operation once.
func retriable(err error) bool {
	var c pkcs11.Error
	if !errors.As(err, &c) {
		return false
	}
	switch uint(c) {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_PRESENT:
		return true
	}
	return false
}
