package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/conformance"
	xksconf "github.com/trentkms/trent/conformance/xks"
	"github.com/trentkms/trent/internal/boundedio"
)

// conformanceXKSCmd is `trent conformance xks`: the XKS proxy suite
// against one proxy.
func conformanceXKSCmd() *cobra.Command {
	var (
		cfg                       xksconf.Config
		sf                        suiteFlags
		caFile, certFile, keyFile string
	)
	cmd := &cobra.Command{
		Use:   "xks --endpoint URL --access-key-id ID --secret SECRET --key-id KEY [--uri-path PATH] [--run REGEXP] [--junit FILE] [--list]",
		Short: "Check that an endpoint behaves as AWS's XKS Proxy API Specification requires",
		Long: `Run the XKS proxy conformance suite against the proxy at --endpoint
(https://host[:port]) and --uri-path ([/<prefix>]/kms/xks/v1), with raw HTTPS
requests SigV4-signed (service kms-xks-proxy, --region) with --access-key-id
and --secret (else $TRENT_XKS_SECRET, which keeps it out of the process
list). --key-id names an external key allowing encrypt and decrypt.

Each check prints PASS, FAIL (with what was expected and what was observed)
or SKIP (with the reason: a capability the configuration lacks is never
counted as passed). The exit status is non-zero if any check failed. The suite
changes nothing on the proxy: it encrypts, decrypts and reads metadata.

Checks needing more:
  encrypt-only-key  --encrypt-only-key ID, a key allowing only encrypt
  decrypt-only-key  --decrypt-only-key ID, a key allowing only decrypt
  no-usage-key      --no-usage-key ID, a key allowing neither

--ca-file trusts a CA for the proxy's certificate (else the system's roots);
--client-cert and --client-key present a client certificate (mutual TLS).
--list prints the catalogue (ID, statement, clause) without running it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel, err := sf.selector()
			if err != nil {
				return err
			}
			if sf.list {
				return sf.catalogue(cmd, xksconf.Catalogue(), sel)
			}
			tc := &tls.Config{MinVersion: tls.VersionTLS12}
			if caFile != "" {
				pem, err := boundedio.ReadFile(caFile, 1<<20)
				if err != nil {
					return err
				}
				tc.RootCAs = x509.NewCertPool()
				if !tc.RootCAs.AppendCertsFromPEM(pem) {
					return fmt.Errorf("--ca-file %s: no PEM certificate", caFile)
				}
			}
			if (certFile == "") != (keyFile == "") {
				return fmt.Errorf("--client-cert and --client-key go together")
			}
			if certFile != "" {
				c, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					return err
				}
				tc.Certificates = []tls.Certificate{c}
			}
			cfg.TLS = tc
			if cfg.SecretAccessKey == "" {
				cfg.SecretAccessKey = os.Getenv("TRENT_XKS_SECRET")
			}
			env, err := xksconf.NewEnv(cfg)
			if err != nil {
				return err
			}
			checks := conformance.Select(env.Checks(), sel)
			if len(checks) == 0 {
				return fmt.Errorf("--run %q selects no check", sf.run)
			}
			opts := conformance.Options{Suite: xksconf.Suite, Target: env.Target(), Missing: env.Missing()}
			sf.begin(cmd, &opts, fmt.Sprintf("trent conformance xks: %s, %d checks", env.Target(), len(checks)))
			return sf.report(cmd, conformance.Run(cmd.Context(), checks, opts))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.Endpoint, "endpoint", "", "the proxy's https://host[:port] (required)")
	fl.StringVar(&cfg.URIPath, "uri-path", "/kms/xks/v1", "the proxy's URI path, [/<prefix>]/kms/xks/v1")
	fl.StringVar(&cfg.AccessKeyID, "access-key-id", "", "SigV4 access key ID the proxy accepts (required)")
	fl.StringVar(&cfg.SecretAccessKey, "secret", "", "its secret access key (else $TRENT_XKS_SECRET)")
	fl.StringVar(&cfg.Region, "region", "us-east-1", "SigV4 region to sign for")
	fl.StringVar(&cfg.KeyID, "key-id", "", "an external key allowing encrypt and decrypt (required)")
	fl.StringVar(&cfg.EncryptOnlyKeyID, "encrypt-only-key", "", "an external key allowing only encrypt")
	fl.StringVar(&cfg.DecryptOnlyKeyID, "decrypt-only-key", "", "an external key allowing only decrypt")
	fl.StringVar(&cfg.NoUsageKeyID, "no-usage-key", "", "an external key allowing neither")
	fl.StringVar(&caFile, "ca-file", "", "PEM CA to trust for the proxy's certificate")
	fl.StringVar(&certFile, "client-cert", "", "client certificate, PEM (mutual TLS)")
	fl.StringVar(&keyFile, "client-key", "", "client private key, PEM (mutual TLS)")
	sf.add(cmd)
	return cmd
}
