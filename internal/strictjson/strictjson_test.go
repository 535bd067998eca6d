package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

type doc struct {
	Name  string         `json:"name"`
	Items []item         `json:"items"`
	Meta  map[string]int `json:"meta"`
	Blob  []byte         `json:"blob"`
}

type item struct {
	ID string `json:"id"`
}

func TestUnmarshal(t *testing.T) {
	var d doc
	if err := Unmarshal([]byte(`{"name":"a","items":[{"id":"x"},{"id":"y"}],"meta":{"k":1}}`), 1024, &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "a" || len(d.Items) != 2 || d.Items[1].ID != "y" || d.Meta["k"] != 1 {
		t.Fatalf("decoded %+v", d)
	}
	for name, in := range map[string]string{
		"duplicate key":       `{"name":"a","name":"b"}`,
		"duplicate in nested": `{"items":[{"id":"x","id":"y"}]}`,
		"duplicate in map":    `{"meta":{"k":1,"k":2}}`,
		"escaped duplicate":   `{"name":"a","n\u0061me":"b"}`,
		"after tricky string": `{"meta":{"k":"}\",{\\","k":2}}`,
		"after an array":      `{"items":[{"id":"x"},{"id":"y"}],"items":[]}`,
		"unknown field":       `{"name":"a","extra":1}`,
		"trailing value":      `{"name":"a"} {}`,
		"trailing garbage":    `{"name":"a"}x`,
		"not JSON":            `name=a`,
		"empty":               ``,
		"wrong type":          `{"name":1}`,
		"truncated":           `{"name":"a"`,
		"too deep":            string(make([]byte, 0)) + deep(MaxDepth+1),
	} {
		var d doc
		err := Unmarshal([]byte(in), 1<<20, &d)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	var anything any
	if err := Unmarshal([]byte(deep(MaxDepth)), 1<<20, &anything); err != nil {
		t.Errorf("nesting of %d: %v", MaxDepth, err)
	}
	if err := Unmarshal([]byte(deep(MaxDepth+1)), 1<<20, &anything); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("nesting of %d: %v", MaxDepth+1, err)
	}
	if err := Unmarshal([]byte(`{"name":"aaaa"}`), 5, &d); !errors.Is(err, ErrInvalid) {
		t.Errorf("over the limit: %v", err)
	}
	// Keys that decode alike are duplicates: invalid UTF-8 becomes U+FFFD.
	var m struct {
		M map[string]string `json:"m"`
	}
	if err := Unmarshal([]byte("{\"m\":{\"\xfd\":\"a\",\"\xfe\":\"b\"}}"), 1024, &m); !errors.Is(err, ErrInvalid) {
		t.Errorf("keys that both decode to U+FFFD: %v, %v", err, m)
	}
	// The same key in sibling objects is fine.
	if err := Unmarshal([]byte(`{"items":[{"id":"x"},{"id":"x"}]}`), 1024, &d); err != nil {
		t.Error(err)
	}
}

func deep(n int) string {
	s := ""
	for range n {
		s += "["
	}
	for range n {
		s += "]"
	}
	return s
}

// TestUnmarshalCaseSensitive: a key that is a struct member's name only
// under case folding is an unknown field, at every depth (issue 16: the
// first two keys below encrypted under the real key while the audit trail
// recorded the alias).
func TestUnmarshalCaseSensitive(t *testing.T) {
	type encrypt struct {
		KeyId             string            `json:"KeyId"`
		EncryptionContext map[string]string `json:"EncryptionContext"`
		Plaintext         []byte            `json:"Plaintext"`
	}
	type inner struct{ Deep string }
	type Embedded struct {
		Promoted string `json:"promoted"`
	}
	type outer struct {
		Embedded
		Untagged string
		Skipped  string          `json:"-"`
		Opaque   json.RawMessage `json:"opaque"`
		Any      any             `json:"any"`
		Inner    *inner          `json:"inner"`
		List     []inner         `json:"list"`
		ByName   map[string]inner
	}
	for _, in := range []string{
		`{"KeyId":"alias/doesnotexist","keyid":"1234"}`,
		`{"keyId":"k"}`,
		`{"KEYID":"k"}`,
		`{"KeyId":"k","EncryptionContext":{"a":"b"},"encryptionContext":{"c":"d"}}`,
		"{\"Key\u0049d\":\"k\",\"KeyId\":\"j\"}", // an escape that spells the same name is a duplicate
		"{\"\u212aeyId\":\"k\"}",                 // KELVIN SIGN, which encoding/json folds to K
	} {
		var r encrypt
		if err := Unmarshal([]byte(in), 1024, &r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, %+v; want ErrInvalid", in, err, r)
		}
	}
	var r encrypt
	if err := Unmarshal([]byte(`{"KeyId":"k","EncryptionContext":{"a":"1","A":"2"},"Plaintext":"AQI="}`), 1024, &r); err != nil ||
		r.KeyId != "k" || len(r.EncryptionContext) != 2 || !bytes.Equal(r.Plaintext, []byte{1, 2}) {
		t.Fatalf("exact names: %v %+v", err, r)
	}
	good := `{"promoted":"p","Untagged":"u","opaque":{"Anything":{"GOES":1}},"any":{"X":[{"y":1}]},` +
		`"inner":{"Deep":"d"},"list":[{"Deep":"1"},{"Deep":"2"}],"ByName":{"k":{"Deep":"x"},"K":{"Deep":"y"}}}`
	var o outer
	if err := Unmarshal([]byte(good), 4096, &o); err != nil || o.Promoted != "p" || o.Untagged != "u" || len(o.List) != 2 || o.ByName["K"].Deep != "y" {
		t.Fatalf("exact names at every depth: %v %+v", err, o)
	}
	for _, in := range []string{
		`{"Promoted":"p"}`, `{"untagged":"u"}`, `{"Skipped":"s"}`, `{"-":"s"}`, `{"Embedded":{}}`,
		`{"inner":{"deep":"d"}}`, `{"list":[{"Deep":"1"},{"DEEP":"2"}]}`, `{"ByName":{"k":{"deep":"x"}}}`,
	} {
		var o outer
		if err := Unmarshal([]byte(in), 4096, &o); !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrUnknownMember) {
			t.Errorf("%s: %v, want an unknown field", in, err)
		}
	}
}

