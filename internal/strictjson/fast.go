package strictjson

import (
	"encoding/base64"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// FastDecoder is a type that decodes the usual shapes of its documents
// itself, in one pass and without reflection (the KMS API's hot
// requests). Unmarshal asks it first, when v is a non-nil pointer to a
// zero value.
type FastDecoder interface {
	// DecodeFast decodes data into the receiver (which is its zero
	// value) if data is in a shape it reads exactly as Unmarshal would,
	// and reports whether it did; on false the receiver's contents are
	// unspecified and Unmarshal decodes into a fresh value the usual way.
	DecodeFast(data []byte) bool
}

// Scanner reads one JSON document front to back for a FastDecoder. Each
// method skips white space, reads one value of the shape it names and
// reports whether it found one that it decodes exactly as encoding/json
// decodes it into a value of that type. What follows a value is checked
// by what reads next: Object and the arrays and maps want a ',' or their
// end, End nothing but white space (so "truex" is never read as true).
// Anything it is not sure of (null, a string with invalid UTF-8 or an
// escaped lone surrogate, a number with a sign, fraction or exponent or
// more than 18 digits, an escaped member name) is false, as is anything
// that is not JSON; after a false the Scanner's position is unspecified.
type Scanner struct {
	data []byte
	i    int
}

// NewScanner is a Scanner at the start of data.
func NewScanner(data []byte) Scanner { return Scanner{data: data} }

// maxObjectNames bounds the names Object takes (one bit of a uint64 each).
const maxObjectNames = 64

// Object reads an object whose keys are among names (compared exactly,
// without escapes), each at most once, calling member with the key's name
// and the Scanner at its value, which member must read. False for an
// unknown key, a repeated one, an escaped one, more than 64 names, or
// when member returns false.
func (s *Scanner) Object(names []string, member func(name string) bool) bool {
	if len(names) > maxObjectNames || s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	var seen uint64
	for {
		key, escaped, ok := s.str()
		if !ok || escaped {
			return false
		}
		n := -1
		for j, name := range names {
			if name == string(key) {
				n = j
				break
			}
		}
		if n < 0 || seen&(1<<n) != 0 {
			return false
		}
		seen |= 1 << n
		if s.peek() != ':' {
			return false
		}
		s.i++
		if !member(names[n]) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// End reports whether nothing but white space is left.
func (s *Scanner) End() bool {
	s.space()
	return s.i == len(s.data)
}

// String reads a string (escapes resolved).
func (s *Scanner) String() (string, bool) {
	raw, escaped, ok := s.str()
	if !ok {
		return "", false
	}
	if escaped {
		if raw, ok = unescape(raw); !ok {
			return "", false
		}
	}
	return string(raw), true
}

// StringPtr is String for a *string.
func (s *Scanner) StringPtr() (*string, bool) {
	v, ok := s.String()
	if !ok {
		return nil, false
	}
	return &v, true
}

// Bytes reads a []byte: a base64 string (standard encoding, padded; \r
// and \n in it skipped), as encoding/json decodes it; "" is an empty
// slice, not nil.
func (s *Scanner) Bytes() ([]byte, bool) {
	raw, escaped, ok := s.str()
	if !ok {
		return nil, false
	}
	if escaped {
		if raw, ok = unescape(raw); !ok {
			return nil, false
		}
		defer clear(raw) // base64 of what may be a secret
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(b, raw)
	if err != nil {
		clear(b)
		return nil, false
	}
	return b[:n], true
}

// Bool reads true or false.
func (s *Scanner) Bool() (v, ok bool) {
	s.space()
	switch rest := s.data[s.i:]; {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		s.i += 4
		v = true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		s.i += 5
	default:
		return false, false
	}
	return v, true
}

// maxIntDigits is the most digits Int reads: any such number fits an
// int64.
const maxIntDigits = 18

// Int reads a non-negative integer: digits only (no sign, fraction or
// exponent; no leading zero, which JSON forbids), at most 18 of them and
// within int's range.
func (s *Scanner) Int() (int, bool) {
	s.space()
	start := s.i
	var n int64
	for s.i < len(s.data) && '0' <= s.data[s.i] && s.data[s.i] <= '9' {
		n = n*10 + int64(s.data[s.i]-'0')
		s.i++
	}
	digits := s.i - start
	if digits == 0 || digits > maxIntDigits || (digits > 1 && s.data[start] == '0') || int64(int(n)) != n {
		return 0, false
	}
	return int(n), true
}

// IntPtr is Int for an *int.
func (s *Scanner) IntPtr() (*int, bool) {
	v, ok := s.Int()
	if !ok {
		return nil, false
	}
	return &v, true
}

// Strings reads an array of strings; [] is an empty slice, not nil.
func (s *Scanner) Strings() ([]string, bool) {
	if s.peek() != '[' {
		return nil, false
	}
	s.i++
	out := []string{}
	if s.peek() == ']' {
		s.i++
		return out, true
	}
	for {
		v, ok := s.String()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return out, true
		default:
			return nil, false
		}
	}
}

// StringMap reads an object of strings into a map (keys unescaped, a
// repeated one false); {} is an empty map, not nil.
func (s *Scanner) StringMap() (map[string]string, bool) {
	if s.peek() != '{' {
		return nil, false
	}
	s.i++
	m := make(map[string]string)
	if s.peek() == '}' {
		s.i++
		return m, true
	}
	for {
		k, ok := s.String()
		if !ok {
			return nil, false
		}
		if _, dup := m[k]; dup || s.peek() != ':' {
			return nil, false
		}
		s.i++
		v, ok := s.String()
		if !ok {
			return nil, false
		}
		m[k] = v
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return m, true
		default:
			return nil, false
		}
	}
}

func (s *Scanner) space() { s.i = skipSpace(s.data, s.i) }

// peek skips white space and returns the next byte, 0 at the end.
func (s *Scanner) peek() byte {
	s.space()
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

// str reads a string: its bytes between the quotes as they stand and
// whether they hold an escape (unescape checks those). False for a
// control character, invalid UTF-8 (which encoding/json would make
// U+FFFD) or no closing quote.
func (s *Scanner) str() (raw []byte, escaped, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	start, ascii := s.i+1, true
	for j := start; j < len(s.data); j++ {
		for j < len(s.data) && plainByte[s.data[j]] {
			j++
		}
		if j == len(s.data) {
			break
		}
		switch c := s.data[j]; {
		case c == '"':
			raw = s.data[start:j]
			if !ascii && !utf8.Valid(raw) {
				return nil, false, false
			}
			s.i = j + 1
			return raw, escaped, true
		case c == '\\':
			escaped = true
			j++
		case c < ' ':
			return nil, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false, false
}

// plainByte are the bytes str passes over as they are: ASCII but for
// control characters, '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unescape is a string's contents with its escapes resolved, as
// encoding/json resolves them; false for an invalid escape and for a
// \u surrogate that is not the first half of a pair (encoding/json makes
// it U+FFFD).
func unescape(raw []byte) ([]byte, bool) {
	out := make([]byte, 0, len(raw)) // no escape is shorter than what it stands for
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 == len(raw) {
			return nil, false
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(raw[i:])
			if r < 0 {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				r = utf16.DecodeRune(r, hex4(raw[i+6:]))
				if r == unicode.ReplacementChar {
					return nil, false
				}
				i += 6
			}
			out = utf8.AppendRune(out, r)
			i += 6
			continue
		default:
			return nil, false
		}
		i += 2
	}
	return out, true
}

// hex4 is the code unit of the \uXXXX escape b starts with, -1 if none.
func hex4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}
