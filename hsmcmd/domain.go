package hsmcmd

import (
	"errors"
	"github.com/trentkms/trent/session"
)

// Ping, the domain operations (docs/protocol.md, "Domain operations on
// the wire") and Random:
//
//	Ping           payload (0 to MaxPing bytes)        → the same bytes
//	Export         signed quorum command               → the next domain token
//	Import         domain token                        → u64 the HSM's new state version
//	ReencryptEKTs  u16 n (0 to MaxReencryptBatch) ‖ n × v16 item (1 to MaxReencryptItem)
//	               → u16 n ‖ n × (u16 alert code, 0 for success ‖ v16 EKT, empty on failure)
//	DomainStatus   empty                               → the encoded domain state (empty if none)
//	Random         u16 n (1 to MaxRandom)              → n bytes of the token's RNG

// Limits of these commands.
const (
	// MaxPing bounds a Ping's payload.
	MaxPing = 1024
	// MaxRandom bounds Random (KMS's GenerateRandom allows 1024 bytes)
	// and a data key's size.
	MaxRandom = 1024
	// MaxTokenSize bounds a domain token on the wire (in Import, out of
	// Export, and at PathToken).
	MaxTokenSize = 1 << 20
	// MaxReencryptBatch bounds the EKTs of one ReencryptEKTs.
	MaxReencryptBatch = 4096
	// MaxReencryptItem bounds one item of a ReencryptEKTs: an EKT, an HBK
	// token or a key token (an RSA-4096 key token is several KiB), so the
	// largest key token.
	MaxReencryptItem = MaxKeyToken
)

// PathToken is where an HSM takes a domain token outside any session: a
// restarted or new HSM has no domain, so no host can open a session with
// it; the token authenticates itself. The body is a domain token (at most
// MaxTokenSize bytes), the answer an ImportResponse.
const PathToken = "/trent/v1/token"

// ErrStaleToken is the HSM's refusal (Alert 23, its text leading the
// Alert's message) of a token whose state it holds already, or an older
// one: the normal answer to a host's periodic resync, which a host need
// not report.
var ErrStaleToken = errors.New("hsmcmd: token is not newer than the HSM's state")

// PingRequest echoes Payload.
type PingRequest struct {
	Payload []byte // at most MaxPing bytes
}

func (PingRequest) Code() Code { return Ping }

func (m PingRequest) Marshal() ([]byte, error) {
	w := newWriter(Ping)
	w.rest(m.Payload, 0, MaxPing, "payload")
	return w.bytes()
}

// ParsePingRequest decodes a Ping.
func ParsePingRequest(in []byte) (*PingRequest, error) {
	r := newReader(Ping, in)
	m := &PingRequest{Payload: r.rest(0, MaxPing, "payload")}
	return result(m, r)
}

// PingResponse is the echoed payload.
type PingResponse struct {
	Payload []byte // at most MaxPing bytes
}

func (m PingResponse) Marshal() ([]byte, error) {
	w := newWriter(Ping)
	w.rest(m.Payload, 0, MaxPing, "payload")
	return w.bytes()
}

// ParsePingResponse decodes a Ping's answer.
func ParsePingResponse(in []byte) (*PingResponse, error) {
	r := newReader(Ping, in)
	m := &PingResponse{Payload: r.rest(0, MaxPing, "payload")}
	return result(m, r)
}

// ExportRequest asks for the domain token of a signed quorum command's
// next state, without enacting it.
type ExportRequest struct {
	// SignedCommand is an encoded quorum.SignedCommand (1 to MaxMessage
	// bytes; the HSM parses it).
	SignedCommand []byte
}

func (ExportRequest) Code() Code { return Export }

func (m ExportRequest) Marshal() ([]byte, error) {
	w := newWriter(Export)
	w.rest(m.SignedCommand, 1, MaxMessage, "signed command")
	return w.bytes()
}

// ParseExportRequest decodes an Export.
func ParseExportRequest(in []byte) (*ExportRequest, error) {
	r := newReader(Export, in)
	m := &ExportRequest{SignedCommand: r.rest(1, MaxMessage, "signed command")}
	return result(m, r)
}

// ExportResponse is the next domain token.
type ExportResponse struct {
	Token []byte // 1 to MaxTokenSize bytes
}

