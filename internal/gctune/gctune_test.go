package gctune

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// unset removes name from the environment for the test.
func unset(t *testing.T, name string) {
	t.Setenv(name, "")
	os.Unsetenv(name)
}

// settings are the current GOGC and memory limit.
func settings() (int, int64) {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p, debug.SetMemoryLimit(-1)
}

func TestServers(t *testing.T) {
	p0, l0 := settings()
	t.Cleanup(func() { debug.SetGCPercent(p0); debug.SetMemoryLimit(l0) })
	reset := func() { debug.SetGCPercent(100); debug.SetMemoryLimit(math.MaxInt64) }

	unset(t, "GOGC")
	unset(t, "GOMEMLIMIT")
	reset()
	Servers()
	if p, l := settings(); p != Percent || l != MemoryLimit {
		t.Errorf("no environment: GOGC %d, limit %d", p, l)
	}

	t.Setenv("GOMEMLIMIT", "2GiB") // read by the runtime at start only: the test checks Servers leaves the limit
	reset()
	Servers()
	if p, l := settings(); p != Percent || l != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: GOGC %d, limit %d", p, l)
	}

	t.Setenv("GOGC", "50")
	reset()
	Servers()
	if p, l := settings(); p != 100 || l != math.MaxInt64 {
		t.Errorf("GOGC set: GOGC %d, limit %d", p, l)
	}
}
