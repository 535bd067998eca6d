package xks_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	xksconf "github.com/trentkms/trent/conformance/xks"
	"github.com/trentkms/trent/internal/mutation/overlay"
)

// Every xks.* mutant (internal/mutation/mutants) belongs to exactly one
// check, and every check's mutation is a mutant.
func TestMutationNamesClaimed(t *testing.T) {
	set, err := overlay.Load("../..")
	require.NoError(t, err)
	mutants := map[string]int{}
	for _, m := range set.Mutants() {
		if strings.HasPrefix(m.Name, "xks.") {
			mutants[m.Name]++
		}
	}
	require.NotEmpty(t, mutants)
	claimed := map[string][]string{}
	for _, c := range xksconf.Catalogue() {
		claimed[c.Mutation] = append(claimed[c.Mutation], c.ID)
	}
	for name, n := range mutants {
		assert.Equal(t, 1, n, "%s is declared in %d files", name, n)
		assert.Len(t, claimed[name], 1, "mutant %s is claimed by %v", name, claimed[name])
	}
	for name, ids := range claimed {
		assert.Contains(t, mutants, name, "%v claim %s, which no mutant declares", ids, name)
	}
	t.Logf("%d mutants: %s", len(mutants), strings.Join(slices.Sorted(maps.Keys(mutants)), " "))
}
