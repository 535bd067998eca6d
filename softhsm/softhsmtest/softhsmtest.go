// Package softhsmtest gives tests real SoftHSM2 tokens: each test gets a
// fresh data dir, removed when it ends, with its tokens closed first.
//
// Tests in one package that use it must not run in parallel with each other
// (SoftHSM reads one configuration per module initialisation; see package
// softhsm): a test's tokens are closed, and the module finalised, before the
// next test's data dir is used.
package softhsmtest

import (
	"os"
	"testing"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/softhsm"
)

// PINs of the tokens this package makes. Test tokens only.
const (
	SOPIN   = "so-pin-for-tests"
	UserPIN = "user-pin-for-tests"
)

// NewStore returns a fresh SoftHSM data dir for t, removed when t ends.
// (Not t.TempDir: its name comes from the test's, and a sub-test named
// "members=3" would give a path SoftHSM cannot use.)
func NewStore(t testing.TB) *softhsm.Store {
	t.Helper()
	dir, err := os.MkdirTemp("", "softhsmtest-")
	if err != nil {
		t.Fatalf("softhsmtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := softhsm.Create(dir)
	if err != nil {
		t.Fatalf("softhsmtest: %v", err)
	}
	return s
}

// OpenToken initialises a token labelled label in s and opens it; the token
// is closed when t ends, before s is removed.
func OpenToken(t testing.TB, s *softhsm.Store, label string) *hsm.Token {
	t.Helper()
	if err := s.InitToken(label, SOPIN, UserPIN); err != nil {
		t.Fatalf("softhsmtest: init token %q: %v", label, err)
	}
	tok, err := hsm.Open(s.TokenConfig(label, UserPIN))
	if err != nil {
		t.Fatalf("softhsmtest: open token %q: %v", label, err)
	}
	t.Cleanup(func() {
		if err := tok.Close(); err != nil {
			t.Errorf("softhsmtest: close token %q: %v", label, err)
		}
	})
	return tok
}

// NewToken is NewStore followed by OpenToken with the label "test".
func NewToken(t testing.TB) *hsm.Token {
	t.Helper()
	return OpenToken(t, NewStore(t), "test")
}
