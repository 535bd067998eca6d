package enclave

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/nitro"
)

// SimNSMFile is the simulated NSM's file name in a dev data dir's nitro/
// directory (dev.SimNSMFile).
const SimNSMFile = "sim-nsm.pem"

// NSMFile is the simulated NSM file of a dev data dir: DIR/nitro/sim-nsm.pem,
// or DIR/sim-nsm.pem when DIR holds the file directly.
func NSMFile(dir string) string {
	if p := filepath.Join(dir, SimNSMFile); fileExists(p) {
		return p
	}
	return filepath.Join(dir, "nitro", SimNSMFile)
}

// regionName is what an AWS region name looks like.
var regionName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// BootConfig is what an enclave is booted with.
type BootConfig struct {
	Image   string // the image whose PCR0-2 the NSM reports
	NSMFile string // the simulated NSM (its CA hierarchy)
	Proxy   string // the enclave's only way out: unix:/path or loopback HOST:PORT
	Region  string // KMS region when the command has no --region (DefaultRegion if empty)
	Debug   bool   // a debug-mode enclave: PCR0-2 are zero
	// Command is the kmstool command line.
	Command []string
	// Getenv reads the enclave's environment (credentials); os.Getenv
	// if nil.
	Getenv func(string) string
	// Stdout gets kmstool's output lines; Stderr a line about the boot.
	Stdout, Stderr io.Writer
}

// Enclave is a booted simulated enclave: its key pair, which never leaves
// it, the NSM's attestation document for the public key, and a KMS client
// that reaches KMS through the proxy only.
type Enclave struct {
	key      *rsa.PrivateKey
	spki     []byte
	doc      []byte
	moduleID string
	pcrs     map[int][]byte
	client   *kms.Client
}

// Boot boots an enclave as cfg says and runs its kmstool command. The
// private key lives in this call only.
func Boot(ctx context.Context, cfg BootConfig) error {
	cmd, err := ParseCommand(cfg.Command)
	if err != nil {
		return err
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := cmd.ResolveCredentials(getenv); err != nil {
		return err
	}
	region := cmd.Region
	if region == "" {
		region = cfg.Region
	}
	if region == "" {
		region = DefaultRegion
	}
	if !regionName.MatchString(region) {
		return fmt.Errorf("enclave: region %q: want letters, digits and hyphens", region)
	}
	hc, err := proxyClient(cfg.Proxy)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	e, err := newEnclave(cfg.Image, cfg.NSMFile, cfg.Debug)
	if err != nil {
		return err
	}
	e.client = kms.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(cmd.AccessKeyID, cmd.SecretAccessKey, cmd.SessionToken),
		HTTPClient:  hc,
	}, func(o *kms.Options) {
		// The name is what the request is signed for; the connection
		// goes to the proxy whatever the URL says.
		o.BaseEndpoint = aws.String("http://kms." + region + ".amazonaws.com")
	})
	if cfg.Stderr != nil {
		pk := sha256.Sum256(e.spki)
		fmt.Fprintf(cfg.Stderr, "[enclave] %s booted: PCR0 %s…, RSA-2048 key (SPKI sha256 %s…) attested by the simulated NSM; KMS via %s\n",
			e.moduleID, hex.EncodeToString(e.pcrs[0][:8]), hex.EncodeToString(pk[:8]), cfg.Proxy)
	}
	stdout := cfg.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	return e.execute(ctx, cmd, stdout)
}

// newEnclave makes the enclave's RSA-2048 key, measures the image and has
// the simulated NSM attest the public key.
func newEnclave(image, nsmFile string, debug bool) (*Enclave, error) {
	img, err := boundedio.ReadFile(image, nitro.MaxImage)
	if err != nil {
		return nil, fmt.Errorf("enclave: image: %w", err)
	}
	measured, err := nitro.MeasureImage(img)
	if err != nil {
		return nil, fmt.Errorf("enclave: image: %w", err)
	}
	ca, err := nitro.LoadSimCA(nsmFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("enclave: no simulated NSM at %s (trent dev makes it)", nsmFile)
		}
		return nil, fmt.Errorf("enclave: simulated NSM: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	var id [8]byte
	rand.Read(id[:])
	e := &Enclave{key: key, spki: spki, pcrs: nitro.EnclavePCRs(measured, debug),
		moduleID: "i-0trentsim0000000-enc" + hex.EncodeToString(id[:])}
	e.doc, err = ca.Attest(nitro.AttestRequest{ModuleID: e.moduleID, PCRs: e.pcrs, PublicKey: spki, Time: time.Now()})
	if err != nil {
		return nil, fmt.Errorf("enclave: attest: %w", err)
	}
	return e, nil
}

// proxyClient is an HTTP client whose every connection goes to the proxy
// address, whatever the request's URL; it honours no HTTP_PROXY.
func proxyClient(proxy string) (*http.Client, error) {
	network, address, err := ParseListen(proxy)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, address)
		},
		MaxIdleConns:          2,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}, nil
}

// BootMain is the enclave process's main: flags --image, --nsm, --proxy,
// --region and --debug, then "--" and the kmstool command. It returns the
// exit status: 0, 1 for a failed command, 2 for a bad command line.
func BootMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg BootConfig
	fs := flag.NewFlagSet("enclave boot", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Image, "image", "", "the enclave image")
	fs.StringVar(&cfg.NSMFile, "nsm", "", "the simulated NSM file")
	fs.StringVar(&cfg.Proxy, "proxy", "", "the proxy address")
	fs.StringVar(&cfg.Region, "region", "", "the KMS region")
	fs.BoolVar(&cfg.Debug, "debug", false, "debug mode")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "enclave: boot: %v\n", err)
		return 2
	}
	if cfg.Image == "" || cfg.NSMFile == "" || cfg.Proxy == "" {
		fmt.Fprintln(stderr, "enclave: boot: --image, --nsm and --proxy are required")
		return 2
	}
	cfg.Command, cfg.Stdout, cfg.Stderr = fs.Args(), stdout, stderr
	if err := Boot(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
