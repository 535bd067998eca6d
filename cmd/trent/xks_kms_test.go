package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/xks"
)

// Trent's KMS with an external key store through `trent xks serve` (a
// process, TLS, a SoftHSM token of its own): the store is created and
// connected, an EXTERNAL_KEY_STORE key encrypts and decrypts through the
// proxy, and once the proxy is stopped the KMS answers
// KMSInvalidStateException, which the SDK does not retry, not a 5xx.
func TestKMSThroughXKSServe(t *testing.T) {
	pdir := t.TempDir()
	_, _, err := run(t, "xks", "init", "--dir", pdir)
	require.NoError(t, err)
	_, _, err = run(t, "xks", "keys", "create", "--dir", pdir, "--label", "ext-key-1")
	require.NoError(t, err)
	creds := filepath.Join(pdir, "credentials.json")
	const uriPath = "/tenant/kms/xks/v1"
	out, _, err := run(t, "xks", "credentials", "new", "--file", creds, "--uri-path", uriPath)
	require.NoError(t, err)
	var cf xks.ConfigFile
	require.NoError(t, json.Unmarshal([]byte(out), &cf))
	certFile, keyFile, _ := writeCert(t, pdir, "server", "localhost", false)
	addr, proc := startProxy(t, "--dir", pdir, "--uri-path", uriPath, "--credentials", creds, "--tls-cert", certFile, "--tls-key", keyFile)

	c, err := dev.Start(dev.Options{Dir: t.TempDir(), HSMs: 1, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0",
		RotationInterval: -1, XKSCAFile: certFile}, func(string) {})
	require.NoError(t, err)
	defer c.Stop()
	kc, err := kmsapi.ReadCredentials(filepath.Join(c.Dir, "credentials.json"))
	require.NoError(t, err)
	cr := kc.Credentials[0]
	cl := kms.NewFromConfig(aws.Config{Region: kc.Region, Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, "")},
		func(o *kms.Options) { o.BaseEndpoint = aws.String(c.KMSURL) })
	ctx := context.Background()

	st, err := cl.CreateCustomKeyStore(ctx, &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("ext"),
		CustomKeyStoreType: types.CustomKeyStoreTypeExternalKeyStore, XksProxyUriEndpoint: aws.String("https://" + addr),
		XksProxyUriPath: aws.String(uriPath), XksProxyConnectivity: types.XksProxyConnectivityTypePublicEndpoint,
		XksProxyAuthenticationCredential: &types.XksProxyAuthenticationCredentialType{
			AccessKeyId: aws.String(cf.XksProxyAuthenticationCredential.AccessKeyID), RawSecretAccessKey: aws.String(cf.XksProxyAuthenticationCredential.RawSecretAccessKey)}})
	require.NoError(t, err)
	_, err = cl.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: st.CustomKeyStoreId})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		d, err := cl.DescribeCustomKeyStores(ctx, &kms.DescribeCustomKeyStoresInput{CustomKeyStoreId: st.CustomKeyStoreId})
		require.NoError(ct, err)
		assert.Equal(ct, types.ConnectionStateTypeConnected, d.CustomKeyStores[0].ConnectionState)
	}, 30*time.Second, 100*time.Millisecond)
	key, err := cl.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: st.CustomKeyStoreId, XksKeyId: aws.String("ext-key-1")})
	require.NoError(t, err)
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("through the proxy")})
	require.NoError(t, err)
	dec, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, "through the proxy", string(dec.Plaintext))

	require.NoError(t, proc.Signal(syscall.SIGTERM))
	_, _ = proc.Wait()
	start := time.Now()
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.Error(t, err)
	var ae interface{ ErrorCode() string }
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "KMSInvalidStateException", ae.ErrorCode())
	assert.Less(t, time.Since(start), 10*time.Second, "answered at once, not retried")
}
