package hsmcmd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/session"
)

// Code is a command's type: the type field of the session Envelope that
// carries it (docs/protocol.md, Commands).
type Code uint16

// The command codes of protocol version 1.
const (
	Ping                Code = 1  // echo (liveness, benchmarks)
	Export              Code = 2  // a signed quorum command → the next domain token
	Import              Code = 3  // a domain token → the new state version
	ReencryptEKTs       Code = 4  // EKTs and HBK or key tokens → re-sealed under the active domain key
	DomainStatus        Code = 5  // → the domain state
	Random              Code = 6  // n bytes of the token's RNG
	CreateHBK           Code = 7  // a new HBK token
	Encrypt             Code = 8  // plaintext → blob
	GenerateDataKey     Code = 9  // a data key and its blob
	Decrypt             Code = 10 // blob → plaintext
	ReEncrypt           Code = 11 // blob → blob under another HBK or context
	Batch               Code = 12 // several batchable commands in one envelope
	CreateKeyPair       Code = 13 // an asymmetric, HMAC or ML-DSA key token
	Sign                Code = 14
	AsymDecrypt         Code = 15 // RSAES-OAEP
	GenerateMac         Code = 16
	VerifyMac           Code = 17
	DeriveSharedSecret  Code = 18 // ECDH
	GenerateDataKeyPair Code = 19
	Verify              Code = 20 // secp256k1, which the host cannot verify
	Recipient           Code = 21 // an inner command answered to a Nitro enclave
	ImportKeyMaterial   Code = 22 // wrapped key material → an HBK token and a check value
	ImportKeyToken      Code = 23 // wrapped asymmetric or HMAC key material → a key token, its public key and a check value

	// Multi-Region keys (replica.go).
	ExportReplica Code = 24 // a key's HBK tokens → a transport to a peer region's HSMs
	ImportReplica Code = 25 // a peer region's transport → HBK tokens under this domain
)

var codeNames = [...]string{
	Ping: "Ping", Export: "Export", Import: "Import", ReencryptEKTs: "ReencryptEKTs",
	DomainStatus: "DomainStatus", Random: "Random", CreateHBK: "CreateHBK", Encrypt: "Encrypt",
	GenerateDataKey: "GenerateDataKey", Decrypt: "Decrypt", ReEncrypt: "ReEncrypt", Batch: "Batch",
	CreateKeyPair: "CreateKeyPair", Sign: "Sign", AsymDecrypt: "AsymDecrypt", GenerateMac: "GenerateMac",
	VerifyMac: "VerifyMac", DeriveSharedSecret: "DeriveSharedSecret", GenerateDataKeyPair: "GenerateDataKeyPair",
	Verify: "Verify", Recipient: "Recipient", ImportKeyMaterial: "ImportKeyMaterial",
	ImportKeyToken: "ImportKeyToken", ExportReplica: "ExportReplica", ImportReplica: "ImportReplica",
}

// String is the command's name, or its number if version 1 has no such
// command.
func (c Code) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return "Code(" + strconv.Itoa(int(c)) + ")"
}

// Codes lists every command code of version 1, in order.
func Codes() []Code {
	out := make([]Code, 0, len(codeNames))
	for c := range codeNames {
		if codeNames[c] != "" {
			out = append(out, Code(c))
		}
	}
	return out
}

// Batchable reports whether commands of c may go in a Batch: the
// commands that change nothing another reads.
func (c Code) Batchable() bool {
	switch c {
	case Random, Encrypt, GenerateDataKey, Decrypt, ReEncrypt, Sign, AsymDecrypt, GenerateMac,
		VerifyMac, DeriveSharedSecret, Verify, Recipient:
		return true
	}
	return false
}

// RecipientInner reports whether c may be the inner command of a
// Recipient: those whose answer holds a plaintext.
func (c Code) RecipientInner() bool {
	switch c {
	case Random, GenerateDataKey, Decrypt, DeriveSharedSecret, GenerateDataKeyPair:
		return true
	}
	return false
}

// Request is a command a host sends: its code and its encoding.
type Request interface {
	Code() Code
	Marshal() ([]byte, error)
}

// ErrMalformed is wrapped by every Parse and Marshal refusal.
var ErrMalformed = errors.New("hsmcmd: malformed command")

// MaxMessage bounds a command or an answer: a session envelope's
// plaintext.
const MaxMessage = session.MaxCommandLen

func malformed(c Code, what string) error {
	return fmt.Errorf("%w: %v: %s", ErrMalformed, c, what)
}

