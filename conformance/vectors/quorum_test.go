package vectors

import (
	"crypto/ecdsa"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/trentkms/trent/quorum"
)

// Quorum commands and signed commands (docs/protocol.md, Quorum commands).

const labCommand = "trent/v1 quorum command"

type command struct {
	domain          string
	version         uint64
	typ             uint16
	params, nonce   []byte
	issued, expires uint64
}

func (c *command) enc() []byte {
	return cat(hdr(0x10), v8([]byte(c.domain)), u64(c.version), u16(c.typ), v24(c.params), c.nonce, u64(c.issued), u64(c.expires))
}

type opSig struct {
	signer string
	alg    byte
	sig    []byte
}

func signedEnc(cmd []byte, sigs []opSig, count int) []byte {
	if count < 0 {
		count = len(sigs)
	}
	out := cat(hdr(0x11), v24(cmd), []byte{byte(count)})
	for _, s := range sigs {
		out = cat(out, v8([]byte(s.signer)), []byte{s.alg}, v16(s.sig))
	}
	return out
}

// operators of the quorum vectors: alice, bob (ECDSA P-384 kms-operators),
// carol (ML-DSA-87 kms-operator), host-1 (ECDSA service-host).
type operators struct {
	alice, bob, host *ecdsa.PrivateKey
	carol            *mldsa87.PrivateKey
	carolPub         *mldsa87.PublicKey
	carolSeed        []byte
}

func newOperators() *operators {
	var seed [mldsa87.SeedSize]byte
	copy(seed[:], "trent vector ML-DSA-87 seed carol")
	pub, priv := mldsa87.NewKeyFromSeed(&seed)
	return &operators{alice: signingKey("alice"), bob: signingKey("bob"), host: signingKey("host-1"),
		carol: priv, carolPub: pub, carolSeed: seed[:]}
}

func (o *operators) ec(signer string, k *ecdsa.PrivateKey, cmd []byte) opSig {
	return opSig{signer, 1, sign(k, labCommand, cmd)}
}

func (o *operators) ml(cmd []byte) opSig {
	sig := make([]byte, mldsa87.SignatureSize)
	if err := mldsa87.SignTo(o.carol, cmd, []byte(labCommand), false, sig); err != nil {
		panic(err)
	}
	return opSig{"carol", 2, sig}
}

func baseCommand() *command {
	return &command{domain: vDomain, version: vVersion, typ: 2, params: []byte("example parameters"),
		nonce: []byte("0123456789abcdef"), issued: vTime, expires: vTime + 600}
}

func genCommand() *vfile {
	f := &vfile{name: "quorum-command.json", object: "Quorum command", spec: "docs/protocol.md#command-type-0x10", prefix: "command",
		notes: []string{"The encoding alone: whether a command applies (domain, version, validity, rules) is in signed-command.json."},
		fields: []fieldDoc{
			{"domain", tStr, "decoded: domain"}, {"state_version", tInt, "decoded: state_version"},
			{"command_type", tInt, "decoded: command_type"}, {"params", tHex, "decoded: params"},
			{"nonce", tHex, "decoded: nonce"}, {"issued_at", tInt, "decoded: issued_at"}, {"expires_at", tInt, "decoded: expires_at"},
			{"command", tHex, "the encoded command (input)"},
		},
	}
	good := func(comment string, c *command) {
		f.add(comment, "").s("domain", c.domain).n("state_version", c.version).n("command_type", uint64(c.typ)).h("params", c.params).
			h("nonce", c.nonce).n("issued_at", c.issued).n("expires_at", c.expires).h("command", c.enc())
	}
	base := baseCommand()
	good("the AddMember command of quorum/testdata/command.txt", base)
	good("RotateDomainKeys with empty params", &command{vDomain, vVersion, 7, nil, fill(16, 7), vTime, vTime + 86400})
	good("params of 65536 bytes (the maximum)", &command{vDomain, vVersion, 6, fill(65536, 'p'), fill(16, 1), vTime, vTime + 600})
	good("command type 99, not in the table: the encoding allows it, the rule check refuses it", &command{vDomain, vVersion, 99, nil, fill(16, 2), vTime, vTime + 600})
	headerCases(f, "the command", base.enc(), 0x11, func(t *vtest) *vtest { return t }, "command")
	bad := func(comment, reason string, c []byte) { f.add(comment, reason).h("command", c) }
	mut := func(m func(c *command)) []byte { c := *baseCommand(); m(&c); return c.enc() }
	bad("domain of 65 bytes", "length-over-maximum", mut(func(c *command) { c.domain = longID("d", 65) }))
	bad("empty domain", "length-under-minimum", mut(func(c *command) { c.domain = "" }))
	bad("domain with a space", "bad-identifier", mut(func(c *command) { c.domain = "example domain" }))
	bad("params of 65537 bytes (maximum 65536)", "length-over-maximum", mut(func(c *command) { c.params = fill(65537, 'p') }))
	bad("params length field one more than the bytes that follow", "truncated", func() []byte {
		c := baseCommand().enc()
		i := 6 + 1 + len(vDomain) + 8 + 2
		return setByte(c, i+2, c[i+2]+200)
	}())
	return f
}