func (m ExportResponse) Marshal() ([]byte, error) {
	w := newWriter(Export)
	w.rest(m.Token, 1, MaxTokenSize, "token")
	return w.bytes()
}

// ParseExportResponse decodes an Export's answer.
func ParseExportResponse(in []byte) (*ExportResponse, error) {
	r := newReader(Export, in)
	m := &ExportResponse{Token: r.rest(1, MaxTokenSize, "token")}
	return result(m, r)
}

// ImportRequest gives the HSM a domain token.
type ImportRequest struct {
	Token []byte // 1 to MaxTokenSize bytes
}

func (ImportRequest) Code() Code { return Import }

func (m ImportRequest) Marshal() ([]byte, error) {
	w := newWriter(Import)
	w.rest(m.Token, 1, MaxTokenSize, "token")
	return w.bytes()
}

// ParseImportRequest decodes an Import.
func ParseImportRequest(in []byte) (*ImportRequest, error) {
	r := newReader(Import, in)
	m := &ImportRequest{Token: r.rest(1, MaxTokenSize, "token")}
	return result(m, r)
}

// ImportResponse is the version of the state the HSM adopted (also the
// answer at PathToken).
type ImportResponse struct {
	Version uint64
}

func (m ImportResponse) Marshal() ([]byte, error) {
	w := newWriter(Import)
	w.u64(m.Version)
	return w.bytes()
}

// ParseImportResponse decodes an Import's answer.
func ParseImportResponse(in []byte) (*ImportResponse, error) {
	r := newReader(Import, in)
	m := &ImportResponse{Version: r.u64("version")}
	return result(m, r)
}

// ReencryptEKTsRequest asks for EKTs (and HBK or key tokens) re-sealed
// under the active domain key.
type ReencryptEKTsRequest struct {
	EKTs [][]byte // at most MaxReencryptBatch, each 1 to MaxReencryptItem bytes
}

func (ReencryptEKTsRequest) Code() Code { return ReencryptEKTs }

func (m ReencryptEKTsRequest) Marshal() ([]byte, error) {
	w := newWriter(ReencryptEKTs)
	if !w.check(len(m.EKTs) <= MaxReencryptBatch, "count") {
		return nil, w.err
	}
	w.u16(uint16(len(m.EKTs)))
	for _, e := range m.EKTs {
		w.v16(e, 1, MaxReencryptItem, "EKT")
	}
	return w.bytes()
}

