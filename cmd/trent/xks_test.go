package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/xks"
)

// writeCert makes a CA-less self-signed certificate for cn (and
// 127.0.0.1) and writes it and its key as PEM files in dir.
func writeCert(t *testing.T, dir, name, cn string, client bool) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile, cert
}

// startProxy runs `trent xks serve` as a process (this test binary as
// trent) and returns its address once it serves, and the process.
func startProxy(t *testing.T, args ...string) (string, *os.Process) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, append([]string{"xks", "serve", "--listen", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // the request log is not read after the start
			}
		}
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-lines:
			if _, rest, ok := strings.Cut(l, "serving on https://"); ok {
				addr, _, _ := strings.Cut(rest, "/")
				return addr, cmd.Process
			}
		case <-deadline:
			t.Fatal("trent xks serve did not start")
		}
	}
}

// The whole path an operator takes: init, keys, credentials, serve as a
// process on a real SoftHSM token, and the conformance suite against it,
// which passes every check; then a credential rotation by SIGHUP and
// mutual TLS.
func TestXKSServePassesConformance(t *testing.T) {
	dir := t.TempDir()
	_, _, err := run(t, "xks", "init", "--dir", dir)
	require.NoError(t, err)
	for _, k := range [][2]string{{"e2e-both", "encrypt,decrypt"}, {"e2e-enc", "encrypt"}, {"e2e-dec", "decrypt"}, {"e2e-none", "none"}} {
		_, _, err := run(t, "xks", "keys", "create", "--dir", dir, "--label", k[0], "--usage", k[1])
		require.NoError(t, err, k[0])
	}
	out, _, err := run(t, "xks", "keys", "list", "--dir", dir)
	require.NoError(t, err)
	assert.Contains(t, out, "e2e-enc\tAES_256\tencrypt=true\tdecrypt=false")
	_, _, err = run(t, "xks", "keys", "create", "--dir", dir, "--label", "bad/id")
	assert.Error(t, err)

	creds := filepath.Join(dir, "credentials.json")
	const uriPath = "/e2e/kms/xks/v1"
	out, _, err = run(t, "xks", "credentials", "new", "--file", creds, "--uri-path", uriPath)
	require.NoError(t, err)
	var cf xks.ConfigFile
	require.NoError(t, json.Unmarshal([]byte(out), &cf))
	assert.Equal(t, uriPath, cf.XksProxyURIPath)
	cred := cf.XksProxyAuthenticationCredential
	certFile, keyFile, _ := writeCert(t, dir, "server", "localhost", false)

	addr, proc := startProxy(t, "--dir", dir, "--uri-path", uriPath, "--credentials", creds, "--tls-cert", certFile, "--tls-key", keyFile)
	conf := func(akid, secret string) (*conformance.Report, error) {
		out, _, err := run(t, "conformance", "xks", "--json", "--endpoint", "https://"+addr, "--uri-path", uriPath,
			"--access-key-id", akid, "--secret", secret, "--ca-file", certFile, "--key-id", "e2e-both",
			"--encrypt-only-key", "e2e-enc", "--decrypt-only-key", "e2e-dec", "--no-usage-key", "e2e-none")
		var rep conformance.Report
		require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
		return &rep, err
	}
	rep, err := conf(cred.AccessKeyID, cred.RawSecretAccessKey)
	for _, r := range rep.Results {
		assert.Equal(t, conformance.Pass, r.Status, "%s: %s (expected %s, observed %s)", r.ID, r.Reason, r.Expected, r.Observed)
	}
	require.NoError(t, err)
	assert.Equal(t, len(rep.Results), rep.Passed)
	assert.GreaterOrEqual(t, rep.Passed, 21)

	// Rotation: a second credential, SIGHUP, both work.
	out, _, err = run(t, "xks", "credentials", "new", "--file", creds, "--uri-path", uriPath)
	require.NoError(t, err)
	var cf2 xks.ConfigFile
	require.NoError(t, json.Unmarshal([]byte(out), &cf2))
	health := func(akid, secret string, tc *tls.Config) error {
		c, err := xks.New(xks.Config{Endpoint: "https://" + addr, URIPath: uriPath, AccessKeyID: akid, SecretAccessKey: secret, Region: "eu-west-1", TLS: tc, Timeout: 10 * time.Second})
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Health(context.Background(), xks.RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "e2e"})
		return err
	}
	roots := x509.NewCertPool()
	pemData, err := os.ReadFile(certFile)
	require.NoError(t, err)
	roots.AppendCertsFromPEM(pemData)
	tc := &tls.Config{RootCAs: roots}
	assert.Equal(t, xks.KindAuthenticationFailed, xks.KindOf(health(cf2.XksProxyAuthenticationCredential.AccessKeyID, cf2.XksProxyAuthenticationCredential.RawSecretAccessKey, tc)))
	require.NoError(t, proc.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return health(cf2.XksProxyAuthenticationCredential.AccessKeyID, cf2.XksProxyAuthenticationCredential.RawSecretAccessKey, tc) == nil
	}, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, health(cred.AccessKeyID, cred.RawSecretAccessKey, tc))
}

