package hsm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/trentkms/trent/conformance"
)

// reply runs a correct handshake and returns it, failing the check unless
// the HSM answers with a Reply that decodes.
func (e *Env) replyTo(t *conformance.T, h *hello) (*result, *reply) {
	r := e.sendHello(t, h.raw)
	if !r.ok {
		t.Mismatch("a correct Hello", "a Reply", r.String())
	}
	rep, err := parseReply(r.body)
	t.Require("decoding the Reply by docs/protocol.md", err)
	return r, rep
}

func (e *Env) handshakeChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "HSM-HS-001",
		Statement: "A correct Hello is answered with a Reply from a member HSM of the domain whose sig2 verifies under that member's signing key over H(hello) and the Reply before sig2",
		Clause:    clauseReply,
		Mutation:  "hsm.reply-bad-signature",
		Run: func(t *conformance.T) {
			h := e.newHello(t, nil, nil)
			_, rep := e.replyTo(t, h)
			key, ok := e.member(rep.HSMID)
			if !ok {
				t.Mismatch("hsm_id of the Reply", "a member HSM of the domain state", rep.HSMID)
			}
			if !verifyReply(h.raw, rep, key) {
				t.Mismatch("sig2", "an ECDSA P-384 signature of H(\"trent/v1 session reply\" ‖ 00 ‖ H(hello) ‖ reply[0:sig2]) by "+rep.HSMID, "a signature that does not verify")
			}
		},
	}, {
		ID:        "HSM-HS-002",
		Statement: "The Reply's session_id is H(\"trent/v1 session id\" ‖ 00 ‖ H(hello) ‖ Q2 ‖ hsm_nonce)[0:16]",
		Clause:    clauseReply,
		Mutation:  "hsm.reply-wrong-session-id",
		Run: func(t *conformance.T) {
			h := e.newHello(t, nil, nil)
			_, rep := e.replyTo(t, h)
			want := labelled(labelSessionID, h384(h.raw), rep.Q2, rep.HSMNonce)[:sidSize]
			if !bytes.Equal(want, rep.SessionID) {
				t.Mismatch("session_id", fmt.Sprintf("%x", want), fmt.Sprintf("%x", rep.SessionID))
			}
		},
	}, {
		ID:        "HSM-HS-003",
		Statement: "ESK opens to SK under NK = KDF(Z, FixedInfo) with AAD = TH as the spec computes them, also for host nonces with zero bytes, and the HSM serves an Envelope sealed under that SK",
		Clause:    clauseReply,
		Mutation:  "hsm.nk-host-nonce-cstring",
		Run: func(t *conformance.T) {
			nonces := map[string][]byte{
				"a random host nonce":                hostNonce(),
				"a host nonce starting with 00":      append([]byte{0}, hostNonce()[1:]...),
				"a host nonce with 00 in its middle": append(append(hostNonce()[:16], 0), hostNonce()[17:]...),
			}
			for what, n := range nonces {
				h := e.newHello(t, func(f *helloFields) { f.HostNonce = n }, nil)
				r, s, d, err := e.handshake(t, h)
				if !r.ok {
					t.Mismatch("Hello with "+what, "a Reply", r.String())
				}
				if err != nil {
					t.Logf("Z %x", d.Z)
					t.Logf("NK %x", d.NK)
					t.Logf("TH %x", d.TH)
					t.Mismatch("Reply to a Hello with "+what, "ESK opening to SK", err.Error())
				}
				s.ping(t, "a Ping sealed under SK, after a Hello with "+what, s.envelope(commandPing))
			}
		},
	}, {
		ID:        "HSM-HS-004",
		Statement: "not_before is the HSM's own clock, not the Hello's time (Hellos dated 400 s apart get the same not_before), and not_after is after not_before",
		Clause:    clauseReply,
		Mutation:  "hsm.not-before-from-hello",
		Run: func(t *conformance.T) {
			var nb, validity []uint64
			for _, off := range []int64{-200, 200} {
				h := e.newHello(t, func(f *helloFields) { f.Time = uint64(time.Now().Unix() + off) }, nil)
				_, rep := e.replyTo(t, h)
				if rep.NotAfter <= rep.NotBefore {
					t.Mismatch("the validity period", "not_after > not_before", fmt.Sprintf("not_before %d, not_after %d", rep.NotBefore, rep.NotAfter))
				}
				nb = append(nb, rep.NotBefore)
				validity = append(validity, rep.NotAfter-rep.NotBefore)
			}
			if d := int64(nb[1]) - int64(nb[0]); d < 0 || d > 2 {
				t.Mismatch("not_before of Hellos dated now−200 s and now+200 s, sent one after the other", "the same HSM clock (within 2 s)", fmt.Sprintf("%d and %d", nb[0], nb[1]))
			}
			if validity[0] != validity[1] {
				t.Mismatch("the validity period of two sessions", fmt.Sprint(validity[0]), fmt.Sprint(validity[1]))
			}
			t.Logf("validity %d s", validity[0])
		},
	}, {
		ID:        "HSM-HS-005",
		Statement: "The Reply's EKT is \"TRNT\" 01 03 under the domain's active key, its ciphertext the size of SK and its binding, and each handshake draws fresh hsm_nonce, SK, EKT nonce and Q2",
		Clause:    clauseEKT,
		Mutation:  "hsm.handshake-random-reused",
		Run: func(t *conformance.T) {
			active, ok := e.cur().p.State.ActiveKey()
			if !ok {
				t.Fatalf("the domain state has no active key")
			}
			var ss []*session
			var ekts []*ekt
			for range 2 {
				h := e.newHello(t, nil, nil)
				r, s, _, err := e.handshake(t, h)
				if !r.ok || err != nil {
					t.Mismatch("a correct handshake", "a Reply whose ESK opens", fmt.Sprint(r, " ", err))
				}
				k, err := parseEKT(s.reply.EKT)
				t.Require("decoding the EKT by docs/protocol.md", err)
				if !bytes.Equal(k.KeyID, active.ID[:]) {
					t.Mismatch("the EKT's key_id", fmt.Sprintf("%x (the active domain key)", active.ID), fmt.Sprintf("%x", k.KeyID))
				}
				if want := skSize + 1 + len(e.HostID) + sidSize + 8 + 8 + tagSize; len(k.Ciphertext) != want {
					t.Mismatch("the EKT's ciphertext length", fmt.Sprintf("%d (SK ‖ v8(host_id) ‖ session_id ‖ not_before ‖ not_after, and the tag)", want), len(k.Ciphertext))
				}
				ss, ekts = append(ss, s), append(ekts, k)
			}
			for what, pair := range map[string][2][]byte{
				"hsm_nonce": {ss[0].reply.HSMNonce, ss[1].reply.HSMNonce},
				"SK":        {ss[0].sk, ss[1].sk},
				"EKT nonce": {ekts[0].Nonce, ekts[1].Nonce},
				"Q2":        {ss[0].reply.Q2, ss[1].reply.Q2},
			} {
				if bytes.Equal(pair[0], pair[1]) {
					t.Mismatch(what+" of two handshakes", "different random values", fmt.Sprintf("%x twice", pair[0]))
				}
			}
		},
	}}
}

