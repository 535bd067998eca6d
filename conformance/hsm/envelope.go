package hsm

import (
	"bytes"
	"fmt"
	"time"

	"github.com/trentkms/trent/conformance"
)

func (e *Env) envelopeChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "HSM-ENV-001",
		Statement: "An Envelope that does not authenticate under SK (a ciphertext byte flipped; seq or type changed after sealing) is refused with Alert 11",
		Clause:    clauseEnv,
		Mutation:  "hsm.envelope-auth-unchecked",
		Run: func(t *conformance.T) {
			s := e.open(t)
			for what, edit := range map[string]func(env *envelope){
				"a ciphertext byte flipped":  func(env *envelope) { env.Ciphertext[0] ^= 1 },
				"seq raised after sealing":   func(env *envelope) { env.Seq += 1000 },
				"type changed after sealing": func(env *envelope) { env.Type = 6 },
			} {
				env := s.envelope(commandPing).seal(s.sk, []byte("ping"))
				edit(env)
				expectAlert(t, "an Envelope with "+what, e.sendEnvelope(t, env.marshal()), alertAuthentication)
			}
			s.ping(t, "the session afterwards", s.envelope(commandPing))
		},
	}, {
		ID:        "HSM-ENV-002",
		Statement: "An Envelope whose session_id is not the session of its EKT (an uncached session ID) is refused with Alert 17",
		Clause:    clauseEnv,
		Mutation:  "hsm.session-id-unbound",
		Run: func(t *conformance.T) {
			s := e.open(t)
			env := s.envelope(commandPing)
			env.SessionID = randomBytes(sidSize)
			_, r := s.send(t, env, []byte("ping"))
			expectAlert(t, "an Envelope naming session "+fmt.Sprintf("%x", env.SessionID)+" with the EKT of another", r, alertSessionMismatch)
		},
	}, {
		ID:        "HSM-ENV-003",
		Statement: "An Envelope whose host_id is not the host its EKT was issued to is refused with Alert 16",
		Clause:    clauseEnv,
		Mutation:  "hsm.envelope-host-unchecked",
		Run: func(t *conformance.T) {
			s := e.open(t)
			env := s.envelope(commandPing)
			env.HostID = "other-" + e.HostID
			if len(env.HostID) > 64 {
				env.HostID = env.HostID[:64]
			}
			_, r := s.send(t, env, []byte("ping"))
			expectAlert(t, fmt.Sprintf("an Envelope from host %q with %q's EKT", env.HostID, e.HostID), r, alertWrongHost)
		},
	}}
}

