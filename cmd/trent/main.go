// Command trent runs and operates a Trent KMS cluster. It only parses flags
// and wires packages together; see the packages for the behaviour.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "trent:", err)
		os.Exit(1)
	}
}

type globals struct {
	json   bool
	stdout io.Writer
	stderr io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "trent",
		Short:         "Trent: a model of the AWS KMS internal architecture on real parts",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON")
	root.AddCommand(newHSMCmd(g), newHostCmd(g), newRaftCmd(g), newDevCmd(g), newDrillCmd(g), newOperatorCmd(g), newQuorumCmd(g), newDomainCmd(g), newAuditCmd(g), newEnclaveCmd(g), conformanceCmd(), newVersionCmd(g))
	root.AddCommand(newXKSCmd(g))
	return root
}

// emit prints v as indented JSON.
func (g *globals) emit(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
