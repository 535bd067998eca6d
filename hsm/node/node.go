// Package node is a Trent HSM node: the process around one token that
// holds the node's identity keys and, once it has a domain, the domain keys.
//
// # Provisioning
//
// Init provisions a node in a data dir of SoftHSM2 or NSS softoken tokens
// (package tokenstore): the token (if absent), the PINs, and the identity
// keys (if absent). It is idempotent: a second Init on the same data dir and
// label reuses the token and its keys and reports the same identity.
//
// # Serving
//
// Open opens a node's token in any PKCS#11 module, named by Options.Module
// (path, environment, initialisation string), label and PIN, or by the
// data dir of Init (Options.Dir, read and never written). A Node serves the
// session protocol (package session) on one port, in frames to hosts and
// over HTTP/2 to tools: handshakes, enveloped commands (Ping, the domain
// operations, the customer key operations, batches); and over HTTP/2 the
// token endpoint outside sessions, and /metrics. In the token it makes genesis
// (CreateDomain), exports domain tokens without enacting them, imports
// tokens under the trust rule narrowed by its domain anchor (Anchor),
// re-encrypts EKTs, and keeps the domain keys as session objects. A Node is
// safe for concurrent use.
package node

import (
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/tokenstore"
)

// DefaultLabel is the token label Init uses when none is given.
const DefaultLabel = "trent-hsm"

// Names of the PIN files Init writes when no PIN is given.
const (
	UserPINFile = "user.pin"
	SOPINFile   = "so.pin"
)

// InitOptions say where and how to provision a node.
type InitOptions struct {
	Dir   string // data dir: SoftHSM2's softhsm2.conf and tokens/, or NSS's nssdb/, go here
	Label string // token label; DefaultLabel if empty
	// Module chooses the module, as tokenstore.ParseModule reads it:
	// "softhsm" (the default when empty) or "nss", found where their
	// packages install them; "softhsm:PATH" or "nss:PATH"; or a bare PATH,
	// a library of the data dir's module (SoftHSM2 for a new one).
	Module string

	// PINs. An empty PIN is read from Dir/user.pin (Dir/so.pin); if that
	// file does not exist either, a random PIN is generated and written
	// there with mode 0600 (the dev-cluster convenience; see
	// docs/hsm-boundary.md).
	PIN, SOPIN string
}

// Info describes a provisioned node; it is what `trent hsm init` prints.
// Public keys are DER SubjectPublicKeyInfo (base64 in JSON).
type Info struct {
	HSMID              string `json:"hsm_id"`
	SigningPublicKey   []byte `json:"signing_public_key"`
	AgreementPublicKey []byte `json:"agreement_public_key"`
	// KEMPublicKey is the node's ML-KEM-1024 encapsulation key (1568
	// bytes, FIPS 203), for the domain state's session policy.
	KEMPublicKey []byte `json:"kem_public_key"`
	TokenLabel   string `json:"token_label"`
	Module       string `json:"module"`
	ModuleKind   string `json:"module_kind"` // softhsm or nss
}

// Result is Info plus what Init did.
type Result struct {
	Info
	TokenCreated    bool   `json:"token_created"`
	IdentityCreated bool   `json:"identity_created"`
	PINFile         string `json:"pin_file,omitempty"` // where the user PIN was read from or written to, if a file
}

// Init provisions the node of opts: the data dir, the token (if absent)
// and the identity keys (if absent).
func Init(opts InitOptions) (*Result, error) {
	if opts.Dir == "" {
		return nil, errors.New("node: no data dir")
	}
	if opts.Label == "" {
		opts.Label = DefaultLabel
	}
	kind, path, err := tokenstore.ParseModule(opts.Module)
	if err != nil {
		return nil, err
	}
	if kind == "" {
		// A bare path is a library of the data dir's module.
		if kind, err = tokenstore.Detect(opts.Dir); errors.Is(err, tokenstore.ErrNotProvisioned) {
			kind, err = tokenstore.SoftHSM, nil
		}
		if err != nil {
			return nil, err
		}
	}
	store, err := tokenstore.Create(kind, opts.Dir, path)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	pin, pinFile, err := tokenstore.PINFor(opts.PIN, filepath.Join(store.Dir(), UserPINFile))
	if err != nil {
		return nil, err
	}
	res.PINFile = pinFile
	// NSS's databases have no security officer PIN once the user PIN is
	// set: no SO PIN file is made for them.
	var soPIN string
	if store.Kind() == tokenstore.SoftHSM {
		if soPIN, _, err = tokenstore.PINFor(opts.SOPIN, filepath.Join(store.Dir(), SOPINFile)); err != nil {
			return nil, err
		}
	}
	res.TokenCreated, err = store.EnsureToken(opts.Label, soPIN, pin)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	cfg, err := store.TokenConfig(opts.Label, pin)
	if err != nil {
		return nil, err
	}
	tok, err := hsm.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	defer tok.Close()
	id, created, err := tok.EnsureIdentity()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	res.IdentityCreated = created
	seed, _, err := tok.EnsureKEMSeed()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	_, ek, err := session.KEMKeyFromSeed(seed)
	clear(seed)
	if err != nil {
		return nil, err
	}
	res.Info, err = describe(id, opts.Label, store.ModulePath())
	res.KEMPublicKey = ek
	res.ModuleKind = string(store.Kind())
	return res, err
}

func describe(id *hsm.Identity, label, module string) (Info, error) {
	sig, err := x509.MarshalPKIXPublicKey(id.Signing.PublicKey())
	if err != nil {
		return Info{}, fmt.Errorf("node: %w", err)
	}
	agr, err := x509.MarshalPKIXPublicKey(id.Agreement.PublicKey())
	if err != nil {
		return Info{}, fmt.Errorf("node: %w", err)
	}
	return Info{HSMID: id.ID(), SigningPublicKey: sig, AgreementPublicKey: agr, TokenLabel: label, Module: module}, nil
}
