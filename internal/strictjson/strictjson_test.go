package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type doc struct {
	Name  string         `json:"name"`
	Items []item         `json:"items"`
	Meta  map[string]int `json:"meta"`
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

// FuzzUnmarshal: never panics; whatever it accepts, encoding/json accepts
// too and has no duplicate keys.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"name":"a","items":[{"id":"x"}],"meta":{"k":1}}`, `{"name":"a","name":"b"}`, `[]`, `{}`, `{"meta":{"a":1,"b":2}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d doc
		if Unmarshal(in, 1<<16, &d) != nil {
			return
		}
		var any2 any
		if err := json.Unmarshal(in, &any2); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
	})
}
