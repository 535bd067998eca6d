package hsm

// The frame layer (docs/protocol.md, "Frames, version 1"), written from
// the document: the frame layer's checks dial the HSM themselves and write
// prefaces and frames byte by byte, so that an HSM's frames are compared
// with the document, not with the client hosts use (which carries the
// other checks' Hellos and Envelopes).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/trentkms/trent/conformance"
)

// Frames (docs/protocol.md, "Frames, version 1").
const (
	frameMagic   = "\x00TRENT-SESSION-FRAMES\r\n"
	frameVersion = 1

	frameHello    = 0x01
	frameEnvelope = 0x02
	frameReply    = 0x81
	frameResponse = 0x82
	frameAlert    = 0xff

	// The bounds of the kinds' bodies.
	maxHelloFrame    = 2048
	maxEnvelopeFrame = 1049206
	maxReplyFrame    = 4096
	maxResponseFrame = 1048625
	maxAlertFrame    = 264

	frameMinLen = 5 // stream and kind: the length of an empty body

	// frameEndWait is how long a check waits for the HSM to end a
	// connection it must end (at once: nothing is left to do on it).
	frameEndWait = 3 * time.Second
	// frameAnswerWait bounds the wait for a preface or an answer.
	frameAnswerWait = 10 * time.Second
)

const clauseFrames = spec + "#frames-version-1"

func framePreface(v byte) []byte { return append([]byte(frameMagic), v) }

// appendFrame appends a frame whose length field is length (5 + the
// body's, for a correct frame) to dst.
func appendFrame(dst []byte, length, stream uint32, kind byte, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, length)
	dst = binary.BigEndian.AppendUint32(dst, stream)
	return append(append(dst, kind), body...)
}

func frameOf(stream uint32, kind byte, body []byte) []byte {
	return appendFrame(nil, uint32(frameMinLen+len(body)), stream, kind, body)
}

// answerBound is the bound of an answer kind's body, or -1 for a kind
// that is not an HSM's.
func answerBound(kind byte) int {
	switch kind {
	case frameReply:
		return maxReplyFrame
	case frameResponse:
		return maxResponseFrame
	case frameAlert:
		return maxAlertFrame
	}
	return -1
}

// rawFrames is a frame connection the suite drives byte by byte.
type rawFrames struct {
	c net.Conn
	r *bufio.Reader
}

// dialFrames connects to the HSM and sends preface; a failure ends the
// check. The connection is closed when the check ends.
func (e *Env) dialFrames(t *conformance.T, preface []byte) *rawFrames {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(t.Context(), frameAnswerWait)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", e.addr)
	t.Require("connecting to "+e.addr, err)
	t.Cleanup(func(context.Context) error { c.Close(); return nil })
	f := &rawFrames{c: c, r: bufio.NewReader(c)}
	f.write(t, "the preface", preface)
	return f
}

// openFrames makes a frame connection: the preface of version 1 and the HSM's,
// which must be the same 24 bytes.
func (e *Env) openFrames(t *conformance.T) *rawFrames {
	f := e.dialFrames(t, framePreface(frameVersion))
	if p := f.preface(t); !bytes.Equal(p, framePreface(frameVersion)) {
		t.Mismatch("the HSM's answer to the preface of version 1", fmt.Sprintf("%x", framePreface(frameVersion)), fmt.Sprintf("%x", p))
	}
	return f
}

func (f *rawFrames) write(t *conformance.T, what string, b []byte) {
	f.c.SetWriteDeadline(time.Now().Add(frameAnswerWait))
	_, err := f.c.Write(b)
	t.Require("writing "+what, err)
}

// preface reads the HSM's 24-byte preface; a connection that ends or
// stays silent first fails the check.
func (f *rawFrames) preface(t *conformance.T) []byte {
	f.c.SetReadDeadline(time.Now().Add(frameAnswerWait))
	p := make([]byte, len(frameMagic)+1)
	n, err := io.ReadFull(f.r, p)
	if err != nil {
		t.Mismatch("the HSM's preface", "24 bytes: "+fmt.Sprintf("%x", framePreface(frameVersion)), fmt.Sprintf("%d bytes (%x), then %v", n, p[:n], err))
	}
	return p
}

