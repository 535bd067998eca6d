// Package demo is the flow of make demo-enclave, shared with its test: a
// data owner keeps a file encrypted under a data key of a KMS key whose
// policy lets the parent instance decrypt only from inside an enclave
// built from one image; the parent hands the encrypted data key to a
// simulated enclave (trent enclave run), which decrypts it through
// trent enclave proxy with a Recipient; an enclave from another image,
// and the parent itself, are refused.
package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/trentkms/trent/kms/kmsapi"
)

// Account is the dev cluster's account.
const Account = "000000000000"

// Principal is an IAM principal of the dev cluster with its access key.
type Principal struct {
	ARN, AccessKeyID, SecretAccessKey string
}

// WriteCredentials writes DIR/credentials.json before trent dev starts on
// DIR (which reads the file if present): the data owner (the dev user,
// first, so DIR/env is the owner's) and the parent instance, two
// principals of the dev account.
func WriteCredentials(dir, region string) (owner, parent Principal, err error) {
	mk := func(name string) (Principal, error) {
		raw := make([]byte, 40)
		if _, err := rand.Read(raw); err != nil {
			return Principal{}, err
		}
		const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
		akid := []byte("AKIA")
		for _, b := range raw[:16] {
			akid = append(akid, upper[int(b)%len(upper)])
		}
		return Principal{ARN: "arn:aws:iam::" + Account + ":user/" + name, AccessKeyID: string(akid),
			SecretAccessKey: base64.RawURLEncoding.EncodeToString(raw[16:])}, nil
	}
	if owner, err = mk("dev"); err != nil {
		return
	}
	if parent, err = mk("enclave-parent"); err != nil {
		return
	}
	c := kmsapi.Credentials{Region: region}
	for _, p := range []Principal{owner, parent} {
		c.Credentials = append(c.Credentials, kmsapi.Credential{AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey, AccountID: Account, ARN: p.ARN})
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return
	}
	if err = os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	err = os.WriteFile(filepath.Join(dir, "credentials.json"), append(b, '\n'), 0o600)
	return
}

// Config is a demo run.
type Config struct {
	Trent         string // the trent binary
	DevDir        string // the dev cluster's data dir (its simulated NSM)
	KMSURL        string // the cluster's KMS API
	Region        string
	Owner, Parent Principal
	Work          string // a fresh directory with a short path (it holds a Unix socket)
	Out           io.Writer
}

// Report is the file the owner encrypts.
const Report = "Q3 report: revenue 4.2M, churn 1.1%. For enclave eyes only.\n"

// Run runs the demo; it returns an error at the first expectation that
// fails.
func Run(ctx context.Context, cfg Config) error {
	d := &run{cfg: cfg, out: &lockedWriter{w: cfg.Out}}
	err := d.run(ctx)
	d.stopProxy()
	return err
}

type run struct {
	cfg     Config
	out     *lockedWriter
	step    int
	proxy   *exec.Cmd
	done    chan error
	scanned chan struct{}
}

func (d *run) say(format string, a ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n%d. %s\n", d.step, fmt.Sprintf(format, a...))
}

func (d *run) note(format string, a ...any) { fmt.Fprintf(d.out, "   "+format+"\n", a...) }

func client(cfg Config, p Principal) *kms.Client {
	return kms.NewFromConfig(aws.Config{Region: cfg.Region, Credentials: credentials.NewStaticCredentialsProvider(p.AccessKeyID, p.SecretAccessKey, "")},
		func(o *kms.Options) { o.BaseEndpoint = aws.String(cfg.KMSURL) })
}

