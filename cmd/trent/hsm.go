package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/internal/gctune"
	"github.com/trentkms/trent/internal/pprofserve"
	"github.com/trentkms/trent/nss"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/softhsm"
	"github.com/trentkms/trent/tokenstore"
)

func newHSMCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hsm",
		Short: "Provision and run HSM nodes",
	}
	cmd.AddCommand(newHSMInitCmd(g), newHSMServeCmd(g), newHSMResetAnchorCmd(g))
	return cmd
}

func newHSMResetAnchorCmd(g *globals) *cobra.Command {
	var opts node.Options
	var tf tokenFlags
	cmd := &cobra.Command{
		Use:   "reset-anchor (--dir DIR | --module PATH) [--label L]",
		Short: "Remove the domain anchor from an HSM node's token (it then takes any domain that lists it)",
		Long: `Remove the domain anchor from the token of an HSM node (the one trent hsm init
provisioned in DIR, or with --module the token labelled --label in that
PKCS#11 module, as for trent hsm serve), and print what was removed. The anchor records the domain state the node last adopted (name,
version, member HSMs and their signing keys); a restarted node takes only a
token of that domain, at that version or later, exported by a member it
records, and refuses to create a new domain.

Clear it deliberately, with the node stopped: to move the HSM to another
domain, to re-run a genesis, when the domain's latest token was exported by
an HSM that joined while this one was away, or when the node refuses to open
because the anchor is damaged. Until it takes a token again, the node trusts
the first domain token that lists it: give it the real one at once
(docs/operations.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := tf.apply(&opts); err != nil {
				return err
			}
			res, err := node.ResetAnchor(opts)
			if err != nil {
				return err
			}
			if g.json {
				return g.emit(res)
			}
			_, err = fmt.Fprint(g.stdout, res.Text())
			return err
		},
	}
	tf.add(cmd, &opts)
	return cmd
}

func newHSMServeCmd(g *globals) *cobra.Command {
	var opts node.Options
	var tf tokenFlags
	var listen, viewFile, tokenFile, pprofAddr string
	var attestAt attestationTime
	cmd := &cobra.Command{
		Use:   "serve (--dir DIR [--module KIND[:PATH]] | --module PATH [--module-init S] [--module-env N=V]) --listen ADDR [--token FILE | --domain FILE]",
		Short: "Serve the HSM session protocol for a provisioned node",
		Long: `Serve the HSM session protocol (C(2,2) handshakes, enveloped commands) on
ADDR, in frames to service hosts and over cleartext HTTP/2 to tools (and for
domain tokens and /metrics), for an HSM node whose token holds its identity
keys (trent hsm init makes them).

The domain comes from --token, an exported domain token listing this HSM as a
member (from trent domain create, or exported by a member): the node imports it
at start, loading the domain keys into its token. Alternatively --domain names
a domain view file (JSON; docs/operations.md) whose only member is this node,
which then makes its own domain key at start.

The token is the one trent hsm init provisioned in DIR (SoftHSM2 or NSS's
softoken, whichever DIR holds), or, with --module PATH and no --dir, the token
labelled --label in any PKCS#11 module: --module-env sets the environment the
module reads when it starts (NAME=value, repeatable), --module-init the string
it takes in C_Initialize's pReserved (NSS's softoken reads its databases from
it), and the user PIN comes from --pin-file or $TRENT_HSM_PIN. With both --dir
and --module, the module is DIR's at another path: a library PATH, or
softhsm:PATH or nss:PATH (as trent hsm init --module made them).

With neither, the node serves its token endpoint and waits for a service host
to deliver the domain's latest token (hosts offer it to every HSM they serve,
every few seconds). This is how a node that crashed or restarted rejoins,
whatever the domain has become since: its token's domain anchor admits only a
token of its domain, no older than the state it last adopted, exported by a
member it knew (docs/operations.md, "Rejoin an HSM node").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := tf.apply(&opts); err != nil {
				return err
			}
			var err error
			switch {
			case tokenFile != "" && viewFile != "":
				return fmt.Errorf("--token or --domain, not both")
			case tokenFile != "":
				if opts.Token, err = boundedio.ReadFile(tokenFile, hsmcmd.MaxTokenSize); err != nil {
					return err
				}
			case viewFile != "":
				if opts.View, err = domain.ReadView(viewFile); err != nil {
					return err
				}
			}
			opts.Log = slog.New(slog.NewTextHandler(g.stderr, nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			gctune.Servers()
			if pprofAddr != "" {
				addr, stop, err := pprofserve.Start(pprofAddr)
				if err != nil {
					return err
				}
				defer stop()
				fmt.Fprintf(g.stderr, "trent: pprof on http://%s/debug/pprof/ (loopback only)\n", addr)
			}
			opts.AttestationTime = attestAt.clock()
			return node.Serve(ctx, opts, listen, func(addr string) {
				fmt.Fprintf(g.stderr, "trent: HSM node of %s serving on %s\n", tf.where(&opts), addr)
			})
		},
	}
	tf.add(cmd, &opts)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7301", "address to serve on")
	cmd.Flags().StringVar(&tokenFile, "token", "", "domain token file to import at start")
	cmd.Flags().StringVar(&viewFile, "domain", "", "domain view file (a single-member domain)")
	cmd.Flags().DurationVar(&opts.Validity, "validity", session.DefaultValidity, "validity of the sessions' EKTs")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", pprofUsage)
	addAttestationTime(cmd.Flags(), &attestAt)
	return cmd
}

