package chaos

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	full      = flag.Bool("chaos.full", false, "every scenario, each for 25 s (make chaos)")
	only      = flag.String("chaos.scenarios", "", "comma-separated scenario names (default: all with -chaos.full, else the short set)")
	reportDir = flag.String("chaos.report", "", "directory for the reports, histories and cluster logs (default: a temporary one, kept if the test fails)")
)

const envBin = "TRENT_CHAOS_BIN"

// noNetwork says why the scenarios run without network namespaces.
var noNetwork string

// TestMain builds the trent binary, then runs the tests again in a private
// network and mount namespace (Reexec), where each service host gets a
// namespace of its own; if that is not allowed, the tests run here and the
// partition scenario is skipped, with the reason.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() || InPrivateNamespace() || !wantsChaos() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "trent-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "trent")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/trentkms/trent/cmd/trent").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: go build: %v\n%s", err, out)
		os.Exit(1)
	}
	os.Setenv(envBin, bin)
	code := 0
	if os.Geteuid() != 0 {
		noNetwork = "not root (network namespaces need CAP_SYS_ADMIN)"
		code = m.Run()
	} else if code, err = Reexec(); err != nil {
		noNetwork = err.Error()
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// wantsChaos reports whether -test.run can select TestChaos.
func wantsChaos() bool {
	f := flag.Lookup("test.run")
	return f == nil || f.Value.String() == "" || strings.Contains("TestChaos", strings.Trim(f.Value.String(), "^$"))
}

// TestChaos runs the fault-injection scenarios over a cluster of
// processes. The short form (make test) runs three short scenarios,
// -chaos.full (make chaos) every scenario for longer; both fail on a lost
// write, a misleading answer, a history that is not linearizable, or an
// HSM that does not reach the latest state version.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clusters of processes")
	}
	bin := os.Getenv(envBin)
	if bin == "" {
		t.Skip("no trent binary (TestMain builds it when TestChaos is selected)")
	}
	if noNetwork != "" {
		t.Logf("chaos: no network namespaces, partition scenarios skipped: %s", noNetwork)
	}
	names := []string{"kill-leader", "partition-leader", "kill-hsm"}
	duration, hold := 10*time.Second, 3*time.Second
	if *full {
		names = nil
		for _, s := range Scenarios {
			names = append(names, s.Name)
		}
		duration, hold = 25*time.Second, 8*time.Second
	}
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	dir := *reportDir
	if dir == "" {
		var err error
		dir, err = os.MkdirTemp("", "trent-chaos-")
		require.NoError(t, err)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("chaos: reports, histories and logs kept in %s", dir)
				return
			}
			os.RemoveAll(dir)
		})
	}
	var reports []*Report
	for _, name := range names {
		s, ok := ScenarioNamed(name)
		require.True(t, ok, "no scenario %q", name)
		h := hold
		if s.Name == "partition-leader" {
			h = max(hold, 6*time.Second) // longer than an election
			if *full {
				h = 10 * time.Second
			}
		}
		r := Run(s, Config{Exec: bin, Dir: filepath.Join(dir, s.Name), Duration: duration, Hold: h, Network: noNetwork == "",
			NoNetworkReason: noNetwork, Log: func(f string, a ...any) { t.Logf(f, a...) }})
		reports = append(reports, r)
		var b strings.Builder
		Print(&b, []*Report{r})
		t.Logf("%.0fs\n%s", r.Seconds, b.String())
	}
	var b strings.Builder
	Print(&b, reports)
	fmt.Printf("\nfault-injection suite (%s):\n%s", dir, b.String())
	data, err := json.MarshalIndent(reports, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "reports.json"), data, 0o644))

	for _, r := range reports {
		if r.Skipped != "" {
			continue
		}
		assert.Empty(t, r.Error, r.Scenario)
		if !assert.NotNil(t, r.Result, r.Scenario) {
			continue
		}
		assert.Zero(t, len(r.Result.Lost), "%s: acknowledged writes lost (report.json lists them)", r.Scenario)
		assert.NotZero(t, r.Result.Acknowledged, r.Scenario)
		assert.FileExists(t, filepath.Join(dir, r.Scenario, "report.json"))
		assert.Zero(t, len(r.Result.Misleading), "%s: misleading answers (report.json lists them)", r.Scenario)
		assert.Equal(t, Linearizable, r.Result.Linearizable, "%s: linearizable", r.Scenario)
		assert.True(t, r.Converged, "%s: every HSM at state version %d: %v", r.Scenario, r.StateVersion, r.HSMVersions)
	}
}
