package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/hsm/node"
)

func newDomainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domain",
		Short: "Create a domain, rehearse a change on one HSM, inspect domain tokens",
	}
	cmd.AddCommand(newDomainCreateCmd(g), newDomainApplyCmd(g), newDomainInspectCmd(g), newDomainStatusCmd(g), newDomainReencryptCmd(g), newDomainTokenCmd(g))
	return cmd
}

// hsmFlags are the flags naming a local HSM node.
func hsmFlags(cmd *cobra.Command, h *ceremony.HSM, pinFile *string) {
	cmd.Flags().StringVar(&h.Dir, "hsm-dir", "", "data dir of the HSM node (trent hsm init; required)")
	cmd.Flags().StringVar(&h.Label, "label", node.DefaultLabel, "the HSM's token label")
	cmd.Flags().StringVar(pinFile, "pin-file", "", "file holding the HSM's user PIN (else $TRENT_HSM_PIN, else DIR/user.pin)")
	_ = cmd.MarkFlagRequired("hsm-dir")
}

// writeToken writes a token to out, or to stdout (never a terminal), and
// describes it on the other stream: stderr when the token is on stdout.
func writeToken(g *globals, out string, token []byte, p *domain.Parsed) error {
	desc := g.stdout
	if out != "" {
		if err := ceremony.WriteNewFile(out, token, 0o644); err != nil {
			return err
		}
	} else {
		if f, ok := g.stdout.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return errors.New("refusing to write a binary domain token to a terminal: redirect stdout or use --out")
			}
		}
		if _, err := g.stdout.Write(token); err != nil {
			return err
		}
		desc = g.stderr
	}
	if g.json {
		in, err := ceremony.Inspect(token)
		if err != nil {
			return err
		}
		return (&globals{stdout: desc}).emit(in)
	}
	where := "stdout"
	if out != "" {
		where = out
	}
	_, err := fmt.Fprintf(desc, "trent: %s\ntrent: token (%d bytes) written to %s\n", p.State.Summary(), len(token), where)
	return err
}

func newDomainCreateCmd(g *globals) *cobra.Command {
	var h ceremony.HSM
	var pinFile, out string
	cmd := &cobra.Command{
		Use:   "create --hsm-dir DIR [--label L] cmd.json > token.bin",
		Short: "Genesis: create the domain on its first HSM from a satisfied CreateDomain command",
		Long: `Create the domain on the HSM node in DIR from the satisfied CreateDomain
command in cmd.json: the HSM checks the command, draws the first domain key
in its token and exports the first domain token, written to stdout (or
--out FILE); a summary goes to stderr. The HSM must be a member of the
domain. Every other member HSM imports the token.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := ceremony.ReadFile(args[0])
			if err != nil {
				return err
			}
			if h.PIN, err = pinFrom(pinFile, "TRENT_HSM_PIN"); err != nil {
				return err
			}
			token, p, err := ceremony.CreateDomain(h, f, time.Now())
			if err != nil {
				return err
			}
			return writeToken(g, out, token, p)
		},
	}
	hsmFlags(cmd, &h, &pinFile)
	cmd.Flags().StringVar(&out, "out", "", "write the token to this new file instead of stdout")
	return cmd
}

func newDomainApplyCmd(g *globals) *cobra.Command {
	var h ceremony.HSM
	var pinFile, out, tokenFile string
	cmd := &cobra.Command{
		Use:   "apply --hsm-dir DIR [--label L] --token token.bin cmd.json > next.bin",
		Short: "Rehearse a change on one HSM: import the latest token, export the next one",
		Long: `A local, single-HSM rehearsal of the four-step change: the HSM node in DIR
imports token.bin (the domain's latest token; an HSM keeps its domain keys
as session objects, so each run starts from the token), checks the
satisfied command in cmd.json against it and exports the next state's token
to stdout (or --out FILE), without enacting it. Every member HSM then
imports the new token.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := ceremony.ReadFile(args[0])
			if err != nil {
				return err
			}
			_, latest, err := ceremony.ReadToken(tokenFile)
			if err != nil {
				return err
			}
			if h.PIN, err = pinFrom(pinFile, "TRENT_HSM_PIN"); err != nil {
				return err
			}
			token, p, err := ceremony.Apply(h, latest, f, time.Now())
			if err != nil {
				return err
			}
			return writeToken(g, out, token, p)
		},
	}
	hsmFlags(cmd, &h, &pinFile)
	cmd.Flags().StringVar(&tokenFile, "token", "", "the domain's latest token (required)")
	cmd.Flags().StringVar(&out, "out", "", "write the token to this new file instead of stdout")
	_ = cmd.MarkFlagRequired("token")
	return cmd
}

func newDomainInspectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect token.bin",
		Short: "Show a domain token's public content: members, operators, rules, keys, the command behind it",
		Long: `Show what a domain token holds: the domain's name and state version, its
member HSMs, operators (role, algorithm, key fingerprint), rules per command
type, retention, domain key records (ID, active, creation time), trusted
attestation roots, the exporting HSM (and whether its signature verifies
against this state) and the signed command that produced it. The domain
keys themselves are encrypted for the member HSMs and are not opened.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, token, err := ceremony.ReadToken(args[0])
			if err != nil {
				return err
			}
			in, err := ceremony.Inspect(token)
			if err != nil {
				return err
			}
			if g.json {
				return g.emit(in)
			}
			_, err = io.WriteString(g.stdout, in.Text())
			return err
		},
	}
}

func newDomainTokenCmd(g *globals) *cobra.Command {
	var hostURL, out string
	cmd := &cobra.Command{
		Use:   "token --host URL --out FILE",
		Short: "Fetch the domain's latest token from a service host (to start an HSM node with it)",
		Long: `Fetch the latest domain token the service host at URL has committed and write
it to FILE (mode 0644: a token is sealed to the member HSMs and signed by the
HSM that exported it). Prints its domain, state version and exporter.

An HSM node started with trent hsm serve --token FILE imports it only if its
domain anchor admits it (its domain, no older than the state it last adopted,
exported by a member it knew); a node started with neither --token nor --domain
waits for the hosts to deliver the same token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, p, err := host.FetchToken(cmd.Context(), hostURL)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, raw, 0o644); err != nil {
				return err
			}
			if g.json {
				return g.emit(map[string]any{"file": out, "domain": p.State.Name, "state_version": p.State.Version, "exporter": p.Token.Exporter})
			}
			_, err = fmt.Fprintf(g.stdout, "%s: domain %q at state version %d, exported by %s\n", out, p.State.Name, p.State.Version, p.Token.Exporter)
			return err
		},
	}
	cmd.Flags().StringVar(&hostURL, "host", "", "API URL of any service host (required)")
	cmd.Flags().StringVar(&out, "out", "", "file to write the token to (required)")
	_ = cmd.MarkFlagRequired("host")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
