package vectors

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/pem"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// Domain states and exported domain tokens (docs/protocol.md, Domain state,
// Exported domain token), built from the spec's encodings.

const (
	labToken     = "trent/v1 domain token"
	labTokenKeys = "trent/v1 domain token keys"
	labTokenDKEK = "trent/v1 domain token dkek"
)

type dMember struct {
	id          string
	sign        *ecdsa.PrivateKey
	agree       *ecdh.PrivateKey
	signSPKI    []byte
	agreeSPKI   []byte
	signName    string
	agreeScalar []byte
}

type dOperator struct {
	id, role string
	alg      byte
	key      []byte
}

type dRequirement struct {
	role string
	n    byte
}

type dRule struct {
	typ  uint16
	alts [][]dRequirement
}

type dKey struct {
	id      []byte
	created uint64
	active  byte
}

type dState struct {
	name      string
	version   uint64
	members   []dMember
	operators []dOperator
	rules     []dRule
	retention byte
	keys      []dKey
	roots     [][]byte
}

func (m dMember) enc() []byte { return cat(v8([]byte(m.id)), v16(m.signSPKI), v16(m.agreeSPKI)) }
func (o dOperator) enc() []byte {
	return cat(v8([]byte(o.id)), v8([]byte(o.role)), []byte{o.alg}, v16(o.key))
}

func encRules(rs []dRule) []byte {
	out := []byte{byte(len(rs))}
	for _, r := range rs {
		out = cat(out, u16(r.typ), encAlts(r.alts))
	}
	return out
}

func encAlts(alts [][]dRequirement) []byte {
	out := []byte{byte(len(alts))}
	for _, a := range alts {
		out = append(out, byte(len(a)))
		for _, q := range a {
			out = cat(out, v8([]byte(q.role)), []byte{q.n})
		}
	}
	return out
}

func encRoots(roots [][]byte) []byte {
	out := []byte{byte(len(roots))}
	for _, r := range roots {
		out = cat(out, v16(r))
	}
	return out
}

func (s *dState) membersOps() []byte {
	out := []byte{byte(len(s.members))}
	for _, m := range s.members {
		out = cat(out, m.enc())
	}
	out = append(out, byte(len(s.operators)))
	for _, o := range s.operators {
		out = cat(out, o.enc())
	}
	return out
}

func (s *dState) enc() []byte {
	out := cat(hdr(0x20), v8([]byte(s.name)), u64(s.version), s.membersOps(), encRules(s.rules), []byte{s.retention, byte(len(s.keys))})
	for _, k := range s.keys {
		out = cat(out, k.id, u64(k.created), []byte{k.active})
	}
	return cat(out, encRoots(s.roots))
}

// genesisParams is CreateDomain's params for s.
func (s *dState) genesisParams() []byte {
	return cat(s.membersOps(), encRules(s.rules), []byte{s.retention}, encRoots(s.roots))
}

func (s *dState) clone() *dState {
	c := *s
	c.members = slices.Clone(s.members)
	c.operators = slices.Clone(s.operators)
	c.rules = slices.Clone(s.rules)
	c.keys = slices.Clone(s.keys)
	c.roots = slices.Clone(s.roots)
	return &c
}

func newDMember(name string) dMember {
	s, a := signingKey(name+" signing"), ecdhKey(name+" agreement")
	return dMember{id: hsmID(s), sign: s, agree: a, signSPKI: spki(&s.PublicKey), agreeSPKI: spki(a.PublicKey()),
		signName: name + " signing", agreeScalar: scalar(name + " agreement")}
}

func defaultRules() []dRule {
	var rs []dRule
	for t := uint16(1); t <= 9; t++ {
		alts := [][]dRequirement{{{"kms-operator", 2}}}
		if t == 7 {
			alts = append(alts, []dRequirement{{"service-host", 1}})
		}
		rs = append(rs, dRule{t, alts})
	}
	return rs
}

// vState is domain/state_test.go's fixed domain at version 1: two
// members, alice (ECDSA), carol (ML-DSA-87) and host-1, default rules, one
// domain key.
func vState() *dState {
	ms := []dMember{newDMember("hsm-1"), newDMember("hsm-2")}
	slices.SortFunc(ms, func(a, b dMember) int { return strings.Compare(a.id, b.id) })
	o := newOperators()
	carol, _ := o.carolPub.MarshalBinary()
	return &dState{name: vDomain, version: 1, members: ms, operators: []dOperator{
		{"alice", "kms-operator", 1, spki(&o.alice.PublicKey)}, {"carol", "kms-operator", 2, carol},
		{"host-1", "service-host", 1, spki(&o.host.PublicKey)}},
		rules: defaultRules(), retention: 7, keys: []dKey{{[]byte("dk-1............"), vTime, 1}}}
}