// ParseReencryptEKTsRequest decodes a ReencryptEKTs; the EKTs are copies.
func ParseReencryptEKTsRequest(in []byte) (*ReencryptEKTsRequest, error) {
	r := newReader(ReencryptEKTs, in)
	n := int(r.u16("count"))
	if n > MaxReencryptBatch {
		r.fail("count")
	}
	m := &ReencryptEKTsRequest{EKTs: make([][]byte, 0, min(n, MaxReencryptBatch))}
	for range n {
		e := r.v16(1, MaxReencryptItem, "EKT")
		if r.err != nil {
			break
		}
		m.EKTs = append(m.EKTs, append([]byte(nil), e...))
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return m, nil
}

// EKTResult is the outcome of one EKT of a ReencryptEKTs.
type EKTResult struct {
	Alert uint16 // 0 for success, else the alert code of the refusal
	EKT   []byte // on success, 1 to MaxReencryptItem bytes; empty on failure
}

// Err is the refusal as session.Alert's error, or nil.
func (r EKTResult) Err() error {
	if r.Alert == 0 {
		return nil
	}
	return (&session.Alert{Code: r.Alert}).Err()
}

// ReencryptEKTsResponse holds one result per EKT, in order.
type ReencryptEKTsResponse struct {
	Results []EKTResult // at most MaxReencryptBatch
}

func (m ReencryptEKTsResponse) Marshal() ([]byte, error) {
	w := newWriter(ReencryptEKTs)
	if !w.check(len(m.Results) <= MaxReencryptBatch, "count") {
		return nil, w.err
	}
	w.u16(uint16(len(m.Results)))
	for _, res := range m.Results {
		if res.Alert != 0 {
			w.u16(res.Alert)
			w.v16(res.EKT, 0, 0, "EKT of a failure")
		} else {
			w.u16(0)
			w.v16(res.EKT, 1, MaxReencryptItem, "EKT")
		}
	}
	return w.bytes()
}

// ParseReencryptEKTsResponse decodes a ReencryptEKTs' answer; the EKTs
// are copies.
func ParseReencryptEKTsResponse(in []byte) (*ReencryptEKTsResponse, error) {
	r := newReader(ReencryptEKTs, in)
	n := int(r.u16("count"))
	if n > MaxReencryptBatch {
		r.fail("count")
	}
	m := &ReencryptEKTsResponse{Results: make([]EKTResult, 0, min(n, MaxReencryptBatch))}
	for range n {
		code := r.u16("alert code")
		e := r.v16(0, MaxReencryptItem, "EKT")
		if r.err == nil && (code == 0) == (len(e) == 0) {
			r.fail("result")
		}
		if r.err != nil {
			break
		}
		res := EKTResult{Alert: code}
		if code == 0 {
			res.EKT = append([]byte(nil), e...)
		}
		m.Results = append(m.Results, res)
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return m, nil
}

// EKTs and Errs split the results as a caller walks them: the i-th EKT
// (nil on failure) and the i-th refusal (nil on success).
func (m *ReencryptEKTsResponse) EKTs() [][]byte {
	out := make([][]byte, len(m.Results))
	for i, r := range m.Results {
		out[i] = r.EKT
	}
	return out
}

// Errs: see EKTs.
func (m *ReencryptEKTsResponse) Errs() []error {
	out := make([]error, len(m.Results))
	for i, r := range m.Results {
		out[i] = r.Err()
	}
	return out
}

// DomainStatusRequest asks for the domain state; it has no fields.
type DomainStatusRequest struct{}

func (DomainStatusRequest) Code() Code { return DomainStatus }

func (DomainStatusRequest) Marshal() ([]byte, error) { return []byte{}, nil }

// ParseDomainStatusRequest decodes a DomainStatus: nothing.
func ParseDomainStatusRequest(in []byte) (*DomainStatusRequest, error) {
	r := newReader(DomainStatus, in)
	return result(&DomainStatusRequest{}, r)
}

// DomainStatusResponse is the encoded domain state.
type DomainStatusResponse struct {
	State []byte // 0 (no domain) to MaxMessage bytes
}

func (m DomainStatusResponse) Marshal() ([]byte, error) {
	w := newWriter(DomainStatus)
	w.rest(m.State, 0, MaxMessage, "state")
	return w.bytes()
}

// ParseDomainStatusResponse decodes a DomainStatus' answer.
func ParseDomainStatusResponse(in []byte) (*DomainStatusResponse, error) {
	r := newReader(DomainStatus, in)
	m := &DomainStatusResponse{State: r.rest(0, MaxMessage, "state")}
	return result(m, r)
}

// RandomRequest asks for Size bytes of the token's RNG.
type RandomRequest struct {
	Size uint16 // 1 to MaxRandom
}

func (RandomRequest) Code() Code { return Random }

func (m RandomRequest) Marshal() ([]byte, error) {
	w := newWriter(Random)
	if w.check(m.Size >= 1 && m.Size <= MaxRandom, "size") {
		w.u16(m.Size)
	}
	return w.bytes()
}

// ParseRandomRequest decodes a Random.
func ParseRandomRequest(in []byte) (*RandomRequest, error) {
	r := newReader(Random, in)
	m := &RandomRequest{Size: r.u16("size")}
	if r.err == nil && (m.Size < 1 || m.Size > MaxRandom) {
		r.fail("size")
	}
	return result(m, r)
}

// RandomResponse is the random bytes.
type RandomResponse struct {
	Bytes []byte // 1 to MaxRandom bytes
}

func (m RandomResponse) Marshal() ([]byte, error) {
	w := newWriter(Random)
	w.rest(m.Bytes, 1, MaxRandom, "bytes")
	return w.bytes()
}

// ParseRandomResponse decodes a Random's answer.
func ParseRandomResponse(in []byte) (*RandomResponse, error) {
	r := newReader(Random, in)
	m := &RandomResponse{Bytes: r.rest(1, MaxRandom, "bytes")}
	return result(m, r)
}
