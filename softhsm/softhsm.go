// Package softhsm provisions SoftHSM2 for Trent: it finds the module, writes
// a data dir (DIR/softhsm2.conf and DIR/tokens/; Create), reads one back
// without writing (Open), gives its module configuration for hsm.Open, and
// initialises tokens through PKCS#11 (C_InitToken, C_InitPIN, by way of
// package hsm) rather than by shelling out to softhsm2-util.
//
// # One configuration per module instance
//
// SoftHSM reads SOFTHSM2_CONF at C_Initialize. Package hsm keeps one
// initialised instance of a module per process, so every Store opened at
// the same time in one process must be the same data dir: many tokens in
// one data dir is how one process runs several HSM nodes (trent dev, tests);
// one token in its own data dir per process is the production shape. Once
// every Token on the module is closed the module is finalised, and another
// data dir can be used.
package softhsm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/trentkms/trent/hsm"
)

// EnvModule overrides the module path FindModule returns.
const EnvModule = "TRENT_PKCS11_MODULE"

// EnvConf is the variable SoftHSM2 reads its configuration path from.
const EnvConf = "SOFTHSM2_CONF"

// ModulePaths are the places SoftHSM2 packages install the module, in the
// order FindModule tries them.
var ModulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",                      // Debian, Ubuntu
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",     // Debian, Ubuntu (multiarch)
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",    // Debian, Ubuntu on arm64
	"/usr/lib64/pkcs11/libsofthsm2.so",                     // Fedora, RHEL
	"/usr/lib64/softhsm/libsofthsm.so",                     // Fedora (compat link)
	"/usr/local/lib/softhsm/libsofthsm2.so",                // built from source, FreeBSD
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",             // macOS, Homebrew on Apple silicon
	"/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so",    // macOS, Homebrew on Intel
	"/usr/local/Cellar/softhsm/lib/softhsm/libsofthsm2.so", // macOS, Homebrew cellar
	"/opt/local/lib/softhsm/libsofthsm2.so",                // macOS, MacPorts
}

// ErrModuleNotFound means no SoftHSM2 module was found.
var ErrModuleNotFound = errors.New("softhsm: libsofthsm2 not found (install softhsm2, run `make deps`, or set " + EnvModule + ")")

// FindModule returns the path of the PKCS#11 module to use: $TRENT_PKCS11_MODULE
// if set (which must exist), else the first of ModulePaths that exists.
func FindModule() (string, error) {
	if p := os.Getenv(EnvModule); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("softhsm: %s=%s: %w", EnvModule, p, hsm.ErrModuleNotFound)
		}
		return p, nil
	}
	for _, p := range ModulePaths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", ErrModuleNotFound
}

// Store is a SoftHSM2 data dir: its configuration file and token directory.
type Store struct {
	Dir      string // the data dir, absolute
	ConfPath string // Dir/softhsm2.conf
	TokenDir string // Dir/tokens
	Module   string // the module path
}

// Create makes (or reuses) the data dir dir with a softhsm2.conf pointing at
// dir/tokens, using the module FindModule returns. It is idempotent: an
// existing configuration is rewritten with the same content, tokens are kept.
func Create(dir string) (*Store, error) {
	mod, err := FindModule()
	if err != nil {
		return nil, err
	}
	return CreateWithModule(dir, mod)
}

// CreateWithModule is Create with an explicit module path.
func CreateWithModule(dir, module string) (*Store, error) {
	s, err := newStore(dir, module)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.TokenDir, 0o700); err != nil {
		return nil, fmt.Errorf("softhsm: %w", err)
	}
	conf := "# Written by trent: SoftHSM2 configuration for this data dir.\n" +
		"directories.tokendir = " + s.TokenDir + "\n" +
		"objectstore.backend = file\n" +
		"log.level = ERROR\n" +
		"slots.removable = false\n" +
		"slots.mechanisms = ALL\n" +
		"library.reset_on_fork = false\n"
	if err := os.WriteFile(s.ConfPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("softhsm: %w", err)
	}
	return s, nil
}

// ErrNotProvisioned means a data dir has no softhsm2.conf: Create (trent
// hsm init) has not made it.
var ErrNotProvisioned = errors.New("softhsm: not a data dir made by trent hsm init (no softhsm2.conf)")

// Open returns the Store of the data dir dir, which Create made, without
// writing anything, using the module FindModule returns. It fails with
// ErrNotProvisioned if dir has no softhsm2.conf.
func Open(dir string) (*Store, error) {
	mod, err := FindModule()
	if err != nil {
		return nil, err
	}
	return OpenWithModule(dir, mod)
}

// OpenWithModule is Open with an explicit module path.
func OpenWithModule(dir, module string) (*Store, error) {
	s, err := newStore(dir, module)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(s.ConfPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%w: %s", ErrNotProvisioned, s.Dir)
	case err != nil:
		return nil, fmt.Errorf("softhsm: %w", err) // not "run trent hsm init": something else is wrong
	}
	return s, nil
}

// newStore names the files of the data dir dir.
func newStore(dir, module string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("softhsm: data dir: %w", err)
	}
	// SoftHSM's configuration syntax cuts a value at '=' and '#' (checked
	// with SoftHSM 2.6.1) and at a line break.
	if strings.ContainsAny(abs, "\n\r=#") {
		return nil, fmt.Errorf("softhsm: data dir %q: SoftHSM cannot use a path containing '=', '#' or a line break", abs)
	}
	return &Store{
		Dir:      abs,
		ConfPath: filepath.Join(abs, "softhsm2.conf"),
		TokenDir: filepath.Join(abs, "tokens"),
		Module:   module,
	}, nil
}

// ModuleConfig is the hsm module configuration for this data dir.
func (s *Store) ModuleConfig() hsm.ModuleConfig {
	return hsm.ModuleConfig{Path: s.Module, Env: []string{EnvConf + "=" + s.ConfPath}}
}

// TokenConfig is the hsm configuration to open the token labelled label.
func (s *Store) TokenConfig(label, pin string) hsm.Config {
	return hsm.Config{Module: s.ModuleConfig(), TokenLabel: label, PIN: pin}
}

// InitToken initialises a new token labelled label with the given PINs.
// It fails with hsm.ErrTokenExists if the data dir already has one.
func (s *Store) InitToken(label, soPIN, userPIN string) error {
	return hsm.InitToken(s.ModuleConfig(), label, soPIN, userPIN)
}

// EnsureToken initialises the token labelled label unless it exists;
// created reports whether it did.
func (s *Store) EnsureToken(label, soPIN, userPIN string) (created bool, err error) {
	err = s.InitToken(label, soPIN, userPIN)
	if errors.Is(err, hsm.ErrTokenExists) {
		return false, nil
	}
	return err == nil, err
}