func (d *run) run(ctx context.Context) error {
	cfg := d.cfg
	owner, parent := client(cfg, cfg.Owner), client(cfg, cfg.Parent)
	objects := filepath.Join(cfg.Work, "objects")
	if err := os.MkdirAll(objects, 0o755); err != nil {
		return err
	}

	d.say("The data owner (%s) creates a KMS key", cfg.Owner.ARN)
	ck, err := owner.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("demo-enclave: reports readable only in the enclave")})
	if err != nil {
		return fmt.Errorf("CreateKey: %w", err)
	}
	keyID := aws.ToString(ck.KeyMetadata.KeyId)
	d.note("key %s", aws.ToString(ck.KeyMetadata.Arn))

	d.say("The owner generates an AES-256 data key and encrypts report.txt with it (AES-256-GCM)")
	dk, err := owner.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256})
	if err != nil {
		return fmt.Errorf("GenerateDataKey: %w", err)
	}
	sealed, err := seal(dk.Plaintext, []byte(Report), "report.txt")
	clear(dk.Plaintext)
	if err != nil {
		return err
	}
	encPath, keyPath := filepath.Join(objects, "report.txt.enc"), filepath.Join(objects, "report.txt.key")
	if err := os.WriteFile(encPath, sealed, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, dk.CiphertextBlob, 0o644); err != nil {
		return err
	}
	d.note("object store %s: report.txt.enc (%d bytes), report.txt.key (the encrypted data key, %d bytes); the plaintext key is wiped",
		objects, len(sealed), len(dk.CiphertextBlob))

	d.say("The enclave images: app.eif (the application the owner trusts) and other.eif (anything else)")
	app, err := d.build(ctx, "app", "#!/bin/sh\n# report reader v1: kmstool_enclave_cli decrypt, then AES-256-GCM\n")
	if err != nil {
		return err
	}
	other, err := d.build(ctx, "other", "#!/bin/sh\n# report reader v1, patched to send the key elsewhere\n")
	if err != nil {
		return err
	}

	d.say("The owner sets the key policy: the owner administers and encrypts; the parent (%s) may Decrypt only with kms:RecipientAttestation:ImageSha384 = app.eif's PCR0", cfg.Parent.ARN)
	pol := Policy(cfg.Owner.ARN, cfg.Parent.ARN, app.pcr0)
	if _, err := owner.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(pol)}); err != nil {
		return fmt.Errorf("PutKeyPolicy: %w", err)
	}
	for _, l := range strings.Split(pol, "\n") {
		d.note("%s", l)
	}

	d.say("The parent starts trent enclave proxy: the enclaves' only way to KMS")
	u, err := url.Parse(cfg.KMSURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("KMS URL %q: %v", cfg.KMSURL, err)
	}
	sock := filepath.Join(cfg.Work, "kms.sock")
	if err := d.startProxy(ctx, "unix:"+sock, u.Host); err != nil {
		return err
	}
	d.note("unix:%s → %s (allowlist: that endpoint only)", sock, u.Host)

	d.say("The parent fetches report.txt.key from the object store and hands it into an enclave of app.eif: kmstool decrypt")
	blob, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString(blob)
	out, _, err := d.enclave(ctx, sock, app.eif, false, "decrypt", "--ciphertext", b64)
	if err != nil {
		return fmt.Errorf("the enclave of app.eif failed: %v", err)
	}
	key, err := field(out, "PLAINTEXT")
	if err != nil {
		return err
	}
	defer clear(key)
	d.note("enclave stdout: PLAINTEXT: <%d-byte data key, not shown>", len(key))

	d.say("The enclave application decrypts report.txt.enc with the data key")
	sealed, err = os.ReadFile(encPath)
	if err != nil {
		return err
	}
	text, err := open(key, sealed, "report.txt")
	if err != nil {
		return fmt.Errorf("report.txt.enc does not decrypt with the enclave's key: %w", err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		d.note("| %s", l)
	}
	if string(text) != Report {
		return errors.New("the recovered report differs from the owner's")
	}
	d.note("ok: the recovered text is the owner's")

	d.say("An enclave of other.eif asks the same: refused")
	if err := d.denied(ctx, sock, other.eif, false, b64); err != nil {
		return err
	}

	d.say("A debug-mode enclave of app.eif (PCR0 is zero in debug mode): refused")
	if err := d.denied(ctx, sock, app.eif, true, b64); err != nil {
		return err
	}

	d.say("The parent calls Decrypt itself, without a Recipient: refused")
	_, err = parent.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
	if code := apiCode(err); code != "AccessDeniedException" {
		return fmt.Errorf("the parent's own Decrypt: want AccessDeniedException, got %v", err)
	}
	d.note("ok: AccessDeniedException")

	d.say("The owner keeps control of the key")
	if _, err := owner.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID)}); err != nil {
		return fmt.Errorf("the owner's GetKeyPolicy: %w", err)
	}
	if _, err := owner.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)}); err != nil {
		return fmt.Errorf("the owner's DescribeKey: %w", err)
	}
	d.note("ok: GetKeyPolicy and DescribeKey answer the owner (PutKeyPolicy stays the owner's too)")

	d.say("The parent stops the proxy")
	if err := d.stopProxy(); err != nil {
		return err
	}
	d.note("ok: stopped cleanly")
	fmt.Fprintf(d.out, "\ndemo-enclave: every expectation held\n")
	return nil
}

