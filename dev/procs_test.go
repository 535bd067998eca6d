package dev_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/kmsload/peers"
	"github.com/trentkms/trent/quorum"
)

// buildTrent builds the trent binary for tests that run the cluster as
// processes.
func buildTrent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "trent")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/trentkms/trent/cmd/trent").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

func kmsClient(t *testing.T, c *dev.Cluster) *kms.Client {
	t.Helper()
	creds, err := kmsapi.ReadCredentials(filepath.Join(c.Dir, "credentials.json"))
	require.NoError(t, err)
	cr := creds.Credentials[0]
	return kms.NewFromConfig(aws.Config{Region: creds.Region, Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, "")},
		func(o *kms.Options) { o.BaseEndpoint = aws.String(c.KMSURL) })
}

// rotate has host-1 propose RotateDomainKeys (a service host signs it
// alone under the default rules) and returns the new state version.
func rotate(t *testing.T, c *dev.Cluster) uint64 {
	t.Helper()
	ctx := context.Background()
	st, err := host.GetStatus(ctx, c.Hosts[0].API)
	require.NoError(t, err)
	cmd, err := quorum.NewCommand(st.Domain, st.StateVersion, quorum.RotateDomainKeys, nil, time.Now(), 0,
		func(b []byte) error { _, err := rand.Read(b); return err })
	require.NoError(t, err)
	raw, err := cmd.Marshal()
	require.NoError(t, err)
	key, err := ceremony.OpenKey(c.Hosts[0].KeyFile, "")
	require.NoError(t, err)
	defer key.Close()
	sig, err := quorum.SignECDSA(c.Hosts[0].ID, key.ECDSASigner(), raw)
	require.NoError(t, err)
	sc := &quorum.SignedCommand{Command: raw}
	require.NoError(t, sc.Add(sig))
	signed, err := sc.Marshal()
	require.NoError(t, err)
	v, err := host.SubmitTo(ctx, c.Hosts[0].API, signed)
	require.NoError(t, err)
	return v
}

// everyHSMAt waits until host-1 sees every HSM at state version v.
func everyHSMAt(t *testing.T, c *dev.Cluster, v uint64) {
	t.Helper()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		st, err := host.GetStatus(context.Background(), c.Hosts[0].API)
		require.NoError(ct, err)
		require.Len(ct, st.HSMs, len(c.HSMs))
		for _, h := range st.HSMs {
			assert.Equal(ct, v, h.StateVersion, h.URL)
		}
	}, 60*time.Second, 200*time.Millisecond)
}

// The dev cluster in the production shape: every HSM node and service host
// a process of its own. A killed HSM and a killed host come back with the
// same command they started with; an HSM killed before two domain changes
// rejoins with it too (it waits for the hosts to deliver the latest token,
// which its anchor admits); a restart of the whole cluster resumes it; a
// ciphertext made before all that still decrypts.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trent binary and runs a cluster of processes")
	}
	bin := buildTrent(t)
	dir := t.TempDir()
	opts := dev.Options{Dir: dir, HSMs: 3, Hosts: 3, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1, Exec: bin}
	c, err := dev.Start(opts, func(s string) { t.Log(s) })
	require.NoError(t, err)
	defer c.Stop()
	require.Len(t, c.Procs(), 6)
	_, err = c.Check(context.Background())
	require.NoError(t, err)

	ctx := context.Background()
	cl := kmsClient(t, c)
	key, err := cl.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err)
	pt := []byte("acknowledged before the faults")
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: pt})
	require.NoError(t, err)
	decrypts := func(t *testing.T) {
		t.Helper()
		for range 6 { // the restarted first HSM serves them once it holds the domain again
			out, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			require.NoError(t, err)
			require.Equal(t, pt, out.Plaintext)
		}
	}

	// kill -9 of an HSM and of a follower host, then the same commands.
	for _, name := range []string{"hsm-1", "host-2"} {
		p := c.Proc(name)
		require.NotNil(t, p, name)
		require.NoError(t, p.Kill())
		require.False(t, p.Running())
		require.NoError(t, p.Start())
	}
	st, err := host.GetStatus(ctx, c.Hosts[0].API)
	require.NoError(t, err)
	everyHSMAt(t, c, st.StateVersion)
	decrypts(t)

	// An HSM down through two domain changes rejoins with its own command.
	require.NoError(t, c.Proc("hsm-3").Kill())
	rotate(t, c)
	v := rotate(t, c)
	require.NoError(t, c.Proc("hsm-3").Start())
	everyHSMAt(t, c, v)
	decrypts(t)

	// The whole cluster, stopped and started on the same dir.
	require.NoError(t, c.Stop())
	again, err := dev.Start(opts, func(s string) { t.Log(s) })
	require.NoError(t, err)
	defer again.Stop()
	st2, _ := again.DomainState()
	require.Equal(t, v, st2.Version)
	cl = kmsClient(t, again)
	decrypts(t)
	require.NoError(t, again.Stop())
	for _, p := range again.Procs() {
		assert.False(t, p.Running(), p.Name)
	}
}

