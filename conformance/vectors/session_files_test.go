package vectors

import (
	"crypto/ecdsa"
)

// The session vector files.

const (
	rolePlain = "service-host"
	roleOther = "kms-operator"
	roleNone  = "none"
)

var keyNote = "Private scalars are SHA-384(\"trent vector key \" || name) and random bytes SHAKE256(\"trent vector rng \" || name); ECDSA signatures are deterministic (RFC 6979) so that the files are reproducible: verify signatures, do not compare them with your own."

func genHello(w *world) *vfile {
	f := &vfile{name: "hello.json", object: "Hello", spec: "docs/protocol.md#hello-host--hsm-type-0x01", prefix: "hello",
		notes: []string{
			"A Hello is checked by an HSM whose domain view is given by the view_* fields: the domain name and state version, its clock, and one operator (view_host_id with role view_host_role and public key view_host_public_key; role \"none\" means the view has no such operator).",
			"An HSM checks in this order: the encoding (identifiers, Q1 on P-384, lengths, nothing after sig1), domain and state version, time within 300 s of its clock, the host is an operator, the host holds the service-host role, sig1.",
			keyNote,
		},
		fields: []fieldDoc{
			{"hello", tHex, "the encoded Hello (input)"},
			{"domain", tStr, "decoded: domain"}, {"state_version", tInt, "decoded: state_version"},
			{"host_id", tStr, "decoded: host_id"}, {"q1", tHex, "decoded: Q1 (97 bytes)"},
			{"host_nonce", tHex, "decoded: host_nonce"}, {"time", tInt, "decoded: time (Unix seconds)"},
			{"sig1", tHex, "decoded: sig1 (DER)"},
			{"hello_unsigned", tHex, "every byte before sig1's length byte"},
			{"sig1_digest", tHex, "SHA-384(\"trent/v1 session hello\" || 00 || hello_unsigned): the digest sig1 signs"},
			{"host_signing_scalar", tHex, "the host's P-384 signing scalar (how the vector was made)"},
			{"d1_scalar", tHex, "the host's ephemeral scalar d1 (how the vector was made)"},
			{"view_domain", tStr, "the HSM's domain name"}, {"view_state_version", tInt, "the HSM's state version"},
			{"view_time", tInt, "the HSM's clock, Unix seconds"},
			{"view_host_id", tStr, "the operator in the HSM's view"}, {"view_host_role", tStr, "its role (service-host, kms-operator or none)"},
			{"view_host_public_key", tHex, "its ECDSA P-384 public key, uncompressed point"},
		},
	}
	view := func(domain string, version, now uint64, host, role string, key *ecdsa.PrivateKey) func(*vtest) *vtest {
		return func(t *vtest) *vtest {
			return t.s("view_domain", domain).n("view_state_version", version).n("view_time", now).
				s("view_host_id", host).s("view_host_role", role).h("view_host_public_key", point(key))
		}
	}
	std := view(vDomain, vVersion, vTime, vHost, rolePlain, w.host)
	good := func(comment string, h *hello, v func(*vtest) *vtest) {
		t := f.add(comment, "").h("hello", h.enc()).s("domain", h.domain).n("state_version", h.version).
			s("host_id", h.host).h("q1", h.q1).h("host_nonce", h.nonce).n("time", h.time).h("sig1", h.sig).
			h("hello_unsigned", h.unsigned()).h("sig1_digest", labelled(labHello, h.unsigned())).
			h("host_signing_scalar", scalar("host-1 identity")).h("d1_scalar", scalar("d1"))
		v(t)
	}
	base := w.baseHello()
	good("host-1's Hello of session/testdata/handshake.txt", base, std)
	long := w.baseHello()
	long.domain, long.host = longID("d", 64), longID("h", 64)
	long.signWith(w.host)
	good("64-byte domain and host identifiers (the maximum)", long, view(long.domain, vVersion, vTime, long.host, rolePlain, w.host))
	short := w.baseHello()
	short.domain, short.host = "d", "!"
	short.signWith(w.host)
	good("1-byte identifiers (the minimum; '!' is 0x21, the lowest allowed byte)", short, view("d", vVersion, vTime, "!", rolePlain, w.host))
	for _, d := range []int64{300, -300} {
		h := w.baseHello()
		h.time = uint64(int64(vTime) + d)
		h.signWith(w.host)
		good("time exactly 300 s from the HSM's clock (the limit, accepted)", h, std)
	}

	bad := func(comment, reason string, h *hello, v func(*vtest) *vtest) {
		v(f.add(comment, reason).h("hello", h.enc()))
	}
	headerCasesV(f, "the Hello", base.enc(), 0x02, std, "hello", 3)
	mut := func(m func(h *hello)) *hello {
		h := w.baseHello()
		m(h)
		h.signWith(w.host)
		return h
	}
	bad("host_id contains a space", "bad-identifier", mut(func(h *hello) { h.host = "host 1" }), std)
	bad("host_id of 65 bytes (maximum 64)", "length-over-maximum", mut(func(h *hello) { h.host = longID("h", 65) }), std)
	bad("empty host_id (minimum 1 byte)", "length-under-minimum", mut(func(h *hello) { h.host = "" }), std)
	bad("domain of 65 bytes (maximum 64)", "length-over-maximum", mut(func(h *hello) { h.domain = longID("d", 65) }), std)
	bad("domain contains 0x7f", "bad-identifier", mut(func(h *hello) { h.domain = "example\x7fdomain" }), std)
	bad("Q1 is not on P-384 (last byte of Y changed)", "invalid-point", mut(func(h *hello) { h.q1 = offCurve(h.q1) }), std)
	bad("Q1 starts 0x02 (compressed marker) in a 97-byte field", "invalid-point", mut(func(h *hello) { h.q1 = setByte(h.q1, 0, 2) }), std)
	bad("Q1 is 97 zero bytes", "invalid-point", mut(func(h *hello) { h.q1 = zeros(97) }), std)
	bad("sig1 of 105 bytes (maximum 104)", "length-over-maximum", mut(func(h *hello) {}).withSig(fill(105, 0x30)), std)
	bad("sig1 of 7 bytes (minimum 8)", "length-under-minimum", mut(func(h *hello) {}).withSig(fill(7, 0x30)), std)
	{
		h := w.baseHello()
		raw := h.enc()
		raw = setByte(raw, len(h.unsigned()), byte(len(h.sig)+1))
		std(f.add("sig1's length byte one more than the bytes that follow", "truncated").h("hello", raw))
	}
	{
		h := w.baseHello()
		h.sig = flip(h.sig, -1)
		bad("sig1 with its last byte changed", "bad-signature", h, std)
	}
	{
		h := w.baseHello()
		h.signWith(w.host2)
		bad("sig1 made by another key (host-2 identity)", "bad-signature", h, std)
	}
	{
		h := w.baseHello()
		h.sig = sign(w.host, labReply, h.unsigned())
		bad("sig1 made with the Reply's label \"trent/v1 session reply\"", "bad-signature", h, std)
	}
	bad("Hello for another domain", "domain-mismatch", mut(func(h *hello) { h.domain = "other-domain" }), std)
	bad("Hello for state version 6; the HSM is at 7", "domain-mismatch", mut(func(h *hello) { h.version = 6 }), std)
	bad("time 301 s after the HSM's clock", "clock-skew", mut(func(h *hello) { h.time = vTime + 301 }), std)
	bad("time 301 s before the HSM's clock", "clock-skew", mut(func(h *hello) { h.time = vTime - 301 }), std)
	bad("host-9 is not an operator of the domain", "unknown-host", mut(func(h *hello) { h.host = "host-9" }), std)
	bad("host-1 is an operator without the service-host role", "not-service-host", base, view(vDomain, vVersion, vTime, vHost, roleOther, w.host))
	return f
}

