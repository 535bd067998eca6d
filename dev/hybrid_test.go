package dev_test

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/kms/kmsapi"
)

// trent dev --hybrid: the genesis domain requires hybrid key
// establishment, and every session the host and the dev tool make is
// hybrid: the HSMs answer no classical handshake at all.
func TestClusterHybrid(t *testing.T) {
	dir := t.TempDir()
	c, err := dev.Start(dev.Options{Dir: dir, HSMs: 2, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1, Hybrid: true}, nil)
	require.NoError(t, err)
	defer c.Stop()
	st, _ := c.DomainState()
	require.True(t, st.HybridRequired)
	for _, m := range st.Members {
		require.Len(t, m.KEM, 1568, m.ID)
	}
	creds, err := kmsapi.ReadCredentials(filepath.Join(dir, "credentials.json"))
	require.NoError(t, err)
	cr := creds.Credentials[0]
	cl := kms.NewFromConfig(aws.Config{Region: creds.Region, Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, "")},
		func(o *kms.Options) { o.BaseEndpoint = aws.String(c.KMSURL) })
	key, err := cl.CreateKey(context.Background(), &kms.CreateKeyInput{})
	require.NoError(t, err)
	enc, err := cl.Encrypt(context.Background(), &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("hybrid")})
	require.NoError(t, err)
	dec, err := cl.Decrypt(context.Background(), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, []byte("hybrid"), dec.Plaintext)
	_, err = c.Check(context.Background())
	require.NoError(t, err)
	hybrid := 0
	for _, h := range c.HSMs {
		m := scrape(t, h.URL+"/metrics")
		assert.Contains(t, m, `trent_hsm_handshakes_total{mode="classical"} 0`, h.HSMID)
		if regexp.MustCompile(`trent_hsm_handshakes_total\{mode="hybrid"\} [1-9]`).MatchString(m) {
			hybrid++
		}
	}
	assert.NotZero(t, hybrid, "hybrid handshakes were answered")
}