func checkCommand(t *testing.T, v *vec) {
	raw := v.hex("command")
	c, err := quorum.ParseCommand(raw)
	expectErr(t, v, err, quorumErr)
	if v.Result == invalid {
		return
	}
	again, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "re-encoding", again, raw)
	if c.Domain != v.str("domain") || c.StateVersion != v.num("state_version") || uint64(c.Type) != v.num("command_type") ||
		c.IssuedAt != v.num("issued_at") || c.ExpiresAt != v.num("expires_at") {
		t.Fatalf("%s: decoded fields differ", v.ID)
	}
	eq(t, v.ID, "params", c.Params, v.hex("params"))
	eq(t, v.ID, "nonce", c.Nonce[:], v.hex("nonce"))
}

var quorumErr = map[string]error{
	"truncated": quorum.ErrMalformed, "trailing-bytes": quorum.ErrMalformed, "bad-magic": quorum.ErrMalformed,
	"bad-type": quorum.ErrMalformed, "bad-identifier": quorum.ErrMalformed, "length-over-maximum": quorum.ErrMalformed,
	"length-under-minimum": quorum.ErrMalformed, "not-sorted": quorum.ErrMalformed, "duplicate": quorum.ErrMalformed,
	"bad-algorithm": quorum.ErrMalformed, "bad-embedded-object": quorum.ErrMalformed,
	"bad-version": quorum.ErrVersion, "bad-signature": quorum.ErrBadSignature, "unknown-signer": quorum.ErrUnknownSigner,
	"expired": quorum.ErrExpired, "not-yet-valid": quorum.ErrNotYetValid, "bad-validity": quorum.ErrBadValidity,
	"wrong-domain": quorum.ErrWrongDomain, "wrong-version": quorum.ErrWrongVersion, "no-rule": quorum.ErrNoRule,
}

