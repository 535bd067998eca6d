package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/conformance"
	hsmconf "github.com/trentkms/trent/conformance/hsm"
)

// conformanceHSMCmd is `trent conformance hsm`: the HSM suite against one
// HSM endpoint, over the wire protocol.
func conformanceHSMCmd() *cobra.Command {
	var (
		cfg hsmconf.Config
		sf  suiteFlags
	)
	cmd := &cobra.Command{
		Use:   "hsm --target URL --domain-token FILE --host-key FILE [--host-id ID] [--operator-key FILE …] [--transport frames|http2] [--run REGEXP] [--junit FILE] [--list]",
		Short: "Check that an HSM endpoint speaks the session protocol as docs/protocol.md specifies",
		Long: `Run the HSM conformance suite against one HSM (--target, its base URL) over
the wire protocol, acting as a service host of the domain: --domain-token is
the token of the state the HSM holds, --host-key the key of a service-host
operator of that domain (--host-id if the key does not name one operator).

The Hellos and Envelopes travel as hosts send them, in frames on one
connection (--transport frames, the default; the target must be
http://HOST:PORT), or as HTTP/2 requests (--transport http2, for an HSM of an
earlier release). Domain tokens go over HTTP/2 either way. The frame layer's
own checks (HSM-FRM-*) need frames and are skipped over HTTP/2.

Each check prints PASS, FAIL (with what was expected and what was observed)
or SKIP (with the reason: a capability the configuration lacks is never
counted as passed). The exit status is non-zero if any check failed.

Checks needing more:
  operators      --operator-key FILE (repeatable): keys of operators of the
                 domain, to sign quorum commands its rules allow (trent dev
                 keeps them in DIR/operators)
  domain-change  --allow-domain-change: HSM-TOK-002 imports the next state
                 version into the HSM (SetRetention to the current retention).
                 Only for an HSM no service host depends on: its hosts would
                 then hold an older state than it.

HSM-EKT-003 waits for a session's EKT to expire if that happens within
--max-wait, else it is skipped; HSM-TOK-003 needs a token older than the
HSM's state (--older-token, or the one HSM-TOK-002 supersedes).

--list prints the catalogue (ID, statement, clause) without running it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel, err := sf.selector()
			if err != nil {
				return err
			}
			if sf.list {
				return sf.catalogue(cmd, hsmconf.Catalogue(), sel)
			}
			env, err := hsmconf.NewEnv(cfg)
			if err != nil {
				return err
			}
			defer env.Close()
			checks := conformance.Select(env.Checks(), sel)
			if len(checks) == 0 {
				return fmt.Errorf("--run %q selects no check", sf.run)
			}
			opts := conformance.Options{Suite: hsmconf.Suite, Target: env.URL, Missing: env.Missing(checks)}
			sf.begin(cmd, &opts, fmt.Sprintf("trent conformance hsm: %s as %s over %s, %d checks", env.URL, env.HostID, env.Transport, len(checks)))
			before := env.Token()
			rep := conformance.Run(cmd.Context(), checks, opts)
			if after := env.Token(); !bytes.Equal(after, before) {
				// The HSM holds a newer state (HSM-TOK-002): keep its token,
				// which the next run needs.
				next := fmt.Sprintf("%s.v%d", regexp.MustCompile(`\.v[0-9]+$`).ReplaceAllString(cfg.DomainToken, ""), env.Version())
				if err := os.WriteFile(next, after, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "the HSM now holds version %d of the domain: its token is in %s\n", env.Version(), next)
			}
			return sf.report(cmd, rep)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.Target, "target", "", "base URL of the HSM (e.g. http://127.0.0.1:7301)")
	fl.StringVar(&cfg.DomainToken, "domain-token", "", "file: the domain token of the state the HSM holds")
	fl.StringVar(&cfg.HostKey, "host-key", "", "PEM key file (or pkcs11:DIR:LABEL) of a service-host operator of the domain")
	fl.StringVar(&cfg.HostID, "host-id", "", "the host's operator ID (default: the service-host operator with that key)")
	fl.StringArrayVar(&cfg.OperatorKeys, "operator-key", nil, "key file (or pkcs11:DIR:LABEL) of an operator of the domain (repeatable)")
	fl.StringVar(&cfg.OlderToken, "older-token", "", "file: a token of an earlier state version of the domain, for HSM-TOK-003")
	fl.BoolVar(&cfg.AllowDomainChange, "allow-domain-change", false, "let HSM-TOK-002 import the next state version into the HSM (an HSM no host depends on)")
	fl.StringVar(&cfg.Transport, "transport", hsmconf.TransportFrames, "how Hellos and Envelopes travel: frames (as hosts send them) or http2")
	fl.DurationVar(&cfg.MaxWait, "max-wait", hsmconf.DefaultMaxWait, "longest wait for an EKT to expire (HSM-EKT-003)")
	sf.add(cmd)
	return cmd
}
