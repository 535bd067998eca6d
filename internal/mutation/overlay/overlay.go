package overlay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Dir is where the mutants live, relative to the module root.
const Dir = "internal/mutation/mutants"

// MutationImport is the import every patched file gets.
const MutationImport = "github.com/trentkms/trent/internal/mutation"

// ErrMutant is wrapped by every error about a declaration or a patch.
var ErrMutant = errors.New("overlay: bad mutant")

// A File is one .go.mut file: the mutants of one product file.
type File struct {
	Source  string    // the .go.mut file, slash-separated, relative to the module root
	Target  string    // the product file it patches, likewise
	Imports []Import  // from its imports section
	Mutants []*Mutant // in file order
}

// An Import is one line of an imports section.
type Import struct {
	Name string // "" for the package's own name
	Path string
	Line int
}

// A Mutant is one mutation's patches to one file.
type Mutant struct {
	Name   string
	Source string // the .go.mut file
	Target string // the product file
	Line   int    // of its marker in Source
	Note   string // the text between its marker and its first original
	Hunks  []Hunk
}

// A Hunk replaces one snippet of the product file.
type Hunk struct {
	Line        int // of its original marker
	Original    string
	Replacement string
}

// An Added is a whole file the overlay adds (a .go.txt).
type Added struct {
	Source string // the .go.txt file
	Target string // the path it takes in the package
	Data   []byte
}

// A Set is every declaration under Dir.
type Set struct {
	Files []*File
	Added []*Added
}

var (
	markerRE = regexp.MustCompile(`^-- (.+) --$`)
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9]*\.[a-z0-9][a-z0-9-]*$`)
	majorRE  = regexp.MustCompile(`^v[0-9]+$`)
	onRE     = regexp.MustCompile(`mutation\.On\(([^)]*)\)`)
)

func errorf(source string, line int, format string, args ...any) error {
	return fmt.Errorf("%w: %s:%d: %s", ErrMutant, source, line, fmt.Sprintf(format, args...))
}

// Parse reads a .go.mut file's declarations. source names it in errors,
// target is the product file it patches.
func Parse(source, target string, data []byte) (*File, error) {
	f := &File{Source: source, Target: target}
	const (
		header = iota
		imports
		note
		original
		replacement
	)
	state := header
	var text []string // lines of the current section
	var m *Mutant
	var h *Hunk
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, errorf(source, line, format, args...))
	}
	// flush ends the section in progress.
	flush := func(line int) {
		s := strings.TrimRight(strings.Join(text, "\n"), "\n")
		switch state {
		case imports:
			for i, l := range text {
				if strings.TrimSpace(l) == "" {
					continue
				}
				imp, err := parseImport(l)
				if err != nil {
					fail(line-len(text)+i, "%v", err)
					continue
				}
				imp.Line = line - len(text) + i
				f.Imports = append(f.Imports, imp)
			}
		case note:
			m.Note = strings.TrimSpace(s)
		case original:
			h.Original = s
			if strings.TrimSpace(s) == "" {
				fail(h.Line, "mutant %s: empty original", m.Name)
			}
			if strings.Contains(s, "mutation.On(") {
				fail(h.Line, "mutant %s: the original calls mutation.On", m.Name)
			}
		case replacement:
			h.Replacement = s
			if !strings.Contains(s, `mutation.On(`+strconv.Quote(m.Name)+`)`) {
				fail(h.Line, "mutant %s: the replacement does not call mutation.On(%q)", m.Name, m.Name)
			}
			for _, c := range onRE.FindAllStringSubmatch(s, -1) {
				if c[1] != strconv.Quote(m.Name) {
					fail(h.Line, "mutant %s: the replacement calls mutation.On(%s): one mutant, one name", m.Name, c[1])
				}
			}
			if s == h.Original {
				fail(h.Line, "mutant %s: the replacement is the original", m.Name)
			}
		}
		text = nil
	}
	seen := map[string]int{}
	lines := strings.Split(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		n := i + 1
		mk := markerRE.FindStringSubmatch(l)
		if mk == nil {
			text = append(text, l)
			continue
		}
		flush(n)
		word, arg, _ := strings.Cut(mk[1], " ")
		switch {
		case word == "imports" && arg == "":
			if state != header || len(f.Imports) > 0 {
				fail(n, "an imports section must come once, before the first mutant")
			}
			state = imports
		case word == "mutant":
			if state == note || state == original {
				fail(n, "mutant %s has no complete original/replacement pair", m.Name)
			}
			if !nameRE.MatchString(arg) {
				fail(n, "bad mutant name %q", arg)
			}
			if prev, ok := seen[arg]; ok {
				fail(n, "mutant %s is declared again (first at line %d)", arg, prev)
			}
			seen[arg] = n
			m = &Mutant{Name: arg, Source: source, Target: target, Line: n}
			f.Mutants = append(f.Mutants, m)
			state = note
		case word == "original" && arg == "":
			if state != note && state != replacement {
				fail(n, "an original outside a mutant")
				m = &Mutant{Name: "?", Source: source, Target: target, Line: n}
			}
			m.Hunks = append(m.Hunks, Hunk{Line: n})
			h = &m.Hunks[len(m.Hunks)-1]
			state = original
		case word == "replacement" && arg == "":
			if state != original {
				fail(n, "a replacement that does not follow an original")
				m = &Mutant{Name: "?", Source: source, Target: target, Line: n}
				m.Hunks = append(m.Hunks, Hunk{Line: n})
				h = &m.Hunks[0]
			}
			state = replacement
		default:
			fail(n, "unknown marker %q", l)
		}
	}
	flush(len(lines) + 1)
	switch state {
	case note, original:
		fail(len(lines), "mutant %s has no complete original/replacement pair", m.Name)
	}
	if len(f.Mutants) == 0 && len(errs) == 0 {
		fail(1, "no mutants")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

func parseImport(line string) (Import, error) {
	fields := strings.Fields(line)
	var imp Import
	switch len(fields) {
	case 1:
	case 2:
		imp.Name = fields[0]
		fields = fields[1:]
	default:
		return imp, fmt.Errorf("bad import %q", line)
	}
	p, err := strconv.Unquote(fields[0])
	if err != nil || p == "" || !strings.HasPrefix(fields[0], `"`) {
		return imp, fmt.Errorf("bad import %q", line)
	}
	imp.Path = p
	return imp, nil
}

