package overlay_test

import (
	"encoding/json"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/internal/mutation/overlay"
)

const root = "../../.."

const product = `package p

import (
	"errors"
	"fmt"
)

func check(n int) error {
	if n < 0 {
		return errors.New("negative")
	}
	if n > 9 {
		return fmt.Errorf("%d too big", n)
	}
	return nil
}
`

func mustParse(t *testing.T, text string) *overlay.File {
	t.Helper()
	f, err := overlay.Parse("p/p.go.mut", "p/p.go", []byte(text))
	require.NoError(t, err)
	return f
}

func apply(t *testing.T, text string) (string, error) {
	t.Helper()
	out, err := mustParse(t, text).Apply([]byte(product))
	return string(out), err
}

// An applied mutant adds the import of internal/mutation and the
// declared ones, parses and is gofmt-clean.
func TestApplyAddsImports(t *testing.T) {
	out, err := apply(t, `Mutants of p.go.
-- imports --
"strings"
-- mutant p.negative-accepted --
Negative numbers pass.
-- original --
	if n < 0 {
-- replacement --
	if n < 0 && !mutation.On("p.negative-accepted") && strings.HasPrefix("", "") {
`)
	require.NoError(t, err)
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", out, parser.ImportsOnly)
	require.NoError(t, err)
	var paths []string
	for _, s := range f.Imports {
		paths = append(paths, s.Path.Value)
	}
	assert.ElementsMatch(t, []string{`"errors"`, `"fmt"`, `"strings"`, `"` + overlay.MutationImport + `"`}, paths)
	assert.Contains(t, out, `if n < 0 && !mutation.On("p.negative-accepted") && strings.HasPrefix("", "") {`)
	formatted, err := format.Source([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, string(formatted), out)
}

// An import the product file already has is not added again, the import
// of internal/mutation included (a file that still holds hooks).
func TestApplyKeepsPresentImports(t *testing.T) {
	f := mustParse(t, `-- imports --
"fmt"
-- mutant p.x --
-- original --
	return nil
-- replacement --
	if mutation.On("p.x") {
		return fmt.Errorf("x")
	}
	return nil
`)
	src := strings.Replace(product, `"fmt"`, `"fmt"

	"github.com/trentkms/trent/internal/mutation"`, 1)
	src = strings.Replace(src, "if n > 9 {", `if n > 9 && !mutation.On("p.y") {`, 1)
	out, err := f.Apply([]byte(src))
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(out), `"fmt"`))
	assert.Equal(t, 1, strings.Count(string(out), `"`+overlay.MutationImport+`"`))
	assert.Contains(t, string(out), `mutation.On("p.y")`)
}

func TestApplyMissingSnippet(t *testing.T) {
	_, err := apply(t, `-- mutant p.x --
-- original --
	if n > 10 {
-- replacement --
	if n > 10 && mutation.On("p.x") {
`)
	require.ErrorIs(t, err, overlay.ErrMutant)
	assert.ErrorContains(t, err, "p/p.go.mut:2: mutant p.x: the original occurs 0 times in p/p.go, want exactly 1")
}

func TestApplySnippetTwice(t *testing.T) {
	_, err := apply(t, `-- mutant p.x --
-- original --
		return
-- replacement --
		return
		_ = mutation.On("p.x")
`)
	require.ErrorIs(t, err, overlay.ErrMutant)
	assert.ErrorContains(t, err, "p/p.go.mut:2: mutant p.x: the original occurs 2 times in p/p.go, want exactly 1")
}

// Every misfit is reported, not only the first.
func TestApplyReportsAll(t *testing.T) {
	_, err := apply(t, `-- mutant p.x --
-- original --
nope
-- replacement --
mutation.On("p.x")
-- mutant p.y --
-- original --
neither
-- replacement --
mutation.On("p.y")
`)
	assert.ErrorContains(t, err, "mutant p.x: the original occurs 0 times")
	assert.ErrorContains(t, err, "mutant p.y: the original occurs 0 times")
}

