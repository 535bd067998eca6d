package host

import (
	"context"
	"errors"
	"time"

	"github.com/trentkms/trent/hsmcmd"
)

// ApplyForTest proposes a raw raft entry (tests write key-store records
// the KMS API would not).
func (h *Host) ApplyForTest(data []byte) error {
	f := h.raft.Apply(data, 10*time.Second)
	if err := f.Error(); err != nil {
		return err
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	if f.Response() == nil {
		return errors.New("no response")
	}
	return nil
}

// HSMDoForTest runs one command as the KMS service does (hsmClient: the
// batcher, the session, the retry policy).
func (h *Host) HSMDoForTest(ctx context.Context, req hsmcmd.Request) ([]byte, error) {
	return (&hsmClient{h: h}).Do(ctx, req)
}

// SoleReadForTest reports whether a read barrier now would take the
// sole-voter path (no round).
func (h *Host) SoleReadForTest() bool {
	_, ok := h.soleReadIndex()
	return ok
}

// BeginMembershipForTest and EndMembershipForTest bracket a configuration
// change as AddVoter, RemoveServer and Restore are bracketed.
func (h *Host) BeginMembershipForTest() { h.beginMembership() }
func (h *Host) EndMembershipForTest()   { h.endMembership() }
