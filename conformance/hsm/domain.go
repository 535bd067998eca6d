package hsm

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/quorum"
	sessionpkg "github.com/trentkms/trent/session"
)

// pickSigners returns the fewest of the suite's keys that satisfy an
// alternative of typ's rule in st (ok false if none does).
func (e *Env) pickSigners(st *domain.State, typ quorum.CommandType) ([]signerKey, bool) {
	var best []signerKey
	for _, rule := range st.Rules[typ] {
		if set, ok := e.meet(rule, nil); ok && (best == nil || len(set) < len(best)) {
			best = set
		}
	}
	return best, best != nil
}

// meet picks distinct signers for every requirement of rule, each role
// short by short[role].
func (e *Env) meet(rule quorum.Rule, short map[string]int) ([]signerKey, bool) {
	need := map[string]int{}
	for _, q := range rule {
		need[q.Role] += q.N
	}
	var set []signerKey
	for role, n := range need {
		n -= short[role]
		for _, s := range e.signers {
			if n > 0 && s.role == role {
				set = append(set, s)
				n--
			}
		}
		if n > 0 {
			return nil, false
		}
	}
	return set, true
}

// command builds a command of the current domain for version, signed by
// signers.
func (e *Env) command(t *conformance.T, version uint64, typ quorum.CommandType, params []byte, signers []signerKey) *quorum.SignedCommand {
	st := e.cur().p.State
	c, err := quorum.NewCommand(st.Name, version, typ, params, time.Now(), 0, func(b []byte) error { _, err := rand.Read(b); return err })
	t.Require("a quorum command", err)
	raw, err := c.Marshal()
	t.Require("a quorum command", err)
	sc := &quorum.SignedCommand{Command: raw}
	for _, s := range signers {
		sig, err := s.sign(raw)
		t.Require("signing as "+s.id, err)
		t.Require("signing as "+s.id, sc.Add(sig))
	}
	return sc
}

// harmless is a command the suite's keys satisfy with the fewest
// signatures, for version: SetRetention to the current retention if the
// keys allow, else RotateDomainKeys. Without one the check is skipped.
func (e *Env) harmless(t *conformance.T, version uint64) *quorum.SignedCommand {
	st := e.cur().p.State
	if s, ok := e.pickSigners(st, quorum.SetRetention); ok {
		params, err := domain.ParamsRetention(st.Retention)
		t.Require("SetRetention parameters", err)
		return e.command(t, version, quorum.SetRetention, params, s)
	}
	if s, ok := e.pickSigners(st, quorum.RotateDomainKeys); ok {
		return e.command(t, version, quorum.RotateDomainKeys, nil, s)
	}
	t.Skipf("the keys given satisfy no rule of SetRetention or RotateDomainKeys: give --operator-key")
	return nil
}

func marshal(t *conformance.T, sc *quorum.SignedCommand) []byte {
	b, err := sc.Marshal()
	t.Require("encoding a signed command", err)
	return b
}

// export sends a signed command for Export (command 2) in a new session.
func (e *Env) export(t *conformance.T, sc []byte) ([]byte, *result) {
	return e.open(t).command(t, commandExport, sc)
}

// exportNext has the HSM export the token of the next state for a
// harmless command, which the suite remembers.
func (e *Env) exportNext(t *conformance.T) (*quorum.SignedCommand, *known) {
	sc := e.harmless(t, e.cur().p.State.Version)
	tok, r := e.export(t, marshal(t, sc))
	if r != nil {
		t.Fatalf("setup: Export of %s signed by its rule's signers: %s (see HSM-QRM-001)", commandName(t, sc), r)
	}
	k, err := e.remember(tok)
	t.Require("setup: decoding the exported token", err)
	return sc, k
}

func commandName(t *conformance.T, sc *quorum.SignedCommand) string {
	c, err := quorum.ParseCommand(sc.Command)
	t.Require("decoding a command", err)
	return c.Type.String()
}

// importToken sends a token for Import (command 3) in a new session.
func (e *Env) importToken(t *conformance.T, tok []byte) ([]byte, *result) {
	return e.open(t).command(t, commandImport, tok)
}

