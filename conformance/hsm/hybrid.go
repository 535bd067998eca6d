package hsm

import (
	"fmt"

	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/quorum"
)

// Clauses of the hybrid handshake and the session policy.
const (
	clauseHybrid = spec + "#hybrid-handshake"
	clausePolicy = spec + "#session-policy"
)

func (e *Env) hybridChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "HSM-PQ-001",
		Statement: "A hybrid Hello (version 2, with an ML-KEM-1024 encapsulation key) is answered with a hybrid Reply (version 2, with the ML-KEM-1024 ciphertext) whose sig2 covers the ciphertext, whose ESK opens under NK = KDF(Z_ecdh ‖ Z_mlkem, the hybrid FixedInfo) and whose session serves a Ping",
		Clause:    clauseHybrid,
		Mutation:  "hsm.hybrid-sig-omits-ciphertext",
		Run: func(t *conformance.T) {
			h := e.newHelloMode(t, nil, nil, true)
			r, s, d, err := e.handshake(t, h)
			if !r.ok {
				t.Mismatch("a hybrid Hello", "a hybrid Reply", r.String())
			}
			rep, perr := parseReply(r.body)
			t.Require("decoding the Reply by docs/protocol.md", perr)
			if !rep.Hybrid {
				t.Mismatch("the Reply to a hybrid Hello", "version 2, with the ML-KEM ciphertext", fmt.Sprintf("version %d: a downgrade", r.body[4]))
			}
			key, ok := e.member(rep.HSMID)
			if !ok {
				t.Mismatch("hsm_id of the Reply", "a member HSM of the domain state", rep.HSMID)
			}
			if !verifyReply(h.raw, rep, key) {
				t.Mismatch("sig2 of the hybrid Reply", "an ECDSA P-384 signature by "+rep.HSMID+" over H(hello) and the Reply before sig2, ML-KEM ciphertext included", "a signature that does not verify")
			}
			if err != nil {
				t.Logf("Z %x", d.Z)
				t.Logf("NK %x", d.NK)
				t.Mismatch("ESK of the hybrid Reply", "opening under NK = KDF(Z_ecdh ‖ Z_mlkem, FixedInfo) with AAD = TH", err.Error())
			}
			s.ping(t, "a Ping in the hybrid session", s.envelope(commandPing))
		},
	}, {
		ID:        "HSM-PQ-002",
		Statement: "An HSM whose domain requires hybrid key establishment (SetSessionPolicy) refuses a classical Hello with Alert 26 and answers a hybrid one (downgrade protection); the suite moves the domain to the policy and back if it does not require it already",
		Clause:    clausePolicy,
		Needs:     []conformance.Capability{CapDomainChange, CapOperators},
		Mutation:  "hsm.hybrid-policy-unchecked",
		Run: func(t *conformance.T) {
			st := e.cur().p.State
			moved := false
			var keys []domain.MemberKEM
			if !st.HybridRequired {
				for _, m := range st.Members {
					if m.KEM == nil {
						t.Skipf("the domain state lists no ML-KEM key for member %s: publish the members' keys with SetSessionPolicy first", m.ID)
					}
					keys = append(keys, domain.MemberKEM{ID: m.ID, EK: m.KEM})
				}
				e.setPolicy(t, true, keys)
				moved = true
			}
			classical := e.newHelloMode(t, nil, nil, false)
			rc := e.sendHello(t, classical.raw)
			rh, s, _, err := e.handshake(t, e.newHelloMode(t, nil, nil, true))
			if moved {
				e.setPolicy(t, false, keys)
			}
			expectAlert(t, "a classical Hello to a domain that requires hybrid", rc, alertHybridRequired)
			if !rh.ok || s == nil {
				t.Mismatch("a hybrid Hello to a domain that requires hybrid", "a Reply whose ESK opens", fmt.Sprintf("%s %v", rh, err))
			}
		},
	}, {
		ID:        "HSM-PQ-003",
		Statement: "A hybrid Hello whose ML-KEM-1024 encapsulation key fails FIPS 203's modulus check is refused with Alert 27, and one cut short inside the key with Alert 1",
		Clause:    clauseHybrid,
		Mutation:  "hsm.mlkem-key-unchecked",
		Run: func(t *conformance.T) {
			h := e.newHelloMode(t, func(f *helloFields) {
				f.EK[0], f.EK[1] = 0xff, 0xff // the first 12-bit coefficient is 4095 ≥ q = 3329
			}, nil, true)
			expectAlert(t, "a hybrid Hello with a coefficient of 4095 in its ML-KEM key", e.sendHello(t, h.raw), alertInvalidKEM)
			good := e.newHelloMode(t, nil, nil, true)
			f := good.fields
			cut := 6 + 1 + len(f.Domain) + 8 + 1 + len(f.HostID) + pointSize + kemKeySize/2
			expectAlert(t, "a hybrid Hello cut in the middle of its ML-KEM key", e.sendHello(t, good.raw[:cut]), alertMalformed)
		},
	}}
}

// setPolicy moves the HSM to the next state version with SetSessionPolicy
// (Export, then Import), signed by the suite's keys; a failure ends the
// check as not set up.
func (e *Env) setPolicy(t *conformance.T, required bool, keys []domain.MemberKEM) {
	st := e.cur().p.State
	params, err := domain.ParamsSessionPolicy(required, keys)
	t.Require("setup: SetSessionPolicy parameters", err)
	rule := quorum.SetSessionPolicy
	if _, ok := st.Rules[rule]; !ok {
		rule = quorum.SetRule // a domain without a rule of its own for it
	}
	signers, ok := e.pickSigners(st, rule)
	if !ok {
		t.Skipf("the keys given satisfy no rule of SetSessionPolicy: give --operator-key")
	}
	sc := e.command(t, st.Version, quorum.SetSessionPolicy, params, signers)
	tok, r := e.export(t, marshal(t, sc))
	if r != nil {
		t.Fatalf("setup: Export of SetSessionPolicy (hybrid required %v): %s", required, r)
	}
	k, err := e.remember(tok)
	t.Require("setup: decoding the exported token", err)
	if _, r := e.importToken(t, k.raw); r != nil {
		t.Fatalf("setup: Import of the SetSessionPolicy token: %s", r)
	}
	e.domainStatus(t) // follows the HSM to the new version
	if e.cur() != k {
		t.Fatalf("setup: the HSM did not move to version %d (hybrid required %v, token says %v)", k.p.State.Version, required, k.p.State.HybridRequired)
	}
}
