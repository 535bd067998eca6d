package peers

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The bound's SigV4 verification accepts what the AWS SDK signs and
// refuses a request altered in its body, a signed header or its
// signature.
func TestVerifySigV4(t *testing.T) {
	v, err := newSigV4Bench()
	if err != nil {
		t.Fatal(err)
	}
	if err := verifySigV4(v.req, v.body, v.key); err != nil {
		t.Fatal(err)
	}
	body := append([]byte(nil), v.body...)
	body[len(body)-3] ^= 1
	if verifySigV4(v.req, body, v.key) == nil {
		t.Error("altered body accepted")
	}
	r := v.req.Clone(v.req.Context())
	r.Header.Set("X-Amz-Target", "TrentService.Decrypt")
	if verifySigV4(r, v.body, v.key) == nil {
		t.Error("altered signed header accepted")
	}
	r = v.req.Clone(v.req.Context())
	a := r.Header.Get("Authorization")
	r.Header.Set("Authorization", a[:len(a)-1]+string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", a[len(a)-1])+1)%16]))
	if verifySigV4(r, v.body, v.key) == nil {
		t.Error("altered signature accepted")
	}
	if verifySigV4(v.req, v.body, append([]byte{1}, v.key[1:]...)) == nil {
		t.Error("another key accepted")
	}
}

// treeCPU counts a process and its children: a child that burns CPU
// raises the parent's tree total.
func TestTreeCPU(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5' & wait")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var cpu time.Duration
	var n int
	deadline := time.Now().Add(20 * time.Second)
	for cpu < 50*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		var err error
		if cpu, n, err = treeCPU(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	if n < 2 || cpu < 50*time.Millisecond {
		t.Fatalf("tree of %d: %d processes, %v of CPU", cmd.Process.Pid, n, cpu)
	}
	own, err := readStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if own.cpu >= cpu {
		t.Errorf("the parent alone has %v, the tree %v", own.cpu, cpu)
	}
	if own.ppid != os.Getpid() {
		t.Errorf("ppid %d, want %d", own.ppid, os.Getpid())
	}
}

func TestMedianComma(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 12345.6: "12,346", 1234567: "1,234,567"} {
		if got := comma(in); got != want {
			t.Errorf("comma(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestTable(t *testing.T) {
	loads := []Load{{"Encrypt", 16}}
	var samples []Sample
	for i, r := range []struct {
		target string
		rps    float64
		cpu    time.Duration
	}{{Trent, 5000, 150 * time.Microsecond}, {LocalKMS, 10000, 50 * time.Microsecond}, {Trent, 6000, 130 * time.Microsecond},
		{LocalKMS, 12000, 60 * time.Microsecond}, {Trent, 7000, 140 * time.Microsecond}, {LocalKMS, 11000, 70 * time.Microsecond}} {
		samples = append(samples, Sample{Target: r.target, Op: "Encrypt", Clients: 16, Round: i/2 + 1, ReqPerSec: r.rps,
			Requests: 1000, ServerCPU: 1000 * r.cpu, P50: time.Millisecond, P99: 5 * time.Millisecond, Elapsed: time.Second})
	}
	b := Bound{PrimSigV4: {2000}, PrimTokenMAC: {8000}, PrimGCM: {1000}, PrimEnvelope: {3000}}
	got := Table(samples, loads, []string{Trent, LocalKMS}, b)
	for _, want := range []string{"| Encrypt | 16 | 6,000 | 11,000 | 0.55× | 140 µs | 60 µs | 2.33× |", "| 0 / 0 | 10.0× |"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if lines := strings.Split(strings.TrimSpace(got), "\n"); len(lines) != 3 || strings.Count(lines[0], "|") != strings.Count(lines[1], "|") {
		t.Errorf("header and separator differ:\n%s", got)
	}
	if rt := RoundsTable(samples, loads, []string{Trent, LocalKMS}); !strings.Contains(rt, "| Encrypt | 16 | trent | 5,000 · 6,000 · 7,000 | 150 µs · 130 µs · 140 µs |") {
		t.Errorf("rounds table:\n%s", rt)
	}
	if bt := BoundTable(b); !strings.Contains(bt, "**14.00 µs**") {
		t.Errorf("bound table:\n%s", bt)
	}
}
