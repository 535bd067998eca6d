package node

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// A batch's commands are served at once on the HSM's cores, and their
// outcomes keep the commands' order: two commands that each wait for the
// other to start finish only if they run together.
func TestBatchServedConcurrently(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var started atomic.Int32
	both := make(chan struct{})
	m := handlers{
		hsmcmd.Random: func(r *session.Request) ([]byte, error) {
			if started.Add(1) == 2 {
				close(both)
			}
			select {
			case <-both:
			case <-time.After(10 * time.Second):
				return nil, errors.New("served alone")
			}
			return append([]byte("r:"), r.Command...), nil
		},
		hsmcmd.Encrypt: func(r *session.Request) ([]byte, error) { return nil, refused(hsmcmd.ErrMalformed) },
	}
	in, err := hsmcmd.BatchRequest{Items: []hsmcmd.BatchItem{
		{Code: hsmcmd.Random, Command: []byte("a")}, {Code: hsmcmd.Encrypt, Command: []byte("b")}, {Code: hsmcmd.Random, Command: []byte("c")},
	}}.Marshal()
	require.NoError(t, err)
	out, err := batchHandler(m, nil)(&session.Request{Type: uint16(hsmcmd.Batch), Command: in})
	require.NoError(t, err)
	resp, err := hsmcmd.ParseBatchResponse(out, 3)
	require.NoError(t, err)
	res := resp.Results
	assert.Equal(t, []byte("r:a"), res[0].Response)
	assert.NoError(t, res[0].Err())
	assert.ErrorIs(t, res[1].Err(), session.ErrRefused)
	assert.Equal(t, []byte("r:c"), res[2].Response)
	assert.NoError(t, res[2].Err())
}
