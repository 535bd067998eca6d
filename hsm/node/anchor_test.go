package node_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/internal/testvec"
)

var update = flag.Bool("update", false, "rewrite testdata/ vectors")

// vecAnchor is the anchor of testdata/anchor.txt: example-domain at
// version 7 with members whose signing scalars are
// SHA-384("trent vector key hsm-N signing").
func vecAnchor(t testing.TB, n int) *node.Anchor {
	a := &node.Anchor{Name: "example-domain", Version: 7}
	for i := 1; i <= n; i++ {
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), testvec.Scalar("hsm-"+string(rune('0'+i))+" signing"))
		require.NoError(t, err)
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		require.NoError(t, err)
		sum := sha256.Sum256(der)
		a.Members = append(a.Members, node.AnchorMember{ID: "hsm-" + hex.EncodeToString(sum[:8]), Signing: der})
	}
	slices.SortFunc(a.Members, func(x, y node.AnchorMember) int { return strings.Compare(x.ID, y.ID) })
	return a
}

func genAnchorVector(t testing.TB) *testvec.Vector {
	a := vecAnchor(t, 2)
	enc, err := a.Marshal()
	require.NoError(t, err)
	v := &testvec.Vector{Comment: []string{
		"A domain anchor (docs/protocol.md, Domain anchor, type 0x23): example-domain at version 7,",
		"two members whose signing scalars are SHA-384(\"trent vector key hsm-N signing\"), N = 1, 2, in ID order.",
	}}
	v.Str("name", a.Name)
	v.U64("version", a.Version)
	for i, m := range a.Members {
		p := "member_" + string(rune('a'+i))
		v.Str(p+"_id", m.ID)
		v.Hex(p+"_signing_spki", m.Signing)
	}
	v.Hex("anchor", enc)
	return v
}

// go test -run TestAnchorVector -update rewrites testdata/anchor.txt.
func TestAnchorVector(t *testing.T) {
	testvec.Check(t, filepath.Join("testdata", "anchor.txt"), genAnchorVector(t), *update)
}

// TestAnchorIndependent builds testdata/anchor.txt's anchor from its fields
// and docs/protocol.md alone, then checks the decoder reads it back.
func TestAnchorIndependent(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "anchor.txt"))
	require.NoError(t, err)
	v, err := testvec.Parse(data)
	require.NoError(t, err)
	// "TRNT" 01 23 ‖ v8 name ‖ u64 version ‖ u8 n ‖ n × (v8 hsm_id ‖ v16 SPKI)
	b := []byte("TRNT\x01\x23")
	b = append(b, byte(len(v["name"])))
	b = append(b, v["name"]...)
	b = append(b, v["version"]...)
	b = append(b, 2)
	for _, p := range []string{"member_a", "member_b"} {
		id, spki := v[p+"_id"], v[p+"_signing_spki"]
		sum := sha256.Sum256(spki)
		require.Equal(t, "hsm-"+hex.EncodeToString(sum[:8]), string(id))
		b = append(b, byte(len(id)))
		b = append(b, id...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(spki)))
		b = append(b, spki...)
	}
	require.Equal(t, v["anchor"], b)
	a, err := node.ParseAnchor(b)
	require.NoError(t, err)
	assert.Equal(t, uint64(7), a.Version)
	assert.Len(t, a.Members, 2)
}

func TestAnchorCodec(t *testing.T) {
	a := vecAnchor(t, 3)
	enc, err := a.Marshal()
	require.NoError(t, err)
	back, err := node.ParseAnchor(enc)
	require.NoError(t, err)
	assert.True(t, a.Equal(back))
	again, err := back.Marshal()
	require.NoError(t, err)
	assert.Equal(t, enc, again)

	// No prefix parses; no extension either.
	for i := range enc {
		_, err := node.ParseAnchor(enc[:i])
		require.Error(t, err, "prefix of %d bytes", i)
	}
	_, err = node.ParseAnchor(append(bytes.Clone(enc), 0))
	require.ErrorIs(t, err, node.ErrMalformedAnchor)

	// Another version is unsupported; another type malformed.
	other := bytes.Clone(enc)
	other[4] = 2
	_, err = node.ParseAnchor(other)
	require.ErrorIs(t, err, node.ErrAnchorVersion)
	other = bytes.Clone(enc)
	other[5] = 0x21
	_, err = node.ParseAnchor(other)
	require.ErrorIs(t, err, node.ErrMalformedAnchor)

	// What the encoder refuses, the decoder refuses.
	bad := map[string]func(a *node.Anchor){
		"no members":       func(a *node.Anchor) { a.Members = nil },
		"duplicate member": func(a *node.Anchor) { a.Members[1] = a.Members[0] },
		"unsorted":         func(a *node.Anchor) { a.Members[0], a.Members[1] = a.Members[1], a.Members[0] },
		"wrong ID":         func(a *node.Anchor) { a.Members[0].ID = "hsm-0000000000000000" },
		"bad name":         func(a *node.Anchor) { a.Name = "with space" },
		"not a key":        func(a *node.Anchor) { a.Members[0].Signing = []byte{1, 2, 3} },
		"P-256 key": func(a *node.Anchor) {
			k, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), testvec.Scalar("p256")[:32])
			der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
			sum := sha256.Sum256(der)
			a.Members = []node.AnchorMember{{ID: "hsm-" + hex.EncodeToString(sum[:8]), Signing: der}}
		},
	}
	for name, alter := range bad {
		b := vecAnchor(t, 3)
		alter(b)
		_, err := b.Marshal()
		require.ErrorIs(t, err, node.ErrMalformedAnchor, name)
		raw := rawAnchor(b)
		_, err = node.ParseAnchor(raw)
		require.ErrorIs(t, err, node.ErrMalformedAnchor, name)
	}
	_, err = node.ParseAnchor(make([]byte, node.MaxAnchorSize+1))
	require.ErrorIs(t, err, node.ErrMalformedAnchor)
}

// rawAnchor encodes a without the encoder's checks.
func rawAnchor(a *node.Anchor) []byte {
	b := []byte("TRNT\x01\x23")
	b = append(b, byte(len(a.Name)))
	b = append(b, a.Name...)
	b = binary.BigEndian.AppendUint64(b, a.Version)
	b = append(b, byte(len(a.Members)))
	for _, m := range a.Members {
		b = append(b, byte(len(m.ID)))
		b = append(b, m.ID...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Signing)))
		b = append(b, m.Signing...)
	}
	return b
}

// FuzzParseAnchor: the decoder never panics, and whatever it accepts
// encodes back to exactly its input.
func FuzzParseAnchor(f *testing.F) {
	a := vecAnchor(f, 2)
	enc, err := a.Marshal()
	require.NoError(f, err)
	f.Add(enc)
	f.Add(enc[:len(enc)-1])
	f.Add(append(bytes.Clone(enc), 0))
	one := vecAnchor(f, 1)
	enc1, err := one.Marshal()
	require.NoError(f, err)
	f.Add(enc1)
	f.Add([]byte("TRNT\x01\x23"))
	f.Add([]byte("TRNT\x01\x23\x01x\x00\x00\x00\x00\x00\x00\x00\x01\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := node.ParseAnchor(in)
		if err != nil {
			return
		}
		out, err := a.Marshal()
		if err != nil {
			t.Fatalf("a parsed anchor does not encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("parse→encode changed the bytes:\n%x\n%x", in, out)
		}
	})
}
