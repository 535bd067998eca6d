// Command mkoverlay writes the mutation test build's overlay (package
// internal/mutation/overlay): the product files patched with their
// mutants and the files the mutants add, under -o DIR, and DIR/overlay.json
// for go build -overlay, whose path it prints. It fails, naming the
// mutant, if a mutant no longer fits the product code. Run it from the
// module root or name the root with -root.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/trentkms/trent/internal/mutation/overlay"
)

func main() {
	root := flag.String("root", ".", "the module root")
	dir := flag.String("o", "", "the output directory (required)")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: mkoverlay [-root DIR] -o DIR")
		os.Exit(2)
	}
	out, err := overlay.Write(*root, *dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkoverlay:", err)
		os.Exit(1)
	}
	fmt.Println(out)
}
