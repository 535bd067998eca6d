// Package strictjson decodes JSON from outside Trent strictly: one value,
// no unknown fields, no duplicate object keys (at any depth), no trailing
// data, and a size limit. Member names are matched exactly, as AWS's JSON
// protocols match them: encoding/json matches a key to a struct field
// case-insensitively ("keyid" fills KeyId), so a key that is not exactly a
// field's name is refused here as an unknown field, in structs at every
// depth. A []byte field takes only a base64 string (encoding/json also
// takes an array of numbers). encoding/json accepts duplicate keys (the
// last wins); everything else is encoding/json's own checks, switched on.
//
// A type may decode its usual documents itself (FastDecoder): Unmarshal
// asks it first and, if it declines, decodes as above. It must decline
// anything it does not decode exactly as the above would, refusals
// included, so that its answer, when it gives one, is the one Unmarshal
// would give; Scanner's methods read the common shapes (strings, blobs,
// booleans, small integers, string arrays and maps, objects of known
// members) on those terms and decline the rest (null, escaped keys,
// invalid UTF-8, unusual numbers). The KMS API's hot requests use it.
//
// A value whose type implements json.Unmarshaler (json.RawMessage among
// them), an interface or a map is not matched against names: only its
// duplicates, depth and syntax are checked.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every error Unmarshal returns.
var ErrInvalid = errors.New("strictjson: invalid document")

// ErrUnknownMember and ErrBlobNotString are wrapped, with ErrInvalid, by
// Unmarshal's errors for a key that is no member of its struct (names are
// case-sensitive) and for an array given to a []byte.
var (
	ErrUnknownMember = errors.New("unknown field")
	ErrBlobNotString = errors.New("a blob is a base64 string")
)

// MaxDepth bounds nesting.
const MaxDepth = 64

// Unmarshal decodes data (at most limit bytes) into v.
//
// When v is a non-nil pointer to a zero value and implements FastDecoder,
// its DecodeFast is tried first; if it declines, *v is made zero again
// and decoded as below, so every error is the same either way.
//
// For a type whose every struct checkKeys can see (no interface fields,
// json tags as encoding/json reads them: plainType), checkKeys already
// refuses every key encoding/json's DisallowUnknownFields would, so the
// value is decoded with json.Unmarshal, which costs less than a Decoder
// (no copy of the input, no token after it). Any error is then reported
// as the Decoder reports it, by decoding again into a fresh value, so
// that the messages are the same whichever way a type is decoded.
func Unmarshal(data []byte, limit int, v any) error {
	if len(data) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalid, len(data), limit)
	}
	if fd, ok := v.(FastDecoder); ok {
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().IsZero() {
			if fd.DecodeFast(data) {
				return nil
			}
			rv.Elem().SetZero()
		}
	}
	t := reflect.TypeOf(v)
	if err := checkKeys(data, t); err != nil {
		return err
	}
	if t != nil && t.Kind() == reflect.Pointer && !reflect.ValueOf(v).IsNil() && plainType(t) {
		err := json.Unmarshal(data, v)
		if err == nil {
			return nil
		}
		if derr := decode(data, reflect.New(t.Elem()).Interface()); derr != nil {
			return derr // the Decoder's message
		}
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return decode(data, v)
}