// TestUnmarshalBlob: a []byte member takes a base64 string (or null), never
// an array of numbers, which encoding/json would decode byte by byte.
func TestUnmarshalBlob(t *testing.T) {
	var d doc
	for _, in := range []string{`{"blob":[1,2]}`, `{"blob":[]}`, `{"blob":["AQI="]}`, `{"blob":{}}`, `{"blob":1}`} {
		if err := Unmarshal([]byte(in), 1024, &d); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, %v; want ErrInvalid", in, err, d.Blob)
		}
	}
	if err := Unmarshal([]byte(`{"blob":[1,2]}`), 1024, &d); !errors.Is(err, ErrBlobNotString) || !strings.Contains(err.Error(), `"blob": a blob`) {
		t.Errorf("the message names the member: %v", err)
	}
	for in, want := range map[string][]byte{`{"blob":"AQI="}`: {1, 2}, `{"blob":null}`: nil, `{"blob":""}`: {}} {
		var d doc
		if err := Unmarshal([]byte(in), 1024, &d); err != nil || !bytes.Equal(d.Blob, want) {
			t.Errorf("%s: %v %v", in, err, d.Blob)
		}
	}
	var list struct {
		Blobs [][]byte         `json:"blobs"`
		Fixed [2]byte          `json:"fixed"` // an array type takes numbers, as encoding/json has it
		Named struct{ B blob } `json:"named"`
	}
	if err := Unmarshal([]byte(`{"blobs":["AQ==","Ag=="],"fixed":[1,2],"named":{"B":"AQ=="}}`), 1024, &list); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{`{"blobs":[[1]]}`, `{"named":{"B":[1]}}`} {
		if err := Unmarshal([]byte(in), 1024, &list); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", in, err)
		}
	}
	var top []byte
	if err := Unmarshal([]byte(`[1]`), 1024, &top); !errors.Is(err, ErrInvalid) {
		t.Errorf("a []byte document that is an array: %v", err)
	}
}

type blob []byte

