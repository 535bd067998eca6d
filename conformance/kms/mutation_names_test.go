package kms_test

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance/kms"
	"github.com/trentkms/trent/internal/mutation/overlay"
)

// hookDirs are where kms.* mutation hooks are still written into product
// source, as mutation.On calls: kms/*.go, until they become mutants like
// those of kms/kmsapi/ and policy/. A directory that does not exist holds
// none.
var hookDirs = []string{"../../host", "../../kms"}

var hookName = regexp.MustCompile(`mutation\.On\("(kms\.[^"]*)"\)`)

// hookNames are the kms.* mutations, with the files that hold each: the
// mutants (internal/mutation/mutants) and the hooks still in hookDirs.
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
	for _, dir := range hookDirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			for _, m := range hookName.FindAllStringSubmatch(string(src), -1) {
				names[m[1]] = append(names[m[1]], filepath.Base(f))
			}
		}
	}
	return names
}

// Every check names its mutation, no two the same, and the mutations
// written for the host and policy code are exactly the checks': none
// unclaimed, none missing.
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
		assert.Contains(t, hooks, c.Mutation, "%s: no mutant %s in internal/mutation/mutants nor mutation.On(%q) in host/ or kms/", c.ID, c.Mutation, c.Mutation)
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