func (h *hello) withSig(sig []byte) *hello { h.sig = sig; return h }

func genReply(w *world) *vfile {
	f := &vfile{name: "reply.json", object: "Reply", spec: "docs/protocol.md#reply-hsm--host-type-0x02", prefix: "reply",
		notes: []string{
			"Each test is the host's check of a Reply to its Hello: the host made hello with host_signing_scalar, d1_scalar and the nonce and time inside it; its domain view holds one member HSM, view_hsm_id with signing key view_hsm_public_key.",
			"Valid tests give every input of the HSM (hsm_signing_scalar, d2_scalar, hsm_random = hsm_nonce || SK || ekt_nonce, dk_id, dk, time, validity_seconds) and every intermediate value, so both ends can be checked; the EKT is the one in ekt.json.",
			"The host checks in this order: the encoding (Q2 on P-384, the EKT's encoding), hsm_id is a member, sig2, session_id, not_after > not_before, then opens ESK.",
			keyNote,
		},
		fields: []fieldDoc{
			{"hello", tHex, "the host's encoded Hello (input)"},
			{"host_signing_scalar", tHex, "the host's signing scalar"}, {"d1_scalar", tHex, "the host's ephemeral scalar d1"},
			{"view_hsm_id", tStr, "the member HSM in the host's view"}, {"view_hsm_public_key", tHex, "its signing key, uncompressed point"},
			{"hsm_signing_scalar", tHex, "the HSM's signing scalar (dHSK)"}, {"d2_scalar", tHex, "the HSM's ephemeral scalar d2"},
			{"hsm_random", tHex, "the HSM's 76 random bytes: hsm_nonce (32) || SK (32) || ekt_nonce (12)"},
			{"dk_id", tHex, "the active domain key's ID"}, {"dk", tHex, "the active domain key"},
			{"time", tInt, "the HSM's clock: not_before"}, {"validity_seconds", tInt, "not_after - not_before"},
			{"hsm_id", tStr, "decoded: hsm_id"}, {"q2", tHex, "decoded: Q2"}, {"hsm_nonce", tHex, "decoded: hsm_nonce"},
			{"not_before", tInt, "decoded: not_before"}, {"not_after", tInt, "decoded: not_after"},
			{"z", tHex, "the ECDH shared secret (X coordinate)"}, {"nk", tHex, "NK = KDF(Z, FixedInfo)"},
			{"session_id", tHex, "the session ID"}, {"transcript_hash", tHex, "TH, the AAD of ESK"},
			{"sk", tHex, "the session key SK"}, {"esk", tHex, "ESK"}, {"ekt", tHex, "the encoded EKT"},
			{"reply", tHex, "the encoded Reply (input of the host's check)"},
		},
	}
	base := w.baseHello()
	common := func(t *vtest, h *hello, hsmID string, k *ecdsa.PrivateKey) *vtest {
		return t.h("hello", h.enc()).h("host_signing_scalar", scalar("host-1 identity")).h("d1_scalar", scalar("d1")).
			s("view_hsm_id", hsmID).h("view_hsm_public_key", point(k))
	}
	good := func(comment string, h *hello, hsmID string, validity uint64) *handshake {
		x := w.runHandshake(h, hsmID, w.hsm, vTime, validity)
		t := common(f.add(comment, ""), h, hsmID, w.hsm)
		t.h("hsm_signing_scalar", scalar("hsm-1 signing")).h("d2_scalar", scalar("d2")).h("hsm_random", w.hsmRandom).
			h("dk_id", w.dkID).h("dk", w.dk).n("time", vTime).n("validity_seconds", validity).
			s("hsm_id", hsmID).h("q2", x.q2).h("hsm_nonce", x.hsmNonce).n("not_before", x.nb).n("not_after", x.na).
			h("z", x.z).h("nk", x.nk).h("session_id", x.sid).h("transcript_hash", x.th).h("sk", x.sk).
			h("esk", x.r.esk).h("ekt", x.r.ekt).h("reply", x.r.enc())
		return x
	}
	x := good("hsm-1's Reply of session/testdata/handshake.txt", base, vHSM, vValidity)
	long := w.baseHello()
	long.host = longID("h", 64)
	long.signWith(w.host)
	good("a 64-byte host ID and HSM ID, validity 1 second", long, "hsm-"+longID("x", 60), 1)

	std := func(t *vtest) *vtest { return common(t, base, vHSM, w.hsm) }
	headerCasesV(f, "the Reply", x.r.enc(), 0x01, std, "reply", 3)
	bad := func(comment, reason string, r *reply) { std(f.add(comment, reason)).h("reply", r.enc()) }
	mut := func(m func(r *reply), signer *ecdsa.PrivateKey) *reply {
		y := w.runHandshake(base, vHSM, w.hsm, vTime, vValidity)
		m(y.r)
		y.r.signWith(signer, base.enc())
		return y.r
	}
	bad("Q2 is not on P-384", "invalid-point", mut(func(r *reply) { r.q2 = offCurve(r.q2) }, w.hsm))
	bad("hsm_id contains a space", "bad-identifier", mut(func(r *reply) { r.hsmID = "hsm 1" }, w.hsm))
	bad("hsm_id of 65 bytes", "length-over-maximum", mut(func(r *reply) { r.hsmID = longID("x", 65) }, w.hsm))
	bad("hsm-3, not a member of the host's view, signs its Reply", "not-member", mut(func(r *reply) { r.hsmID = "hsm-3" }, w.hsm3))
	{
		r := mut(func(*reply) {}, w.hsm)
		r.sig = flip(r.sig, -1)
		bad("sig2 with its last byte changed", "bad-signature", r)
	}
	bad("sig2 made by hsm-2's key for hsm-1's Reply", "bad-signature", mut(func(*reply) {}, w.hsm2))
	{
		r := mut(func(*reply) {}, w.hsm)
		r.sig = sign(w.hsm, labReply, r.unsigned())
		bad("sig2 over the Reply alone, without H(hello)", "bad-signature", r)
	}
	bad("session_id with one bit changed (re-signed; ESK made with the changed transcript)", "bad-session-id", mut(func(r *reply) {
		r.sid = flip(r.sid, 0)
		r.esk = seal(w.runHandshake(base, vHSM, w.hsm, vTime, vValidity).nk, zeros(12), w.hsmRandom[32:64], labelled(labTranscript, h384(base.enc()), r.transcript()))
	}, w.hsm))
	bad("not_after equal to not_before (re-signed)", "bad-validity", mut(func(r *reply) { r.na = r.nb }, w.hsm))
	bad("not_after before not_before (re-signed)", "bad-validity", mut(func(r *reply) { r.na = r.nb - 1 }, w.hsm))
	bad("ESK with its last byte (tag) changed (re-signed)", "bad-tag", mut(func(r *reply) { r.esk = flip(r.esk, -1) }, w.hsm))
	bad("ESK sealed with the transcript hash of the Reply alone, without H(hello) (re-signed)", "wrong-aad", mut(func(r *reply) {
		r.esk = seal(w.runHandshake(base, vHSM, w.hsm, vTime, vValidity).nk, zeros(12), w.hsmRandom[32:64], labelled(labTranscript, r.transcript()))
	}, w.hsm))
	bad("EKT field of 513 bytes (maximum 512)", "length-over-maximum", mut(func(r *reply) { r.ekt = (&ekt{keyID: w.dkID, nonce: zeros(12), ct: fill(513-36, 1)}).enc() }, w.hsm))
	bad("empty EKT field (minimum 1 byte)", "length-under-minimum", mut(func(r *reply) { r.ekt = nil }, w.hsm))
	bad("the EKT inside has the Envelope's type byte (re-signed)", "bad-embedded-object", mut(func(r *reply) { r.ekt = setByte(r.ekt, 5, 4) }, w.hsm))
	{
		r := mut(func(*reply) {}, w.hsm)
		r.sig = fill(105, 0x30)
		bad("sig2 of 105 bytes", "length-over-maximum", r)
	}
	return f
}