// token is an exported domain token's fields.
type token struct {
	state, keyNonce, keys, dkek, cmd []byte
	exporter                         string
	sig                              []byte
}

func (t *token) unsigned() []byte {
	return cat(hdr(0x21), v24(t.state), t.keyNonce, v16(t.keys), v24(t.dkek), v24(t.cmd), v8([]byte(t.exporter)))
}
func (t *token) enc() []byte                  { return cat(t.unsigned(), v8(t.sig)) }
func (t *token) signWith(k *ecdsa.PrivateKey) { t.sig = sign(k, labToken, t.unsigned()) }

func keysAAD(state []byte) []byte { return cat(lab(labTokenKeys), labelled(labTokenKeys, state)) }
func dkekCtx(state []byte) []byte { return cat(lab(labTokenDKEK), labelled(labTokenDKEK, state)) }

type sealedToken struct {
	tok            *token
	dkek, keyNonce []byte
	keySet         []byte
}

// sealToken exports st (encoded state) with the DK values dks, as member ex.
func sealToken(st *dState, cmd []byte, dks [][]byte, ex dMember, rngName, dEName string) *sealedToken {
	state := st.enc()
	rnd := rng(rngName, 44)
	dkek, nonce := rnd[:32], rnd[32:]
	var set []byte
	for i, k := range st.keys {
		set = cat(set, k.id, dks[i])
	}
	var rs []opRecipient
	for _, m := range st.members {
		rs = append(rs, opRecipient{m.id, m.agree})
	}
	op := sealOnePass(ex.id, ex.sign, ecdhKey(dEName), dkekCtx(state), dkek, rs)
	t := &token{state: state, keyNonce: nonce, keys: seal(dkek, nonce, set, keysAAD(state)), dkek: op.enc(), cmd: cmd, exporter: ex.id}
	t.signWith(ex.sign)
	return &sealedToken{t, dkek, nonce, set}
}

func genesisCommand(st *dState) []byte {
	o := newOperators()
	c := (&command{st.name, 0, 1, st.genesisParams(), []byte("genesis nonce..."), vTime, vTime + 600}).enc()
	return signedEnc(c, []opSig{o.ec("alice", o.alice, c), o.ml(c)}, -1)
}

// rotation is version 2 of vState: RotateDomainKeys signed by host-1.
func rotation() (*dState, []byte) {
	o := newOperators()
	c := (&command{vDomain, 1, 7, nil, []byte("rotate nonce...."), vTime + 3600, vTime + 4200}).enc()
	st := vState()
	st.version = 2
	st.keys = []dKey{{[]byte("dk-1............"), vTime, 0}, {[]byte("dk-2............"), vTime + 3600, 1}}
	return st, signedEnc(c, []opSig{o.ec("host-1", o.host, c)}, -1)
}

func nitroRoot() []byte {
	data, err := os.ReadFile("../../nitro/aws-nitro-root.pem")
	if err != nil {
		panic(err)
	}
	b, _ := pem.Decode(data)
	return b.Bytes
}

