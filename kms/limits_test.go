package kms

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// A key at every limit the KMS API sets, at the JSON encoding's worst (a
// 32 KiB policy padded with line feeds, an 8 KiB description and 50 tags
// of \u0001 characters), is made and used; before the key store's limits
// were raised CreateKey answered it with a 500.
func TestLargestLegalKey(t *testing.T) {
	f := newFixture(t)
	pol := `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account +
		`:root"},"Action":"kms:*","Resource":"*"}]}`
	pol += strings.Repeat("\n", 32768-len(pol))
	desc := strings.Repeat("\x01", maxDescription)
	var tags []map[string]string
	for i := range maxTags {
		tags = append(tags, map[string]string{"TagKey": fmt.Sprintf("%03d", i) + strings.Repeat("\x01", maxTagKey-3),
			"TagValue": strings.Repeat("\x01", maxTagValue)})
	}
	out := f.must(t, alice, "CreateKey", map[string]any{"Policy": pol, "Description": desc, "Tags": tags})
	id := out["KeyMetadata"].(map[string]any)["KeyId"].(string)
	m := f.must(t, alice, "DescribeKey", map[string]any{"KeyId": id})["KeyMetadata"].(map[string]any)
	assert.Equal(t, desc, m["Description"])
	assert.Equal(t, pol, f.must(t, alice, "GetKeyPolicy", map[string]any{"KeyId": id, "PolicyName": "default"})["Policy"])
	assert.Len(t, f.must(t, alice, "ListResourceTags", map[string]any{"KeyId": id})["Tags"], maxTags)
	ct := f.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})["CiphertextBlob"]
	f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct})
	f.must(t, alice, "RotateKeyOnDemand", map[string]any{"KeyId": id})
}

// A record over the key store's bounds is a quota, 400, not a 500 that
// asks for a retry; other errors pass unchanged.
func TestRecordTooLargeIsLimitExceeded(t *testing.T) {
	err := recordTooLarge(fmt.Errorf("wrapped: %w", keystore.ErrTooLarge))
	var ke *kmsapi.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, "LimitExceededException", ke.Type)
	assert.Contains(t, []int{0, http.StatusBadRequest}, ke.Status, "400 (0 means 400)")
	other := fmt.Errorf("other")
	assert.Same(t, other, recordTooLarge(other))
}

// The largest grant constraint the KMS API allows (8 pairs of 384
// characters each way, written six bytes a character) is granted and
// listed; before the grant record's bound was raised CreateGrant answered
// it with a 500.
func TestLargestLegalGrant(t *testing.T) {
	f := newFixture(t)
	id := f.must(t, alice, "CreateKey", map[string]any{})["KeyMetadata"].(map[string]any)["KeyId"].(string)
	ec := map[string]string{}
	for i := range keystore.MaxGrantContextPairs {
		ec[fmt.Sprint(i)+strings.Repeat("\x01", keystore.MaxGrantContextLength-1)] = strings.Repeat("\x01", keystore.MaxGrantContextLength)
	}
	f.must(t, alice, "CreateGrant", map[string]any{"KeyId": id, "GranteePrincipal": "arn:aws:iam::" + account + ":user/bob",
		"Operations": []string{"Decrypt", "Encrypt"}, "Constraints": map[string]any{"EncryptionContextSubset": ec}})
	grants := f.must(t, alice, "ListGrants", map[string]any{"KeyId": id})["Grants"].([]any)
	require.Len(t, grants, 1)
	got := grants[0].(map[string]any)["Constraints"].(map[string]any)["EncryptionContextSubset"].(map[string]any)
	assert.Len(t, got, keystore.MaxGrantContextPairs)
}
