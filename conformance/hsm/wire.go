package hsm

// The protocol's objects as docs/protocol.md specifies them, written from
// the document with the Go standard library: the suite encodes and decodes
// nothing with package session (which only carries its bytes in frames,
// env.go), so that a disagreement between the HSM and the document is seen
// as one.

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
)

// Object types and sizes (docs/protocol.md, Conventions).
const (
	typeHello    = 0x01
	typeReply    = 0x02
	typeEKT      = 0x03
	typeEnvelope = 0x04
	typeResponse = 0x05
	typeAlert    = 0x07

	pointSize = 97
	nonceSize = 32
	sidSize   = 16
	keyIDSize = 16
	skSize    = 32
	eskSize   = 48
	tagSize   = 16

	versionHybrid     = 2    // the hybrid Hello's and Reply's header version
	kemKeySize        = 1568 // ML-KEM-1024 encapsulation key
	kemCiphertextSize = 1568
)

// Labels (docs/protocol.md, Conventions).
const (
	labelHello      = "trent/v1 session hello"
	labelReply      = "trent/v1 session reply"
	labelSessionID  = "trent/v1 session id"
	labelNK         = "trent/v1 session nk"
	labelTranscript = "trent/v1 session transcript"
	labelNKHybrid   = "trent/v1 session hybrid nk"
	labelEKT        = "trent/v1 ekt"
	labelEnvelope   = "trent/v1 envelope"
	labelResponse   = "trent/v1 response"
)

// Alert codes (docs/protocol.md, Alert).
const (
	alertMalformed        = 1
	alertVersion          = 2
	alertDomainMismatch   = 4
	alertClockSkew        = 5
	alertUnknownHost      = 6
	alertNotServiceHost   = 7
	alertBadSignature     = 9
	alertAuthentication   = 11
	alertKeyNotRetained   = 12
	alertExpired          = 14
	alertWrongHost        = 16
	alertSessionMismatch  = 17
	alertReplay           = 18
	alertRefused          = 23
	alertHybridRequired   = 26
	alertInvalidKEM       = 27
	commandPing           = 1
	commandExport         = 2
	commandImport         = 3
	commandDomainStatus   = 5
	pathHello             = "/trent/v1/hello"
	pathEnvelope          = "/trent/v1/envelope"
	pathToken             = "/trent/v1/token"
	maxClockSkewSeconds   = 300
	replayWindow          = 1024
	defaultValiditySecond = 3600
)

var alertNames = map[uint16]string{
	1: "malformed", 2: "unsupported version", 3: "invalid point", 4: "domain mismatch",
	5: "clock skew", 6: "unknown host", 7: "not a service host", 8: "not a member",
	9: "bad signature", 10: "bad reply", 11: "authentication failed", 12: "domain key not retained",
	13: "no active domain key", 14: "EKT expired", 15: "EKT not yet valid", 16: "wrong host",
	17: "session mismatch", 18: "replay", 19: "not a recipient", 20: "unknown command type",
	21: "internal HSM error", 22: "session closed", 23: "refused",
	24: "key token under a domain key not held", 25: "imported key material not valid",
	26: "hybrid required", 27: "invalid ML-KEM key or ciphertext",
}

func alertName(code uint16) string {
	if n, ok := alertNames[code]; ok {
		return fmt.Sprintf("Alert %d (%s)", code, n)
	}
	return fmt.Sprintf("Alert %d", code)
}

func header(typ byte) []byte { return []byte{'T', 'R', 'N', 'T', 1, typ} }

// headerV is the header of version v (the hybrid Hello and Reply: 2).
func headerV(v, typ byte) []byte { return []byte{'T', 'R', 'N', 'T', v, typ} }

