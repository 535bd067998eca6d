package ceremony_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/quorum"
)

func rootFile(t *testing.T, dir, name string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now, NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	path := filepath.Join(dir, name+".pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	return path
}

func TestProposeEachType(t *testing.T) {
	s := newCeremonyState(t)
	dir := t.TempDir()
	dave := newOp(t, dir, "dave", quorum.MLDSA87)
	m2, m2File := newMember(t, dir)
	root := rootFile(t, dir, "root-a")
	for _, tc := range []struct {
		p      ceremony.Proposal
		change string
		check  func(t *testing.T, next *domain.State)
	}{
		{ceremony.Proposal{Type: quorum.AddMember, MemberFiles: []string{m2File}}, "add member HSM " + m2.ID,
			func(t *testing.T, next *domain.State) { assert.Len(t, next.Members, 2) }},
		{ceremony.Proposal{Type: quorum.RemoveOperator, ID: "carol"}, "remove operator carol",
			func(t *testing.T, next *domain.State) { assert.Len(t, next.Operators, 2) }},
		{ceremony.Proposal{Type: quorum.AddOperator, OperatorFiles: []string{dave.entryFile}, Role: "auditor"}, "add operator dave as auditor (ML-DSA-87 sha256:",
			func(t *testing.T, next *domain.State) { assert.Equal(t, "dave", next.Operators[3].ID) }},
		{ceremony.Proposal{Type: quorum.SetRule, RuleFor: "AddMember", Rules: []string{"3 kms-operator", "1 kms-operator + 1 service-host"}},
			"set the rule for AddMember to 3 kms-operator | 1 kms-operator + 1 service-host",
			func(t *testing.T, next *domain.State) { assert.Len(t, next.Rules[quorum.AddMember], 2) }},
		{ceremony.Proposal{Type: quorum.SetRule, RuleFor: "SetRule", Rules: []string{"3 kms-operator"}}, "set the rule for SetRule to 3 kms-operator",
			func(t *testing.T, next *domain.State) {
				assert.Equal(t, []quorum.Rule{{{Role: "kms-operator", N: 3}}}, next.Rules[quorum.SetRule], "the dry run keeps a new rule for its own type")
			}},
		{ceremony.Proposal{Type: quorum.RotateDomainKeys}, "rotate the domain keys",
			func(t *testing.T, next *domain.State) { assert.Len(t, next.Keys, 2) }},
		{ceremony.Proposal{Type: quorum.SetRetention, Retention: retention(3)}, "keep 3 deactivated domain keys",
			func(t *testing.T, next *domain.State) { assert.Equal(t, 3, next.Retention) }},
		{ceremony.Proposal{Type: quorum.SetTrustedAttestationRoots, RootFiles: []string{root}}, `trust attestation roots "CN=root-a" sha256:`,
			func(t *testing.T, next *domain.State) { assert.Len(t, next.Roots, 1) }},
		{ceremony.Proposal{Type: quorum.SetTrustedAttestationRoots, ClearRoots: true}, "trust no attestation root",
			func(t *testing.T, next *domain.State) { assert.Empty(t, next.Roots) }},
		{ceremony.Proposal{Type: quorum.SetPeerRegion, Region: "us-west-2", Domain: "west", MemberFiles: []string{m2File}},
			`trust peer region us-west-2 (domain "west") for multi-Region key material from and to its HSMs ` + m2.ID,
			func(t *testing.T, next *domain.State) {
				p, ok := next.PeerRegion("us-west-2")
				assert.True(t, ok)
				assert.Equal(t, []string{m2.ID}, []string{p.Members[0].ID})
				_, err := next.Marshal()
				assert.NoError(t, err)
			}},
	} {
		t.Run(tc.p.Type.String(), func(t *testing.T) {
			p := tc.p
			p.Current = s.st
			res, err := ceremony.Propose(&p, now)
			require.NoError(t, err)
			assert.Empty(t, res.Lockouts)
			c := res.File.Command
			assert.Equal(t, "test", c.Domain)
			assert.Equal(t, uint64(3), c.StateVersion)
			assert.Equal(t, p.Type, c.Type)
			assert.Equal(t, uint64(now.Unix()), c.IssuedAt)
			assert.Equal(t, uint64(now.Add(quorum.DefaultExpiry).Unix()), c.ExpiresAt)
			assert.Empty(t, res.File.Signed.Signatures)
			assert.Contains(t, res.File.Summary().Change, tc.change)
			assert.Equal(t, uint64(4), res.Next.Version)
			tc.check(t, res.Next)
			require.NoError(t, res.Next.Validate())
			// Signed by two operators, it is satisfied and applies for real.
			s.alice.sign(t, res.File, s.st)
			s.carol.sign(t, res.File, s.st)
			st, err := ceremony.Check(res.File, s.st, now)
			require.NoError(t, err)
			require.NoError(t, st.Err())
			var newKey *domain.KeyInfo
			if p.Type == quorum.RotateDomainKeys {
				newKey = &domain.KeyInfo{ID: [16]byte{2}}
			}
			next, err := domain.Apply(s.st, res.File.Signed, newKey, now.Unix())
			require.NoError(t, err)
			assert.Equal(t, len(res.Next.Operators), len(next.Operators))
		})
	}
}

func TestProposeRefusals(t *testing.T) {
	s := newCeremonyState(t)
	dir := t.TempDir()
	dave := newOp(t, dir, "dave", quorum.MLDSA87)
	_, mFile := newMember(t, dir)
	root := rootFile(t, dir, "root-a")
	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not a certificate"), 0o644))
	for _, tc := range []struct {
		name string
		p    ceremony.Proposal
		want string
	}{
		{"flag of another type", ceremony.Proposal{Type: quorum.SetRetention, Retention: retention(3), Role: "x"}, "--role is not a parameter of SetRetention"},
		{"flags of another type", ceremony.Proposal{Type: quorum.RotateDomainKeys, Retention: retention(3), Role: "x"}, "--retention, --role are not parameters of RotateDomainKeys"},
		{"no member", ceremony.Proposal{Type: quorum.AddMember}, "AddMember takes one --member"},
		{"two members", ceremony.Proposal{Type: quorum.AddMember, MemberFiles: []string{mFile, mFile}}, "AddMember takes one --member"},
		{"member file missing", ceremony.Proposal{Type: quorum.AddMember, MemberFiles: []string{filepath.Join(dir, "nope")}}, "no such file"},
		{"member exists", ceremony.Proposal{Type: quorum.AddMember, MemberFiles: []string{mFile}}, ""},
		{"no id", ceremony.Proposal{Type: quorum.RemoveMember}, "needs --id"},
		{"remove the last member", ceremony.Proposal{Type: quorum.RemoveMember, ID: s.st.Members[0].ID}, "cannot remove the last member"},
		{"remove nobody", ceremony.Proposal{Type: quorum.RemoveOperator, ID: "zed"}, `no operator "zed"`},
		{"operator exists", ceremony.Proposal{Type: quorum.AddOperator, OperatorFiles: []string{s.alice.entryFile}, Role: "kms-operator"}, `operator "alice" exists`},
		{"operator without role", ceremony.Proposal{Type: quorum.AddOperator, OperatorFiles: []string{dave.entryFile}}, "takes one --operator and a --role"},
		{"ML-DSA service host", ceremony.Proposal{Type: quorum.AddOperator, OperatorFiles: []string{dave.entryFile}, Role: quorum.RoleServiceHost}, "needs an ECDSA P-384 key"},
		{"rule for unknown type", ceremony.Proposal{Type: quorum.SetRule, RuleFor: "Nope", Rules: []string{"1 a"}}, "unknown command type"},
		{"bad rule", ceremony.Proposal{Type: quorum.SetRule, RuleFor: "AddMember", Rules: []string{"two a"}}, "count"},
		{"too many alternatives", ceremony.Proposal{Type: quorum.SetRule, RuleFor: "AddMember", Rules: strings.Split(strings.Repeat("1 kms-operator,", domain.MaxAlternatives+1), ",")[:domain.MaxAlternatives+1]}, "at most 8"},
		{"rule lockout", ceremony.Proposal{Type: quorum.SetRule, RuleFor: "AddMember", Rules: []string{"4 kms-operator"}}, "could then sign AddMember"},
		{"rule lockout of an unheld role", ceremony.Proposal{Type: quorum.SetRule, RuleFor: "SetRule", Rules: []string{"1 auditor"}}, "could then sign SetRule"},
		{"no retention", ceremony.Proposal{Type: quorum.SetRetention}, "takes --retention"},
		{"retention out of range", ceremony.Proposal{Type: quorum.SetRetention, Retention: retention(40)}, "retention 40"},
		{"no roots", ceremony.Proposal{Type: quorum.SetTrustedAttestationRoots}, "--clear-roots for none"},
		{"roots and clear", ceremony.Proposal{Type: quorum.SetTrustedAttestationRoots, RootFiles: []string{root}, ClearRoots: true}, "together"},
		{"bad root", ceremony.Proposal{Type: quorum.SetTrustedAttestationRoots, RootFiles: []string{bad}}, "outside PEM blocks"},
		{"expiry too long", ceremony.Proposal{Type: quorum.RotateDomainKeys, Expires: 25 * time.Hour}, "expiry"},
		{"no status", ceremony.Proposal{Type: quorum.RotateDomainKeys}, "needs the domain's current status"},
		{"CreateDomain with a status", ceremony.Proposal{Type: quorum.CreateDomain, Domain: "x"}, "give no domain status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if tc.name != "no status" {
				p.Current = s.st
			}
			if tc.name == "member exists" {
				m, err := ceremony.ReadMember(mFile)
				require.NoError(t, err)
				p.Current = s.st.Clone()
				p.Current.Members = append(p.Current.Members, m)
				if p.Current.Members[0].ID > m.ID {
					p.Current.Members[0], p.Current.Members[1] = p.Current.Members[1], p.Current.Members[0]
				}
				tc.want = `member "` + m.ID + `" exists`
			}
			_, err := ceremony.Propose(&p, now)
			require.ErrorContains(t, err, tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "ceremony: "), err.Error())
		})
	}

	// A lockout can be proposed deliberately.
	res, err := ceremony.Propose(&ceremony.Proposal{Type: quorum.SetRule, Current: s.st, RuleFor: "AddMember",
		Rules: []string{"4 kms-operator"}, AllowLockout: true}, now)
	require.NoError(t, err)
	assert.Equal(t, []quorum.CommandType{quorum.AddMember, quorum.SetPeerRegion}, res.Lockouts) // SetPeerRegion falls back to AddMember's rule
	_, err = ceremony.Propose(&ceremony.Proposal{Type: quorum.RemoveOperator, Current: testState(t, s.alice, s.bob), ID: "bob"}, now)
	require.ErrorIs(t, err, ceremony.ErrLockout)

	// Nonces differ; --expires is honoured.
	a, err := ceremony.Propose(&ceremony.Proposal{Type: quorum.RotateDomainKeys, Current: s.st, Expires: time.Hour}, now)
	require.NoError(t, err)
	b, err := ceremony.Propose(&ceremony.Proposal{Type: quorum.RotateDomainKeys, Current: s.st}, now)
	require.NoError(t, err)
	assert.NotEqual(t, a.File.Command.Nonce, b.File.Command.Nonce)
	assert.Equal(t, uint64(now.Add(time.Hour).Unix()), a.File.Command.ExpiresAt)
}