// Policy is the demo's key policy: the owner's administration and
// encryption statements, and the parent's Decrypt bound to an image.
func Policy(ownerARN, parentARN string, pcr0 []byte) string {
	type stmt struct {
		Sid       string
		Effect    string
		Principal map[string]string
		Action    []string
		Resource  string
		Condition map[string]map[string]string `json:",omitempty"`
	}
	doc := struct {
		Version   string
		Statement []stmt
	}{Version: "2012-10-17", Statement: []stmt{
		{Sid: "Key administration by the owner", Effect: "Allow", Principal: map[string]string{"AWS": ownerARN},
			Action: []string{"kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
				"kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"},
			Resource: "*"},
		{Sid: "Encryption by the owner", Effect: "Allow", Principal: map[string]string{"AWS": ownerARN},
			Action: []string{"kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"}, Resource: "*"},
		{Sid: "Decrypt only inside the attested enclave", Effect: "Allow", Principal: map[string]string{"AWS": parentARN},
			Action: []string{"kms:Decrypt"}, Resource: "*",
			Condition: map[string]map[string]string{"StringEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": hex.EncodeToString(pcr0)}}},
	}}
	// One statement a line; plain types always marshal.
	var lines []string
	for _, st := range doc.Statement {
		b, _ := json.Marshal(st)
		lines = append(lines, "  "+string(b))
	}
	return "{\"Version\": \"2012-10-17\", \"Statement\": [\n" + strings.Join(lines, ",\n") + "\n]}"
}

type image struct {
	eif  string
	pcr0 []byte
}

// build writes an application file and builds its EIF with trent enclave
// build, returning the EIF and its PCR0.
func (d *run) build(ctx context.Context, name, content string) (image, error) {
	src := filepath.Join(d.cfg.Work, name+".sh")
	if err := os.WriteFile(src, []byte(content), 0o755); err != nil {
		return image{}, err
	}
	eif := filepath.Join(d.cfg.Work, name+".eif")
	out, errOut, err := d.trent(ctx, nil, false, "enclave", "build", "--json", "--image", src, "--output-file", eif)
	if err != nil {
		return image{}, fmt.Errorf("trent enclave build: %v: %s", err, errOut)
	}
	var m struct{ Measurements struct{ PCR0 string } }
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return image{}, fmt.Errorf("trent enclave build: %w", err)
	}
	pcr0, err := hex.DecodeString(m.Measurements.PCR0)
	if err != nil || len(pcr0) != 48 {
		return image{}, fmt.Errorf("trent enclave build: PCR0 %q", m.Measurements.PCR0)
	}
	d.note("%s.eif: PCR0 %s", name, m.Measurements.PCR0)
	return image{eif: eif, pcr0: pcr0}, nil
}

