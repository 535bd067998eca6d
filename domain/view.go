package domain

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/internal/strictjson"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/session"
)

// MaxViewFile bounds a domain view file.
const MaxViewFile = 1 << 20

// ErrInvalidView is wrapped by every error ParseView returns.
var ErrInvalidView = errors.New("domain: invalid domain view")

// View is the public part of a domain: its name and state version, its
// operators (with roles) and its member HSMs. Until quorum-managed domain
// state exists, a View is given to `trent hsm serve` as a JSON file
// (docs/operations.md); the HSMs and hosts read the domain through it.
type View struct {
	Name      string
	Version   uint64
	Operators []session.Operator
	Members   []session.Member
}

type viewFile struct {
	Name      string         `json:"name"`
	Version   uint64         `json:"version"`
	Operators []operatorJSON `json:"operators"`
	Members   []memberJSON   `json:"members"`
}

type operatorJSON struct {
	ID        string   `json:"id"`
	PublicKey []byte   `json:"public_key"` // DER SubjectPublicKeyInfo, base64
	Roles     []string `json:"roles"`
}

type memberJSON struct {
	ID                 string `json:"id"`
	SigningPublicKey   []byte `json:"signing_public_key"`
	AgreementPublicKey []byte `json:"agreement_public_key"`
}

// ParseView decodes a view file strictly: no unknown fields, no duplicate
// keys, P-384 keys, member IDs that match their signing keys (wire.HSMID),
// and no identifier twice.
func ParseView(data []byte) (*View, error) {
	var f viewFile
	if err := strictjson.Unmarshal(data, MaxViewFile, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidView, err)
	}
	v := &View{Name: f.Name, Version: f.Version}
	for _, o := range f.Operators {
		k, err := parseECDSA(o.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: operator %q: %v", ErrInvalidView, o.ID, err)
		}
		v.Operators = append(v.Operators, session.Operator{ID: o.ID, Key: k, Roles: o.Roles})
	}
	for _, m := range f.Members {
		mem, err := ParseMember(m.ID, m.SigningPublicKey, m.AgreementPublicKey)
		if err != nil {
			return nil, err
		}
		v.Members = append(v.Members, mem)
	}
	if _, err := v.Directory(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidView, err)
	}
	return v, nil
}

// ReadView reads and parses a view file.
func ReadView(path string) (*View, error) {
	data, err := boundedio.ReadFile(path, MaxViewFile)
	if err != nil {
		return nil, fmt.Errorf("domain: %w", err)
	}
	return ParseView(data)
}

// Directory is the session.Directory of the view.
func (v *View) Directory() (*session.StaticDirectory, error) {
	return session.NewStaticDirectory(v.Name, v.Version, v.Operators, v.Members)
}

// Marshal encodes the view as its JSON file.
func (v *View) Marshal() ([]byte, error) {
	f := viewFile{Name: v.Name, Version: v.Version, Operators: []operatorJSON{}, Members: []memberJSON{}}
	for _, o := range v.Operators {
		der, err := x509.MarshalPKIXPublicKey(o.Key)
		if err != nil {
			return nil, fmt.Errorf("domain: %w", err)
		}
		f.Operators = append(f.Operators, operatorJSON{ID: o.ID, PublicKey: der, Roles: o.Roles})
	}
	for _, m := range v.Members {
		sk, err := x509.MarshalPKIXPublicKey(m.Signing)
		if err != nil {
			return nil, fmt.Errorf("domain: %w", err)
		}
		ak, err := x509.MarshalPKIXPublicKey(m.Agreement)
		if err != nil {
			return nil, fmt.Errorf("domain: %w", err)
		}
		f.Members = append(f.Members, memberJSON{ID: m.ID, SigningPublicKey: sk, AgreementPublicKey: ak})
	}
	return json.MarshalIndent(f, "", "  ")
}

// ParseMember builds a member HSM from its ID and its signing and agreement
// keys (DER SubjectPublicKeyInfo, P-384), checking that the ID is the one
// the signing key gives (wire.HSMID).
func ParseMember(id string, signing, agreement []byte) (session.Member, error) {
	sk, err := parseECDSA(signing)
	if err != nil {
		return session.Member{}, fmt.Errorf("%w: member %q: %v", ErrInvalidView, id, err)
	}
	if want := wire.HSMID(sk); want != id {
		return session.Member{}, fmt.Errorf("%w: member %q: its signing key gives the ID %q", ErrInvalidView, id, want)
	}
	ak, err := parseECDH(agreement)
	if err != nil {
		return session.Member{}, fmt.Errorf("%w: member %q: %v", ErrInvalidView, id, err)
	}
	return session.Member{ID: id, Signing: sk, Agreement: ak}, nil
}

func parseECDSA(der []byte) (*ecdsa.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P384() {
		return nil, errors.New("not an ECDSA P-384 key")
	}
	return k, nil
}

// parseECDH accepts an EC P-384 SubjectPublicKeyInfo as an agreement key.
func parseECDH(der []byte) (*ecdh.PublicKey, error) {
	k, err := parseECDSA(der)
	if err != nil {
		return nil, err
	}
	return k.ECDH()
}