// unchanged ends the check as failed if the HSM's domain state is not
// before.
func (e *Env) unchanged(t *conformance.T, what string, before []byte) {
	if after := e.domainStatus(t); !bytes.Equal(after, before) {
		t.Mismatch(what+": the HSM's domain state (DomainStatus)", "unchanged", "changed")
	}
}

// restore offers the HSM the current token outside any session, for a
// check that may have moved it to a state the suite cannot follow.
func (e *Env) restore(t *conformance.T) {
	tok := e.Token()
	t.Cleanup(func(ctx context.Context) error {
		_, err := e.postContext(ctx, pathToken, tok)
		return err
	})
}

func (e *Env) tokenChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "HSM-TOK-001",
		Statement: "Importing the token of the state the HSM holds is refused with Alert 23 (only the next version is accepted) and changes nothing",
		Clause:    clauseImport,
		Mutation:  "hsm.import-accept-same",
		Run: func(t *conformance.T) {
			before := e.domainStatus(t)
			_, r := e.importToken(t, e.Token())
			if r == nil {
				t.Mismatch("Import of the HSM's own token", "400, "+alertName(alertRefused), "200: accepted")
			}
			expectAlert(t, "Import of the HSM's own token", r, alertRefused)
			e.unchanged(t, "after the refused import", before)
		},
	}, {
		ID:        "HSM-TOK-002",
		Statement: "Importing the next version's token (exported by the HSM for a command its rule allows) is accepted: the answer is the new version, DomainStatus is the token's state, Hellos name the new version",
		Clause:    clauseWire,
		Needs:     []conformance.Capability{CapDomainChange},
		Mutation:  "hsm.import-answer-stale-version",
		Run: func(t *conformance.T) {
			_, k := e.exportNext(t)
			out, r := e.importToken(t, k.raw)
			st := e.domainStatus(t) // follows the HSM to the new version, if it moved
			if r != nil {
				t.Mismatch("Import of the next token", "200 and the new version", r.String())
			}
			want := k.p.State.Version
			if v, ok := be64(out); !ok || v != want {
				t.Mismatch("Import's answer", fmt.Sprintf("u64 %d (the new version)", want), fmt.Sprintf("%x", out))
			}
			if !bytes.Equal(st, k.state) {
				t.Mismatch("DomainStatus after the import", "the token's state", "another state")
			}
			if e.cur() != k {
				t.Mismatch("a Hello naming the new version", "a Reply", "no session")
			}
		},
	}, {
		ID:        "HSM-TOK-003",
		Statement: "Importing a token of an older state version of the domain is refused with Alert 23 and changes nothing",
		Clause:    clauseImport,
		Mutation:  "hsm.import-accept-older",
		Run: func(t *conformance.T) {
			e.mu.Lock()
			old := e.older
			e.mu.Unlock()
			if old == nil {
				t.Skipf("no token older than the HSM's state: give --older-token, or let HSM-TOK-002 move the domain on (--allow-domain-change)")
			}
			before := e.domainStatus(t)
			_, r := e.importToken(t, old.raw)
			if r == nil {
				t.Mismatch(fmt.Sprintf("Import of the token of version %d (the HSM's is %d)", old.p.State.Version, e.cur().p.State.Version), "400, "+alertName(alertRefused), "200: accepted")
			}
			expectAlert(t, "Import of an older token", r, alertRefused)
			e.unchanged(t, "after the refused import", before)
		},
	}, {
		ID:        "HSM-TOK-004",
		Statement: "Importing the next version's token with a byte flipped (in its signature; in its key set) is refused with Alert 23 and changes nothing",
		Clause:    clauseImport,
		Mutation:  "hsm.import-signature-unchecked",
		Run: func(t *conformance.T) {
			_, k := e.exportNext(t)
			before := e.domainStatus(t)
			sig := bytes.Clone(k.raw)
			sig[len(sig)-1] ^= 1
			keys := bytes.Clone(k.raw)
			keys[6+3+len(k.p.Token.State)+12+2+5] ^= 1
			for _, c := range []struct {
				what string
				tok  []byte
			}{{"its signature", sig}, {"its key set", keys}} {
				_, r := e.importToken(t, c.tok)
				if r == nil {
					t.Mismatch("Import of the next token with a byte flipped in "+c.what, "400, "+alertName(alertRefused), "200: accepted")
				}
				expectAlert(t, "Import of the next token with a byte flipped in "+c.what, r, alertRefused)
			}
			e.unchanged(t, "after the refused imports", before)
		},
	}, {
		ID:        "HSM-TOK-005",
		Statement: "Importing a token of another domain that lists this HSM, signed by a member of that domain, is refused with Alert 23 and changes nothing",
		Clause:    clauseImport,
		Mutation:  "hsm.import-other-domain",
		Run: func(t *conformance.T) {
			s := e.open(t)
			tok := e.otherDomainToken(t, s.hsmID)
			before := e.domainStatus(t)
			e.restore(t)
			_, r := e.importToken(t, tok)
			if r == nil {
				t.Mismatch("Import of another domain's token", "400, "+alertName(alertRefused), "200: accepted")
			}
			expectAlert(t, "Import of another domain's token", r, alertRefused)
			e.unchanged(t, "after the refused import", before)
		},
	}}
}

