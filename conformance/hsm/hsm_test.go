package hsm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance"
	hsmconf "github.com/trentkms/trent/conformance/hsm"
	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/hsm/node"
)

var update = flag.Bool("update", false, "rewrite docs/conformance-suite-hsm.md from the catalogue")

// validity is the EKT validity of the HSM under test: short, so that
// HSM-EKT-003 sees an EKT expire.
const validity = 6 * time.Second

// fixture is one dev cluster (one HSM node, no service hosts) and, on its
// HSM's token, a second node serving with a short EKT validity: the HSM
// the suite tests. Tests share it; the suite's Env follows its state.
type fixture struct {
	c    *dev.Cluster
	dir  string
	url  string
	env  *hsmconf.Env
	cfg  hsmconf.Config
	stop func()

	n      *node.Node // the node under test
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
}

// serve opens the node under test on the dev HSM's token, has it import
// token (a restarted HSM holds no state, so it takes it by the stateless
// rule, which the token's domain anchor admits: the dev domain, exported
// by this very HSM) and serves it on addr.
func (f *fixture) serve(addr string, token []byte) error {
	n, err := node.Open(node.Options{Dir: f.c.HSMDir, Label: f.c.HSMs[0].TokenLabel, Validity: validity})
	if err != nil {
		return err
	}
	if err := n.Import(token, time.Now()); err != nil {
		n.Close()
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		n.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Serve(ctx, l) }()
	f.n, f.addr, f.cancel, f.done = n, l.Addr().String(), cancel, done
	return nil
}

func (f *fixture) halt() {
	f.cancel()
	<-f.done
	f.n.Close()
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fix != nil {
		fix.stop()
	}
	os.Exit(code)
}

func cluster(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = startFixture() })
	require.NoError(t, fixErr)
	return fix
}