// reader reads one message's fields, remembering the first failure.
type reader struct {
	s   cryptobyte.String
	c   Code
	err error
}

func newReader(c Code, in []byte) *reader { return &reader{s: cryptobyte.String(in), c: c} }

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = malformed(r.c, what)
	}
}

// v8, v16, v24 read a length-prefixed field of min to max bytes.
func (r *reader) v8(min, max int, what string) []byte {
	var f cryptobyte.String
	if r.err != nil || !r.s.ReadUint8LengthPrefixed(&f) || len(f) < min || len(f) > max {
		r.fail(what)
		return nil
	}
	return f
}

func (r *reader) v16(min, max int, what string) []byte {
	var f cryptobyte.String
	if r.err != nil || !r.s.ReadUint16LengthPrefixed(&f) || len(f) < min || len(f) > max {
		r.fail(what)
		return nil
	}
	return f
}

func (r *reader) v24(min, max int, what string) []byte {
	var f cryptobyte.String
	if r.err != nil || !r.s.ReadUint24LengthPrefixed(&f) || len(f) < min || len(f) > max {
		r.fail(what)
		return nil
	}
	return f
}

func (r *reader) u8(what string) uint8 {
	var v uint8
	if r.err != nil || !r.s.ReadUint8(&v) {
		r.fail(what)
	}
	return v
}

func (r *reader) u16(what string) uint16 {
	var v uint16
	if r.err != nil || !r.s.ReadUint16(&v) {
		r.fail(what)
	}
	return v
}

func (r *reader) u64(what string) uint64 {
	var v uint64
	if r.err != nil || !r.s.ReadUint64(&v) {
		r.fail(what)
	}
	return v
}

// rest reads the remaining bytes as the last field (min to max bytes).
func (r *reader) rest(min, max int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.s) < min || len(r.s) > max {
		r.fail(what)
		return nil
	}
	f := []byte(r.s)
	r.s = nil
	return f
}

// done is the Parse result: the first failure, or trailing bytes.
func (r *reader) done() error {
	if r.err == nil && !r.s.Empty() {
		r.fail("trailing bytes")
	}
	return r.err
}

// writer builds one message, refusing fields out of their bounds. Every
// field is flat (a length prefix and its bytes, or an integer), so it
// appends them itself, big-endian as cryptobyte's reader expects, with no
// builder or continuation per field: a command is marshalled on every KMS
// request (TestWriterMatchesCryptobyte holds it to cryptobyte's encoding).
type writer struct {
	buf []byte
	c   Code
	err error
}

func newWriter(c Code) *writer { return newWriterSize(c, 256) }

// newWriterSize is a writer with room for n bytes: a command that carries
// a caller's data (a plaintext, a blob, a batch) starts with room for all
// of it rather than growing on the way.
func newWriterSize(c Code, n int) *writer { return &writer{c: c, buf: make([]byte, 0, n)} }

func (w *writer) check(ok bool, what string) bool {
	if !ok && w.err == nil {
		w.err = malformed(w.c, what)
	}
	return ok && w.err == nil
}

func (w *writer) v8(f []byte, min, max int, what string) {
	if w.check(len(f) >= min && len(f) <= max && len(f) <= 0xff, what) {
		w.buf = append(append(w.buf, byte(len(f))), f...)
	}
}

func (w *writer) v16(f []byte, min, max int, what string) {
	if w.check(len(f) >= min && len(f) <= max && len(f) <= 0xffff, what) {
		w.buf = append(binary.BigEndian.AppendUint16(w.buf, uint16(len(f))), f...)
	}
}

func (w *writer) v24(f []byte, min, max int, what string) {
	if w.check(len(f) >= min && len(f) <= max && len(f) <= 0xffffff, what) {
		n := len(f)
		w.buf = append(append(w.buf, byte(n>>16), byte(n>>8), byte(n)), f...)
	}
}

func (w *writer) u8(v uint8)   { w.buf = append(w.buf, v) }
func (w *writer) u16(v uint16) { w.buf = binary.BigEndian.AppendUint16(w.buf, v) }
func (w *writer) u64(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }

func (w *writer) rest(f []byte, min, max int, what string) {
	if w.check(len(f) >= min && len(f) <= max, what) {
		w.buf = append(w.buf, f...)
	}
}

func (w *writer) bytes() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	return w.buf, nil
}

// result is a Parse function's outcome: m, or nil and the failure.
func result[T any](m *T, r *reader) (*T, error) {
	if err := r.done(); err != nil {
		return nil, err
	}
	return m, nil
}
