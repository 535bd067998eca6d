package dev_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

// trent dev with its HSMs on NSS's softoken (--hsm-module nss), each a
// process of its own: the KMS API encrypts, decrypts (on every HSM), makes
// data keys and random bytes, and signs and verifies with a secp256k1 key
// (which NSS does not know: the HSM process does that arithmetic); an HSM
// killed and started again rejoins, its domain anchor read back from its
// NSS database.
func TestProcessesOnNSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trent binary and runs a cluster of processes")
	}
	storetest.RequireModule(t, tokenstore.NSS)
	bin := buildTrent(t)
	opts := dev.Options{Dir: t.TempDir(), HSMs: 2, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0",
		RotationInterval: -1, Exec: bin, HSMModule: tokenstore.NSS}
	c, err := dev.Start(opts, func(s string) { t.Log(s) })
	require.NoError(t, err)
	defer c.Stop()
	assert.Equal(t, "nss", c.HSMModule)
	for _, h := range c.HSMs {
		assert.Equal(t, "nss", h.ModuleKind)
	}
	_, err = c.Check(context.Background())
	require.NoError(t, err)

	ctx := context.Background()
	cl := kmsClient(t, c)
	key, err := cl.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err)
	pt := []byte("sealed by HSMs on NSS")
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: pt})
	require.NoError(t, err)
	decrypts := func() {
		t.Helper()
		for range 4 { // round robin over the HSMs, twice
			out, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			require.NoError(t, err)
			require.Equal(t, pt, out.Plaintext)
		}
	}
	decrypts()
	dk, err := cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: key.KeyMetadata.KeyId, KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	back, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
	require.NoError(t, err)
	require.Equal(t, dk.Plaintext, back.Plaintext)
	rnd, err := cl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)})
	require.NoError(t, err)
	require.Len(t, rnd.Plaintext, 32)

	k1, err := cl.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccSecgP256k1, KeyUsage: types.KeyUsageTypeSignVerify})
	require.NoError(t, err)
	digest := sha256.Sum256([]byte("message"))
	sig, err := cl.Sign(ctx, &kms.SignInput{KeyId: k1.KeyMetadata.KeyId, Message: digest[:], MessageType: types.MessageTypeDigest,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	require.NoError(t, err)
	ver, err := cl.Verify(ctx, &kms.VerifyInput{KeyId: k1.KeyMetadata.KeyId, Message: digest[:], MessageType: types.MessageTypeDigest,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: sig.Signature})
	require.NoError(t, err)
	assert.True(t, ver.SignatureValid)

	// kill -9 of an HSM, then the same command: it rejoins.
	p := c.Proc("hsm-1")
	require.NotNil(t, p)
	require.NoError(t, p.Kill())
	require.NoError(t, p.Start())
	st, err := host.GetStatus(ctx, c.Hosts[0].API)
	require.NoError(t, err)
	everyHSMAt(t, c, st.StateVersion)
	decrypts()
}
