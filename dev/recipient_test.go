package dev_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/audit"
	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/nitro"
)

// A real production Nitro document, verified as of its own time by the
// hosts and the HSMs (--attestation-time): Decrypt with it as Recipient
// is accepted, its CiphertextForRecipient is wrapped to the document's
// key, a policy on the document's real PCR0 allows and one on another
// PCR0 denies, and the audit event names the enclave.
func TestRecipientRealDocument(t *testing.T) {
	const fixture = "../nitro/testdata/anjuna_prod_rsa2048_pubkey_2021-03-24"
	doc, err := os.ReadFile(fixture + ".cbor")
	require.NoError(t, err)
	pubPEM, err := os.ReadFile(fixture + ".expected_pubkey.pem")
	require.NoError(t, err)
	blk, _ := pem.Decode(pubPEM)
	require.NotNil(t, blk)
	const pcr0 = "672cd3c91b7ac756037d260051169c70b1de59c7a3a9a8253322c98763697891c722fec043cbf72a824ae5d5ac41fc41"
	at := time.UnixMilli(1616602241734).Add(time.Minute)

	dir := t.TempDir()
	c, err := dev.Start(dev.Options{Dir: dir, HSMs: 1, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0",
		RotationInterval: -1, AttestationTime: func() time.Time { return at }}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Stop() })
	creds, err := kmsapi.ReadCredentials(filepath.Join(dir, "credentials.json"))
	require.NoError(t, err)
	cr := creds.Credentials[0]
	cl := kms.NewFromConfig(aws.Config{Region: creds.Region, Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, "")},
		func(o *kms.Options) { o.BaseEndpoint = aws.String(c.KMSURL) })
	ctx := context.Background()

	// Everything but Decrypt for the caller; Decrypt only for an image.
	keyFor := func(image string) *string {
		policy := `{"Version":"2012-10-17","Statement":[
		  {"Effect":"Allow","Principal":{"AWS":"` + cr.ARN + `"},"NotAction":"kms:Decrypt","Resource":"*"},
		  {"Effect":"Allow","Principal":{"AWS":"` + cr.ARN + `"},"Action":"kms:Decrypt","Resource":"*",
		   "Condition":{"StringEquals":{"kms:RecipientAttestation:ImageSha384":"` + image + `"}}}]}`
		out, err := cl.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(policy)})
		require.NoError(t, err)
		return out.KeyMetadata.KeyId
	}
	rcpt := &types.RecipientInfo{AttestationDocument: doc, KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}
	secret := []byte("for the enclave with the real PCR0")

	good := keyFor(pcr0)
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: good, Plaintext: secret})
	require.NoError(t, err)
	out, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, Recipient: rcpt})
	require.NoError(t, err)
	assert.Nil(t, out.Plaintext)
	env, err := nitro.ParseEnvelope(out.CiphertextForRecipient)
	require.NoError(t, err)
	assert.Equal(t, nitro.SubjectKeyID(blk.Bytes), env.SubjectKeyID, "wrapped to the document's key")
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	assert.Equal(t, "AccessDeniedException", code(err), "without a document the condition is not met")

	other := keyFor(strings.Repeat("00", 48))
	enc2, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: other, Plaintext: secret})
	require.NoError(t, err)
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc2.CiphertextBlob, Recipient: rcpt})
	assert.Equal(t, "AccessDeniedException", code(err), "a policy on another image denies")

	// The audit trail names the enclave and holds neither the document nor
	// the plaintext.
	trail, err := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	require.NoError(t, err)
	for _, s := range [][]byte{secret, doc[len(doc)-96:]} {
		assert.NotContains(t, string(trail), base64.StdEncoding.EncodeToString(s))
		assert.False(t, bytes.Contains(trail, []byte(hex.EncodeToString(s))))
	}
	d, _, err := nitro.Parse(doc)
	require.NoError(t, err)
	var seen int
	require.NoError(t, audit.Scan(bytes.NewReader(trail), &audit.Filter{}, func(e *audit.Event) error {
		if e.EventName != "Decrypt" || e.AdditionalEventData == nil {
			return nil
		}
		r, _ := e.AdditionalEventData["recipient"].(map[string]any)
		require.NotNil(t, r)
		assert.Equal(t, d.ModuleID, r["attestationDocumentModuleId"])
		assert.Equal(t, pcr0, r["attestationDocumentEnclaveImageDigest"])
		assert.Equal(t, hex.EncodeToString(d.PCRs[1]), r["attestationDocumentEnclavePCR1"])
		seen++
		return nil
	}))
	assert.Equal(t, 2, seen, "both Decrypts with a Recipient, allowed and denied, name the enclave")
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
