package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/drill"
)

func newDrillCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "drill [--dir DIR]",
		Short: "Run a scripted ceremony against a running dev cluster and print its timeline",
		Long: `Run a scripted ceremony against the cluster trent dev runs in DIR (read from
DIR/cluster.json, with the dev operators' keys): a single operator's command
refused; an operator added, made part of a rule and removed; the domain keys
rotated by a service host and every HSM following; an HSM added, restarted
(it resyncs from the latest token) and removed. Each step prints its outcome
and latency; the exit status is non-zero if any step does not end as expected.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			progress := func(s drill.Step) {
				n++
				if g.json {
					return
				}
				mark := "ok"
				if !s.OK {
					mark = "UNEXPECTED (expected " + s.Expected + ")"
				}
				fmt.Fprintf(g.stdout, "%2d  %-66s %-44s %8s  %s\n", n, s.Name, s.Outcome, s.Latency.Round(time.Millisecond), mark)
			}
			if !g.json {
				fmt.Fprintf(g.stdout, "trent drill: the cluster in %s\n\n", dir)
			}
			rep, err := drill.Run(cmd.Context(), dir, progress)
			if g.json && rep != nil {
				if jerr := g.emit(rep); jerr != nil {
					return jerr
				}
			}
			if err != nil {
				return err
			}
			if !g.json {
				fmt.Fprintf(g.stdout, "\ndrill passed: %d steps, domain %q\n", len(rep.Steps), rep.Domain)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".trent-dev", "the dev cluster's data dir")
	return cmd
}
