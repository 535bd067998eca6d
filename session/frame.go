package session

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frames: the hot path's transport (docs/protocol.md, "Frames"). A host
// opens one TCP connection to each HSM, sends the 24-byte preface
// (FrameMagic ‖ FrameVersion) and the HSM answers with its own. Then each
// side sends frames:
//
//	u32 length (of what follows) ‖ u32 stream ‖ u8 kind ‖ body
//
// The host's frames carry a Hello or an Envelope under a stream number of
// its choosing, unique among its frames in flight on the connection; the
// HSM answers each on the same stream, in any order, with the Reply or
// Response (kind | frameOK) or an Alert (frameAlert). Each kind has a
// maximum body; a frame over it, of an unknown kind, or on stream 0 ends
// the connection. HTTP/2 (transport.go) stays for everything else: domain
// tokens, /metrics, tools, and peers that do not speak frames.
const (
	// FrameMagic starts the preface. Its NUL cannot start an HTTP/1
	// request or the HTTP/2 preface, so an HSM tells the two apart by the
	// first byte on the port it serves both on. With the version it is as
	// long as the HTTP/2 preface, which an HTTP server waits for in full
	// before it answers: an HSM that speaks only HTTP answers at once
	// (400), and the client falls back to HTTP/2.
	FrameMagic = "\x00TRENT-SESSION-FRAMES\r\n"
	// FrameVersion is the frame protocol's version.
	FrameVersion byte = 1

	framePrefaceLen = len(FrameMagic) + 1
	frameHeaderLen  = 4 + 4 + 1 // length ‖ stream ‖ kind
	frameMinLen     = 4 + 1     // stream ‖ kind: the length of an empty body

	frameHello    byte = 0x01 // host → HSM: a Hello
	frameEnvelope byte = 0x02 // host → HSM: an Envelope
	frameOK       byte = 0x80 // HSM → host: kind | frameOK, the Reply or Response
	frameAlert    byte = 0xFF // HSM → host: an Alert
)

// Errors of the frame layer. Both end the connection: a peer that sends
// them is broken or hostile, and the stream of frames cannot be resynced.
var (
	ErrFrame         = errors.New("session: malformed frame")
	ErrFrameTooLarge = errors.New("session: frame over its kind's bound")
)

// frameBodyLimit is the largest body a frame of kind may carry, or -1 for
// a kind that is not one.
func frameBodyLimit(kind byte) int {
	switch kind {
	case frameHello:
		return maxHelloBody
	case frameEnvelope:
		return maxEnvelopeBody
	case frameHello | frameOK:
		return maxReplyBody
	case frameEnvelope | frameOK:
		return maxResponseBody
	case frameAlert:
		return maxAlertSize
	}
	return -1
}

// isRequestKind reports whether kind is sent by hosts.
func isRequestKind(kind byte) bool { return kind == frameHello || kind == frameEnvelope }

// frame is one decoded frame. body is the frame's own buffer.
type frame struct {
	stream uint32
	kind   byte
	body   []byte
}

// appendFrame appends the encoding of a frame to dst. The caller keeps
// body within frameBodyLimit(kind).
func appendFrame(dst []byte, stream uint32, kind byte, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(frameMinLen+len(body)))
	dst = binary.BigEndian.AppendUint32(dst, stream)
	dst = append(dst, kind)
	return append(dst, body...)
}

// readFrame reads one frame from r, refusing, before reading its body, a
// frame whose kind is not one of request (if request) or of the answers
// (if not), whose stream is 0, or whose body is over its kind's bound.
// io.EOF means the connection ended cleanly between two frames; a
// connection that ends inside one is io.ErrUnexpectedEOF.
func readFrame(r *bufio.Reader, request bool) (frame, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(h[0:4])
	f := frame{stream: binary.BigEndian.Uint32(h[4:8]), kind: h[8]}
	limit := frameBodyLimit(f.kind)
	switch {
	case limit < 0 || isRequestKind(f.kind) != request:
		return frame{}, fmt.Errorf("%w: kind %#x", ErrFrame, f.kind)
	case f.stream == 0:
		return frame{}, fmt.Errorf("%w: stream 0", ErrFrame)
	case n < frameMinLen:
		return frame{}, fmt.Errorf("%w: length %d", ErrFrame, n)
	case n-frameMinLen > uint32(limit):
		return frame{}, fmt.Errorf("%w: kind %#x of %d bytes (at most %d)", ErrFrameTooLarge, f.kind, n-frameMinLen, limit)
	}
	f.body = make([]byte, n-frameMinLen)
	if _, err := io.ReadFull(r, f.body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	return f, nil
}

// framePreface is the preface of version v.
func framePreface(v byte) []byte { return append([]byte(FrameMagic), v) }

// errNotFrames means the peer answered the preface with something else: it
// does not speak frames (an HSM of an older release), so the client speaks
// HTTP/2 to it.
var errNotFrames = errors.New("session: the HSM does not speak frames")

// checkPreface checks a peer's framePrefaceLen-byte preface: errNotFrames if it is not
// one, ErrVersion if it is of another version.
func checkPreface(p []byte) error {
	if len(p) != framePrefaceLen || string(p[:len(FrameMagic)]) != FrameMagic {
		return errNotFrames
	}
	if p[len(FrameMagic)] != FrameVersion {
		return fmt.Errorf("%w: frames version %d", ErrVersion, p[len(FrameMagic)])
	}
	return nil
}
