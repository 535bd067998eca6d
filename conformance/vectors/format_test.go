package vectors

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// The file format (README.md, schema.json): one JSON file per object
// family, written by hand here so that the key order, and so the bytes, are
// fixed.

const (
	formatName    = "trent-vectors"
	formatVersion = 1
	dir           = "v1"
)

// Field types.
const (
	tHex   = "hex"     // a byte string, lowercase hex
	tStr   = "string"  // text
	tInt   = "integer" // a JSON number (all are below 2^53)
	tPairs = "pairs"   // a list of [key, value] string pairs, in the order given
	tList  = "hex-list"
)

// fieldDoc documents one field name of a file.
type fieldDoc struct {
	name, typ, doc string
}

// vfile is one vector file being built.
type vfile struct {
	name   string // file name, e.g. hello.json
	object string
	spec   string
	prefix string // test ID prefix
	notes  []string
	fields []fieldDoc
	tests  []*vtest
}

// vtest is one test.
type vtest struct {
	id, comment, result, reason string
	kv                          []kv
}

type kv struct {
	name string
	val  any // []byte, string, uint64, [][2]string, [][]byte
}

const (
	valid   = "valid"
	invalid = "invalid"
)

// add appends a test; reason is empty for a valid one.
func (f *vfile) add(comment, reason string) *vtest {
	t := &vtest{id: fmt.Sprintf("%s-%03d", f.prefix, len(f.tests)+1), comment: comment, result: valid}
	if reason != "" {
		t.result, t.reason = invalid, reason
	}
	f.tests = append(f.tests, t)
	return t
}

func (t *vtest) h(name string, b []byte) *vtest {
	t.kv = append(t.kv, kv{name, append([]byte{}, b...)})
	return t
}
func (t *vtest) s(name, v string) *vtest { t.kv = append(t.kv, kv{name, v}); return t }
func (t *vtest) n(name string, v uint64) *vtest {
	t.kv = append(t.kv, kv{name, v})
	return t
}
func (t *vtest) pairs(name string, p [][2]string) *vtest {
	t.kv = append(t.kv, kv{name, p})
	return t
}
func (t *vtest) list(name string, l [][]byte) *vtest {
	t.kv = append(t.kv, kv{name, l})
	return t
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}

// encode renders the file, checking that every field is documented with
// its type.
func (f *vfile) encode() ([]byte, error) {
	types := map[string]string{}
	for _, d := range f.fields {
		if _, dup := types[d.name]; dup {
			return nil, fmt.Errorf("%s: field %q documented twice", f.name, d.name)
		}
		types[d.name] = d.typ
	}
	used := map[string]bool{}
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("{\n")
	p("  \"format\": %s,\n", jsonString(formatName))
	p("  \"version\": %d,\n", formatVersion)
	p("  \"object\": %s,\n", jsonString(f.object))
	p("  \"spec\": %s,\n", jsonString(f.spec))
	p("  \"notes\": [\n")
	for i, n := range f.notes {
		p("    %s%s\n", jsonString(n), comma(i, len(f.notes)))
	}
	p("  ],\n")
	p("  \"fields\": {\n")
	for i, d := range f.fields {
		p("    %s: {\"type\": %s, \"doc\": %s}%s\n", jsonString(d.name), jsonString(d.typ), jsonString(d.doc), comma(i, len(f.fields)))
	}
	p("  },\n")
	p("  \"tests\": [\n")
	ids := map[string]bool{}
	for i, t := range f.tests {
		if ids[t.id] {
			return nil, fmt.Errorf("%s: test ID %s twice", f.name, t.id)
		}
		ids[t.id] = true
		p("    {\n")
		p("      \"id\": %s,\n", jsonString(t.id))
		p("      \"comment\": %s,\n", jsonString(t.comment))
		p("      \"result\": %s", jsonString(t.result))
		if t.reason != "" {
			p(",\n      \"reason\": %s", jsonString(t.reason))
		}
		seen := map[string]bool{}
		for _, e := range t.kv {
			if seen[e.name] {
				return nil, fmt.Errorf("%s %s: field %q twice", f.name, t.id, e.name)
			}
			seen[e.name] = true
			used[e.name] = true
			want, ok := types[e.name]
			if !ok {
				return nil, fmt.Errorf("%s %s: field %q not documented", f.name, t.id, e.name)
			}
			var val, typ string
			switch v := e.val.(type) {
			case []byte:
				typ, val = tHex, jsonString(hex.EncodeToString(v))
			case string:
				typ, val = tStr, jsonString(v)
			case uint64:
				if v >= 1<<53 {
					return nil, fmt.Errorf("%s %s: %q does not fit a JSON number", f.name, t.id, e.name)
				}
				typ, val = tInt, strconv.FormatUint(v, 10)
			case [][2]string:
				typ = tPairs
				var parts []string
				for _, pr := range v {
					parts = append(parts, "["+jsonString(pr[0])+", "+jsonString(pr[1])+"]")
				}
				val = "[" + join(parts) + "]"
			case [][]byte:
				typ = tList
				var parts []string
				for _, x := range v {
					parts = append(parts, jsonString(hex.EncodeToString(x)))
				}
				val = "[" + join(parts) + "]"
			default:
				return nil, fmt.Errorf("%s %s: %q of type %T", f.name, t.id, e.name, e.val)
			}
			if typ != want {
				return nil, fmt.Errorf("%s %s: %q is %s, documented as %s", f.name, t.id, e.name, typ, want)
			}
			p(",\n      %s: %s", jsonString(e.name), val)
		}
		p("\n    }%s\n", comma(i, len(f.tests)))
	}
	p("  ]\n}\n")
	for _, d := range f.fields {
		if !used[d.name] {
			return nil, fmt.Errorf("%s: documented field %q unused", f.name, d.name)
		}
	}
	return b.Bytes(), nil
}

