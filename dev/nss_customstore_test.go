package dev_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

// A PKCS#11 custom key store on NSS's softoken: trent dev --hsm-module nss
// as processes, the customer's token an NSS database beside the HSM
// node's (made before the cluster starts: the softoken reads its list of
// tokens when it starts), every host process opening it through
// --keystore-module and --keystore-module-init. A wrong PIN fails as
// INVALID_CREDENTIALS; a key made in the customer's token by one host
// encrypts there and decrypts through the other; GenerateRandom draws
// from the token.
func TestProcessesCustomKeyStoreOnNSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trent binary and runs a cluster of processes")
	}
	storetest.RequireModule(t, tokenstore.NSS)
	bin := buildTrent(t)
	dir := t.TempDir()
	store, err := tokenstore.Create(tokenstore.NSS, filepath.Join(dir, "nss"), "")
	require.NoError(t, err)
	_, err = store.EnsureToken("customer", "", "kmsuser-pin-1")
	require.NoError(t, err)
	opts := dev.Options{Dir: dir, HSMs: 1, Hosts: 2, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1,
		Exec: bin, KMSOnEveryHost: true, HSMModule: tokenstore.NSS}
	c, err := dev.Start(opts, func(s string) { t.Log(s) })
	require.NoError(t, err)
	defer c.Stop()

	ctx := context.Background()
	pt := []byte("in the customer's NSS token")
	id, enc := customKeyStoreKey(t, c, store.ModulePath(), pt)
	other := kmsClientAt(t, c, c.Hosts[1].KMS)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		out, err := other.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc})
		require.NoError(ct, err)
		assert.Equal(ct, pt, out.Plaintext)
	}, 30*time.Second, 200*time.Millisecond)
	rnd, err := other.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32), CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	assert.Len(t, rnd.Plaintext, 32)
}
