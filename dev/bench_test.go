package dev_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/kmsload"
)

// warmUp is how long each target is loaded before it is measured.
const warmUp = 3 * time.Second

// BenchmarkKMS measures the KMS API's throughput and latency with kmsload:
// Encrypt, Decrypt and GenerateDataKey with 1 and 16 clients, against a
// `trent dev` cluster (1 service host, 3 HSMs on SoftHSM, all in this
// process) and against moto's KMS server (`python3 -m moto.server`, a
// subprocess; skipped if moto is not installed). Each target is started
// once per run of the benchmark, when its first sub-benchmark is selected
// (-bench filters start only what they select); -count repeats each
// sub-benchmark, back to back, on the same target. The load generator's
// clients run in this process too, on the same cores as the server they
// measure.
//
// A Go benchmark times b.N iterations of an operation, but a load test is
// one run of fixed wall time (TRENT_BENCH_SECONDS, 5 s by default) with
// many clients at once. So each sub-benchmark runs the load once per call,
// whatever b.N is, and reports metrics that do not depend on b.N: ops/s,
// p50-ms and p99-ms over every request of the run, and ns/op overridden
// with the load's wall time per operation (1e9 / ops/s). Run it with
// -benchtime 1x: the framework then calls each sub-benchmark once (b.N =
// 1, its first and only call). A time-based -benchtime shorter than the
// load also stops after that first call, since it already took longer; a
// longer one would call it again and run the load again, reporting the
// last run.
func BenchmarkKMS(b *testing.B) {
	wall := benchWall(b)
	// TRENT_BENCH_CLIENT picks the load generator's client kind (see
	// kmsload.Config.Client): "signer" (the default: SigV4 by the SDK's
	// signer over net/http, the least client CPU on the shared cores) or
	// "sdk" (a whole aws-sdk-go-v2 kms.Client per worker).
	client := os.Getenv("TRENT_BENCH_CLIENT")
	if client == "" {
		client = kmsload.ClientSigner
	}
	b.Run("target=trent", func(b *testing.B) {
		cfg := startTrentTarget(b)
		cfg.Client = client
		benchLoad(b, cfg, wall, 0)
	})
	b.Run("target=moto", func(b *testing.B) {
		cfg, why := startMotoTarget(b)
		if cfg == nil {
			b.Skip(why)
		}
		// moto's server (werkzeug) closes the connection after every
		// answer, and Go's HTTP/1 transport now and then loses the race
		// with that close ("use of closed network connection" while
		// reading a 200 answer, aws/aws-sdk-go-v2#2737): about one request
		// in several thousand. That is tolerated here, up to 0.5 %, and
		// reported; Trent's target tolerates none.
		cfg.Client = client
		benchLoad(b, *cfg, wall, 0.005)
	})
}

// benchWall is each load's wall time: TRENT_BENCH_SECONDS, 5 s by default.
func benchWall(b *testing.B) time.Duration {
	wall := 5 * time.Second
	if s := os.Getenv("TRENT_BENCH_SECONDS"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 {
			b.Fatalf("TRENT_BENCH_SECONDS=%q: want a positive number of seconds", s)
		}
		wall = time.Duration(f * float64(time.Second))
	}
	return wall
}

