// Package overlay builds the mutation test build's source: it applies the
// mutants declared under internal/mutation/mutants to copies of the
// product files they target and writes those copies, with an
// overlay.json, for go build -overlay (package internal/mutation says what
// the mutants are for). Product source holds no mutation hooks; the
// mutants are the only place the broken behaviours are written down.
//
// # Layout
//
// internal/mutation/mutants mirrors the tree it patches:
//
//   - PATH.go.mut declares the mutants of the product file PATH.go
//     (internal/mutation/mutants/session/envelope.go.mut patches
//     session/envelope.go), which must exist and not be a test file;
//   - PATH.go.txt is a whole file the overlay adds as PATH.go (helpers
//     only mutants use), which must not exist in the product tree, in a
//     package directory that does. It is compiled only through the
//     overlay, so it carries its own imports.
//
// Any other file there is an error. One added file,
// internal/mutation/overlaid.go, sets mutation.Overlaid, so that the
// mutation tests can refuse a build without the overlay.
//
// # The .go.mut format
//
// Lines of the form "-- WORDS --" are markers; what lies between them is
// text. A file reads
//
//	Free text up to the first marker: a comment.
//	-- imports --
//	"strings"
//	-- mutant hsm.host-id-case-insensitive --
//	Free text: what the mutant breaks.
//	-- original --
//			return nil, fmt.Errorf("%w: %q", ErrUnknownHost, id)
//	-- replacement --
//			if mutation.On("hsm.host-id-case-insensitive") {
//				...
//			}
//			return nil, fmt.Errorf("%w: %q", ErrUnknownHost, id)
//
// The optional imports section, before the first mutant, lists import
// specs ("path" or name "path", one a line) that the replacements use and
// the product file may not import; the import of internal/mutation is
// always added. An import the file already has is not added again. A
// mutant has one or more original/replacement pairs. A snippet is its
// text exactly, tabs included, less its trailing newlines, so it may be
// whole lines or part of one. Each original must occur exactly once in the
// product file (as it is on disk, before any patch), and the replacement
// must call mutation.On with the mutant's own name and no other: the hook
// reads as it would have in product code. Originals must not overlap,
// except that several mutants may share one original if each only inserts
// text before or after it (its replacement ends or begins with it): the
// insertions are made in the order the mutants are declared. That is how
// hooks that sit side by side in the code are each declared alone. A mutant's name is
// unique within its file; one mutation may patch several files with a
// section of the same name in each.
//
// # Contract
//
// Load parses and checks every declaration; Apply and Build patch, then
// check that each patched file parses, that every import they add is used,
// and gofmt it. Errors name the .go.mut file and line, the mutant and the
// target, and for an original that is not found exactly once how many
// times it was: that is how a change to product code that a mutant no
// longer fits is caught, by a plain go test (TestMutantsApply, which also
// compiles the overlay with the tag unless -short) as well as by the
// mutation build. TestProductHasNoHooks fails on a mutation.On in
// product source; the overlay leaves files it does not patch alone.
//
// The generator is internal/mutation/cmd/mkoverlay:
//
//	dir=$(mktemp -d)
//	go run ./internal/mutation/cmd/mkoverlay -o "$dir"
//	go test -tags trentmutation -overlay "$dir/overlay.json" -run TestMutation ./conformance/...
//
// Nothing here is safe for concurrent writes to the same output
// directory; everything else is plain functions over file contents.
package overlay
