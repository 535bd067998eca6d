package node

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// batchHandler serves hsmcmd.Batch with the node's own handlers: each
// command as if it had come alone, failing alone. The commands of a batch
// are independent (none reads what another writes), so the HSM serves
// them on all its cores at once; the outcomes keep the commands' order.
func batchHandler(m handlers) session.CommandHandler {
	return func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseBatchRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		items := req.Items
		resp := hsmcmd.BatchResponse{Results: make([]hsmcmd.BatchResult, len(items))}
		serve := func(i int) {
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