func h384(parts ...[]byte) []byte {
	h := sha512.New384()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// labelled is H(label ‖ 0x00 ‖ parts…).
func labelled(label string, parts ...[]byte) []byte {
	return h384(append([][]byte{[]byte(label), {0}}, parts...)...)
}

// kdf is the one-step KDF: H(0x00000001 ‖ Z ‖ FixedInfo)[0:32].
func kdf(z, fixedInfo []byte) []byte { return h384([]byte{0, 0, 0, 1}, z, fixedInfo)[:32] }

func v8(b []byte) []byte    { return append([]byte{byte(len(b))}, b...) }
func len16(b []byte) []byte { return binary.BigEndian.AppendUint16(nil, uint16(len(b))) }
func u64(v uint64) []byte   { return binary.BigEndian.AppendUint64(nil, v) }
func u16(v uint16) []byte   { return binary.BigEndian.AppendUint16(nil, v) }
func len24(b []byte) []byte {
	n := len(b)
	return []byte{byte(n >> 16), byte(n >> 8), byte(n)}
}

func aesGCM(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic("conformance: " + err.Error())
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic("conformance: " + err.Error())
	}
	return a
}

// seqNonce is dir ‖ 00 00 00 ‖ u64(seq): dir 0 for envelopes, 1 for
// responses.
func seqNonce(dir byte, seq uint64) []byte { return append([]byte{dir, 0, 0, 0}, u64(seq)...) }

// reader walks a message by the field tables of docs/protocol.md.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || r.off+n > len(r.b) {
		if r.err == nil {
			r.err = errors.New("message too short")
		}
		return make([]byte, max(n, 0))
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}
func (r *reader) v8() []byte  { return r.take(int(r.take(1)[0])) }
func (r *reader) v16() []byte { return r.take(int(binary.BigEndian.Uint16(r.take(2)))) }
func (r *reader) v24() []byte {
	l := r.take(3)
	return r.take(int(l[0])<<16 | int(l[1])<<8 | int(l[2]))
}
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) header(typ byte) {
	if h := r.take(6); r.err == nil && !bytes.Equal(h, header(typ)) {
		r.err = fmt.Errorf("header %x, want %x", h, header(typ))
	}
}
func (r *reader) end() error {
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}

// helloFields are what a Hello carries.
type helloFields struct {
	Domain    string
	Version   uint64
	HostID    string
	Q1        []byte
	EK        []byte // set: a hybrid Hello (version 2) with this ML-KEM-1024 encapsulation key after Q1
	HostNonce []byte
	Time      uint64
}

// unsigned is hello_unsigned: every byte before sig1's length byte.
func (h *helloFields) unsigned() []byte {
	var b []byte
	if h.EK != nil {
		b = append(b, headerV(versionHybrid, typeHello)...)
	} else {
		b = append(b, header(typeHello)...)
	}
	b = append(b, v8([]byte(h.Domain))...)
	b = append(b, u64(h.Version)...)
	b = append(b, v8([]byte(h.HostID))...)
	b = append(b, h.Q1...)
	b = append(b, h.EK...)
	b = append(b, h.HostNonce...)
	return append(b, u64(h.Time)...)
}

// signHello returns the encoded Hello signed by key.
func signHello(h *helloFields, key crypto.Signer) ([]byte, error) {
	unsigned := h.unsigned()
	sig, err := key.Sign(rand.Reader, labelled(labelHello, unsigned), crypto.SHA384)
	if err != nil {
		return nil, fmt.Errorf("conformance: sign hello: %w", err)
	}
	return append(unsigned, v8(sig)...), nil
}

// reply is a decoded Reply, with the offsets the derivations need.
type reply struct {
	raw       []byte
	Hybrid    bool // version 2: CT is set
	HSMID     string
	Q2        []byte
	CT        []byte // the ML-KEM-1024 ciphertext
	HSMNonce  []byte
	SessionID []byte
	NotBefore uint64
	NotAfter  uint64
	ESK       []byte
	EKT       []byte
	Sig       []byte
	eskOff    int // reply[0:eskOff] is the transcript part
	sigOff    int // offset of sig2's length byte
}

