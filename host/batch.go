package host

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// The host batches the hierarchy commands of concurrent KMS requests: a
// few workers (one per HSM) each take the oldest waiting command and
// whatever else is waiting then (up to hsmcmd.MaxBatch) and send them in one
// CmdBatch envelope. A lone command goes alone, so one client sees no added
// latency; sixteen share the cost of each request to an HSM.

type batchJob struct {
	code hsmcmd.Code
	cmd  []byte
	resp []byte
	err  error
	done chan struct{}
}

type batcher struct {
	q       chan *batchJob
	workers sync.WaitGroup
	stopped chan struct{} // closed once every worker has returned
}

func newBatcher() *batcher {
	return &batcher{q: make(chan *batchJob, 1024), stopped: make(chan struct{})}
}

// start runs n workers of h until ctx ends.
func (b *batcher) start(ctx context.Context, h *Host, n int) {
	for range n {
		b.workers.Go(func() { h.batchWorker(ctx, b) })
	}
	go func() {
		b.workers.Wait()
		close(b.stopped)
	}()
}

// errStopped answers commands queued while the host stops.
var errStopped = errors.New("host: stopping")

// do queues one command and waits for its outcome.
func (b *batcher) do(ctx context.Context, code hsmcmd.Code, cmd []byte) ([]byte, error) {
	j := &batchJob{code: code, cmd: cmd, done: make(chan struct{})}
	select {
	case b.q <- j:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stopped:
		return nil, errStopped
	}
	// Once queued, the job is waited for even if ctx ends (the caller may
	// clear cmd when this returns; a worker bounds every batch's time),
	// unless no worker is left to serve it.
	select {
	case <-j.done:
		return j.resp, j.err
	case <-b.stopped:
		return nil, errStopped
	}
}

// maxBatchBytes bounds the commands of one batch, so that the batch stays
// within one envelope's command (a Recipient command carries an
// attestation document of up to 256 KiB).
const maxBatchBytes = session.MaxCommandLen - 2

// batchWorker serves the queue until ctx ends.
func (h *Host) batchWorker(ctx context.Context, b *batcher) {
	var carry *batchJob
	for {
		var jobs []*batchJob
		if jobs, carry = b.next(ctx, carry); jobs == nil {
			return
		}
		h.runBatch(ctx, jobs)
	}
}

// next forms a batch: carry (a job taken from the queue that did not fit
// the last batch) or else the oldest job, waited for, then whatever else
// is waiting, up to hsmcmd.MaxBatch commands and maxBatchBytes. It returns
// the batch and the job that did not fit it, or nil once ctx ends.
func (b *batcher) next(ctx context.Context, carry *batchJob) (jobs []*batchJob, left *batchJob) {
	first := carry
	if first == nil {
		select {
		case first = <-b.q:
		case <-ctx.Done():
			return nil, nil
		}
	}
	jobs = []*batchJob{first}
	size := batchItemSize(first)
	for len(jobs) < hsmcmd.MaxBatch {
		select {
		case j := <-b.q:
			if size+batchItemSize(j) > maxBatchBytes {
				return jobs, j
			}
			jobs = append(jobs, j)
			size += batchItemSize(j)
		default:
			return jobs, nil
		}
	}
	return jobs, nil
}

// batchItemSize is j's size in a CmdBatch: u16 type ‖ v24 command.
func batchItemSize(j *batchJob) int { return 2 + 3 + len(j.cmd) }

func (h *Host) runBatch(ctx context.Context, jobs []*batchJob) {
	h.metrics.batches.Observe(float64(len(jobs)))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	defer func() {
		for _, j := range jobs {
			close(j.done)
		}
	}()
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