func genState() *vfile {
	f := &vfile{name: "domain-state.json", object: "Domain state", spec: "docs/protocol.md#domain-state-type-0x20", prefix: "state",
		notes: []string{
			"Members' keys: signing and agreement scalars SHA-384(\"trent vector key hsm-N signing|agreement\"); operators alice and host-1 (ECDSA P-384), carol (ML-DSA-87) as in signed-command.json. A valid state decodes, satisfies every invariant of docs/protocol.md and re-encodes to the same bytes; an invalid one breaks one rule.",
			"The attestation root in state-003 is the AWS Nitro Enclaves Root-G1 certificate (nitro/aws-nitro-root.pem, SHA-256 of the DER 641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b).",
		},
		fields: []fieldDoc{
			{"name", tStr, "decoded: name"}, {"version", tInt, "decoded: version"},
			{"member_ids", tStr, "decoded: member IDs, comma-separated"}, {"operator_ids", tStr, "decoded: operator IDs, comma-separated"},
			{"retention", tInt, "decoded: retention"}, {"key_ids", tList, "decoded: domain key IDs, oldest first"},
			{"active_key_id", tHex, "decoded: the active key's ID"}, {"root_count", tInt, "decoded: number of attestation roots"},
			{"state", tHex, "the encoded state (input)"},
		},
	}
	good := func(comment string, s *dState) {
		var ms, os []string
		for _, m := range s.members {
			ms = append(ms, m.id)
		}
		for _, o := range s.operators {
			os = append(os, o.id)
		}
		var ids [][]byte
		var active []byte
		for _, k := range s.keys {
			ids = append(ids, k.id)
			if k.active == 1 {
				active = k.id
			}
		}
		f.add(comment, "").s("name", s.name).n("version", s.version).s("member_ids", strings.Join(ms, ",")).
			s("operator_ids", strings.Join(os, ",")).n("retention", uint64(s.retention)).list("key_ids", ids).
			h("active_key_id", active).n("root_count", uint64(len(s.roots))).h("state", s.enc())
	}
	base := vState()
	good("the genesis state of domain/testdata/token.txt", base)
	rot, _ := rotation()
	good("version 2 after RotateDomainKeys: two keys, the second active", rot)
	{
		s := vState()
		s.retention, s.roots = 0, [][]byte{nitroRoot()}
		s.rules[1].alts = append(s.rules[1].alts, []dRequirement{{"kms-operator", 1}, {"service-host", 1}})
		good("retention 0, one attestation root, AddMember with two alternatives", s)
	}
	headerCases(f, "the state", base.enc(), 0x21, func(t *vtest) *vtest { return t }, "state")
	bad := func(comment, reason string, m func(s *dState)) {
		s := vState()
		m(s)
		f.add(comment, reason).h("state", s.enc())
	}
	bad("a member whose ID is not what its signing key gives", "bad-identifier", func(s *dState) { s.members[0].id = "hsm-0000000000000000" })
	bad("members in decreasing ID order", "not-sorted", func(s *dState) { s.members[0], s.members[1] = s.members[1], s.members[0] })
	bad("the same member twice", "duplicate", func(s *dState) { s.members[1] = s.members[0] })
	bad("no members", "bad-count", func(s *dState) { s.members = nil })
	bad("a member signing key on P-256", "invalid-point", func(s *dState) {
		k, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar("p256")[:32])
		s.members[0].signSPKI = spki(&k.PublicKey)
	})
	bad("operators in decreasing ID order", "not-sorted", func(s *dState) { s.operators[0], s.operators[1] = s.operators[1], s.operators[0] })
	bad("a service-host with an ML-DSA-87 key", "invalid-state", func(s *dState) { s.operators[1].role = "service-host" })
	bad("an operator key algorithm 3", "bad-algorithm", func(s *dState) { s.operators[0].alg = 3 })
	bad("65 operators (maximum 64)", "length-over-maximum", func(s *dState) {
		s.operators = nil
		for i := range 65 {
			s.operators = append(s.operators, dOperator{"op-" + string(rune('a'+i/26)) + string(rune('a'+i%26)), "kms-operator", 1, spki(&signingKey("alice").PublicKey)})
		}
	})
	bad("rule types not in increasing order", "not-sorted", func(s *dState) { s.rules[0], s.rules[1] = s.rules[1], s.rules[0] })
	bad("no rule for SetRetention (8)", "invalid-state", func(s *dState) { s.rules = slices.Delete(s.rules, 7, 8) })
	bad("a rule with no alternatives", "bad-count", func(s *dState) { s.rules[0].alts = nil })
	bad("a rule with 9 alternatives (maximum 8)", "bad-count", func(s *dState) {
		for range 8 {
			s.rules[0].alts = append(s.rules[0].alts, []dRequirement{{"kms-operator", 2}})
		}
	})
	bad("a requirement of N = 0", "bad-count", func(s *dState) { s.rules[0].alts[0][0].n = 0 })
	bad("retention 32 (maximum 31)", "length-over-maximum", func(s *dState) { s.retention = 32 })
	bad("two active keys", "invalid-state", func(s *dState) { s.keys = append(s.keys, dKey{[]byte("dk-2............"), vTime + 1, 1}) })
	bad("no active key", "invalid-state", func(s *dState) { s.keys[0].active = 0 })
	bad("an active byte of 2", "invalid-state", func(s *dState) { s.keys[0].active = 2 })
	bad("two keys with retention 0", "invalid-state", func(s *dState) {
		s.retention = 0
		s.keys = []dKey{{[]byte("dk-0............"), vTime - 1, 0}, s.keys[0]}
	})
	bad("the same key ID twice", "duplicate", func(s *dState) { s.keys = []dKey{{s.keys[0].id, vTime - 1, 0}, s.keys[0]} })
	bad("keys not oldest first", "not-sorted", func(s *dState) { s.keys = []dKey{{[]byte("dk-0............"), vTime + 1, 0}, s.keys[0]} })
	bad("17 attestation roots (maximum 16)", "length-over-maximum", func(s *dState) {
		for range 17 {
			s.roots = append(s.roots, nitroRoot())
		}
	})
	bad("an attestation root that is not a certificate", "bad-embedded-object", func(s *dState) { s.roots = [][]byte{[]byte("not a certificate")} })
	bad("an empty attestation root", "length-under-minimum", func(s *dState) { s.roots = [][]byte{nil} })
	bad("an empty name", "length-under-minimum", func(s *dState) { s.name = "" })
	return f
}

