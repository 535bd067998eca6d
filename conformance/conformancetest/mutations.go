// Package conformancetest holds what the conformance suites' own tests
// share. It is imported by tests only.
package conformancetest

import (
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/internal/mutation/overlay"
)

// MutationsClaimed checks that every check of a suite names a mutation of
// its prefix ("kms.", "hsm.", "xks."), no two checks the same, and that the
// suite's mutants (internal/mutation/mutants, found from root, the
// repository's top) are exactly the checks': none unclaimed, none missing.
// A mutation may patch several files.
func MutationsClaimed(t *testing.T, root, prefix string, checks []conformance.Check) {
	t.Helper()
	set, err := overlay.Load(root)
	require.NoError(t, err)
	files := map[string][]string{}
	for _, m := range set.Mutants() {
		if strings.HasPrefix(m.Name, prefix) {
			files[m.Name] = append(files[m.Name], path.Base(m.Source))
		}
	}
	require.NotEmpty(t, files, "no %s* mutants", prefix)
	claimed := map[string]string{}
	for _, c := range checks {
		if !assert.NotEmpty(t, c.Mutation, "%s has no mutation", c.ID) {
			continue
		}
		assert.True(t, strings.HasPrefix(c.Mutation, prefix), "%s: mutation %q is not %s*", c.ID, c.Mutation, prefix)
		if other, ok := claimed[c.Mutation]; ok {
			t.Errorf("%s and %s both claim mutation %s", other, c.ID, c.Mutation)
		}
		claimed[c.Mutation] = c.ID
		assert.Contains(t, files, c.Mutation, "%s: no mutant %s in internal/mutation/mutants", c.ID, c.Mutation)
	}
	var unclaimed []string
	for name, fs := range files {
		if _, ok := claimed[name]; !ok {
			unclaimed = append(unclaimed, name+" ("+strings.Join(fs, ", ")+")")
		}
	}
	sort.Strings(unclaimed)
	assert.Empty(t, unclaimed, "mutations no check claims")
}
