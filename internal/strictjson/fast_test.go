package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// scanLike reads in with read and reports whether it read all of it; if
// so, encoding/json must decode in into a T to the same value.
func scanLike[T any](t testing.TB, in []byte, read func(*Scanner) (T, bool)) bool {
	t.Helper()
	s := NewScanner(in)
	got, ok := read(&s)
	if !ok || !s.End() {
		return false
	}
	var want T
	if err := json.Unmarshal(in, &want); err != nil {
		t.Fatalf("%T %q: the Scanner reads it, encoding/json refuses it: %v", want, in, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T %q: the Scanner reads %#v, encoding/json %#v", want, in, got, want)
	}
	return true
}

type scanCase struct {
	read func(t testing.TB, in []byte) bool
	ok   []string // read, as encoding/json reads them
	not  []string // declined (refused by encoding/json, or left to it)
}

var (
	readString    = func(t testing.TB, in []byte) bool { return scanLike(t, in, (*Scanner).String) }
	readStringPtr = func(t testing.TB, in []byte) bool { return scanLike(t, in, (*Scanner).StringPtr) }
	readBytes     = func(t testing.TB, in []byte) bool { return scanLike(t, in, (*Scanner).Bytes) }
	readBool      = func(t testing.TB, in []byte) bool { return scanLike(t, in, (*Scanner).Bool) }
	readInt       = func(t testing.TB, in []byte) bool { return scanLike(t, in, (*Scanner).Int) }
	readIntPtr    = func(t testing.TB, in []byte) bool { return scanLike(t, in, (*Scanner).IntPtr) }
	readStrings   = func(t testing.TB, in []byte) bool { return scanLike(t, in, (*Scanner).Strings) }
	readStringMap = func(t testing.TB, in []byte) bool { return scanLike(t, in, (*Scanner).StringMap) }
)

var stringCase = scanCase{readString,
	[]string{`"abc"`, `""`, " \t\r\n\"x\" \t\r\n", `"\"\\\/\b\f\n\r\t"`, `"\u00e9\u4E2D\u00Ff"`, `"\ud83d\ude00"`, `"\uD83D\uDE00x"`,
		`"é中😀"`, `"\u0000"`, `"\u2028<>&"`, "\"\x7f\""},
	[]string{`null`, `"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\ud83d"`, "\"\xff\"", "\"a\xc3\"", "\"\xed\xa0\x80\"",
		`"\x"`, `"\u12"`, `"\u12g4"`, `"\U0041"`, `"abc`, `"abc\"`, "\"a\tb\"", "\"\x00\"", `'a'`, `1`, `"a" "b"`, `"a"x`, "\"a\"\x00", ``, `"\`}}

var scanCases = map[string]scanCase{
	"String":    stringCase,
	"StringPtr": {readStringPtr, stringCase.ok, stringCase.not},
	"Bytes": {readBytes,
		[]string{`""`, `"AQID"`, `"AQ=="`, `"AQI="`, `"AQ\r\n=="`, `"\nAQ=\r="`, `"A\/8="`, `"+/+/"`, ` "AA==" `},
		[]string{`"AQ="`, `"AQ"`, `"A"`, `"*"`, `"-_-_"`, `"AQ==AQ=="`, `"AQ ID"`, `"AQ\tID"`, `"AQ\u00e9"`, `null`, `[1]`, `[]`, `1`, `"AQ\x"`}},
	"Bool": {readBool,
		[]string{`true`, `false`, ` true `, "\nfalse\t"},
		[]string{`tru`, `truee`, `true1`, `falsey`, `null`, `1`, `"true"`, `True`, `t`, ``}},
	"Int": {readInt,
		[]string{`0`, `7`, `32`, ` 1024 `, `999999999999999999`},
		[]string{`-1`, `-0`, `01`, `00`, `1.0`, `1.`, `1e3`, `1E3`, `0e0`, `1000000000000000000`, `99999999999999999999`, `null`, `"1"`, ``, `+1`, `1x`, `.5`}},
	"IntPtr": {readIntPtr, []string{`0`, `42`}, []string{`null`, `-1`, `1.5`}},
	"Strings": {readStrings,
		[]string{`[]`, `[ ]`, `["a"]`, ` [ "a" , "" , "\u00e9" ] `},
		[]string{`[null]`, `["a",]`, `[,]`, `[1]`, `"a"`, `[`, `["a"`, `["a" "b"]`, `[["a"]]`, `null`, `{}`, `["a"]]`}},
	"StringMap": {readStringMap,
		[]string{`{}`, `{ }`, `{"a":"b"}`, `{"a":"b","A":"c"}`, `{"\u0061":"b","c":""}`, ` { "a" : "b" , "c" : "d" } `},
		[]string{`{"a":"b","a":"c"}`, `{"a":"b","\u0061":"c"}`, `{"a":null}`, `{"a":1}`, `{"a"}`, `{"a":"b",}`, `{,}`, `[]`, `null`,
			`{"a":"b"`, `{"a" "b"}`, `{"a":"b" "c":"d"}`, `{"a":{"b":"c"}}`, `{1:"a"}`}},
}

// TestScanner: each reader reads its values as encoding/json decodes
// them and declines the rest.
func TestScanner(t *testing.T) {
	for name, c := range scanCases {
		for _, in := range c.ok {
			if !c.read(t, []byte(in)) {
				t.Errorf("%s %s: declined", name, in)
			}
		}
		for _, in := range c.not {
			if c.read(t, []byte(in)) {
				t.Errorf("%s %s: read", name, in)
			}
		}
	}
}

// TestScannerObject: Object takes each of its names at most once, as
// written (no escapes, exact case), and nothing else.
func TestScannerObject(t *testing.T) {
	names := []string{"A", "B"}
	read := func(in string) (got []string, ok bool) {
		s := NewScanner([]byte(in))
		ok = s.Object(names, func(name string) bool {
			v, ok := s.String()
			got = append(got, name+"="+v)
			return ok
		}) && s.End()
		return got, ok
	}
	for in, want := range map[string]string{
		`{}`:                          "",
		` { } `:                       "",
		`{"A":"x"}`:                   "A=x",
		`{"B":"y","A":"x"}`:           "B=y A=x",
		` { "A" : "x" , "B" : "y" } `: "A=x B=y",
	} {
		if got, ok := read(in); !ok || strings.Join(got, " ") != want {
			t.Errorf("%s: %v %v, want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{
		`{"A":"x","A":"y"}`, `{"C":"x"}`, `{"a":"x"}`, `{"\u0041":"x"}`, `{"A":1}`, `{"A":"x",}`, `{"A" "x"}`, `{"A":"x"}}`,
		`{"A":"x" "B":"y"}`, `{"A":"x"`, `{`, `[]`, `null`, ``, `{"A":"x"} {}`,
	} {
		if got, ok := read(in); ok {
			t.Errorf("%s: read %v", in, got)
		}
	}
	// A name that a key holds escaped is not that key's name.
	s := NewScanner([]byte(`{"A\u0042":true}`))
	if s.Object([]string{`A\u0042`, "AB"}, func(string) bool { _, ok := s.Bool(); return ok }) {
		t.Errorf("an escaped key read as it stands")
	}
	many := make([]string, maxObjectNames+1)
	for i := range many {
		many[i] = string(rune('a'+i%26)) + strings.Repeat("x", i/26)
	}
	s = NewScanner([]byte(`{}`))
	if s.Object(many, func(string) bool { return true }) {
		t.Errorf("%d names taken", len(many))
	}
	s = NewScanner([]byte(`{"` + many[maxObjectNames-1] + `":true}`))
	if !s.Object(many[:maxObjectNames], func(string) bool { _, ok := s.Bool(); return ok }) || !s.End() {
		t.Errorf("the %dth of %d names declined", maxObjectNames, maxObjectNames)
	}
}

// FuzzScanner: whatever a reader reads, encoding/json decodes to the same
// value.
func FuzzScanner(f *testing.F) {
	for _, c := range scanCases {
		for _, in := range append(c.ok, c.not...) {
			f.Add([]byte(in))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, c := range scanCases {
			c.read(t, in)
		}
	})
}

// fastDoc decodes a document of only "name" itself; any other it
// declines, after writing over its fields.
type fastDoc struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

var fastDocCalls int

func (d *fastDoc) DecodeFast(data []byte) bool {
	fastDocCalls++
	s := NewScanner(data)
	ok := s.Object([]string{"name"}, func(string) (ok bool) {
		d.Name, ok = s.String()
		return ok
	}) && s.End()
	if !ok {
		d.Name, d.Tags = "scribbled", []string{"scribbled"}
	}
	return ok
}

// slowDoc is fastDoc without DecodeFast.
type slowDoc fastDoc

// TestUnmarshalFastDecoder: Unmarshal takes a FastDecoder's answer when it
// gives one, and otherwise decodes into a zero value as it always has,
// with the same errors; a value that is not zero it decodes the usual way
// (encoding/json keeps what a document leaves alone).
func TestUnmarshalFastDecoder(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fast bool
	}{
		{`{"name":"a"}`, true},
		{`{}`, true},
		{`{"name":"a","tags":["t"]}`, false},
		{`{"tags":[]}`, false},
		{`{"name":null}`, false},
		{`{"name":"a","name":"b"}`, false},
		{`{"Name":"a"}`, false},
		{`{"name":"a"} x`, false},
		{`[]`, false},
	} {
		var slow slowDoc
		serr := Unmarshal([]byte(tc.in), 1024, &slow)
		var d fastDoc
		calls := fastDocCalls
		err := Unmarshal([]byte(tc.in), 1024, &d)
		if fastDocCalls != calls+1 {
			t.Errorf("%s: DecodeFast called %d times", tc.in, fastDocCalls-calls)
		}
		if errText(err) != strings.ReplaceAll(errText(serr), "slowDoc", "fastDoc") {
			t.Errorf("%s: %v, the usual path %v", tc.in, err, serr)
		}
		if !reflect.DeepEqual(d, fastDoc(slow)) {
			t.Errorf("%s: %#v, the usual path %#v", tc.in, d, slow)
		}
		if ok := (&fastDoc{}).DecodeFast([]byte(tc.in)); ok != tc.fast {
			t.Errorf("%s: DecodeFast %v", tc.in, ok)
		}
	}
	d := fastDoc{Tags: []string{"kept"}}
	calls := fastDocCalls
	if err := Unmarshal([]byte(`{"name":"a"}`), 1024, &d); err != nil || !reflect.DeepEqual(d, fastDoc{Name: "a", Tags: []string{"kept"}}) || fastDocCalls != calls {
		t.Errorf("into a value that is not zero: %v %#v, %d calls", err, d, fastDocCalls-calls)
	}
	if err := Unmarshal([]byte(`{"name":"aaaa"}`), 5, &fastDoc{}); !errors.Is(err, ErrInvalid) || fastDocCalls != calls {
		t.Errorf("over the limit: %v, %d calls", err, fastDocCalls-calls)
	}
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
