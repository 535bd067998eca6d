package dev_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/kmsload"
)

// TestLoad runs a mixed load on four keys of a `trent dev` cluster (30 s,
// 5 s with -short) without a single error, then restarts the cluster on
// the same data dir and checks that every key still works: each
// ciphertext kept from during and after the load decrypts to its
// plaintext, and new ones can be made.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	opts := dev.Options{Dir: dir, HSMs: 3, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1}
	c, err := dev.Start(opts, nil)
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	creds, err := kmsapi.ReadCredentials(filepath.Join(dir, "credentials.json"))
	require.NoError(t, err)
	cr := creds.Credentials[0]
	cfg := kmsload.Config{Endpoint: c.KMSURL, AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.SecretAccessKey,
		Region: creds.Region, Clients: 16, Duration: 30 * time.Second, Op: kmsload.OpMixed,
		EncryptionContext: map[string]string{"test": "load"}, Keep: 400}
	if testing.Short() {
		cfg.Duration = 5 * time.Second
	}
	ctx := context.Background()
	cl := kmsload.NewClient(cfg, kmsload.NewHTTPClient(1))

	keyIDs := map[string]string{} // alias → key ID
	for i := range 4 {
		alias := fmt.Sprintf("alias/load-%d", i)
		out, err := cl.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("load test " + alias)})
		require.NoError(t, err)
		_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: out.KeyMetadata.KeyId})
		require.NoError(t, err)
		keyIDs[alias] = *out.KeyMetadata.KeyId
		cfg.KeyIDs = append(cfg.KeyIDs, alias)
	}

	r, err := kmsload.Run(ctx, cfg)
	require.NoError(t, err)
	t.Logf("Mixed, %d clients, %v: %d ops, %.0f ops/s, p50 %v, p99 %v", cfg.Clients, r.Elapsed.Round(time.Millisecond),
		r.Ops, r.Throughput, r.P50, r.P99)
	require.Zero(t, r.Errors, "errors: %v", r.ErrorTexts)
	require.Positive(t, r.Ops)
	require.Len(t, r.Kept, cfg.Keep)
	saved := r.Kept
	seen := map[string]bool{}
	for _, k := range saved {
		seen[k.KeyID] = true
	}
	assert.Len(t, seen, len(keyIDs), "the load used every key")

	// After the load: ciphertexts under other contexts, and none.
	for alias := range keyIDs {
		for _, ec := range []map[string]string{nil, {"after": "load", "alias": alias}} {
			pt := []byte("after the load, under " + alias)
			out, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(alias), Plaintext: pt, EncryptionContext: ec})
			require.NoError(t, err)
			saved = append(saved, kmsload.Ciphertext{KeyID: alias, EncryptionContext: ec, Plaintext: pt, CiphertextBlob: out.CiphertextBlob})
		}
		dk, err := cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyIDs[alias]), KeySpec: types.DataKeySpecAes128})
		require.NoError(t, err)
		saved = append(saved, kmsload.Ciphertext{KeyID: alias, Plaintext: dk.Plaintext, CiphertextBlob: dk.CiphertextBlob})
	}
	require.NoError(t, c.Stop())
	stopped = true

	again, err := dev.Start(opts, nil)
	require.NoError(t, err)
	defer again.Stop()
	cfg.Endpoint = again.KMSURL
	cl = kmsload.NewClient(cfg, kmsload.NewHTTPClient(1))
	for alias, id := range keyIDs {
		d, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
		require.NoError(t, err, alias)
		assert.Equal(t, id, *d.KeyMetadata.KeyId)
		assert.Equal(t, types.KeyStateEnabled, d.KeyMetadata.KeyState)
		assert.Equal(t, "load test "+alias, *d.KeyMetadata.Description)
	}
	for i, k := range saved {
		out, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: k.CiphertextBlob, EncryptionContext: k.EncryptionContext})
		require.NoError(t, err, "ciphertext %d under %s", i, k.KeyID)
		require.Equal(t, k.Plaintext, out.Plaintext, "ciphertext %d under %s", i, k.KeyID)
		assert.Equal(t, keyIDs[k.KeyID], keyIDOf(*out.KeyId), "ciphertext %d", i)
	}
	for alias := range keyIDs {
		pt := []byte("after the restart, under " + alias)
		ec := map[string]string{"restart": "yes"}
		out, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(alias), Plaintext: pt, EncryptionContext: ec})
		require.NoError(t, err, alias)
		back, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
		require.NoError(t, err, alias)
		assert.Equal(t, pt, back.Plaintext, alias)
	}
	t.Logf("after the restart: %d keys described, %d saved ciphertexts decrypted, %d new round trips",
		len(keyIDs), len(saved), len(keyIDs))
}

// keyIDOf is the key ID of a key ARN.
func keyIDOf(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == '/' {
			return arn[i+1:]
		}
	}
	return arn
}