func TestApplyOverlap(t *testing.T) {
	_, err := apply(t, `-- mutant p.x --
-- original --
	if n < 0 {
		return errors.New("negative")
-- replacement --
	if n < 0 && !mutation.On("p.x") {
		return errors.New("negative")
-- mutant p.y --
-- original --
		return errors.New("negative")
	}
-- replacement --
		return errors.New("negative")
	}
	_ = mutation.On("p.y")
`)
	assert.ErrorContains(t, err, "p/p.go.mut:9: mutant p.y: its original overlaps that of mutant p.x (line 2) in p/p.go")
}

// Mutants may share an original they only insert around; the insertions
// keep the order of declaration.
func TestApplySharedOriginal(t *testing.T) {
	out, err := apply(t, `-- mutant p.x --
-- original --
	return nil
-- replacement --
	if mutation.On("p.x") {
		return errors.New("x")
	}
	return nil
-- mutant p.y --
-- original --
	return nil
-- replacement --
	return nil
	_ = mutation.On("p.y")
-- mutant p.z --
-- original --
	return nil
-- replacement --
	if mutation.On("p.z") {
		return errors.New("z")
	}
	return nil
`)
	require.NoError(t, err)
	assert.Contains(t, out, `	if mutation.On("p.x") {
		return errors.New("x")
	}
	if mutation.On("p.z") {
		return errors.New("z")
	}
	return nil
	_ = mutation.On("p.y")
}`)
}

func TestApplySharedOriginalRewritten(t *testing.T) {
	_, err := apply(t, `-- mutant p.x --
-- original --
	return nil
-- replacement --
	_ = mutation.On("p.x")
	return nil
-- mutant p.y --
-- original --
	return nil
-- replacement --
	return errors.New("y") // mutation.On("p.y")
`)
	assert.ErrorContains(t, err, "mutant p.y: its original is shared with mutant p.x (line 2) in p/p.go, so its replacement must only add text before or after it")
}

func TestApplyPartOfALine(t *testing.T) {
	out, err := apply(t, `-- mutant p.x --
-- original --
n > 9 {
-- replacement --
n > 9 && !mutation.On("p.x") {
`)
	require.NoError(t, err)
	assert.Contains(t, out, "\tif n > 9 && !mutation.On(\"p.x\") {\n")
}

func TestApplyUnusedImport(t *testing.T) {
	_, err := apply(t, `-- imports --
"strings"
-- mutant p.x --
-- original --
n > 9 {
-- replacement --
n > 9 && !mutation.On("p.x") {
`)
	assert.ErrorContains(t, err, `p/p.go.mut:2: p/p.go: import "strings" is added but not used`)
}

