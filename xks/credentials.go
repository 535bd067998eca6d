package xks

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// The specification's forms (Appendix A, and its configuration file):
// an access key ID of 20 to 30 characters A-Z and 2-7, a secret of 43 to
// 64 characters A-Z, a-z, 0-9, '+', '/', '='.
var (
	accessKeyIDPattern = regexp.MustCompile(`^[A-Z2-7]{20,30}$`)
	secretPattern      = regexp.MustCompile(`^[A-Za-z0-9+/=]{43,64}$`)
)

// Valid reports whether c has the specification's form.
func (c Credential) Valid() bool {
	return accessKeyIDPattern.MatchString(c.AccessKeyID) && secretPattern.MatchString(c.SecretAccessKey)
}

// NewCredential makes a random credential: a 26-character access key ID
// (16 random bytes in base32, unrelated to the secret) and a secret of 32
// random bytes in base64 (Appendix A's suggestion).
func NewCredential() (Credential, error) {
	id := make([]byte, 16)
	secret := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return Credential{}, fmt.Errorf("xks: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Credential{}, fmt.Errorf("xks: %w", err)
	}
	defer clear(secret)
	return Credential{
		AccessKeyID:     base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(id),
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret),
	}, nil
}

// credentialJSON is a credential as the specification's configuration
// file spells it.
type credentialJSON struct {
	AccessKeyID        string `json:"AccessKeyId"`
	RawSecretAccessKey string `json:"RawSecretAccessKey"`
}

// ParseCredentials reads a proxy's credentials file: a JSON array of
// {"AccessKeyId": ..., "RawSecretAccessKey": ...}, one or more, each of
// the specification's form, access key IDs distinct.
func ParseCredentials(data []byte) ([]Credential, error) {
	var w []credentialJSON
	if err := unmarshal(data, 1<<16, &w); err != nil {
		return nil, fmt.Errorf("xks: credentials: %w", err)
	}
	if len(w) == 0 {
		return nil, errors.New("xks: credentials: none")
	}
	out := make([]Credential, 0, len(w))
	seen := map[string]bool{}
	for i, c := range w {
		cr := Credential{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.RawSecretAccessKey}
		if !cr.Valid() || seen[cr.AccessKeyID] {
			return nil, fmt.Errorf("xks: credentials: entry %d: access key ID must be 20-30 of A-Z 2-7 and unique, secret 43-64 of A-Z a-z 0-9 + / =", i)
		}
		seen[cr.AccessKeyID] = true
		out = append(out, cr)
	}
	return out, nil
}

// MarshalCredentials is the credentials file of cs.
func MarshalCredentials(cs []Credential) []byte {
	w := make([]credentialJSON, len(cs))
	for i, c := range cs {
		w[i] = credentialJSON{c.AccessKeyID, c.SecretAccessKey}
	}
	b, _ := json.MarshalIndent(w, "", "  ")
	return append(b, '\n')
}

// ConfigFile is the specification's "XKS Proxy Configuration File", which
// the AWS KMS console accepts when a store is created or edited.
type ConfigFile struct {
	XksProxyURIPath                  string `json:"XksProxyUriPath"`
	XksProxyAuthenticationCredential struct {
		AccessKeyID        string `json:"AccessKeyId"`
		RawSecretAccessKey string `json:"RawSecretAccessKey"`
	} `json:"XksProxyAuthenticationCredential"`
}

// NewConfigFile is the configuration file of a URI path and credential.
func NewConfigFile(uriPath string, c Credential) ConfigFile {
	var f ConfigFile
	f.XksProxyURIPath = uriPath
	f.XksProxyAuthenticationCredential.AccessKeyID = c.AccessKeyID
	f.XksProxyAuthenticationCredential.RawSecretAccessKey = c.SecretAccessKey
	return f
}

// RequireClientCert makes cfg demand a client certificate chained to
// roots whose subject common name is commonName (mutual TLS as the
// specification's Authentication section describes it: AWS KMS presents
// CN=cks.kms.<region>.amazonaws.com); any other certificate ends the
// handshake.
func RequireClientCert(cfg *tls.Config, roots *x509.CertPool, commonName string) {
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = roots
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != commonName {
			return fmt.Errorf("xks: client certificate subject is not CN=%s", commonName)
		}
		return nil
	}
}

// ServerTLS is the TLS configuration the specification asks of a proxy:
// TLS 1.2 or later; under TLS 1.2 only the ECDHE AES-256-GCM suites it
// lists (TLS 1.3's suites are Go's, which include the two it lists).
func ServerTLS(certs []tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: certs,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
	}
}
