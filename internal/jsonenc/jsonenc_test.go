package jsonenc

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

func TestAppend(t *testing.T) {
	for _, s := range []string{"", "plain", "<&>", "\"\\\b\f\n\r\t\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe", "é😀", "a\xc3"} {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, 5e-324, math.MaxFloat64} {
		want, _ := json.Marshal(f)
		if got := AppendFloat(nil, f); !bytes.Equal(got, want) {
			t.Errorf("AppendFloat(%v) = %s, want %s", f, got, want)
		}
	}
	for _, v := range [][]byte{nil, {}, {0}, {1, 2, 3, 4}, bytes.Repeat([]byte{0xff}, 100)} {
		want, _ := json.Marshal(v)
		if got := AppendBytes(nil, v); !bytes.Equal(got, want) {
			t.Errorf("AppendBytes(%v) = %s, want %s", v, got, want)
		}
	}
}

// FuzzAppend: AppendString, AppendFloat and AppendBytes write what
// json.Marshal writes.
func FuzzAppend(f *testing.F) {
	f.Add("a<b>\u2028\xff", 1.5e-7, []byte{1, 2})
	f.Add("", 0.0, []byte(nil))
	f.Fuzz(func(t *testing.T, s string, x float64, v []byte) {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("p"), s); !bytes.Equal(got, append([]byte("p"), want...)) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			want, _ = json.Marshal(x)
			if got := AppendFloat(nil, x); !bytes.Equal(got, want) {
				t.Fatalf("AppendFloat(%v) = %s, want %s", x, got, want)
			}
		}
		want, _ = json.Marshal(v)
		if got := AppendBytes(nil, v); !bytes.Equal(got, want) {
			t.Fatalf("AppendBytes(%v) = %s, want %s", v, got, want)
		}
	})
}
