package node

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// batchPrep prepares a batch's commands before any is served: for each
// command, a function that serves it in place of its handler (nil: the
// handler serves it), and a function to call once the batch is answered.
// A prep that has nothing to prepare returns nil for both.
type batchPrep func(items []hsmcmd.BatchItem) (serve []func() ([]byte, error), done func())

// batchHandler serves hsmcmd.Batch with the node's own handlers: each
// command as if it had come alone, failing alone. The commands of a batch
// are independent (none reads what another writes), so the HSM serves
// them on all its cores at once; the outcomes keep the commands' order.
// prep, if not nil, prepares each batch (the node's: Node.dataKeyDraw).
func batchHandler(m handlers, prep batchPrep) session.CommandHandler {
	return func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseBatchRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		items := req.Items
		var prepared []func() ([]byte, error)
		if prep != nil {
			var done func()
			if prepared, done = prep(items); done != nil {
				defer done()
			}
		}
		resp := hsmcmd.BatchResponse{Results: make([]hsmcmd.BatchResult, len(items))}
		serve := func(i int) {
			if prepared != nil && prepared[i] != nil {
				resp.Results[i] = hsmcmd.BatchResultOf(prepared[i]())
				return
			}
			sub := &session.Request{SessionID: r.SessionID, HostID: r.HostID, Seq: r.Seq, Type: uint16(items[i].Code), Command: items[i].Command}
			resp.Results[i] = hsmcmd.BatchResultOf(m[items[i].Code](sub))
		}
		// Workers take the next unserved command until none is left: a
		// Recipient command (two signature checks, an RSA encryption)
		// costs a hundred small ones, so a fixed split would leave cores
		// idle.
		// This goroutine is one of them, so a batch of two wakes one more
		// goroutine, not two.
		workers := min(len(items), runtime.GOMAXPROCS(0))
		var next atomic.Int64
		work := func() {
			for i := int(next.Add(1) - 1); i < len(items); i = int(next.Add(1) - 1) {
				serve(i)
			}
		}
		var wg sync.WaitGroup
		for range workers - 1 {
			wg.Go(work)
		}
		work()
		wg.Wait()
		out, err := resp.Marshal()
		for _, res := range resp.Results {
			clear(res.Response)
		}
		return out, err
	}
}
