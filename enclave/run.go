package enclave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// NetNS says whether an enclave process gets a network namespace of its
// own (Linux): "on" requires one, "off" never, "auto" (the default) when
// the proxy is a Unix socket and the system allows it.
type NetNS string

// The NetNS modes.
const (
	NetNSAuto NetNS = "auto"
	NetNSOn   NetNS = "on"
	NetNSOff  NetNS = "off"
)

// passEnv are the only variables an enclave process gets, and only when
// its command gives no credentials of its own.
var passEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

// RunConfig configures Run.
type RunConfig struct {
	// Exe is the command line that starts an enclave process, which must
	// call BootMain with the arguments Run appends: the trent binary and
	// its hidden "enclave boot" subcommand.
	Exe     []string
	Image   string // the enclave image
	NSMFile string // the simulated NSM (NSMFile of the dev data dir)
	Proxy   string // unix:/path or loopback HOST:PORT: the parent's proxy to KMS
	Region  string // KMS region; AWS_REGION, AWS_DEFAULT_REGION or DefaultRegion if empty
	Debug   bool
	NetNS   NetNS // NetNSAuto if empty
	// Command is the kmstool command line run in the enclave.
	Command []string
	// Environ is the parent's environment (os.Environ()): the source of
	// AWS_* credentials and region; nothing else of it reaches the enclave.
	Environ []string
	// Stdout gets the enclave's output (kmstool's lines); Stderr its
	// errors and one line per boot.
	Stdout, Stderr io.Writer
}

// ExitError reports an enclave process that failed.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	return fmt.Sprintf("enclave: the enclave process exited with status %d", e.Code)
}

// Run starts a simulated enclave as a separate process (cfg.Exe), with an
// environment holding only the AWS credentials it needs, the root
// directory as its working directory and, when it can, a network
// namespace of its own, and waits for it. The process boots (BootMain),
// runs the kmstool command and exits; its output goes to cfg.Stdout.
func Run(ctx context.Context, cfg RunConfig) error {
	if len(cfg.Exe) == 0 {
		return errors.New("enclave: run: no enclave executable")
	}
	if len(cfg.Command) == 0 {
		return errors.New("enclave: run: no kmstool command (decrypt, genkey or genrandom)")
	}
	network, address, err := ParseListen(cfg.Proxy)
	if err != nil {
		return err
	}
	exe := cfg.Exe[0]
	if !filepath.IsAbs(exe) {
		// The process starts in /: a relative path would be read from there.
		if strings.ContainsRune(exe, filepath.Separator) {
			exe, err = filepath.Abs(exe)
		} else {
			exe, err = exec.LookPath(exe)
		}
		if err != nil {
			return fmt.Errorf("enclave: %w", err)
		}
	}
	image, err := filepath.Abs(cfg.Image)
	if err != nil {
		return fmt.Errorf("enclave: %w", err)
	}
	if !fileExists(image) {
		return fmt.Errorf("enclave: no image %s", cfg.Image)
	}
	nsm, err := filepath.Abs(cfg.NSMFile)
	if err != nil {
		return fmt.Errorf("enclave: %w", err)
	}
	if !fileExists(nsm) {
		return fmt.Errorf("enclave: no simulated NSM at %s (trent dev makes it)", cfg.NSMFile)
	}
	proxy := cfg.Proxy
	if network == "unix" {
		if address, err = filepath.Abs(address); err != nil {
			return fmt.Errorf("enclave: %w", err)
		}
		proxy = "unix:" + address
	}
	env := envMap(cfg.Environ)
	region := cfg.Region
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if region == "" {
			region = env[k]
		}
	}
	if region == "" {
		region = DefaultRegion
	}
	var childEnv []string
	if !HasCredentialFlags(cfg.Command) {
		for _, k := range passEnv {
			if v, ok := env[k]; ok && v != "" {
				childEnv = append(childEnv, k+"="+v)
			}
		}
	}
	args := append(cfg.Exe[1:len(cfg.Exe):len(cfg.Exe)], "--image", image, "--nsm", nsm, "--proxy", proxy, "--region", region)
	if cfg.Debug {
		args = append(args, "--debug")
	}
	args = append(append(args, "--"), cfg.Command...)

	mode := cfg.NetNS
	if mode == "" {
		mode = NetNSAuto
	}
	switch mode {
	case NetNSAuto, NetNSOff:
	case NetNSOn:
		if !netnsSupported {
			return errors.New("enclave: --netns on: network namespaces are Linux only")
		}
		if network != "unix" {
			return errors.New("enclave: --netns on needs a unix: proxy (a loopback TCP proxy is out of reach of the enclave's own network namespace)")
		}
	default:
		return fmt.Errorf("enclave: --netns %q: want auto, on or off", mode)
	}
	isolate := netnsSupported && network == "unix" && mode != NetNSOff
	// The parent's lines and the enclave's stderr share the writer.
	var stderr io.Writer = io.Discard
	if cfg.Stderr != nil {
		stderr = &lockedWriter{w: cfg.Stderr}
	}
	start := func(isolate bool) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Env = childEnv
		if cmd.Env == nil {
			cmd.Env = []string{}
		}
		cmd.Dir = "/"
		cmd.Stdin = nil
		cmd.Stdout, cmd.Stderr = cfg.Stdout, stderr
		cmd.WaitDelay = 5 * time.Second
		if isolate {
			isolateNet(cmd)
		}
		return cmd, cmd.Start()
	}
	cmd, err := start(isolate)
	if err != nil && isolate && mode == NetNSAuto {
		fmt.Fprintf(stderr, "[parent] no network namespace for the enclave (%v): it shares the parent's network and reaches KMS through the proxy by construction only\n", err)
		isolate = false
		cmd, err = start(false)
	}
	if err != nil {
		return fmt.Errorf("enclave: start: %w", err)
	}
	where := "shares the parent's network namespace; its client dials only the proxy"
	if isolate {
		where = "own network namespace: the proxy socket is its only way out"
	}
	fmt.Fprintf(stderr, "[parent] enclave process %d started (%s; environment: %s)\n", cmd.Process.Pid, where, envNames(childEnv))
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &ExitError{Code: ee.ExitCode()}
		}
		return fmt.Errorf("enclave: %w", err)
	}
	return nil
}

func envMap(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// envNames lists the variables' names, never their values.
func envNames(env []string) string {
	var names []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	if len(names) == 0 {
		return "empty"
	}
	return strings.Join(names, ", ")
}

// Executable is the running binary, for RunConfig.Exe.
func Executable() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("enclave: %w", err)
	}
	return p, nil
}

// lockedWriter serializes writes.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
