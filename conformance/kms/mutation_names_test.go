package kms_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance/kms"
)

// hookDirs are where the kms.* mutation hooks live.
var hookDirs = []string{"../../kms", "../../kms/kmsapi", "../../policy"}

var hookName = regexp.MustCompile(`mutation\.On\("(kms\.[^"]*)"\)`)

// hookNames are the kms.* names the hooks' source passes to mutation.On,
// with the files that use each.
func hookNames(t *testing.T) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	for _, dir := range hookDirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		require.NotEmpty(t, files, dir)
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

// Every check names its mutation, no two the same, and the hooks in the
// host and policy code are exactly the checks' mutations: none unclaimed,
// none missing.
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
		assert.Contains(t, hooks, c.Mutation, "%s: no mutation.On(%q) in kms/, kms/kmsapi/ or policy/", c.ID, c.Mutation)
	}
	var unclaimed []string
	for name, files := range hooks {
		if _, ok := claimed[name]; !ok {
			unclaimed = append(unclaimed, name+" ("+strings.Join(files, ", ")+")")
		}
	}
	sort.Strings(unclaimed)
	assert.Empty(t, unclaimed, "hooks no check claims")
}
