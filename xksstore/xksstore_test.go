package xksstore

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/kms"
	"github.com/trentkms/trent/xks"
)

// Every failure kind of the client lands in the class the package
// documents, keeping the client's error for the log.
func TestMapErr(t *testing.T) {
	for k, want := range map[xks.Kind]error{
		xks.KindUnreachable: kms.ErrXKSUnreachable, xks.KindThrottled: kms.ErrXKSUnreachable,
		xks.KindTimeout: kms.ErrXKSTimeout, xks.KindAuthenticationFailed: kms.ErrXKSAuthentication,
		xks.KindAccessDenied: kms.ErrXKSAccessDenied, xks.KindInvalidURIPath: kms.ErrXKSInvalidConfiguration,
		xks.KindInvalidResponse: kms.ErrXKSInvalidResponse, xks.KindValidation: kms.ErrXKSInvalidResponse,
		xks.KindInternal: kms.ErrXKSInvalidResponse, xks.KindUnsupported: kms.ErrXKSInvalidResponse,
		xks.KindKeyNotFound: kms.ErrXKSKeyNotFound, xks.KindInvalidState: kms.ErrXKSKeyInvalid,
		xks.KindInvalidKeyUsage: kms.ErrXKSKeyInvalid, xks.KindInvalidCiphertext: kms.ErrRefused,
	} {
		e := &xks.Error{Op: "Encrypt", Kind: k}
		got := mapErr(e)
		assert.ErrorIs(t, got, want, k.String())
		assert.ErrorIs(t, got, e, k.String())
	}
	assert.ErrorIs(t, mapErr(xks.ErrInvalidInput), kms.ErrXKSInvalidConfiguration)
	assert.NoError(t, mapErr(nil))
}

// A configuration the client refuses is an invalid configuration; a
// proxy that does not listen is unreachable.
func TestProxy(t *testing.T) {
	p := &Proxies{Region: "eu-west-1"}
	_, err := p.Proxy(kms.XKSConfig{URIEndpoint: "http://plain", URIPath: "/kms/xks/v1", AccessKeyID: "AKIA2345ABCDEFGHIJKL", Secret: []byte("s")})
	assert.ErrorIs(t, err, kms.ErrXKSInvalidConfiguration)
	px, err := p.Proxy(kms.XKSConfig{URIEndpoint: "https://127.0.0.1:1", URIPath: "/kms/xks/v1", AccessKeyID: "AKIA2345ABCDEFGHIJKL", Secret: []byte("s")})
	require.NoError(t, err)
	defer px.Close()
	err = px.Health(context.Background(), kms.XKSRequest{Operation: "ConnectCustomKeyStore", RequestID: "r"})
	assert.True(t, errors.Is(err, kms.ErrXKSUnreachable), "%v", err)
}
