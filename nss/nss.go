// Package nss provisions NSS's softoken (libsoftokn3, the PKCS#11 module of
// Mozilla's Network Security Services) for Trent, as package softhsm does
// SoftHSM2: it finds the module, keeps a data dir of NSS databases (one per
// token, DIR/nssdb/LABEL/; Create, Open), writes the initialisation string
// the module reads at C_Initialize (ModuleConfig), and provisions tokens
// through PKCS#11 (by way of package hsm).
//
// # How NSS's softoken differs
//
// The softoken takes its configuration in C_Initialize's pReserved argument
// rather than from a file or the environment: NSS's "module spec", a list
// of name='value' parameters. This package gives it no database of its own
// (flags noCertDB, noKeyDB, noModDB: no "NSS Certificate DB" token, no
// secmod database) and one user token per subdirectory of DIR/nssdb in its
// tokens=<…> parameter: slot 0x4 for the first label in sorted order, 0x5
// for the next and so on, each an NSS SQL database (cert9.db, key4.db)
// whose token label (tokenDescription) is the directory's name. The slot
// IDs change when a token is added; Trent finds tokens by label.
//
// A new NSS database is a token with no user PIN whose security officer
// logs in with the empty PIN; there is no C_InitToken. InitToken creates the
// directory and sets the user PIN with C_InitPIN (hsm.InitUserPIN). Once
// the user PIN is set the SO PIN no longer exists: NSS has one password per
// database.
//
// # One initialisation string per module instance
//
// Package hsm keeps one initialised instance of a module per process, and
// the string names every token of the data dir as it was when the module
// was initialised: tokens opened at the same time in one process must be in
// the same data dir, and a token added while others are open in the process
// is seen once they are all closed (hsm.ErrModuleConflict until then). This
// is how trent dev runs several HSM nodes in one process, as with SoftHSM.
package nss

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trentkms/trent/hsm"
)

// EnvModule overrides the module path FindModule returns.
const EnvModule = "TRENT_NSS_MODULE"

// ModulePaths are the places NSS packages install the softoken, in the
// order FindModule tries them.
var ModulePaths = []string{
	"/usr/lib/x86_64-linux-gnu/libsoftokn3.so",     // Debian, Ubuntu (libnss3)
	"/usr/lib/aarch64-linux-gnu/libsoftokn3.so",    // Debian, Ubuntu on arm64
	"/usr/lib/x86_64-linux-gnu/nss/libsoftokn3.so", // older Ubuntu
	"/usr/lib64/libsoftokn3.so",                    // Fedora, RHEL (nss-softokn)
	"/usr/lib/libsoftokn3.so",                      // Arch, Alpine
	"/usr/local/lib/libsoftokn3.so",                // FreeBSD, built from source
	"/opt/homebrew/lib/libsoftokn3.dylib",          // macOS, Homebrew on Apple silicon
	"/usr/local/opt/nss/lib/libsoftokn3.dylib",     // macOS, Homebrew on Intel
}

// ErrModuleNotFound means no softoken was found.
var ErrModuleNotFound = errors.New("nss: libsoftokn3 not found (install libnss3, run `make deps`, or set " + EnvModule + ")")

// ErrNotProvisioned means a data dir has no DIR/nssdb: Create (trent hsm
// init --module nss) has not made it.
var ErrNotProvisioned = errors.New("nss: not a data dir made by trent hsm init --module nss (no nssdb)")

// MaxTokens bounds the tokens of one data dir: the softoken numbers user
// slots from 0x4 to 100.
const MaxTokens = 96

// firstSlot is the softoken's first user slot ID.
const firstSlot = 4

// FindModule returns the path of the softoken: $TRENT_NSS_MODULE if set
// (which must exist), else the first of ModulePaths that exists.
func FindModule() (string, error) {
	if p := os.Getenv(EnvModule); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("nss: %s=%s: %w", EnvModule, p, hsm.ErrModuleNotFound)
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

// Store is a data dir of NSS databases, one per token.
type Store struct {
	Dir    string // the data dir, absolute
	DBDir  string // Dir/nssdb: one subdirectory (an NSS SQL database) per token label
	Module string // the module path
}

// Create makes (or reuses) the data dir dir, using the module FindModule
// returns. It is idempotent: existing tokens are kept.
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
	if err := os.MkdirAll(s.DBDir, 0o700); err != nil {
		return nil, fmt.Errorf("nss: %w", err)
	}
	return s, nil
}

