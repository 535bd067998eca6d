package domain

import (
	"bytes"
	"errors"
	"testing"

	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// signedBy makes a command of typ with params for st, signed by alice and
// carol (the vector state's kms-operators).
func signedBy(t *testing.T, st *State, typ quorum.CommandType, params []byte) *quorum.SignedCommand {
	t.Helper()
	_, _, alice, carol := vecState(t)
	c := &quorum.Command{Domain: st.Name, StateVersion: st.Version, Type: typ, Params: params,
		IssuedAt: 1767225600, ExpiresAt: 1767225600 + 600}
	cmd, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := quorum.SignECDSA("alice", detSigner{K: alice}, cmd)
	sc, _ := quorum.SignMLDSA("carol", carol, cmd, true)
	return &quorum.SignedCommand{Command: cmd, Signatures: []quorum.Signature{sa, sc}}
}

func TestSetPeerRegion(t *testing.T) {
	st, _, _, _ := vecState(t)
	before, _ := st.Marshal()
	west := PeerRegion{Region: "us-west-2", Domain: "west", Members: []session.Member{newVecMember(t, "west-1").m}}
	params, err := ParamsPeerRegion(west)
	if err != nil {
		t.Fatal(err)
	}
	// The vector state has no rule of its own for SetPeerRegion: AddMember's
	// (two kms-operators) governs it.
	if _, ok := st.Rules[quorum.SetPeerRegion]; ok {
		t.Fatal("the default rules name SetPeerRegion")
	}
	next, err := Apply(st, signedBy(t, st, quorum.SetPeerRegion, params), nil, 1767225600)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := next.PeerRegion("us-west-2")
	if !ok || p.Domain != "west" || len(p.Members) != 1 {
		t.Fatalf("peer region not recorded: %+v", next.PeerRegions)
	}
	raw, err := next.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseState(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(raw, again) || len(back.PeerRegions) != 1 {
		t.Fatal("a state with a peer region does not round-trip")
	}
	// The state without peer regions encodes as before: the list is
	// absent, not empty.
	bare := next.Clone()
	bare.PeerRegions = nil
	bareRaw, _ := bare.Marshal()
	if len(bareRaw) != len(before) || !bytes.HasPrefix(raw, bareRaw) || len(raw) <= len(bareRaw) {
		t.Fatal("peer regions are not a trailing addition")
	}
	for _, bad := range [][]byte{append(bytes.Clone(before), 0), append(bytes.Clone(raw), 0)} {
		if _, err := ParseState(bad); err == nil {
			t.Error("a state with an empty peer list or trailing byte parses")
		}
	}

	// One operator is not enough.
	one := signedBy(t, next, quorum.SetPeerRegion, params)
	one.Signatures = one.Signatures[:1]
	if _, err := Apply(next, one, nil, 1767225600); err == nil {
		t.Error("one signature set a peer region")
	}
	// A peer region of this domain's own name is refused.
	own := west
	own.Domain = st.Name
	ownParams, _ := ParamsPeerRegion(own)
	if _, err := Apply(next, signedBy(t, next, quorum.SetPeerRegion, ownParams), nil, 1767225600); !errors.Is(err, ErrCommand) {
		t.Errorf("own domain as a peer: %v", err)
	}
	// No members forget the region; forgetting an unknown one is refused.
	forget, _ := ParamsPeerRegion(PeerRegion{Region: "us-west-2", Domain: "west"})
	gone, err := Apply(next, signedBy(t, next, quorum.SetPeerRegion, forget), nil, 1767225600)
	if err != nil || len(gone.PeerRegions) != 0 {
		t.Fatalf("forget: %v %+v", err, gone)
	}
	if raw, _ := gone.Marshal(); len(raw) != len(before) {
		t.Error("a state whose peer regions are all forgotten encodes differently")
	}
	if _, err := Apply(gone, signedBy(t, gone, quorum.SetPeerRegion, forget), nil, 1767225600); !errors.Is(err, ErrCommand) {
		t.Errorf("forgetting an unknown region: %v", err)
	}
}

func FuzzSetPeerRegionParams(f *testing.F) {
	p, _ := ParamsPeerRegion(PeerRegion{Region: "us-west-2", Domain: "west", Members: []session.Member{newVecMember(f, "west-1").m}})
	f.Add(p)
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &quorum.Command{Domain: "d", Type: quorum.SetPeerRegion, Params: in}
		ch, err := DecodeChange(c)
		if err != nil {
			return
		}
		out, err := ch.Params()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("decoded parameters do not re-encode: %v", err)
		}
	})
}
