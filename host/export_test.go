package host

import (
	"errors"
	"time"
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