func parseReply(b []byte) (*reply, error) {
	r := &reader{b: b}
	out := &reply{raw: b}
	if len(b) > 4 && b[4] == versionHybrid {
		out.Hybrid = true
		if h := r.take(6); r.err == nil && !bytes.Equal(h, headerV(versionHybrid, typeReply)) {
			r.err = fmt.Errorf("header %x", h)
		}
	} else {
		r.header(typeReply)
	}
	out.HSMID = string(r.v8())
	out.Q2 = r.take(pointSize)
	if out.Hybrid {
		out.CT = r.take(kemCiphertextSize)
	}
	out.HSMNonce = r.take(nonceSize)
	out.SessionID = r.take(sidSize)
	out.NotBefore, out.NotAfter = r.u64(), r.u64()
	out.eskOff = r.off
	out.ESK = r.take(eskSize)
	out.EKT = r.v16()
	out.sigOff = r.off
	out.Sig = r.v8()
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	if _, err := ecdh.P384().NewPublicKey(out.Q2); err != nil || out.Q2[0] != 4 {
		return nil, errors.New("reply: Q2 is not an uncompressed P-384 point")
	}
	return out, nil
}

// ekt is a decoded EKT.
type ekt struct {
	KeyID      []byte
	Nonce      []byte
	Ciphertext []byte
}

func parseEKT(b []byte) (*ekt, error) {
	r := &reader{b: b}
	r.header(typeEKT)
	e := &ekt{KeyID: r.take(keyIDSize), Nonce: r.take(12), Ciphertext: r.v16()}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("EKT: %w", err)
	}
	return e, nil
}

func (e *ekt) marshal() []byte {
	b := append(header(typeEKT), e.KeyID...)
	b = append(b, e.Nonce...)
	b = append(b, len16(e.Ciphertext)...)
	return append(b, e.Ciphertext...)
}

// sealEKT makes an EKT under key, as an HSM holding key would.
func sealEKT(key, keyID, sk []byte, hostID string, sid []byte, notBefore, notAfter uint64) []byte {
	nonce := randomBytes(12)
	pt := append(append([]byte(nil), sk...), v8([]byte(hostID))...)
	pt = append(pt, sid...)
	pt = append(pt, u64(notBefore)...)
	pt = append(pt, u64(notAfter)...)
	aad := append(append([]byte(labelEKT), 0), header(typeEKT)...)
	aad = append(aad, keyID...)
	return (&ekt{KeyID: keyID, Nonce: nonce, Ciphertext: aesGCM(key).Seal(nil, nonce, pt, aad)}).marshal()
}

// envelope is an Envelope's fields.
type envelope struct {
	EKT        []byte
	SessionID  []byte
	HostID     string
	Seq        uint64
	Type       uint16
	Ciphertext []byte
}

func (e *envelope) marshal() []byte {
	b := append(header(typeEnvelope), len16(e.EKT)...)
	b = append(b, e.EKT...)
	b = append(b, e.SessionID...)
	b = append(b, v8([]byte(e.HostID))...)
	b = append(b, u64(e.Seq)...)
	b = append(b, u16(e.Type)...)
	b = append(b, len24(e.Ciphertext)...)
	return append(b, e.Ciphertext...)
}

// seal sets the ciphertext: AES-256-GCM(sk, 00‖000000‖seq, command, aad).
func (e *envelope) seal(sk, command []byte) *envelope {
	aad := append([]byte(labelEnvelope), 0)
	aad = append(aad, h384(e.EKT)...)
	aad = append(aad, e.SessionID...)
	aad = append(aad, v8([]byte(e.HostID))...)
	aad = append(aad, u64(e.Seq)...)
	aad = append(aad, u16(e.Type)...)
	e.Ciphertext = aesGCM(sk).Seal(nil, seqNonce(0, e.Seq), command, aad)
	return e
}

