//go:build trentmutation

package xks_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance"
	xksconf "github.com/trentkms/trent/conformance/xks"
	"github.com/trentkms/trent/internal/mutation"
)

// Every check can fail, alone: against one proxy in this process (the
// handler of trent xks serve over a real SoftHSM token), with each
// check's mutation on in turn, the whole suite runs and exactly that
// check fails. Run, from the module root, with the mutants' overlay:
//
//	dir=$(mktemp -d); go run ./internal/mutation/cmd/mkoverlay -o "$dir"
//	go test -tags trentmutation -overlay "$dir/overlay.json" ./conformance/xks/ -run TestMutations
func TestMutations(t *testing.T) {
	require.True(t, mutation.Overlaid, "build with the mutants' overlay: go run ./internal/mutation/cmd/mkoverlay -o DIR, then -overlay DIR/overlay.json")
	cfg := proxy(t)
	rep := runSuite(t, cfg)
	require.Equal(t, len(xksconf.Catalogue()), rep.Passed, "without a mutation every check passes")
	for _, c := range xksconf.Catalogue() {
		t.Run(c.ID, func(t *testing.T) {
			mutation.Set(c.Mutation)
			rep := runSuite(t, cfg)
			mutation.Set("")
			for _, r := range rep.Results {
				if r.ID == c.ID {
					assert.Equal(t, conformance.Fail, r.Status, "%s must fail under %s", r.ID, c.Mutation)
					t.Logf("%s under %s: %s (expected %s, observed %s)", r.ID, c.Mutation, r.Reason, r.Expected, r.Observed)
					continue
				}
				assert.Equal(t, conformance.Pass, r.Status, "%s under %s (claimed by %s): %s (expected %s, observed %s) %v",
					r.ID, c.Mutation, c.ID, r.Reason, r.Expected, r.Observed, r.Log)
			}
		})
	}
}
