package peers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/trentkms/trent/kmsload"
)

// Target names, in the order rounds visit them.
const (
	Trent    = "trent"
	LocalKMS = "local-kms"
	Moto     = "moto"
	// TrentInProcess is `trent dev --in-process`: the same cluster with
	// the HSM nodes and the host in one process. Not the production
	// shape: a row beside Trent's that gives the cost of the process hop
	// by difference.
	TrentInProcess = "trent-in-process"
	// TrentNSS is `trent dev --hsm-module nss`: the production shape with
	// the HSMs' tokens in NSS's softoken instead of SoftHSM2. A row beside
	// Trent's that gives the cost of the PKCS#11 module by difference.
	TrentNSS = "trent-nss"
)

// startTimeout bounds a server's start and its key's creation.
const startTimeout = 3 * time.Minute

// Target is a running server under test.
type Target struct {
	Name string
	// Load is the kmsload configuration of its endpoint, credentials and
	// key (alias/bench); Run fills in the load itself.
	Load kmsload.Config
	// PprofBase is, for Trent with profiling, the first pprof port
	// (HSM i on PprofBase+i, host-1 after the HSMs).
	PprofBase int
	HSMs      int

	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	// maxErrors is the fraction of failed requests tolerated in a round.
	maxErrors float64
}

// PID is the server's root process (for Trent, the `trent dev`
// supervisor).
func (t *Target) PID() int { return t.cmd.Process.Pid }

// CPU is the CPU time of the target's process tree so far, and how many
// processes it counted.
func (t *Target) CPU() (time.Duration, int, error) { return treeCPU(t.PID()) }

// Stop ends the server: SIGTERM (Trent's supervisor stops its processes,
// hosts first), SIGKILL after grace.
func (t *Target) Stop(grace time.Duration) {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(grace):
		t.cmd.Process.Kill()
		<-t.done
	}
	t.log.Close()
}

func (t *Target) start(name, dir string, cmd *exec.Cmd) error {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := placement.start(cmd); err != nil {
		log.Close()
		return fmt.Errorf("peers: %s: %w", name, err)
	}
	t.Name, t.cmd, t.log, t.done = name, cmd, log, make(chan struct{})
	go func() {
		cmd.Wait()
		close(t.done)
	}()
	return nil
}

// exited reports whether the server's root process has exited.
func (t *Target) exited() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// StartTrent runs `trent dev` (exe is a trent binary built from the
// checkout) in a fresh data dir under work: 3 HSM nodes and 1 service
// host, each a process, the audit trail on (dir/audit.jsonl), domain-key
// rotation off. pprofBase, if not zero, gives each process a pprof
// listener (trent dev --pprof-base).
func StartTrent(exe, work string, pprofBase int) (*Target, error) {
	return startTrent(Trent, exe, work, pprofBase)
}

// StartTrentInProcess runs the cluster StartTrent runs with
// `trent dev --in-process`: its HSM nodes and host in one process.
func StartTrentInProcess(exe, work string) (*Target, error) {
	return startTrent(TrentInProcess, exe, work, 0, "--in-process")
}

// StartTrentNSS runs the cluster StartTrent runs with its HSMs' tokens in
// NSS's softoken (`trent dev --hsm-module nss`).
func StartTrentNSS(exe, work string) (*Target, error) {
	return startTrent(TrentNSS, exe, work, 0, "--hsm-module", "nss")
}

func startTrent(name, exe, work string, pprofBase int, extra ...string) (*Target, error) {
	dir, err := os.MkdirTemp(work, name+"-")
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"dev", "--dir", dir, "--hsms", "3", "--hosts", "1", "--listen", "127.0.0.1:0",
		"--kms-listen", "127.0.0.1:" + strconv.Itoa(port), "--rotation-interval", "-1s"}
	if pprofBase != 0 {
		args = append(args, "--pprof-base", strconv.Itoa(pprofBase))
	}
	args = append(args, extra...)
	t := &Target{PprofBase: pprofBase, HSMs: 3}
	if err := t.start(name, dir, exec.Command(exe, args...)); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(startTimeout)
	env := filepath.Join(dir, "env")
	for !fileExists(env) {
		if t.exited() || time.Now().After(deadline) {
			t.Stop(time.Second)
			return nil, fmt.Errorf("peers: trent dev did not start (see %s)", t.log.Name())
		}
		time.Sleep(200 * time.Millisecond)
	}
	vars, err := readEnv(env)
	if err != nil {
		t.Stop(10 * time.Second)
		return nil, err
	}
	t.Load = kmsload.Config{Endpoint: vars["AWS_ENDPOINT_URL"], AccessKeyID: vars["AWS_ACCESS_KEY_ID"],
		SecretAccessKey: vars["AWS_SECRET_ACCESS_KEY"], Region: vars["AWS_REGION"]}
	if err := t.createKey(deadline); err != nil {
		t.Stop(10 * time.Second)
		return nil, err
	}
	return t, nil
}