// decode is Unmarshal's decoding with a Decoder that refuses unknown
// fields and anything after the value.
func decode(data []byte, v any) error {
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

// maxInlineKeys is how many keys of one object checkKeys compares one by
// one before it indexes them in a map.
const maxInlineKeys = 16

// checkKeys refuses a repeated key in any object, and nesting deeper than
// MaxDepth; with root, the type the document is decoded into, it also
// refuses a key of a struct object that is not exactly one of the
// struct's member names, and an array for a []byte. Hand-written because
// encoding/json accepts duplicate keys and matches names
// case-insensitively, and its Token API, which could find them,
// allocates per token (it was a tenth of the KMS API's request cost):
// this scanner reads the bytes once and, for the usual request (objects
// of at most maxInlineKeys keys, keys without escapes, depth at most 8),
// allocates nothing: keys are compared as slices of data, a struct's
// members are found by a map lookup that copies nothing, and shapes are
// cached by type. It trusts nothing: input that is not JSON either makes
// it fail or is refused by the decoder that runs after it; for valid JSON
// it finds every duplicate, comparing keys after unescaping them.
func checkKeys(data []byte, root reflect.Type) error {
	type frame struct {
		object bool
		first  int                 // the object's first key in seen
		keys   map[string]struct{} // its keys, once it has more than maxInlineKeys
		shape  *shape              // what the container decodes into; nil: anything
		value  reflect.Type        // the current member's type (object) or the element type (array)
		key    []byte              // the current member's key, for messages
	}
	var (
		buf       [8]frame // the usual depth, without allocating
		stack     = buf[:0]
		seenBuf   [32][]byte // the keys of the open objects, innermost last
		seen      = seenBuf[:0]
		rootSh    = shapeOf(root)
		expectKey = false // the next string in the top object is a key
	)
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			if len(stack) >= MaxDepth {
				return fmt.Errorf("%w: nested deeper than %d", ErrInvalid, MaxDepth)
			}
			sh, key := rootSh, []byte(nil)
			if len(stack) > 0 {
				top := &stack[len(stack)-1]
				sh, key = shapeOf(top.value), top.key
			}
			if c == '[' && sh != nil && sh.blob {
				return fmt.Errorf("%w: %s: %w, not an array", ErrInvalid, member(key), ErrBlobNotString)
			}
			f := frame{object: c == '{', shape: sh, first: len(seen)}
			if c == '[' {
				f.key = key // an array's elements are named by its member
				if sh != nil {
					f.value = sh.elem
				}
			}
			stack = append(stack, f)
			expectKey = c == '{'
		case '}', ']':
			if len(stack) > 0 {
				seen = seen[:stack[len(stack)-1].first]
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
				key := data[i+1 : end]
				if escaped || !utf8.Valid(key) {
					k, err := decodeKey(data[i:end+1], escaped)
					if err != nil {
						return err
					}
					key = []byte(k)
				}
				if top.keys == nil {
					for _, k := range seen[top.first:] {
						if bytes.Equal(k, key) {
							return fmt.Errorf("%w: duplicate key %q", ErrInvalid, key)
						}
					}
					if len(seen)-top.first < maxInlineKeys {
						seen = append(seen, key)
					} else {
						top.keys = make(map[string]struct{}, 2*maxInlineKeys)
						for _, k := range seen[top.first:] {
							top.keys[string(k)] = struct{}{}
						}
						top.keys[string(key)] = struct{}{}
					}
				} else {
					if _, dup := top.keys[string(key)]; dup {
						return fmt.Errorf("%w: duplicate key %q", ErrInvalid, key)
					}
					top.keys[string(key)] = struct{}{}
				}
				top.key, top.value = key, nil
				if sh := top.shape; sh != nil {
					if sh.fields != nil {
						t, ok := sh.fields[string(key)]
						if !ok {
							return fmt.Errorf("%w: %w %q (member names are case-sensitive)", ErrInvalid, ErrUnknownMember, key)
						}
						top.value = t
					} else {
						top.value = sh.elem
					}
				}
				expectKey = false
			}
			i = end
		}
	}
	return nil
}

func member(key []byte) string {
	if len(key) == 0 {
		return "the value"
	}
	return fmt.Sprintf("%q", key)
}

// shape is what encoding/json decodes an object or array into, as far as
// checkKeys looks: a struct's members by exact name, or a map's, slice's
// or array's element type, or a blob ([]byte, which takes only a base64
// string).
type shape struct {
	fields map[string]reflect.Type // a struct's members
	elem   reflect.Type            // a map's, slice's or array's elements
	blob   bool
}

var (
	unmarshaler = reflect.TypeFor[json.Unmarshaler]()
	shapes      sync.Map // reflect.Type → *shape, nil for anything
	plains      sync.Map // reflect.Type → bool (plainType)
)

// shapeOf is the shape of type t, nil if anything goes (no type, an
// interface, a json.Unmarshaler, a scalar: encoding/json then decides).
// Cached by type, nil shapes too: checkKeys asks once per '{' and '['.
func shapeOf(t reflect.Type) *shape {
	if t == nil {
		return nil
	}
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	s := newShape(t)
	shapes.Store(t, s)
	return s
}