// With --client-ca and --client-cn, only a client certificate from that
// CA with that common name completes the handshake.
func TestXKSServeMutualTLS(t *testing.T) {
	dir := t.TempDir()
	_, _, err := run(t, "xks", "init", "--dir", dir)
	require.NoError(t, err)
	creds := filepath.Join(dir, "credentials.json")
	out, _, err := run(t, "xks", "credentials", "new", "--file", creds)
	require.NoError(t, err)
	var cf xks.ConfigFile
	require.NoError(t, json.Unmarshal([]byte(out), &cf))
	certFile, keyFile, _ := writeCert(t, dir, "server", "localhost", false)
	const cn = "cks.kms.eu-west-1.amazonaws.com"
	goodCert, goodKey, _ := writeCert(t, dir, "client", cn, true)
	otherCert, otherKey, _ := writeCert(t, dir, "other", "someone.example.com", true)
	addr, _ := startProxy(t, "--dir", dir, "--credentials", creds, "--tls-cert", certFile, "--tls-key", keyFile, "--client-ca", goodCert, "--client-cn", cn)

	roots := x509.NewCertPool()
	pemData, err := os.ReadFile(certFile)
	require.NoError(t, err)
	roots.AppendCertsFromPEM(pemData)
	health := func(certs ...string) error {
		tc := &tls.Config{RootCAs: roots}
		if len(certs) == 2 {
			c, err := tls.LoadX509KeyPair(certs[0], certs[1])
			require.NoError(t, err)
			tc.Certificates = []tls.Certificate{c}
		}
		c, err := xks.New(xks.Config{Endpoint: "https://" + addr, URIPath: xks.PathSuffix, AccessKeyID: cf.XksProxyAuthenticationCredential.AccessKeyID,
			SecretAccessKey: cf.XksProxyAuthenticationCredential.RawSecretAccessKey, Region: "eu-west-1", TLS: tc, Timeout: 10 * time.Second})
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Health(context.Background(), xks.RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "e2e"})
		return err
	}
	require.NoError(t, health(goodCert, goodKey))
	assert.Equal(t, xks.KindUnreachable, xks.KindOf(health()), "no client certificate")
	assert.Equal(t, xks.KindUnreachable, xks.KindOf(health(otherCert, otherKey)), "a certificate of another CA")
}

// curl (7.75 or later) signs with its own SigV4 code, as the
// specification's Appendix D does: the proxy verifies it.
func TestXKSServeCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl")
	}
	dir := t.TempDir()
	_, _, err = run(t, "xks", "init", "--dir", dir)
	require.NoError(t, err)
	_, _, err = run(t, "xks", "keys", "create", "--dir", dir, "--label", "k1")
	require.NoError(t, err)
	creds := filepath.Join(dir, "credentials.json")
	out, _, err := run(t, "xks", "credentials", "new", "--file", creds)
	require.NoError(t, err)
	var cf xks.ConfigFile
	require.NoError(t, json.Unmarshal([]byte(out), &cf))
	certFile, keyFile, _ := writeCert(t, dir, "server", "localhost", false)
	addr, _ := startProxy(t, "--dir", dir, "--credentials", creds, "--tls-cert", certFile, "--tls-key", keyFile)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	call := func(secret, path, body string) string {
		cmd := exec.Command(curl, "-s", "--aws-sigv4", "aws:amz:us-east-1:kms-xks-proxy", "--user", cf.XksProxyAuthenticationCredential.AccessKeyID+":"+secret,
			"--cacert", certFile, "-H", "Content-Type: application/json", "-d", body, "https://localhost:"+port+"/kms/xks/v1"+path)
		out, err := cmd.Output()
		require.NoError(t, err)
		return string(out)
	}
	out = call(cf.XksProxyAuthenticationCredential.RawSecretAccessKey, "/health", `{"requestMetadata":{"kmsOperation":"KmsHealthCheck","kmsRequestId":"1"}}`)
	assert.Contains(t, out, `"healthStatus":"ACTIVE"`)
	out = call(cf.XksProxyAuthenticationCredential.RawSecretAccessKey, "/keys/k1/encrypt", `{"requestMetadata":{"awsPrincipalArn":"arn:aws:iam::123456789012:user/Alice",`+
		`"kmsKeyArn":"arn:aws:kms:us-east-2:123456789012:key/1","kmsOperation":"Encrypt","kmsRequestId":"2"},"plaintext":"SGVsbG8gV29ybGQh","encryptionAlgorithm":"AES_GCM"}`)
	assert.Contains(t, out, `"authenticationTag"`)
	out = call("wrong"+cf.XksProxyAuthenticationCredential.RawSecretAccessKey, "/health", `{"requestMetadata":{"kmsOperation":"KmsHealthCheck","kmsRequestId":"3"}}`)
	assert.Contains(t, out, `"errorName":"AuthenticationFailedException"`)
}