func genSignedCommand() *vfile {
	o := newOperators()
	f := &vfile{name: "signed-command.json", object: "Signed quorum command", spec: "docs/protocol.md#signed-command-type-0x11", prefix: "signed-command",
		notes: []string{
			"Each test is checked against domain example-domain at state version 7 with the default rules (every type: 2 kms-operator; RotateDomainKeys also: 1 service-host) and four operators: alice and bob (kms-operator, ECDSA P-384, scalars alice_scalar and bob_scalar), carol (kms-operator, ML-DSA-87 from carol_seed; her public key is in signed-command-001) and host-1 (service-host, ECDSA P-384, host_scalar), at the time now.",
			"A valid test decodes and its signatures all verify; outcome says whether the rule is met (satisfied) or not yet (pending). An invalid one does not decode or is rejected (docs/protocol.md, The rule check).",
			"ECDSA signatures are deterministic (RFC 6979) and carol's are deterministic ML-DSA-87, so the files are reproducible.",
		},
		fields: []fieldDoc{
			{"alice_scalar", tHex, "alice's ECDSA P-384 scalar"}, {"bob_scalar", tHex, "bob's"}, {"host_scalar", tHex, "host-1's"},
			{"carol_seed", tHex, "carol's 32-byte ML-DSA-87 seed (FIPS 204 KeyGen's xi)"},
			{"carol_public_key", tHex, "carol's ML-DSA-87 public key (2592 bytes)"},
			{"now", tInt, "the checking time, Unix seconds"},
			{"command", tHex, "decoded: the encoded command"},
			{"signers", tStr, "decoded: the signers, comma-separated, in order"},
			{"command_digest", tHex, "SHA-384(\"trent/v1 quorum command\" || 00 || command): what ECDSA signers sign"},
			{"outcome", tStr, "satisfied or pending"},
			{"signed_command", tHex, "the encoded signed command (input)"},
		},
	}
	keys := func(t *vtest) *vtest {
		return t.h("alice_scalar", scalar("alice")).h("bob_scalar", scalar("bob")).h("host_scalar", scalar("host-1")).h("carol_seed", o.carolSeed)
	}
	cmd := baseCommand().enc()
	good := func(comment string, cmd []byte, sigs []opSig, outcome string, pub bool) {
		var names []string
		for _, s := range sigs {
			names = append(names, s.signer)
		}
		t := keys(f.add(comment, ""))
		if pub {
			b, _ := o.carolPub.MarshalBinary()
			t.h("carol_public_key", b)
		}
		t.n("now", vTime).h("command", cmd).s("signers", strings.Join(names, ",")).h("command_digest", labelled(labCommand, cmd)).
			s("outcome", outcome).h("signed_command", signedEnc(cmd, sigs, -1))
	}
	good("quorum/testdata/command.txt: AddMember signed by alice (ECDSA) and carol (ML-DSA-87)", cmd, []opSig{o.ec("alice", o.alice, cmd), o.ml(cmd)}, "satisfied", true)
	good("alice alone: one of two kms-operators", cmd, []opSig{o.ec("alice", o.alice, cmd)}, "pending", false)
	good("no signatures yet (count 0)", cmd, nil, "pending", false)
	rot := (&command{vDomain, vVersion, 7, nil, fill(16, 7), vTime, vTime + 600}).enc()
	good("RotateDomainKeys signed by host-1 alone (the service-host alternative)", rot, []opSig{o.ec("host-1", o.host, rot)}, "satisfied", false)
	good("alice and bob (two ECDSA kms-operators)", cmd, []opSig{o.ec("alice", o.alice, cmd), o.ec("bob", o.bob, cmd)}, "satisfied", false)

	base := signedEnc(cmd, []opSig{o.ec("alice", o.alice, cmd), o.ml(cmd)}, -1)
	std := func(t *vtest) *vtest { return keys(t).n("now", vTime) }
	headerCases(f, "the signed command", base, 0x10, std, "signed_command")
	bad := func(comment, reason string, raw []byte, now uint64) {
		keys(f.add(comment, reason)).n("now", now).h("signed_command", raw)
	}
	a, b, c := o.ec("alice", o.alice, cmd), o.ec("bob", o.bob, cmd), o.ml(cmd)
	bad("signers in decreasing order (carol, alice)", "not-sorted", signedEnc(cmd, []opSig{c, a}, -1), vTime)
	bad("alice twice", "duplicate", signedEnc(cmd, []opSig{a, a}, -1), vTime)
	{
		var many []opSig
		for i := range 33 {
			many = append(many, opSig{"op-" + string(rune('A'+i%26)) + string(rune('a'+i/26)), 1, a.sig})
		}
		bad("33 signatures (maximum 32)", "length-over-maximum", signedEnc(cmd, many, -1), vTime)
	}
	bad("signature algorithm 3", "bad-algorithm", signedEnc(cmd, []opSig{{"alice", 3, a.sig}}, -1), vTime)
	bad("an ML-DSA-87 signature of 4626 bytes (it is 4627)", "length-under-minimum", signedEnc(cmd, []opSig{{"carol", 2, c.sig[:4626]}}, -1), vTime)
	bad("an ECDSA signature of 105 bytes", "length-over-maximum", signedEnc(cmd, []opSig{{"alice", 1, fill(105, 0x30)}}, -1), vTime)
	bad("an ECDSA signature of 7 bytes", "length-under-minimum", signedEnc(cmd, []opSig{{"alice", 1, fill(7, 0x30)}}, -1), vTime)
	bad("the command inside followed by a byte", "bad-embedded-object", signedEnc(append(clone(cmd), 0), nil, -1), vTime)
	bad("count 2, one signature", "truncated", signedEnc(cmd, []opSig{a}, 2), vTime)
	bad("alice's ECDSA signature with its last byte changed", "bad-signature", signedEnc(cmd, []opSig{{"alice", 1, flip(a.sig, -1)}, c}, -1), vTime)
	bad("carol's ML-DSA-87 signature with its first byte changed", "bad-signature", signedEnc(cmd, []opSig{a, {"carol", 2, flip(c.sig, 0)}}, -1), vTime)
	bad("bob's signature presented as alice's", "bad-signature", signedEnc(cmd, []opSig{{"alice", 1, b.sig}, c}, -1), vTime)
	bad("alice's key used under the ML-DSA algorithm number", "bad-signature", signedEnc(cmd, []opSig{{"alice", 2, c.sig}}, -1), vTime)
	bad("mallory is not an operator", "unknown-signer", signedEnc(cmd, []opSig{a, o.ec("mallory", signingKey("mallory"), cmd)}, -1), vTime)
	mk := func(m func(c *command)) []byte {
		x := baseCommand()
		m(x)
		e := x.enc()
		return signedEnc(e, []opSig{o.ec("alice", o.alice, e), o.ec("bob", o.bob, e)}, -1)
	}
	bad("checked at expires_at", "expired", signedEnc(cmd, []opSig{a, b}, -1), vTime+600)
	bad("issued 301 s after now", "not-yet-valid", mk(func(c *command) { c.issued, c.expires = vTime+301, vTime+901 }), vTime)
	bad("expires_at equal to issued_at", "bad-validity", mk(func(c *command) { c.expires = c.issued }), vTime)
	bad("valid for 86401 s (maximum 86400)", "bad-validity", mk(func(c *command) { c.expires = c.issued + 86401 }), vTime)
	bad("for another domain", "wrong-domain", mk(func(c *command) { c.domain = "other-domain" }), vTime)
	bad("for state version 6 (the domain is at 7)", "wrong-version", mk(func(c *command) { c.version = 6 }), vTime)
	bad("command type 99: no rule", "no-rule", mk(func(c *command) { c.typ = 99 }), vTime)
	return f
}

