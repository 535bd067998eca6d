package enclave_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"github.com/trentkms/trent/internal/syncbuf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/enclave"
	"github.com/trentkms/trent/enclave/demo"
	"github.com/trentkms/trent/nitro"
)

// bootArg makes the test binary an enclave process (Run's Exe).
const bootArg = "enclave-test-boot"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == bootArg {
		os.Exit(enclave.BootMain(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	if shared.c != nil {
		shared.c.Stop()
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// testCluster is one real dev cluster (SoftHSM, a service host, the KMS
// API on loopback) with two principals, shared by the tests.
type testCluster struct {
	once          sync.Once
	err           error
	dir           string
	c             *dev.Cluster
	owner, parent demo.Principal
}

var shared testCluster

func cluster(t *testing.T) *testCluster {
	t.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "enclave-dev-"); shared.err != nil {
			return
		}
		if shared.owner, shared.parent, shared.err = demo.WriteCredentials(shared.dir, dev.DevRegion); shared.err != nil {
			return
		}
		shared.c, shared.err = dev.Start(dev.Options{Dir: shared.dir, HSMs: 1, Hosts: 1, Listen: "127.0.0.1:0",
			KMSListen: "127.0.0.1:0", RotationInterval: -1}, nil)
	})
	require.NoError(t, shared.err)
	return &shared
}

func (tc *testCluster) client(p demo.Principal) *kms.Client {
	return kms.NewFromConfig(aws.Config{Region: dev.DevRegion, Credentials: credentials.NewStaticCredentialsProvider(p.AccessKeyID, p.SecretAccessKey, "")},
		func(o *kms.Options) { o.BaseEndpoint = aws.String(tc.c.KMSURL) })
}

// proxy serves a real proxy to the cluster's KMS API on a Unix socket.
func (tc *testCluster) proxy(t *testing.T) (string, *syncbuf.Buffer) {
	var log syncbuf.Buffer
	addr, _, _ := serveProxy(t, enclave.ProxyConfig{Remote: strings.TrimPrefix(tc.c.KMSURL, "http://"), Log: slogTo(&log)})
	return addr, &log
}

// image writes an application file and returns it with its PCR0.
func image(t *testing.T, content string) (string, []byte) {
	p := filepath.Join(t.TempDir(), "app")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	m, err := nitro.MeasureImage([]byte(content))
	require.NoError(t, err)
	return p, m[0]
}

func env(p demo.Principal) func(string) string {
	return func(k string) string {
		return map[string]string{"AWS_ACCESS_KEY_ID": p.AccessKeyID, "AWS_SECRET_ACCESS_KEY": p.SecretAccessKey}[k]
	}
}

// boot runs a kmstool command in an in-process enclave (Boot, the code
// the enclave process runs) and returns its output lines by label.
func boot(t *testing.T, tc *testCluster, proxy, img string, p demo.Principal, command ...string) (map[string][]byte, string, error) {
	var stdout, stderr bytes.Buffer
	err := enclave.Boot(context.Background(), enclave.BootConfig{Image: img, NSMFile: enclave.NSMFile(tc.dir), Proxy: proxy,
		Region: dev.DevRegion, Command: command, Getenv: env(p), Stdout: &stdout, Stderr: &stderr})
	return lines(t, stdout.String()), stderr.String(), err
}

func lines(t *testing.T, out string) map[string][]byte {
	m := map[string][]byte{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, ": ")
		require.True(t, ok, "line %q", l)
		b, err := base64.StdEncoding.DecodeString(v)
		require.NoError(t, err)
		m[k] = b
	}
	return m
}