func genEKT(w *world) *vfile {
	f := &vfile{name: "ekt.json", object: "EKT", spec: "docs/protocol.md#ekt-type-0x03", prefix: "ekt",
		notes: []string{
			"The checking HSM retains the domain keys dk (dk_id) and dk2 (dk2_id) and has dk3 (dk3_id) active. A valid EKT opens with the key it names and, re-encrypted (command 4, ReencryptEKTs) with reencrypt_nonce, gives reencrypted_ekt under dk3.",
			"An EKT whose contents do not decode (bad-plaintext) is refused as malformed when an HSM opens it for an Envelope.",
			keyNote,
		},
		fields: []fieldDoc{
			{"dk_id", tHex, "retained domain key ID"}, {"dk", tHex, "retained domain key"},
			{"dk2_id", tHex, "another retained domain key's ID"}, {"dk2", tHex, "that key"},
			{"dk3_id", tHex, "the active domain key's ID"}, {"dk3", tHex, "the active domain key"},
			{"ekt_nonce", tHex, "the EKT's nonce"}, {"sk", tHex, "SK"}, {"host_id", tStr, "the session's host"},
			{"session_id", tHex, "the session ID"}, {"not_before", tInt, "validity start"}, {"not_after", tInt, "validity end"},
			{"ekt_plaintext", tHex, "SK || v8(host_id) || session_id || u64(not_before) || u64(not_after)"},
			{"aad", tHex, "\"trent/v1 ekt\" || 00 || \"TRNT\" 01 03 || key_id"},
			{"ekt", tHex, "the encoded EKT (input)"},
			{"reencrypt_nonce", tHex, "the nonce the re-encryption draws"},
			{"reencrypted_ekt", tHex, "the same contents under dk3 with reencrypt_nonce"},
		},
	}
	dk3ID, dk3 := rng("dk-3 id", 16), rng("dk-3", 32)
	rn := rng("reencrypt nonce", 12)
	keys := func(t *vtest) *vtest {
		return t.h("dk_id", w.dkID).h("dk", w.dk).h("dk2_id", w.dk2ID).h("dk2", w.dk2).h("dk3_id", dk3ID).h("dk3", dk3).h("reencrypt_nonce", rn)
	}
	x := w.runHandshake(w.baseHello(), vHSM, w.hsm, vTime, vValidity)
	good := func(comment, host string) {
		plain := ektPlain(x.sk, host, x.sid, x.nb, x.na)
		e := sealEKT(w.dk, w.dkID, x.ektNonc, plain)
		re := sealEKT(dk3, dk3ID, rn, plain)
		keys(f.add(comment, "")).h("ekt_nonce", x.ektNonc).h("sk", x.sk).s("host_id", host).h("session_id", x.sid).
			n("not_before", x.nb).n("not_after", x.na).h("ekt_plaintext", plain).h("aad", ektAAD(w.dkID)).
			h("ekt", e.enc()).h("reencrypted_ekt", re.enc())
	}
	good("the EKT of session/testdata/handshake.txt", vHost)
	good("a 64-byte host ID in the contents", longID("h", 64))

	ctx := func(t *vtest) *vtest { return keys(t).h("session_id", x.sid).s("host_id", vHost) }
	headerCases(f, "the EKT", x.ekt.enc(), 0x04, ctx, "ekt")
	bad := func(comment, reason string, e []byte) { ctx(f.add(comment, reason)).h("ekt", e) }
	bad("ciphertext of 15 bytes (minimum 16)", "length-under-minimum", (&ekt{w.dkID, x.ektNonc, fill(15, 1)}).enc())
	bad("ciphertext of 257 bytes (maximum 256)", "length-over-maximum", (&ekt{w.dkID, x.ektNonc, fill(257, 1)}).enc())
	bad("ciphertext's last byte (tag) changed", "bad-tag", (&ekt{w.dkID, x.ektNonc, flip(x.ekt.ct, -1)}).enc())
	bad("key_id changed from dk_id to dk2_id (the AAD binds it)", "wrong-aad", (&ekt{w.dk2ID, x.ektNonc, x.ekt.ct}).enc())
	bad("sealed under dk with the AAD naming dk2_id", "wrong-aad", (&ekt{w.dkID, x.ektNonc, seal(w.dk, x.ektNonc, x.plain, ektAAD(w.dk2ID))}).enc())
	bad("names a domain key the HSM does not retain", "unknown-key", sealEKT(w.dk, fill(16, 0xee), x.ektNonc, x.plain).enc())
	bad("contents followed by one byte", "bad-plaintext", sealEKT(w.dk, w.dkID, x.ektNonc, append(clone(x.plain), 0)).enc())
	bad("contents without not_after", "bad-plaintext", sealEKT(w.dk, w.dkID, x.ektNonc, x.plain[:len(x.plain)-8]).enc())
	bad("contents whose host ID contains a space", "bad-plaintext", sealEKT(w.dk, w.dkID, x.ektNonc, ektPlain(x.sk, "host 1", x.sid, x.nb, x.na)).enc())
	return f
}

