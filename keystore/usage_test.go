package keystore_test

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/keystore"
)

// The usage record of docs/protocol.md ("Key-store records"), byte for
// byte; no prefix of it parses, nor an invalid field.
func TestUsageRecord(t *testing.T) {
	u := &keystore.Usage{Millis: 1_800_000_000_123, Operation: "Encrypt",
		EventID: "0a1b2c3d-0000-4000-8000-000000000001", RequestID: "0a1b2c3d-0000-4000-8000-000000000002"}
	raw, err := u.Marshal()
	require.NoError(t, err)
	assert.Equal(t, "54524e54014c000001a3185c507b07456e6372797074"+
		"2430613162326333642d303030302d343030302d383030302d303030303030303030303031"+
		"2430613162326333642d303030302d343030302d383030302d303030303030303030303032", hex.EncodeToString(raw))
	back, err := keystore.ParseUsage(raw)
	require.NoError(t, err)
	assert.Equal(t, u, back)
	for i := range raw {
		_, err := keystore.ParseUsage(raw[:i])
		assert.ErrorIs(t, err, keystore.ErrMalformed, "prefix %d", i)
	}
	_, err = keystore.ParseUsage(append(raw, 0))
	assert.ErrorIs(t, err, keystore.ErrMalformed)
	for _, bad := range []keystore.Usage{{Millis: 0, Operation: "Encrypt"}, {Millis: 1, Operation: "encrypt"},
		{Millis: 1, Operation: "Encrypt", EventID: "NOT-HEX"}, {Millis: 1, RequestID: string(make([]byte, 65))}} {
		_, err := bad.Marshal()
		assert.ErrorIs(t, err, keystore.ErrMalformed, "%+v", bad)
	}
	older := *u
	older.Millis--
	assert.True(t, u.Newer(&older))
	assert.False(t, older.Newer(u))
	tie := *u
	tie.EventID = "ff"
	assert.True(t, tie.Newer(u), "a tie is broken by event ID, the same on every host")
	assert.Equal(t, "u/1234abcd-12ab-34cd-56ef-1234567890ab", keystore.UsageRecordID("1234abcd-12ab-34cd-56ef-1234567890ab"))
}

func FuzzParseUsage(f *testing.F) {
	raw, _ := (&keystore.Usage{Millis: 1, Operation: "Sign", EventID: "ab"}).Marshal()
	f.Add(raw)
	f.Fuzz(func(t *testing.T, in []byte) {
		u, err := keystore.ParseUsage(in)
		if err != nil {
			return
		}
		out, err := u.Marshal()
		if err != nil || string(out) != string(in) {
			t.Fatalf("%x parses but encodes as %x (%v)", in, out, err)
		}
	})
}