func quorumState(t *testing.T, v *vec) *quorum.State {
	ak, _ := quorum.NewECDSAKey(&keyFromScalar(t, v.hex("alice_scalar")).PublicKey)
	bk, _ := quorum.NewECDSAKey(&keyFromScalar(t, v.hex("bob_scalar")).PublicKey)
	hk, _ := quorum.NewECDSAKey(&keyFromScalar(t, v.hex("host_scalar")).PublicKey)
	var seed [mldsa87.SeedSize]byte
	copy(seed[:], v.hex("carol_seed"))
	pub, _ := mldsa87.NewKeyFromSeed(&seed)
	ck, _ := quorum.NewMLDSAKey(pub)
	return &quorum.State{Domain: vDomain, Version: vVersion, Rules: quorum.DefaultRules(), Operators: []quorum.Operator{
		{ID: "alice", Role: quorum.RoleKMSOperator, Key: ak}, {ID: "bob", Role: quorum.RoleKMSOperator, Key: bk},
		{ID: "carol", Role: quorum.RoleKMSOperator, Key: ck}, {ID: "host-1", Role: quorum.RoleServiceHost, Key: hk}}}
}

func checkSignedCommand(t *testing.T, v *vec) {
	raw := v.hex("signed_command")
	st := quorumState(t, v)
	if v.has("carol_public_key") {
		b, _ := st.Operators[2].Key.Marshal()
		eq(t, v.ID, "carol's public key", b, v.hex("carol_public_key"))
	}
	sc, _, err := quorum.ParseSignedCommand(raw)
	if err == nil {
		res := quorum.Evaluate(st, sc.Command, sc.Signatures, time.Unix(int64(v.num("now")), 0))
		if res.Outcome == quorum.Rejected {
			err = res.Reason
		} else if v.Result == valid && res.Outcome.String() != v.str("outcome") {
			t.Fatalf("%s: outcome %v, want %s", v.ID, res.Outcome, v.str("outcome"))
		}
	}
	expectErr(t, v, err, quorumErr)
	if v.Result == invalid {
		return
	}
	again, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "re-encoding", again, raw)
	eq(t, v.ID, "command", sc.Command, v.hex("command"))
	eq(t, v.ID, "digest", labelled(labCommand, sc.Command), v.hex("command_digest"))
	var names []string
	for _, s := range sc.Signatures {
		names = append(names, s.Signer)
	}
	if strings.Join(names, ",") != v.str("signers") {
		t.Fatalf("%s: signers %v", v.ID, names)
	}
}