func genEnvelope(w *world) *vfile {
	f := &vfile{name: "envelope.json", object: "Envelope", spec: "docs/protocol.md#envelope-host--any-hsm-of-the-domain-type-0x04", prefix: "envelope",
		notes: []string{
			"The session is that of reply.json's reply-001. The checking HSM retains one domain key (dk_id, dk), has no session cached, and its clock reads hsm_time; it opens the EKT, checks not_before - 300 <= hsm_time < not_after, the host, the sequence number (0 is never fresh), then the ciphertext.",
			"length-over-maximum for the ciphertext: the v24 length field says 1048593 (maximum 1048592) and the message ends after it; a receiver refuses it for the length before reading the bytes.",
			keyNote,
		},
		fields: []fieldDoc{
			{"sk", tHex, "SK"}, {"ekt", tHex, "the session's EKT"}, {"session_id", tHex, "session ID"},
			{"host_id", tStr, "host ID"}, {"seq", tInt, "sequence number"}, {"command_type", tInt, "the u16 command type"},
			{"command", tHex, "the command (plaintext)"}, {"nonce", tHex, "00 000000 || u64(seq)"},
			{"aad", tHex, "\"trent/v1 envelope\" || 00 || H(EKT) || session_id || v8(host_id) || u64(seq) || u16(type)"},
			{"dk_id", tHex, "the HSM's retained domain key ID"}, {"dk", tHex, "that key"},
			{"hsm_time", tInt, "the HSM's clock, Unix seconds"},
			{"envelope", tHex, "the encoded Envelope (input)"},
		},
	}
	x := w.runHandshake(w.baseHello(), vHSM, w.hsm, vTime, vValidity)
	ektRaw := x.r.ekt
	hsmCtx := func(t *vtest, now uint64) *vtest { return t.h("dk_id", w.dkID).h("dk", w.dk).n("hsm_time", now) }
	good := func(comment string, seq uint64, typ uint16, cmd []byte, now uint64) {
		e := sealEnvelope(x.sk, ektRaw, x.sid, vHost, seq, typ, cmd)
		hsmCtx(f.add(comment, "").h("sk", x.sk).h("ekt", ektRaw).h("session_id", x.sid).s("host_id", vHost).n("seq", seq).
			n("command_type", uint64(typ)).h("command", cmd).h("nonce", seqNonce(0, seq)).
			h("aad", envelopeAAD(ektRaw, x.sid, vHost, seq, typ)), now).h("envelope", e.enc())
	}
	good("the first envelope of session/testdata/envelope.txt: seq 1, type 1 (Ping), \"ping\"", 1, 1, []byte("ping"), vTime)
	good("seq 2, type 12, an empty command (a 16-byte ciphertext, the minimum)", 2, 12, nil, vTime)
	good("opened at not_before - 300 (the earliest accepted)", 1, 1, []byte("ping"), vTime-300)
	good("opened at not_after - 1 (the latest accepted)", 1, 1, []byte("ping"), vTime+vValidity-1)
	good("seq 2^40 (any number above the window's top is new)", 1<<40, 6, []byte{0, 32}, vTime)

	base := sealEnvelope(x.sk, ektRaw, x.sid, vHost, 1, 1, []byte("ping"))
	std := func(t *vtest) *vtest { return hsmCtx(t, vTime) }
	headerCases(f, "the Envelope", base.enc(), 0x05, std, "envelope")
	bad := func(comment, reason string, e []byte, now uint64) {
		hsmCtx(f.add(comment, reason), now).h("envelope", e)
	}
	mut := func(m func(e *envelope)) []byte { e := *base; m(&e); return e.enc() }
	bad("ciphertext of 15 bytes (minimum 16)", "length-under-minimum", mut(func(e *envelope) { e.ct = e.ct[:15] }), vTime)
	{
		raw := cat(hdr(4), v16(ektRaw), x.sid, v8([]byte(vHost)), u64(1), u16(1), []byte{0x10, 0x00, 0x11})
		bad("ciphertext length field 1048593 (maximum 1048592), body absent", "length-over-maximum", raw, vTime)
	}
	bad("EKT field of 513 bytes (maximum 512)", "length-over-maximum", mut(func(e *envelope) { e.ekt = (&ekt{w.dkID, zeros(12), fill(513-36, 1)}).enc() }), vTime)
	bad("empty EKT field", "length-under-minimum", mut(func(e *envelope) { e.ekt = nil }), vTime)
	bad("the EKT field holds a Response type byte", "bad-embedded-object", mut(func(e *envelope) { e.ekt = setByte(e.ekt, 5, 5) }), vTime)
	bad("host_id contains a space", "bad-identifier", mut(func(e *envelope) { e.host = "host 1" }), vTime)
	bad("ciphertext's last byte (tag) changed", "bad-tag", mut(func(e *envelope) { e.ct = flip(e.ct, -1) }), vTime)
	bad("command type changed from 1 to 2 after sealing (the AAD binds it)", "wrong-aad", mut(func(e *envelope) { e.typ = 2 }), vTime)
	bad("sealed with the response direction's nonce (first byte 01)", "wrong-nonce", mut(func(e *envelope) {
		e.ct = seal(x.sk, seqNonce(1, 1), []byte("ping"), envelopeAAD(ektRaw, x.sid, vHost, 1, 1))
	}), vTime)
	bad("opened at not_after", "expired", base.enc(), vTime+vValidity)
	bad("opened at not_before - 301", "not-yet-valid", base.enc(), vTime-301)
	bad("sent (and sealed) as host-2 under host-1's EKT", "wrong-host", sealEnvelope(x.sk, ektRaw, x.sid, "host-2", 1, 1, []byte("ping")).enc(), vTime)
	{
		sid := flip(x.sid, 0)
		bad("session_id other than the EKT's (sealed with it)", "session-mismatch", sealEnvelope(x.sk, ektRaw, sid, vHost, 1, 1, []byte("ping")).enc(), vTime)
	}
	bad("seq 0 (never fresh)", "replay", sealEnvelope(x.sk, ektRaw, x.sid, vHost, 0, 1, []byte("ping")).enc(), vTime)
	{
		e2 := sealEKT(w.dk2, w.dk2ID, x.ektNonc, x.plain).enc()
		bad("the EKT is under a domain key the HSM does not retain", "unknown-key", sealEnvelope(x.sk, e2, x.sid, vHost, 1, 1, []byte("ping")).enc(), vTime)
	}
	return f
}

