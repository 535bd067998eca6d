package domain

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/trentkms/trent/quorum"
)

// Errors of VerifyTransition.
var (
	ErrStale     = errors.New("domain: token is not newer than the state")
	ErrGap       = errors.New("domain: token skips state versions")
	ErrMismatch  = errors.New("domain: token's state is not what its command makes of the state")
	ErrNoGenesis = errors.New("domain: no state yet, and the token is not a genesis")
)

// VerifyTransition checks that the token p holds the state that follows
// cur: its exporter is a member of cur and signed it, its version is cur's
// plus one, and its state is byte for byte what Apply makes of cur with the
// token's command, satisfied under cur at time now (Unix seconds). With no
// cur, p must be a genesis token: signed by a member it lists, its state
// exactly what Genesis makes of its CreateDomain command (checked at the
// command's issue time). Every HSM and every host's raft FSM applies this
// one rule.
func VerifyTransition(cur *State, p *Parsed, now int64) error {
	c, err := quorum.ParseCommand(p.Command.Command)
	if err != nil {
		return err
	}
	if cur == nil {
		if c.Type != quorum.CreateDomain {
			return ErrNoGenesis
		}
		if err := p.Verify(p.State); err != nil {
			return err
		}
		want, err := Genesis(p.Command, KeyInfo{ID: p.State.Keys[0].ID}, int64(c.IssuedAt))
		if err != nil {
			return err
		}
		return sameState(want, p.Token.State)
	}
	if p.State.Name != cur.Name {
		return fmt.Errorf("%w: token for domain %q", ErrMismatch, p.State.Name)
	}
	if p.State.Version <= cur.Version {
		return fmt.Errorf("%w: version %d, state at %d", ErrStale, p.State.Version, cur.Version)
	}
	if p.State.Version != cur.Version+1 {
		return fmt.Errorf("%w: version %d, state at %d", ErrGap, p.State.Version, cur.Version)
	}
	if err := p.Verify(cur); err != nil {
		return err
	}
	var newKey *KeyInfo
	if c.Type == quorum.RotateDomainKeys {
		k, _ := p.State.ActiveKey()
		newKey = &k
	}
	want, err := Apply(cur, p.Command, newKey, now)
	if err != nil {
		return err
	}
	return sameState(want, p.Token.State)
}

func sameState(want *State, got []byte) error {
	w, err := want.Marshal()
	if err != nil {
		return err
	}
	if !bytes.Equal(w, got) {
		return ErrMismatch
	}
	return nil
}