// Load reads and checks every declaration under root's Dir: targets of
// .go.mut files exist, targets of .go.txt files do not and their package
// directories do.
func Load(root string) (*Set, error) {
	s := &Set{}
	var errs []error
	base := filepath.Join(root, filepath.FromSlash(Dir))
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		source := path.Join(Dir, rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(rel, ".go.mut"):
			f, err := loadMut(root, source, strings.TrimSuffix(rel, ".mut"), data)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			s.Files = append(s.Files, f)
		case strings.HasSuffix(rel, ".go.txt"):
			a, err := loadAdded(root, source, strings.TrimSuffix(rel, ".txt"), data)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			s.Added = append(s.Added, a)
		default:
			errs = append(errs, errorf(source, 0, "neither a PATH.go.mut nor a PATH.go.txt"))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// checkTarget reports a product path a declaration may not name.
func checkTarget(source, target string) error {
	switch {
	case strings.HasSuffix(target, "_test.go"):
		return errorf(source, 0, "%s is a test file", target)
	case path.Base(target) == ".go" || strings.HasPrefix(path.Base(target), "."):
		return errorf(source, 0, "bad file name %s", target)
	}
	return nil
}

func loadMut(root, source, target string, data []byte) (*File, error) {
	if err := checkTarget(source, target); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(target))); err != nil || !fi.Mode().IsRegular() {
		return nil, errorf(source, 0, "its target %s is not a file of the tree", target)
	}
	return Parse(source, target, data)
}

func loadAdded(root, source, target string, data []byte) (*Added, error) {
	if err := checkTarget(source, target); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(target))); err == nil {
		return nil, errorf(source, 0, "its target %s exists in the tree: the overlay would hide it", target)
	}
	dir := filepath.Join(root, filepath.FromSlash(path.Dir(target)))
	pkgs, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var pkg string
	for _, p := range pkgs {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.PackageClauseOnly)
		if err == nil {
			pkg = f.Name.Name
			break
		}
	}
	if pkg == "" {
		return nil, errorf(source, 0, "%s is not a package directory of the tree", path.Dir(target))
	}
	f, err := parser.ParseFile(token.NewFileSet(), target, data, parser.SkipObjectResolution)
	if err != nil {
		return nil, errorf(source, 0, "does not parse: %v", err)
	}
	if f.Name.Name != pkg {
		return nil, errorf(source, 0, "package %s, but %s is package %s", f.Name.Name, path.Dir(target), pkg)
	}
	return &Added{Source: source, Target: target, Data: data}, nil
}

