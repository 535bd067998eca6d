package session

import (
	"bufio"
	"context"
	"crypto"
)

// ResignReply signs r as an HSM would (a buggy or malicious one, in tests).
func ResignReply(r *Reply, hello []byte, signer crypto.Signer) ([]byte, error) {
	unsigned, err := r.unsigned()
	if err != nil {
		return nil, err
	}
	return sign(signer, labelReply, hash384(hello), unsigned)
}

// Frame kinds and codec, for the frame tests.
const (
	FrameHello    = frameHello
	FrameEnvelope = frameEnvelope
	FrameOK       = frameOK
	FrameAlert    = frameAlert
)

// AppendFrame and ReadFrame are the frame codec.
var AppendFrame = appendFrame

func ReadFrame(r *bufio.Reader, request bool) (stream uint32, kind byte, body []byte, err error) {
	f, err := readFrame(r, request)
	return f.stream, f.kind, f.body, err
}

// FrameBodyLimit is a kind's bound.
var FrameBodyLimit = frameBodyLimit

// ExchangeForTest sends one frame of kind to the HSM at index i.
func (c *Client) ExchangeForTest(ctx context.Context, i int, kind byte, body []byte) ([]byte, error) {
	return c.exchange(ctx, i, kind, body)
}
