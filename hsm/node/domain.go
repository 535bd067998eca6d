package node

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// Errors of the domain operations.
var (
	ErrNoDomain      = errors.New("node: this HSM holds no domain state")
	ErrHasDomain     = errors.New("node: this HSM already holds a domain")
	ErrStaleToken    = hsmcmd.ErrStaleToken
	ErrTokenGap      = errors.New("node: token skips state versions")
	ErrTokenMismatch = errors.New("node: token's state is not what its command makes of the HSM's state")
	ErrNotInDomain   = errors.New("node: this HSM is not a member of the token's domain")
)

// liveDirectory is the session protocol's view of the node's current
// domain: swapped whole when the domain changes.
type liveDirectory struct {
	p atomic.Pointer[session.StaticDirectory]
}

func (d *liveDirectory) Domain() (string, uint64) { return d.p.Load().Domain() }
func (d *liveDirectory) HostKey(id string) (*ecdsa.PublicKey, error) {
	return d.p.Load().HostKey(id)
}
func (d *liveDirectory) Member(id string) (*ecdsa.PublicKey, *ecdh.PublicKey, error) {
	return d.p.Load().Member(id)
}

// HybridRequired implements session.HybridPolicy: the domain's policy.
func (d *liveDirectory) HybridRequired() bool { return d.p.Load().HybridRequired() }

// held is the domain as this HSM holds it.
type held struct {
	mu    sync.Mutex
	state *domain.State
	token []byte
	keys  map[[session.KeyIDSize]byte]*hsm.SecretKey
}

func (n *Node) exporter() domain.Exporter {
	return domain.Exporter{
		ID: n.ID(), Signer: n.id.Signing, Rand: n.tok.Reader(),
		NewEphemeral: func() (session.EphemeralKey, error) { return n.tok.GenerateEphemeralAgreementKey() },
	}
}

// DomainState returns the domain state the HSM holds (nil if none) and the
// token it came from.
func (n *Node) DomainState() (*domain.State, []byte) {
	n.dom.mu.Lock()
	defer n.dom.mu.Unlock()
	return n.dom.state, n.dom.token
}

// CreateDomain is genesis on this HSM: it checks the CreateDomain command
// (its signatures against the rule of the state it creates), draws the
// first domain key in its token, exports the first domain token and adopts
// it.
func (n *Node) CreateDomain(sc *quorum.SignedCommand, now time.Time) ([]byte, error) {
	n.dom.mu.Lock()
	defer n.dom.mu.Unlock()
	if n.dom.state != nil {
		return nil, ErrHasDomain
	}
	switch a, err := readAnchor(n.tok); {
	case err != nil:
		return nil, err
	case a != nil:
		return nil, fmt.Errorf("%w: domain %q, version %d (clear it with trent hsm reset-anchor to make a new domain)", ErrAnchored, a.Name, a.Version)
	}
	raw, err := n.tok.Random(session.KeyIDSize + domain.DKSize)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	var id [session.KeyIDSize]byte
	copy(id[:], raw)
	st, err := domain.Genesis(sc, domain.KeyInfo{ID: id}, now.Unix())
	if err != nil {
		return nil, err
	}
	if _, ok := st.Member(n.ID()); !ok {
		return nil, ErrNotInDomain
	}
	if err := n.checkOwnKEM(st); err != nil {
		return nil, err
	}
	token, err := domain.SealToken(st, sc, [][]byte{raw[session.KeyIDSize:]}, n.exporter())
	if err != nil {
		return nil, err
	}
	if err := n.adopt(st, token, [][]byte{raw[session.KeyIDSize:]}); err != nil {
		return nil, err
	}
	return token, nil
}

// ErrWrongKEMKey means a state gives this HSM an ML-KEM key that is not
// its own: its DKEK entry would not open here, so it does not export it.
var ErrWrongKEMKey = errors.New("node: the state's ML-KEM-1024 key for this HSM is not its own")

func (n *Node) checkOwnKEM(st *domain.State) error {
	if m, ok := st.Member(n.ID()); ok && m.KEM != nil && !bytes.Equal(m.KEM, n.kemPub) {
		return fmt.Errorf("%w (%s)", ErrWrongKEMKey, n.ID())
	}
	return nil
}

