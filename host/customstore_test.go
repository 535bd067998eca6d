package host_test

import (
	"bytes"
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/hsm"
	kmssvc "github.com/trentkms/trent/kms"
	"github.com/trentkms/trent/p11store"
	"github.com/trentkms/trent/softhsm"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

// lateStores is kms.KeyStores whose p11store.Stores is set once the test
// cluster's SoftHSM data dir exists (the customer's token is a separate
// token in it, so that one module instance serves the HSM nodes and the
// store, as package hsm requires in one process).
type lateStores struct {
	s atomic.Pointer[p11store.Stores]
}

func (l *lateStores) Check(ctx context.Context, m, label string) error {
	return l.s.Load().Check(ctx, m, label)
}

func (l *lateStores) Connect(ctx context.Context, cfg kmssvc.TokenConfig) (kmssvc.TokenStore, error) {
	return l.s.Load().Connect(ctx, cfg)
}

const customerPIN = "kmsuser-pin-e2e"

// waitState polls DescribeCustomKeyStores through cl until the store
// leaves CONNECTING.
func waitState(t *testing.T, cl *kms.Client, id string) types.CustomKeyStoresListEntry {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := cl.DescribeCustomKeyStores(context.Background(), &kms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String(id)})
		require.NoError(t, err)
		require.Len(t, out.CustomKeyStores, 1)
		e := out.CustomKeyStores[0]
		if e.ConnectionState != types.ConnectionStateTypeConnecting || time.Now().After(deadline) {
			return e
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A PKCS#11 custom key store end to end: two hosts, real SoftHSM tokens
// (the HSM node's and the customer's), the AWS SDK. A wrong PIN fails as
// INVALID_CREDENTIALS; the right one connects on both hosts; a key made in
// the customer's token encrypts on one host and decrypts on the other;
// disconnected, its keys are in an invalid state; a store with keys is not
// deleted; the PIN is nowhere in the raft state or the audit trail.
func TestCustomKeyStorePKCS11(t *testing.T) {
	ls := &lateStores{}
	k := newKMSClusterWith(t, 2, 1, func(hc *host.Config) { hc.KeyStores = ls })
	sh, err := softhsm.Open(k.hsmDir)
	require.NoError(t, err)
	require.NoError(t, sh.InitToken("customer", softhsmtest.SOPIN, customerPIN))
	require.NoError(t, sh.InitToken("customer-b", softhsmtest.SOPIN, customerPIN))
	const module = "/opt/customer/libpkcs11.so" // the name requests use
	ls.s.Store(&p11store.Stores{Modules: map[string]hsm.ModuleConfig{module: sh.ModuleConfig()}})
	ctx := context.Background()
	leader, follower := k.client(0, 0), k.client(1, 0)

	create := func(name, label, pin string) string {
		out, err := follower.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String(name),
			CloudHsmClusterId: aws.String(label), TrustAnchorCertificate: aws.String(module), KeyStorePassword: aws.String(pin),
			CustomKeyStoreType: types.CustomKeyStoreTypeAwsCloudhsm})
		require.NoError(t, err)
		return *out.CustomKeyStoreId
	}
	_, err = leader.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("x"),
		CloudHsmClusterId: aws.String("no-such-token"), TrustAnchorCertificate: aws.String(module), KeyStorePassword: aws.String(customerPIN)})
	assert.Equal(t, "CloudHsmClusterNotFoundException", apiCode(t, err))

	// A wrong PIN.
	bad := create("bad", "customer-b", "not-the-kmsuser-pin")
	_, err = leader.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(bad)})
	require.NoError(t, err)
	e := waitState(t, follower, bad)
	assert.Equal(t, types.ConnectionStateTypeFailed, e.ConnectionState)
	assert.Equal(t, types.ConnectionErrorCodeTypeInvalidCredentials, e.ConnectionErrorCode)

	// The right PIN: connected for both hosts.
	id := create("mine", "customer", customerPIN)
	e = waitState(t, leader, id)
	assert.Equal(t, types.ConnectionStateTypeDisconnected, e.ConnectionState)
	assert.Equal(t, "customer", *e.CloudHsmClusterId)
	_, err = leader.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm, CustomKeyStoreId: aws.String(id)})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", apiCode(t, err))
	_, err = follower.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	for _, cl := range []*kms.Client{leader, follower} {
		e = waitState(t, cl, id)
		require.Equal(t, types.ConnectionStateTypeConnected, e.ConnectionState, "%+v", e)
	}

	md := k.createKey(t, follower, &kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm, CustomKeyStoreId: aws.String(id)})
	assert.Equal(t, types.OriginTypeAwsCloudhsm, md.Origin)
	assert.Equal(t, id, *md.CustomKeyStoreId)
	assert.Equal(t, "customer", *md.CloudHsmClusterId)
	assertInToken(t, sh, *md.KeyId)

	ec := map[string]string{"app": "e2e"}
	enc, err := follower.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("customer data"), EncryptionContext: ec})
	require.NoError(t, err)
	dec, err := leader.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, "customer data", string(dec.Plaintext))
	assert.Equal(t, *md.Arn, *dec.KeyId)
	_, err = leader.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	assert.Equal(t, "InvalidCiphertextException", apiCode(t, err))
	gdk, err := leader.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	dec, err = follower.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, gdk.Plaintext, dec.Plaintext)
	other := k.createKey(t, leader, nil)
	re, err := leader.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec, DestinationKeyId: other.KeyId})
	require.NoError(t, err)
	dec, err = follower.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, "customer data", string(dec.Plaintext))
	rnd, err := follower.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32), CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	assert.Len(t, rnd.Plaintext, 32)

	_, err = leader.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", apiCode(t, err))
	_, err = follower.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	for _, cl := range []*kms.Client{leader, follower} {
		_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
		assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
		_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
		assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
		_, err = cl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8), CustomKeyStoreId: aws.String(id)})
		assert.Equal(t, "CustomKeyStoreInvalidStateException", apiCode(t, err))
		d, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
		require.NoError(t, err)
		assert.Equal(t, types.KeyStateUnavailable, d.KeyMetadata.KeyState)
	}
	_, err = leader.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	assert.Equal(t, "CustomKeyStoreHasCMKsException", apiCode(t, err))
	_, err = leader.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(bad)})
	require.NoError(t, err)
	_, err = leader.DeleteCustomKeyStore(ctx, &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(bad)})
	require.NoError(t, err, "a disconnected store without keys is deleted")

	// Reconnected, the key works again: its material never left the token.
	_, err = leader.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	require.Equal(t, types.ConnectionStateTypeConnected, waitState(t, follower, id).ConnectionState)
	dec, err = follower.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, "customer data", string(dec.Plaintext))

	// The PINs are in no record and no audit event.
	for _, h := range k.hosts {
		h.FSM().Records(func(_ string, raw []byte) bool {
			assert.False(t, bytes.Contains(raw, []byte(customerPIN)), "a raft record holds the PIN")
			assert.False(t, bytes.Contains(raw, []byte("not-the-kmsuser-pin")), "a raft record holds the PIN")
			return true
		})
		if f := h.AuditFile(); f != "" {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			assert.False(t, bytes.Contains(b, []byte(customerPIN)), "the audit trail holds the PIN")
		}
	}
}

// assertInToken opens the customer's token and checks the KMS key is a
// sensitive, never extractable AES-256 token object labelled with its ID.
func assertInToken(t *testing.T, sh *softhsm.Store, keyID string) {
	t.Helper()
	tok, err := hsm.Open(sh.TokenConfig("customer", customerPIN))
	require.NoError(t, err)
	defer tok.Close()
	key, _, err := tok.PersistentAESKey(keyID)
	require.NoError(t, err)
	info, err := key.Attributes()
	require.NoError(t, err)
	assert.True(t, info.Token && info.Sensitive && !info.Extractable && info.NeverExtractable, "%+v", info)
	assert.Equal(t, 32, info.ValueLen)
}
