package ceremony

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/internal/strictjson"
	"github.com/trentkms/trent/session"
)

// Limits on input files.
const (
	maxMemberFile = 16 << 10
	maxRootFile   = 256 << 10
	// MaxToken bounds a domain token file.
	MaxToken = 8 << 20
)

// ParseMember decodes an HSM's identity, the JSON `trent hsm init` prints
// (node.Info: hsm_id, signing_public_key, agreement_public_key, and the
// informational token_label and module), into a domain member whose ID
// must match its signing key.
func ParseMember(data []byte) (session.Member, error) {
	var info node.Info
	if err := strictjson.Unmarshal(data, maxMemberFile, &info); err != nil {
		return session.Member{}, fmt.Errorf("ceremony: member: %w", err)
	}
	if info.HSMID == "" || len(info.SigningPublicKey) == 0 || len(info.AgreementPublicKey) == 0 {
		return session.Member{}, errors.New("ceremony: member: hsm_id, signing_public_key and agreement_public_key are required")
	}
	m, err := domain.ParseMember(info.HSMID, info.SigningPublicKey, info.AgreementPublicKey)
	if err != nil {
		return session.Member{}, fmt.Errorf("ceremony: member: %w", err)
	}
	if len(info.KEMPublicKey) > 0 { // absent from the files of HSMs provisioned before ML-KEM keys
		if _, err := session.ParseKEMKey(info.KEMPublicKey); err != nil {
			return session.Member{}, fmt.Errorf("ceremony: member %s: kem_public_key: %w", info.HSMID, err)
		}
		m.KEM = info.KEMPublicKey
	}
	return m, nil
}

// ReadMember reads a member file.
func ReadMember(path string) (session.Member, error) {
	data, err := readFile(path, maxMemberFile)
	if err != nil {
		return session.Member{}, err
	}
	m, err := ParseMember(data)
	if err != nil {
		return session.Member{}, fmt.Errorf("%w (%s)", err, path)
	}
	return m, nil
}

// ParseRoots decodes a PEM file of one or more "CERTIFICATE" blocks (and
// nothing else) into DER certificates.
func ParseRoots(data []byte) ([][]byte, error) {
	rest := bytes.TrimSpace(data)
	var out [][]byte
	for len(rest) > 0 {
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, errors.New("ceremony: root certificate file: data outside PEM blocks")
		}
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("ceremony: root certificate file: bad PEM block")
		}
		rest = bytes.TrimSpace(rest)
		if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
			return nil, fmt.Errorf("ceremony: root certificate file: PEM type %q, want \"CERTIFICATE\" without headers", b.Type)
		}
		if len(b.Bytes) > domain.MaxRootLen {
			return nil, fmt.Errorf("ceremony: root certificate of %d bytes, at most %d", len(b.Bytes), domain.MaxRootLen)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return nil, fmt.Errorf("ceremony: root certificate: %w", err)
		}
		out = append(out, b.Bytes)
	}
	if len(out) == 0 {
		return nil, errors.New("ceremony: root certificate file holds no certificate")
	}
	return out, nil
}

// ReadRoots reads a root certificate file.
func ReadRoots(path string) ([][]byte, error) {
	data, err := readFile(path, maxRootFile)
	if err != nil {
		return nil, err
	}
	r, err := ParseRoots(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return r, nil
}

// ReadToken reads and decodes a domain token (domain.ParseToken: encodings
// only; the exporter's signature is not checked here).
func ReadToken(path string) (*domain.Parsed, []byte, error) {
	data, err := readFile(path, MaxToken)
	if err != nil {
		return nil, nil, err
	}
	p, err := domain.ParseToken(data)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony: domain token %s: %w", path, err)
	}
	return p, data, nil
}