// ephemeral is an ECDH key in memory, as sessionpkg.EphemeralKey.
type ephemeral struct{ k *ecdh.PrivateKey }

func (e ephemeral) PublicKey() *ecdh.PublicKey { return e.k.PublicKey() }
func (e ephemeral) Destroy() error             { return nil }
func (e ephemeral) ECDH(peer []byte) ([]byte, error) {
	p, err := ecdh.P384().NewPublicKey(peer)
	if err != nil {
		return nil, err
	}
	return e.k.ECDH(p)
}

// otherDomainToken makes the token of a domain of the suite's own: its
// name is not the HSM's, its members are the HSM (hsmID) and an HSM of the
// suite's (a key pair in memory) which exports it, two versions ahead of
// the HSM's.
func (e *Env) otherDomainToken(t *conformance.T, hsmID string) []byte {
	return e.forgedToken(t, hsmID, true)
}

// forgedToken is otherDomainToken, or with foreign false the same forgery
// under the HSM's own domain name.
func (e *Env) forgedToken(t *conformance.T, hsmID string, foreign bool) []byte {
	cur := e.cur().p.State
	me, ok := cur.Member(hsmID)
	if !ok {
		t.Fatalf("setup: %s is not a member of the domain", hsmID)
	}
	sigKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	t.Require("setup: a key", err)
	agr, err := ecdh.P384().GenerateKey(rand.Reader)
	t.Require("setup: a key", err)
	sigSPKI, err := x509.MarshalPKIXPublicKey(&sigKey.PublicKey)
	t.Require("setup: a key", err)
	agrSPKI, err := x509.MarshalPKIXPublicKey(agr.PublicKey())
	t.Require("setup: a key", err)
	sum := sha256.Sum256(sigSPKI)
	id := "hsm-" + hex.EncodeToString(sum[:])[:16]
	fake, err := domain.ParseMember(id, sigSPKI, agrSPKI)
	t.Require("setup: a member", err)
	members := []sessionpkg.Member{me, fake}
	slices.SortFunc(members, func(a, b sessionpkg.Member) int { return strings.Compare(a.ID, b.ID) })
	var keyID [keyIDSize]byte
	copy(keyID[:], randomBytes(keyIDSize))
	st := cur.Clone()
	st.Version, st.Members, st.Retention, st.Roots = cur.Version+2, members, 0, nil
	if foreign {
		st.Name = otherName(cur.Name)
	}
	st.Keys = []domain.KeyInfo{{ID: keyID, Created: uint64(time.Now().Unix()), Active: true}}
	params, err := domain.ParamsRetention(0)
	t.Require("setup: parameters", err)
	c, err := quorum.NewCommand(st.Name, st.Version-1, quorum.SetRetention, params, time.Now(), 0, func(b []byte) error { _, err := rand.Read(b); return err })
	t.Require("setup: a command", err)
	raw, err := c.Marshal()
	t.Require("setup: a command", err)
	tok, err := domain.SealToken(st, &quorum.SignedCommand{Command: raw}, [][]byte{randomBytes(32)}, domain.Exporter{
		ID: id, Signer: sigKey, Rand: rand.Reader,
		NewEphemeral: func() (sessionpkg.EphemeralKey, error) {
			k, err := ecdh.P384().GenerateKey(rand.Reader)
			return ephemeral{k}, err
		},
	})
	t.Require("setup: sealing the other domain's token", err)
	return tok
}

