package host

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsmcmd"
)

// A batch holds at most hsmcmd.MaxBatch commands and maxBatchBytes of them:
// a command that does not fit starts the next batch, and a lone command
// of any size goes alone.
func TestBatchForming(t *testing.T) {
	ctx := context.Background()
	b := newBatcher()
	job := func(n int) *batchJob { return &batchJob{cmd: make([]byte, n)} }
	big := maxBatchBytes/2 - 100 // two fit, three do not
	queued := []*batchJob{job(big), job(big), job(big), job(10), job(10)}
	for _, j := range queued {
		b.q <- j
	}
	jobs, carry := b.next(ctx, nil)
	assert.Equal(t, queued[:2], jobs)
	require.Same(t, queued[2], carry)
	jobs, carry = b.next(ctx, carry)
	assert.Equal(t, queued[2:], jobs)
	assert.Nil(t, carry)

	for range hsmcmd.MaxBatch + 3 {
		b.q <- job(1)
	}
	jobs, carry = b.next(ctx, nil)
	assert.Len(t, jobs, hsmcmd.MaxBatch)
	assert.Nil(t, carry)
	jobs, _ = b.next(ctx, nil)
	assert.Len(t, jobs, 3)

	huge := job(maxBatchBytes + 1)
	b.q <- huge
	jobs, carry = b.next(ctx, nil)
	assert.Equal(t, []*batchJob{huge}, jobs)
	assert.Nil(t, carry)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	jobs, _ = b.next(cctx, nil)
	assert.Nil(t, jobs)
}
