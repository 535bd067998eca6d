// Package xksstore is kms.XKSProxies over package xks's client: how a
// service host reaches the XKS proxies of external key stores (AWS's
// External Key Store Proxy API). It maps the client's failure kinds to the
// classes package kms answers with AWS's exceptions:
//
//	xks Kind                                  kms error
//	Unreachable, Throttled                    ErrXKSUnreachable
//	Timeout                                   ErrXKSTimeout
//	AuthenticationFailed                      ErrXKSAuthentication
//	AccessDenied                              ErrXKSAccessDenied
//	InvalidURIPath                            ErrXKSInvalidConfiguration
//	InvalidResponse, Validation, Internal,    ErrXKSInvalidResponse
//	  Unsupported
//	KeyNotFound                               ErrXKSKeyNotFound
//	InvalidState, InvalidKeyUsage             ErrXKSKeyInvalid
//	InvalidCiphertext                         kms.ErrRefused
//
// A health answer whose external key managers are all UNAVAILABLE is
// ErrXKSUnreachable (AWS answers it as an unreachable proxy). Encrypt asks
// the proxy for the ciphertext data integrity value (SHA_256), which the
// client checks. The package is cgo-free and safe for concurrent use.
package xksstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/trentkms/trent/kms"
	"github.com/trentkms/trent/xks"
)

// Proxies is kms.XKSProxies.
type Proxies struct {
	// Region is the SigV4 region the requests are signed for (the host's).
	Region string
	// TLS, if set, configures the connections (the roots proxies' server
	// certificates must chain to, a client certificate for mutual TLS);
	// nil: the system roots.
	TLS *tls.Config
	// Timeout bounds each call (xks.DefaultTimeout if zero).
	Timeout time.Duration
}

var _ kms.XKSProxies = (*Proxies)(nil)

// Proxy makes a client of the proxy cfg names.
func (p *Proxies) Proxy(cfg kms.XKSConfig) (kms.XKSProxy, error) {
	c, err := xks.New(xks.Config{Endpoint: cfg.URIEndpoint, URIPath: cfg.URIPath, AccessKeyID: cfg.AccessKeyID,
		SecretAccessKey: string(cfg.Secret), Region: p.Region, TLS: p.TLS, Timeout: p.Timeout})
	if err != nil {
		return nil, fmt.Errorf("xksstore: %w: %w", kms.ErrXKSInvalidConfiguration, err)
	}
	return &proxy{c: c}, nil
}

type proxy struct{ c *xks.Client }

// mapErr classifies a client error for package kms.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var class error
	switch xks.KindOf(err) {
	case xks.KindUnreachable, xks.KindThrottled:
		class = kms.ErrXKSUnreachable
	case xks.KindTimeout:
		class = kms.ErrXKSTimeout
	case xks.KindAuthenticationFailed:
		class = kms.ErrXKSAuthentication
	case xks.KindAccessDenied:
		class = kms.ErrXKSAccessDenied
	case xks.KindInvalidURIPath:
		class = kms.ErrXKSInvalidConfiguration
	case xks.KindKeyNotFound:
		class = kms.ErrXKSKeyNotFound
	case xks.KindInvalidState, xks.KindInvalidKeyUsage:
		class = kms.ErrXKSKeyInvalid
	case xks.KindInvalidCiphertext:
		class = kms.ErrRefused
	case xks.KindInvalidResponse, xks.KindValidation, xks.KindInternal, xks.KindUnsupported:
		class = kms.ErrXKSInvalidResponse
	default:
		if errors.Is(err, xks.ErrInvalidInput) {
			class = kms.ErrXKSInvalidConfiguration // a request the client refused unsent
		} else {
			class = kms.ErrXKSInvalidResponse
		}
	}
	return fmt.Errorf("xksstore: %w: %w", class, err)
}

func metadata(r kms.XKSRequest) xks.RequestMetadata {
	return xks.RequestMetadata{AWSPrincipalARN: r.PrincipalARN, KMSKeyARN: r.KeyARN, KMSOperation: r.Operation, KMSRequestID: r.RequestID}
}

func (p *proxy) Health(ctx context.Context, r kms.XKSRequest) error {
	h, err := p.c.Health(ctx, xks.RequestMetadata{KMSOperation: r.Operation, KMSRequestID: r.RequestID})
	if err != nil {
		return mapErr(err)
	}
	for _, d := range h.EkmFleetDetails {
		if d.HealthStatus != xks.HealthUnavailable {
			return nil
		}
	}
	return fmt.Errorf("xksstore: %w: every external key manager is UNAVAILABLE", kms.ErrXKSUnreachable)
}

func (p *proxy) KeyMetadata(ctx context.Context, r kms.XKSRequest, keyID string) (*kms.XKSKeyMetadata, error) {
	md, err := p.c.GetKeyMetadata(ctx, keyID, metadata(r))
	if err != nil {
		return nil, mapErr(err)
	}
	return &kms.XKSKeyMetadata{KeySpec: md.KeySpec, KeyUsage: md.KeyUsage, KeyStatus: md.KeyStatus}, nil
}

func (p *proxy) Encrypt(ctx context.Context, r kms.XKSRequest, keyID string, aad, plaintext []byte) (*kms.XKSCiphertext, error) {
	out, err := p.c.Encrypt(ctx, keyID, xks.EncryptRequest{RequestMetadata: metadata(r), Plaintext: plaintext,
		AdditionalAuthenticatedData: aad, CiphertextDataIntegrityValueAlgorithm: xks.CDIVSHA256})
	if err != nil {
		return nil, mapErr(err)
	}
	return &kms.XKSCiphertext{Ciphertext: out.Ciphertext, IV: out.InitializationVector, Tag: out.AuthenticationTag, Metadata: out.CiphertextMetadata}, nil
}

func (p *proxy) Decrypt(ctx context.Context, r kms.XKSRequest, keyID string, aad []byte, c *kms.XKSCiphertext) ([]byte, error) {
	out, err := p.c.Decrypt(ctx, keyID, xks.DecryptRequest{RequestMetadata: metadata(r), Ciphertext: c.Ciphertext,
		CiphertextMetadata: c.Metadata, AdditionalAuthenticatedData: aad, InitializationVector: c.IV, AuthenticationTag: c.Tag})
	if err != nil {
		return nil, mapErr(err)
	}
	return out.Plaintext, nil
}

func (p *proxy) Close() { p.c.Close() }
