package vectors

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"strings"
)

// Generators of the session objects (docs/protocol.md, Handshake, EKT,
// Envelope, Response, One-pass, Alert), from the spec's primitives.

const (
	vTime     = 1767225600 // 2026-01-01T00:00:00Z
	vValidity = 3600
	vDomain   = "example-domain"
	vVersion  = 7
	vHost     = "host-1"
	vHSM      = "hsm-1"
	vHSM2     = "hsm-2"

	labHello      = "trent/v1 session hello"
	labReply      = "trent/v1 session reply"
	labSessionID  = "trent/v1 session id"
	labNK         = "trent/v1 session nk"
	labTranscript = "trent/v1 session transcript"
	labEKT        = "trent/v1 ekt"
	labEnvelope   = "trent/v1 envelope"
	labResponse   = "trent/v1 response"
	labOnePassSig = "trent/v1 onepass sig"
	labOnePassKEK = "trent/v1 onepass kek"
	labOnePassAAD = "trent/v1 onepass wrap"
)

// world is the fixed domain of the session vectors: the same names, so the
// same keys, as session/testdata/.
type world struct {
	host, host2, hsm, hsm2, hsm3 *ecdsa.PrivateKey
	hsmAgree, hsm2Agree          *ecdh.PrivateKey
	d1, d2, dE                   *ecdh.PrivateKey
	hostNonce, hsmRandom         []byte
	dkID, dk, dk2ID, dk2         []byte
}

func newWorld() *world {
	return &world{
		host: signingKey("host-1 identity"), host2: signingKey("host-2 identity"),
		hsm: signingKey("hsm-1 signing"), hsm2: signingKey("hsm-2 signing"), hsm3: signingKey("hsm-3 signing"),
		hsmAgree: ecdhKey("hsm-1 agreement"), hsm2Agree: ecdhKey("hsm-2 agreement"),
		d1: ecdhKey("d1"), d2: ecdhKey("d2"), dE: ecdhKey("dE"),
		hostNonce: rng("host nonce", 32), hsmRandom: rng("hsm", 76),
		dkID: rng("dk id", 16), dk: rng("dk", 32), dk2ID: rng("dk-2 id", 16), dk2: rng("dk-2", 32),
	}
}

// hello is a Hello's fields.
type hello struct {
	domain, host   string
	version, time  uint64
	q1, nonce, sig []byte
}

func (h *hello) unsigned() []byte {
	return cat(hdr(1), v8([]byte(h.domain)), u64(h.version), v8([]byte(h.host)), h.q1, h.nonce, u64(h.time))
}
func (h *hello) enc() []byte                  { return cat(h.unsigned(), v8(h.sig)) }
func (h *hello) signWith(k *ecdsa.PrivateKey) { h.sig = sign(k, labHello, h.unsigned()) }

func (w *world) baseHello() *hello {
	h := &hello{domain: vDomain, host: vHost, version: vVersion, time: vTime, q1: w.d1.PublicKey().Bytes(), nonce: w.hostNonce}
	h.signWith(w.host)
	return h
}

// reply is a Reply's fields.
type reply struct {
	hsmID          string
	q2, nonce, sid []byte
	nb, na         uint64
	esk, ekt, sig  []byte
}

func (r *reply) transcript() []byte {
	return cat(hdr(2), v8([]byte(r.hsmID)), r.q2, r.nonce, r.sid, u64(r.nb), u64(r.na))
}
func (r *reply) unsigned() []byte { return cat(r.transcript(), r.esk, v16(r.ekt)) }
func (r *reply) enc() []byte      { return cat(r.unsigned(), v8(r.sig)) }
func (r *reply) signWith(k *ecdsa.PrivateKey, helloRaw []byte) {
	r.sig = sign(k, labReply, h384(helloRaw), r.unsigned())
}

// ekt is an EKT's fields and contents.
type ekt struct {
	keyID, nonce, ct []byte
}

func (e *ekt) enc() []byte { return cat(hdr(3), e.keyID, e.nonce, v16(e.ct)) }

func ektPlain(sk []byte, host string, sid []byte, nb, na uint64) []byte {
	return cat(sk, v8([]byte(host)), sid, u64(nb), u64(na))
}

func ektAAD(keyID []byte) []byte { return cat(lab(labEKT), []byte("TRNT"), []byte{1, 3}, keyID) }

func sealEKT(dk, keyID, nonce, plain []byte) *ekt {
	return &ekt{keyID: keyID, nonce: nonce, ct: seal(dk, nonce, plain, ektAAD(keyID))}
}

// handshake is every value of one run of the handshake.
type handshake struct {
	hello                 []byte
	hsmID                 string
	hostID                string
	q1, q2, hostNonce     []byte
	hsmNonce, sk, ektNonc []byte
	sid, z, nk, th        []byte
	nb, na                uint64
	plain                 []byte
	ekt                   *ekt
	r                     *reply
}

