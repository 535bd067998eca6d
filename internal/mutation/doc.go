// Package mutation lets the conformance suites prove that each of their
// checks can fail: a test build of a host or HSM can break exactly one
// behaviour, named by a stable string, and the suite must then fail
// exactly the check that names it.
//
// # Mutants
//
// Product source holds no mutation code. Each broken behaviour is a
// mutant, declared under internal/mutation/mutants as a patch to one
// product file: an exact snippet of it and the snippet that replaces it,
// which guards the broken behaviour with On, as in
//
//	if mutation.On("hsm.replay-seq-zero-accepted") && seq == 0 {
//		return true
//	}
//
// Helpers only mutants use are whole files the build adds. Package
// internal/mutation/overlay (with its command, cmd/mkoverlay) applies the
// patches to copies of the product files and writes them with an
// overlay.json; a test build is
//
//	dir=$(mktemp -d)
//	go run ./internal/mutation/cmd/mkoverlay -o "$dir"
//	go test -tags trentmutation -overlay "$dir/overlay.json" -run TestMutation ./conformance/...
//
// (what scripts/test.sh runs). A snippet that no longer occurs exactly once
// in its product file fails the generator, naming the mutant, and fails
// TestMutantsApply in a plain go test; TestProductHasNoHooks fails on a
// mutation.On written into product source.
//
// # Contract
//
// Product builds (no tag) compile On to a constant false and Set panics
// on any name: no flag, variable or environment can turn a mutation on,
// and without the overlay there are no mutants to turn on. Test builds
// (-tags trentmutation) read the active mutation from Set (tests in this
// process) or from the TRENT_MUTATION environment variable at start (a
// trent binary built with the tag and the overlay). At most one mutation
// is active at a time. On is safe for concurrent use. Overlaid reports,
// in a test build, whether the overlay was applied (a file it adds sets
// it): the mutation tests require it.
//
// Every mutant's name belongs to a conformance check, whose mutation test
// runs the whole suite against a cluster with it on and requires that
// check, and only it, to fail.
package mutation