// next reads one answer frame by the document: a kind that is not an
// HSM's, stream 0, a length below 5 or a body over its kind's bound is an
// error, as is a connection that ends or stays silent until deadline.
func (f *rawFrames) next(deadline time.Time) (stream uint32, kind byte, body []byte, err error) {
	f.c.SetReadDeadline(deadline)
	var h [9]byte
	if _, err := io.ReadFull(f.r, h[:]); err != nil {
		return 0, 0, nil, fmt.Errorf("reading a frame's header: %w", err)
	}
	n := binary.BigEndian.Uint32(h[0:4])
	stream, kind = binary.BigEndian.Uint32(h[4:8]), h[8]
	bound := answerBound(kind)
	switch {
	case bound < 0:
		return stream, kind, nil, fmt.Errorf("a frame of kind %02x, which an HSM does not send", kind)
	case stream == 0:
		return stream, kind, nil, errors.New("a frame on stream 0")
	case n < frameMinLen || n-frameMinLen > uint32(bound):
		return stream, kind, nil, fmt.Errorf("a frame of kind %02x with length %d (a body of 0 to %d bytes)", kind, n, bound)
	}
	body = make([]byte, n-frameMinLen)
	if _, err := io.ReadFull(f.r, body); err != nil {
		return stream, kind, nil, fmt.Errorf("reading a frame's body: %w", err)
	}
	return stream, kind, body, nil
}

// ended waits up to frameEndWait for the HSM to end the connection with
// nothing (more) sent: "" if it did, else what it did instead.
func (f *rawFrames) ended() string {
	f.c.SetReadDeadline(time.Now().Add(frameEndWait))
	got, err := io.ReadAll(io.LimitReader(f.r, 64))
	var ne net.Error
	switch {
	case len(got) > 0:
		return fmt.Sprintf("an answer: %d bytes (%x…)", len(got), got[:min(len(got), 16)])
	case err == nil: // EOF
		return ""
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("the connection still open after %s", frameEndWait)
	}
	return "" // reset: ended too
}

// expectEnd fails the check unless the HSM ends the connection with no
// answer.
func (f *rawFrames) expectEnd(t *conformance.T, what string) {
	if obs := f.ended(); obs != "" {
		t.Mismatch(what, "the connection ended without an answer", obs)
	}
}

