package xkstest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/xks"
)

func TestStartMemory(t *testing.T) {
	m := NewMemory()
	m.AddKey("k", xks.UsageEncrypt, xks.UsageDecrypt)
	p := Start(t, m)
	c, err := xks.New(p.Config)
	require.NoError(t, err)
	ctx := context.Background()
	md := xks.RequestMetadata{AWSPrincipalARN: "arn:aws:iam::1:root", KMSKeyARN: "arn:aws:kms:us-east-1:1:key/k", KMSOperation: "Encrypt", KMSRequestID: "1"}
	enc, err := c.Encrypt(ctx, "k", xks.EncryptRequest{RequestMetadata: md, Plaintext: []byte("hi"), AdditionalAuthenticatedData: []byte("a")})
	require.NoError(t, err)
	dec, err := c.Decrypt(ctx, "k", xks.DecryptRequest{RequestMetadata: md, Ciphertext: enc.Ciphertext, AdditionalAuthenticatedData: []byte("a"),
		InitializationVector: enc.InitializationVector, AuthenticationTag: enc.AuthenticationTag})
	require.NoError(t, err)
	assert.Equal(t, "hi", string(dec.Plaintext))

	m.SetEnabled("k", false)
	_, err = c.Encrypt(ctx, "k", xks.EncryptRequest{RequestMetadata: md, Plaintext: []byte("hi")})
	assert.Equal(t, xks.KindInvalidState, xks.KindOf(err), "%v", err)
	meta, err := c.GetKeyMetadata(ctx, "k", md)
	require.NoError(t, err)
	assert.Equal(t, xks.StatusDisabled, meta.KeyStatus)

	p.Close()
	_, err = c.Health(ctx, xks.RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "2"})
	assert.Equal(t, xks.KindUnreachable, xks.KindOf(err), "%v", err)
	assert.True(t, xks.KindOf(err).Retryable())
}
