package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/internal/pprofserve"
	"github.com/trentkms/trent/tokenstore"
)

func newDevCmd(g *globals) *cobra.Command {
	var opts dev.Options
	var once, inProcess bool
	var regions int
	var attestAt attestationTime
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the local development cluster (what `make run` starts)",
		Long: `Run the local development cluster from one data dir.

It provisions (or reuses) the HSM nodes (one token each, with identity keys:
SoftHSM2 tokens in DIR/softhsm, or with --hsm-module nss NSS softoken
databases in DIR/nss; a DIR keeps the module it started with), dev operator and service-host keys (PEM files in DIR/operators/), and
the domain: the first time by a genesis ceremony (CreateDomain signed by two dev
operators, executed on the first HSM). It serves the HSMs on loopback and starts
the service hosts, raft voters holding the domain (the first bootstraps, the
others join); a restart on the same DIR resumes the same domain from the hosts'
raft state, and the hosts give the restarted HSMs the latest token. It writes
DIR/cluster.json, checks the HSMs with one session, then runs until
interrupted; --once stops after the check.

With hosts (--hosts, default 1), host-1 serves the AWS KMS API on --kms-listen
(DIR/env sets up the AWS CLI and SDKs with its endpoint and the credentials in
DIR/credentials.json) and writes every request it answers to DIR/audit.jsonl
(trent audit). A simulated Nitro Secure Module (DIR/nitro/) attests enclaves
for trent enclave.

Each HSM node (trent hsm serve) and each service host (trent host serve) runs
as a process of its own, as in production, supervised: one that exits on its
own is started again, and Ctrl-C stops them all (hosts first). Their logs are
in DIR/logs/. Any one of them can be killed, paused or restarted alone; a
restarted HSM waits for the hosts to deliver the domain's latest token.
--in-process runs them all in this process instead.

--regions 2 runs two such clusters, us-east-1 and us-west-2, in DIR/us-east-1
and DIR/us-west-2, each with its own HSMs, domain and hosts, its KMS API
answering in its own region (--kms-listen's port, and the next); their domains
record each other as peer regions, so multi-Region keys replicate between
them (docs/operations.md, Running two regions).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			progress := func(step string) { fmt.Fprintln(g.stderr, step) }
			opts.AttestationTime = attestAt.clock()
			if !inProcess {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				opts.Exec, opts.Supervise = exe, true
			} else if opts.PprofBase != 0 {
				addr, stop, err := pprofserve.Start(net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.PprofBase)))
				if err != nil {
					return err
				}
				defer stop()
				fmt.Fprintf(g.stderr, "pprof on http://%s/debug/pprof/ (loopback only)\n", addr)
			}
			if regions > 1 {
				if inProcess {
					return fmt.Errorf("--regions runs each region's HSMs and hosts as processes: not with --in-process")
				}
				return runRegions(cmd, g, opts, regions, once, progress)
			}
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
				fmt.Fprintf(w, "HSM nodes (%s tokens in %s, module %s):\n", c.HSMModule, c.HSMDir, c.HSMs[0].Module)
				for i, h := range c.HSMs {
					state := "reused"
					if h.TokenCreated || h.IdentityCreated {
						state = "created"
					}
					fmt.Fprintf(w, "  %-8s %s  %-24s %-8s first ping %s\n", h.TokenLabel, h.HSMID, h.URL, state, checks[i].Latency.Round(10_000))
				}
				for _, h := range c.Hosts {
					fmt.Fprintf(w, "  host     %-20s  raft %s, API %s\n", h.ID, h.Raft, h.API)
				}
				if ps := c.Procs(); ps != nil {
					fmt.Fprintf(w, "\nProcesses (logs in %s/logs):\n", c.Dir)
					for _, p := range ps {
						fmt.Fprintf(w, "  %-8s pid %d\n", p.Name, p.PID)
					}
				}
				if c.KMSURL != "" {
					fmt.Fprintf(w, "\nAWS KMS API: %s (credentials in %s). Try:\n", c.KMSURL, c.EnvFile)
					fmt.Fprintf(w, "  . %s\n", c.EnvFile)
					fmt.Fprint(w, "  KEY=$(aws kms create-key --description demo --query KeyMetadata.KeyId --output text)\n")
					fmt.Fprint(w, "  aws kms create-alias --alias-name alias/demo --target-key-id $KEY\n")
					fmt.Fprint(w, "  printf hello > pt.txt\n")
					fmt.Fprint(w, "  aws kms encrypt --key-id alias/demo --plaintext fileb://pt.txt --encryption-context app=demo --query CiphertextBlob --output text | base64 -d > ct.bin\n")
					fmt.Fprint(w, "  aws kms decrypt --ciphertext-blob fileb://ct.bin --encryption-context app=demo --query Plaintext --output text | base64 -d\n")
				}
				st, _ := c.DomainState()
				fmt.Fprintf(w, "\nDomain: %s\nGenesis token: %s (trent domain inspect %s)\nKeys: %s/operators/; cluster description: %s/cluster.json\n",
					st.Summary(), c.TokenFile, c.TokenFile, c.Dir, c.Dir)
				fmt.Fprint(w, `
Started: the HSM nodes above, holding the domain's keys from its token and
serving the session protocol on loopback, and the service hosts above,
replicating the domain with raft (trent quorum submit --host API, trent domain
status --host API); one session made with the first HSM was served by every HSM.
The KMS API serves every operation of AWS KMS's API model, as
docs/conformance.md lists: symmetric, asymmetric, HMAC and ML-DSA keys,
aliases, tags, policies, grants, rotation, key import, custom key stores
(PKCS#11 tokens and XKS proxies), GetKeyLastUsage, multi-Region keys (with
--regions 2) and Recipient requests from (simulated) Nitro Enclaves.
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
	cmd.Flags().StringVar(&opts.Dir, "dir", ".trent-dev", "data dir of the dev cluster")
	cmd.Flags().IntVar(&opts.HSMs, "hsms", dev.DefaultHSMs, "number of HSM nodes")
	cmd.Flags().Var(&hsmModule{&opts.HSMModule}, "hsm-module", "PKCS#11 module of the HSMs' tokens: softhsm or nss (NSS's softoken)")
	cmd.Flags().IntVar(&opts.Hosts, "hosts", 1, "number of service hosts (raft voters), 0 to 5")
	cmd.Flags().StringVar(&opts.KMSListen, "kms-listen", dev.DefaultKMSListen, "address of the AWS KMS JSON API (on host-1)")
	cmd.Flags().StringVar(&opts.XKSCAFile, "xks-ca", "", "PEM file of CA certificates the hosts trust for XKS proxies (external key stores), besides the system roots")
	cmd.Flags().DurationVar(&opts.RotationInterval, "rotation-interval", 0, "domain-key rotation interval of the hosts (default 24h; negative: never)")
	cmd.Flags().StringVar(&opts.Listen, "listen", dev.DefaultListen, "address of the first HSM; the others take the next ports (port 0: any free ports)")
	cmd.Flags().BoolVar(&opts.Hybrid, "hybrid", false, "a new domain requires hybrid ML-KEM-1024 + P-384 key establishment: every session and domain-key transport is hybrid (an existing domain changes by SetSessionPolicy)")
	cmd.Flags().BoolVar(&once, "once", false, "stop after the start-up check")
	cmd.Flags().BoolVar(&inProcess, "in-process", false, "run the HSM nodes and service hosts in this process, not as processes of their own")
	cmd.Flags().IntVar(&opts.PprofBase, "pprof-base", 0, "serve net/http/pprof on 127.0.0.1: HSM i (from 0) on this port + i, host j on this port + HSMs + j; with --in-process, this process on this port (off by default; exposes internals, loopback only)")
	cmd.Flags().IntVar(&regions, "regions", 1, "run this many regions' clusters (1 or 2), peers for multi-Region keys")
	addAttestationTime(cmd.Flags(), &attestAt)
	return cmd
}

