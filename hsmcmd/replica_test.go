package hsmcmd_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
)

func TestReplicaPayload(t *testing.T) {
	vs := []hsmcmd.ReplicaHBK{{ID: [hbk.IDSize]byte{1}, HBK: bytes.Repeat([]byte{0xaa}, hbk.Size)},
		{ID: [hbk.IDSize]byte{2}, HBK: bytes.Repeat([]byte{0xbb}, hbk.Size)}}
	raw, err := hsmcmd.EncodeReplicaPayload(vs)
	require.NoError(t, err)
	require.Len(t, raw, 2+2*(hbk.IDSize+hbk.Size))
	back, err := hsmcmd.ParseReplicaPayload(raw)
	require.NoError(t, err)
	require.Equal(t, vs, back)
	for i := range len(raw) {
		_, err := hsmcmd.ParseReplicaPayload(raw[:i])
		require.Error(t, err, "prefix %d", i)
	}
	_, err = hsmcmd.ParseReplicaPayload(append(bytes.Clone(raw), 0))
	require.Error(t, err)
	// No versions, a short HBK and an HBK ID twice are refused both ways.
	_, err = hsmcmd.EncodeReplicaPayload(nil)
	require.Error(t, err)
	_, err = hsmcmd.EncodeReplicaPayload([]hsmcmd.ReplicaHBK{{HBK: make([]byte, 31)}})
	require.Error(t, err)
	_, err = hsmcmd.EncodeReplicaPayload([]hsmcmd.ReplicaHBK{vs[0], vs[0]})
	require.Error(t, err)
	twice := append(bytes.Clone(raw[:2+hbk.IDSize+hbk.Size]), raw[2:2+hbk.IDSize+hbk.Size]...)
	_, err = hsmcmd.ParseReplicaPayload(twice)
	require.Error(t, err)
	_, err = hsmcmd.ParseReplicaPayload([]byte{0, 0})
	require.Error(t, err)
}

// The context binds the key and both domains, each length-prefixed after
// the label, so no two triples share it.
func TestReplicaContext(t *testing.T) {
	c := hsmcmd.ReplicaContext("mrk-1", "east", "west")
	require.Equal(t, append([]byte("trent/v1 replica\x00\x05mrk-1\x04east\x04west"), []byte{}...), c)
	require.NotEqual(t, c, hsmcmd.ReplicaContext("mrk-1", "west", "east"))
	require.NotEqual(t, hsmcmd.ReplicaContext("ab", "c", "d"), hsmcmd.ReplicaContext("a", "bc", "d"))
}

func FuzzReplicaPayload(f *testing.F) {
	raw, _ := hsmcmd.EncodeReplicaPayload([]hsmcmd.ReplicaHBK{{HBK: make([]byte, hbk.Size)}})
	f.Add(raw)
	f.Fuzz(func(t *testing.T, in []byte) {
		vs, err := hsmcmd.ParseReplicaPayload(in)
		if err != nil {
			return
		}
		out, err := hsmcmd.EncodeReplicaPayload(vs)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("parse→encode changed the bytes: %v", err)
		}
	})
}
