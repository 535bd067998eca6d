package p11

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/softhsm"
	"github.com/trentkms/trent/tokenstore"
)

// DefaultLabel is the proxy's token label unless told otherwise.
const DefaultLabel = "trent-xks"

// PIN files Init writes in a SoftHSM data dir (mode 0600).
const (
	UserPINFile = "user.pin"
	SOPINFile   = "so.pin"
)

// TokenOptions name the proxy's token: a SoftHSM data dir that Init
// provisioned (Dir; or an NSS data dir of trent hsm init --module nss), or
// any vendor's module (Module, with the environment it reads at
// C_Initialize and the string it takes there) and a token in it by label;
// with both, the module is Dir's at Module.Path.
type TokenOptions struct {
	Dir    string
	Module hsm.ModuleConfig
	Label  string // DefaultLabel if empty
	// PIN is the user PIN; if empty it is read from PINFile, else from
	// Dir/user.pin.
	PIN     string
	PINFile string
}

// OpenToken opens the token o names. It writes nothing.
func OpenToken(o TokenOptions) (*hsm.Token, error) {
	if o.Label == "" {
		o.Label = DefaultLabel
	}
	mod := o.Module
	if o.Dir != "" && len(mod.Env) == 0 && mod.InitArgs == "" {
		// The data dir's module, SoftHSM2's or NSS's, from its files.
		store, err := tokenstore.Open("", o.Dir, mod.Path)
		if err != nil {
			return nil, fmt.Errorf("xks/p11: %w (run trent xks init first)", err)
		}
		if mod, err = store.ModuleConfig(); err != nil {
			return nil, fmt.Errorf("xks/p11: %w", err)
		}
	}
	if mod.Path == "" {
		return nil, errors.New("xks/p11: no PKCS#11 module: give a SoftHSM data dir or a module path")
	}
	pin := o.PIN
	if pin == "" {
		file := o.PINFile
		if file == "" && o.Dir != "" {
			file = filepath.Join(o.Dir, UserPINFile)
		}
		if file == "" {
			return nil, errors.New("xks/p11: no user PIN: give a PIN or a PIN file")
		}
		var err error
		if pin, err = tokenstore.ReadPINFile(file); err != nil {
			return nil, err
		}
	}
	tok, err := hsm.Open(hsm.Config{Module: mod, TokenLabel: o.Label, PIN: pin})
	if err != nil {
		return nil, fmt.Errorf("xks/p11: %w", err)
	}
	return tok, nil
}

// InitResult is what Init did.
type InitResult struct {
	Dir          string `json:"dir"`
	TokenLabel   string `json:"token_label"`
	Module       string `json:"module"`
	TokenCreated bool   `json:"token_created"`
	PINFile      string `json:"pin_file,omitempty"` // the user PIN's file, if Init used or wrote one
}

// Init provisions a SoftHSM data dir for the proxy: DIR/softhsm2.conf,
// DIR/tokens/ and a token labelled label (DefaultLabel if empty). The
// PINs are pin and soPIN if given, else read from DIR/user.pin and
// DIR/so.pin, else generated into them (16 random bytes, hex, mode
// 0600). A second run reuses everything. module, if not empty, is the
// SoftHSM2 library to use.
func Init(dir, module, label, pin, soPIN string) (*InitResult, error) {
	if dir == "" {
		return nil, errors.New("xks/p11: no data dir")
	}
	if label == "" {
		label = DefaultLabel
	}
	var store *softhsm.Store
	var err error
	if module != "" {
		store, err = softhsm.CreateWithModule(dir, module)
	} else {
		store, err = softhsm.Create(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("xks/p11: %w", err)
	}
	res := &InitResult{Dir: store.Dir, TokenLabel: label, Module: store.ModuleConfig().Path}
	if pin, res.PINFile, err = tokenstore.PINFor(pin, filepath.Join(store.Dir, UserPINFile)); err != nil {
		return nil, err
	}
	if soPIN, _, err = tokenstore.PINFor(soPIN, filepath.Join(store.Dir, SOPINFile)); err != nil {
		return nil, err
	}
	if res.TokenCreated, err = store.EnsureToken(label, soPIN, pin); err != nil {
		return nil, fmt.Errorf("xks/p11: %w", err)
	}
	return res, nil
}
