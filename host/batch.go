package host

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// The host batches the hierarchy commands of concurrent KMS requests. At
// most n batches are in flight to the HSMs at once (Config.HSMBatchWorkers,
// one per HSM by default). A command that finds fewer in flight leads a
// batch on its caller's goroutine; one that finds n waits. When a batch is
// answered, its sender hands the lead to the caller of the oldest waiting
// command. A leader yields the processor once (so that requests ready to
// run then can add their commands, even on a single-threaded host), then
// takes its command and those waiting (up to hsmcmd.MaxBatch and
// maxBatchBytes, oldest first) and sends them as one CmdBatch envelope. So
// a lone command goes alone with no goroutine between its caller and the
// HSM, sixteen share each request to an HSM, and no goroutine waits for
// work.

type batchJob struct {
	code hsmcmd.Code
	cmd  []byte
	resp []byte
	err  error
	done chan struct{} // closed once resp and err are set
	lead chan struct{} // this job's caller is to lead the next batch
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
		b.lead(j)
	default:
		j.lead = make(chan struct{}, 1)
		b.waiting = append(b.waiting, j)
		b.mu.Unlock()
		select {
		case <-j.lead:
			b.lead(j)
		case <-j.done:
		}
	}
	<-j.done
	return j.resp, j.err
}

// lead sends first and the commands waiting as a batch, hands the lead to
// the oldest command still waiting (or frees the slot), then lets the
// batch's callers have their outcomes.
func (b *batcher) lead(first *batchJob) {
	// A yield, not a wait: with nothing else ready to run it returns at
	// once. Requests that are ready queue their commands meanwhile, and
	// go in this batch instead of waiting for the next one.
	runtime.Gosched()
	b.mu.Lock()
	var jobs []*batchJob
	jobs, b.waiting = takeBatch(first, b.waiting)
	b.mu.Unlock()
	if b.ctx.Err() != nil {
		for _, j := range jobs {
			j.err = errStopped
		}
	} else {
		b.send(b.ctx, jobs)
	}
	b.mu.Lock()
	var next *batchJob
	if len(b.waiting) > 0 {
		next = b.waiting[0]
		n := copy(b.waiting, b.waiting[1:]) // the array is reused
		b.waiting[n] = nil
		b.waiting = b.waiting[:n]
	} else {
		b.running--
	}
	b.mu.Unlock()
	if next != nil {
		next.lead <- struct{}{} // buffered: its caller is waiting for it
	}
	for _, j := range jobs {
		close(j.done)
	}
}

// takeBatch takes a batch: first, of any size, then each job of waiting
// (oldest first) while the batch holds fewer than hsmcmd.MaxBatch commands
// and the job fits maxBatchBytes. It returns the batch and the jobs left.
func takeBatch(first *batchJob, waiting []*batchJob) (batch, left []*batchJob) {
	n, size := 0, batchItemSize(first)
	for n < len(waiting) && n+1 < hsmcmd.MaxBatch && size+batchItemSize(waiting[n]) <= maxBatchBytes {
		size += batchItemSize(waiting[n])
		n++
	}
	batch = make([]*batchJob, 0, n+1)
	batch = append(append(batch, first), waiting[:n]...)
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
