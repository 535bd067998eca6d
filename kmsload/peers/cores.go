package peers

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Cores is how a run divides the machine's CPUs between the load
// generator and the servers. The zero Cores shares every CPU between them
// (the load generator's threads and the servers' run wherever the kernel
// puts them); a split one (SplitCores) runs the load generator on Client
// and every server process on Server, so that a server's figures are its
// own work on cores of its own, not also how the kernel places its
// threads beside the load generator's.
type Cores struct {
	Client, Server unix.CPUSet
	split          bool
}

// Split reports whether c divides the CPUs.
func (c Cores) Split() bool { return c.split }

// String describes c for the table's header.
func (c Cores) String() string {
	if !c.split {
		return "the load generator and the servers sharing every CPU"
	}
	return fmt.Sprintf("the load generator on CPU %s, the servers on CPU %s", cpuList(c.Client), cpuList(c.Server))
}

// SplitCores divides the CPUs this process may run on: the first half
// (rounded down, at least one) to the load generator, the rest to the
// servers. It needs at least two.
func SplitCores() (Cores, error) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return Cores{}, fmt.Errorf("peers: %w", err)
	}
	cpus := cpusOf(all)
	if len(cpus) < 2 {
		return Cores{}, fmt.Errorf("peers: splitting the cores needs 2 CPUs or more; this process may run on %d", len(cpus))
	}
	c := Cores{split: true}
	half := len(cpus) / 2
	for i, cpu := range cpus {
		if i < half {
			c.Client.Set(cpu)
		} else {
			c.Server.Set(cpu)
		}
	}
	return c, nil
}

// placement is the Cores of the last Apply: every server started after it
// runs on its Server CPUs.
var placement Cores

// Apply puts the run on c: it moves every thread of this process (the
// load generator's) to c.Client and sets GOMAXPROCS to their number
// (threads created later inherit the mask of the thread that creates
// them), and every server started after it runs on c.Server. For cores
// that are not split it changes nothing.
func (c Cores) Apply() error {
	placement = c
	if !c.split {
		return nil
	}
	// Twice: a thread created during the first pass by one not yet moved
	// has the old mask.
	for range 2 {
		if err := pinThreads(&c.Client); err != nil {
			return err
		}
	}
	runtime.GOMAXPROCS(c.Client.Count())
	return nil
}

// pinThreads sets the CPU mask of every thread of this process (a thread
// that exits meanwhile is skipped).
func pinThreads(mask *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, mask); err != nil && err != unix.ESRCH {
			return fmt.Errorf("peers: pinning thread %d: %w", tid, err)
		}
	}
	return nil
}

// start starts cmd on c.Server: from a thread that holds that mask while
// it forks, so that the server's first thread, and every thread and
// process it makes, has it from the start (a Go server sizes GOMAXPROCS
// from it).
func (c Cores) start(cmd *exec.Cmd) error {
	if !c.split {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.SchedSetaffinity(0, &c.Server); err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	err := cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &c.Client); rerr != nil && err == nil {
		err = fmt.Errorf("peers: %w", rerr)
	}
	return err
}

// cpusOf is the CPUs in s, in order.
func cpusOf(s unix.CPUSet) []int {
	var cpus []int
	for i := range len(s) * 64 {
		if s.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// cpuList writes s as a list of CPUs ("0", "2,3").
func cpuList(s unix.CPUSet) string {
	var b []string
	for _, cpu := range cpusOf(s) {
		b = append(b, strconv.Itoa(cpu))
	}
	return strings.Join(b, ",")
}

// ParseCores is the -cores flag of kmspeers and trentab: "split"
// (SplitCores), "shared" (the zero Cores), or "auto": split where this
// process may run on 2 CPUs or more, else shared.
func ParseCores(s string) (Cores, error) {
	switch s {
	case "split":
		return SplitCores()
	case "shared":
		return Cores{}, nil
	case "auto":
		if c, err := SplitCores(); err == nil {
			return c, nil
		}
		return Cores{}, nil
	}
	return Cores{}, fmt.Errorf("peers: -cores %q: auto, split or shared", s)
}

// CoresUsage is the -cores flag's help.
const CoresUsage = "auto: split where there are 2 CPUs or more, else shared; split: the load generator on the first half of the CPUs, every server process on the rest; shared: the load generator and the servers on every CPU"