func startFixture() (*fixture, error) {
	dir, err := os.MkdirTemp("", "trent-hsm-conformance-")
	if err != nil {
		return nil, err
	}
	c, err := dev.Start(dev.Options{Dir: dir, HSMs: 1, Hosts: 0, Listen: "127.0.0.1:0", RotationInterval: -1}, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	f := &fixture{c: c, dir: dir}
	token, err := os.ReadFile(c.TokenFile)
	if err == nil {
		err = f.serve("127.0.0.1:0", token)
	}
	if err != nil {
		c.Stop()
		os.RemoveAll(dir)
		return nil, err
	}
	f.url = "http://" + f.addr
	f.stop = func() {
		f.halt()
		c.Stop()
		os.RemoveAll(dir)
	}
	f.cfg = hsmconf.Config{Target: f.url, DomainToken: c.TokenFile, HostKey: c.HostKeyFile, AllowDomainChange: true, MaxWait: 2 * validity}
	for _, o := range c.Operators {
		if o.Role != "service-host" {
			f.cfg.OperatorKeys = append(f.cfg.OperatorKeys, o.KeyFile)
		}
	}
	if f.env, err = hsmconf.NewEnv(f.cfg); err != nil {
		f.stop()
		return nil, err
	}
	return f, nil
}

// run runs the whole suite with the fixture's Env.
func (f *fixture) run(t *testing.T) *conformance.Report {
	checks := f.env.Checks()
	return conformance.Run(context.Background(), checks, conformance.Options{Suite: hsmconf.Suite, Target: f.url, Missing: f.env.Missing(checks)})
}

// The whole suite against a real HSM node: every check passes, none is
// skipped; the reports are well-formed; the domain moved on by one version.
func TestSuiteAgainstTrent(t *testing.T) {
	f := cluster(t)
	before := f.env.Token()
	rep := f.run(t)
	var table bytes.Buffer
	require.NoError(t, conformance.WriteTable(&table, rep))
	t.Logf("\n%s", table.String())
	for _, r := range rep.Results {
		assert.Equal(t, conformance.Pass, r.Status, "%s: %s (expected %s, observed %s) %v", r.ID, r.Reason, r.Expected, r.Observed, r.Log)
		assert.Empty(t, r.Cleanup, r.ID)
	}
	assert.Equal(t, len(rep.Results), rep.Passed)
	assert.NoError(t, rep.Err())
	assert.NotEqual(t, before, f.env.Token(), "HSM-TOK-002 moved the domain on")

	var js bytes.Buffer
	require.NoError(t, conformance.WriteJSON(&js, rep))
	var back conformance.Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Len(t, back.Results, len(rep.Results))
	var ju bytes.Buffer
	require.NoError(t, conformance.WriteJUnit(&ju, rep))
	var doc struct {
		Tests int `xml:"tests,attr"`
	}
	require.NoError(t, xml.Unmarshal(ju.Bytes(), &doc))
	assert.Equal(t, len(rep.Results), doc.Tests)
}

// Without operator keys or leave to change the domain, the checks that
// need them are skipped with the reason; against dev's own HSM (EKT
// validity one hour), HSM-EKT-003 is skipped at run time.
func TestSkipsWithoutCapabilities(t *testing.T) {
	f := cluster(t)
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, f.env.Token(), 0o600))
	env, err := hsmconf.NewEnv(hsmconf.Config{Target: f.c.HSMs[0].URL, DomainToken: f.c.TokenFile, HostKey: f.c.HostKeyFile, MaxWait: time.Second})
	require.NoError(t, err)
	defer env.Close()
	checks := conformance.Select(env.Checks(), regexp.MustCompile(`^HSM-(QRM-00[12]|TOK-002|EKT-003|HS-001)$`))
	require.Len(t, checks, 5)
	missing := env.Missing(checks)
	assert.Contains(t, missing[hsmconf.CapOperators], "--operator-key")
	assert.Contains(t, missing[hsmconf.CapDomainChange], "--allow-domain-change")
	rep := conformance.Run(context.Background(), checks, conformance.Options{Missing: missing})
	assert.NoError(t, rep.Err())
	for _, r := range rep.Results {
		if r.ID == "HSM-HS-001" {
			assert.Equal(t, conformance.Pass, r.Status, r.Reason)
			continue
		}
		assert.Equal(t, conformance.Skip, r.Status, r.ID)
		if r.ID == "HSM-EKT-003" {
			assert.Contains(t, r.Reason, "--max-wait")
		} else {
			assert.True(t, strings.HasPrefix(r.Reason, "needs "), r.Reason)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	f := cluster(t)
	for name, cfg := range map[string]hsmconf.Config{
		"no target":             {DomainToken: f.c.TokenFile, HostKey: f.c.HostKeyFile},
		"no token":              {Target: f.url, HostKey: f.c.HostKeyFile},
		"absent token":          {Target: f.url, DomainToken: filepath.Join(t.TempDir(), "x"), HostKey: f.c.HostKeyFile},
		"operator as host":      {Target: f.url, DomainToken: f.c.TokenFile, HostKey: f.cfg.OperatorKeys[0]},
		"host ID of another":    {Target: f.url, DomainToken: f.c.TokenFile, HostKey: f.c.HostKeyFile, HostID: "dev-operator-1"},
		"older token not older": {Target: f.url, DomainToken: f.c.TokenFile, HostKey: f.c.HostKeyFile, OlderToken: f.c.TokenFile},
		"unknown transport":     {Target: f.url, DomainToken: f.c.TokenFile, HostKey: f.c.HostKeyFile, Transport: "http3"},
		"frames over TLS":       {Target: "https://" + f.addr, DomainToken: f.c.TokenFile, HostKey: f.c.HostKeyFile},
	} {
		_, err := hsmconf.NewEnv(cfg)
		require.Error(t, err, name)
		assert.True(t, strings.HasPrefix(err.Error(), "conformance: "), err.Error())
	}
}

// The Hellos and Envelopes go in frames unless --transport http2 says
// otherwise: against an HSM that serves only HTTP (an earlier release,
// here the node under test's handler behind a plain HTTP server) the
// default fails with a transport error, and HTTP/2 passes, the frame
// layer's checks skipped with the reason.
func TestTransports(t *testing.T) {
	f := cluster(t)
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, f.env.Token(), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP1(true)
	hs := &http.Server{Handler: f.n.Handler(), Protocols: p}
	go hs.Serve(l)
	defer hs.Close()
	target := "http://" + l.Addr().String()

	run := func(transport, re string) *conformance.Report {
		env, err := hsmconf.NewEnv(hsmconf.Config{Target: target, DomainToken: tok, HostKey: f.c.HostKeyFile, Transport: transport})
		require.NoError(t, err)
		defer env.Close()
		assert.Equal(t, map[string]string{"": hsmconf.TransportFrames, hsmconf.TransportHTTP2: hsmconf.TransportHTTP2}[transport], env.Transport)
		checks := conformance.Select(env.Checks(), regexp.MustCompile(re))
		return conformance.Run(context.Background(), checks, conformance.Options{Missing: env.Missing(checks)})
	}
	rep := run("", `^HSM-HS-001$`)
	require.Len(t, rep.Results, 1)
	assert.Equal(t, conformance.Fail, rep.Results[0].Status, "frames by default: an HSM that serves only HTTP does not pass")
	assert.Contains(t, rep.Results[0].Reason, "frame")

	rep = run(hsmconf.TransportHTTP2, `^HSM-(HS-00[1-3]|HELLO-001|MAL-00[2-4]|ENV-00[1-3]|RPL-00[1-4]|FRM-00[1-5])$`)
	require.Len(t, rep.Results, 19)
	for _, r := range rep.Results {
		if strings.HasPrefix(r.ID, "HSM-FRM-") {
			assert.Equal(t, conformance.Skip, r.Status, r.ID)
			assert.Contains(t, r.Reason, "--transport frames", r.ID)
			continue
		}
		assert.Equal(t, conformance.Pass, r.Status, "%s over HTTP/2: %s (expected %s, observed %s) %v", r.ID, r.Reason, r.Expected, r.Observed, r.Log)
	}
}

func TestCatalogue(t *testing.T) {
	checks := hsmconf.Catalogue()
	require.NoError(t, conformance.Validate(checks))
	seen := map[string]string{}
	for _, c := range checks {
		assert.True(t, strings.HasPrefix(c.ID, "HSM-"), c.ID)
		assert.True(t, strings.HasPrefix(c.Clause, "docs/protocol.md#"), c.ID)
		assert.True(t, strings.HasPrefix(c.Mutation, "hsm."), c.ID)
		assert.Empty(t, seen[c.Mutation], "%s and %s claim %s", c.ID, seen[c.Mutation], c.Mutation)
		seen[c.Mutation] = c.ID
	}
	// Every clause names a section of docs/protocol.md.
	spec, err := os.ReadFile("../../docs/protocol.md")
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(spec), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			anchors[anchor(strings.TrimLeft(h, "# "))] = true
		}
	}
	for _, c := range checks {
		_, a, _ := strings.Cut(c.Clause, "#")
		assert.True(t, anchors[a], "%s: no section #%s", c.ID, a)
	}
}

