package nitro

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/trentkms/trent/internal/boundedio"
)

// A simulated NSM's hierarchy is kept as one PEM file: for root,
// regional, zonal and instance in that order, a CERTIFICATE block then its
// PRIVATE KEY block (PKCS #8). The keys are a test CA's: whoever reads the
// file can make documents that a cluster trusting its root accepts, which
// is what a simulated NSM is for. The file is written 0600.

// MaxSimCAFile bounds the file LoadSimCA reads.
const MaxSimCAFile = 64 << 10

// ErrSimCAFile reports a simulated NSM file that is not four certificates
// with their keys, each signed by the one before.
var ErrSimCAFile = errors.New("nitro: malformed simulated NSM file")

// Marshal encodes the hierarchy with its private keys.
func (ca *SimCA) Marshal() ([]byte, error) {
	var out bytes.Buffer
	certs := append([]*x509.Certificate{ca.Root}, ca.chain...)
	for i, c := range certs {
		der, err := x509.MarshalPKCS8PrivateKey(ca.keys[i])
		if err != nil {
			return nil, err
		}
		pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		pem.Encode(&out, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		clear(der)
	}
	return out.Bytes(), nil
}

// ParseSimCA decodes what Marshal wrote; rng is used for the documents it
// signs (crypto/rand if nil).
func ParseSimCA(b []byte, rng io.Reader) (*SimCA, error) {
	if rng == nil {
		rng = rand.Reader
	}
	ca := &SimCA{rand: rng}
	rest := b
	for i := 0; i < 4; i++ {
		var cb, kb *pem.Block
		cb, rest = pem.Decode(rest)
		if cb == nil || cb.Type != "CERTIFICATE" || len(cb.Headers) != 0 {
			return nil, fmt.Errorf("%w: certificate %d missing", ErrSimCAFile, i)
		}
		kb, rest = pem.Decode(rest)
		if kb == nil || kb.Type != "PRIVATE KEY" || len(kb.Headers) != 0 {
			return nil, fmt.Errorf("%w: key %d missing", ErrSimCAFile, i)
		}
		cert, err := x509.ParseCertificate(cb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrSimCAFile, i, err)
		}
		k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		clear(kb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d does not parse", ErrSimCAFile, i)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || !ek.PublicKey.Equal(cert.PublicKey) {
			return nil, fmt.Errorf("%w: key %d does not match its certificate", ErrSimCAFile, i)
		}
		if i == 0 {
			if err := cert.CheckSignatureFrom(cert); err != nil {
				return nil, fmt.Errorf("%w: the root is not self-signed", ErrSimCAFile)
			}
			ca.Root = cert
		} else {
			parent := ca.Root
			if i > 1 {
				parent = ca.chain[i-2]
			}
			if err := cert.CheckSignatureFrom(parent); err != nil {
				return nil, fmt.Errorf("%w: certificate %d is not signed by the one before", ErrSimCAFile, i)
			}
			ca.chain = append(ca.chain, cert)
		}
		ca.keys = append(ca.keys, ek)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: trailing data", ErrSimCAFile)
	}
	return ca, nil
}

// LoadSimCA reads a simulated NSM file.
func LoadSimCA(path string) (*SimCA, error) {
	b, err := boundedio.ReadFile(path, MaxSimCAFile)
	if errors.Is(err, boundedio.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w", ErrSimCAFile, err)
	}
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return ParseSimCA(b, nil)
}

// OpenSimCA loads the simulated NSM at path, making one (valid from a day
// ago for ten years) and writing it 0600 if the file does not exist.
func OpenSimCA(path string) (ca *SimCA, created bool, err error) {
	ca, err = LoadSimCA(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return ca, false, err
	}
	if ca, err = NewSimCA(nil, time.Now().Add(-24*time.Hour).Truncate(time.Second)); err != nil {
		return nil, false, err
	}
	b, err := ca.Marshal()
	if err != nil {
		return nil, false, err
	}
	defer clear(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, false, err
	}
	return ca, true, f.Close()
}