// Open returns the Store of the data dir dir, which Create made, without
// writing anything, using the module FindModule returns. It fails with
// ErrNotProvisioned if dir has no nssdb directory.
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
	fi, err := os.Stat(s.DBDir)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir():
		return nil, fmt.Errorf("%w: %s", ErrNotProvisioned, s.Dir)
	case err != nil:
		return nil, fmt.Errorf("nss: %w", err)
	}
	return s, nil
}

// IsDataDir reports whether dir holds NSS tokens (Create made it).
func IsDataDir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "nssdb"))
	return err == nil && fi.IsDir()
}

func newStore(dir, module string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("nss: data dir: %w", err)
	}
	// The path goes into the module spec as a quoted value; NSS's parser
	// treats quotes, brackets and backslashes specially.
	if strings.ContainsAny(abs, "'\"[]<>\\\x00\n\r") {
		return nil, fmt.Errorf("nss: data dir %q: the softoken's parameters cannot hold a path containing quotes, brackets, '<', '>', a backslash or a line break", abs)
	}
	return &Store{Dir: abs, DBDir: filepath.Join(abs, "nssdb"), Module: module}, nil
}

// CheckLabel reports whether label can name an NSS token here: 1 to 32
// bytes of letters, digits, '.', '_' and '-' (it is a directory name and a
// module-spec value).
func CheckLabel(label string) error {
	if label == "" || len(label) > 32 || label[0] == '.' {
		return fmt.Errorf("nss: token label %q: want 1 to 32 letters, digits, '.', '_' or '-', not starting with '.'", label)
	}
	for _, c := range label {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("nss: token label %q: want 1 to 32 letters, digits, '.', '_' or '-', not starting with '.'", label)
		}
	}
	return nil
}

// Labels lists the tokens of the data dir, sorted.
func (s *Store) Labels() ([]string, error) {
	ents, err := os.ReadDir(s.DBDir)
	if err != nil {
		return nil, fmt.Errorf("nss: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && CheckLabel(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	if len(out) > MaxTokens {
		return nil, fmt.Errorf("nss: %s holds %d tokens, more than the %d the softoken has slots for", s.DBDir, len(out), MaxTokens)
	}
	return out, nil
}

// InitArgs is the softoken's initialisation string for the data dir's
// tokens (see the package documentation).
func (s *Store) InitArgs() (string, error) {
	labels, err := s.Labels()
	if err != nil {
		return "", err
	}
	return initArgs(s.DBDir, labels), nil
}

func initArgs(dbDir string, labels []string) string {
	var b strings.Builder
	b.WriteString("configdir='' certPrefix='' keyPrefix='' secmod='' flags='noCertDB,noKeyDB,noModDB' tokens=<")
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "0x%x=[configdir='sql:%s' certPrefix='' keyPrefix='' tokenDescription='%s' slotDescription='trent %s']",
			firstSlot+i, filepath.Join(dbDir, l), l, l)
	}
	b.WriteByte('>')
	return b.String()
}

// ModuleConfig is the hsm module configuration for the data dir's tokens.
func (s *Store) ModuleConfig() (hsm.ModuleConfig, error) {
	args, err := s.InitArgs()
	if err != nil {
		return hsm.ModuleConfig{}, err
	}
	return hsm.ModuleConfig{Path: s.Module, InitArgs: args}, nil
}

// TokenConfig is the hsm configuration to open the token labelled label.
func (s *Store) TokenConfig(label, pin string) (hsm.Config, error) {
	mod, err := s.ModuleConfig()
	if err != nil {
		return hsm.Config{}, err
	}
	return hsm.Config{Module: mod, TokenLabel: label, PIN: pin}, nil
}

// InitToken makes the database of a new token labelled label and sets its
// user PIN. It fails with hsm.ErrTokenExists if the token's PIN is set
// already.
func (s *Store) InitToken(label, userPIN string) error {
	if err := CheckLabel(label); err != nil {
		return err
	}
	if userPIN == "" {
		return errors.New("nss: empty user PIN")
	}
	if err := os.Mkdir(filepath.Join(s.DBDir, label), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("nss: %w", err)
	}
	mod, err := s.ModuleConfig()
	if err != nil {
		return err
	}
	// A new database's security officer has the empty PIN.
	return hsm.InitUserPIN(mod, label, "", userPIN)
}

// EnsureToken makes the token labelled label unless it exists; created
// reports whether it did.
func (s *Store) EnsureToken(label, userPIN string) (created bool, err error) {
	err = s.InitToken(label, userPIN)
	if errors.Is(err, hsm.ErrTokenExists) {
		return false, nil
	}
	return err == nil, err
}