// FuzzUnmarshal: never panics; whatever it accepts, encoding/json accepts
// too, has no duplicate keys, and names doc's members exactly (checked
// against a naive walk of the generic value).
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"name":"a","items":[{"id":"x"}],"meta":{"k":1}}`, `{"name":"a","name":"b"}`, `[]`, `{}`, `{"meta":{"a":1,"b":2}}`} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":{"b":"}\"","b":1}}`))
	f.Add([]byte(`{"\u0061":1,"a":2}`))
	f.Add([]byte("{\"\xfd\":1,\"\xfe\":2}"))
	f.Add([]byte(`{"Name":"a","items":[{"ID":"x"}],"blob":"AQI="}`))
	f.Add([]byte(`{"blob":[1,2],"meta":{"K":1,"k":2}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		// The scanner agrees with the token-walking reference on valid JSON.
		if json.Valid(in) && (checkKeys(in, nil) == nil) != (checkKeysTokens(in) == nil) {
			t.Fatalf("scanner %v, reference %v", checkKeys(in, nil), checkKeysTokens(in))
		}
		var d doc
		if Unmarshal(in, 1<<16, &d) != nil {
			return
		}
		var any2 any
		if err := json.Unmarshal(in, &any2); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		if err := exactDoc(any2); err != nil {
			t.Fatalf("accepted %s: %v", in, err)
		}
	})
}

// exactDoc is the naive reference for doc's names: every key of the object
// and of its items is exactly a member's name, and blob is a string.
func exactDoc(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return nil // null: nothing decoded
	}
	for k, x := range m {
		switch k {
		case "name", "meta":
		case "blob":
			if _, ok := x.(string); !ok && x != nil {
				return errors.New("blob is not a string")
			}
		case "items":
			items, _ := x.([]any)
			for _, it := range items {
				if im, ok := it.(map[string]any); ok {
					for ik := range im {
						if ik != "id" {
							return errors.New("item key " + ik)
						}
					}
				}
			}
		default:
			return errors.New("key " + k)
		}
	}
	return nil
}

// checkKeysTokens is the reference for checkKeys: the same check through
// encoding/json's Token API (slow, but plainly right).
func checkKeysTokens(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		isKey  bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.isKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					stack[len(stack)-1].isKey = stack[len(stack)-1].object
				}
				continue
			}
			k := tok.(string)
			if top.keys[k] {
				return ErrInvalid
			}
			top.keys[k] = true
			top.isKey = false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) >= MaxDepth {
					return ErrInvalid
				}
				stack = append(stack, &frame{object: d == '{', keys: map[string]bool{}, isKey: d == '{'})
				continue
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) > 0 {
			stack[len(stack)-1].isKey = stack[len(stack)-1].object
		}
	}
}

func TestMembers(t *testing.T) {
	m, err := Members([]byte(" {\"a\" : 1 , \"b\":{\"c\":[1,\"]}\"]},\"\\u0064\":\"x\\\"y\", \"a\":null}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{{"a", []byte("1")}, {"b", []byte(`{"c":[1,"]}"]}`)}, {"d", []byte(`"x\"y"`)}, {"a", []byte("null")}}
	if len(m) != len(want) {
		t.Fatalf("%d members, want %d: %q", len(m), len(want), m)
	}
	for i := range want {
		if m[i].Key != want[i].Key || !bytes.Equal(m[i].Value, want[i].Value) {
			t.Errorf("member %d: %q = %q, want %q = %q", i, m[i].Key, m[i].Value, want[i].Key, want[i].Value)
		}
	}
	if m, err := Members([]byte(`{}`)); err != nil || len(m) != 0 {
		t.Errorf("{}: %q %v", m, err)
	}
	for _, bad := range []string{``, `[]`, `"a"`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1}x`, `{"a":1]`, `{"a":"1}`,
		`{a:1}`, `{"a":1 "b":2}`, `{"a":[1}`, `{"a":` + deep(MaxDepth+1) + `}`, `{"a":1}}`} {
		if _, err := Members([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}

// FuzzMembers: never panics; on every JSON object encoding/json accepts,
// Members finds the same members (keys and compacted values, in order) as
// encoding/json's Token API.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"KeyId":"k","Recipient":{"AttestationDocument":"AAAA","KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}`,
		`{}`, `{"a":[1,{"b":"}"}],"c":"\"","d":-1.5e3,"e":true}`, `{"\u0061":1,"a":2}`, ` { "a" : [ ] } `, `{"a":1,}`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Members(in)
		var obj map[string]json.RawMessage
		if json.Unmarshal(in, &obj) != nil {
			return // not an object: Members may accept it only for what it does not read
		}
		if err != nil {
			t.Fatalf("refused an object encoding/json accepts: %v", err)
		}
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.Token() // {
		for i := 0; dec.More(); i++ {
			k, _ := dec.Token()
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			var a, b bytes.Buffer
			json.Compact(&a, v)
			if i >= len(got) || got[i].Key != k.(string) || json.Compact(&b, got[i].Value) != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("member %d: %q, want %q = %s", i, got, k, v)
			}
			if i == len(got)-1 && dec.More() {
				t.Fatalf("%d members, encoding/json has more", len(got))
			}
		}
	})
}