// StartLocalKMS runs local-kms (exe) on a free port with its data under
// work. It listens on every interface.
func StartLocalKMS(exe, work string) (*Target, error) {
	dir, err := os.MkdirTemp(work, "local-kms-")
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "KMS_REGION="+kmsload.DefaultRegion,
		"KMS_DATA_PATH="+filepath.Join(dir, "data"), "KMS_SEED_PATH="+filepath.Join(dir, "no-seed.yaml"))
	t := &Target{}
	if err := t.start(LocalKMS, dir, cmd); err != nil {
		return nil, err
	}
	// local-kms checks no signature; the load signs every request anyway.
	t.Load = kmsload.Config{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), AccessKeyID: "AKIALOCALKMSBENCH000",
		SecretAccessKey: "local-kms-bench-secret-000000000", Region: kmsload.DefaultRegion}
	if err := t.createKey(time.Now().Add(startTimeout)); err != nil {
		t.Stop(5 * time.Second)
		return nil, err
	}
	return t, nil
}

// StartMoto runs moto's server (python -m moto.server) on a free loopback
// port. moto's werkzeug server closes the connection after each answer,
// and Go's HTTP/1 client now and then loses the race with that close
// (aws/aws-sdk-go-v2#2737): up to 0.5 % of failed requests are tolerated
// and reported.
func StartMoto(python, work string) (*Target, error) {
	dir, err := os.MkdirTemp(work, "moto-")
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	if out, err := exec.Command(python, "-c", "import moto.server").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("peers: moto is not installed (pip install 'moto[server]'): %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &Target{maxErrors: 0.005}
	if err := t.start(Moto, dir, exec.Command(python, "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))); err != nil {
		return nil, err
	}
	t.Load = kmsload.Config{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), AccessKeyID: "AKIAMOTOBENCH0000000",
		SecretAccessKey: "moto-bench-secret-0000000000", Region: kmsload.DefaultRegion}
	if err := t.createKey(time.Now().Add(startTimeout)); err != nil {
		t.Stop(5 * time.Second)
		return nil, err
	}
	return t, nil
}

// createKey makes the target's symmetric key and alias/bench, retrying
// until the server answers or the deadline passes.
func (t *Target) createKey(deadline time.Time) error {
	cl := kmsload.NewClient(t.Load, kmsload.NewHTTPClient(1))
	ctx := context.Background()
	var err error
	for {
		var out *kms.CreateKeyOutput
		if out, err = cl.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("issue 17 side-by-side benchmark")}); err == nil {
			_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/bench"), TargetKeyId: out.KeyMetadata.KeyId})
			if err != nil {
				return fmt.Errorf("peers: %s: CreateAlias: %w", t.Name, err)
			}
			t.Load.KeyID = "alias/bench"
			return nil
		}
		if t.exited() {
			return fmt.Errorf("peers: %s exited at start (see %s)", t.Name, t.log.Name())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("peers: %s: CreateKey: %w (see %s)", t.Name, err, t.log.Name())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("peers: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePortRange returns the first of n consecutive loopback ports that
// were free a moment ago.
func FreePortRange(n int) (int, error) {
	for base := 20000 + os.Getpid()%20000; base < 60000; base += n {
		var ls []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		ok := len(ls) == n
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("peers: no free port range")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readEnv reads the `export NAME=value` lines of trent dev's env file.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			vars[k] = v
		}
	}
	return vars, sc.Err()
}
