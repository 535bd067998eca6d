package keystore_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/trentkms/trent/keystore"
)

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	mrkRE  = regexp.MustCompile(`^mrk-[0-9a-f]{32}$`)
)

var keyIDSeeds = []string{
	"1234abcd-12ab-34cd-56ef-1234567890ab", "mrk-1234abcd12ab34cd56ef1234567890ab",
	"1234ABCD-12ab-34cd-56ef-1234567890ab", "1234abcd-12ab-34cd-56ef-1234567890a", "1234abcd-12ab-34cd-56ef-1234567890abc",
	"1234abcd012ab-34cd-56ef-1234567890ab", "1234abcd-12ab-34cd-56ef-1234567890ag", "mrk-1234abcd12ab34cd56ef1234567890aB",
	"mrk-1234abcd-2ab34cd56ef1234567890ab", "MRK-1234abcd12ab34cd56ef1234567890ab", "mrk-1234abcd12ab34cd56ef1234567890a",
	"", "alias/x", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
	"1234abcd-12ab-34cd-56ef-1234567890a\n", "1234abcd-12ab-34cd-56ef-1234567890a\xff",
}

func TestValidKeyIDMatchesPatterns(t *testing.T) {
	for _, id := range keyIDSeeds {
		want := uuidRE.MatchString(id) || mrkRE.MatchString(id)
		assert.Equal(t, want, keystore.ValidKeyID(id), "%q", id)
		assert.Equal(t, mrkRE.MatchString(id), keystore.IsMultiRegionKeyID(id), "%q", id)
	}
	assert.True(t, keystore.ValidKeyID(keyIDSeeds[0]))
	assert.True(t, keystore.ValidKeyID(keyIDSeeds[1]))
}

func FuzzValidKeyID(f *testing.F) {
	for _, id := range keyIDSeeds {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := keystore.ValidKeyID(id), uuidRE.MatchString(id) || mrkRE.MatchString(id); got != want {
			t.Fatalf("ValidKeyID(%q) = %v, the patterns say %v", id, got, want)
		}
		if got, want := keystore.IsMultiRegionKeyID(id), mrkRE.MatchString(id); got != want {
			t.Fatalf("IsMultiRegionKeyID(%q) = %v, the pattern says %v", id, got, want)
		}
	})
}
