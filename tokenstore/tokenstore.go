// Package tokenstore is the data dir of HSM tokens in one of the two
// PKCS#11 modules Trent provisions itself: SoftHSM2 (package softhsm: a
// softhsm2.conf and a tokens directory) and NSS's softoken (package nss:
// one NSS database per token under nssdb/). trent hsm init, trent hsm serve
// --dir and trent dev go through it; a token in any other module is opened
// by its module path, initialisation string or environment, label and PIN
// (hsm.Config), after the vendor's own tools provisioned it.
//
// A data dir holds tokens of one module; Open tells which from its files.
package tokenstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/nss"
	"github.com/trentkms/trent/softhsm"
)

// Kind names a module Trent provisions tokens in.
type Kind string

// The kinds.
const (
	SoftHSM Kind = "softhsm" // SoftHSM2 (the default)
	NSS     Kind = "nss"     // NSS's softoken, libsoftokn3
)

// Kinds lists every kind, the default first.
var Kinds = []Kind{SoftHSM, NSS}

// ErrNotProvisioned means a data dir holds no tokens of either module.
var ErrNotProvisioned = errors.New("tokenstore: not a data dir made by trent hsm init (neither softhsm2.conf nor nssdb)")

// Store is a data dir of tokens in one module.
type Store interface {
	Kind() Kind
	Dir() string        // absolute
	ModulePath() string // the module library
	// ModuleConfig is how package hsm loads the module for this data dir.
	ModuleConfig() (hsm.ModuleConfig, error)
	// TokenConfig opens the token labelled label with the user PIN.
	TokenConfig(label, pin string) (hsm.Config, error)
	// EnsureToken makes the token labelled label unless the data dir has
	// it (created reports which). soPIN is SoftHSM's security officer
	// PIN; NSS's databases have none.
	EnsureToken(label, soPIN, userPIN string) (created bool, err error)
}

// ParseModule reads a module choice as trent's --module flags take it:
// "softhsm" or "nss" (the module where its packages install it),
// "softhsm:PATH" or "nss:PATH", or a bare PATH (kind "": the kind of the
// data dir it is used with, SoftHSM2 for a new one).
func ParseModule(s string) (Kind, string, error) {
	for _, k := range Kinds {
		if s == string(k) {
			return k, "", nil
		}
		if p, ok := strings.CutPrefix(s, string(k)+":"); ok {
			if p == "" {
				return "", "", fmt.Errorf("tokenstore: module %q: empty path", s)
			}
			return k, p, nil
		}
	}
	return "", s, nil
}

// Detect tells which module's tokens the data dir dir holds.
func Detect(dir string) (Kind, error) {
	_, errConf := os.Stat(filepath.Join(dir, "softhsm2.conf"))
	soft := errConf == nil
	isNSS := nss.IsDataDir(dir)
	switch {
	case soft && isNSS:
		return "", fmt.Errorf("tokenstore: %s holds both SoftHSM2 and NSS tokens: name the module (--module softhsm or --module nss)", dir)
	case soft:
		return SoftHSM, nil
	case isNSS:
		return NSS, nil
	}
	if errConf != nil && !errors.Is(errConf, os.ErrNotExist) {
		return "", fmt.Errorf("tokenstore: %w", errConf)
	}
	return "", fmt.Errorf("%w: %s", ErrNotProvisioned, dir)
}

// Create makes (or reuses) a data dir of kind (SoftHSM if empty) in dir,
// with the module at module (found where its packages install it if
// empty). It refuses a dir that holds the other module's tokens.
func Create(kind Kind, dir, module string) (Store, error) {
	if kind == "" {
		kind = SoftHSM
	}
	if have, err := Detect(dir); err == nil && have != kind {
		return nil, fmt.Errorf("tokenstore: %s holds %s tokens, not %s", dir, have, kind)
	}
	return open(kind, dir, module, true)
}

// Open returns the data dir dir without writing anything: of kind, or of
// the kind its files show if kind is empty.
func Open(kind Kind, dir, module string) (Store, error) {
	if kind == "" {
		var err error
		if kind, err = Detect(dir); err != nil {
			return nil, err
		}
	}
	return open(kind, dir, module, false)
}

// open makes (create) or opens the data dir dir of kind, with module, or
// the module FindModule returns if module is "".
func open(kind Kind, dir, module string, create bool) (Store, error) {
	if module == "" {
		var err error
		if module, err = FindModule(kind); err != nil {
			return nil, err
		}
	}
	switch kind {
	case SoftHSM:
		f := softhsm.OpenWithModule
		if create {
			f = softhsm.CreateWithModule
		}
		s, err := f(dir, module)
		if err != nil {
			return nil, err
		}
		return softStore{s}, nil
	case NSS:
		f := nss.OpenWithModule
		if create {
			f = nss.CreateWithModule
		}
		s, err := f(dir, module)
		if err != nil {
			return nil, err
		}
		return nssStore{s}, nil
	}
	return nil, fmt.Errorf("tokenstore: unknown module kind %q (want softhsm or nss)", kind)
}

// FindModule returns where kind's module is installed.
func FindModule(kind Kind) (string, error) {
	switch kind {
	case SoftHSM:
		return softhsm.FindModule()
	case NSS:
		return nss.FindModule()
	}
	return "", fmt.Errorf("tokenstore: unknown module kind %q (want softhsm or nss)", kind)
}

type softStore struct{ s *softhsm.Store }

func (s softStore) Kind() Kind                              { return SoftHSM }
func (s softStore) Dir() string                             { return s.s.Dir }
func (s softStore) ModulePath() string                      { return s.s.Module }
func (s softStore) ModuleConfig() (hsm.ModuleConfig, error) { return s.s.ModuleConfig(), nil }
func (s softStore) TokenConfig(label, pin string) (hsm.Config, error) {
	return s.s.TokenConfig(label, pin), nil
}
func (s softStore) EnsureToken(label, soPIN, userPIN string) (bool, error) {
	return s.s.EnsureToken(label, soPIN, userPIN)
}

type nssStore struct{ s *nss.Store }

func (s nssStore) Kind() Kind                              { return NSS }
func (s nssStore) Dir() string                             { return s.s.Dir }
func (s nssStore) ModulePath() string                      { return s.s.Module }
func (s nssStore) ModuleConfig() (hsm.ModuleConfig, error) { return s.s.ModuleConfig() }
func (s nssStore) TokenConfig(label, pin string) (hsm.Config, error) {
	return s.s.TokenConfig(label, pin)
}
func (s nssStore) EnsureToken(label, _, userPIN string) (bool, error) {
	return s.s.EnsureToken(label, userPIN)
}
