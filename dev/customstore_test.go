package dev_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/softhsm"
)

// A PKCS#11 custom key store on trent dev as processes: every host
// process (trent host serve --keystore-module, as trent dev starts it)
// opens the customer's SoftHSM token itself; a key made by the leader's
// process is used by the other's; a host killed and started again
// connects again from the raft state alone.
func TestProcessesCustomKeyStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trent binary and runs a cluster of processes")
	}
	bin := buildTrent(t)
	dir := t.TempDir()
	opts := dev.Options{Dir: dir, HSMs: 1, Hosts: 2, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1, Exec: bin, KMSOnEveryHost: true}
	c, err := dev.Start(opts, func(s string) { t.Log(s) })
	require.NoError(t, err)
	defer c.Stop()
	sh, err := softhsm.Open(filepath.Join(dir, "softhsm"))
	require.NoError(t, err)
	require.NoError(t, sh.InitToken("customer", "so-pin-1234", "kmsuser-pin-1"))

	ctx := context.Background()
	pt := []byte("in the customer's token")
	_, enc := customKeyStoreKey(t, c, sh.Module, pt)

	// The other host's own process, before and after a kill -9.
	other := kmsClientAt(t, c, c.Hosts[1].KMS)
	decrypts := func() {
		t.Helper()
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			out, err := other.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc})
			require.NoError(ct, err)
			assert.Equal(ct, pt, out.Plaintext)
		}, 30*time.Second, 200*time.Millisecond)
	}
	decrypts()
	p := c.Proc("host-2")
	require.NoError(t, p.Kill())
	require.NoError(t, p.Start())
	decrypts()
}

// customKeyStoreKey drives a PKCS#11 custom key store of module (the
// customer's token labelled "customer", its user PIN "kmsuser-pin-1") on
// cluster c: a store with a wrong PIN fails as INVALID_CREDENTIALS and is
// disconnected and deleted; one with the right PIN connects, makes a key
// in the token and encrypts pt under it. It returns the store's id and the
// ciphertext.
func customKeyStoreKey(t *testing.T, c *dev.Cluster, module string, pt []byte) (id string, ciphertext []byte) {
	t.Helper()
	ctx := context.Background()
	cl := kmsClient(t, c)
	create := func(name, pin string) string {
		out, err := cl.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String(name),
			CloudHsmClusterId: aws.String("customer"), TrustAnchorCertificate: aws.String(module), KeyStorePassword: aws.String(pin)})
		require.NoError(t, err)
		_, err = cl.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: out.CustomKeyStoreId})
		require.NoError(t, err)
		return *out.CustomKeyStoreId
	}
	state := func(id string) types.CustomKeyStoresListEntry {
		var e types.CustomKeyStoresListEntry
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			out, err := cl.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String(id)})
			require.NoError(ct, err)
			e = out.CustomKeyStores[0]
			assert.NotEqual(ct, types.ConnectionStateTypeConnecting, e.ConnectionState)
		}, 30*time.Second, 100*time.Millisecond)
		return e
	}
	bad := create("bad", "not-the-pin")
	e := state(bad)
	assert.Equal(t, types.ConnectionStateTypeFailed, e.ConnectionState)
	assert.Equal(t, types.ConnectionErrorCodeTypeInvalidCredentials, e.ConnectionErrorCode)
	_, err := cl.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(bad)})
	require.NoError(t, err)
	_, err = cl.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(bad)})
	require.NoError(t, err)

	id = create("mine", "kmsuser-pin-1")
	require.Equal(t, types.ConnectionStateTypeConnected, state(id).ConnectionState)
	key, err := cl.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm, CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: pt})
	require.NoError(t, err)
	return id, enc.CiphertextBlob
}

// kmsClientAt is kmsClient for another host's KMS API URL.
func kmsClientAt(t *testing.T, c *dev.Cluster, url string) *kms.Client {
	t.Helper()
	require.NotEmpty(t, url, "the host serves no KMS API")
	cl := kmsClient(t, c)
	return kms.New(cl.Options(), func(o *kms.Options) { o.BaseEndpoint = aws.String(url) })
}
