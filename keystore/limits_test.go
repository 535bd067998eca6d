package keystore_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
)

// The largest key the KMS API lets a caller make, at its worst for the
// JSON encoding, fits a record: a 32 KiB policy of characters the
// encoding doubles (a policy holds no other control characters), an
// 8 KiB description and 50 tags of 128 + 256 bytes written as \u0001 (six
// bytes each), MaxVersions versions, the largest public key (ML-DSA-87),
// the wrapping key tokens of MaxEarlierImports + 1 imports and 32
// regions. It was refused before
// the limits were raised (48 KiB of metadata, a 64 KiB record).
func TestLargestLegalKeyFits(t *testing.T) {
	const id = "mrk-0123456789abcdef0123456789abcdef"
	k := keystore.Key{KeyID: id, Account: "111122223333", Region: "us-east-1", Created: 1 << 40,
		State: keystore.StateEnabled, KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", Origin: keystore.OriginExternal,
		Policy: strings.Repeat("\"", 32768), Description: strings.Repeat("\x01", 8192),
		RotationEnabled: true, RotationPeriodDays: 2560, NextRotation: 1 << 40, OnDemandRotationDate: 1 << 40,
		PublicKey: make([]byte, 2592+22), CustomKeyStoreID: "cks-" + strings.Repeat("0", 60), XksKeyID: strings.Repeat("x", 128),
		Import: &keystore.Import{Handle: make([]byte, 32), WrappingToken: make([]byte, 4096), WrappingAlg: "RSA_AES_KEY_WRAP_SHA_256",
			ParametersValidTo: 1 << 40, Check: make([]byte, 32), HBKID: make([]byte, 16), ExpirationModel: "KEY_MATERIAL_EXPIRES", ValidTo: 1 << 40}}
	for range keystore.MaxEarlierImports {
		k.Import.Earlier = append(k.Import.Earlier, keystore.ImportParams{Handle: make([]byte, 32), WrappingToken: make([]byte, 4096),
			WrappingAlg: "RSA_AES_KEY_WRAP_SHA_256", ParametersValidTo: 1 << 40})
	}
	for i := range 50 {
		k.Tags = append(k.Tags, keystore.Tag{TagKey: fmt.Sprintf("%03d", i) + strings.Repeat("\x01", 125), TagValue: strings.Repeat("\x01", 256)})
	}
	for range keystore.MaxVersions - 1 {
		k.Rotations = append(k.Rotations, keystore.Rotation{Date: 1 << 40, Type: "ON_DEMAND"})
	}
	mr := &keystore.MultiRegion{PrimaryRegion: "us-east-1"}
	for i := range keystore.MaxRegions - 1 {
		mr.Regions = append(mr.Regions, fmt.Sprintf("ap-southeast-%020d", i))
	}
	mr.Regions = append(mr.Regions, "us-east-1")
	k.MultiRegion = mr
	r := &keystore.Record{Key: k}
	for range keystore.MaxVersions {
		r.Tokens = append(r.Tokens, token(t, id))
	}
	enc, _ := roundTrip(t, r)
	require.LessOrEqual(t, len(enc), domain.MaxKeyRecord)
	meta := int(enc[6])<<16 | int(enc[7])<<8 | int(enc[8]) // header ‖ v24 metadata
	require.LessOrEqual(t, meta, keystore.MaxMetadata)
	t.Logf("the largest legal key: %d bytes of metadata (at most %d), a record of %d bytes (at most %d)",
		meta, keystore.MaxMetadata, len(enc), domain.MaxKeyRecord)
}

// A record over either bound is refused with ErrTooLarge, not written.
func TestRecordTooLarge(t *testing.T) {
	r := record(t)
	r.Key.Policy = strings.Repeat("a", keystore.MaxMetadata)
	_, err := r.Marshal()
	require.ErrorIs(t, err, keystore.ErrTooLarge, "metadata over MaxMetadata")

	r = record(t)
	r.Key.Rotations = nil
	r.Tokens = nil
	for i := range keystore.MaxVersions {
		if i > 0 {
			r.Key.Rotations = append(r.Key.Rotations, keystore.Rotation{Date: 5, Type: "ON_DEMAND"})
		}
		r.Tokens = append(r.Tokens, make([]byte, 1100)) // 1.1 MB of tokens
	}
	_, err = r.Marshal()
	require.ErrorIs(t, err, keystore.ErrTooLarge, "a record over domain.MaxKeyRecord")
}