// openResponse checks and opens the Response to request under sk.
func openResponse(sk, request, response []byte, sid []byte, seq uint64) ([]byte, error) {
	r := &reader{b: response}
	r.header(typeResponse)
	rsid := r.take(sidSize)
	rseq := r.u64()
	ct := r.v24()
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	if !bytes.Equal(rsid, sid) || rseq != seq {
		return nil, fmt.Errorf("response names session %x seq %d, the request %x seq %d", rsid, rseq, sid, seq)
	}
	aad := append([]byte(labelResponse), 0)
	aad = append(aad, h384(request)...)
	aad = append(aad, sid...)
	aad = append(aad, u64(seq)...)
	pt, err := aesGCM(sk).Open(nil, seqNonce(1, seq), ct, aad)
	if err != nil {
		return nil, errors.New("response does not open under SK with the request's AAD")
	}
	return pt, nil
}

// alert is a decoded Alert.
type alert struct {
	Code    uint16
	Message string
}

func parseAlert(b []byte) (*alert, error) {
	r := &reader{b: b}
	r.header(typeAlert)
	a := &alert{Code: r.u16(), Message: string(r.v8())}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("alert: %w", err)
	}
	return a, nil
}

// derived is what a host computes from its Hello and the HSM's Reply.
type derived struct {
	SessionID []byte // as derived
	Z, NK, TH []byte
	SK        []byte // nil if ESK did not open
}

// derive computes the session ID, Z, NK and TH from the spec and opens
// ESK; dk is the ML-KEM key of a hybrid Hello (nil for a classical one).
func derive(hello []byte, h *helloFields, d1 *ecdh.PrivateKey, dk *mlkem.DecapsulationKey1024, r *reply) (*derived, error) {
	hh := h384(hello)
	out := &derived{SessionID: labelled(labelSessionID, hh, r.Q2, r.HSMNonce)[:sidSize]}
	q2, err := ecdh.P384().NewPublicKey(r.Q2)
	if err != nil {
		return out, errors.New("Q2 is not a P-384 point")
	}
	if out.Z, err = d1.ECDH(q2); err != nil {
		return out, err
	}
	if r.Hybrid != (h.EK != nil) {
		return out, fmt.Errorf("a Reply of version %d to a Hello of version %d", r.raw[4], hello[4])
	}
	label := labelNK
	if r.Hybrid {
		zk, err := dk.Decapsulate(r.CT)
		if err != nil {
			return out, fmt.Errorf("ML-KEM ciphertext: %w", err)
		}
		out.Z = append(out.Z, zk...) // Z_ecdh ‖ Z_mlkem
		label = labelNKHybrid
	}
	fi := append([]byte(label), 0)
	fi = append(fi, v8([]byte(h.HostID))...)
	fi = append(fi, v8([]byte(r.HSMID))...)
	fi = append(fi, h.Q1...)
	fi = append(fi, r.Q2...)
	if r.Hybrid {
		fi = append(fi, h384(h.EK)...)
		fi = append(fi, h384(r.CT)...)
	}
	fi = append(fi, h.HostNonce...)
	fi = append(fi, r.HSMNonce...)
	out.NK = kdf(out.Z, fi)
	out.TH = labelled(labelTranscript, hh, r.raw[:r.eskOff])
	if out.SK, err = aesGCM(out.NK).Open(nil, make([]byte, 12), r.ESK, out.TH); err != nil {
		return out, errors.New("ESK does not open under NK = KDF(Z, FixedInfo) with AAD = TH")
	}
	return out, nil
}

// verifyReply checks sig2 with the HSM's signing key.
func verifyReply(hello []byte, r *reply, key *ecdsa.PublicKey) bool {
	return ecdsa.VerifyASN1(key, labelled(labelReply, h384(hello), r.raw[:r.sigOff]), r.Sig)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("conformance: " + err.Error())
	}
	return b
}

// hostNonce is a random host nonce without zero bytes (the checks that
// need zero bytes make their own).
func hostNonce() []byte {
	b := randomBytes(nonceSize)
	for i := range b {
		for b[i] == 0 {
			b[i] = randomBytes(1)[0]
		}
	}
	return b
}
