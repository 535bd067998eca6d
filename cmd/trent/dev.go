package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/dev"
)

func newDevCmd(g *globals) *cobra.Command {
	var opts dev.Options
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the local development cluster (what `make run` starts)",
		Long: `Run the local development cluster from one data dir.

This build provisions the cluster's HSM nodes (one SoftHSM token each, with
identity keys) and reports them. Service hosts, the raft cluster and the
AWS KMS API arrive with later releases; until then nothing keeps running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			progress := func(i, n int, label string) {
				fmt.Fprintf(g.stderr, "[%d/%d] HSM node %s: token and identity keys\n", i, n, label)
			}
			c, err := dev.Provision(opts, progress)
			if err != nil {
				return err
			}
			if g.json {
				return g.emit(c)
			}
			w := g.stdout
			fmt.Fprintf(w, "trent dev: data dir %s\n\n", c.Dir)
			fmt.Fprintf(w, "HSM nodes (SoftHSM2 tokens in %s/softhsm, module %s):\n", c.Dir, c.HSMs[0].Module)
			for _, h := range c.HSMs {
				state := "reused"
				if h.TokenCreated || h.IdentityCreated {
					state = "created"
				}
				fmt.Fprintf(w, "  %-8s %s  (%s)\n", h.TokenLabel, h.HSMID, state)
			}
			fmt.Fprint(w, `
Started: the HSM nodes' tokens and identity keys above; nothing keeps running yet.
Not yet in this build: HSM API servers, service hosts, raft, the KMS API.
`)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", ".trent/dev", "data dir of the dev cluster")
	cmd.Flags().IntVar(&opts.HSMs, "hsms", dev.DefaultHSMs, "number of HSM nodes")
	return cmd
}