func checkState(t *testing.T, v *vec) {
	raw := v.hex("state")
	st, err := domain.ParseState(raw)
	if v.Result == invalid {
		want := []error{domain.ErrMalformed, domain.ErrInvalid}
		if v.Reason == "bad-version" {
			want = []error{domain.ErrVersion}
		}
		if err == nil || !slices.ContainsFunc(want, func(w error) bool { return errors.Is(err, w) }) {
			t.Fatalf("%s: %v, want one of %v", v.ID, err, want)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "re-encoding", again, raw)
	var ms, os []string
	for _, m := range st.Members {
		ms = append(ms, m.ID)
	}
	for _, o := range st.Operators {
		os = append(os, o.ID)
	}
	if st.Name != v.str("name") || st.Version != v.num("version") || strings.Join(ms, ",") != v.str("member_ids") ||
		strings.Join(os, ",") != v.str("operator_ids") || uint64(st.Retention) != v.num("retention") || uint64(len(st.Roots)) != v.num("root_count") {
		t.Fatalf("%s: decoded fields differ", v.ID)
	}
	ids := v.list("key_ids")
	if len(ids) != len(st.Keys) {
		t.Fatalf("%s: %d keys", v.ID, len(st.Keys))
	}
	for i, k := range st.Keys {
		eq(t, v.ID, "key ID", k.ID[:], ids[i])
	}
	a, _ := st.ActiveKey()
	eq(t, v.ID, "active key", a.ID[:], v.hex("active_key_id"))
}

func genToken() *vfile {
	f := &vfile{name: "domain-token.json", object: "Exported domain token", spec: "docs/protocol.md#exported-domain-token-type-0x21", prefix: "token",
		notes: []string{
			"An importing HSM with no state (previous_state empty) accepts a genesis token: signed by a member it lists, its state what its CreateDomain command makes (checked at the command's issued_at). With previous_state it accepts the next version only: exporter a member of previous_state, signature, state equal to what the command makes of previous_state at now.",
			"Both members then open the DKEK (one-pass, context dkek_context) with their agreement scalars and the key set (AAD keys_aad), and find domain_keys in the state's key order. The exporter drew DKEK || key_nonce from its RNG (token_random) and dE (de_scalar).",
			keyNote,
		},
		fields: []fieldDoc{
			{"previous_state", tHex, "the importing HSM's current state (empty: none)"},
			{"now", tInt, "the importing HSM's clock"},
			{"member_a_id", tStr, "first member"}, {"member_a_agreement_scalar", tHex, "its agreement scalar"},
			{"member_b_id", tStr, "second member"}, {"member_b_agreement_scalar", tHex, "its agreement scalar"},
			{"exporter_signing_scalar", tHex, "the exporter's signing scalar"}, {"de_scalar", tHex, "the one-pass ephemeral scalar"},
			{"token_random", tHex, "the exporter's 44 random bytes: DKEK || key_nonce"},
			{"state", tHex, "decoded: the state"}, {"signed_command", tHex, "decoded: the signed command"},
			{"exporter", tStr, "decoded: the exporter"},
			{"keys_aad", tHex, "\"trent/v1 domain token keys\" || 00 || H(that || state)"},
			{"dkek_context", tHex, "\"trent/v1 domain token dkek\" || 00 || H(that || state)"},
			{"key_set", tHex, "the plaintext of keys: key_id || key for each key"},
			{"domain_keys", tList, "the domain key values, in the state's order"},
			{"token", tHex, "the encoded token (input)"},
		},
	}
	st := vState()
	gcmd := genesisCommand(st)
	dk1, dk2 := rng("dk", 32), rng("dk 2", 32)
	a, b := st.members[0], st.members[1]
	who := func(t *vtest) *vtest {
		return t.s("member_a_id", a.id).h("member_a_agreement_scalar", a.agreeScalar).s("member_b_id", b.id).h("member_b_agreement_scalar", b.agreeScalar)
	}
	good := func(comment string, prev []byte, now uint64, s *dState, cmd []byte, dks [][]byte, ex dMember, rn, de string) *sealedToken {
		x := sealToken(s, cmd, dks, ex, rn, de)
		who(f.add(comment, "").h("previous_state", prev).n("now", now)).h("exporter_signing_scalar", scalar(ex.signName)).
			h("de_scalar", scalar(de)).h("token_random", rng(rn, 44)).h("state", x.tok.state).h("signed_command", cmd).
			s("exporter", ex.id).h("keys_aad", keysAAD(x.tok.state)).h("dkek_context", dkekCtx(x.tok.state)).h("key_set", x.keySet).
			list("domain_keys", dks).h("token", x.tok.enc())
		return x
	}
	g := good("the genesis token of domain/testdata/token.txt", nil, vTime, st, gcmd, [][]byte{dk1}, a, "token", "dE token")
	rst, rcmd := rotation()
	good("version 2: RotateDomainKeys signed by host-1, exported by the second member", st.enc(), vTime+3600, rst, rcmd, [][]byte{dk1, dk2}, b, "token 2", "dE token 2")

	std := func(t *vtest) *vtest { return who(t.h("previous_state", nil).n("now", vTime)) }
	headerCases(f, "the token", g.tok.enc(), 0x20, std, "token")
	bad := func(comment, reason string, raw []byte) { std(f.add(comment, reason)).h("token", raw) }
	mut := func(m func(t *token), signer *ecdsa.PrivateKey) []byte {
		c := *g.tok
		m(&c)
		c.signWith(signer)
		return c.enc()
	}
	bad("signature's last byte changed", "bad-signature", flip(g.tok.enc(), -1))
	bad("signed by the other member's key", "bad-signature", mut(func(*token) {}, b.sign))
	bad("exporter not a member, signing with its own key", "not-member", mut(func(t *token) { t.exporter = hsmID(signingKey("hsm-3 signing")) }, signingKey("hsm-3 signing")))
	{
		c := *g.tok
		c.sig = fill(105, 0x30)
		bad("a 105-byte signature", "length-over-maximum", c.enc())
	}
	bad("keys 48 bytes longer than the state's one key needs (re-signed)", "bad-length", mut(func(t *token) { t.keys = cat(t.keys, zeros(48)) }, a.sign))
	bad("the state inside followed by a byte (re-signed)", "bad-embedded-object", mut(func(t *token) { t.state = cat(t.state, []byte{0}) }, a.sign))
	bad("the DKEK field is not a one-pass message (re-signed)", "bad-embedded-object", mut(func(t *token) { t.dkek = setByte(t.dkek, 5, 7) }, a.sign))
	bad("the command field is not a signed command (re-signed)", "bad-embedded-object", mut(func(t *token) { t.cmd = setByte(t.cmd, 5, 0x10) }, a.sign))
	bad("keys' last byte (tag) changed (re-signed)", "bad-tag", mut(func(t *token) { t.keys = flip(t.keys, -1) }, a.sign))
	{
		other := st.clone()
		other.version = 9
		bad("the DKEK wrapped with the context of another state (re-signed)", "wrong-context", mut(func(t *token) {
			var rs []opRecipient
			for _, m := range st.members {
				rs = append(rs, opRecipient{m.id, m.agree})
			}
			t.dkek = sealOnePass(a.id, a.sign, ecdhKey("dE token"), dkekCtx(other.enc()), g.dkek, rs).enc()
		}, a.sign))
	}
	{
		s2 := st.clone()
		s2.retention = 6
		x := sealToken(s2, gcmd, [][]byte{dk1}, a, "token", "dE token")
		bad("a state with retention 6, not what the CreateDomain command (retention 7) makes", "state-mismatch", x.tok.enc())
	}
	who(f.add("the genesis token offered to an HSM already at version 1", "stale").h("previous_state", st.enc()).n("now", vTime)).h("token", g.tok.enc())
	{
		x := sealToken(rst, rcmd, [][]byte{dk1, dk2}, b, "token 2", "dE token 2")
		who(f.add("the version 2 token at expires_at of its command", "expired").h("previous_state", st.enc()).n("now", vTime+4200)).h("token", x.tok.enc())
	}
	return f
}

var tokenErr = map[string][]error{
	"truncated": {domain.ErrMalformed}, "trailing-bytes": {domain.ErrMalformed}, "bad-magic": {domain.ErrMalformed},
	"bad-type": {domain.ErrMalformed}, "length-over-maximum": {domain.ErrMalformed}, "bad-length": {domain.ErrMalformed},
	"bad-version":         {domain.ErrVersion},
	"bad-embedded-object": {domain.ErrMalformed, session.ErrMalformed, quorum.ErrMalformed},
	"bad-signature":       {domain.ErrTokenSignature}, "not-member": {domain.ErrTokenExporter},
	"bad-tag": {domain.ErrTokenKeys}, "wrong-context": {domain.ErrTokenKeys},
	"state-mismatch": {domain.ErrMismatch}, "stale": {domain.ErrStale}, "expired": {quorum.ErrExpired},
}

func checkToken(t *testing.T, v *vec) {
	raw := v.hex("token")
	var cur *domain.State
	if prev := v.hex("previous_state"); len(prev) > 0 {
		var err error
		if cur, err = domain.ParseState(prev); err != nil {
			t.Fatal(err)
		}
	}
	p, err := domain.ParseToken(raw)
	var keys [][][]byte
	if err == nil {
		err = domain.VerifyTransition(cur, p, int64(v.num("now")))
	}
	if err == nil {
		senders := cur
		if senders == nil {
			senders = p.State
		}
		for _, m := range []string{"a", "b"} {
			k := ecdhFromScalar(t, v.hex("member_"+m+"_agreement_scalar"))
			var got [][]byte
			if got, err = p.OpenKeys(senders, v.str("member_"+m+"_id"), ephemeral(k)); err != nil {
				break
			}
			keys = append(keys, got)
		}
	}
	if v.Result == invalid {
		want := tokenErr[v.Reason]
		if err == nil || !slices.ContainsFunc(want, func(w error) bool { return errors.Is(err, w) }) {
			t.Fatalf("%s: %v, want one of %v", v.ID, err, want)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range keys {
		want := v.list("domain_keys")
		if len(got) != len(want) {
			t.Fatalf("%s: %d keys", v.ID, len(got))
		}
		for i := range got {
			eq(t, v.ID, "domain key", got[i], want[i])
		}
	}
	again, err := p.Token.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "re-encoding", again, raw)
	eq(t, v.ID, "state", p.Token.State, v.hex("state"))
	eq(t, v.ID, "command", p.Token.Command, v.hex("signed_command"))
	if p.Token.Exporter != v.str("exporter") {
		t.Fatalf("%s: exporter", v.ID)
	}
	// The spec's derivations: the key set opens under the DKEK.
	rnd := v.hex("token_random")
	set, err := gcm(rnd[:32]).Open(nil, p.Token.KeyNonce[:], p.Token.Keys, v.hex("keys_aad"))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "key set", set, v.hex("key_set"))
	eq(t, v.ID, "keys AAD", keysAAD(p.Token.State), v.hex("keys_aad"))
	eq(t, v.ID, "DKEK context", dkekCtx(p.Token.State), v.hex("dkek_context"))
	eq(t, v.ID, "key nonce", p.Token.KeyNonce[:], rnd[32:])
	// Trent's exporter makes the same token from the same inputs.
	sc, _, err := quorum.ParseSignedCommand(p.Token.Command)
	if err != nil {
		t.Fatal(err)
	}
	made, err := domain.SealToken(p.State, sc, v.list("domain_keys"), domain.Exporter{
		ID: p.Token.Exporter, Signer: testvecSigner(keyFromScalar(t, v.hex("exporter_signing_scalar"))),
		Rand: bytesReader(rnd),
		NewEphemeral: func() (session.EphemeralKey, error) {
			return ephemeral(ecdhFromScalar(t, v.hex("de_scalar"))), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "Trent's token", made, raw)
}