func genResponse(w *world) *vfile {
	f := &vfile{name: "response.json", object: "Response", spec: "docs/protocol.md#response-hsm--host-type-0x05", prefix: "response",
		notes: []string{
			"The session is that of reply.json's reply-001; request is the Envelope the host sent (envelope.json's envelope-001 or envelope-002). The host checks that the Response's session ID and seq are the request's, then opens it.",
			"length-over-maximum: the v24 length field says 1048593 and the message ends after it.",
		},
		fields: []fieldDoc{
			{"sk", tHex, "SK"}, {"request", tHex, "the request Envelope"}, {"session_id", tHex, "session ID"},
			{"seq", tInt, "the request's sequence number"}, {"response_plaintext", tHex, "the response"},
			{"nonce", tHex, "01 000000 || u64(seq)"}, {"aad", tHex, "\"trent/v1 response\" || 00 || H(request) || session_id || u64(seq)"},
			{"response", tHex, "the encoded Response (input)"},
		},
	}
	x := w.runHandshake(w.baseHello(), vHSM, w.hsm, vTime, vValidity)
	req1 := sealEnvelope(x.sk, x.r.ekt, x.sid, vHost, 1, 1, []byte("ping")).enc()
	req2 := sealEnvelope(x.sk, x.r.ekt, x.sid, vHost, 2, 12, nil).enc()
	resp := func(req []byte, seq uint64, pt []byte) []byte {
		return responseEnc(x.sid, seq, seal(x.sk, seqNonce(1, seq), pt, responseAAD(req, x.sid, seq)))
	}
	good := func(comment string, req []byte, seq uint64, pt []byte) {
		f.add(comment, "").h("sk", x.sk).h("request", req).h("session_id", x.sid).n("seq", seq).h("response_plaintext", pt).
			h("nonce", seqNonce(1, seq)).h("aad", responseAAD(req, x.sid, seq)).h("response", resp(req, seq, pt))
	}
	good("hsm-1's response \"pong\" of session/testdata/envelope.txt", req1, 1, []byte("pong"))
	good("an empty response to seq 2", req2, 2, nil)

	base := resp(req1, 1, []byte("pong"))
	std := func(t *vtest) *vtest { return t.h("sk", x.sk).h("request", req1) }
	headerCases(f, "the Response", base, 0x04, std, "response")
	bad := func(comment, reason string, r []byte) { std(f.add(comment, reason)).h("response", r) }
	bad("ciphertext of 15 bytes", "length-under-minimum", responseEnc(x.sid, 1, fill(15, 1)))
	bad("ciphertext length field 1048593, body absent", "length-over-maximum", cat(hdr(5), x.sid, u64(1), []byte{0x10, 0x00, 0x11}))
	bad("ciphertext's last byte (tag) changed", "bad-tag", flip(base, -1))
	{
		other := sealEnvelope(x.sk, x.r.ekt, x.sid, vHost, 1, 2, []byte("ping")).enc()
		bad("sealed for another request with the same seq (type 2)", "wrong-request", resp(other, 1, []byte("pong")))
	}
	bad("the response to seq 2 given for the request with seq 1", "wrong-request", resp(req2, 2, []byte("pong")))
	bad("sealed with the envelope direction's nonce (first byte 00)", "wrong-nonce",
		responseEnc(x.sid, 1, seal(x.sk, seqNonce(0, 1), []byte("pong"), responseAAD(req1, x.sid, 1))))
	{
		sid := flip(x.sid, 0)
		bad("another session ID (sealed with it)", "wrong-request", responseEnc(sid, 1, seal(x.sk, seqNonce(1, 1), []byte("pong"), responseAAD(req1, sid, 1))))
	}
	return f
}

