package node

import (
	"errors"
	"fmt"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// Multi-Region keys (docs/protocol.md, Multi-Region keys;
// docs/hsm-boundary.md). ExportReplica opens a key's HBK tokens with the
// domain keys of this HSM's ring and wraps the HBKs in one one-pass C(1,2)
// message to every member HSM that this HSM's domain state records for
// the destination peer region, signed by this HSM's identity key, with
// the replica context naming the key and both domains. ImportReplica
// accepts such a message only from a member of a peer region of its own
// domain state, made for this key from that region's domain to this one,
// and seals each HBK at once into an HBK token under its active domain
// key, with the HBK ID it had. The HBKs exist in the clear only in the
// memory of the two HSM processes, as every HBK does when a token is
// opened, and are cleared.

// ExportReplica wraps key keyID's HBKs (tokens, oldest first) for the
// members of peer region region and returns the transport.
func (n *Node) ExportReplica(region, keyID string, tokens [][]byte) ([]byte, error) {
	st, _ := n.DomainState()
	if st == nil {
		return nil, fmt.Errorf("%w: no domain", session.ErrRefused)
	}
	peer, ok := st.PeerRegion(region)
	if !ok {
		return nil, fmt.Errorf("%w: %q", session.ErrUntrustedPeer, region)
	}
	vs := make([]hsmcmd.ReplicaHBK, 0, len(tokens))
	defer func() {
		for _, v := range vs {
			clear(v.HBK)
		}
	}()
	for _, raw := range tokens {
		t, err := hbk.ParseToken(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrHBK, err)
		}
		if t.KeyID != keyID {
			return nil, fmt.Errorf("%w: a token of another key", ErrKeyUse)
		}
		dk, err := n.ring.Key(t.DomainKeyID)
		if err != nil {
			return nil, fmt.Errorf("%w: domain key %x not held", ErrHBK, t.DomainKeyID)
		}
		v, err := t.Open(dk)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrHBK, err)
		}
		vs = append(vs, hsmcmd.ReplicaHBK{ID: t.HBKID, HBK: v})
	}
	payload, err := hsmcmd.EncodeReplicaPayload(vs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyUse, err)
	}
	defer clear(payload)
	recipients := make([]session.Recipient, 0, len(peer.Members))
	for _, m := range peer.Members {
		recipients = append(recipients, session.Recipient{ID: m.ID, Agreement: m.Agreement})
	}
	eph, err := n.tok.GenerateEphemeralAgreementKey()
	if err != nil {
		return nil, err
	}
	defer eph.Destroy()
	out, err := session.SealOnePass(n.ID(), n.id.Signing, eph, hsmcmd.ReplicaContext(keyID, st.Name, peer.Domain), payload, recipients)
	if err != nil {
		return nil, err
	}
	if len(out) > hsmcmd.MaxReplicaTransport {
		return nil, fmt.Errorf("%w: a transport of %d bytes", ErrKeyUse, len(out))
	}
	return out, nil
}

// ImportReplica opens a transport of key keyID's HBKs from peer region
// region and returns the key's HBK tokens under the active domain key.
func (n *Node) ImportReplica(region, keyID string, transport []byte) ([][]byte, error) {
	st, _ := n.DomainState()
	if st == nil {
		return nil, fmt.Errorf("%w: no domain", session.ErrRefused)
	}
	if !hbk.ValidKeyID(keyID) {
		return nil, fmt.Errorf("%w: invalid key ID", ErrKeyUse)
	}
	peer, ok := st.PeerRegion(region)
	if !ok {
		return nil, fmt.Errorf("%w: %q", session.ErrUntrustedPeer, region)
	}
	dir, err := peer.Directory()
	if err != nil {
		return nil, err
	}
	payload, ctx, err := session.OpenOnePass(transport, dir, n.ID(), n.id.Agreement)
	if errors.Is(err, session.ErrNotMember) {
		// Alert 28, not 8 (which names the domain's own members).
		return nil, fmt.Errorf("%w: %v", session.ErrUntrustedPeer, err)
	}
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	if string(ctx) != string(hsmcmd.ReplicaContext(keyID, peer.Domain, st.Name)) {
		return nil, session.ErrPeerContext
	}
	vs, err := hsmcmd.ParseReplicaPayload(payload)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(vs))
	for _, v := range vs {
		r, err := n.tok.Random(hbk.IDSize + hbk.IVSize)
		if err != nil {
			return nil, err
		}
		tok, err := n.sealHBK(keyID, v.ID[:], r, v.HBK)
		if err != nil {
			return nil, err
		}
		out = append(out, tok)
	}
	return out, nil
}

// refusedReplica tells what a replica request caused (refused: Alerts 28,
// 29, or the session's for a transport that does not verify or open) from
// the HSM's own failures (Alert 21).
func refusedReplica(err error) error {
	for _, e := range []error{session.ErrRefused, session.ErrUntrustedPeer, session.ErrPeerContext, ErrHBK, ErrKeyUse,
		session.ErrMalformed, session.ErrVersion, session.ErrBadSignature, session.ErrNotRecipient, session.ErrAuthentication,
		session.ErrInvalidPoint, hsmcmd.ErrMalformed} {
		if errors.Is(err, e) {
			return refused(err)
		}
	}
	return err
}

func (n *Node) replicaCommands(m handlers) {
	m[hsmcmd.ExportReplica] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseExportReplicaRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		out, err := n.ExportReplica(req.Region, req.KeyID, req.Tokens)
		if err != nil {
			return nil, refusedReplica(err)
		}
		return hsmcmd.ExportReplicaResponse{Transport: out}.Marshal()
	}
	m[hsmcmd.ImportReplica] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseImportReplicaRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		out, err := n.ImportReplica(req.Region, req.KeyID, req.Transport)
		if err != nil {
			return nil, refusedReplica(err)
		}
		return hsmcmd.ImportReplicaResponse{Tokens: out}.Marshal()
	}
}
