package peers

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// restoreAffinity puts every thread of the test process back on mask
// and GOMAXPROCS back to procs when the test ends.
func restoreAffinity(t *testing.T) {
	var mask unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mask); err != nil {
		t.Fatal(err)
	}
	procs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		placement = Cores{}
		if err := pinThreads(&mask); err != nil {
			t.Error(err)
		}
		runtime.GOMAXPROCS(procs)
	})
}

func affinity(t *testing.T, pid int) unix.CPUSet {
	t.Helper()
	var m unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSplitCores(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	if all.Count() < 2 {
		if _, err := SplitCores(); err == nil {
			t.Fatalf("SplitCores on %d CPU: no error", all.Count())
		}
		t.Skipf("%d CPU: nothing to split", all.Count())
	}
	restoreAffinity(t)
	c, err := SplitCores()
	if err != nil {
		t.Fatal(err)
	}
	if !c.Split() || c.Client.Count() != all.Count()/2 || c.Client.Count()+c.Server.Count() != all.Count() {
		t.Fatalf("split of %d CPUs: client %s, server %s", all.Count(), cpuList(c.Client), cpuList(c.Server))
	}
	for _, cpu := range cpusOf(c.Client) {
		if c.Server.IsSet(cpu) {
			t.Fatalf("CPU %d is both the client's and the servers'", cpu)
		}
	}
	if err := c.Apply(); err != nil {
		t.Fatal(err)
	}
	if got := runtime.GOMAXPROCS(0); got != c.Client.Count() {
		t.Errorf("GOMAXPROCS %d after Apply, want %d", got, c.Client.Count())
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if m := affinity(t, tid); m != c.Client {
			t.Errorf("thread %d on CPU %s after Apply, want %s", tid, cpuList(m), cpuList(c.Client))
		}
	}
	// A server started after Apply runs on the servers' CPUs; this
	// process stays on the client's.
	dir := t.TempDir()
	tg := &Target{}
	if err := tg.start("sleep", dir, exec.Command("sleep", "30")); err != nil {
		t.Fatal(err)
	}
	defer tg.Stop(0)
	if got := affinity(t, tg.PID()); got != c.Server {
		t.Errorf("server on CPU %s, want %s", cpuList(got), cpuList(c.Server))
	}
	if mine := affinity(t, 0); mine != c.Client {
		t.Errorf("this thread on CPU %s after starting a server, want %s", cpuList(mine), cpuList(c.Client))
	}
}

func TestSharedCores(t *testing.T) {
	restoreAffinity(t)
	c, err := ParseCores("shared")
	if err != nil || c.Split() {
		t.Fatalf("ParseCores(shared) = %v, %v", c, err)
	}
	var before unix.CPUSet
	unix.SchedGetaffinity(0, &before)
	if err := c.Apply(); err != nil {
		t.Fatal(err)
	}
	tg := &Target{}
	if err := tg.start("sleep", t.TempDir(), exec.Command("sleep", "30")); err != nil {
		t.Fatal(err)
	}
	defer tg.Stop(0)
	if got := affinity(t, tg.PID()); got != before {
		t.Errorf("server on CPU %s with shared cores, want %s", cpuList(got), cpuList(before))
	}
	if _, err := ParseCores("half"); err == nil {
		t.Error("ParseCores(half): no error")
	}
	if c, err := ParseCores("auto"); err != nil || c.Split() != (before.Count() >= 2) {
		t.Errorf("ParseCores(auto) on %d CPUs = split %v, %v", before.Count(), c.Split(), err)
	}
}
