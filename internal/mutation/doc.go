// Package mutation lets the conformance suites prove that each of their
// checks can fail: a test build (go build -tags trentmutation) of a host
// or HSM can break exactly one behaviour, named by a stable string, and
// the suite must then fail exactly the check that names it.
//
// # Contract
//
// Product builds (no tag) compile On to a constant false: the hooks cost
// nothing and no flag, variable or environment can turn a mutation on.
// Test builds read the active mutation from Set (tests in this process)
// or from the TRENT_MUTATION environment variable at start (a trent
// binary built with the tag). At most one mutation is active at a time.
// On is safe for concurrent use.
//
// Call sites look like
//
//	if mutation.On("kms.ec-not-bound") { ... the broken behaviour ... }
//
// and every name used in the tree belongs to a conformance check, whose
// mutation test runs the whole suite against a cluster with it on.
package mutation
