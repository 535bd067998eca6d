package xks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance"
	xksconf "github.com/trentkms/trent/conformance/xks"
	"github.com/trentkms/trent/softhsm/softhsmtest"
	"github.com/trentkms/trent/xks"
	"github.com/trentkms/trent/xks/p11"
)

const (
	uriPath = "/conformance-tenant/kms/xks/v1"
)

// proxy starts Trent's XKS proxy in this process (the handler of trent
// xks serve over a real SoftHSM token, behind real TLS) with the four
// keys the suite can use, and returns the suite's configuration.
func proxy(t *testing.T) xksconf.Config {
	t.Helper()
	tok := softhsmtest.NewToken(t)
	for id, u := range map[string]p11.Usage{"conf-both": {Encrypt: true, Decrypt: true}, "conf-enc": {Encrypt: true}, "conf-dec": {Decrypt: true}, "conf-none": {}} {
		require.NoError(t, p11.CreateKey(tok, id, u))
	}
	be, err := p11.New(tok)
	require.NoError(t, err)
	t.Cleanup(func() { be.Close() })
	cred, err := xks.NewCredential()
	require.NoError(t, err)
	h, err := xks.NewHandler(xks.ServerConfig{URIPath: uriPath, Credentials: []xks.Credential{cred}, Backend: be, Vendor: "Trent", Model: "test"})
	require.NoError(t, err)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return xksconf.Config{Endpoint: srv.URL, URIPath: uriPath, AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey,
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig, KeyID: "conf-both",
		EncryptOnlyKeyID: "conf-enc", DecryptOnlyKeyID: "conf-dec", NoUsageKeyID: "conf-none"}
}

func runSuite(t *testing.T, cfg xksconf.Config) *conformance.Report {
	t.Helper()
	env, err := xksconf.NewEnv(cfg)
	require.NoError(t, err)
	return conformance.Run(context.Background(), env.Checks(), conformance.Options{Suite: xksconf.Suite, Target: env.Target(), Missing: env.Missing(), Timeout: time.Minute})
}

func TestSuiteAgainstTrentProxy(t *testing.T) {
	rep := runSuite(t, proxy(t))
	for _, r := range rep.Results {
		assert.Equal(t, conformance.Pass, r.Status, "%s: %s (expected %s, observed %s) %v", r.ID, r.Reason, r.Expected, r.Observed, r.Log)
	}
	assert.Equal(t, len(xksconf.Catalogue()), rep.Passed)
}

// Without the restricted keys, their checks are skipped, never passed.
func TestSkipsWithoutRestrictedKeys(t *testing.T) {
	cfg := proxy(t)
	cfg.EncryptOnlyKeyID, cfg.DecryptOnlyKeyID, cfg.NoUsageKeyID = "", "", ""
	rep := runSuite(t, cfg)
	assert.Equal(t, 3, rep.Skipped)
	assert.Zero(t, rep.Failed)
}

func TestCatalogue(t *testing.T) {
	require.NoError(t, conformance.Validate(xksconf.Catalogue()))
	for _, c := range xksconf.Catalogue() {
		assert.NotEmpty(t, c.Mutation, c.ID)
	}
}

// A proxy that is not there fails every check, none passes.
func TestUnreachableFails(t *testing.T) {
	cfg := proxy(t)
	cfg.Endpoint = "https://127.0.0.1:1"
	rep := runSuite(t, cfg)
	assert.Zero(t, rep.Passed)
}

// docs/conformance.md lists every check as the catalogue has it.
func TestCatalogueInDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/conformance.md")
	require.NoError(t, err)
	for _, c := range xksconf.Catalogue() {
		needs := ""
		for _, n := range c.Needs {
			needs = string(n)
		}
		row := fmt.Sprintf("| %s | %s | %s | `%s` |\n", c.ID, c.Statement, needs, c.Mutation)
		assert.Contains(t, string(doc), row, "docs/conformance.md's row of %s", c.ID)
	}
}
