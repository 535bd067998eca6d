package xks

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"github.com/trentkms/trent/internal/strictjson"
)

// keyIDPattern is the specification's externalKeyId: 1 to 128 of A-Z,
// a-z, 0-9, '-', '.', '_'.
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ValidKeyID reports whether id is a well-formed externalKeyId.
func ValidKeyID(id string) bool { return keyIDPattern.MatchString(id) }

// uriPathPattern is AWS's XksProxyUriPath: an optional prefix of
// segments of A-Z, a-z, 0-9, '-', '_', then /kms/xks/v1.
var uriPathPattern = regexp.MustCompile(`^(/[A-Za-z0-9_-]+)*/kms/xks/v1$`)

// ValidURIPath reports whether p is a well-formed URI path: at most 128
// characters, "[/<prefix>]/kms/xks/v1".
func ValidURIPath(p string) bool {
	return len(p) <= MaxURIPathLen && uriPathPattern.MatchString(p)
}

// fieldError is a member that is missing, malformed or out of bounds.
type fieldError struct {
	field string
	msg   string
	// tooLarge: within the specification but above this implementation's
	// limit (UnsupportedOperationException, not ValidationException).
	tooLarge bool
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func badField(field, format string, a ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, a...)}
}

// decodeBlob decodes a base64 member strictly (standard alphabet, padded,
// no line breaks, no stray bits) of at most max bytes.
func decodeBlob(field, s string, max int) ([]byte, error) {
	if len(s) > base64.StdEncoding.EncodedLen(max) {
		return nil, badField(field, "more than %d bytes", max)
	}
	if strings.ContainsAny(s, "\r\n") {
		return nil, badField(field, "not base64")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, badField(field, "not base64")
	}
	if len(b) > max {
		return nil, badField(field, "more than %d bytes", max)
	}
	return b, nil
}

// required returns *p, or an error naming field if p is nil (absent).
func required(field string, p *string) (string, error) {
	if p == nil {
		return "", badField(field, "missing")
	}
	return *p, nil
}

// requiredBlob decodes a required base64 member.
func requiredBlob(field string, p *string, max int) ([]byte, error) {
	s, err := required(field, p)
	if err != nil {
		return nil, err
	}
	return decodeBlob(field, s, max)
}

// optionalBlob decodes an optional base64 member: nil if absent.
func optionalBlob(field string, p *string, max int) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	b, err := decodeBlob(field, *p, max)
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

// unmarshal decodes data strictly (no unknown or duplicate members,
// case-sensitive names, nothing after the value) into v.
func unmarshal(data []byte, limit int, v any) error {
	if err := strictjson.Unmarshal(data, limit, v); err != nil {
		return badField("body", "%s", strings.TrimPrefix(err.Error(), "strictjson: "))
	}
	return nil
}

// printable returns s if it is at most max printable ASCII characters,
// else s with other characters replaced by '?' and cut to max.
func printable(s string, max int) string {
	b := []byte(s)
	if len(b) > max {
		b = b[:max]
	}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