func (e *Env) helloChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "HSM-HELLO-001",
		Statement: "A Hello from a host ID that is not an operator of the domain (unknown, or the host's ID in other letter case) is refused with Alert 6",
		Clause:    clauseHello,
		Mutation:  "hsm.host-id-case-insensitive",
		Run: func(t *conformance.T) {
			ids := []string{"no-such-host-" + fmt.Sprintf("%x", randomBytes(4))}
			if swapped := swapCase(e.HostID); swapped != e.HostID && !e.isOperator(swapped) {
				ids = append(ids, swapped)
			}
			for _, id := range ids {
				h := e.newHello(t, func(f *helloFields) { f.HostID = id }, nil)
				expectAlert(t, fmt.Sprintf("a Hello from host %q signed by the host's key", id), e.sendHello(t, h.raw), alertUnknownHost)
			}
		},
	}, {
		ID:        "HSM-HELLO-002",
		Statement: "A Hello from an operator without the service-host role is refused with Alert 7",
		Clause:    clauseHello,
		Mutation:  "hsm.host-role-unchecked",
		Run: func(t *conformance.T) {
			// An operator of another role, signing with its own key if the
			// suite holds it (else the host's: the role is checked first).
			var id string
			var key crypto.Signer
			for _, o := range e.cur().p.State.Operators {
				if o.Role == "service-host" {
					continue
				}
				if id == "" {
					id = o.ID
				}
				for _, s := range e.signers {
					if s.id == o.ID && s.ec != nil && key == nil {
						id, key = o.ID, s.ec
					}
				}
			}
			if id == "" {
				t.Skipf("the domain has no operator without the service-host role")
			}
			h := e.newHello(t, func(f *helloFields) { f.HostID = id }, key)
			expectAlert(t, fmt.Sprintf("a Hello from operator %q", id), e.sendHello(t, h.raw), alertNotServiceHost)
		},
	}, {
		ID:        "HSM-HELLO-003",
		Statement: "A Hello whose sig1 does not verify under the host's key (another key's signature, or a field changed after signing) is refused with Alert 9",
		Clause:    clauseHello,
		Mutation:  "hsm.hello-signature-unchecked",
		Run: func(t *conformance.T) {
			other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			t.Require("a key", err)
			h := e.newHello(t, nil, other)
			expectAlert(t, "a Hello signed by another key", e.sendHello(t, h.raw), alertBadSignature)
			h = e.newHello(t, nil, nil)
			raw := bytes.Clone(h.raw)
			raw[len(h.fields.unsigned())-8-1] ^= 0x01 // the last byte of host_nonce
			expectAlert(t, "a Hello whose host_nonce changed after signing", e.sendHello(t, raw), alertBadSignature)
		},
	}, {
		ID:        "HSM-HELLO-004",
		Statement: "A Hello whose time is more than 5 minutes from the HSM's clock (400 s behind or ahead) is refused with Alert 5; one 250 s off is answered",
		Clause:    clauseHello,
		Mutation:  "hsm.accept-stale-hello-time",
		Run: func(t *conformance.T) {
			for _, off := range []int64{-400, 400} {
				h := e.newHello(t, func(f *helloFields) { f.Time = uint64(time.Now().Unix() + off) }, nil)
				expectAlert(t, fmt.Sprintf("a Hello dated %+d s", off), e.sendHello(t, h.raw), alertClockSkew)
			}
			for _, off := range []int64{-250, 250} {
				h := e.newHello(t, func(f *helloFields) { f.Time = uint64(time.Now().Unix() + off) }, nil)
				if r := e.sendHello(t, h.raw); !r.ok {
					t.Mismatch(fmt.Sprintf("a Hello dated %+d s", off), "a Reply", r.String())
				}
			}
		},
	}, {
		ID:        "HSM-HELLO-005",
		Statement: "A Hello naming another domain is refused with Alert 4",
		Clause:    clauseHello,
		Mutation:  "hsm.hello-domain-unchecked",
		Run: func(t *conformance.T) {
			other := otherName(e.cur().p.State.Name)
			h := e.newHello(t, func(f *helloFields) { f.Domain = other }, nil)
			expectAlert(t, fmt.Sprintf("a Hello for domain %q", other), e.sendHello(t, h.raw), alertDomainMismatch)
		},
	}, {
		ID:        "HSM-HELLO-006",
		Statement: "A Hello naming another state version than the HSM's (the previous, the next) is refused with Alert 4",
		Clause:    clauseHello,
		Mutation:  "hsm.accept-stale-state-version",
		Run: func(t *conformance.T) {
			v := e.cur().p.State.Version
			for _, w := range []uint64{v - 1, v + 1} {
				h := e.newHello(t, func(f *helloFields) { f.Version = w }, nil)
				expectAlert(t, fmt.Sprintf("a Hello for state version %d (the HSM's is %d)", w, v), e.sendHello(t, h.raw), alertDomainMismatch)
			}
		},
	}}
}

