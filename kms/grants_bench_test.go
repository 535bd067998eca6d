package kms

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/policy"
)

// BenchmarkAuthorizeGrants measures authorize for kms:Encrypt with an
// encryption context: allowed by the key policy (grants are not looked
// at), implicitly denied on a key without grants (one record lookup),
// allowed by a grant on a key with 10 and with 1000 grants (the parsed
// grants come from the cache); then the grant lookup alone for a key
// without grants, and the alternative to a grant index, a scan of the
// store's records (10,000 of them here) for a key's "g/" prefix. Figures are in
// docs/benchmarks.md.
func BenchmarkAuthorizeGrants(b *testing.B) {
	const account = "111122223333"
	alice := kmsapi.Principal{AccountID: account, ARN: "arn:aws:iam::" + account + ":user/alice"}
	bob := kmsapi.Principal{AccountID: account, ARN: "arn:aws:iam::" + account + ":user/bob"}
	store := newMemStore()
	s := New(Config{Store: store, Region: "eu-west-1"})
	pol, err := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + alice.ARN + `"},"Action":"kms:*","Resource":"*"}]}`))
	if err != nil {
		b.Fatal(err)
	}
	apply := func(rs []domain.Replacement) {
		if err := store.Propose(context.Background(), rs...); err != nil {
			b.Fatal(err)
		}
	}
	// keyWith makes key n with grants grants; the last (by grant ID) is bob's.
	keyWith := func(n, grants int) *key {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
		var rs []domain.Replacement
		var ids []string
		for i := range grants {
			g := &keystore.Grant{GrantID: fmt.Sprintf("%064x", i), KeyID: id, Account: account, GranteePrincipal: alice.ARN,
				Operations: []string{"Decrypt", "Encrypt"}, Constraints: keystore.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "acme"}}}
			if i == grants-1 {
				g.GranteePrincipal = bob.ARN
			}
			raw, err := g.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			rs = append(rs, domain.Replacement{ID: keystore.GrantRecordID(id, g.GrantID), New: raw})
			ids = append(ids, g.GrantID)
		}
		if grants > 0 {
			ix, err := keystore.MarshalGrantIndex(ids)
			if err != nil {
				b.Fatal(err)
			}
			apply(append(rs, domain.Replacement{ID: keystore.GrantIndexID(id), New: ix}))
		}
		return &key{rec: &keystore.Record{Key: keystore.Key{KeyID: id, Account: account, Region: "eu-west-1",
			KeySpec: symmetricDefault, KeyUsage: "ENCRYPT_DECRYPT", Origin: "AWS_KMS"}}, policy: pol}
	}
	plain, ten, thousand := keyWith(1, 0), keyWith(2, 10), keyWith(3, 1000)
	var filler []domain.Replacement
	for i := range 10000 {
		filler = append(filler, domain.Replacement{ID: fmt.Sprintf("k/%08d", i), New: make([]byte, 100)})
		if len(filler) == domain.MaxReplaceBatch {
			apply(filler)
			filler = nil
		}
	}
	apply(filler)
	cond := contextConditions(map[string]string{"tenant": "acme", "app": "x"}, symmetricDefault)

	run := func(name string, p kmsapi.Principal, k *key, allowed bool) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := s.authorize(p, "kms:Encrypt", k, cond); (err == nil) != allowed {
					b.Fatal(err)
				}
			}
		})
	}
	run("policy-allows", alice, plain, true)
	run("no-grants-denied", bob, plain, false)
	run("grant-allows-10", bob, ten, true)
	run("grant-allows-1000", bob, thousand, true)
	b.Run("grant-lookup-no-grants", func(b *testing.B) {
		for b.Loop() {
			if gs, err := s.keyGrants(plain.rec.Key.KeyID); err != nil || len(gs.all) != 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan-10000-records", func(b *testing.B) {
		prefix := keystore.GrantIndexID(ten.rec.Key.KeyID) + "/"
		for b.Loop() {
			n := 0
			s.store.Records("", func(id string, _ []byte) bool {
				if strings.HasPrefix(id, prefix) {
					n++
				}
				return true
			})
			if n != 10 {
				b.Fatal(n)
			}
		}
	})
}
