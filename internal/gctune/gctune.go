// Package gctune sets the garbage collector's pace for Trent's servers.
// The KMS request path allocates a few kilobytes a request; with Go's
// default GOGC of 100 the collector took about a sixth of the CPU under
// load (docs/benchmarks.md). Servers hold little live heap (the key store,
// session caches), so a collection every 4× growth of it costs little
// memory and a fifth less CPU per request. An explicit GOGC in the
// environment wins.
package gctune

import (
	"os"
	"runtime/debug"
)

// Percent is the GOGC Servers sets.
const Percent = 400

// Servers sets GOGC to Percent unless the environment sets GOGC.
func Servers() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(Percent)
	}
}
