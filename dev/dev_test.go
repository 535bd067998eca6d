package dev_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/trentkms/trent/audit"
	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/kms/kmsapi"
)

func TestStartCheckStop(t *testing.T) {
	dir := t.TempDir()
	var steps []string
	c, err := dev.Start(dev.Options{Dir: dir, Listen: "127.0.0.1:0"}, func(s string) { steps = append(steps, s) })
	require.NoError(t, err)
	require.Len(t, c.HSMs, dev.DefaultHSMs)
	ids := map[string]bool{}
	for _, h := range c.HSMs {
		assert.True(t, h.TokenCreated)
		assert.True(t, strings.HasPrefix(h.URL, "http://127.0.0.1:"))
		ids[h.HSMID] = true
	}
	assert.Len(t, ids, dev.DefaultHSMs, "every node has its own identity")
	assert.Contains(t, strings.Join(steps, "\n"), "genesis: CreateDomain")

	// One session, made with the first HSM, served by all three: they hold
	// the same domain key.
	res, err := c.Check(context.Background())
	require.NoError(t, err)
	require.Len(t, res, dev.DefaultHSMs)

	data, err := os.ReadFile(c.TokenFile)
	require.NoError(t, err)
	p, err := domain.ParseToken(data)
	require.NoError(t, err)
	assert.Len(t, p.State.Members, dev.DefaultHSMs)
	assert.Equal(t, uint64(1), p.State.Version)
	fi, err := os.Stat(c.HostKeyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.NoError(t, c.Stop())

	// A restart reuses the tokens, identities and keys, and the domain: its
	// saved token is imported again (the domain keys were session objects).
	steps = nil
	again, err := dev.Start(dev.Options{Dir: dir, Listen: "127.0.0.1:0"}, func(s string) { steps = append(steps, s) })
	require.NoError(t, err)
	defer again.Stop()
	for i, h := range again.HSMs {
		assert.False(t, h.TokenCreated || h.IdentityCreated)
		assert.Equal(t, c.HSMs[i].HSMID, h.HSMID)
	}
	_, err = again.Check(context.Background())
	require.NoError(t, err)
	assert.Contains(t, strings.Join(steps, "\n"), "the saved token")
	st, _ := again.DomainState()
	assert.Equal(t, p.State.Keys, st.Keys, "the same domain key")
	require.NoError(t, again.Stop())

	// One more HSM: the saved token's members differ, so a new genesis,
	// for which the cluster clears the domain anchors its HSMs' tokens
	// hold from the first domain.
	steps = nil
	more, err := dev.Start(dev.Options{Dir: dir, HSMs: dev.DefaultHSMs + 1, Listen: "127.0.0.1:0"}, func(s string) { steps = append(steps, s) })
	require.NoError(t, err)
	defer more.Stop()
	log := strings.Join(steps, "\n")
	assert.Contains(t, log, "genesis: CreateDomain")
	assert.Contains(t, log, "cleared the domain anchor")
	_, err = more.Check(context.Background())
	require.NoError(t, err)
}

func TestStartRefusals(t *testing.T) {
	_, err := dev.Start(dev.Options{Dir: t.TempDir(), HSMs: 17}, nil)
	require.Error(t, err)
	_, err = dev.Start(dev.Options{}, nil)
	require.Error(t, err)
	_, err = dev.Start(dev.Options{Dir: t.TempDir(), Listen: "nonsense"}, nil)
	require.Error(t, err)
}

// The whole cluster: HSMs and three service hosts; a restart resumes the
// same domain from the hosts' raft state, and the hosts rekey the HSMs.
func TestClusterWithHosts(t *testing.T) {
	dir := t.TempDir()
	c, err := dev.Start(dev.Options{Dir: dir, HSMs: 2, Hosts: 3, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1}, nil)
	require.NoError(t, err)
	require.Len(t, c.Hosts, 3)

	// The AWS KMS API, with the credentials dev wrote.
	creds, err := kmsapi.ReadCredentials(filepath.Join(dir, "credentials.json"))
	require.NoError(t, err)
	env, err := os.ReadFile(c.EnvFile)
	require.NoError(t, err)
	assert.Contains(t, string(env), "AWS_ENDPOINT_URL="+c.KMSURL)
	cr := creds.Credentials[0]
	cl := kms.NewFromConfig(aws.Config{Region: creds.Region, Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, "")},
		func(o *kms.Options) { o.BaseEndpoint = aws.String(c.KMSURL) })
	out, err := cl.GenerateRandom(context.Background(), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)})
	require.NoError(t, err)
	assert.Len(t, out.Plaintext, 32)
	_, err = c.Check(context.Background())
	require.NoError(t, err)

	// The audit trail: one event per request, the caller named, secrets
	// left out (Encrypt of an unknown alias is refused, but its plaintext
	// reached the host).
	secret := []byte("audit-must-not-hold-this-plaintext")
	_, err = cl.Encrypt(context.Background(), &kms.EncryptInput{KeyId: aws.String("alias/none"), Plaintext: secret})
	require.Error(t, err)
	trail, err := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	require.NoError(t, err)
	assert.NotContains(t, string(trail), base64.StdEncoding.EncodeToString(secret))
	var events []*audit.Event
	require.NoError(t, audit.Scan(bytes.NewReader(trail), &audit.Filter{}, func(e *audit.Event) error { events = append(events, e); return nil }))
	require.Len(t, events, 2)
	assert.Equal(t, "GenerateRandom", events[0].EventName)
	assert.Equal(t, cr.ARN, events[0].UserIdentity.ARN)
	assert.Equal(t, float64(32), events[0].RequestParameters["numberOfBytes"])
	assert.Empty(t, events[0].ErrorCode)
	assert.Equal(t, "Encrypt", events[1].EventName)
	assert.Equal(t, "alias/none", events[1].KeyID)
	assert.Equal(t, "NotFoundException", events[1].ErrorCode)
	assert.NotContains(t, events[1].RequestParameters, "plaintext")

	// /metrics on hosts and HSMs, with what just happened in them.
	st, _ := c.DomainState()
	version := fmt.Sprintf("%d", st.Version)
	m := scrape(t, c.Hosts[0].API+"/metrics")
	assert.Contains(t, m, `trent_kms_requests_total{exception="",operation="GenerateRandom"} 1`)
	assert.Contains(t, m, "trent_domain_version "+version)
	leaders := 0
	for _, h := range c.Hosts {
		if strings.Contains(scrape(t, h.API+"/metrics"), "\ntrent_raft_leader 1\n") {
			leaders++
		}
	}
	assert.Equal(t, 1, leaders, "one leader")
	m = scrape(t, c.HSMs[0].URL+"/metrics")
	assert.Contains(t, m, "trent_hsm_domain_version "+version)
	assert.Regexp(t, `trent_hsm_commands_total\{command="(ping|random)",result="ok"\} [1-9]`, m)

	data, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	require.NoError(t, err)
	assert.Contains(t, string(data), `"api"`)
	for _, f := range []string{"dev-operator-1.pem", "dev-operator-2.pem", "host-1.pem", "host-3.pem"} {
		_, err := os.Stat(filepath.Join(dir, "operators", f))
		require.NoError(t, err, f)
	}
	keys := st.Keys
	require.NoError(t, c.Stop())

	var steps []string
	again, err := dev.Start(dev.Options{Dir: dir, HSMs: 2, Hosts: 3, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1}, func(s string) { steps = append(steps, s) })
	require.NoError(t, err)
	defer again.Stop()
	assert.Contains(t, strings.Join(steps, "\n"), "resumed from the hosts' raft state")
	st, _ = again.DomainState()
	assert.Equal(t, keys, st.Keys, "the same domain")
	_, err = again.Check(context.Background())
	require.NoError(t, err)
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
