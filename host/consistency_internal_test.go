package host

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Readers share rounds, and one that arrives while a round is in flight
// gets the index of a round that began after it arrived.
func TestRoundsShared(t *testing.T) {
	var fetches atomic.Uint64
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	r := &rounds{fetch: func(ctx context.Context) (uint64, error) {
		n := fetches.Add(1)
		started <- struct{}{}
		<-release
		return n, nil
	}}
	ctx := context.Background()
	first := make(chan uint64)
	go func() {
		idx, err := r.index(ctx)
		assert.NoError(t, err)
		first <- idx
	}()
	<-started // round 1 is in flight
	var wg sync.WaitGroup
	got := make([]uint64, 8)
	for i := range got {
		wg.Go(func() {
			idx, err := r.index(ctx)
			assert.NoError(t, err)
			got[i] = idx
		})
	}
	time.Sleep(50 * time.Millisecond) // the eight wait for round 2
	release <- struct{}{}
	require.Equal(t, uint64(1), <-first)
	<-started // round 2, for all eight
	release <- struct{}{}
	wg.Wait()
	for _, idx := range got {
		assert.Equal(t, uint64(2), idx, "a reader that arrived during round 1 got round 2's index")
	}
	assert.Equal(t, uint64(2), fetches.Load(), "eight readers, one round")
}

func TestRoundsDeadline(t *testing.T) {
	r := &rounds{fetch: func(ctx context.Context) (uint64, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := r.index(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestSoleVoter(t *testing.T) {
	v := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter} }
	nv := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Nonvoter} }
	for _, tc := range []struct {
		servers []raft.Server
		want    bool
	}{
		{[]raft.Server{v("a")}, true},
		{[]raft.Server{v("a"), nv("b")}, true},
		{[]raft.Server{v("b")}, false},
		{[]raft.Server{v("a"), v("b")}, false},
		{[]raft.Server{nv("a")}, false},
		{nil, false},
	} {
		assert.Equal(t, tc.want, soleVoter(raft.Configuration{Servers: tc.servers}, "a"), "%v", tc.servers)
	}
}