// Export checks sc under the HSM's current state and returns the token of
// the next state without enacting it: the HSM's own state is unchanged
// until it imports the token (the four-step change). For RotateDomainKeys
// it draws the new domain key, which exists only inside the token until
// imported.
func (n *Node) Export(sc *quorum.SignedCommand, now time.Time) ([]byte, error) {
	n.dom.mu.Lock()
	defer n.dom.mu.Unlock()
	cur := n.dom.state
	if cur == nil {
		return nil, ErrNoDomain
	}
	c, err := quorum.ParseCommand(sc.Command)
	if err != nil {
		return nil, err
	}
	var newKey *domain.KeyInfo
	var newRaw []byte
	if c.Type == quorum.RotateDomainKeys {
		raw, err := n.tok.Random(session.KeyIDSize + domain.DKSize)
		if err != nil {
			return nil, err
		}
		defer clear(raw)
		newKey = &domain.KeyInfo{}
		copy(newKey.ID[:], raw)
		newRaw = raw[session.KeyIDSize:]
	}
	next, err := domain.Apply(cur, sc, newKey, now.Unix())
	if err != nil {
		return nil, err
	}
	if err := n.checkOwnKEM(next); err != nil {
		return nil, err
	}
	values := make([][]byte, len(next.Keys))
	defer func() {
		for _, v := range values {
			clear(v)
		}
	}()
	for i, k := range next.Keys {
		if newKey != nil && k.ID == newKey.ID {
			values[i] = bytes.Clone(newRaw)
			continue
		}
		sk := n.dom.keys[k.ID]
		if sk == nil {
			return nil, fmt.Errorf("node: domain key %x not loaded", k.ID)
		}
		if values[i], err = sk.ExportValue(); err != nil {
			return nil, err
		}
	}
	return domain.SealToken(next, sc, values, n.exporter())
}

// Import checks a token and switches to its state.
//
// Trust rule. An HSM with a state accepts only the next version: the
// exporter must be a member of its current state, and the token's state
// must be exactly what the token's command, satisfied under the current
// state, makes of it. An HSM without a state (restarted: its domain keys
// were session objects; or newly added) accepts a genesis token whose
// state is what its CreateDomain command makes, or any token signed by a
// member listed in it, if it lists this HSM too: member HSMs export only
// states they have checked by quorum, so a member's signature stands for
// the chain of commands behind it. Either way the HSM must be a member to
// unwrap the domain keys at all.
//
// An HSM without a state whose token holds a domain anchor (it adopted a
// state before it restarted) takes only a token its anchor admits: of the
// anchored domain, at the anchored version (with the same members) or
// later, exported by an anchored member with the same signing key
// (ErrAnchorRefused otherwise). Only a token without an anchor (freshly
// provisioned, or cleared with ResetAnchor) takes the first token that
// lists it by the stateless rule alone.
func (n *Node) Import(token []byte, now time.Time) error {
	// The token it holds, offered again (hosts offer theirs every few
	// seconds, and `trent dev`'s hosts every 250 ms): stale, as the
	// checks below would find, without parsing members' keys anew.
	n.dom.mu.Lock()
	if cur := n.dom.state; cur != nil && bytes.Equal(token, n.dom.token) {
		n.dom.mu.Unlock()
		return translate(fmt.Errorf("%w: version %d, state at %d", domain.ErrStale, cur.Version, cur.Version))
	}
	n.dom.mu.Unlock()
	p, err := domain.ParseToken(token)
	if err != nil {
		return err
	}
	if _, ok := p.State.Member(n.ID()); !ok {
		return ErrNotInDomain
	}
	n.dom.mu.Lock()
	defer n.dom.mu.Unlock()
	cur := n.dom.state
	if cur == nil {
		// An HSM with a state checks the token against it (and adopt
		// keeps the anchor equal to it); without one, the anchor is all
		// that is left of the domain it belonged to.
		a, err := readAnchor(n.tok)
		if err != nil {
			return err
		}
		if a != nil {
			if err := a.admits(p); err != nil {
				return err
			}
		}
	}
	senders := p.State
	err = domain.VerifyTransition(cur, p, now.Unix())
	switch {
	case errors.Is(err, domain.ErrGap):
		// More than one version behind (it missed changes while away):
		// hosts hold only the latest token. The HSM takes it from an
		// exporter it already knows: a member of its current state, with
		// the same signing key, and a member of the token's state. (A
		// member of the token's state alone would let anyone who can
		// reach the HSM make up a member and sign a domain of its own.)
		if err = p.Verify(cur); err == nil {
			err = p.Verify(p.State)
		}
	case cur != nil:
		senders = cur
	case errors.Is(err, domain.ErrNoGenesis):
		// The stateless rule: a token signed by a member it lists.
		err = p.Verify(p.State)
	}
	if err != nil {
		return translate(err)
	}
	values, err := p.OpenKeysHybrid(senders, n.ID(), n.id.Agreement, n.kem)
	if err != nil {
		return err
	}
	defer func() {
		for _, v := range values {
			clear(v)
		}
	}()
	return n.adopt(p.State, token, values)
}