// The options of the fault-injection suite: a wrapper command before each
// process's trent command line, and the KMS API on every host.
func TestProcessOptions(t *testing.T) {
	_, err := dev.Start(dev.Options{Dir: t.TempDir(), Hosts: 1, KMSOnEveryHost: true}, nil)
	require.ErrorContains(t, err, "need Exec")
	_, err = dev.Start(dev.Options{Dir: t.TempDir(), Hosts: 2, HostIPs: []string{"127.0.0.1"}, Exec: "trent"}, nil)
	require.ErrorContains(t, err, "1 host IPs for 2 hosts")
	if testing.Short() {
		t.Skip("builds the trent binary and runs a cluster of processes")
	}
	bin := buildTrent(t)
	var wrapped []string
	opts := dev.Options{Dir: t.TempDir(), HSMs: 1, Hosts: 2, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1, Exec: bin,
		KMSOnEveryHost: true, HostIPs: []string{"127.0.0.1", "127.0.0.1"},
		Wrap: func(name string) []string { wrapped = append(wrapped, name); return []string{"env", "TRENT_WRAPPED=1"} }}
	c, err := dev.Start(opts, nil)
	require.NoError(t, err)
	defer c.Stop()
	assert.Equal(t, []string{"hsm-1", "host-1", "host-2"}, wrapped)
	ctx := context.Background()
	cl := kmsClient(t, c)
	key, err := cl.CreateKey(ctx, &kms.CreateKeyInput{})
	require.NoError(t, err)
	require.Len(t, c.Hosts, 2)
	assert.Equal(t, c.KMSURL, c.Hosts[0].KMS)
	for _, h := range c.Hosts {
		require.NotEmpty(t, h.KMS, h.ID)
		hc := kms.New(cl.Options(), func(o *kms.Options) { o.BaseEndpoint = aws.String(h.KMS) })
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			_, err := hc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key.KeyMetadata.KeyId})
			assert.NoError(ct, err)
		}, 10*time.Second, 100*time.Millisecond, h.ID)
	}
}

// With PprofBase each process serves pprof on its own loopback port: HSMs
// first, then hosts.
func TestProcessesPprof(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the trent binary and runs a cluster of processes")
	}
	bin := buildTrent(t)
	base, err := peers.FreePortRange(2)
	require.NoError(t, err)
	c, err := dev.Start(dev.Options{Dir: t.TempDir(), HSMs: 1, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0",
		RotationInterval: -1, Exec: bin, PprofBase: base}, func(s string) { t.Log(s) })
	require.NoError(t, err)
	defer c.Stop()
	for i, name := range []string{"hsm-1", "host-1"} {
		p := c.Proc(name)
		require.NotNil(t, p, name)
		addr := "127.0.0.1:" + strconv.Itoa(base+i)
		require.Contains(t, strings.Join(p.Args, " "), "--pprof "+addr, name)
		resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
		require.NoError(t, err, name)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, name)
		require.Contains(t, string(body), "--pprof", name)
	}

	// The processes share this machine's cores (sharedShape): the HSM's
	// and the host's Go threads are bounded, and the host is told how
	// many batches to keep in flight. Every process's Go system monitor
	// stays out of its deep sleep (quietSysmon), unless this test's
	// GODEBUG sets schedtrace.
	for name, procs := range map[string]int{"hsm-1": runtime.NumCPU(), "host-1": max(1, runtime.NumCPU()/2)} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.Proc(name).PID))
		require.NoError(t, err)
		env := strings.Split(string(b), "\x00")
		if _, set := os.LookupEnv("GOMAXPROCS"); !set {
			assert.Contains(t, env, "GOMAXPROCS="+strconv.Itoa(procs), name)
		}
		if !strings.Contains(os.Getenv("GODEBUG"), "schedtrace=") {
			var godebug string
			for _, kv := range env {
				if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
					godebug = v
				}
			}
			assert.Contains(t, strings.Split(godebug, ","), "schedtrace=2147483647", name)
		}
	}
	assert.Contains(t, strings.Join(c.Proc("host-1").Args, " "), "--hsm-batch-workers 1")
}