func TestApplyDoesNotParse(t *testing.T) {
	_, err := apply(t, `-- mutant p.x --
-- original --
n > 9 {
-- replacement --
n > 9 && !mutation.On("p.x") {{
`)
	assert.ErrorContains(t, err, "p/p.go does not parse once patched")
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, err string }{
		{"empty", "just a comment\n", "p/p.go.mut:1: no mutants"},
		{"no own hook", "-- mutant p.x --\n-- original --\na\n-- replacement --\nb\n", `p/p.go.mut:2: mutant p.x: the replacement does not call mutation.On("p.x")`},
		{"another's hook", "-- mutant p.x --\n-- original --\na\n-- replacement --\nmutation.On(\"p.x\") || mutation.On(\"p.y\")\n", `mutant p.x: the replacement calls mutation.On("p.y"): one mutant, one name`},
		{"hook in original", "-- mutant p.x --\n-- original --\nmutation.On(\"p.x\")\n-- replacement --\nmutation.On(\"p.x\") \n", "p/p.go.mut:2: mutant p.x: the original calls mutation.On"},
		{"empty original", "-- mutant p.x --\n-- original --\n\n-- replacement --\nmutation.On(\"p.x\")\n", "p/p.go.mut:2: mutant p.x: empty original"},
		{"bad name", "-- mutant P X --\n-- original --\na\n-- replacement --\nmutation.On(\"P X\")\n", `p/p.go.mut:1: bad mutant name "P X"`},
		{"twice", "-- mutant p.x --\n-- original --\na\n-- replacement --\nmutation.On(\"p.x\")\n-- mutant p.x --\n-- original --\nb\n-- replacement --\nmutation.On(\"p.x\")\n", "p/p.go.mut:6: mutant p.x is declared again (first at line 1)"},
		{"no pair", "-- mutant p.x --\nnote\n-- mutant p.y --\n-- original --\na\n-- replacement --\nmutation.On(\"p.y\")\n", "p/p.go.mut:3: mutant p.x has no complete original/replacement pair"},
		{"no replacement", "-- mutant p.x --\n-- original --\na\n", "mutant p.x has no complete original/replacement pair"},
		{"replacement first", "-- mutant p.x --\n-- replacement --\nmutation.On(\"p.x\")\n", "p/p.go.mut:2: a replacement that does not follow an original"},
		{"original alone", "-- original --\na\n", "p/p.go.mut:1: an original outside a mutant"},
		{"unknown marker", "-- mutant p.x --\n-- orignal --\n", `p/p.go.mut:2: unknown marker "-- orignal --"`},
		{"bad import", "-- imports --\nstrings\n-- mutant p.x --\n-- original --\na\n-- replacement --\nmutation.On(\"p.x\")\n", `p/p.go.mut:2: bad import "strings"`},
		{"late imports", "-- mutant p.x --\n-- original --\na\n-- replacement --\nmutation.On(\"p.x\")\n-- imports --\n\"strings\"\n", "p/p.go.mut:6: an imports section must come once, before the first mutant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := overlay.Parse("p/p.go.mut", "p/p.go", []byte(tc.text))
			require.ErrorIs(t, err, overlay.ErrMutant)
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

// A snippet is its text less its trailing newlines; notes, imports and
// the mutants' order are kept.
func TestParse(t *testing.T) {
	f := mustParse(t, `comment
-- imports --
"strings"
sc "strconv"
-- mutant p.x --
What p.x breaks.
-- original --
	a

-- replacement --
	a && mutation.On("p.x")
-- original --
b
-- replacement --
b; mutation.On("p.x")
-- mutant p.y --
-- original --
c
-- replacement --
mutation.On("p.y")
`)
	assert.Equal(t, []overlay.Import{{Path: "strings", Line: 3}, {Name: "sc", Path: "strconv", Line: 4}}, f.Imports)
	require.Len(t, f.Mutants, 2)
	x := f.Mutants[0]
	assert.Equal(t, "p.x", x.Name)
	assert.Equal(t, 5, x.Line)
	assert.Equal(t, "What p.x breaks.", x.Note)
	assert.Equal(t, []overlay.Hunk{
		{Line: 7, Original: "\ta", Replacement: "\ta && mutation.On(\"p.x\")"},
		{Line: 12, Original: "b", Replacement: "b; mutation.On(\"p.x\")"},
	}, x.Hunks)
	assert.Equal(t, "p.y", f.Mutants[1].Name)
	assert.Equal(t, "p/p.go", f.Mutants[1].Target)
}

// tree writes files (slash paths to contents) under a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(data), 0o644))
	}
	return dir
}

const okMut = "-- mutant p.x --\n-- original --\nn > 9 {\n-- replacement --\nn > 9 && !mutation.On(\"p.x\") {\n"