// Mutants are every mutant of s, file by file.
func (s *Set) Mutants() []*Mutant {
	var out []*Mutant
	for _, f := range s.Files {
		out = append(out, f.Mutants...)
	}
	return out
}

// Apply patches src, the product file f targets, with every mutant of f,
// adds the imports, checks the result and gofmts it.
func (f *File) Apply(src []byte) ([]byte, error) {
	type span struct {
		start, end int
		m          *Mutant
		h          *Hunk
	}
	var spans []span
	var errs []error
	for _, m := range f.Mutants {
		for i := range m.Hunks {
			h := &m.Hunks[i]
			n := bytes.Count(src, []byte(h.Original))
			if n != 1 {
				errs = append(errs, errorf(f.Source, h.Line, "mutant %s: the original occurs %d times in %s, want exactly 1", m.Name, n, f.Target))
				continue
			}
			at := bytes.Index(src, []byte(h.Original))
			spans = append(spans, span{at, at + len(h.Original), m, h})
		}
	}
	// Stable: hunks that share an original stay in declaration order.
	slices.SortStableFunc(spans, func(a, b span) int { return a.start - b.start })
	// groups are runs of hunks with the same original at the same place.
	var groups [][]span
	for i, s := range spans {
		if i > 0 {
			g := groups[len(groups)-1]
			if p := g[0]; s.start == p.start && s.end == p.end {
				groups[len(groups)-1] = append(g, s)
				continue
			} else if s.start < p.end {
				errs = append(errs, errorf(f.Source, s.h.Line, "mutant %s: its original overlaps that of mutant %s (line %d) in %s", s.m.Name, p.m.Name, p.h.Line, f.Target))
				continue
			}
		}
		groups = append(groups, []span{s})
	}
	var out bytes.Buffer
	last := 0
	for _, g := range groups {
		out.Write(src[last:g[0].start])
		last = g[0].end
		if len(g) == 1 {
			out.WriteString(g[0].h.Replacement)
			continue
		}
		// Mutants that share an original may only insert text before or
		// after it; the insertions keep declaration order.
		var before, after strings.Builder
		for _, s := range g {
			r, o := s.h.Replacement, s.h.Original
			switch {
			case strings.HasSuffix(r, o):
				before.WriteString(strings.TrimSuffix(r, o))
			case strings.HasPrefix(r, o):
				after.WriteString(strings.TrimPrefix(r, o))
			default:
				errs = append(errs, errorf(f.Source, s.h.Line, "mutant %s: its original is shared with mutant %s (line %d) in %s, so its replacement must only add text before or after it",
					s.m.Name, g[0].m.Name, g[0].h.Line, f.Target))
			}
		}
		out.WriteString(before.String() + g[0].h.Original + after.String())
	}
	out.Write(src[last:])
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	patched, added, err := f.addImports(out.Bytes())
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, f.Target, patched, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, errorf(f.Source, 0, "%s does not parse once patched: %v", f.Target, err)
	}
	used := selectorBases(file)
	for _, imp := range added {
		if !used[importName(imp)] {
			return nil, errorf(f.Source, imp.Line, "%s: import %q is added but not used", f.Target, imp.Path)
		}
	}
	var b bytes.Buffer
	if err := format.Node(&b, fset, file); err != nil {
		return nil, errorf(f.Source, 0, "%s: gofmt: %v", f.Target, err)
	}
	return b.Bytes(), nil
}

// imports are the imports f adds, internal/mutation first.
func (f *File) imports() []Import {
	return append([]Import{{Path: MutationImport}}, f.Imports...)
}

