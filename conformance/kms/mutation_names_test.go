package kms_test

import (
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance/kms"
	"github.com/trentkms/trent/internal/mutation/overlay"
)

// hookNames are the kms.* mutations, with the .go.mut files that declare
// each (internal/mutation/mutants): product source holds no hooks.
func hookNames(t *testing.T) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	set, err := overlay.Load("../..")
	require.NoError(t, err)
	for _, m := range set.Mutants() {
		if strings.HasPrefix(m.Name, "kms.") {
			names[m.Name] = append(names[m.Name], path.Base(m.Source))
		}
	}
	return names
}

// Every check names its mutation, no two the same, and the kms.* mutants
// are exactly the checks': none unclaimed, none missing.
func TestMutationNames(t *testing.T) {
	hooks := hookNames(t)
	claimed := map[string]string{}
	for _, c := range kms.Catalogue() {
		if !assert.NotEmpty(t, c.Mutation, "%s has no mutation", c.ID) {
			continue
		}
		assert.True(t, strings.HasPrefix(c.Mutation, "kms."), "%s: mutation %q is not kms.*", c.ID, c.Mutation)
		if other, ok := claimed[c.Mutation]; ok {
			t.Errorf("%s and %s both claim mutation %s", other, c.ID, c.Mutation)
		}
		claimed[c.Mutation] = c.ID
		assert.Contains(t, hooks, c.Mutation, "%s: no mutant %s in internal/mutation/mutants", c.ID, c.Mutation)
	}
	var unclaimed []string
	for name, files := range hooks {
		if _, ok := claimed[name]; !ok {
			unclaimed = append(unclaimed, name+" ("+strings.Join(files, ", ")+")")
		}
	}
	sort.Strings(unclaimed)
	assert.Empty(t, unclaimed, "mutations no check claims")
}