// trent runs the trent binary with env (the demo's environment, without
// AWS variables, if nil) and returns its output; with live, its stderr
// lines are shown as they come.
func (d *run) trent(ctx context.Context, env []string, live bool, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, d.cfg.Trent, args...)
	cmd.Env = env
	if env == nil {
		cmd.Env = baseEnv()
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if live {
		lw := &lineWriter{out: d.out, prefix: "     "}
		defer lw.flush()
		cmd.Stderr = io.MultiWriter(&stderr, lw)
	}
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// lineWriter writes whole lines to out, each after prefix.
type lineWriter struct {
	out     io.Writer
	prefix  string
	pending []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.pending = append(l.pending, p...)
	for {
		i := bytes.IndexByte(l.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		fmt.Fprintf(l.out, "%s%s\n", l.prefix, l.pending[:i])
		l.pending = l.pending[i+1:]
	}
}

func (l *lineWriter) flush() {
	if len(l.pending) > 0 {
		fmt.Fprintf(l.out, "%s%s\n", l.prefix, l.pending)
		l.pending = nil
	}
}

// baseEnv is the demo's environment without AWS_* variables.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

// enclave runs a kmstool command in an enclave of eif with the parent's
// credentials in the environment of trent enclave run.
func (d *run) enclave(ctx context.Context, sock, eif string, debug bool, command ...string) (string, string, error) {
	env := append(baseEnv(), "AWS_ACCESS_KEY_ID="+d.cfg.Parent.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+d.cfg.Parent.SecretAccessKey, "AWS_REGION="+d.cfg.Region)
	args := []string{"enclave", "run", "--image", eif, "--dir", d.cfg.DevDir, "--proxy", "unix:" + sock}
	if debug {
		args = append(args, "--debug")
	}
	d.note("$ trent %s -- %s", strings.Join(args, " "), abbreviate(command))
	return d.trent(ctx, env, true, append(append(args, "--"), command...)...)
}

// denied checks that an enclave's decrypt is refused with
// AccessDeniedException.
func (d *run) denied(ctx context.Context, sock, eif string, debug bool, b64 string) error {
	out, errOut, err := d.enclave(ctx, sock, eif, debug, "decrypt", "--ciphertext", b64)
	if err == nil || strings.Contains(out, "PLAINTEXT") {
		return errors.New("the enclave was given the data key; want AccessDeniedException")
	}
	if !strings.Contains(errOut, "AccessDeniedException") {
		return fmt.Errorf("want AccessDeniedException, got %v: %s", err, errOut)
	}
	d.note("ok: AccessDeniedException, no PLAINTEXT line")
	return nil
}

// abbreviate shortens long arguments (the base64 ciphertext) for display.
func abbreviate(args []string) string {
	var out []string
	for _, a := range args {
		if len(a) > 40 {
			a = a[:24] + "…(" + fmt.Sprint(len(a)) + " chars)"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// startProxy starts trent enclave proxy and waits for its socket.
func (d *run) startProxy(ctx context.Context, listen, remote string) error {
	cmd := exec.CommandContext(ctx, d.cfg.Trent, "enclave", "proxy", "--listen", listen, "--remote", remote)
	cmd.Env = baseEnv()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("trent enclave proxy: %w", err)
	}
	d.proxy, d.done, d.scanned = cmd, make(chan error, 1), make(chan struct{})
	go func() {
		defer close(d.scanned)
		s := bufio.NewScanner(pr)
		for s.Scan() {
			fmt.Fprintf(d.out, "   [proxy] %s\n", logPrefix.ReplaceAllString(s.Text(), ""))
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		d.done <- err
	}()
	sock := strings.TrimPrefix(listen, "unix:")
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		select {
		case err := <-d.done:
			d.proxy = nil
			<-d.scanned
			return fmt.Errorf("trent enclave proxy exited: %v", err)
		default:
		}
	}
	return errors.New("trent enclave proxy did not listen within 15s")
}

// logPrefix is the time and level of a proxy log line, left out.
var logPrefix = regexp.MustCompile(`^time=\S+ level=INFO `)

// stopProxy interrupts the proxy and waits for a clean exit.
func (d *run) stopProxy() error {
	if d.proxy == nil {
		return nil
	}
	cmd := d.proxy
	d.proxy = nil
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-d.done:
		<-d.scanned
		if err != nil {
			return fmt.Errorf("trent enclave proxy: %v", err)
		}
		return nil
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-d.done
		<-d.scanned
		return errors.New("trent enclave proxy did not stop within 10s of SIGINT")
	}
}

// field reads kmstool's "LABEL: <base64>" line.
func field(out, label string) ([]byte, error) {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, label+": "); ok {
			return base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		}
	}
	return nil, fmt.Errorf("no %s line in the enclave's output", label)
}

func seal(key, plaintext []byte, name string) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, plaintext, []byte(name)), nil
}

func open(key, sealed []byte, name string) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("too short")
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(name))
}

func gcm(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("a %d-byte data key, not 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// lockedWriter serializes the demo's and the proxy's lines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