func (e *Env) frameChecks() []conformance.Check {
	needs := []conformance.Capability{CapFrames}
	return []conformance.Check{{
		ID:        "HSM-FRM-001",
		Statement: "The frame preface of version 1 is answered with the same 24 bytes; a preface of another version (02) is answered with the HSM's own preface of version 1, and then the HSM ends the connection",
		Clause:    clauseFrames,
		Needs:     needs,
		Mutation:  "hsm.frames-other-version-served",
		Run: func(t *conformance.T) {
			e.openFrames(t)
			f := e.dialFrames(t, framePreface(2))
			if p := f.preface(t); !bytes.Equal(p, framePreface(frameVersion)) {
				t.Mismatch("the HSM's answer to the preface of version 2", fmt.Sprintf("its own preface of version 1 (%x)", framePreface(frameVersion)), fmt.Sprintf("%x", p))
			}
			f.expectEnd(t, "after its answer to the preface of version 2")
		},
	}, {
		ID:        "HSM-FRM-002",
		Statement: "A frame on stream 0 (carrying a correct Hello) ends the connection without an answer",
		Clause:    clauseFrames,
		Needs:     needs,
		Mutation:  "hsm.frames-stream-zero-served",
		Run: func(t *conformance.T) {
			f := e.openFrames(t)
			f.write(t, "a Hello frame on stream 0", frameOf(0, frameHello, e.newHello(t, nil, nil).raw))
			f.expectEnd(t, "a Hello frame on stream 0")
		},
	}, {
		ID:        "HSM-FRM-003",
		Statement: "A frame of a kind hosts do not send (03, unknown; 81 and ff, the HSM's own), carrying a correct Hello, ends the connection without an answer",
		Clause:    clauseFrames,
		Needs:     needs,
		Mutation:  "hsm.frames-unknown-kind-served",
		Run: func(t *conformance.T) {
			for _, kind := range []byte{0x03, frameReply, frameAlert} {
				f := e.openFrames(t)
				what := fmt.Sprintf("a frame of kind %02x", kind)
				f.write(t, what, frameOf(1, kind, e.newHello(t, nil, nil).raw))
				f.expectEnd(t, what)
			}
		},
	}, {
		ID:        "HSM-FRM-004",
		Statement: "A frame header with a length below 5, or whose body would be over its kind's bound (a Hello over 2,048 bytes, an Envelope over 1,049,206), ends the connection from the 9-byte header alone, before any body is sent; bodies at the bounds are answered on their stream",
		Clause:    clauseFrames,
		Needs:     needs,
		Mutation:  "hsm.frames-bound-unchecked",
		Run: func(t *conformance.T) {
			for _, c := range []struct {
				what   string
				length uint32
				kind   byte
			}{
				{"a frame header with length 4", 4, frameHello},
				{fmt.Sprintf("a Hello frame header for a body of %d bytes", maxHelloFrame+1), frameMinLen + maxHelloFrame + 1, frameHello},
				{fmt.Sprintf("an Envelope frame header for a body of %d bytes", maxEnvelopeFrame+1), frameMinLen + maxEnvelopeFrame + 1, frameEnvelope},
			} {
				f := e.openFrames(t)
				f.write(t, c.what, appendFrame(nil, c.length, 1, c.kind, nil))
				f.expectEnd(t, c.what+", with no body sent")
			}
			// At the bounds: bytes that are no Hello or Envelope, answered
			// (with an Alert, by any HSM that checks what the Alert checks
			// test).
			for _, c := range []struct {
				what       string
				kind, okAs byte
				n          int
			}{{"Hello", frameHello, frameReply, maxHelloFrame}, {"Envelope", frameEnvelope, frameResponse, maxEnvelopeFrame}} {
				f := e.openFrames(t)
				what := fmt.Sprintf("a %s frame of %d bytes of zeros on stream 1", c.what, c.n)
				want := fmt.Sprintf("an answer on stream 1 (kind ff or %02x)", c.okAs)
				f.write(t, what, frameOf(1, c.kind, make([]byte, c.n)))
				stream, kind, body, err := f.next(time.Now().Add(frameAnswerWait))
				if err != nil {
					t.Mismatch(what, want, err.Error())
				}
				if stream != 1 || kind != frameAlert && kind != c.okAs {
					t.Mismatch(what, want, fmt.Sprintf("a frame of kind %02x on stream %d (%d bytes)", kind, stream, len(body)))
				}
			}
		},
	}, {
		ID:        "HSM-FRM-005",
		Statement: "Every frame is answered exactly once, on its own stream whatever its number (2^32−1, 7, 2, 2^31, 65536, 3, 5), also with several frames in flight on the connection written at once, a refused one among them",
		Clause:    clauseFrames,
		Needs:     needs,
		Mutation:  "hsm.frames-stream-counted",
		Run: func(t *conformance.T) {
			f := e.openFrames(t)
			h := e.newHello(t, nil, nil)
			const helloStream = 0xFFFFFFFF
			before := time.Now().Unix()
			f.write(t, "a Hello frame", frameOf(helloStream, frameHello, h.raw))
			stream, kind, body, err := f.next(time.Now().Add(frameAnswerWait))
			if err != nil {
				t.Mismatch(fmt.Sprintf("the answer to a Hello frame on stream %d", uint32(helloStream)), "a Reply frame on its stream", err.Error())
			}
			if stream != helloStream || kind != frameReply {
				t.Mismatch(fmt.Sprintf("the answer to a Hello frame on stream %d", uint32(helloStream)), fmt.Sprintf("a Reply frame (81) on stream %d", uint32(helloStream)), fmt.Sprintf("kind %02x on stream %d", kind, stream))
			}
			s, _, err := e.sessionOf(h, body, before)
			t.Require("the session of the Reply", err)

			// Pings on several streams, the Hello's among them (it is no
			// longer in flight), and bytes that are no Envelope, refused,
			// written at once. Each Ping after the first has a session of
			// its own: an HSM may serve frames in flight in any order, and
			// whether it serves sequence numbers out of order is
			// HSM-RPL-004's question, not this check's.
			type sent struct {
				s       *session
				env     *envelope
				raw     []byte
				payload []byte // nil: refused
			}
			const refused = 5
			inFlight := map[uint32]*sent{}
			var wire []byte
			for _, st := range []uint32{7, 2, 1 << 31, helloStream, 65536, 3, refused} {
				if st == refused {
					raw := []byte("not an Envelope")
					inFlight[st] = &sent{raw: raw}
					wire = append(wire, frameOf(st, frameEnvelope, raw)...)
					continue
				}
				ps := s
				if len(inFlight) > 0 {
					ps = e.open(t)
				}
				payload := randomBytes(16)
				env := ps.envelope(commandPing).seal(ps.sk, payload)
				raw := env.marshal()
				inFlight[st] = &sent{s: ps, env: env, raw: raw, payload: payload}
				wire = append(wire, frameOf(st, frameEnvelope, raw)...)
			}
			f.write(t, fmt.Sprintf("%d Envelope frames", len(inFlight)), wire)
			deadline := time.Now().Add(frameAnswerWait)
			answered := map[uint32]bool{}
			for len(answered) < len(inFlight) {
				stream, kind, body, err := f.next(deadline)
				if err != nil {
					var missing []string
					for st := range inFlight {
						if !answered[st] {
							missing = append(missing, fmt.Sprint(st))
						}
					}
					slices.Sort(missing)
					t.Mismatch(fmt.Sprintf("the answers to %d frames in flight", len(inFlight)), "one on each stream", fmt.Sprintf("none yet on streams %s: %v", strings.Join(missing, ", "), err))
				}
				sn, ok := inFlight[stream]
				switch {
				case !ok:
					t.Mismatch("an answer's stream", "one of the frames in flight", fmt.Sprintf("stream %d", stream))
				case answered[stream]:
					t.Mismatch(fmt.Sprintf("the answers on stream %d", stream), "one", "two")
				}
				answered[stream] = true
				what := fmt.Sprintf("the answer on stream %d", stream)
				if sn.payload == nil {
					if _, aerr := parseAlert(body); kind != frameAlert || aerr != nil {
						t.Mismatch(what+", to bytes that are no Envelope", "an Alert frame", fmt.Sprintf("a frame of kind %02x (%d bytes)", kind, len(body)))
					}
					continue
				}
				if kind != frameResponse {
					t.Mismatch(what+", to a Ping", "a Response frame (82)", fmt.Sprintf("a frame of kind %02x (%d bytes)", kind, len(body)))
				}
				pt, err := openResponse(sn.s.sk, sn.raw, body, sn.env.SessionID, sn.env.Seq)
				if err != nil {
					t.Mismatch(what, fmt.Sprintf("the Response to the Envelope with seq %d sent on it", sn.env.Seq), err.Error())
				}
				if !bytes.Equal(pt, sn.payload) {
					t.Mismatch(what+": the Ping's echo", fmt.Sprintf("%x", sn.payload), fmt.Sprintf("%x", pt))
				}
			}
		},
	}}
}