// runHandshake answers helloRaw (whose fields are h) as hsmID with the
// world's d2, HSM random bytes and domain key.
func (w *world) runHandshake(h *hello, hsmID string, signer *ecdsa.PrivateKey, now, validity uint64) *handshake {
	raw := h.enc()
	x := &handshake{hello: raw, hsmID: hsmID, hostID: h.host, q1: h.q1, q2: w.d2.PublicKey().Bytes(), hostNonce: h.nonce}
	x.hsmNonce, x.sk, x.ektNonc = w.hsmRandom[:32], w.hsmRandom[32:64], w.hsmRandom[64:]
	x.sid = labelled(labSessionID, h384(raw), x.q2, x.hsmNonce)[:16]
	x.z = ecdhZ(w.d2, h.q1)
	x.nk = kdf(x.z, cat(lab(labNK), v8([]byte(h.host)), v8([]byte(hsmID)), h.q1, x.q2, h.nonce, x.hsmNonce))
	x.nb, x.na = now, now+validity
	x.r = &reply{hsmID: hsmID, q2: x.q2, nonce: x.hsmNonce, sid: x.sid, nb: x.nb, na: x.na}
	x.th = labelled(labTranscript, h384(raw), x.r.transcript())
	x.r.esk = seal(x.nk, zeros(12), x.sk, x.th)
	x.plain = ektPlain(x.sk, h.host, x.sid, x.nb, x.na)
	x.ekt = sealEKT(w.dk, w.dkID, x.ektNonc, x.plain)
	x.r.ekt = x.ekt.enc()
	x.r.signWith(signer, raw)
	return x
}

// envelope is an Envelope's fields.
type envelope struct {
	ekt, sid []byte
	host     string
	seq      uint64
	typ      uint16
	ct       []byte
}

func (e *envelope) enc() []byte {
	return cat(hdr(4), v16(e.ekt), e.sid, v8([]byte(e.host)), u64(e.seq), u16(e.typ), v24(e.ct))
}

func seqNonce(dir byte, seq uint64) []byte { return cat([]byte{dir, 0, 0, 0}, u64(seq)) }

func envelopeAAD(ektRaw, sid []byte, host string, seq uint64, typ uint16) []byte {
	return cat(lab(labEnvelope), h384(ektRaw), sid, v8([]byte(host)), u64(seq), u16(typ))
}

func sealEnvelope(sk, ektRaw, sid []byte, host string, seq uint64, typ uint16, cmd []byte) *envelope {
	return &envelope{ekt: ektRaw, sid: sid, host: host, seq: seq, typ: typ,
		ct: seal(sk, seqNonce(0, seq), cmd, envelopeAAD(ektRaw, sid, host, seq, typ))}
}

func responseAAD(request, sid []byte, seq uint64) []byte {
	return cat(lab(labResponse), h384(request), sid, u64(seq))
}

func responseEnc(sid []byte, seq uint64, ct []byte) []byte {
	return cat(hdr(5), sid, u64(seq), v24(ct))
}

// onePass is a one-pass message's fields.
type onePass struct {
	sender  string
	qe, ctx []byte
	count   int // -1: len(entries)
	entries []opEntry
	sig     []byte
}

type opEntry struct {
	id string
	ct []byte
}

func (m *onePass) unsigned() []byte {
	n := m.count
	if n < 0 {
		n = len(m.entries)
	}
	out := cat(hdr(6), v8([]byte(m.sender)), m.qe, v16(m.ctx), []byte{byte(n)})
	for _, e := range m.entries {
		out = cat(out, v8([]byte(e.id)), v24(e.ct))
	}
	return out
}
func (m *onePass) enc() []byte                  { return cat(m.unsigned(), v8(m.sig)) }
func (m *onePass) signWith(k *ecdsa.PrivateKey) { m.sig = sign(k, labOnePassSig, m.unsigned()) }

func onePassKEK(z []byte, sender, recipient string, qe []byte) []byte {
	return kdf(z, cat(lab(labOnePassKEK), v8([]byte(sender)), v8([]byte(recipient)), qe))
}

func onePassAAD(sender, recipient string, qe, ctx []byte) []byte {
	return cat(lab(labOnePassAAD), v8([]byte(sender)), v8([]byte(recipient)), qe, h384(ctx))
}

type opRecipient struct {
	id string
	k  *ecdh.PrivateKey
}

// sealOnePass wraps payload for rs (in the order given: the caller sorts).
func sealOnePass(sender string, signer *ecdsa.PrivateKey, dE *ecdh.PrivateKey, ctx, payload []byte, rs []opRecipient) *onePass {
	qe := dE.PublicKey().Bytes()
	m := &onePass{sender: sender, qe: qe, ctx: ctx, count: -1}
	for _, r := range rs {
		kek := onePassKEK(ecdhZ(dE, r.k.PublicKey().Bytes()), sender, r.id, qe)
		m.entries = append(m.entries, opEntry{r.id, seal(kek, zeros(12), payload, onePassAAD(sender, r.id, qe, ctx))})
	}
	m.signWith(signer)
	return m
}

// offCurve is a 97-byte uncompressed encoding of a point not on P-384.
func offCurve(p []byte) []byte { return flip(p, -1) }

func longID(c string, n int) string { return strings.Repeat(c, n) }