func comma(i, n int) string {
	if i < n-1 {
		return ","
	}
	return ""
}

func join(parts []string) string {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p)
	}
	return b.String()
}

// counts returns the valid and invalid counts of f.
func (f *vfile) counts() (v, inv int) {
	for _, t := range f.tests {
		if t.result == valid {
			v++
		} else {
			inv++
		}
	}
	return
}

// Reading: a loaded file, as any other implementation would see it.

type loadedFile struct {
	Format  string                     `json:"format"`
	Version int                        `json:"version"`
	Object  string                     `json:"object"`
	Spec    string                     `json:"spec"`
	Notes   []string                   `json:"notes"`
	Fields  map[string]json.RawMessage `json:"fields"`
	Tests   []map[string]json.RawMessage
}

type fieldType struct {
	Type string `json:"type"`
	Doc  string `json:"doc"`
}

// vec is one loaded test.
type vec struct {
	t      testing.TB
	ID     string
	Result string
	Reason string
	raw    map[string]json.RawMessage
	types  map[string]string
}

func loadFile(t testing.TB, name string) []*vec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("%v (go test ./conformance/vectors/ -run TestGenerate -update writes it)", err)
	}
	var lf loadedFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lf); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if lf.Format != formatName || lf.Version != formatVersion {
		t.Fatalf("%s: format %q version %d", name, lf.Format, lf.Version)
	}
	types := map[string]string{}
	for k, raw := range lf.Fields {
		var ft fieldType
		if err := json.Unmarshal(raw, &ft); err != nil {
			t.Fatalf("%s: field %s: %v", name, k, err)
		}
		types[k] = ft.Type
	}
	var out []*vec
	for _, m := range lf.Tests {
		v := &vec{t: t, raw: m, types: types}
		v.ID, v.Result, v.Reason = v.str("id"), v.str("result"), ""
		if v.Result == invalid {
			v.Reason = v.str("reason")
		} else if v.Result != valid {
			t.Fatalf("%s %s: result %q", name, v.ID, v.Result)
		}
		out = append(out, v)
	}
	return out
}

func (v *vec) has(name string) bool { _, ok := v.raw[name]; return ok }

func (v *vec) str(name string) string {
	v.t.Helper()
	raw, ok := v.raw[name]
	if !ok {
		v.t.Fatalf("%s: no field %q", v.ID, name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		v.t.Fatalf("%s: %s: %v", v.ID, name, err)
	}
	return s
}

func (v *vec) hex(name string) []byte {
	v.t.Helper()
	if v.types[name] != tHex {
		v.t.Fatalf("%s: %q is not a hex field", v.ID, name)
	}
	b, err := hex.DecodeString(v.str(name))
	if err != nil {
		v.t.Fatalf("%s: %s: %v", v.ID, name, err)
	}
	return b
}

func (v *vec) num(name string) uint64 {
	v.t.Helper()
	raw, ok := v.raw[name]
	if !ok || v.types[name] != tInt {
		v.t.Fatalf("%s: no integer field %q", v.ID, name)
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		v.t.Fatalf("%s: %s: %v", v.ID, name, err)
	}
	return n
}

func (v *vec) pairs(name string) [][2]string {
	v.t.Helper()
	var p [][2]string
	if err := json.Unmarshal(v.raw[name], &p); err != nil || v.types[name] != tPairs {
		v.t.Fatalf("%s: %s: %v", v.ID, name, err)
	}
	return p
}

func (v *vec) list(name string) [][]byte {
	v.t.Helper()
	var l []string
	if err := json.Unmarshal(v.raw[name], &l); err != nil || v.types[name] != tList {
		v.t.Fatalf("%s: %s: %v", v.ID, name, err)
	}
	var out [][]byte
	for _, s := range l {
		b, err := hex.DecodeString(s)
		if err != nil {
			v.t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// sortedKeys is for maps in error messages.
func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
