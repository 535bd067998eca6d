package session

import (
	"fmt"
	"testing"
)

// A peer-region refusal keeps its own code when its handler also marks it
// refused (ErrRefused, code 23).
func TestPeerAlertsBeforeRefused(t *testing.T) {
	for code, err := range map[uint16]error{28: ErrUntrustedPeer, 29: ErrPeerContext} {
		a := AlertFor(fmt.Errorf("%w: %w", ErrRefused, err))
		if a.Code != code {
			t.Errorf("%v wrapped with ErrRefused: code %d, want %d", err, a.Code, code)
		}
	}
}