func TestProposeCreateDomain(t *testing.T) {
	dir := t.TempDir()
	alice, bob, carol := newOp(t, dir, "alice", quorum.ECDSAP384), newOp(t, dir, "bob", quorum.ECDSAP384), newOp(t, dir, "carol", quorum.MLDSA87)
	host := newOp(t, dir, "host-1", quorum.ECDSAP384)
	m1, f1 := newMember(t, dir)
	m2, f2 := newMember(t, dir)
	root := rootFile(t, dir, "root-a")
	p := &ceremony.Proposal{Type: quorum.CreateDomain, Domain: "prod", MemberFiles: []string{f1, f2},
		OperatorFiles: []string{carol.entryFile + ":kms-operator", host.entryFile + ":service-host", alice.entryFile + ":kms-operator", bob.entryFile + ":kms-operator"},
		RootFiles:     []string{root}}
	res, err := ceremony.Propose(p, now)
	require.NoError(t, err)
	c := res.File.Command
	assert.Equal(t, "prod", c.Domain)
	assert.Equal(t, uint64(0), c.StateVersion)
	g := res.File.Change.Genesis
	ids := []string{m1.ID, m2.ID}
	if ids[0] > ids[1] {
		ids[0], ids[1] = ids[1], ids[0]
	}
	assert.Equal(t, ids, []string{g.Members[0].ID, g.Members[1].ID}, "members sorted by ID")
	var ops []string
	for _, o := range g.Operators {
		ops = append(ops, o.ID+"/"+o.Role)
	}
	assert.Equal(t, []string{"alice/kms-operator", "bob/kms-operator", "carol/kms-operator", "host-1/service-host"}, ops, "operators sorted by ID")
	assert.True(t, ceremony.RulesEqual(quorum.DefaultRules(), g.Rules))
	assert.Equal(t, domain.DefaultRetention, g.Retention)
	assert.Len(t, g.Roots, 1)
	assert.Equal(t, uint64(1), res.Next.Version)
	assert.Contains(t, res.File.Summary().Change, `create domain "prod": members `)
	assert.Contains(t, res.File.Summary().Change, "the default rules; retention 7; 1 attestation roots")

	// What an HSM's genesis makes of it, once signed.
	alice.sign(t, res.File, nil)
	bob.sign(t, res.File, nil)
	st, err := domain.Genesis(res.File.Signed, domain.KeyInfo{ID: [16]byte{1}}, now.Unix())
	require.NoError(t, err)
	want := res.Next.Clone()
	want.Keys[0].ID = [16]byte{1}
	a, err := st.Marshal()
	require.NoError(t, err)
	b, err := want.Marshal()
	require.NoError(t, err)
	assert.Equal(t, b, a, "the preview is the genesis state but for the key ID")

	for _, tc := range []struct {
		name string
		mut  func(p *ceremony.Proposal)
		want string
	}{
		{"no name", func(p *ceremony.Proposal) { p.Domain = "" }, "needs --domain"},
		{"no member", func(p *ceremony.Proposal) { p.MemberFiles = nil }, "one or more --member"},
		{"member twice", func(p *ceremony.Proposal) { p.MemberFiles = []string{f1, f1} }, "given twice"},
		{"operator twice", func(p *ceremony.Proposal) { p.OperatorFiles = append(p.OperatorFiles, alice.entryFile+":auditor") }, `operator "alice" given twice`},
		{"operator without role", func(p *ceremony.Proposal) { p.OperatorFiles = []string{alice.entryFile} }, "want FILE:ROLE"},
		{"operator with empty role", func(p *ceremony.Proposal) { p.OperatorFiles = []string{alice.entryFile + ":"} }, "want FILE:ROLE"},
		{"one kms-operator", func(p *ceremony.Proposal) {
			p.OperatorFiles = []string{alice.entryFile + ":kms-operator", bob.entryFile + ":auditor"}
		}, "can sign CreateDomain"},
		{"retention out of range", func(p *ceremony.Proposal) { p.Retention = retention(99) }, "retention"},
		{"SetRule flags", func(p *ceremony.Proposal) { p.Rules = []string{"1 a"} }, "--rule is not a parameter of CreateDomain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := *p
			tc.mut(&q)
			_, err := ceremony.Propose(&q, now)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	alice, bob, carol := newOp(t, dir, "alice", quorum.ECDSAP384), newOp(t, dir, "bob", quorum.ECDSAP384), newOp(t, dir, "carol", quorum.MLDSA87)
	_, f1 := newMember(t, dir)
	res, err := ceremony.Propose(&ceremony.Proposal{Type: quorum.CreateDomain, Domain: "prod", MemberFiles: []string{f1},
		OperatorFiles: []string{alice.entryFile + ":kms-operator", bob.entryFile + ":kms-operator", carol.entryFile + ":kms-operator"}}, now)
	require.NoError(t, err)
	f := res.File

	st, err := ceremony.Check(f, nil, now)
	require.NoError(t, err)
	assert.Equal(t, quorum.Pending, st.Result.Outcome)
	assert.Equal(t, "pending: need 2 more kms-operator", st.Verdict())
	require.ErrorIs(t, st.Err(), quorum.ErrPending)
	assert.Contains(t, st.Against, `the domain "prod" it creates`)

	carol.sign(t, f, nil)
	st, err = ceremony.Check(f, nil, now)
	require.NoError(t, err)
	require.EqualError(t, st.Err(), "ceremony: pending: need 1 more kms-operator")
	var nse *ceremony.NotSatisfiedError
	require.ErrorAs(t, st.Err(), &nse)
	assert.Equal(t, []quorum.Requirement{{Role: "kms-operator", N: 1}}, nse.Result.Missing)
	text := st.Text()
	assert.Contains(t, text, "carol (kms-operator): ok")
	assert.True(t, strings.HasSuffix(text, "pending: need 1 more kms-operator\n"), text)
	js, err := json.Marshal(st)
	require.NoError(t, err)
	var j map[string]any
	require.NoError(t, json.Unmarshal(js, &j))
	assert.Equal(t, "pending", j["outcome"])
	assert.Equal(t, []any{map[string]any{"role": "kms-operator", "n": float64(1)}}, j["missing"])
	assert.Equal(t, []any{"carol"}, j["counted_signers"])

	alice.sign(t, f, nil)
	st, err = ceremony.Check(f, nil, now)
	require.NoError(t, err)
	require.NoError(t, st.Err())
	assert.Equal(t, "satisfied by 2 kms-operator", st.Verdict())

	// Expired: rejected, though each signature still verifies.
	st, err = ceremony.Check(f, nil, now.Add(time.Hour))
	require.NoError(t, err)
	require.ErrorIs(t, st.Err(), quorum.ErrExpired)
	assert.True(t, st.Signatures[0].Valid && st.Signatures[1].Valid)
	assert.Equal(t, "rejected: command expired", st.Verdict())

	_, err = ceremony.Check(f, testState(t, alice), now)
	require.ErrorContains(t, err, "give no domain status")

	// A change is checked against the current state, which it needs.
	s := newCeremonyState(t)
	pf := proposal(t, s)
	_, err = ceremony.Check(pf, nil, now)
	require.ErrorContains(t, err, "needs the domain's current status")
	later := s.st.Clone()
	later.Version++
	st, err = ceremony.Check(pf, later, now)
	require.NoError(t, err)
	require.ErrorIs(t, st.Err(), quorum.ErrWrongVersion)

	// Satisfied, but it would not apply: dave is already there.
	s.alice.sign(t, pf, s.st)
	s.bob.sign(t, pf, s.st)
	withDave := s.st.Clone()
	withDave.Operators = append(withDave.Operators, pf.Change.Operator)
	st, err = ceremony.Check(pf, withDave, now)
	require.NoError(t, err)
	assert.Equal(t, quorum.Satisfied, st.Result.Outcome)
	require.ErrorContains(t, st.Err(), `satisfied, but the command would not apply: domain: command does not apply: operator "dave" exists`)
}

func TestLockouts(t *testing.T) {
	s := newCeremonyState(t)
	assert.Empty(t, ceremony.Lockouts(s.st, quorum.CommandTypes...))
	two := testState(t, s.alice)
	assert.Equal(t, ceremony.ChangeTypes(), ceremony.Lockouts(two, ceremony.ChangeTypes()...))
	assert.NotContains(t, ceremony.ChangeTypes(), quorum.CreateDomain)
	// A rule naming a role twice asks for the sum.
	st := s.st.Clone()
	st.Rules[quorum.AddMember] = []quorum.Rule{{{Role: "kms-operator", N: 2}, {Role: "kms-operator", N: 2}}}
	// SetPeerRegion, which has no rule of its own, falls back to AddMember's.
	assert.Equal(t, []quorum.CommandType{quorum.AddMember, quorum.SetPeerRegion}, ceremony.Lockouts(st, quorum.CommandTypes...))
}
