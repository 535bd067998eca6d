//go:build !trentmutation

package mutation

// Enabled reports whether this is a mutation test build.
const Enabled = false

// On reports whether the named mutation is active: never, in a product
// build.
func On(string) bool { return false }

// Set activates a mutation (or none, with ""); in a product build it
// panics, since nothing may turn a mutation on there.
func Set(name string) {
	if name != "" {
		panic("mutation: Set in a build without the trentmutation tag")
	}
}
