package kms

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

func (f *fixture) lastUsage(t *testing.T, s *Service, id string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"KeyId": id})
	out, err := s.Operations()["GetKeyLastUsage"].Handler(context.Background(), alice, body)
	require.NoError(t, err)
	data, _ := json.Marshal(out)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// GetKeyLastUsage as the API reference defines it: an unused key has an
// empty KeyLastUsage and a TrackingStartDate no earlier than its
// creation; a successful cryptographic operation is the key's last
// usage at once on the host that served it; ReEncrypt is the last usage
// of both its keys; a failed operation, a DryRun and a management
// operation are none; aliases are not accepted.
func TestGetKeyLastUsage(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, nil)
	other := f.createKey(t, nil)
	m := f.lastUsage(t, f.s, id)
	assert.Equal(t, id, m["KeyId"])
	assert.Equal(t, map[string]any{}, m["KeyLastUsage"], "never used: an empty object")
	assert.Equal(t, float64(f.now.Unix()), m["KeyCreationDate"])
	assert.Equal(t, m["KeyCreationDate"], m["TrackingStartDate"], "created after tracking began")

	f.now = f.now.Add(time.Minute)
	ct := f.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})["CiphertextBlob"]
	m = f.lastUsage(t, f.s, id)["KeyLastUsage"].(map[string]any)
	assert.Equal(t, "Encrypt", m["Operation"])
	assert.Equal(t, float64(f.now.Unix()), m["Timestamp"])

	f.now = f.now.Add(time.Minute)
	_, err := f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": map[string]string{"a": "b"}})
	assert.Equal(t, "InvalidCiphertextException", exception(err))
	_, err = f.call(alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x"), "DryRun": true})
	assert.Equal(t, "DryRunOperationException", exception(err))
	f.must(t, alice, "DisableKeyRotation", map[string]any{"KeyId": id})
	assert.Equal(t, "Encrypt", f.lastUsage(t, f.s, id)["KeyLastUsage"].(map[string]any)["Operation"], "no failed, dry-run or management operation counts")

	f.must(t, alice, "ReEncrypt", map[string]any{"CiphertextBlob": ct, "DestinationKeyId": other})
	for _, k := range []string{id, other} {
		m := f.lastUsage(t, f.s, k)["KeyLastUsage"].(map[string]any)
		assert.Equal(t, "ReEncrypt", m["Operation"], k)
		assert.Equal(t, float64(f.now.Unix()), m["Timestamp"], k)
	}

	f.must(t, alice, "CreateAlias", map[string]any{"AliasName": "alias/u", "TargetKeyId": id})
	_, err = f.call(alice, "GetKeyLastUsage", map[string]any{"KeyId": "alias/u"})
	assert.Equal(t, "NotFoundException", exception(err), "alias names are not supported")
	_, err = f.call(bob, "GetKeyLastUsage", map[string]any{"KeyId": f.createKey(t, map[string]any{"Policy": aliceOnly()})})
	assert.Equal(t, "AccessDeniedException", exception(err))
	_, err = f.call(alice, "GetKeyLastUsage", map[string]any{"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"})
	assert.Equal(t, "NotFoundException", exception(err))
}