func (e *Env) quorumChecks() []conformance.Check {
	refused := func(t *conformance.T, what string, sc []byte) {
		_, r := e.export(t, sc)
		if r == nil {
			t.Mismatch(what, "400, "+alertName(alertRefused), "200: a token")
		}
		expectAlert(t, what, r, alertRefused)
	}
	retention := func(t *conformance.T) []byte {
		p, err := domain.ParamsRetention(e.cur().p.State.Retention)
		t.Require("SetRetention parameters", err)
		return p
	}
	return []conformance.Check{{
		ID:        "HSM-QRM-001",
		Statement: "Export of a command its rule allows (SetRetention signed by kms-operators, with the host's signature besides) answers the token of version+1: exported and signed by the HSM, its state what the command makes, the HSM's own state unchanged",
		Clause:    clauseWire,
		Needs:     []conformance.Capability{CapOperators},
		Mutation:  "hsm.quorum-extra-signer-refused",
		Run: func(t *conformance.T) {
			cur := e.cur()
			set, ok := e.pickSigners(cur.p.State, quorum.SetRetention)
			if !ok {
				t.Skipf("the operator keys given do not satisfy the rule of SetRetention")
			}
			for _, s := range e.signers {
				if !slices.ContainsFunc(set, func(x signerKey) bool { return x.id == s.id }) {
					set = append(set, s) // one more signer than the rule needs
					break
				}
			}
			sc := e.command(t, cur.p.State.Version, quorum.SetRetention, retention(t), set)
			before := e.domainStatus(t)
			s := e.open(t)
			tok, r := s.command(t, commandExport, marshal(t, sc))
			if r != nil {
				t.Mismatch(fmt.Sprintf("Export of SetRetention signed by %d operators", len(set)), "200 with a token", r.String())
			}
			p, err := domain.ParseToken(tok)
			t.Require("decoding the exported token", err)
			if p.Token.Exporter != s.hsmID {
				t.Mismatch("the token's exporter", s.hsmID, p.Token.Exporter)
			}
			if err := p.Verify(cur.p.State); err != nil {
				t.Mismatch("the token's signature", "by the exporting member HSM", err.Error())
			}
			want, err := domain.Apply(cur.p.State, sc, nil, time.Now().Unix())
			t.Require("the next state by domain.Apply", err)
			wantRaw, err := want.Marshal()
			t.Require("encoding the next state", err)
			if !bytes.Equal(p.Token.State, wantRaw) {
				t.Mismatch("the token's state", want.Summary(), p.State.Summary())
			}
			if !bytes.Equal(p.Token.Command, marshal(t, sc)) {
				t.Mismatch("the token's command", "the signed command exported, byte for byte", "other bytes")
			}
			e.unchanged(t, "after Export", before)
		},
	}, {
		ID:        "HSM-QRM-002",
		Statement: "Export of an under-signed command (SetRetention with one kms-operator signature fewer than its rule asks) is refused with Alert 23",
		Clause:    clauseRules,
		Needs:     []conformance.Capability{CapOperators},
		Mutation:  "hsm.quorum-undercount",
		Run: func(t *conformance.T) {
			st := e.cur().p.State
			for _, rule := range st.Rules[quorum.SetRetention] {
				for _, q := range rule {
					if q.N < 2 {
						continue
					}
					set, ok := e.meet(rule, map[string]int{q.Role: 1})
					if !ok {
						continue
					}
					sc := e.command(t, st.Version, quorum.SetRetention, retention(t), set)
					refused(t, fmt.Sprintf("Export of SetRetention with %d %s signatures where its rule (%s) asks %d", q.N-1, q.Role, rule, q.N), marshal(t, sc))
					return
				}
			}
			t.Skipf("no rule of SetRetention asks two or more of a role the operator keys given hold")
		},
	}, {
		ID:        "HSM-QRM-003",
		Statement: "Export of a command signed only by operators of a role its rule does not count (SetRetention signed by the service host) is refused with Alert 23",
		Clause:    clauseRules,
		Mutation:  "hsm.quorum-any-rule",
		Run: func(t *conformance.T) {
			st := e.cur().p.State
			host := e.signers[:1]
			for _, rule := range st.Rules[quorum.SetRetention] {
				if _, ok := e.meet(rule, nil); ok && len(rule) == 1 && rule[0].Role == quorum.RoleServiceHost {
					t.Skipf("the domain's rule of SetRetention (%s) counts the service host", rule)
				}
			}
			sc := e.command(t, st.Version, quorum.SetRetention, retention(t), host)
			refused(t, "Export of SetRetention signed by the service host "+e.HostID, marshal(t, sc))
		},
	}, {
		ID:        "HSM-QRM-004",
		Statement: "Export of a replayed command (the one that made the HSM's current state, naming the previous version) is refused with Alert 23",
		Clause:    clauseRules,
		Mutation:  "hsm.quorum-accept-older-version",
		Run: func(t *conformance.T) {
			refused(t, "Export of the command carried by the current token", e.cur().p.Token.Command)
		},
	}, {
		ID:        "HSM-QRM-005",
		Statement: "Export of a command satisfied by its rule but naming the next state version instead of the HSM's is refused with Alert 23",
		Clause:    clauseRules,
		Mutation:  "hsm.quorum-accept-newer-version",
		Run: func(t *conformance.T) {
			sc := e.harmless(t, e.cur().p.State.Version+1)
			refused(t, "Export of "+commandName(t, sc)+" for version+1", marshal(t, sc))
		},
	}, {
		ID:        "HSM-QRM-006",
		Statement: "Export of a command changed after it was signed (a byte of its nonce flipped) is refused with Alert 23",
		Clause:    clauseRules,
		Mutation:  "hsm.quorum-signature-unchecked",
		Run: func(t *conformance.T) {
			sc := e.harmless(t, e.cur().p.State.Version)
			c, err := quorum.ParseCommand(sc.Command)
			t.Require("decoding a command", err)
			// The nonce follows the header, the domain, the version, the
			// type and the parameters.
			off := 6 + 1 + len(c.Domain) + 8 + 2 + 3 + len(c.Params)
			tampered := bytes.Clone(sc.Command)
			tampered[off] ^= 1
			if _, err := quorum.ParseCommand(tampered); err != nil {
				t.Fatalf("setup: the tampered command does not decode: %v", err)
			}
			refused(t, "Export of a command whose nonce changed after signing", marshal(t, &quorum.SignedCommand{Command: tampered, Signatures: sc.Signatures}))
		},
	}}
}

// hijackChecks come last: an HSM that fails one has taken a forged domain
// and cannot serve the suite's sessions until it is restarted.
func (e *Env) hijackChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "HSM-TOK-006",
		Statement: "Importing a token of this HSM's own domain two versions ahead, exported by a member that only the token lists, is refused with Alert 23 and changes nothing",
		Clause:    clauseImport,
		Mutation:  "hsm.import-gap-any-member",
		Run: func(t *conformance.T) {
			s := e.open(t)
			tok := e.forgedToken(t, s.hsmID, false)
			before := e.domainStatus(t)
			e.restore(t)
			_, r := e.importToken(t, tok)
			if r == nil {
				t.Mismatch("Import of a token exported by a made-up member", "400, "+alertName(alertRefused), "200: accepted (the HSM took a domain from a stranger)")
			}
			expectAlert(t, "Import of a token exported by a made-up member", r, alertRefused)
			e.unchanged(t, "after the refused import", before)
		},
	}}
}