// benchLoad runs the sub-benchmarks op=*/clients=* against one target
// (cfg names its endpoint, credentials and key); a sub-benchmark fails if
// more than maxErrors of its requests fail. A warm-up load comes first,
// unreported: right after its start a target is slower (the host's first
// HSM session, caches, the heap growing; measured: the first sub-benchmark
// ran at half the rate of the same one later in the run).
func benchLoad(b *testing.B, cfg kmsload.Config, wall time.Duration, maxErrors float64) {
	warm := cfg
	warm.Op, warm.Clients, warm.Duration = kmsload.OpMixed, 4, warmUp
	if r, err := kmsload.Run(context.Background(), warm); err != nil {
		b.Fatal(err)
	} else if r.Ops == 0 || float64(r.Errors) > maxErrors*float64(r.Ops+r.Errors) {
		b.Fatalf("warm-up: %d ops, %d errors: %v", r.Ops, r.Errors, r.ErrorTexts)
	}
	for _, op := range []string{kmsload.OpEncrypt, kmsload.OpDecrypt, kmsload.OpGenerateDataKey} {
		b.Run("op="+op, func(b *testing.B) {
			for _, clients := range []int{1, 16} {
				b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
					c := cfg
					c.Op, c.Clients, c.Duration = op, clients, wall
					c.EncryptionContext = map[string]string{"bench": "kms"}
					// Once, whatever b.N (see BenchmarkKMS).
					r, err := kmsload.Run(context.Background(), c)
					if err != nil {
						b.Fatal(err)
					}
					if r.Ops == 0 || float64(r.Errors) > maxErrors*float64(r.Ops+r.Errors) {
						b.Fatalf("%d ops, %d errors: %v", r.Ops, r.Errors, r.ErrorTexts)
					}
					if r.Errors > 0 {
						b.Logf("%d errors tolerated in %d requests: %v", r.Errors, r.Ops+r.Errors, r.ErrorTexts)
					}
					b.ReportMetric(r.Throughput, "ops/s")
					b.ReportMetric(float64(r.P50)/1e6, "p50-ms")
					b.ReportMetric(float64(r.P99)/1e6, "p99-ms")
					b.ReportMetric(float64(r.Elapsed.Nanoseconds())/float64(r.Ops), "ns/op")
					b.ReportMetric(float64(r.Errors), "errors")
				})
			}
		})
	}
}

// startTrentTarget starts a `trent dev` cluster for the rest of the
// benchmark and makes its key.
func startTrentTarget(b *testing.B) kmsload.Config {
	c, creds := startBenchCluster(b)
	cr := creds.Credentials[0]
	cfg := kmsload.Config{Endpoint: c.KMSURL, AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.SecretAccessKey, Region: creds.Region}
	cfg.KeyID = createBenchKey(b, cfg)
	return cfg
}

// startBenchCluster starts the benchmarks' `trent dev` cluster (1 host, 3
// HSMs, this process) for the rest of the benchmark, with its credentials.
func startBenchCluster(b *testing.B) (*dev.Cluster, *kmsapi.Credentials) {
	// Not b.TempDir: the sub-benchmark's name holds '=', which SoftHSM
	// refuses in a path.
	dir, err := os.MkdirTemp("", "trent-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	c, err := dev.Start(dev.Options{Dir: dir, HSMs: 3, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Stop() })
	creds, err := kmsapi.ReadCredentials(filepath.Join(dir, "credentials.json"))
	if err != nil {
		b.Fatal(err)
	}
	return c, creds
}

// startMotoTarget starts moto's server on a free loopback port for the
// rest of the benchmark and makes its key; nil and the reason if moto is
// not installed.
func startMotoTarget(b *testing.B) (*kmsload.Config, string) {
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, "moto: no python3 in PATH"
	}
	if out, err := exec.Command(python, "-c", "import moto.server").CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("moto is not installed (pip install 'moto[server]'): %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(python, "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("moto did not answer on %s within 60 s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cfg := kmsload.Config{Endpoint: url, AccessKeyID: "AKIAMOTOBENCH0000000", SecretAccessKey: "moto-bench-secret-0000000000", Region: "us-east-1"}
	cfg.KeyID = createBenchKey(b, cfg)
	return &cfg, ""
}

// createBenchKey makes the benchmark's symmetric key and returns its
// alias.
func createBenchKey(b *testing.B, cfg kmsload.Config) string {
	ctx := context.Background()
	cl := kmsload.NewClient(cfg, kmsload.NewHTTPClient(1))
	out, err := cl.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("BenchmarkKMS")})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/bench"), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		b.Fatal(err)
	}
	return "alias/bench"
}