// TestManyKeys: duplicates are found among more keys than checkKeys
// compares one by one, before, across and after the switch to a map.
func TestManyKeys(t *testing.T) {
	obj := func(keys ...string) []byte {
		var b strings.Builder
		b.WriteString(`{"meta":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + k + `":1`)
		}
		b.WriteString(`}}`)
		return []byte(b.String())
	}
	var keys []string
	for i := range 3 * maxInlineKeys {
		keys = append(keys, "k"+strings.Repeat("x", i))
	}
	var d doc
	if err := Unmarshal(obj(keys...), 1<<20, &d); err != nil || len(d.Meta) != len(keys) {
		t.Fatalf("%d distinct keys: %v, %d decoded", len(keys), err, len(d.Meta))
	}
	for _, at := range []int{1, maxInlineKeys - 1, maxInlineKeys, maxInlineKeys + 1, 2 * maxInlineKeys} {
		for _, dup := range []string{keys[0], keys[at-1], `\u006b` + keys[at-1][1:]} {
			in := append(append(append([]string{}, keys[:at]...), dup), keys[at:]...)
			if err := Unmarshal(obj(in...), 1<<20, &d); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "duplicate") {
				t.Errorf("%q repeated after %d keys: %v", dup, at, err)
			}
		}
	}
}

// TestPlainType: the types Unmarshal decodes with json.Unmarshal are the
// ones checkKeys sees whole.
func TestPlainType(t *testing.T) {
	type withAny struct {
		A any `json:"a"`
	}
	type badTag struct {
		A string `json:"a§b"`
	}
	type nested struct {
		Items []map[string]*withAny `json:"items"`
	}
	type rawOK struct {
		R json.RawMessage `json:"r"`
		D doc             `json:"d"`
	}
	for _, c := range []struct {
		v    any
		want bool
	}{{&doc{}, true}, {&benchRequest{}, true}, {&rawOK{}, true}, {&withAny{}, false}, {&badTag{}, false}, {&nested{}, false}, {new(any), false}} {
		if got := plainType(reflect.TypeOf(c.v)); got != c.want {
			t.Errorf("%T: %v, want %v", c.v, got, c.want)
		}
	}
}

// FuzzUnmarshalPaths: for a plain type, Unmarshal (json.Unmarshal after
// checkKeys) gives what the Decoder path gives: the same value, or the
// same error message.
func FuzzUnmarshalPaths(f *testing.F) {
	f.Add(benchBody)
	for _, s := range []string{`{"KeyId":"a"} {}`, `{"KeyId":1}`, `{"KeyId":"a","DryRun":"x"}`, `{"Plaintext":[1]}`, `{"EncryptionContext":{"a":"b"},"GrantTokens":["t"]}`,
		`{"Plaintext":"!!"}`, `{"keyid":"a"}`, `{"KeyId":"a"`, ``, ` null `, `{"name":"a","items":[{"id":"x"}],"meta":{"k":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r1, r2 benchRequest
		e1 := Unmarshal(in, 1<<16, &r1)
		e2 := checkKeys(in, reflect.TypeOf(&r2))
		if e2 == nil {
			e2 = decode(in, &r2)
		}
		if (e1 == nil) != (e2 == nil) || e1 != nil && e1.Error() != e2.Error() || e1 == nil && !reflect.DeepEqual(r1, r2) {
			t.Fatalf("Unmarshal: %v %+v; Decoder: %v %+v", e1, r1, e2, r2)
		}
		var d1, d2 doc
		e1 = Unmarshal(in, 1<<16, &d1)
		e2 = checkKeys(in, reflect.TypeOf(&d2))
		if e2 == nil {
			e2 = decode(in, &d2)
		}
		if (e1 == nil) != (e2 == nil) || e1 != nil && e1.Error() != e2.Error() || e1 == nil && !reflect.DeepEqual(d1, d2) {
			t.Fatalf("Unmarshal: %v %+v; Decoder: %v %+v", e1, d1, e2, d2)
		}
	})
}

// TestMembersIntern: interned names give the same members as Members.
func TestMembersIntern(t *testing.T) {
	in := []byte(`{"KeyId":"k","\u004beyId":1,"Other":{"KeyId":2},"b":"\u00e9"}`)
	names := map[string]string{"KeyId": "KeyId", "b": "b"}
	want, err := Members(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := MembersIntern(in, names)
	if err != nil || len(got) != len(want) {
		t.Fatalf("%q %v", got, err)
	}
	for i := range want {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Errorf("member %d: %q, want %q", i, got[i], want[i])
		}
	}
}
