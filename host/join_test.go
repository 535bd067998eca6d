package host

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func joinFixture(t testing.TB) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	h, err := Start(Config{ID: "host-1", Signer: k, Dir: t.TempDir(), RaftAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer h.Close()
	b, err := h.joinRequest(time.Now())
	require.NoError(t, err)
	return b
}

func TestParseJoinIsStrict(t *testing.T) {
	b := joinFixture(t)
	j, err := parseJoin(b)
	require.NoError(t, err)
	require.Equal(t, "host-1", j.id)
	for i := range len(b) {
		_, err := parseJoin(b[:i])
		require.ErrorIs(t, err, ErrJoin, "prefix of %d bytes", i)
	}
	_, err = parseJoin(append(bytes.Clone(b), 0))
	require.ErrorIs(t, err, ErrJoin)
}

func FuzzParseJoin(f *testing.F) {
	f.Add(joinFixture(f))
	f.Fuzz(func(t *testing.T, in []byte) {
		j, err := parseJoin(in)
		if err != nil {
			return
		}
		if len(j.unsigned) == 0 || len(j.sig) < 8 {
			t.Fatal("accepted an empty request")
		}
	})
}