func TestLoadFileNames(t *testing.T) {
	m := overlay.Dir + "/"
	for _, tc := range []struct {
		name  string
		files map[string]string
		err   string
	}{
		{"not .go.mut", map[string]string{"p/p.go": product, m + "p/p.mut": okMut}, m + "p/p.mut:0: neither a PATH.go.mut nor a PATH.go.txt"},
		{"no target", map[string]string{"p/p.go": product, m + "p/q.go.mut": okMut}, m + "p/q.go.mut:0: its target p/q.go is not a file of the tree"},
		{"test file", map[string]string{"p/p_test.go": product, m + "p/p_test.go.mut": okMut}, "p/p_test.go is a test file"},
		{"dot file", map[string]string{"p/p.go": product, m + "p/.go.mut": okMut}, "bad file name p/.go"},
		{"added exists", map[string]string{"p/p.go": product, m + "p/p.go.txt": "package p\n"}, "its target p/p.go exists in the tree: the overlay would hide it"},
		{"added outside a package", map[string]string{"p/p.go": product, m + "q/q.go.txt": "package q\n"}, "q is not a package directory of the tree"},
		{"added of another package", map[string]string{"p/p.go": product, m + "p/q.go.txt": "package q\n"}, "package q, but p is package p"},
		{"added does not parse", map[string]string{"p/p.go": product, m + "p/q.go.txt": "package p\nfunc {\n"}, m + "p/q.go.txt:0: does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := overlay.Load(tree(t, tc.files))
			require.ErrorIs(t, err, overlay.ErrMutant)
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

// Write writes the patched and added files and an overlay.json that maps
// each product path to its copy.
func TestWrite(t *testing.T) {
	src := tree(t, map[string]string{
		"p/p.go":                       product,
		"p/p_test.go":                  "package p\n",
		overlay.Dir + "/p/p.go.mut":    okMut,
		overlay.Dir + "/p/more.go.txt": "package p\n\nvar more = 1\n",
	})
	out := t.TempDir()
	j, err := overlay.Write(src, out)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(out, "overlay.json"), j)
	data, err := os.ReadFile(j)
	require.NoError(t, err)
	var o struct{ Replace map[string]string }
	require.NoError(t, json.Unmarshal(data, &o))
	assert.Equal(t, map[string]string{
		filepath.Join(src, "p", "p.go"):    filepath.Join(out, "p", "p.go"),
		filepath.Join(src, "p", "more.go"): filepath.Join(out, "p", "more.go"),
	}, o.Replace)
	patched, err := os.ReadFile(filepath.Join(out, "p", "p.go"))
	require.NoError(t, err)
	assert.Contains(t, string(patched), `if n > 9 && !mutation.On("p.x") {`)
	added, err := os.ReadFile(filepath.Join(out, "p", "more.go"))
	require.NoError(t, err)
	assert.Equal(t, "package p\n\nvar more = 1\n", string(added))
}

// Every mutant of the tree applies to today's product code: a change that
// a mutant no longer fits fails here, in a plain go test, and not only in
// the mutation build. Unless -short, the overlay is also compiled with
// the trentmutation tag, package by package.
func TestMutantsApply(t *testing.T) {
	set, err := overlay.Load(root)
	require.NoError(t, err)
	files, err := set.Build(root)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, m := range set.Mutants() {
		names[m.Name] = true
	}
	t.Logf("%d mutants in %d files, %d files added", len(names), len(set.Files), len(set.Added))
	require.NotEmpty(t, names)
	for target, data := range files {
		_, err := parser.ParseFile(token.NewFileSet(), target, data, parser.SkipObjectResolution)
		assert.NoError(t, err, target)
	}
	if testing.Short() {
		return
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to compile the overlay with")
	}
	j, err := overlay.Write(root, t.TempDir())
	require.NoError(t, err)
	var pkgs []string
	for target := range files {
		pkgs = append(pkgs, "./"+path.Dir(target))
	}
	slices.Sort(pkgs)
	cmd := exec.Command(gobin, append([]string{"build", "-tags", "trentmutation", "-overlay", j}, slices.Compact(pkgs)...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build -tags trentmutation with the overlay:\n%s", out)
}

// Product code holds no mutation hooks: they are mutants.
func TestProductHasNoHooks(t *testing.T) {
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "internal/mutation" || strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), "mutation.On(") {
			found = append(found, rel)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, found, "mutation.On in product code: declare it as a mutant in "+overlay.Dir)
}
