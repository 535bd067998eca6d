package session

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each decoder has a fuzz target seeded from the known-answer vectors. A
// decoder never panics, and whatever it accepts re-encodes to exactly the
// input: the encoding is canonical.

func seeds(f *testing.F, file, field string) {
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		f.Fatal(err)
	}
	v := parseVector(f, data)[field]
	if v == nil {
		f.Fatalf("%s has no %s", file, field)
	}
	f.Add(v)
	f.Add(v[:len(v)/2])
	f.Add(append(bytes.Clone(v), 0))
}

func roundTrips(t *testing.T, in []byte, marshal func() ([]byte, error)) {
	out, err := marshal()
	if err != nil {
		t.Fatalf("parsed message does not re-encode: %v", err)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("re-encoding differs:\n in %x\nout %x", in, out)
	}
}

func FuzzParseHello(f *testing.F) {
	seeds(f, "handshake.txt", "hello")
	seeds(f, "hybrid.txt", "hello")
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := ParseHello(in); err == nil {
			roundTrips(t, in, m.Marshal)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	seeds(f, "handshake.txt", "reply")
	seeds(f, "hybrid.txt", "reply")
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := ParseReply(in); err == nil {
			roundTrips(t, in, m.Marshal)
		}
	})
}

// FuzzParseKEMKey: an accepted ML-KEM-1024 encapsulation key re-encodes to
// the same bytes (FIPS 203's modulus check, so no non-canonical key passes).
func FuzzParseKEMKey(f *testing.F) {
	seeds(f, "hybrid.txt", "ek")
	f.Fuzz(func(t *testing.T, in []byte) {
		if k, err := ParseKEMKey(in); err == nil {
			out := make([]byte, KEMKeySize)
			k.Pack(out)
			if !bytes.Equal(out, in) {
				t.Fatal("accepted key does not re-encode to itself")
			}
		}
	})
}

func FuzzParseEKT(f *testing.F) {
	seeds(f, "handshake.txt", "ekt")
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := ParseEKT(in); err == nil {
			roundTrips(t, in, m.Marshal)
		}
	})
}

func FuzzParseEKTPlain(f *testing.F) {
	p := &ektPlain{SK: make([]byte, SKSize), HostID: "host-1", NotBefore: 1, NotAfter: 2}
	b, _ := p.marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := parseEKTPlain(in); err == nil {
			roundTrips(t, in, m.marshal)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	seeds(f, "envelope.txt", "envelope")
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := ParseEnvelope(in); err == nil {
			roundTrips(t, in, m.Marshal)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	seeds(f, "envelope.txt", "response")
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := ParseResponse(in); err == nil {
			roundTrips(t, in, m.Marshal)
		}
	})
}

func FuzzParseOnePass(f *testing.F) {
	seeds(f, "onepass.txt", "message")
	seeds(f, "onepass-hybrid.txt", "message")
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := ParseOnePass(in); err == nil {
			roundTrips(t, in, m.Marshal)
		}
	})
}

// No proper prefix of a valid message parses.
func TestNoPrefixParses(t *testing.T) {
	vecs := map[string]func([]byte) error{
		"hello":    func(b []byte) error { _, err := ParseHello(b); return err },
		"reply":    func(b []byte) error { _, err := ParseReply(b); return err },
		"ekt":      func(b []byte) error { _, err := ParseEKT(b); return err },
		"envelope": func(b []byte) error { _, err := ParseEnvelope(b); return err },
		"response": func(b []byte) error { _, err := ParseResponse(b); return err },
		"message":  func(b []byte) error { _, err := ParseOnePass(b); return err },
	}
	all := map[string][]byte{}
	for _, file := range []string{"handshake.txt", "envelope.txt", "onepass.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range parseVector(t, data) {
			all[k] = v
		}
	}
	for name, parse := range vecs {
		msg := all[name]
		if err := parse(msg); err != nil {
			t.Fatalf("%s: the vector does not parse: %v", name, err)
		}
		for i := range len(msg) {
			if parse(msg[:i]) == nil {
				t.Errorf("%s: a %d-byte prefix parses", name, i)
			}
		}
	}
}

func FuzzParseAlert(f *testing.F) {
	for _, a := range []*Alert{{Code: 18, Message: "session: sequence number already used or too old"}, {Code: 21}} {
		b, _ := a.Marshal()
		f.Add(b)
	}
	f.Add([]byte("TRNT\x01\x07\x00\x01\x01\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if a, err := ParseAlert(in); err == nil {
			roundTrips(t, in, a.Marshal)
			if a.Err() == nil {
				t.Fatal("an alert stands for no error")
			}
		}
	})
}

func TestAlertCodes(t *testing.T) {
	seen := map[uint16]bool{}
	for _, c := range alertCodes {
		if seen[c.code] {
			t.Fatalf("code %d used twice", c.code)
		}
		seen[c.code] = true
		a := AlertFor(fmt.Errorf("wrapped: %w", c.err))
		if a.Code != c.code {
			t.Errorf("%v: code %d, want %d", c.err, a.Code, c.code)
		}
		if !errors.Is(a.Err(), c.err) {
			t.Errorf("code %d does not come back as %v", c.code, c.err)
		}
	}
	// An error of no known kind becomes "internal" without its text.
	a := AlertFor(errors.New("token said something secret-ish"))
	if a.Code != 21 || strings.Contains(a.Message, "secret") {
		t.Errorf("unknown error became %+v", a)
	}
}
