package keystore_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/keystore"
)

var gid = strings.Repeat("0123456789abcdef", 4)

func grant() *keystore.Grant {
	return &keystore.Grant{GrantID: gid, KeyID: kid, Account: "111122223333", Name: "app:grant/1_a-b",
		GranteePrincipal: "arn:aws:iam::111122223333:user/bob", RetiringPrincipal: "arn:aws:iam::111122223333:role/ops",
		Operations:  []string{"Decrypt", "Encrypt"},
		Constraints: keystore.GrantConstraints{EncryptionContextSubset: map[string]string{"z": "1", "a": "<2>", "m": ""}},
		Created:     7}
}

func TestGrantRoundTrip(t *testing.T) {
	g := grant()
	enc, err := g.Marshal()
	require.NoError(t, err)
	require.True(t, keystore.IsGrantRecord(enc))
	require.False(t, keystore.IsKeyRecord(enc))
	require.True(t, bytes.Contains(enc, []byte(`{"a":"<2>","m":"","z":"1"}`)), "sorted map keys, no HTML escaping: %s", enc)
	again, err := grant().Marshal()
	require.NoError(t, err)
	require.Equal(t, enc, again, "deterministic")
	back, err := keystore.ParseGrant(enc)
	require.NoError(t, err)
	require.Equal(t, g, back)
	for i := range enc {
		_, err := keystore.ParseGrant(enc[:i])
		require.Error(t, err, "prefix %d", i)
	}
	_, err = keystore.ParseGrant(append(enc, 0))
	require.ErrorIs(t, err, keystore.ErrMalformed)
	_, err = keystore.ParseAlias(enc)
	require.Error(t, err, "another object type")

	minimal := &keystore.Grant{GrantID: gid, KeyID: kid, Account: "111122223333", GranteePrincipal: "arn:aws:iam::111122223333:root",
		Operations: []string{"RetireGrant"}}
	enc, err = minimal.Marshal()
	require.NoError(t, err)
	back, err = keystore.ParseGrant(enc)
	require.NoError(t, err)
	require.Equal(t, minimal, back)

	require.Equal(t, "g/"+kid+"/"+gid, keystore.GrantRecordID(kid, gid))
	require.LessOrEqual(t, len(keystore.GrantRecordID(kid, gid)), 255)
	require.Equal(t, "g/"+kid, keystore.GrantIndexID(kid))
}

// Marshal refuses what ParseGrant would refuse, and ParseGrant refuses
// JSON that Marshal would not write.
func TestGrantFields(t *testing.T) {
	for name, change := range map[string]func(g *keystore.Grant){
		"grant ID":              func(g *keystore.Grant) { g.GrantID = strings.ToUpper(gid) },
		"short grant ID":        func(g *keystore.Grant) { g.GrantID = gid[1:] },
		"key ID":                func(g *keystore.Grant) { g.KeyID = "k" },
		"account":               func(g *keystore.Grant) { g.Account = "1111" },
		"name":                  func(g *keystore.Grant) { g.Name = "a b" },
		"long name":             func(g *keystore.Grant) { g.Name = strings.Repeat("n", 257) },
		"grantee":               func(g *keystore.Grant) { g.GranteePrincipal = "" },
		"retiring":              func(g *keystore.Grant) { g.RetiringPrincipal = "a b" },
		"no operations":         func(g *keystore.Grant) { g.Operations = nil },
		"not an operation name": func(g *keystore.Grant) { g.Operations = []string{"Encrypt", "encrypt"} },
		"unsorted":              func(g *keystore.Grant) { g.Operations = []string{"Encrypt", "Decrypt"} },
		"duplicate":             func(g *keystore.Grant) { g.Operations = []string{"Encrypt", "Encrypt"} },
		"two constraints": func(g *keystore.Grant) {
			g.Constraints.EncryptionContextEquals = map[string]string{"a": "b"}
		},
		"empty constraint": func(g *keystore.Grant) { g.Constraints.EncryptionContextSubset = map[string]string{} },
		"empty context key": func(g *keystore.Grant) {
			g.Constraints.EncryptionContextSubset = map[string]string{"": "x"}
		},
		"long context value": func(g *keystore.Grant) {
			g.Constraints.EncryptionContextSubset = map[string]string{"a": strings.Repeat("v", 385)}
		},
		"nine pairs": func(g *keystore.Grant) {
			g.Constraints.EncryptionContextSubset = map[string]string{}
			for _, k := range "abcdefghi" {
				g.Constraints.EncryptionContextSubset[string(k)] = ""
			}
		},
	} {
		g := grant()
		change(g)
		_, err := g.Marshal()
		require.Error(t, err, name)
	}
	for _, j := range []string{
		`{"grant_id":"` + gid + `","key_id":"` + kid + `","account":"111122223333","grantee_principal":"p","operations":["Encrypt"],"constraints":{},"created":1,"extra":1}`,
		`{"grant_id":"` + gid + `","key_id":"` + kid + `","account":"111122223333","grantee_principal":"p","operations":["Encrypt"],"operations":["Decrypt"],"constraints":{},"created":1}`,
		`{"grant_id":"` + gid + `","key_id":"` + kid + `","account":"111122223333","grantee_principal":"p","operations":["Encrypt"],"constraints":{"encryption_context_equals":{}},"created":1}`,
	} {
		_, err := keystore.ParseGrant(append([]byte{'T', 'R', 'N', 'T', 1, keystore.TypeGrant, 0, byte(len(j))}, j...))
		require.ErrorIs(t, err, keystore.ErrMalformed, j)
	}
}

func TestGrantIndex(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("0", 63)+"1"
	enc, err := keystore.MarshalGrantIndex([]string{a, b, gid})
	require.NoError(t, err)
	require.Len(t, enc, 6+2+3*32)
	ids, err := keystore.ParseGrantIndex(enc)
	require.NoError(t, err)
	require.Equal(t, []string{b, gid, a}, ids, "sorted")
	for i := range enc {
		_, err := keystore.ParseGrantIndex(enc[:i])
		require.Error(t, err, "prefix %d", i)
	}
	_, err = keystore.ParseGrantIndex(append(enc, 0))
	require.ErrorIs(t, err, keystore.ErrMalformed)
	swapped := bytes.Clone(enc)
	copy(swapped[8:40], enc[40:72])
	copy(swapped[40:72], enc[8:40])
	_, err = keystore.ParseGrantIndex(swapped)
	require.ErrorIs(t, err, keystore.ErrMalformed, "out of order")

	for _, bad := range [][]string{nil, {a, a}, {"A" + a[1:]}, {a[1:]}} {
		_, err := keystore.MarshalGrantIndex(bad)
		require.Error(t, err, "%v", bad)
	}
	many := make([]string, keystore.MaxGrantsPerKey+1)
	for i := range many {
		many[i] = fmt.Sprintf("%064x", i)
	}
	_, err = keystore.MarshalGrantIndex(many)
	require.Error(t, err, "more than MaxGrantsPerKey")
	_, err = keystore.MarshalGrantIndex(many[:keystore.MaxGrantsPerKey])
	require.NoError(t, err)
}