func genOnePass(w *world) *vfile {
	f := &vfile{name: "onepass.json", object: "One-pass message", spec: "docs/protocol.md#one-pass-c12-type-0x06", prefix: "onepass",
		notes: []string{
			"The recipient recipient_id (agreement scalar recipient_agreement_scalar) checks the message; its domain view has two members: hsm-1 (signing key from \"hsm-1 signing\", agreement key from \"hsm-1 agreement\") and hsm-2 (likewise). It checks the encoding (QE on P-384, recipients in strictly increasing order), that the sender is a member, the signature, finds its entry, then opens it.",
			keyNote,
		},
		fields: []fieldDoc{
			{"sender_id", tStr, "sender"}, {"sender_signing_scalar", tHex, "the sender's signing scalar"},
			{"de_scalar", tHex, "the ephemeral scalar dE"}, {"qe", tHex, "QE"},
			{"context", tHex, "the context"}, {"payload", tHex, "the payload"},
			{"recipient_id", tStr, "the checking recipient"}, {"recipient_agreement_scalar", tHex, "its agreement scalar"},
			{"z", tHex, "Z of the checking recipient"}, {"kek", tHex, "KEK of the checking recipient"},
			{"aad", tHex, "the AAD of the checking recipient's entry"},
			{"message", tHex, "the encoded message (input)"},
		},
	}
	rs := []opRecipient{{vHSM, w.hsmAgree}, {vHSM2, w.hsm2Agree}}
	ctx := []byte("example-domain version 8 DKEK")
	payload := rng("dkek", 32)
	base := sealOnePass(vHSM, w.hsm, w.dE, ctx, payload, rs)
	agree := map[string][]byte{vHSM: scalar("hsm-1 agreement"), vHSM2: scalar("hsm-2 agreement")}
	good := func(comment string, m *onePass, signerName string, dEName string, payload []byte, rid string) {
		k := ecdhKey(map[string]string{vHSM: "hsm-1 agreement", vHSM2: "hsm-2 agreement"}[rid])
		z := ecdhZ(k, m.qe)
		f.add(comment, "").s("sender_id", m.sender).h("sender_signing_scalar", scalar(signerName)).h("de_scalar", scalar(dEName)).
			h("qe", m.qe).h("context", m.ctx).h("payload", payload).s("recipient_id", rid).h("recipient_agreement_scalar", agree[rid]).
			h("z", z).h("kek", onePassKEK(z, m.sender, rid, m.qe)).h("aad", onePassAAD(m.sender, rid, m.qe, m.ctx)).h("message", m.enc())
	}
	good("session/testdata/onepass.txt: hsm-1 to hsm-1 and hsm-2, opened by hsm-1", base, "hsm-1 signing", "dE", payload, vHSM)
	good("the same message opened by hsm-2", base, "hsm-1 signing", "dE", payload, vHSM2)
	dE2 := ecdhKey("dE 2")
	m3 := sealOnePass(vHSM2, w.hsm2, dE2, nil, nil, rs[1:])
	good("hsm-2 to itself alone: empty context, empty payload (a 16-byte entry)", m3, "hsm-2 signing", "dE 2", nil, vHSM2)
	m4 := sealOnePass(vHSM, w.hsm, dE2, fill(1024, 'c'), []byte{1}, rs)
	good("a 1024-byte context (the maximum)", m4, "hsm-1 signing", "dE 2", []byte{1}, vHSM2)

	std := func(t *vtest) *vtest { return t.s("recipient_id", vHSM).h("recipient_agreement_scalar", agree[vHSM]) }
	headerCasesV(f, "the message", base.enc(), 0x07, std, "message", 3)
	bad := func(comment, reason string, m []byte) { std(f.add(comment, reason)).h("message", m) }
	mut := func(m func(m *onePass), signer *ecdsa.PrivateKey) []byte {
		c := *base
		c.entries = append([]opEntry(nil), base.entries...)
		m(&c)
		c.signWith(signer)
		return c.enc()
	}
	bad("recipient count 0", "bad-count", mut(func(m *onePass) { m.entries = nil }, w.hsm))
	bad("recipient count 3 with 2 entries", "bad-count", mut(func(m *onePass) { m.count = 3 }, w.hsm))
	bad("entries in decreasing order (hsm-2, hsm-1)", "not-sorted", mut(func(m *onePass) { m.entries[0], m.entries[1] = m.entries[1], m.entries[0] }, w.hsm))
	bad("hsm-1's entry twice", "duplicate", mut(func(m *onePass) { m.entries[1] = m.entries[0] }, w.hsm))
	bad("context of 1025 bytes (maximum 1024)", "length-over-maximum", mut(func(m *onePass) { m.ctx = fill(1025, 'c') }, w.hsm))
	bad("hsm-2's entry of 65553 bytes (maximum 65552)", "length-over-maximum", mut(func(m *onePass) { m.entries[1].ct = fill(65553, 1) }, w.hsm))
	bad("hsm-2's entry of 15 bytes (minimum 16)", "length-under-minimum", mut(func(m *onePass) { m.entries[1].ct = fill(15, 1) }, w.hsm))
	bad("QE not on P-384", "invalid-point", mut(func(m *onePass) { m.qe = offCurve(m.qe) }, w.hsm))
	bad("a recipient ID with a space", "bad-identifier", mut(func(m *onePass) { m.entries[1].id = "hsm 2" }, w.hsm))
	{
		c := *base
		c.sig = flip(c.sig, -1)
		bad("signature's last byte changed", "bad-signature", c.enc())
	}
	bad("signed by hsm-2's key as hsm-1", "bad-signature", mut(func(*onePass) {}, w.hsm2))
	bad("sent by hsm-3, not a member", "not-member", mut(func(m *onePass) { m.sender = "hsm-3" }, w.hsm3))
	bad("a message to hsm-2 alone, opened by hsm-1", "not-recipient", sealOnePass(vHSM, w.hsm, w.dE, ctx, payload, rs[1:]).enc())
	bad("hsm-1's entry with its last byte (tag) changed (re-signed)", "bad-tag", mut(func(m *onePass) { m.entries[0].ct = flip(m.entries[0].ct, -1) }, w.hsm))
	bad("context changed after sealing (re-signed; the AAD binds H(context))", "wrong-context", mut(func(m *onePass) { m.ctx = []byte("example-domain version 9 DKEK") }, w.hsm))
	bad("entries sealed as from hsm-2, sent as from hsm-1 (re-signed)", "wrong-aad", mut(func(m *onePass) {
		m.entries = sealOnePass(vHSM2, w.hsm, w.dE, ctx, payload, rs).entries
	}, w.hsm))
	return f
}

