package host

import (
	"testing"
	"time"

	"github.com/trentkms/trent/domain"
)

func TestWouldDrop(t *testing.T) {
	keys := []domain.KeyInfo{{ID: [16]byte{1}, Created: 100}, {ID: [16]byte{2}, Created: 200}, {ID: [16]byte{3}, Created: 300, Active: true}}
	st := &domain.State{Retention: 2, Keys: keys}
	drop, when := wouldDrop(st)
	if len(drop) != 1 || !drop[[16]byte{1}] || !when.Equal(time.Unix(200, 0)) {
		t.Fatalf("retention 2, 3 keys: drop %v at %v", drop, when)
	}
	st.Retention = 3
	if drop, _ := wouldDrop(st); len(drop) != 0 {
		t.Fatalf("retention 3, 3 keys: drop %v", drop)
	}
	st.Retention = 1
	drop, when = wouldDrop(st)
	if len(drop) != 2 || !drop[[16]byte{2}] || !when.Equal(time.Unix(300, 0)) {
		t.Fatalf("retention 1: drop %v at %v", drop, when)
	}
}
