package hsmcmd

import (
	"github.com/trentkms/trent/session"
)

// Batch carries several commands in one envelope, so that a busy host
// pays for one request to the HSM rather than one each:
//
//	in:  u16 n (1 to MaxBatch) ‖ n × (u16 command type ‖ v24 command)
//	out: u16 n ‖ n × (u16 alert code, 0 for success ‖ v24 response, empty on failure)
//
// Only Batchable commands may be batched; each is served as if it had
// come alone and fails alone. A command or response is at most
// MaxMessage bytes, and the whole batch one envelope's plaintext.

// MaxBatch bounds the commands of one batch.
const MaxBatch = 64

// BatchItem is one command of a batch.
type BatchItem struct {
	Code    Code   // a Batchable code
	Command []byte // its encoding, at most MaxMessage bytes
}

// BatchRequest is a batch of commands.
type BatchRequest struct {
	Items []BatchItem // 1 to MaxBatch
}

func (BatchRequest) Code() Code { return Batch }

func (m BatchRequest) Marshal() ([]byte, error) {
	n := 2
	for _, it := range m.Items {
		n += 5 + len(it.Command)
	}
	w := newWriterSize(Batch, n)
	if !w.check(len(m.Items) >= 1 && len(m.Items) <= MaxBatch, "count") {
		return nil, w.err
	}
	w.u16(uint16(len(m.Items)))
	for _, it := range m.Items {
		if !it.Code.Batchable() {
			w.check(false, "command "+it.Code.String()+" cannot be batched")
			break
		}
		w.u16(uint16(it.Code))
		w.v24(it.Command, 0, MaxMessage, "command")
	}
	return w.bytes()
}

// ParseBatchRequest decodes a batch; the commands alias in.
func ParseBatchRequest(in []byte) (*BatchRequest, error) {
	r := newReader(Batch, in)
	n := int(r.u16("count"))
	if r.err == nil && (n < 1 || n > MaxBatch) {
		r.fail("count")
	}
	m := &BatchRequest{}
	for i := 0; i < n && r.err == nil; i++ {
		c := Code(r.u16("command type"))
		if r.err == nil && !c.Batchable() {
			r.fail("command " + c.String() + " cannot be batched")
		}
		cmd := r.v24(0, MaxMessage, "command")
		m.Items = append(m.Items, BatchItem{Code: c, Command: cmd})
	}
	return result(m, r)
}

// BatchResult is the outcome of one command of a batch.
type BatchResult struct {
	Alert    uint16 // 0 for success, else the alert code of the refusal
	Response []byte // on success, at most MaxMessage bytes; empty on failure
}

// Err is the refusal as session.Alert's error, or nil.
func (r BatchResult) Err() error {
	if r.Alert == 0 {
		return nil
	}
	return (&session.Alert{Code: r.Alert}).Err()
}

// BatchResultOf is the result of a command served with answer resp and
// error err (the alert code session.AlertFor gives err).
func BatchResultOf(resp []byte, err error) BatchResult {
	if err != nil {
		return BatchResult{Alert: session.AlertFor(err).Code}
	}
	return BatchResult{Response: resp}
}

// BatchResponse holds one result per command, in the batch's order.
type BatchResponse struct {
	Results []BatchResult // at most MaxBatch
}

func (m BatchResponse) Marshal() ([]byte, error) {
	n := 2
	for _, res := range m.Results {
		n += 5 + len(res.Response)
	}
	w := newWriterSize(Batch, n)
	if !w.check(len(m.Results) <= MaxBatch, "count") {
		return nil, w.err
	}
	w.u16(uint16(len(m.Results)))
	for _, res := range m.Results {
		w.u16(res.Alert)
		if res.Alert != 0 {
			w.v24(res.Response, 0, 0, "response of a failure")
		} else {
			w.v24(res.Response, 0, MaxMessage, "response")
		}
	}
	return w.bytes()
}

// ParseBatchResponse decodes the outcomes of a batch of n commands; the
// responses are copies.
func ParseBatchResponse(in []byte, n int) (*BatchResponse, error) {
	r := newReader(Batch, in)
	count := int(r.u16("count"))
	if r.err == nil && (count != n || count > MaxBatch) {
		r.fail("result count")
	}
	m := &BatchResponse{}
	for i := 0; i < count && r.err == nil; i++ {
		code := r.u16("alert code")
		resp := r.v24(0, MaxMessage, "response")
		if r.err == nil && code != 0 && len(resp) != 0 {
			r.fail("response of a failure")
		}
		res := BatchResult{Alert: code}
		if code == 0 {
			res.Response = append([]byte{}, resp...)
		}
		m.Results = append(m.Results, res)
	}
	return result(m, r)
}