// The largest grant the KMS API allows fits a grant record: the longest
// name and principals, every operation, and a constraint of 8 pairs of
// 384 characters each way that the JSON encoding writes six bytes each.
// It was refused (a 16 KiB bound) before.
func TestLargestLegalGrantFits(t *testing.T) {
	g := grant()
	g.Name = strings.Repeat("n", keystore.MaxGrantName)
	g.GranteePrincipal = strings.Repeat("p", keystore.MaxGrantPrincipal)
	g.RetiringPrincipal = strings.Repeat("r", keystore.MaxGrantPrincipal)
	g.Operations = nil
	for i := range 17 {
		g.Operations = append(g.Operations, "GenerateDataKeyPairWithoutPlaintext"+string(rune('A'+i)))
	}
	ec := map[string]string{}
	for i := range keystore.MaxGrantContextPairs {
		ec[fmt.Sprint(i)+strings.Repeat("\x01", keystore.MaxGrantContextLength-1)] = strings.Repeat("\x01", keystore.MaxGrantContextLength)
	}
	g.Constraints = keystore.GrantConstraints{EncryptionContextSubset: ec}
	enc, err := g.Marshal()
	require.NoError(t, err)
	t.Logf("the largest legal grant: %d bytes", len(enc))
	back, err := keystore.ParseGrant(enc)
	require.NoError(t, err)
	require.Equal(t, g, back)
}

// A custom key store record over MaxStoreRecord is refused with
// ErrTooLarge, as a key record over its bounds.
func TestStoreRecordTooLarge(t *testing.T) {
	c := storeRecord(t)
	c.Name = strings.Repeat("\x01", keystore.MaxStoreRecord/6+1)
	_, err := c.Marshal()
	require.ErrorIs(t, err, keystore.ErrTooLarge)
}

// An import keeps at most MaxEarlierImports earlier parameters: a record
// with more is neither written nor read.
func TestEarlierImportsBounded(t *testing.T) {
	r := record(t)
	r.Key.Origin = keystore.OriginExternal
	r.Key.Import = &keystore.Import{Handle: make([]byte, 32), WrappingToken: []byte{1}, WrappingAlg: "RSAES_OAEP_SHA_256", ParametersValidTo: 9}
	for range keystore.MaxEarlierImports {
		r.Key.Import.Earlier = append(r.Key.Import.Earlier, keystore.ImportParams{Handle: make([]byte, 32), WrappingToken: []byte{2},
			WrappingAlg: "RSAES_OAEP_SHA_1", ParametersValidTo: 8})
	}
	enc, back := roundTrip(t, r)
	c := back.Clone()
	c.Key.Import.Earlier[0].ParametersValidTo = 1
	require.Equal(t, int64(8), back.Key.Import.Earlier[0].ParametersValidTo, "Clone copies Earlier")

	r.Key.Import.Earlier = append(r.Key.Import.Earlier, r.Key.Import.Earlier[0])
	_, err := r.Marshal()
	require.ErrorIs(t, err, keystore.ErrMalformed)
	i := bytes.Index(enc, []byte(`"earlier":[`)) + len(`"earlier":[`)
	more := append(append(append([]byte{}, enc[:i]...), []byte(`{"handle":"","wrapping_token":"","wrapping_alg":"","parameters_valid_to":1},`)...), enc[i:]...)
	more[6], more[7], more[8] = 0, 0, 0 // the v24 metadata length, fixed below
	n := len(more) - 9 - 2 - 2*(2+len(token(t, kid)))
	more[6], more[7], more[8] = byte(n>>16), byte(n>>8), byte(n)
	_, err = keystore.ParseRecord(more)
	require.ErrorIs(t, err, keystore.ErrMalformed)
	require.ErrorContains(t, err, "8 earlier import parameters")
}

// WrappingTokens points at the last import's wrapping key token, then the
// earlier ones', in order; a write through a pointer changes the record.
func TestWrappingTokens(t *testing.T) {
	var none *keystore.Import
	require.Nil(t, none.WrappingTokens())
	require.Empty(t, (&keystore.Import{}).WrappingTokens(), "no GetParametersForImport yet")
	im := &keystore.Import{WrappingToken: []byte{1}, Earlier: []keystore.ImportParams{{WrappingToken: []byte{2}}, {WrappingToken: []byte{3}}}}
	ps := im.WrappingTokens()
	require.Len(t, ps, 3)
	for i, p := range ps {
		require.Equal(t, []byte{byte(i + 1)}, *p)
		*p = []byte{byte(10 + i)}
	}
	require.Equal(t, []byte{10}, im.WrappingToken)
	require.Equal(t, []byte{12}, im.Earlier[1].WrappingToken)
	require.Equal(t, keystore.ImportParams{WrappingToken: []byte{10}}, im.Last())
}
