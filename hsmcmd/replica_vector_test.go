package hsmcmd_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/testvec"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/session"
)

var update = flag.Bool("update", false, "rewrite testdata/ vectors")

// genReplicaVector is a replica transport (docs/protocol.md, Multi-Region
// keys) of two key versions from an HSM of domain "east" to the two member
// HSMs of peer region us-west-2 (domain "west"), with fixed keys and
// randomness.
func genReplicaVector(t *testing.T) (*testvec.Vector, map[string]*ecdh.PrivateKey, *ecdsa.PrivateKey) {
	sender, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), testvec.Scalar("east-1 signing"))
	require.NoError(t, err)
	agree := map[string]*ecdh.PrivateKey{}
	var recipients []session.Recipient
	for _, name := range []string{"west-1", "west-2"} {
		s, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), testvec.Scalar(name+" signing"))
		require.NoError(t, err)
		a, err := ecdh.P384().NewPrivateKey(testvec.Scalar(name + " agreement"))
		require.NoError(t, err)
		id := wire.HSMID(&s.PublicKey)
		agree[id] = a
		recipients = append(recipients, session.Recipient{ID: id, Agreement: a.PublicKey()})
	}
	const keyID = "mrk-1234abcd12ab34cd56ef1234567890ab"
	rng := testvec.Reader("replica")
	var vs []hsmcmd.ReplicaHBK
	for range 2 {
		var v hsmcmd.ReplicaHBK
		copy(v.ID[:], testvec.ReadN(rng, hbk.IDSize))
		v.HBK = testvec.ReadN(rng, hbk.Size)
		vs = append(vs, v)
	}
	payload, err := hsmcmd.EncodeReplicaPayload(vs)
	require.NoError(t, err)
	ctx := hsmcmd.ReplicaContext(keyID, "east", "west")
	dE, err := ecdh.P384().NewPrivateKey(testvec.Scalar("dE replica"))
	require.NoError(t, err)
	senderID := wire.HSMID(&sender.PublicKey)
	msg, err := session.SealOnePass(senderID, testvec.Signer{K: sender}, testvec.Ephemeral{K: dE}, ctx, payload, recipients)
	require.NoError(t, err)
	v := &testvec.Vector{Comment: []string{
		"A replica transport (docs/protocol.md, Multi-Region keys): key " + keyID + ", two versions,",
		"from the HSM east-1 of domain east to the members west-1 and west-2 of its peer region us-west-2 (domain west);",
		"HBK IDs and HBKs are SHAKE256(\"trent vector rng replica\") in that order; recipients' agreement scalars open it.",
	}}
	v.Str("key_id", keyID)
	v.Str("sending_domain", "east")
	v.Str("receiving_domain", "west")
	v.Hex("sender_signing_scalar", testvec.Scalar("east-1 signing"))
	v.Hex("de_scalar", testvec.Scalar("dE replica"))
	v.Hex("west1_agreement_scalar", testvec.Scalar("west-1 agreement"))
	v.Hex("west2_agreement_scalar", testvec.Scalar("west-2 agreement"))
	v.Hex("context", ctx)
	v.Hex("payload", payload)
	v.Hex("transport", msg)
	return v, agree, sender
}

func TestReplicaVector(t *testing.T) {
	v, agree, sender := genReplicaVector(t)
	path := filepath.Join("testdata", "replica.txt")
	testvec.Check(t, path, v, *update)
	// From the file alone: every recipient opens the transport to the
	// payload, with the context the receiving HSM expects.
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	f, err := testvec.Parse(raw)
	require.NoError(t, err)
	senderID := wire.HSMID(&sender.PublicKey)
	senderAgree, err := ecdh.P384().NewPrivateKey(testvec.Scalar("east-1 agreement"))
	require.NoError(t, err)
	// The receiving HSM's view of its peer region "east": the sender.
	dir, err := session.NewStaticDirectory("east", 0, nil, []session.Member{{ID: senderID, Signing: &sender.PublicKey, Agreement: senderAgree.PublicKey()}})
	require.NoError(t, err)
	for id, a := range agree {
		payload, ctx, err := session.OpenOnePass(f["transport"], dir, id, testvec.Ephemeral{K: a})
		require.NoError(t, err, id)
		require.True(t, bytes.Equal(f["payload"], payload))
		require.Equal(t, hsmcmd.ReplicaContext(string(f["key_id"]), string(f["sending_domain"]), string(f["receiving_domain"])), ctx)
		vs, err := hsmcmd.ParseReplicaPayload(payload)
		require.NoError(t, err)
		require.Len(t, vs, 2)
	}
}