func newShape(t reflect.Type) *shape {
	for {
		if t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler) {
			return nil
		}
		if t.Kind() != reflect.Pointer {
			break
		}
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return &shape{fields: structFields(t)}
	case reflect.Map, reflect.Array:
		return &shape{elem: t.Elem()}
	case reflect.Slice:
		return &shape{elem: t.Elem(), blob: t.Elem().Kind() == reflect.Uint8}
	}
	return nil
}

// plainType reports whether checkKeys sees every struct that
// encoding/json may decode an object of a document into when it decodes
// into a value of type t: no interface is reachable from t (an interface
// may hold a struct pointer that encoding/json decodes into), and every
// json tag's name is one encoding/json takes as it stands (it reads an
// invalid one as no name). Types behind a json.Unmarshaler do not count:
// their own code decodes them, the same either way. Cached by type.
func plainType(t reflect.Type) bool {
	if p, ok := plains.Load(t); ok {
		return p.(bool)
	}
	p := plainWalk(t, map[reflect.Type]bool{})
	plains.Store(t, p)
	return p
}

func plainWalk(t reflect.Type, visited map[reflect.Type]bool) bool {
	for {
		if t.Kind() == reflect.Interface {
			return false
		}
		if t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler) {
			return true
		}
		if t.Kind() != reflect.Pointer {
			break
		}
		t = t.Elem()
	}
	if visited[t] {
		return true
	}
	visited[t] = true
	switch t.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array:
		return plainWalk(t.Elem(), visited)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			if name, _, _ := strings.Cut(tag, ","); name != "" && !validTag(name) {
				return false
			}
			if (f.IsExported() || f.Anonymous) && !plainWalk(f.Type, visited) {
				return false
			}
		}
	}
	return true
}

// validTag is encoding/json's test of a tag's name (isValidTag).
func validTag(s string) bool {
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// structFields are the member names encoding/json decodes into struct t,
// with their types: exported fields by their json tag's name or, untagged,
// their Go name; "-" skipped; embedded structs' fields promoted, the
// shallowest winning and, at one depth, the only tagged one (encoding/json's
// rules; a name they leave ambiguous is no member).
func structFields(t reflect.Type) map[string]reflect.Type {
	type cand struct {
		typ    reflect.Type
		depth  int
		tagged bool
		n      int // candidates at this depth
	}
	found := map[string]*cand{}
	type level struct {
		t     reflect.Type
		depth int
	}
	queue := []level{{t, 0}}
	visited := map[reflect.Type]bool{}
	for len(queue) > 0 {
		l := queue[0]
		queue = queue[1:]
		if visited[l.t] {
			continue
		}
		visited[l.t] = true
		for i := range l.t.NumField() {
			f := l.t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if !f.IsExported() && et.Kind() != reflect.Struct {
					continue
				}
				if name == "" && et.Kind() == reflect.Struct {
					queue = append(queue, level{et, l.depth + 1})
					continue
				}
			} else if !f.IsExported() {
				continue
			}
			tagged := name != ""
			if !tagged {
				name = f.Name
			}
			c := found[name]
			switch {
			case c == nil || l.depth < c.depth:
				found[name] = &cand{typ: ft, depth: l.depth, tagged: tagged, n: 1}
			case l.depth == c.depth:
				if tagged && !c.tagged {
					found[name] = &cand{typ: ft, depth: l.depth, tagged: true, n: 1}
				} else if tagged == c.tagged {
					c.n++
				}
			}
		}
	}
	out := make(map[string]reflect.Type, len(found))
	for name, c := range found {
		if c.n == 1 {
			out[name] = c.typ
		}
	}
	return out
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
	return MembersIntern(data, nil)
}

// MembersIntern is Members that takes a key without escapes that is in
// names from names (names[k] is k) instead of copying it from data: a
// caller that splits many objects with the same member names passes
// them once here.
func MembersIntern(data []byte, names map[string]string) ([]Member, error) {
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
		key, interned := "", false
		if !escaped && names != nil {
			key, interned = names[string(data[i+1:end])]
		}
		if !interned {
			var err error
			if key, err = decodeKey(data[i:end+1], escaped); err != nil {
				return nil, err
			}
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
		if out == nil {
			out = make([]Member, 0, 8) // one allocation for a request's usual few members
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
