package quorum

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/trentkms/trent/internal/testvec"
)

// Known-answer vectors for commands and operator signatures: fixed keys,
// deterministic ECDSA (RFC 6979) and deterministic ML-DSA-87, so every byte
// is reproducible. go test -run TestVectors -update rewrites them.

var update = flag.Bool("update", false, "rewrite testdata/ vectors")

type detSigner = testvec.Signer

func genVectors(t testing.TB) map[string]*testvec.Vector {
	scalar := sha512.Sum384([]byte("trent vector key alice"))
	alice, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), scalar[:])
	if err != nil {
		t.Fatal(err)
	}
	var seed [mldsa87.SeedSize]byte
	copy(seed[:], []byte("trent vector ML-DSA-87 seed carol"))
	carolPub, carol := mldsa87.NewKeyFromSeed(&seed)

	c := &Command{Domain: "example-domain", StateVersion: 7, Type: AddMember,
		Params: []byte("example parameters"), IssuedAt: 1767225600, ExpiresAt: 1767225600 + 600}
	copy(c.Nonce[:], "0123456789abcdef")
	cmd, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sa, err := SignECDSA("alice", detSigner{K: alice}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := SignMLDSA("carol", carol, cmd, true)
	if err != nil {
		t.Fatal(err)
	}
	signed := &SignedCommand{Command: cmd, Signatures: []Signature{sa, sc}}
	raw, err := signed.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	carolKey, _ := carolPub.MarshalBinary()
	v := &testvec.Vector{Comment: []string{
		"An AddMember command for example-domain at state version 7, signed by alice (ECDSA P-384,",
		"deterministic RFC 6979) and carol (ML-DSA-87, deterministic) (docs/protocol.md, Quorum commands).",
		"alice's scalar is SHA-384(\"trent vector key alice\"); carol's key is from the 32-byte seed given.",
	}}
	v.Hex("alice_scalar", scalar[:])
	v.Hex("carol_seed", seed[:])
	v.Hex("carol_public_key", carolKey)
	v.Str("domain", c.Domain)
	v.U64("state_version", c.StateVersion)
	v.U64("type", uint64(c.Type))
	v.Hex("params", c.Params)
	v.Hex("nonce", c.Nonce[:])
	v.U64("issued_at", c.IssuedAt)
	v.U64("expires_at", c.ExpiresAt)
	v.Hex("command", cmd)
	v.Hex("alice_signature", sa.Sig)
	v.Hex("carol_signature", sc.Sig)
	v.Hex("signed_command", raw)
	return map[string]*testvec.Vector{"command.txt": v}
}

func TestVectors(t *testing.T) {
	for name, v := range genVectors(t) {
		testvec.Check(t, filepath.Join("testdata", name), v, *update)
	}
	// The vector's signatures verify with the published keys.
	data, _ := os.ReadFile(filepath.Join("testdata", "command.txt"))
	f, err := testvec.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := ParsePublicKey(MLDSA87, f["carol_public_key"])
	if err != nil {
		t.Fatal(err)
	}
	if !mk.verify(f["command"], Signature{Signer: "carol", Alg: MLDSA87, Sig: f["carol_signature"]}) {
		t.Error("carol's ML-DSA-87 signature does not verify")
	}
}

func seeds(f *testing.F, field string) {
	data, err := os.ReadFile(filepath.Join("testdata", "command.txt"))
	if err != nil {
		f.Fatal(err)
	}
	m, err := testvec.Parse(data)
	if err != nil {
		f.Fatal(err)
	}
	v := m[field]
	f.Add(v)
	f.Add(v[:len(v)/2])
	f.Add(append(bytes.Clone(v), 0))
}

func FuzzParseCommand(f *testing.F) {
	seeds(f, "command")
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCommand(in)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

func FuzzParseSignedCommand(f *testing.F) {
	seeds(f, "signed_command")
	f.Fuzz(func(t *testing.T, in []byte) {
		sc, _, err := ParseSignedCommand(in)
		if err != nil {
			return
		}
		out, err := sc.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}
