// Package storetest gives tests real tokens in each module Trent
// provisions (SoftHSM2 and NSS's softoken): a fresh data dir per test,
// removed when it ends, with its tokens closed first. Each runs a test
// once per module; the NSS run is skipped, saying so, only when
// libsoftokn3 is not installed.
//
// As with package softhsmtest, tests of one package that use it must not
// run in parallel with each other: one process holds one configuration per
// module at a time (package hsm).
package storetest

import (
	"errors"
	"os"
	"testing"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/nss"
	"github.com/trentkms/trent/tokenstore"
)

// PINs of the tokens this package makes. Test tokens only.
const (
	SOPIN   = "so-pin-for-tests"
	UserPIN = "user-pin-for-tests"
)

// Env is a data dir of one module for one test.
type Env struct {
	tokenstore.Store
}

// Each runs f as a subtest per module kind, named after the kind.
func Each(t *testing.T, f func(t *testing.T, e *Env)) {
	t.Helper()
	for _, k := range tokenstore.Kinds {
		t.Run(string(k), func(t *testing.T) { f(t, New(t, k)) })
	}
}

// RequireModule skips t if kind's module is not installed (NSS only: the
// SoftHSM2 module is a hard requirement of Trent's tests).
func RequireModule(t testing.TB, kind tokenstore.Kind) {
	t.Helper()
	if _, err := tokenstore.FindModule(kind); err != nil {
		if kind == tokenstore.NSS && errors.Is(err, nss.ErrModuleNotFound) {
			t.Skipf("storetest: NSS's softoken is not installed, skipping the NSS run (%v)", err)
		}
		t.Fatalf("storetest: %v", err)
	}
}

// New returns a fresh data dir of kind, removed when t ends. (Not
// t.TempDir: its name comes from the test's, and SoftHSM cannot use every
// path a sub-test's name gives.)
func New(t testing.TB, kind tokenstore.Kind) *Env {
	t.Helper()
	RequireModule(t, kind)
	dir, err := os.MkdirTemp("", "storetest-")
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := tokenstore.Create(kind, dir, "")
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return &Env{s}
}

// InitToken makes the token labelled label with the test PINs.
func (e *Env) InitToken(t testing.TB, label string) {
	t.Helper()
	created, err := e.EnsureToken(label, SOPIN, UserPIN)
	if err != nil {
		t.Fatalf("storetest: init token %q: %v", label, err)
	}
	if !created {
		t.Fatalf("storetest: token %q exists already", label)
	}
}

// Config is the configuration of the token labelled label with pin.
func (e *Env) Config(t testing.TB, label, pin string) hsm.Config {
	t.Helper()
	cfg, err := e.TokenConfig(label, pin)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return cfg
}

// Module is the data dir's module configuration.
func (e *Env) Module(t testing.TB) hsm.ModuleConfig {
	t.Helper()
	m, err := e.ModuleConfig()
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return m
}

// OpenToken makes the token labelled label and opens it; it is closed when
// t ends, before the data dir is removed.
func (e *Env) OpenToken(t testing.TB, label string) *hsm.Token {
	t.Helper()
	e.InitToken(t, label)
	tok, err := hsm.Open(e.Config(t, label, UserPIN))
	if err != nil {
		t.Fatalf("storetest: open token %q: %v", label, err)
	}
	t.Cleanup(func() {
		if err := tok.Close(); err != nil {
			t.Errorf("storetest: close token %q: %v", label, err)
		}
	})
	return tok
}

// NewToken is OpenToken of the label "test".
func (e *Env) NewToken(t testing.TB) *hsm.Token {
	t.Helper()
	return e.OpenToken(t, "test")
}
