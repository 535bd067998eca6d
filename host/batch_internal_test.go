package host

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsmcmd"
)

// A batch holds at most hsmcmd.MaxBatch commands and maxBatchBytes of them:
// its leader's command first, then the waiting ones, oldest first; a
// command that does not fit starts the next batch, and a lone command of
// any size goes alone.
func TestBatchForming(t *testing.T) {
	job := func(n int) *batchJob { return &batchJob{cmd: make([]byte, n)} }
	big := maxBatchBytes/2 - 100 // two fit, three do not
	queued := []*batchJob{job(big), job(big), job(big), job(10), job(10)}
	want := append([]*batchJob(nil), queued...)
	batch, left := takeBatch(queued[0], queued[1:])
	assert.Equal(t, want[:2], batch)
	require.Len(t, left, 3)
	assert.Same(t, want[2], left[0])
	batch, left = takeBatch(left[0], left[1:])
	assert.Equal(t, want[2:], batch)
	assert.Empty(t, left)

	var many []*batchJob
	for range hsmcmd.MaxBatch + 3 {
		many = append(many, job(1))
	}
	batch, left = takeBatch(many[0], many[1:])
	assert.Len(t, batch, hsmcmd.MaxBatch)
	batch, left = takeBatch(left[0], left[1:])
	assert.Len(t, batch, 3)
	assert.Empty(t, left)

	huge := job(maxBatchBytes + 1)
	batch, left = takeBatch(huge, []*batchJob{job(1)})
	assert.Equal(t, []*batchJob{huge}, batch)
	assert.Len(t, left, 1)
}

// Commands ready together go in one batch even on a single thread: a
// leader yields once before it takes its batch, so the requests ready to
// run then queue theirs and go with it. Without the yield the first would
// go alone, and on one thread each of the others after it, alone too.
func TestBatcherGathersReadyCommands(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var (
		mu      sync.Mutex
		batches []int
	)
	b := newBatcher()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.start(ctx, 1, func(_ context.Context, jobs []*batchJob) {
		mu.Lock()
		batches = append(batches, len(jobs))
		mu.Unlock()
		for _, j := range jobs {
			j.resp = append([]byte("re:"), j.cmd...)
		}
	})
	const ready = 8
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ready {
		wg.Go(func() {
			<-start
			out, err := b.do(context.Background(), hsmcmd.Code(1), []byte(fmt.Sprint(i)))
			assert.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("re:%d", i), string(out))
		})
	}
	close(start) // every command ready at once
	wg.Wait()
	assert.LessOrEqual(t, len(batches), 2, "batches for %d commands ready together: %v", ready, batches)
}

// fakeSender answers each job with its own command, holds every batch
// until released, and records the batches and how many were in flight.
type fakeSender struct {
	mu       sync.Mutex
	batches  [][]string
	inFlight int
	most     int
	release  chan struct{}
	started  chan struct{}
}

func (f *fakeSender) send(ctx context.Context, jobs []*batchJob) {
	f.mu.Lock()
	f.inFlight++
	f.most = max(f.most, f.inFlight)
	var names []string
	for _, j := range jobs {
		names = append(names, string(j.cmd))
	}
	f.batches = append(f.batches, names)
	f.mu.Unlock()
	f.started <- struct{}{}
	<-f.release
	for _, j := range jobs {
		j.resp = append([]byte("re:"), j.cmd...)
	}
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
}

// At most n batches are in flight; a command that finds a slot goes
// alone at once, and the commands that wait meanwhile go together as the
// next batch, sent when a batch is answered. Every caller gets its own
// answer.
func TestBatcherLeadsWaitingCommands(t *testing.T) {
	f := &fakeSender{release: make(chan struct{}), started: make(chan struct{}, 64)}
	b := newBatcher()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.start(ctx, 2, f.send)

	var wg sync.WaitGroup
	answers := make([]string, 8)
	call := func(i int) {
		wg.Go(func() {
			out, err := b.do(context.Background(), hsmcmd.Code(1), []byte(fmt.Sprint(i)))
			assert.NoError(t, err)
			answers[i] = string(out)
		})
	}
	call(0)
	<-f.started
	call(1)
	<-f.started // two in flight: the slots are taken
	for i := 2; i < 8; i++ {
		call(i)
		require.Eventually(t, func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return len(b.waiting) == i-1
		}, 5*time.Second, time.Millisecond)
	}
	f.release <- struct{}{} // one batch answered: the six waiting go as one
	<-f.started
	f.release <- struct{}{}
	f.release <- struct{}{}
	wg.Wait()

	assert.Equal(t, [][]string{{"0"}, {"1"}, {"2", "3", "4", "5", "6", "7"}}, f.batches)
	assert.Equal(t, 2, f.most)
	for i, a := range answers {
		assert.Equal(t, fmt.Sprintf("re:%d", i), a)
	}
	b.mu.Lock()
	assert.Zero(t, b.running)
	b.mu.Unlock()
}

// A host without HSMs, or stopping, answers at once instead of queueing
// for ever; commands waiting when it stops are answered errStopped.
func TestBatcherStopped(t *testing.T) {
	_, err := newBatcher().do(context.Background(), hsmcmd.Code(1), []byte("x"))
	require.ErrorIs(t, err, errStopped)

	f := &fakeSender{release: make(chan struct{}), started: make(chan struct{}, 64)}
	b := newBatcher()
	ctx, cancel := context.WithCancel(context.Background())
	b.start(ctx, 1, f.send)
	doneA, doneB := make(chan error, 1), make(chan error, 1) // the two answers may come in either order
	go func() { _, err := b.do(context.Background(), 1, []byte("a")); doneA <- err }()
	<-f.started
	go func() { _, err := b.do(context.Background(), 1, []byte("b")); doneB <- err }()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.waiting) == 1
	}, 5*time.Second, time.Millisecond)
	cancel()
	f.release <- struct{}{}
	assert.NoError(t, <-doneA, "the batch in flight is answered")
	assert.ErrorIs(t, <-doneB, errStopped, "the command waiting is not sent")
	_, err = b.do(context.Background(), 1, []byte("c"))
	assert.ErrorIs(t, err, errStopped)
	assert.Len(t, f.batches, 1)
}