// addImports adds the imports src lacks as a declaration right after its
// package clause, and says which.
func (f *File) addImports(src []byte) ([]byte, []Import, error) {
	file, err := parser.ParseFile(token.NewFileSet(), f.Target, src, parser.ImportsOnly)
	if err != nil {
		return nil, nil, errorf(f.Source, 0, "%s does not parse once patched: %v", f.Target, err)
	}
	have := map[string]string{}
	for _, s := range file.Imports {
		p, _ := strconv.Unquote(s.Path.Value)
		have[p] = ""
		if s.Name != nil {
			have[p] = s.Name.Name
		}
	}
	var decl strings.Builder
	var added []Import
	for _, imp := range f.imports() {
		name, ok := have[imp.Path]
		switch {
		case ok && name == imp.Name:
			continue
		case ok:
			return nil, nil, errorf(f.Source, imp.Line, "%s imports %q as %q, the mutants as %q", f.Target, imp.Path, name, imp.Name)
		}
		have[imp.Path] = imp.Name
		added = append(added, imp)
		decl.WriteString("\t")
		if imp.Name != "" {
			decl.WriteString(imp.Name + " ")
		}
		decl.WriteString(strconv.Quote(imp.Path) + "\n")
	}
	if decl.Len() == 0 {
		return src, nil, nil
	}
	// After the package clause's line: before every other import and
	// declaration, and outside any comment on that line.
	at := int(file.Name.End()) - 1
	if i := bytes.IndexByte(src[at:], '\n'); i >= 0 {
		at += i + 1
	} else {
		at = len(src)
	}
	out := slices.Concat(src[:at:at], []byte("\nimport (\n"+decl.String()+")\n"), src[at:])
	return out, added, nil
}

// importName is the name an import binds.
func importName(imp Import) string {
	if imp.Name != "" {
		return imp.Name
	}
	elems := strings.Split(imp.Path, "/")
	name := elems[len(elems)-1]
	if len(elems) > 1 && majorRE.MatchString(name) {
		name = elems[len(elems)-2]
	}
	return name
}

// selectorBases are the identifiers used as X in X.Sel.
func selectorBases(file *ast.File) map[string]bool {
	out := map[string]bool{}
	ast.Inspect(file, func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := s.X.(*ast.Ident); ok {
				out[id.Name] = true
			}
		}
		return true
	})
	return out
}

// Build reads each target under root and patches it, giving the contents
// of every file the overlay replaces or adds, by target.
func (s *Set) Build(root string) (map[string][]byte, error) {
	out := map[string][]byte{}
	var errs []error
	for _, f := range s.Files {
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f.Target)))
		if err != nil {
			errs = append(errs, fmt.Errorf("overlay: %w", err))
			continue
		}
		if _, ok := out[f.Target]; ok {
			errs = append(errs, errorf(f.Source, 0, "a second declaration file for %s", f.Target))
			continue
		}
		patched, err := f.Apply(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[f.Target] = patched
	}
	for _, a := range s.Added {
		if _, ok := out[a.Target]; ok {
			errs = append(errs, errorf(a.Source, 0, "%s is also patched", a.Target))
			continue
		}
		out[a.Target] = a.Data
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Write loads the declarations under root, builds the overlay and writes
// it into dir: each file at its target's path under dir, and
// dir/overlay.json mapping the absolute path of each target to its copy,
// which it returns.
func Write(root, dir string) (string, error) {
	s, err := Load(root)
	if err != nil {
		return "", err
	}
	files, err := s.Build(root)
	if err != nil {
		return "", err
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("overlay: %w", err)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("overlay: %w", err)
	}
	replace := map[string]string{}
	for target, data := range files {
		to := filepath.Join(absDir, filepath.FromSlash(target))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return "", fmt.Errorf("overlay: %w", err)
		}
		if err := os.WriteFile(to, data, 0o644); err != nil {
			return "", fmt.Errorf("overlay: %w", err)
		}
		replace[filepath.Join(absRoot, filepath.FromSlash(target))] = to
	}
	j, err := json.MarshalIndent(struct{ Replace map[string]string }{replace}, "", "\t")
	if err != nil {
		return "", fmt.Errorf("overlay: %w", err)
	}
	out := filepath.Join(absDir, "overlay.json")
	if err := os.WriteFile(out, append(j, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("overlay: %w", err)
	}
	return out, nil
}
