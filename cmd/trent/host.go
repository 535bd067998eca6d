package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/internal/gctune"
	"github.com/trentkms/trent/internal/pprofserve"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/p11store"
	"github.com/trentkms/trent/xksstore"
)

// xksRoots is the system roots and the certificates of the PEM file.
func xksRoots(file string) (*x509.CertPool, error) {
	pem, err := boundedio.ReadFile(file, 1<<20)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--xks-ca %s: no PEM certificate", file)
	}
	return pool, nil
}

func newHostCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Run service hosts"}
	cmd.AddCommand(newHostServeCmd(g))
	return cmd
}

func newHostServeCmd(g *globals) *cobra.Command {
	var cfg host.Config
	var attestAt attestationTime
	var keySpec, pinFile, genesis, join, tlsCert, tlsKey, tlsCA, credsFile, pprofAddr, xksCA string
	var regionCert, regionKey, regionCA, ksInit string
	var peers, ksModules, ksEnv, peerRegions []string
	cmd := &cobra.Command{
		Use:   "serve --id ID --key KEY --dir DIR --hsm URL... (--bootstrap TOKEN | --join URL)",
		Short: "Run a service host: a raft voter holding the domain, serving its HSMs",
		Long: `Run a service host: a raft voter (TCP, raft-boltdb in DIR, file snapshots)
holding the replicated domain, with sessions to the HSMs given by --hsm.

The first host bootstraps raft with the domain's genesis token (--bootstrap,
from trent domain create); the others --join any running host, which admits
them only if the domain lists ID as a service-host operator with the key that
signs the join. A host whose DIR holds raft state from an earlier start
resumes it: --bootstrap and --join are then no-ops, so a whole cluster can be
restarted in any order. KEY is the host's identity key: a PEM file (dev mode) or
pkcs11:DIR:LABEL (a token; see trent operator keygen). --peer ID=URL tells
this host another host's API URL, for forwarding to the leader.

Operators submit signed commands to any host (trent quorum submit); the host
runs the four-step change and delivers every committed token to its HSMs.

--keystore-module PATH allows PKCS#11 custom key stores (CreateCustomKeyStore
with CustomKeyStoreType AWS_CLOUDHSM) on the module at PATH: requests name
it as TrustAnchorCertificate, the token label as CloudHsmClusterId and the
token's user PIN as KeyStorePassword (docs/operations.md, Connecting a
custom key store). --keystore-module-env and --keystore-module-init give
what the module reads when it starts (SoftHSM2: SOFTHSM2_CONF=...; NSS's
softoken: its parameter string). Without it the host serves no PKCS#11
custom key store.

External key stores (CustomKeyStoreType EXTERNAL_KEY_STORE) reach their XKS
proxies over HTTPS, trusting the system roots and those of --xks-ca.

For multi-Region keys, --region-listen serves the other regions' hosts
(HTTPS, mutual TLS with --region-tls-cert/key, trusting --region-tls-ca) and
--peer-region REGION=URL,… names each other region's hosts; the domains
must record each other by SetPeerRegion (docs/operations.md, Running two
regions).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pin, err := pinFrom(pinFile, "TRENT_OPERATOR_PIN")
			if err != nil {
				return err
			}
			key, err := ceremony.OpenKey(keySpec, pin)
			if err != nil {
				return err
			}
			defer key.Close()
			if cfg.Signer = key.ECDSASigner(); cfg.Signer == nil {
				return fmt.Errorf("a host's identity key must be ECDSA P-384")
			}
			cfg.Peers = map[string]string{}
			for _, p := range peers {
				id, u, ok := strings.Cut(p, "=")
				if !ok || id == "" || u == "" {
					return fmt.Errorf("--peer %q: want ID=URL", p)
				}
				cfg.Peers[id] = u
			}
			if cfg.KMSAddr != "" {
				if credsFile == "" {
					return fmt.Errorf("--kms-listen needs --credentials")
				}
				if cfg.Credentials, err = kmsapi.ReadCredentials(credsFile); err != nil {
					return err
				}
			}
			if tlsCert != "" || tlsKey != "" || tlsCA != "" {
				if cfg.RaftTLS, err = host.LoadRaftTLS(tlsCert, tlsKey, tlsCA); err != nil {
					return err
				}
			}
			if len(peerRegions) > 0 || cfg.RegionAddr != "" {
				if cfg.RegionTLS, err = host.LoadRegionTLS(regionCert, regionKey, regionCA); err != nil {
					return err
				}
				cfg.PeerRegions = map[string][]string{}
				for _, p := range peerRegions {
					name, us, ok := strings.Cut(p, "=")
					if !ok || name == "" || us == "" {
						return fmt.Errorf("--peer-region %q: want REGION=URL[,URL…]", p)
					}
					cfg.PeerRegions[name] = append(cfg.PeerRegions[name], strings.Split(us, ",")...)
				}
			}
			if cfg.RotationInterval <= 0 {
				cfg.RotationInterval = -1
			}
			cfg.Log = slog.New(slog.NewTextHandler(g.stderr, nil))
			gctune.Servers()
			if pprofAddr != "" {
				addr, stop, err := pprofserve.Start(pprofAddr)
				if err != nil {
					return err
				}
				defer stop()
				fmt.Fprintf(g.stderr, "trent: pprof on http://%s/debug/pprof/ (loopback only)\n", addr)
			}
			cfg.AttestationTime = attestAt.clock()
			xp := &xksstore.Proxies{Region: ""}
			if cfg.Credentials != nil {
				xp.Region = cfg.Credentials.Region
			}
			if xksCA != "" {
				pool, err := xksRoots(xksCA)
				if err != nil {
					return err
				}
				xp.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			}
			cfg.XKS = xp
			if len(ksModules) > 0 {
				mods := map[string]hsm.ModuleConfig{}
				for _, m := range ksModules {
					mods[m] = hsm.ModuleConfig{Path: m, Env: ksEnv, InitArgs: ksInit}
				}
				cfg.KeyStores = &p11store.Stores{Modules: mods}
			}
			h, err := host.Start(cfg)
			if err != nil {
				return err
			}
			defer h.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			switch {
			case genesis != "" && join != "":
				return fmt.Errorf("--bootstrap or --join, not both")
			case genesis != "":
				token, err := boundedio.ReadFile(genesis, hsmcmd.MaxTokenSize)
				if err != nil {
					return err
				}
				if err := h.Bootstrap(token); err != nil {
					return err
				}
			case join != "":
				resume, err := h.HasState()
				if err != nil {
					return err
				}
				if resume {
					// A restart: raft's configuration on disk names the
					// peers; the join target may be down.
					fmt.Fprintf(g.stderr, "trent: host %s resumes its raft state in %s; not joining %s again\n", cfg.ID, cfg.Dir, join)
					break
				}
				if err := h.Join(ctx, join); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.stderr, "trent: host %s ready: raft on %s, API on %s\n", cfg.ID, h.RaftAddr(), h.APIURL())
			fmt.Fprintln(g.stderr, "trent: running; Ctrl-C stops the host")
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", "", "the host's operator ID in the domain (required)")
	f.StringVar(&keySpec, "key", "", "identity key: PEM file or pkcs11:DIR:LABEL (required)")
	f.StringVar(&pinFile, "pin-file", "", "the key token's user PIN")
	f.StringVar(&cfg.Dir, "dir", "", "raft data dir (required)")
	f.StringVar(&cfg.RaftAddr, "raft", "127.0.0.1:7400", "raft TCP address")
	f.StringVar(&cfg.APIAddr, "api", "127.0.0.1:7500", "host API address")
	f.StringArrayVar(&cfg.HSMs, "hsm", nil, "URL of an HSM this host serves (repeatable)")
	f.StringArrayVar(&peers, "peer", nil, "another host's ID=API URL (repeatable)")
	f.StringArrayVar(&ksModules, "keystore-module", nil, "a PKCS#11 module custom key stores may use (TrustAnchorCertificate; repeatable)")
	f.StringArrayVar(&ksEnv, "keystore-module-env", nil, "NAME=value the key store modules read when they start (repeatable)")
	f.StringVar(&ksInit, "keystore-module-init", "", "string the key store modules take in C_Initialize's pReserved (NSS's softoken: its parameters)")
	f.StringVar(&xksCA, "xks-ca", "", "PEM file of CA certificates XKS proxies' server certificates may chain to, besides the system roots")
	f.StringVar(&genesis, "bootstrap", "", "the genesis domain token: start a new raft cluster")
	f.StringVar(&join, "join", "", "API URL of a running host to join")
	f.StringVar(&cfg.KMSAddr, "kms-listen", "", "serve the AWS KMS JSON API on this address")
	f.StringVar(&credsFile, "credentials", "", "the KMS API's credentials file (JSON; docs/operations.md)")
	f.StringVar(&cfg.AuditFile, "audit-file", "", "append the KMS API's audit events here (default DIR/audit.jsonl)")
	f.StringVar(&tlsCert, "raft-tls-cert", "", "raft over mutual TLS: this host's certificate (PEM)")
	f.StringVar(&tlsKey, "raft-tls-key", "", "raft over mutual TLS: its private key (PEM)")
	f.StringVar(&tlsCA, "raft-tls-ca", "", "raft over mutual TLS: the cluster's CA certificate (PEM)")
	f.StringVar(&cfg.RegionAddr, "region-listen", "", "serve the peer regions of multi-Region keys on this address (HTTPS, mutual TLS)")
	f.StringArrayVar(&peerRegions, "peer-region", nil, "a peer region of multi-Region keys: REGION=URL[,URL…], its hosts' --region-listen URLs (repeatable)")
	f.StringVar(&regionCert, "region-tls-cert", "", "peer regions: this region's certificate (PEM; CommonName and DNS name: the region)")
	f.StringVar(&regionKey, "region-tls-key", "", "peer regions: its private key (PEM)")
	f.StringVar(&regionCA, "region-tls-ca", "", "peer regions: the peer regions' CA certificates (PEM)")
	addAttestationTime(f, &attestAt)
	f.DurationVar(&cfg.RotationInterval, "rotation-interval", host.DefaultRotationInterval, "rotate the domain keys when the active one is this old (the leader proposes it); 0 or less: never")
	f.DurationVar(&cfg.ResyncEvery, "resync-every", 2*time.Second, "how often the latest domain token is offered to every HSM (a restarted one waits for it)")
	f.StringVar(&pprofAddr, "pprof", "", pprofUsage)
	f.BoolVar(&cfg.HybridSessions, "hybrid-sessions", false, "make every session with the HSMs hybrid (ML-KEM-1024 + P-384), even while the domain allows classical ones (a domain that requires hybrid gets them anyway)")
	f.IntVar(&cfg.HSMBatchWorkers, "hsm-batch-workers", host.DefaultHSMBatchWorkers, "batches of KMS commands in flight to the HSMs at once (fewer: larger batches; more: more HSMs busy)")
	for _, r := range []string{"id", "key", "dir"} {
		_ = cmd.MarkFlagRequired(r)
	}
	return cmd
}

func newQuorumSubmitCmd(g *globals) *cobra.Command {
	var hostURL string
	cmd := &cobra.Command{
		Use:   "submit --host URL cmd.json",
		Short: "Submit a satisfied command to a service host (the four-step change)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := ceremony.ReadFile(args[0])
			if err != nil {
				return err
			}
			raw, err := f.Signed.Marshal()
			if err != nil {
				return err
			}
			v, err := host.SubmitTo(cmd.Context(), hostURL, raw)
			if err != nil {
				return err
			}
			if g.json {
				return g.emit(map[string]uint64{"state_version": v})
			}
			_, err = fmt.Fprintf(g.stdout, "committed: %s; domain at state version %d\n", f.Command.Type, v)
			return err
		},
	}
	cmd.Flags().StringVar(&hostURL, "host", "", "API URL of any service host (required)")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

func newDomainStatusCmd(g *globals) *cobra.Command {
	var hostURL string
	cmd := &cobra.Command{
		Use:   "status --host URL",
		Short: "Show a service host's view: raft leader and peers, state version, each HSM's version, domain keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := host.GetStatus(cmd.Context(), hostURL)
			if err != nil {
				return err
			}
			if g.json {
				return g.emit(s)
			}
			w := g.stdout
			fmt.Fprintf(w, "host %s: raft leader %s, term %s, peers %s\n", s.ID, s.Leader, s.Term, strings.Join(s.Peers, ", "))
			if !s.Ready.Ready {
				fmt.Fprintf(w, "host %s is not ready: %s (KMS requests get retryable errors until it is)\n", s.ID, s.Ready.Reason)
			}
			if !s.Ready.CaughtUp {
				fmt.Fprintf(w, "this host has not caught up with the cluster: what follows is its own view\n")
			}
			fmt.Fprintf(w, "domain %q at state version %d, members %s\n", s.Domain, s.StateVersion, strings.Join(s.Members, ", "))
			for _, h := range s.HSMs {
				fmt.Fprintf(w, "  HSM %s: state version %d\n", h.URL, h.StateVersion)
			}
			fmt.Fprintf(w, "  sealed keys in the key store (EKTs, HBK tokens): %d, under an outgoing domain key: %d\n", s.EKTs, s.EKTsOutdated)
			if s.NextRotation != nil {
				fmt.Fprintf(w, "  next scheduled rotation: %s\n", s.NextRotation.Format(time.RFC3339))
			}
			for _, k := range s.Keys {
				state := "retained"
				if k.Active {
					state = "active"
				}
				fmt.Fprintf(w, "  domain key %s  %-8s created %s (%s ago)\n", k.ID, state, k.Created.Format(time.RFC3339),
					time.Since(k.Created).Round(time.Second))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&hostURL, "host", "", "API URL of a service host (required)")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

func newDomainReencryptCmd(g *globals) *cobra.Command {
	var hostURL string
	cmd := &cobra.Command{
		Use:   "reencrypt --host URL",
		Short: "Move every EKT to the active domain key now, with a progress bar",
		Long: `Start the re-encryption job on the raft leader (it also runs by itself after a
rotation) and follow it until no EKT is left under an outgoing domain key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := host.StartReencrypt(cmd.Context(), hostURL); err != nil {
				return err
			}
			for {
				s, err := host.GetStatus(cmd.Context(), hostURL)
				if err != nil {
					return err
				}
				done := s.EKTs - s.EKTsOutdated
				if !g.json {
					fmt.Fprintf(g.stderr, "\r%s %d/%d EKTs under the active key", bar(done, s.EKTs, 30), done, s.EKTs)
				}
				if s.EKTsOutdated == 0 {
					if g.json {
						return g.emit(map[string]int{"ekts": s.EKTs, "ekts_outdated": 0})
					}
					fmt.Fprintln(g.stderr)
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().StringVar(&hostURL, "host", "", "API URL of a service host (required)")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

// bar draws a progress bar of width w.
func bar(done, total, w int) string {
	filled := w
	if total > 0 {
		filled = done * w / total
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", w-filled) + "]"
}

// pprofUsage is the --pprof flag's help, shared by host serve and hsm serve.
const pprofUsage = "serve net/http/pprof on this address (off by default). It exposes the process's internals (stacks, heap, command line) and lets a caller take CPU for profiles: keep it on loopback (anything else is refused)"