// translate maps the domain package's transition errors to this package's.
func translate(err error) error {
	switch {
	case errors.Is(err, domain.ErrStale):
		return fmt.Errorf("%w: %w", ErrStaleToken, err)
	case errors.Is(err, domain.ErrGap):
		return fmt.Errorf("%w: %w", ErrTokenGap, err)
	case errors.Is(err, domain.ErrMismatch):
		return fmt.Errorf("%w: %w", ErrTokenMismatch, err)
	}
	return err
}

// adopt writes st's anchor to the token, loads the domain keys (values in
// st.Keys order) as session objects, switches the key ring and the
// directory, and destroys the keys dropped. n.dom.mu is held.
//
// The anchor is written first. Written after, a crash or a failed write
// between the switch and the write would leave a token whose anchor names
// an older state than the one whose keys and members the HSM has already
// served: after a restart it would again take tokens from members that
// state removed. Written first, the anchor is at worst ahead of the state
// held: it names a state that passed every check of Import (or that this
// HSM made at genesis), which only narrows what a restarted HSM accepts.
// If loading the keys fails the previous anchor is put back (a failure to
// do so leaves the newer one, which is safe; a genesis whose adoption
// failed then needs trent hsm reset-anchor before it is tried again).
func (n *Node) adopt(st *domain.State, token []byte, values [][]byte) error {
	dir, err := st.Directory()
	if err != nil {
		return err
	}
	restore, err := n.writeAnchor(st)
	if err != nil {
		return err
	}
	if err := n.loadKeys(st, values); err != nil {
		restore()
		return err
	}
	n.dom.state, n.dom.token = st, slices.Clone(token)
	n.hbks.purge()
	n.keys.purge()
	n.dir.p.Store(dir)
	return nil
}

// writeAnchor replaces the token's anchor with st's and returns a function
// that puts the previous one back (best effort).
func (n *Node) writeAnchor(st *domain.State) (restore func(), err error) {
	a, err := AnchorOf(st)
	if err != nil {
		return nil, err
	}
	enc, err := a.Marshal()
	if err != nil {
		return nil, err
	}
	prev, err := n.tok.ReadData(AnchorLabel)
	if errors.Is(err, hsm.ErrObjectNotFound) {
		prev, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: reading the domain anchor: %w", err)
	}
	if _, err := n.tok.WriteData(AnchorLabel, AnchorApplication, enc); err != nil {
		return nil, fmt.Errorf("node: writing the domain anchor: %w", err)
	}
	return func() {
		var err error
		if prev == nil {
			_, err = n.tok.DestroyData(AnchorLabel)
		} else {
			_, err = n.tok.WriteData(AnchorLabel, AnchorApplication, prev)
		}
		if err != nil {
			n.log.Warn("could not restore the previous domain anchor", "hsm", n.ID(), "err", err)
		}
	}, nil
}

// loadKeys imports st's domain keys not yet held, switches the key ring
// and destroys the keys st dropped. n.dom.mu is held.
func (n *Node) loadKeys(st *domain.State, values [][]byte) error {
	keys := map[[session.KeyIDSize]byte]*hsm.SecretKey{}
	for i, k := range st.Keys {
		if old := n.dom.keys[k.ID]; old != nil {
			keys[k.ID] = old
			continue
		}
		sk, err := n.tok.ImportExportableKey(hsm.AES256, values[i])
		if err != nil {
			for id, sk := range keys {
				if n.dom.keys[id] == nil {
					sk.Destroy()
				}
			}
			return err
		}
		keys[k.ID] = sk
	}
	for _, k := range st.Keys {
		n.ring.Add(k.ID, keys[k.ID], k.Active)
	}
	for id, sk := range n.dom.keys {
		if keys[id] == nil {
			n.ring.Drop(id)
			sk.Destroy()
		}
	}
	n.dom.keys = keys
	return nil
}

// ReencryptEKTs re-seals a batch of EKTs under the active domain key
// (session.ReencryptEKT), drawing all their nonces in one call to the token
// RNG. The result has one entry per input; an EKT that fails leaves a nil
// entry and its error in errs.
func (n *Node) ReencryptEKTs(ekts [][]byte) (out [][]byte, errs []error, err error) {
	if len(ekts) > hsmcmd.MaxReencryptBatch {
		return nil, nil, fmt.Errorf("node: batch of %d EKTs exceeds %d", len(ekts), hsmcmd.MaxReencryptBatch)
	}
	nonces, err := n.tok.Random(max(1, len(ekts)*12))
	if err != nil {
		return nil, nil, err
	}
	out = make([][]byte, len(ekts))
	errs = make([]error, len(ekts))
	for i, e := range ekts {
		if isHBKToken(e) {
			out[i], errs[i] = n.reencryptHBK(e, nonces[i*12:i*12+12])
			continue
		}
		out[i], errs[i] = session.ReencryptEKT(n.ring, e, nonces[i*12:i*12+12])
	}
	return out, errs, nil
}