func genAlert() *vfile {
	f := &vfile{name: "alert.json", object: "Alert", spec: "docs/protocol.md#alert-type-0x07", prefix: "alert",
		notes: []string{
			"Alerts are not authenticated. A code outside the table decodes and stands for an internal HSM error (code 21).",
		},
		fields: []fieldDoc{
			{"code", tInt, "decoded: the code"}, {"message", tStr, "decoded: the message"},
			{"condition", tStr, "the condition of the code (docs/protocol.md, Alert codes)"},
			{"alert", tHex, "the encoded Alert (input)"},
		},
	}
	enc := func(code uint16, msg []byte) []byte { return cat(hdr(7), u16(code), v8(msg)) }
	good := func(comment string, code uint16, msg, cond string) {
		f.add(comment, "").n("code", uint64(code)).s("message", msg).s("condition", cond).h("alert", enc(code, []byte(msg)))
	}
	good("malformed", 1, "session: malformed message: trailing bytes", "malformed")
	good("authentication failed, empty message", 11, "", "authentication failed")
	good("refused, a 255-byte message (the maximum) of every printable byte", 23, printableRun(255), "refused")
	good("replay", 18, "session: sequence number already used or too old", "replay")
	good("code 999, not in the table", 999, "?", "internal HSM error")
	base := enc(1, []byte("malformed"))
	headerCases(f, "the Alert", base, 0x01, func(t *vtest) *vtest { return t }, "alert")
	bad := func(comment, reason string, a []byte) { f.add(comment, reason).h("alert", a) }
	bad("message contains 0x1f", "bad-character", enc(1, []byte("bad\x1fbyte")))
	bad("message contains 0x7f", "bad-character", enc(1, []byte("bad\x7fbyte")))
	bad("message contains UTF-8 (c3 a9)", "bad-character", enc(1, []byte("caf\xc3\xa9")))
	bad("code only, no message length", "truncated", cat(hdr(7), u16(1)))
	return f
}

func printableRun(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0x20 + i%95)
	}
	return string(b)
}
