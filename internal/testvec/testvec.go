// Package testvec reads and writes Trent's known-answer vector files
// (docs/protocol.md, "Vector files"): comment: lines, an expect: line, a
// blank line, then one field per line as "name type value" with type str,
// u64 (decimal) or hex. Tests of the protocol packages use it to regenerate
// and compare their vectors.
package testvec

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Vector is one vector file being built.
type Vector struct {
	Comment []string
	fields  [][3]string
}

// Str adds a string field.
func (v *Vector) Str(name, s string) { v.fields = append(v.fields, [3]string{name, "str", s}) }

// Hex adds a byte field.
func (v *Vector) Hex(name string, b []byte) {
	v.fields = append(v.fields, [3]string{name, "hex", hex.EncodeToString(b)})
}

// U64 adds an integer field.
func (v *Vector) U64(name string, n uint64) {
	v.fields = append(v.fields, [3]string{name, "u64", strconv.FormatUint(n, 10)})
}

// Encode renders the file.
func (v *Vector) Encode() []byte {
	var b bytes.Buffer
	for _, c := range v.Comment {
		fmt.Fprintf(&b, "comment: %s\n", c)
	}
	b.WriteString("expect: success\n\n")
	for _, f := range v.fields {
		fmt.Fprintf(&b, "%s %s %s\n", f[0], f[1], f[2])
	}
	return b.Bytes()
}

// Parse reads a file into name → bytes: hex decoded, strings as their
// bytes, u64 as 8 big-endian bytes.
func Parse(data []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "comment:") || strings.HasPrefix(line, "expect:") {
			continue
		}
		parts := strings.SplitN(line, " ", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("testvec: bad line %q", line)
		}
		if _, dup := out[parts[0]]; dup {
			return nil, fmt.Errorf("testvec: field %q twice", parts[0])
		}
		switch parts[1] {
		case "str":
			out[parts[0]] = []byte(parts[2])
		case "hex":
			b, err := hex.DecodeString(parts[2])
			if err != nil {
				return nil, fmt.Errorf("testvec: %s: %w", parts[0], err)
			}
			out[parts[0]] = b
		case "u64":
			n, err := strconv.ParseUint(parts[2], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("testvec: %s: %w", parts[0], err)
			}
			out[parts[0]] = binary.BigEndian.AppendUint64(nil, n)
		default:
			return nil, fmt.Errorf("testvec: bad type %q", parts[1])
		}
	}
	return out, sc.Err()
}

// Check compares v's encoding with the file at path, or writes the file
// when update is set (go test -run TestVectors -update).
func Check(t testing.TB, path string, v *Vector, update bool) {
	t.Helper()
	got := v.Encode()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v (run go test -run TestVectors -update)", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the regenerated vector differs from the file", path)
	}
}