func (e *Env) ektChecks() []conformance.Check {
	// forged is an Envelope whose EKT an HSM of the domain cannot open,
	// for a session the HSM has not cached.
	forged := func(t *conformance.T, keyID, key []byte) *result {
		sk, sid := randomBytes(skSize), randomBytes(sidSize)
		now := uint64(time.Now().Unix())
		env := &envelope{EKT: sealEKT(key, keyID, sk, e.HostID, sid, now, now+600), SessionID: sid, HostID: e.HostID, Seq: 1, Type: commandPing}
		return e.sendEnvelope(t, env.seal(sk, []byte("ping")).marshal())
	}
	return []conformance.Check{{
		ID:        "HSM-EKT-001",
		Statement: "An Envelope whose EKT is under a domain key the HSM does not hold (another domain's key and key ID) is refused with Alert 12",
		Clause:    clauseEnv,
		Mutation:  "hsm.ekt-key-fallback",
		Run: func(t *conformance.T) {
			expectAlert(t, "an EKT under another domain's key", forged(t, randomBytes(keyIDSize), randomBytes(32)), alertKeyNotRetained)
		},
	}, {
		ID:        "HSM-EKT-002",
		Statement: "An Envelope whose EKT names the domain's active key but does not open under it (sealed under another key, or a byte flipped) is refused with Alert 11",
		Clause:    clauseEnv,
		Mutation:  "hsm.ekt-open-failure-code",
		Run: func(t *conformance.T) {
			active, ok := e.cur().p.State.ActiveKey()
			if !ok {
				t.Fatalf("the domain state has no active key")
			}
			expectAlert(t, "an EKT naming the active key, sealed under another", forged(t, active.ID[:], randomBytes(32)), alertAuthentication)

			s := e.open(t)
			k, err := parseEKT(s.reply.EKT)
			t.Require("the session's EKT", err)
			k.Ciphertext = bytes.Clone(k.Ciphertext)
			k.Ciphertext[3] ^= 1
			env := s.envelope(commandPing)
			env.EKT, env.SessionID = k.marshal(), randomBytes(sidSize)
			_, r := s.send(t, env, []byte("ping"))
			expectAlert(t, "the session's EKT with a ciphertext byte flipped, for an uncached session", r, alertAuthentication)
		},
	}, {
		ID:        "HSM-EKT-003",
		Statement: "An Envelope sent after its EKT's not_after (by the HSM's clock) is refused with Alert 14",
		Clause:    clauseEnv,
		Mutation:  "hsm.ekt-validity-ignored",
		Run: func(t *conformance.T) {
			e.mu.Lock()
			p := e.probe
			e.mu.Unlock()
			if p == nil {
				p = e.open(t)
			}
			// The HSM refuses once its clock reaches not_after; its clock is
			// the suite's plus p.offset (within a second).
			until := time.Unix(int64(p.notAfter)-p.offset+1, 0)
			wait := time.Until(until)
			if wait > 0 && (e.maxWait < 0 || wait > e.maxWait) {
				t.Skipf("the session's validity period (%d s) ends in %s, beyond --max-wait %s", p.notAfter-p.notBefore, wait.Round(time.Second), e.maxWait)
			}
			if wait > 0 {
				t.Logf("waiting %s for the EKT to expire", wait.Round(100*time.Millisecond))
				select {
				case <-time.After(wait):
				case <-t.Context().Done():
					t.Fatalf("deadline while waiting for the EKT to expire")
				}
			}
			_, r := p.send(t, p.envelope(commandPing), []byte("late"))
			expectAlert(t, fmt.Sprintf("an Envelope %s after not_after", time.Since(time.Unix(int64(p.notAfter)-p.offset, 0)).Round(time.Second)), r, alertExpired)
		},
	}}
}

func (e *Env) replayChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "HSM-RPL-001",
		Statement: "An Envelope served once is refused when sent again (same seq) with Alert 18",
		Clause:    clauseReplay,
		Mutation:  "hsm.replay-window-off",
		Run: func(t *conformance.T) {
			s := e.open(t)
			env := s.envelope(commandPing)
			raw, r := s.send(t, env, []byte("once"))
			if !r.ok {
				t.Mismatch("the first copy", "a Response", r.String())
			}
			expectAlert(t, "the second copy", e.sendEnvelope(t, raw), alertReplay)
		},
	}, {
		ID:        "HSM-RPL-002",
		Statement: "A sequence number 1024 or more below the highest served is refused with Alert 18, even if never used",
		Clause:    clauseReplay,
		Mutation:  "hsm.replay-window-unbounded",
		Run: func(t *conformance.T) {
			s := e.open(t)
			top := uint64(5000)
			env := s.envelope(commandPing)
			env.Seq = top
			s.ping(t, "an Envelope with seq 5000", env)
			for _, seq := range []uint64{top - replayWindow, 2} {
				env := s.envelope(commandPing)
				env.Seq = seq
				_, r := s.send(t, env, []byte("old"))
				expectAlert(t, fmt.Sprintf("an unused seq %d after seq %d", seq, top), r, alertReplay)
			}
		},
	}, {
		ID:        "HSM-RPL-003",
		Statement: "Sequence number 0 is refused with Alert 18 (numbers start at 1)",
		Clause:    clauseEnv,
		Mutation:  "hsm.replay-seq-zero-accepted",
		Run: func(t *conformance.T) {
			s := e.open(t)
			env := s.envelope(commandPing)
			env.Seq = 0
			_, r := s.send(t, env, []byte("zero"))
			expectAlert(t, "an Envelope with seq 0", r, alertReplay)
		},
	}, {
		ID:        "HSM-RPL-004",
		Statement: "Unused sequence numbers within 1024 of the highest served are served out of order, and a jump far ahead is served",
		Clause:    clauseReplay,
		Mutation:  "hsm.replay-window-strict",
		Run: func(t *conformance.T) {
			s := e.open(t)
			const jump = 100000
			for _, seq := range []uint64{10, 7, 9, 8, jump, jump - replayWindow + 1} {
				env := s.envelope(commandPing)
				env.Seq = seq
				s.ping(t, fmt.Sprintf("an Envelope with seq %d (after 10, 7, 9, 8, %d in that order)", seq, jump), env)
			}
		},
	}}
}