// tokenFlags are the flags that name a node's token: a data dir from trent
// hsm init, or a PKCS#11 module by path.
type tokenFlags struct {
	pinFile   string
	module    string
	moduleEnv []string
}

func (tf *tokenFlags) add(cmd *cobra.Command, opts *node.Options) {
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "data dir of a node provisioned by trent hsm init")
	cmd.Flags().StringVar(&tf.module, "module", "", "PKCS#11 module: a library PATH (without --dir: any vendor's module), or with --dir softhsm, nss, softhsm:PATH or nss:PATH (default: the module whose tokens DIR holds)")
	cmd.Flags().StringArrayVar(&tf.moduleEnv, "module-env", nil, "NAME=value the module reads when it starts (repeatable; replaces DIR's module configuration)")
	cmd.Flags().StringVar(&opts.Module.InitArgs, "module-init", "", "string the module takes in C_Initialize's pReserved (NSS's softoken: its parameters; replaces DIR's module configuration)")
	cmd.Flags().StringVar(&opts.Label, "label", node.DefaultLabel, "token label")
	cmd.Flags().StringVar(&tf.pinFile, "pin-file", "", "file holding the user PIN (else $TRENT_HSM_PIN, else DIR/user.pin)")
	cmd.MarkFlagsOneRequired("dir", "module")
}

// apply fills in opts from the flags and the environment.
func (tf *tokenFlags) apply(opts *node.Options) error {
	for _, kv := range tf.moduleEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("--module-env %q: want NAME=value", kv)
		}
	}
	kind, path, err := tokenstore.ParseModule(tf.module)
	if err != nil {
		return err
	}
	if kind != "" && opts.Dir == "" {
		return fmt.Errorf("--module %s needs --dir (the data dir trent hsm init --module %s made); without it give the library's path", tf.module, kind)
	}
	opts.Kind, opts.Module.Path = kind, path
	opts.Module.Env = tf.moduleEnv
	opts.PIN, err = pinFrom(tf.pinFile, "TRENT_HSM_PIN")
	return err
}

// where names the node's token for messages.
func (tf *tokenFlags) where(opts *node.Options) string {
	if opts.Dir != "" {
		return opts.Dir
	}
	return fmt.Sprintf("token %q of %s", opts.Label, opts.Module.Path)
}

func newHSMInitCmd(g *globals) *cobra.Command {
	var opts node.InitOptions
	var pinFile, soPINFile string
	cmd := &cobra.Command{
		Use:   "init --dir DIR [--module softhsm|nss|KIND:PATH|PATH]",
		Short: "Provision an HSM node: data dir, token and identity keys (idempotent)",
		Long: `Provision an HSM node in DIR: a token and the node's identity keys (ECDSA
P-384 signing, ECDH P-384 agreement; sensitive, never extractable). A second
run reuses all of them. Prints the node's identity as JSON.

--module chooses the PKCS#11 module: softhsm (the default; DIR/softhsm2.conf
and DIR/tokens/) or nss (NSS's softoken, libsoftokn3: one NSS database per
token in DIR/nssdb/LABEL/, the label made of letters, digits, '.', '_', '-'),
found where their packages install them or at $` + softhsm.EnvModule + ` and
$` + nss.EnvModule + `; softhsm:PATH or nss:PATH names the library; a bare
PATH is a library of DIR's module (SoftHSM2 for a new DIR).

The user PIN comes from --pin-file, else $TRENT_HSM_PIN, else DIR/user.pin; if
none exists a random PIN is generated into DIR/user.pin (mode 0600). SoftHSM2's
SO PIN likewise from --so-pin-file, $TRENT_HSM_SO_PIN or DIR/so.pin; an NSS
database has none once its user PIN is set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.PIN, err = pinFrom(pinFile, "TRENT_HSM_PIN"); err != nil {
				return err
			}
			if opts.SOPIN, err = pinFrom(soPINFile, "TRENT_HSM_SO_PIN"); err != nil {
				return err
			}
			res, err := node.Init(opts)
			if err != nil {
				return err
			}
			if res.PINFile != "" && (res.TokenCreated || res.IdentityCreated) {
				fmt.Fprintf(g.stderr, "trent: user PIN in %s (pass --pin-file or TRENT_HSM_PIN outside development)\n", res.PINFile)
			}
			return g.emit(res.Info)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "data dir of the node (required)")
	cmd.Flags().StringVar(&opts.Label, "label", node.DefaultLabel, "token label")
	cmd.Flags().StringVar(&opts.Module, "module", "", "PKCS#11 module: softhsm, nss, softhsm:PATH, nss:PATH, or a library PATH of DIR's module (default: softhsm, found automatically)")
	cmd.Flags().StringVar(&pinFile, "pin-file", "", "file holding the user PIN")
	cmd.Flags().StringVar(&soPINFile, "so-pin-file", "", "file holding the security officer PIN")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// pinFrom reads a PIN from file if given, else from the environment
// variable env; "" means neither (the node package then uses its PIN file).
func pinFrom(file, env string) (string, error) {
	if file != "" {
		return tokenstore.ReadPINFile(file)
	}
	return os.Getenv(env), nil
}