// A usage on one host shows on another once the leader merged the
// hosts' pending usages: the key store then has it, the serving host
// drops it, and an older usage never replaces a newer one.
func TestKeyLastUsageAcrossHosts(t *testing.T) {
	f := newFixture(t)
	b := New(Config{Store: f.store, HSM: f.hsm, Region: "eu-west-1", Clock: func() time.Time { return f.now }}) // host B
	id := f.createKey(t, nil)
	encrypt := func(s *Service) {
		body, _ := json.Marshal(map[string]any{"KeyId": id, "Plaintext": []byte("x")})
		_, err := s.Operations()["Encrypt"].Handler(context.Background(), alice, body)
		require.NoError(t, err)
	}
	f.now = f.now.Add(time.Second)
	encrypt(b)
	assert.Equal(t, map[string]any{}, f.lastUsage(t, f.s, id)["KeyLastUsage"], "not gathered yet")
	assert.Equal(t, "Encrypt", f.lastUsage(t, b, id)["KeyLastUsage"].(map[string]any)["Operation"], "at once where it was served")

	pb, err := b.PendingUsage()
	require.NoError(t, err)
	pa, err := f.s.PendingUsage()
	require.NoError(t, err)
	require.NoError(t, f.s.MergeUsage(context.Background(), pa, pb))
	m := f.lastUsage(t, f.s, id)["KeyLastUsage"].(map[string]any)
	assert.Equal(t, "Encrypt", m["Operation"])
	assert.Equal(t, float64(f.now.Unix()), m["Timestamp"])
	_, ok := f.store.Get(keystore.UsageSinceID)
	assert.True(t, ok, "the tracking start is recorded")
	pb2, err := b.PendingUsage()
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 0}, pb2, "B dropped what the key store has")

	// An older usage (B's batch again, after a newer use on A) changes nothing.
	f.now = f.now.Add(time.Second)
	encrypt(f.s)
	pa, err = f.s.PendingUsage()
	require.NoError(t, err)
	require.NoError(t, f.s.MergeUsage(context.Background(), pa))
	require.NoError(t, f.s.MergeUsage(context.Background(), pb))
	assert.Equal(t, float64(f.now.Unix()), f.lastUsage(t, b, id)["KeyLastUsage"].(map[string]any)["Timestamp"])

	// A deleted key's usage is not written.
	gone := f.createKey(t, nil)
	f.now = f.now.Add(time.Second)
	body, _ := json.Marshal(map[string]any{"KeyId": gone, "Plaintext": []byte("x")})
	_, err = b.Operations()["Encrypt"].Handler(context.Background(), alice, body)
	require.NoError(t, err)
	pb, err = b.PendingUsage()
	require.NoError(t, err)
	raw, _ := f.store.Get(keystore.KeyRecordID(gone))
	require.NoError(t, f.store.Propose(context.Background(), domainDelete(keystore.KeyRecordID(gone), raw)))
	require.NoError(t, f.s.MergeUsage(context.Background(), pb))
	_, ok = f.store.Get(keystore.UsageRecordID(gone))
	assert.False(t, ok)

	// Key deletion removes the key's usage record with it.
	_, ok = f.store.Get(keystore.UsageRecordID(id))
	require.True(t, ok)
	f.must(t, alice, "ScheduleKeyDeletion", map[string]any{"KeyId": id, "PendingWindowInDays": 7})
	f.now = f.now.Add(8 * 24 * time.Hour)
	_, _, err = f.s.KeyMaintenance(context.Background())
	require.NoError(t, err)
	_, ok = f.store.Get(keystore.UsageRecordID(id))
	assert.False(t, ok)
}

// Each pending usage costs a host one map update: the hot path's share
// of GetKeyLastUsage (docs/benchmarks.md).
func BenchmarkUsageNote(b *testing.B) {
	s := New(Config{Store: newMemStore(), Region: "eu-west-1"})
	resp := &encryptResponse{KeyId: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
	bare := func(context.Context, kmsapi.Principal, []byte) (any, error) { return resp, nil }
	for _, c := range []struct {
		name string
		h    kmsapi.Handler
	}{{"without", bare}, {"noted", s.noted("Encrypt", bare)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.h(context.Background(), alice, nil)
				}
			})
		})
	}
}

func TestParseUsageBatch(t *testing.T) {
	u := keystore.Usage{Millis: 1, Operation: "Encrypt", EventID: "0e", RequestID: "0d"}
	raw, err := u.Marshal()
	require.NoError(t, err)
	item := append(append([]byte{36}, "1234abcd-12ab-34cd-56ef-1234567890ab"...), byte(len(raw)>>8), byte(len(raw)))
	item = append(item, raw...)
	one := append([]byte{0, 1}, item...)
	m, err := ParseUsageBatch(one)
	require.NoError(t, err)
	assert.Equal(t, u, m["1234abcd-12ab-34cd-56ef-1234567890ab"])
	for i := range one {
		_, err := ParseUsageBatch(one[:i])
		assert.ErrorIs(t, err, ErrUsageBatch, "prefix %d", i)
	}
	_, err = ParseUsageBatch(append(append([]byte{0, 2}, item...), item...))
	assert.ErrorIs(t, err, ErrUsageBatch, "a key twice")
	_, err = ParseUsageBatch(append(one, 0))
	assert.ErrorIs(t, err, ErrUsageBatch, "trailing bytes")
	_, err = ParseUsageBatch([]byte{0xff, 0xff})
	assert.ErrorIs(t, err, ErrUsageBatch, "over MaxUsageBatch")
}

func FuzzParseUsageBatch(f *testing.F) {
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseUsageBatch(in)
		if err != nil {
			return
		}
		for id, u := range m {
			if !keystore.ValidKeyID(id) || u.Operation == "" {
				t.Fatalf("accepted %q %+v", id, u)
			}
		}
	})
}