// The three kmstool commands give the right values through the real
// proxy, and nothing secret reaches a log.
func TestKmstoolCommands(t *testing.T) {
	tc := cluster(t)
	ctx := context.Background()
	owner := tc.client(tc.owner)
	proxy, plog := tc.proxy(t)
	img, _ := image(t, "kmstool commands test app")

	key, err := owner.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err)
	keyID := aws.ToString(key.KeyMetadata.KeyId)
	secret := []byte("the owner's secret for the enclave")
	enc, err := owner.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: secret})
	require.NoError(t, err)

	// decrypt: the owner's plaintext.
	out, stderr, err := boot(t, tc, proxy, img, tc.owner, "decrypt", "--ciphertext", base64.StdEncoding.EncodeToString(enc.CiphertextBlob))
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"PLAINTEXT": secret}, out)
	assert.Contains(t, stderr, "[enclave] ")
	// With --key-id, the algorithm is required, as kmstool has it.
	out, _, err = boot(t, tc, proxy, img, tc.owner, "decrypt", "--ciphertext", base64.StdEncoding.EncodeToString(enc.CiphertextBlob),
		"--key-id", keyID, "--encryption-algorithm", "SYMMETRIC_DEFAULT", "--region", dev.DevRegion, "--proxy-port", "8000")
	require.NoError(t, err)
	assert.Equal(t, secret, out["PLAINTEXT"])

	// genkey: PLAINTEXT is what plain Decrypt of CIPHERTEXT gives an
	// allowed principal. Credentials as flags this time.
	for spec, n := range map[string]int{"AES-256": 32, "AES-128": 16} {
		out, _, err = boot(t, tc, proxy, img, demo.Principal{}, "genkey", "--key-id", keyID, "--key-spec", spec,
			"--aws-access-key-id", tc.owner.AccessKeyID, "--aws-secret-access-key", tc.owner.SecretAccessKey)
		require.NoError(t, err)
		require.Len(t, out["PLAINTEXT"], n)
		dec, err := owner.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out["CIPHERTEXT"]})
		require.NoError(t, err)
		assert.Equal(t, dec.Plaintext, out["PLAINTEXT"], spec)
		assert.Equal(t, keyID, strings.TrimPrefix(aws.ToString(dec.KeyId), "arn:aws:kms:us-east-1:000000000000:key/"))
	}

	// genrandom: N bytes, different each time.
	a, _, err := boot(t, tc, proxy, img, tc.owner, "genrandom", "--length", "48")
	require.NoError(t, err)
	b, _, err := boot(t, tc, proxy, img, tc.owner, "genrandom", "--length", "48")
	require.NoError(t, err)
	assert.Len(t, a["PLAINTEXT"], 48)
	assert.Len(t, b["PLAINTEXT"], 48)
	assert.NotEqual(t, a["PLAINTEXT"], b["PLAINTEXT"])

	_, _, err = boot(t, tc, proxy, img, tc.owner, "genrandom", "--length", "4", "--region", "us-east-1/../x")
	assert.ErrorContains(t, err, "enclave: region")

	// A failing command says which exception.
	_, _, err = boot(t, tc, proxy, img, tc.owner, "genkey", "--key-id", "alias/none", "--key-spec", "AES-256")
	var ke *enclave.KMSError
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, "NotFoundException", ke.Code)

	require.Eventually(t, func() bool { return strings.Contains(plog.String(), "proxy: connection") }, 5*time.Second, 10*time.Millisecond)
	log := plog.String()
	for _, s := range [][]byte{secret, a["PLAINTEXT"], b["PLAINTEXT"]} {
		assert.NotContains(t, log, base64.StdEncoding.EncodeToString(s))
		assert.NotContains(t, log, string(s))
	}
	assert.NotContains(t, stderr, "PRIVATE KEY")
}

