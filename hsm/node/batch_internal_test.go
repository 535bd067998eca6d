package node

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/session"
)

// A batch's commands are served at once on the HSM's cores, and their
// outcomes keep the commands' order: two commands that each wait for the
// other to start finish only if they run together.
func TestBatchServedConcurrently(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var started atomic.Int32
	both := make(chan struct{})
	handlers := map[uint16]session.CommandHandler{
		CmdRandom: func(r *session.Request) ([]byte, error) {
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
		CmdEncrypt: func(r *session.Request) ([]byte, error) { return nil, ErrKeyCommand },
	}
	in, err := MarshalBatch([]BatchItem{{Type: CmdRandom, Command: []byte("a")}, {Type: CmdEncrypt, Command: []byte("b")}, {Type: CmdRandom, Command: []byte("c")}})
	require.NoError(t, err)
	out, err := batchHandler(handlers, func(err error) error { return err })(&session.Request{Type: CmdBatch, Command: in})
	require.NoError(t, err)
	res, err := ParseBatchResults(out, 3)
	require.NoError(t, err)
	assert.Equal(t, []byte("r:a"), res[0].Command)
	assert.NoError(t, res[0].Err)
	assert.Error(t, res[1].Err)
	assert.Equal(t, []byte("r:c"), res[2].Command)
	assert.NoError(t, res[2].Err)
}
