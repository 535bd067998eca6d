// Package gctune sets the garbage collector's pace for Trent's servers.
//
// A server holds little live heap (the key store, session caches: 2–3 MB
// for the benchmark's cluster) and allocates a few kilobytes a request.
// With Go's default GOGC of 100 the collector took about a sixth of the
// CPU under load (docs/benchmarks.md); at GOGC 400 a host still collected
// about five times a second at 4,400 Encrypts/s, 7.5 µs of CPU a request
// (gctrace, 2026-12-02), because a cycle's cost hardly shrinks with the
// heap. Servers sets GOGC to Percent (a heap of about 17× the live one,
// 64 MB for that host, collected a quarter as often: 1.4 µs a request)
// and a soft memory limit of MemoryLimit, so that a large key store makes
// the collector run more often instead of the heap growing 17-fold: once
// the live heap nears the limit, collections come as often as needed to
// stay under it (a host whose live heap approaches 1 GiB should set
// GOMEMLIMIT or GOGC). GOGC or GOMEMLIMIT in the environment wins.
package gctune

import (
	"os"
	"runtime/debug"
)

// Percent is the GOGC Servers sets.
const Percent = 1600

// MemoryLimit is the soft memory limit (GOMEMLIMIT) Servers sets.
const MemoryLimit = 1 << 30

// Servers sets GOGC to Percent and the memory limit to MemoryLimit, unless
// the environment sets GOGC (then neither) or GOMEMLIMIT (then not the
// limit).
func Servers() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(Percent)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
