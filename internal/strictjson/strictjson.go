// Package strictjson decodes JSON from outside Trent strictly: one value,
// no unknown fields, no duplicate object keys (at any depth), no trailing
// data, and a size limit. encoding/json accepts duplicate keys (the last
// wins) and that is what this package adds; everything else is
// encoding/json's own checks, switched on.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every error Unmarshal returns.
var ErrInvalid = errors.New("strictjson: invalid document")

// MaxDepth bounds nesting.
const MaxDepth = 64

// Unmarshal decodes data (at most limit bytes) into v.
func Unmarshal(data []byte, limit int, v any) error {
	if len(data) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalid, len(data), limit)
	}
	if err := checkKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the value", ErrInvalid)
	}
	return nil
}

// checkKeys refuses a repeated key in any object, and nesting deeper than
// MaxDepth. Hand-written because encoding/json accepts duplicate keys and
// its Token API, which could find them, allocates per token (it was a
// tenth of the KMS API's request cost): this scanner reads the bytes once
// and allocates only per object. It trusts nothing: input that is not
// JSON either makes it fail or is refused by the decoder that runs after
// it; for valid JSON it finds every duplicate, comparing keys after
// unescaping them.
func checkKeys(data []byte) error {
	type frame struct {
		object bool
		keys   map[string]struct{}
	}
	var stack []frame
	expectKey := false // the next string in the top object is a key
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			if len(stack) >= MaxDepth {
				return fmt.Errorf("%w: nested deeper than %d", ErrInvalid, MaxDepth)
			}
			stack = append(stack, frame{object: c == '{'})
			expectKey = c == '{'
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].object
		case '"':
			end, escaped := scanString(data, i)
			if end < 0 {
				return fmt.Errorf("%w: unterminated string", ErrInvalid)
			}
			if expectKey && len(stack) > 0 {
				top := &stack[len(stack)-1]
				key, err := decodeKey(data[i:end+1], escaped)
				if err != nil {
					return err
				}
				if top.keys == nil {
					top.keys = make(map[string]struct{}, 8)
				}
				if _, dup := top.keys[key]; dup {
					return fmt.Errorf("%w: duplicate key %q", ErrInvalid, key)
				}
				top.keys[key] = struct{}{}
				expectKey = false
			}
			i = end
		}
	}
	return nil
}

// decodeKey is the key whose quoted form is quoted, as encoding/json
// decodes it: escapes resolved, invalid UTF-8 made U+FFFD (so "\xfd" and
// "\xfe" are the same key). Plain keys skip encoding/json.
func decodeKey(quoted []byte, escaped bool) (string, error) {
	key := string(quoted[1 : len(quoted)-1])
	if escaped || !utf8.ValidString(key) {
		if err := json.Unmarshal(quoted, &key); err != nil {
			return "", fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return key, nil
}

// scanString returns the index of the quote that closes the string whose
// opening quote is at data[start] (-1 if none) and whether it holds an
// escape.
func scanString(data []byte, start int) (int, bool) {
	escaped := false
	for j := start + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j, escaped
		}
	}
	return -1, escaped
}

// Member is one member of a JSON object: its key (unescaped) and its
// value's bytes, undecoded.
type Member struct {
	Key   string
	Value []byte
}

// Members splits a JSON object into its members, in order, without
// decoding the values: the object's own syntax (braces, quoted keys,
// colons, commas, nothing after it but white space) is checked, and each
// value's extent found as checkKeys finds strings and nesting, but the
// values' contents are not checked. A caller decodes the values it uses
// (encoding/json then checks them) and may skip the rest unread: the
// audit trail drops an 8 KiB attestation document this way, where
// encoding/json would scan it twice to hand it back (hand-written for that
// reason, as checkKeys is). Duplicate keys are returned as they come.
func Members(data []byte) ([]Member, error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, fmt.Errorf("%w: not an object", ErrInvalid)
	}
	i = skipSpace(data, i+1)
	var out []Member
	if i < len(data) && data[i] == '}' {
		return out, checkEnd(data, i+1)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, fmt.Errorf("%w: object key expected", ErrInvalid)
		}
		end, escaped := scanString(data, i)
		if end < 0 {
			return nil, fmt.Errorf("%w: unterminated string", ErrInvalid)
		}
		key, err := decodeKey(data[i:end+1], escaped)
		if err != nil {
			return nil, err
		}
		i = skipSpace(data, end+1)
		if i >= len(data) || data[i] != ':' {
			return nil, fmt.Errorf("%w: ':' expected after key %q", ErrInvalid, key)
		}
		start := skipSpace(data, i+1)
		vend, err := valueEnd(data, start)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Key: key, Value: data[start:vend]})
		i = skipSpace(data, vend)
		switch {
		case i < len(data) && data[i] == ',':
			i = skipSpace(data, i+1)
		case i < len(data) && data[i] == '}':
			return out, checkEnd(data, i+1)
		default:
			return nil, fmt.Errorf("%w: ',' or '}' expected after the value of %q", ErrInvalid, key)
		}
	}
}

// valueEnd returns the end of the value that starts at data[start]: the
// first ',', '}' or white space outside strings and nesting.
func valueEnd(data []byte, start int) (int, error) {
	depth := 0
	for i := start; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			end, _ := scanString(data, i)
			if end < 0 {
				return 0, fmt.Errorf("%w: unterminated string", ErrInvalid)
			}
			i = end
		case '{', '[':
			if depth++; depth > MaxDepth {
				return 0, fmt.Errorf("%w: nested deeper than %d", ErrInvalid, MaxDepth)
			}
		case '}', ']':
			if depth == 0 {
				if c == ']' || i == start {
					return 0, fmt.Errorf("%w: value expected", ErrInvalid)
				}
				return i, nil
			}
			depth--
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				if i == start {
					return 0, fmt.Errorf("%w: value expected", ErrInvalid)
				}
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: unexpected end of object", ErrInvalid)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

func checkEnd(data []byte, i int) error {
	if skipSpace(data, i) != len(data) {
		return fmt.Errorf("%w: data after the value", ErrInvalid)
	}
	return nil
}
