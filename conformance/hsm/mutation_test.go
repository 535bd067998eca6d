//go:build trentmutation

package hsm_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance"
	hsmconf "github.com/trentkms/trent/conformance/hsm"
	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/internal/mutation"
)

// Each check can fail: with exactly its mutation on (the HSM under test
// runs in this process), the suite fails that check and passes every
// other. One cluster serves every run; the suite's Env follows the domain
// as HSM-TOK-002 moves it on (and as a mutation may).
func TestMutations(t *testing.T) {
	require.True(t, mutation.Overlaid, "build with the mutants' overlay: go run ./internal/mutation/cmd/mkoverlay -o DIR, then -overlay DIR/overlay.json")
	f := cluster(t)
	start := time.Now()
	// A run without a mutation first: everything passes (and the older
	// token HSM-TOK-003 needs exists afterwards).
	rep := f.run(t)
	for _, r := range rep.Results {
		if r.ID == "HSM-TOK-003" && r.Status == conformance.Skip {
			continue // before HSM-TOK-002 has run once
		}
		require.Equal(t, conformance.Pass, r.Status, "%s without a mutation: %s (expected %s, observed %s) %v", r.ID, r.Reason, r.Expected, r.Observed, r.Log)
	}
	for _, c := range hsmconf.Catalogue() {
		t.Run(c.ID, func(t *testing.T) {
			mutation.Set(c.Mutation)
			rep := f.run(t)
			mutation.Set("")
			f.restart(t)
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
	t.Logf("%d runs in %s", len(hsmconf.Catalogue())+1, time.Since(start).Round(time.Second))
}

// restart restarts the node under test with the suite's current token
// if a run left it in a state the suite cannot follow (a mutation that
// let it take a forged token does). Such a node also anchored the forged
// domain in its token, so, as an operator would after a hijack, the
// anchor is cleared first (trent hsm reset-anchor).
func (f *fixture) restart(t *testing.T) {
	t.Helper()
	if st, _ := f.n.DomainState(); st != nil && st.Name == dev.DomainName && st.Version == f.env.Version() {
		return
	}
	f.halt()
	_, err := node.ResetAnchor(node.Options{Dir: f.c.HSMDir, Label: f.c.HSMs[0].TokenLabel})
	require.NoError(t, err)
	require.NoError(t, f.serve(f.addr, f.env.Token()))
}