func (e *Env) malformedChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "HSM-MAL-001",
		Statement: "Every proper prefix of a correct Hello (a truncated Hello) is refused with Alert 1",
		Clause:    clauseConv,
		Mutation:  "hsm.hello-missing-sig-lenient",
		Run: func(t *conformance.T) {
			h := e.newHello(t, nil, nil)
			for n := range len(h.raw) {
				expectAlert(t, fmt.Sprintf("the first %d of the Hello's %d bytes", n, len(h.raw)), e.sendHello(t, h.raw[:n]), alertMalformed)
			}
		},
	}, {
		ID:        "HSM-MAL-002",
		Statement: "A correct Hello followed by one more byte is refused with Alert 1",
		Clause:    clauseConv,
		Mutation:  "hsm.hello-trailing-accepted",
		Run: func(t *conformance.T) {
			h := e.newHello(t, nil, nil)
			expectAlert(t, "a Hello with a trailing byte", e.sendHello(t, append(bytes.Clone(h.raw), 0)), alertMalformed)
		},
	}, {
		ID:        "HSM-MAL-003",
		Statement: "A Hello with another magic (\"TRNX\") or another object type in its header is refused with Alert 1",
		Clause:    clauseConv,
		Mutation:  "hsm.hello-magic-unchecked",
		Run: func(t *conformance.T) {
			h := e.newHello(t, nil, nil)
			raw := bytes.Clone(h.raw)
			raw[3] = 'X'
			expectAlert(t, "a Hello starting \"TRNX\"", e.sendHello(t, raw), alertMalformed)
			raw = bytes.Clone(h.raw)
			raw[5] = typeEnvelope
			expectAlert(t, "a Hello with object type 0x04", e.sendHello(t, raw), alertMalformed)
		},
	}, {
		ID:        "HSM-MAL-004",
		Statement: "A Hello of protocol version 3 (version 2 is the hybrid Hello) is refused with Alert 2",
		Clause:    clauseConv,
		Mutation:  "hsm.hello-version-unchecked",
		Run: func(t *conformance.T) {
			h := e.newHello(t, nil, nil)
			raw := bytes.Clone(h.raw)
			raw[4] = 3
			expectAlert(t, "a Hello with version byte 03", e.sendHello(t, raw), alertVersion)
		},
	}}
}

// swapCase swaps the letter case of s.
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, s)
}

func (e *Env) isOperator(id string) bool {
	for _, o := range e.cur().p.State.Operators {
		if o.ID == id {
			return true
		}
	}
	return false
}

// otherName is a valid domain name that is not name.
func otherName(name string) string {
	if len(name) < 58 {
		return name + "-other"
	}
	return "other-" + name[:50]
}
