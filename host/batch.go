package host

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// The host batches the hierarchy commands of concurrent KMS requests. At
// most n batches are in flight to the HSMs at once (Config.HSMBatchWorkers,
// one per HSM by default). A command that finds fewer in flight is sent at
// once, on its caller's goroutine; one that finds n waits. When a batch is
// answered, its sender takes the commands waiting then (up to
// hsmcmd.MaxBatch and maxBatchBytes, oldest first) as the next batch and
// hands it to the caller of its oldest command, which sends it as one
// CmdBatch envelope. So a lone command goes alone with no goroutine
// between its caller and the HSM, sixteen share each request to an HSM,
// and no goroutine waits for work.

type batchJob struct {
	code hsmcmd.Code
	cmd  []byte
	resp []byte
	err  error
	done chan struct{}    // closed once resp and err are set
	lead chan []*batchJob // the batch this job's caller is to send (it is first in it)
}

type batcher struct {
	mu      sync.Mutex
	ctx     context.Context // the host's: a batch carries others' commands, so no caller's bounds it
	send    func(ctx context.Context, jobs []*batchJob)
	max     int
	running int         // batches in flight
	waiting []*batchJob // oldest first; not empty only while running == max
}

func newBatcher() *batcher { return &batcher{} }

// start lets b send batches with send, at most n at once, until ctx ends.
func (b *batcher) start(ctx context.Context, n int, send func(context.Context, []*batchJob)) {
	b.mu.Lock()
	b.ctx, b.max, b.send = ctx, max(1, n), send
	b.mu.Unlock()
}

// errStopped answers commands sent while the host stops, or before it has
// HSMs to send them to.
var errStopped = errors.New("host: stopping, or no HSMs")

// do sends one command, in a batch, and waits for its outcome. Once
// queued, the job is waited for even if ctx ends: the caller may clear cmd
// when this returns, and every batch's time is bounded.
func (b *batcher) do(ctx context.Context, code hsmcmd.Code, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j := &batchJob{code: code, cmd: cmd, done: make(chan struct{})}
	b.mu.Lock()
	switch {
	case b.send == nil || b.ctx.Err() != nil:
		b.mu.Unlock()
		return nil, errStopped
	case b.running < b.max:
		b.running++
		b.mu.Unlock()
		b.lead([]*batchJob{j})
	default:
		j.lead = make(chan []*batchJob, 1)
		b.waiting = append(b.waiting, j)
		b.mu.Unlock()
		select {
		case jobs := <-j.lead:
			b.lead(jobs)
		case <-j.done:
		}
	}
	<-j.done
	return j.resp, j.err
}

// lead sends jobs as a batch, hands what waits meanwhile to the next
// leader (or frees the slot), then lets jobs' callers have their outcomes.
func (b *batcher) lead(jobs []*batchJob) {
	if b.ctx.Err() != nil {
		for _, j := range jobs {
			j.err = errStopped
		}
	} else {
		b.send(b.ctx, jobs)
	}
	b.mu.Lock()
	var next []*batchJob
	if len(b.waiting) > 0 {
		next, b.waiting = takeBatch(b.waiting)
	} else {
		b.running--
	}
	b.mu.Unlock()
	if next != nil {
		next[0].lead <- next // buffered: its caller is waiting for it
	}
	for _, j := range jobs {
		close(j.done)
	}
}

// takeBatch takes the next batch from waiting (oldest first, not empty):
// the oldest job, of any size, then each next one while the batch holds
// fewer than hsmcmd.MaxBatch commands and the job fits maxBatchBytes. It
// returns the batch and the jobs left.
func takeBatch(waiting []*batchJob) (batch, left []*batchJob) {
	n, size := 1, batchItemSize(waiting[0])
	for n < len(waiting) && n < hsmcmd.MaxBatch && size+batchItemSize(waiting[n]) <= maxBatchBytes {
		size += batchItemSize(waiting[n])
		n++
	}
	batch = slices.Clone(waiting[:n])
	clear(waiting[:n])
	left = waiting[n:]
	if len(left) == 0 {
		left = waiting[:0] // the array is reused
	}
	return batch, left
}

// maxBatchBytes bounds the commands of one batch, so that the batch stays
// within one envelope's command (a Recipient command carries an
// attestation document of up to 256 KiB).
const maxBatchBytes = session.MaxCommandLen - 2

// batchItemSize is j's size in a CmdBatch: u16 type ‖ v24 command.
func batchItemSize(j *batchJob) int { return 2 + 3 + len(j.cmd) }

// runBatch sends jobs to an HSM, alone or as one CmdBatch, and sets each
// job's outcome.
func (h *Host) runBatch(ctx context.Context, jobs []*batchJob) {
	h.metrics.batches.Observe(float64(len(jobs)))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if len(jobs) == 1 {
		jobs[0].resp, jobs[0].err = h.hsms.Do(ctx, uint16(jobs[0].code), jobs[0].cmd)
		return
	}
	items := make([]hsmcmd.BatchItem, len(jobs))
	for i, j := range jobs {
		items[i] = hsmcmd.BatchItem{Code: j.code, Command: j.cmd}
	}
	fail := func(err error) {
		for _, j := range jobs {
			j.err = err
		}
	}
	req := hsmcmd.BatchRequest{Items: items}
	in, err := req.Marshal()
	if err != nil {
		fail(err)
		return
	}
	out, err := h.hsms.Do(ctx, uint16(req.Code()), in)
	clear(in)
	if err != nil {
		fail(err)
		return
	}
	res, err := hsmcmd.ParseBatchResponse(out, len(jobs))
	clear(out)
	if err != nil {
		fail(err)
		return
	}
	for i, j := range jobs {
		j.resp, j.err = res.Results[i].Response, res.Results[i].Err()
	}
}
