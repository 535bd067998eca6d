package kms

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/kms/kmsapi"
)

func TestCreateMultiRegionKey(t *testing.T) {
	f := newFixture(t)
	out := f.must(t, alice, "CreateKey", map[string]any{"MultiRegion": true, "Description": "mrk"})
	m := out["KeyMetadata"].(map[string]any)
	id := m["KeyId"].(string)
	assert.Regexp(t, regexp.MustCompile(`^mrk-[0-9a-f]{32}$`), id)
	assert.Equal(t, true, m["MultiRegion"])
	arn := "arn:aws:kms:eu-west-1:" + account + ":key/" + id
	assert.Equal(t, arn, m["Arn"])
	want := map[string]any{
		"MultiRegionKeyType": "PRIMARY",
		"PrimaryKey":         map[string]any{"Arn": arn, "Region": "eu-west-1"},
		"ReplicaKeys":        []any{},
	}
	assert.Equal(t, want, m["MultiRegionConfiguration"])

	d := f.must(t, alice, "DescribeKey", map[string]any{"KeyId": arn})["KeyMetadata"].(map[string]any)
	assert.Equal(t, want, d["MultiRegionConfiguration"])

	// A single-Region key says MultiRegion false and has no configuration.
	single := f.must(t, alice, "CreateKey", map[string]any{})["KeyMetadata"].(map[string]any)
	assert.Equal(t, false, single["MultiRegion"])
	assert.NotContains(t, single, "MultiRegionConfiguration")

	// The key works: Encrypt and Decrypt by mrk ID and alias.
	f.must(t, alice, "CreateAlias", map[string]any{"AliasName": "alias/mrk", "TargetKeyId": id})
	ct := f.must(t, alice, "Encrypt", map[string]any{"KeyId": "alias/mrk", "Plaintext": []byte("hi")})
	pt := f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct["CiphertextBlob"]})
	assert.Equal(t, id, lastPart(pt["KeyId"].(string)))
}

func TestCreateMultiRegionKeyRefusals(t *testing.T) {
	f := newFixture(t)
	for _, req := range []map[string]any{
		{"MultiRegion": true, "KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
		{"MultiRegion": true, "Origin": "EXTERNAL"},
	} {
		_, err := f.call(alice, "CreateKey", req)
		var ke *kmsapi.Error
		require.ErrorAs(t, err, &ke, "%v", req)
		assert.Equal(t, kmsapi.UnsupportedOperation, ke.Type)
	}
}

func lastPart(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == '/' {
			return arn[i+1:]
		}
	}
	return arn
}