// The command line: what kmstool_enclave_cli refuses is refused.
func TestParseCommand(t *testing.T) {
	for _, bad := range [][]string{
		nil,
		{"encrypt"},
		{"decrypt"},
		{"decrypt", "--ciphertext", "not base64!"},
		{"decrypt", "--ciphertext", "AAAA", "--key-id", "k"},
		{"decrypt", "--ciphertext", "AAAA", "extra"},
		{"genkey", "--key-spec", "AES-256"},
		{"genkey", "--key-id", "k", "--key-spec", "AES-512"},
		{"genkey", "--key-id", "k", "--length", "3"},
		{"genrandom"},
		{"genrandom", "--length", "1025"},
		{"genrandom", "--length", "-1"},
	} {
		_, err := enclave.ParseCommand(bad)
		require.Error(t, err, "%q", bad)
		assert.True(t, strings.HasPrefix(err.Error(), "enclave: "), err.Error())
	}
	c, err := enclave.ParseCommand([]string{"genrandom", "-length=7", "--region", "eu-west-1"})
	require.NoError(t, err)
	assert.Equal(t, 7, c.Length)
	assert.Equal(t, "eu-west-1", c.Region)
	require.Error(t, c.ResolveCredentials(func(string) string { return "" }))
	require.NoError(t, c.ResolveCredentials(env(demo.Principal{AccessKeyID: "AKIA1", SecretAccessKey: "s"})))
	assert.Equal(t, "AKIA1", c.AccessKeyID)
	assert.True(t, enclave.HasCredentialFlags([]string{"decrypt", "--aws-access-key-id=AKIA"}))
	assert.True(t, enclave.HasCredentialFlags([]string{"decrypt", "-aws-access-key-id", "AKIA"}))
	assert.False(t, enclave.HasCredentialFlags([]string{"decrypt", "--ciphertext", "aws-access-key-id"}))
}

// A policy bound to another image's PCR0 refuses the enclave; the one
// bound to its own allows it; the parent alone is refused.
func TestPolicyOnPCR0(t *testing.T) {
	tc := cluster(t)
	ctx := context.Background()
	owner, parent := tc.client(tc.owner), tc.client(tc.parent)
	proxy, _ := tc.proxy(t)
	img, pcr0 := image(t, "the application the owner trusts")
	_, otherPCR0 := image(t, "another application")

	for name, c := range map[string]struct {
		pcr0  []byte
		debug bool
		ok    bool
	}{
		"its own image":         {pcr0, false, true},
		"another image's PCR0":  {otherPCR0, false, false},
		"debug mode (PCR0 = 0)": {pcr0, true, false},
	} {
		key, err := owner.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(demo.Policy(tc.owner.ARN, tc.parent.ARN, c.pcr0))})
		require.NoError(t, err, name)
		enc, err := owner.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte(name)})
		require.NoError(t, err, name)
		var stdout bytes.Buffer
		err = enclave.Boot(ctx, enclave.BootConfig{Image: img, NSMFile: enclave.NSMFile(tc.dir), Proxy: proxy, Debug: c.debug,
			Command: []string{"decrypt", "--ciphertext", base64.StdEncoding.EncodeToString(enc.CiphertextBlob)}, Getenv: env(tc.parent), Stdout: &stdout})
		if c.ok {
			require.NoError(t, err, name)
			assert.Equal(t, "PLAINTEXT: "+base64.StdEncoding.EncodeToString([]byte(name))+"\n", stdout.String())
		} else {
			var ke *enclave.KMSError
			require.ErrorAs(t, err, &ke, name)
			assert.Equal(t, "AccessDeniedException", ke.Code, name)
			assert.Empty(t, stdout.String(), name)
		}
		_, err = parent.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "AccessDeniedException", "the parent without the enclave: %s", name)
	}
}

// Run starts the enclave as a real separate process (this test binary,
// re-executed), with only the credentials in its environment.
func TestRunReexec(t *testing.T) {
	tc := cluster(t)
	ctx := context.Background()
	owner := tc.client(tc.owner)
	proxy, plog := tc.proxy(t)
	img, _ := image(t, "re-exec test app")
	key, err := owner.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err)
	enc, err := owner.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("through a real process")})
	require.NoError(t, err)

	run := func(command []string, environ []string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := enclave.Run(ctx, enclave.RunConfig{Exe: []string{os.Args[0], bootArg}, Image: img, NSMFile: enclave.NSMFile(tc.dir),
			Proxy: proxy, Command: command, Environ: environ, Stdout: &stdout, Stderr: &stderr})
		return stdout.String(), stderr.String(), err
	}
	environ := append(os.Environ(), "AWS_ACCESS_KEY_ID="+tc.owner.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+tc.owner.SecretAccessKey,
		"TRENT_UNRELATED=must-not-pass", "AWS_SESSION_TOKEN=")
	out, stderr, err := run([]string{"decrypt", "--ciphertext", base64.StdEncoding.EncodeToString(enc.CiphertextBlob)}, environ)
	require.NoError(t, err, stderr)
	assert.Equal(t, "PLAINTEXT: "+base64.StdEncoding.EncodeToString([]byte("through a real process"))+"\n", out)
	assert.Contains(t, stderr, "environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	assert.NotContains(t, stderr, tc.owner.SecretAccessKey)
	require.Eventually(t, func() bool { return strings.Contains(plog.String(), "proxy: connection") }, 5*time.Second, 10*time.Millisecond)

	// Credentials as flags: the enclave gets an empty environment.
	out, stderr, err = run([]string{"genrandom", "--length", "5", "--aws-access-key-id", tc.owner.AccessKeyID, "--aws-secret-access-key", tc.owner.SecretAccessKey}, environ)
	require.NoError(t, err, stderr)
	assert.Contains(t, stderr, "environment: empty)")
	assert.Len(t, lines(t, out)["PLAINTEXT"], 5)

	// No credentials at all: the enclave fails, and Run says so.
	_, stderr, err = run([]string{"genrandom", "--length", "5"}, []string{"HOME=/"})
	var ee *enclave.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.Code)
	assert.Contains(t, stderr, "enclave: genrandom: no credentials")
}