// anchor is GitHub's anchor of a heading.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

const docFile = "../../docs/conformance-suite-hsm.md"

func catalogueDoc() []byte {
	var b bytes.Buffer
	b.WriteString(`# The HSM conformance suite

<!-- Generated from the catalogue in conformance/hsm by
     go test ./conformance/hsm -run TestCatalogueDoc -update; do not edit. -->

` + "`trent conformance hsm --target URL --domain-token FILE --host-key FILE`" + ` runs these
checks against one HSM endpoint over the wire protocol (docs/protocol.md),
acting as a service host of the domain: it makes, signs, derives and seals
the protocol's objects itself, from the document. Each check passes, fails
(with what was expected and what was observed) or is skipped (with the
reason). The Hellos and Envelopes travel as hosts send them, in frames on
one connection (` + "`--transport frames`" + `, the default), or as HTTP/2 requests
(` + "`--transport http2`" + `); domain tokens go over HTTP/2 either way. A check that
needs a capability the configuration lacks is skipped, never passed:

| capability | what it takes |
| --- | --- |
| ` + "`operators`" + ` | ` + "`--operator-key FILE`" + ` (repeatable): keys of operators of the domain, to sign quorum commands its rules allow |
| ` + "`domain-change`" + ` | ` + "`--allow-domain-change`" + `: HSM-TOK-002 imports the next state version (SetRetention to the current retention); only for an HSM no service host depends on |
| ` + "`frames`" + ` | ` + "`--transport frames`" + ` (the default): the frame layer's checks, HSM-FRM-*, which write prefaces and frames byte by byte |

HSM-EKT-003 waits for an EKT to expire if that happens within
` + "`--max-wait`" + ` (20 s by default), and is skipped otherwise; HSM-TOK-003 needs a
token older than the HSM's state (` + "`--older-token FILE`" + `, or the one HSM-TOK-002
supersedes). ` + "`--run REGEXP`" + ` selects checks by ID, ` + "`--list`" + ` prints this
catalogue, ` + "`--json`" + ` and ` + "`--junit FILE`" + ` give machine-readable reports, and the
exit status is non-zero when a check fails. The mutation named beside each
check (the last column) is the mutant (internal/mutation) that breaks exactly that behaviour
in a test build of the HSM; ` + "`go test -tags trentmutation -overlay DIR/overlay.json ./conformance/hsm/`" + `
(the overlay that ` + "`internal/mutation/cmd/mkoverlay`" + ` writes) proves that each check
fails under its mutation and only there.

## Checks

`)
	b.Write(conformance.Markdown(hsmconf.Catalogue()))
	return b.Bytes()
}

// docs/conformance-suite-hsm.md is the catalogue; -update rewrites it.
func TestCatalogueDoc(t *testing.T) {
	want := catalogueDoc()
	if *update {
		require.NoError(t, os.WriteFile(docFile, want, 0o644))
	}
	got, err := os.ReadFile(docFile)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "docs/conformance-suite-hsm.md is stale: go test ./conformance/hsm -run TestCatalogueDoc -update")
}
