package main

import (
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/dev"
)

func newDevCmd(g *globals) *cobra.Command {
	var opts dev.Options
	var once bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the local development cluster (what `make run` starts)",
		Long: `Run the local development cluster from one data dir, in this process.

It provisions (or reuses) the HSM nodes (one SoftHSM token each, with identity
keys), dev operator and service-host keys (PEM files), and the domain: the
first time by a genesis ceremony (CreateDomain signed by two dev operators,
executed on the first HSM), afterwards from the saved domain token, which
every HSM imports. It serves the HSM session protocol on loopback and checks it
by making a session as the dev host and pinging every HSM in it. It then runs
until interrupted; --once stops after the check.

Service hosts, raft and the AWS KMS API arrive with later releases.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			progress := func(step string) { fmt.Fprintln(g.stderr, step) }
			c, err := dev.Start(opts, progress)
			if err != nil {
				return err
			}
			defer c.Stop()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			checks, err := c.Check(ctx)
			if err != nil {
				return err
			}
			if g.json {
				if err := g.emit(struct {
					*dev.Cluster
					Checks []dev.CheckResult `json:"checks"`
				}{c, checks}); err != nil {
					return err
				}
			} else {
				w := g.stdout
				fmt.Fprintf(w, "\ntrent dev: domain %q in %s\n\n", c.Domain, c.Dir)
				fmt.Fprintf(w, "HSM nodes (SoftHSM2 tokens in %s/softhsm, module %s):\n", c.Dir, c.HSMs[0].Module)
				for i, h := range c.HSMs {
					state := "reused"
					if h.TokenCreated || h.IdentityCreated {
						state = "created"
					}
					fmt.Fprintf(w, "  %-8s %s  %-24s %-8s first ping %s\n", h.TokenLabel, h.HSMID, h.URL, state, checks[i].Latency.Round(10_000))
				}
				st, _ := c.DomainState()
				fmt.Fprintf(w, "\nDomain: %s\nDomain token: %s (trent domain inspect %s)\nService host identity: %s (%s)\n",
					st.Summary(), c.TokenFile, c.TokenFile, c.HostID, c.HostKeyFile)
				fmt.Fprint(w, `
Started: the HSM nodes above, holding the domain's keys from its token and
serving the session protocol (C(2,2) handshake, enveloped commands, domain
operations) on loopback; one session made with the first HSM was served by
every HSM.
Not yet in this build: service hosts, raft, the KMS API.
`)
			}
			if once {
				return c.Stop()
			}
			fmt.Fprintln(g.stderr, "\nrunning; Ctrl-C stops the cluster")
			<-ctx.Done()
			fmt.Fprintln(g.stderr, "stopping")
			return c.Stop()
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", ".trent/dev", "data dir of the dev cluster")
	cmd.Flags().IntVar(&opts.HSMs, "hsms", dev.DefaultHSMs, "number of HSM nodes")
	cmd.Flags().StringVar(&opts.Listen, "listen", dev.DefaultListen, "address of the first HSM; the others take the next ports (port 0: any free ports)")
	cmd.Flags().BoolVar(&once, "once", false, "stop after the start-up check")
	return cmd
}
