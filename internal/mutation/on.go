//go:build trentmutation

package mutation

import (
	"os"
	"sync/atomic"
)

// Enabled reports whether this is a mutation test build.
const Enabled = true

// Overlaid reports whether the build has the mutants (package
// internal/mutation/overlay): a file the overlay adds sets it. Without
// them every mutation is a no-op.
var Overlaid bool

var active atomic.Pointer[string]

func init() {
	if v := os.Getenv("TRENT_MUTATION"); v != "" {
		active.Store(&v)
	}
}

// On reports whether the named mutation is active.
func On(name string) bool {
	p := active.Load()
	return p != nil && *p == name
}

// Set activates a mutation, or none with "".
func Set(name string) {
	if name == "" {
		active.Store(nil)
		return
	}
	active.Store(&name)
}