func TestRunRefusals(t *testing.T) {
	img, _ := image(t, "x")
	nsm := filepath.Join(t.TempDir(), "sim-nsm.pem")
	require.NoError(t, os.WriteFile(nsm, nil, 0o600))
	exe := []string{os.Args[0], bootArg}
	for name, cfg := range map[string]enclave.RunConfig{
		"no exe":          {Image: img, NSMFile: nsm, Proxy: "unix:/tmp/p", Command: []string{"genrandom"}},
		"no command":      {Exe: exe, Image: img, NSMFile: nsm, Proxy: "unix:/tmp/p"},
		"proxy off host":  {Exe: exe, Image: img, NSMFile: nsm, Proxy: "192.0.2.1:8000", Command: []string{"genrandom"}},
		"no image":        {Exe: exe, Image: img + ".none", NSMFile: nsm, Proxy: "unix:/tmp/p", Command: []string{"genrandom"}},
		"no NSM":          {Exe: exe, Image: img, NSMFile: nsm + ".none", Proxy: "unix:/tmp/p", Command: []string{"genrandom"}},
		"netns on TCP":    {Exe: exe, Image: img, NSMFile: nsm, Proxy: "127.0.0.1:8000", NetNS: enclave.NetNSOn, Command: []string{"genrandom"}},
		"netns nonsense":  {Exe: exe, Image: img, NSMFile: nsm, Proxy: "unix:/tmp/p", NetNS: "maybe", Command: []string{"genrandom"}},
		"no such program": {Exe: []string{"/nonexistent/trent"}, Image: img, NSMFile: nsm, Proxy: "unix:/tmp/p", Command: []string{"genrandom"}},
	} {
		err := enclave.Run(context.Background(), cfg)
		require.Error(t, err, name)
		assert.True(t, strings.HasPrefix(err.Error(), "enclave: "), "%s: %v", name, err)
	}
}

// The demo's flow, with a trent binary built from this tree (trent
// enclave build, proxy and run as separate processes).
func TestDemoFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trent binary")
	}
	tc := cluster(t)
	work := shortDir(t)
	bin := filepath.Join(work, "trent")
	build := exec.Command("go", "build", "-o", bin, "github.com/trentkms/trent/cmd/trent")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	var buf syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = demo.Run(ctx, demo.Config{Trent: bin, DevDir: tc.dir, KMSURL: tc.c.KMSURL, Region: dev.DevRegion,
		Owner: tc.owner, Parent: tc.parent, Work: filepath.Join(work, "w"), Out: &buf})
	require.NoError(t, err, buf.String())
	s := buf.String()
	assert.Contains(t, s, "| "+strings.TrimSuffix(demo.Report, "\n"))
	assert.Equal(t, 2, strings.Count(s, "ok: AccessDeniedException, no PLAINTEXT line"))
	assert.Contains(t, s, "every expectation held")
	assert.Contains(t, s, "[proxy] msg=\"proxy: connection\"")
	assert.NotContains(t, s, "PRIVATE KEY")
}
