package host

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Concurrent Ready callers share one check in flight, and its answer.
func TestReadySingleFlight(t *testing.T) {
	var checks atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	c := &readyCache{check: func(ctx context.Context) Readiness {
		n := checks.Add(1)
		started <- struct{}{}
		<-release
		return Readiness{ID: "h1", Ready: true, StateVersion: uint64(n)}
	}}
	const n = 16
	got := make([]Readiness, n)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = c.get(context.Background()) })
	}
	<-started                         // one check is in flight
	time.Sleep(50 * time.Millisecond) // the other callers arrive meanwhile
	close(release)
	wg.Wait()
	assert.Equal(t, int32(1), checks.Load(), "%d concurrent callers, one check", n)
	for _, r := range got {
		assert.Equal(t, Readiness{ID: "h1", Ready: true, StateVersion: 1}, r, "every caller has the one check's answer")
	}
	r, ok := c.known()
	assert.True(t, ok)
	assert.Equal(t, uint64(1), r.StateVersion)

	// Within readyTTL the answer is reused; after it, a new check runs.
	assert.Equal(t, uint64(1), c.get(context.Background()).StateVersion)
	c.mu.Lock()
	c.at = time.Now().Add(-readyTTL)
	c.mu.Unlock()
	assert.Equal(t, uint64(2), c.get(context.Background()).StateVersion)
	assert.Equal(t, int32(2), checks.Load())
}