// runRegions runs trent dev --regions n.
func runRegions(cmd *cobra.Command, g *globals, opts dev.Options, n int, once bool, progress func(string)) error {
	cs, err := dev.StartRegions(opts, n, progress)
	if err != nil {
		return err
	}
	stopAll := func() error {
		var errs []error
		for _, c := range slices.Backward(cs) {
			errs = append(errs, c.Stop())
		}
		return errors.Join(errs...)
	}
	defer stopAll()
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for _, c := range cs {
		if _, err := c.Check(ctx); err != nil {
			return err
		}
	}
	if g.json {
		if err := g.emit(cs); err != nil {
			return err
		}
	} else {
		w := g.stdout
		fmt.Fprintf(w, "\ntrent dev: %d regions\n", len(cs))
		for _, c := range cs {
			st, _ := c.DomainState()
			fmt.Fprintf(w, "\n%s: domain %q in %s\n  %s\n  AWS KMS API %s (. %s)\n", c.Region, c.Domain, c.Dir, st.Summary(), c.KMSURL, c.EnvFile)
		}
		fmt.Fprintf(w, "\nTry (docs/operations.md, Running two regions):\n  . %s\n", cs[0].EnvFile)
		fmt.Fprint(w, "  KEY=$(aws kms create-key --multi-region --query KeyMetadata.KeyId --output text)\n")
		fmt.Fprintf(w, "  aws kms replicate-key --key-id $KEY --replica-region %s\n", cs[1].Region)
		fmt.Fprintf(w, "  aws kms describe-key --key-id $KEY --region %s --endpoint-url %s\n", cs[1].Region, cs[1].KMSURL)
	}
	if once {
		return stopAll()
	}
	fmt.Fprintln(g.stderr, "\nrunning; Ctrl-C stops the clusters")
	<-ctx.Done()
	fmt.Fprintln(g.stderr, "stopping")
	return stopAll()
}

// hsmModule is the --hsm-module flag: a tokenstore kind.
type hsmModule struct{ k *tokenstore.Kind }

func (f *hsmModule) String() string {
	if f.k == nil || *f.k == "" {
		return string(tokenstore.SoftHSM)
	}
	return string(*f.k)
}

func (f *hsmModule) Set(s string) error {
	for _, k := range tokenstore.Kinds {
		if s == string(k) {
			*f.k = k
			return nil
		}
	}
	return fmt.Errorf("want softhsm or nss")
}

func (f *hsmModule) Type() string { return "module" }
