package keystore_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/keystore"
)

const kid = "1234abcd-12ab-34cd-56ef-1234567890ab"

func token(t testing.TB, keyID string) []byte {
	tok := &hbk.Token{KeyID: keyID, Ciphertext: make([]byte, hbk.Size+hbk.TagSize)}
	b, err := tok.Marshal()
	require.NoError(t, err)
	return b
}

// roundTrip encodes r, decodes it and requires the same record back.
func roundTrip(t *testing.T, r *keystore.Record) (enc []byte, back *keystore.Record) {
	t.Helper()
	enc, err := r.Marshal()
	require.NoError(t, err)
	back, err = keystore.ParseRecord(enc)
	require.NoError(t, err)
	require.Equal(t, r, back)
	return enc, back
}

func record(t testing.TB) *keystore.Record {
	return &keystore.Record{
		Key: keystore.Key{KeyID: kid, Account: "111122223333", Region: "us-east-1", Created: 1,
			State: keystore.StateEnabled, KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT",
			Origin: "AWS_KMS", Policy: `{"a":"<b>"}`, Tags: []keystore.Tag{{TagKey: "k", TagValue: "v"}},
			Rotations: []keystore.Rotation{{Date: 5, Type: "ON_DEMAND"}}},
		Tokens: [][]byte{token(t, kid), token(t, kid)},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := record(t)
	enc, err := r.Marshal()
	require.NoError(t, err)
	require.True(t, keystore.IsKeyRecord(enc))
	require.True(t, bytes.Contains(enc, []byte(`<b>`)), "no HTML escaping")
	back, err := keystore.ParseRecord(enc)
	require.NoError(t, err)
	require.Equal(t, r, back)
	require.Equal(t, "arn:aws:kms:us-east-1:111122223333:key/"+kid, back.Key.ARN())
	c := back.Clone()
	c.Tokens[0][0] ^= 1
	c.Key.Tags[0].TagValue = "x"
	require.Equal(t, r, back, "Clone is deep")

	for i := range enc {
		_, err := keystore.ParseRecord(enc[:i])
		require.Error(t, err, "prefix %d", i)
	}
	_, err = keystore.ParseRecord(append(enc, 0))
	require.ErrorIs(t, err, keystore.ErrMalformed)

	r.Tokens = r.Tokens[:1] // one token for two versions
	_, err = r.Marshal()
	require.Error(t, err)
	r = record(t)
	r.Tokens[1] = token(t, "another-key")
	enc, err = r.Marshal()
	require.NoError(t, err)
	_, err = keystore.ParseRecord(enc)
	require.ErrorIs(t, err, keystore.ErrMalformed, "a token of another key")
}

func TestAlias(t *testing.T) {
	a := &keystore.Alias{Name: "alias/app", TargetKeyID: kid, Created: 1, Updated: 2}
	enc, err := a.Marshal()
	require.NoError(t, err)
	back, err := keystore.ParseAlias(enc)
	require.NoError(t, err)
	require.Equal(t, a, back)
	_, err = keystore.ParseAlias(append(enc, 0))
	require.Error(t, err)
	for name, ok := range map[string]bool{"alias/app": true, "alias/a/b_c-d": true, "alias/": false,
		"app": false, "alias/aws/x": false, "alias/a b": false} {
		require.Equal(t, ok, keystore.ValidAliasName(name), name)
	}
	require.True(t, keystore.ValidKeyID(kid))
	require.False(t, keystore.ValidKeyID("1234ABCD-12ab-34cd-56ef-1234567890ab"))
}

// TestAliasRecordIDs: every valid alias name, up to KMS's 256 characters,
// has a record ID the raft key store takes (issue 16: names of 241–256
// characters made a 255-byte ID overflow and CreateAlias answer
// KMSInternalException); IDs of different names differ, stay under the
// account's prefix, and names that always fitted keep their ID.
func TestAliasRecordIDs(t *testing.T) {
	const account = "111122223333"
	seen := map[string]string{}
	for n := 1; n <= 250; n++ {
		for _, fill := range []string{"a", "b"} {
			name := "alias/" + strings.Repeat(fill, n)
			require.True(t, keystore.ValidAliasName(name), "%d characters", len(name))
			id := keystore.AliasRecordID(account, name)
			require.LessOrEqual(t, len(id), domain.MaxKeyID, "%d characters", len(name))
			_, err := domain.ReplaceKeysEntry([]domain.Replacement{{ID: id, New: []byte("x")}})
			require.NoError(t, err, "%d characters", len(name))
			require.True(t, strings.HasPrefix(id, keystore.AliasRecordID(account, "")), id)
			if len(name) <= 240 {
				require.Equal(t, "a/"+account+"/"+name, id, "a name that always fitted keeps its ID")
			}
			require.NotContains(t, seen, id, "%s and %s", name, seen[id])
			seen[id] = name
		}
	}
	require.False(t, keystore.ValidAliasName("alias/"+strings.Repeat("a", 251)), "257 characters")
}

func FuzzParseRecord(f *testing.F) {
	enc, _ := record(f).Marshal()
	f.Add(enc)
	a, _ := (&keystore.Alias{Name: "alias/x", TargetKeyID: kid}).Marshal()
	f.Add(a)
	g, _ := grant().Marshal()
	f.Add(g)
	ix, _ := keystore.MarshalGrantIndex([]string{gid})
	f.Add(ix)
	f.Fuzz(func(t *testing.T, in []byte) {
		if r, err := keystore.ParseRecord(in); err == nil {
			if _, err := r.Marshal(); err != nil {
				t.Fatal(err)
			}
		}
		if a, err := keystore.ParseAlias(in); err == nil {
			if _, err := a.Marshal(); err != nil {
				t.Fatal(err)
			}
		}
		if g, err := keystore.ParseGrant(in); err == nil {
			enc, err := g.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if back, err := keystore.ParseGrant(enc); err != nil || !reflect.DeepEqual(g, back) {
				t.Fatalf("grant round trip: %v", err)
			}
		}
		if ids, err := keystore.ParseGrantIndex(in); err == nil {
			if enc, err := keystore.MarshalGrantIndex(ids); err != nil || !bytes.Equal(enc, in) {
				t.Fatalf("grant index round trip: %v", err)
			}
		}
	})
}

// An EXTERNAL key without material has no HBK token; any other key, or
// an EXTERNAL key with rotations, must have one per version.
func TestExternalRecordWithoutTokens(t *testing.T) {
	r := record(t)
	r.Key.Rotations, r.Tokens = []keystore.Rotation{}, nil
	_, err := r.Marshal()
	require.Error(t, err, "an AWS_KMS key without material")
	r.Key.Origin, r.Key.State = keystore.OriginExternal, keystore.StatePendingImport
	r.Key.Import = &keystore.Import{Handle: make([]byte, 32), WrappingToken: []byte{1}, WrappingAlg: "RSAES_OAEP_SHA_256",
		ParametersValidTo: 9, Check: make([]byte, 32), HBKID: make([]byte, 16), ExpirationModel: "KEY_MATERIAL_EXPIRES", ValidTo: 7}
	_, back := roundTrip(t, r)
	c := back.Clone()
	c.Key.Import.ValidTo = 1
	require.Equal(t, int64(7), back.Key.Import.ValidTo, "Clone copies the import state")

	r.Key.Rotations = []keystore.Rotation{{Date: 5, Type: "ON_DEMAND"}}
	_, err = r.Marshal()
	require.Error(t, err, "rotations without tokens")
	r.Key.Rotations = nil
	r.Key.Origin = "AWS_KMS"
	enc, err := (&keystore.Record{Key: r.Key, Tokens: [][]byte{token(t, kid)}}).Marshal()
	require.NoError(t, err)
	// The same bytes with the token count 0 and the token dropped do not parse.
	i := bytes.LastIndex(enc, token(t, kid))
	noTok := append(bytes.Clone(enc[:i-4]), 0, 0)
	_, err = keystore.ParseRecord(noTok)
	require.ErrorIs(t, err, keystore.ErrMalformed)
}
