package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/xks"
	"github.com/trentkms/trent/xks/p11"
)

func newXKSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "xks",
		Short: "Run an External Key Store (XKS) proxy backed by a PKCS#11 token",
		Long: `An XKS proxy as AWS's XKS Proxy API Specification (version 1) describes it:
GetHealthStatus, GetKeyMetadata, Encrypt and Decrypt over HTTPS, SigV4-signed
for the service kms-xks-proxy, the keys being AES-256 keys in a PKCS#11 token
(docs/operations.md, "Running the XKS proxy with TLS").`,
	}
	keys := &cobra.Command{Use: "keys", Short: "Create and list the proxy's external keys"}
	keys.AddCommand(newXKSKeysCreateCmd(g), newXKSKeysListCmd(g))
	creds := &cobra.Command{Use: "credentials", Short: "Make SigV4 credentials for the proxy"}
	creds.AddCommand(newXKSCredentialsNewCmd(g))
	cmd.AddCommand(newXKSInitCmd(g), keys, creds, newXKSServeCmd(g))
	return cmd
}

// xksTokenFlags name the proxy's token.
type xksTokenFlags struct {
	opts      p11.TokenOptions
	moduleEnv []string
}

func (f *xksTokenFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.opts.Dir, "dir", "", "SoftHSM data dir provisioned by trent xks init")
	fl.StringVar(&f.opts.Module.Path, "module", "", "PKCS#11 module path (without --dir: any vendor's module)")
	fl.StringArrayVar(&f.moduleEnv, "module-env", nil, "NAME=value the module reads when it starts (repeatable)")
	fl.StringVar(&f.opts.Module.InitArgs, "module-init", "", "string the module takes in C_Initialize's pReserved (NSS's softoken: its parameters)")
	fl.StringVar(&f.opts.Label, "token-label", p11.DefaultLabel, "token label")
	fl.StringVar(&f.opts.PINFile, "pin-file", "", "file holding the user PIN (else $TRENT_XKS_PIN, else DIR/user.pin)")
	cmd.MarkFlagsOneRequired("dir", "module")
}

func (f *xksTokenFlags) apply() error {
	for _, kv := range f.moduleEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("--module-env %q: want NAME=value", kv)
		}
	}
	f.opts.Module.Env = f.moduleEnv
	if f.opts.PINFile == "" {
		f.opts.PIN = os.Getenv("TRENT_XKS_PIN")
	}
	return nil
}

func newXKSInitCmd(g *globals) *cobra.Command {
	var dir, module, label, pinFile, soPINFile string
	cmd := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Provision the proxy's SoftHSM data dir and token (idempotent)",
		Long: `Provision a SoftHSM data dir for the proxy: DIR/softhsm2.conf, DIR/tokens/ and
a token labelled --token-label. A second run reuses them. Prints what it did as
JSON.

The user PIN comes from --pin-file, else $TRENT_XKS_PIN, else DIR/user.pin; if
none exists a random PIN is generated into DIR/user.pin (mode 0600). The SO PIN
likewise from --so-pin-file, $TRENT_XKS_SO_PIN or DIR/so.pin. For another
vendor's module, initialise its token with the vendor's tools and use --module.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pin, err := pinFrom(pinFile, "TRENT_XKS_PIN")
			if err != nil {
				return err
			}
			soPIN, err := pinFrom(soPINFile, "TRENT_XKS_SO_PIN")
			if err != nil {
				return err
			}
			res, err := p11.Init(dir, module, label, pin, soPIN)
			if err != nil {
				return err
			}
			return g.emit(res)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "dir", "", "data dir (required)")
	fl.StringVar(&module, "module", "", "SoftHSM2 library (default: found automatically)")
	fl.StringVar(&label, "token-label", p11.DefaultLabel, "token label")
	fl.StringVar(&pinFile, "pin-file", "", "file holding the user PIN")
	fl.StringVar(&soPINFile, "so-pin-file", "", "file holding the security officer PIN")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// parseUsage reads --usage: "encrypt", "decrypt", both comma-separated,
// or "none".
func parseUsage(s string) (p11.Usage, error) {
	var u p11.Usage
	if s == "none" {
		return u, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(part) {
		case "encrypt":
			u.Encrypt = true
		case "decrypt":
			u.Decrypt = true
		default:
			return u, fmt.Errorf("--usage %q: want encrypt, decrypt, encrypt,decrypt or none", s)
		}
	}
	return u, nil
}

func newXKSKeysCreateCmd(g *globals) *cobra.Command {
	var tf xksTokenFlags
	var label, usage string
	cmd := &cobra.Command{
		Use:   "create (--dir DIR | --module PATH) --label KEY-ID [--usage encrypt,decrypt]",
		Short: "Create an AES-256 key in the proxy's token",
		Long: `Create a persistent AES-256 key in the token, labelled KEY-ID: the external key
ID AWS KMS's CreateKey names (XksKeyId), 1 to 128 of A-Z a-z 0-9 - . _. The key
is generated in the token, sensitive and never extractable.

--usage sets what it allows, as the key's PKCS#11 attributes: encrypt
(CKA_ENCRYPT), decrypt (CKA_DECRYPT), encrypt,decrypt (both; what AWS KMS
requires of a key it creates a KMS key for), or none. GetKeyMetadata reports
them, and the proxy and the token refuse the other operations.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := parseUsage(usage)
			if err != nil {
				return err
			}
			if err := tf.apply(); err != nil {
				return err
			}
			tok, err := p11.OpenToken(tf.opts)
			if err != nil {
				return err
			}
			defer tok.Close()
			if err := p11.CreateKey(tok, label, u); err != nil {
				return err
			}
			return g.emit(map[string]any{"key_id": label, "encrypt": u.Encrypt, "decrypt": u.Decrypt})
		},
	}
	tf.add(cmd)
	cmd.Flags().StringVar(&label, "label", "", "the key's label: its external key ID (required)")
	cmd.Flags().StringVar(&usage, "usage", "encrypt,decrypt", "encrypt, decrypt, encrypt,decrypt or none")
	_ = cmd.MarkFlagRequired("label")
	return cmd
}

func newXKSKeysListCmd(g *globals) *cobra.Command {
	var tf xksTokenFlags
	cmd := &cobra.Command{
		Use:   "list (--dir DIR | --module PATH)",
		Short: "List the AES keys in the proxy's token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := tf.apply(); err != nil {
				return err
			}
			tok, err := p11.OpenToken(tf.opts)
			if err != nil {
				return err
			}
			defer tok.Close()
			ks, err := p11.Keys(tok)
			if err != nil {
				return err
			}
			if g.json {
				return g.emit(ks)
			}
			for _, k := range ks {
				fmt.Fprintf(g.stdout, "%s\tAES_%d\tencrypt=%t\tdecrypt=%t\n", k.Label, k.Bits, k.Encrypt, k.Decrypt)
			}
			return nil
		},
	}
	tf.add(cmd)
	return cmd
}

func newXKSCredentialsNewCmd(g *globals) *cobra.Command {
	var file, uriPath string
	cmd := &cobra.Command{
		Use:   "new --file FILE --uri-path PATH",
		Short: "Make a random SigV4 credential and add it to the proxy's credentials file",
		Long: `Make a random SigV4 credential (an access key ID of 26 characters A-Z 2-7, a
secret of 32 random bytes in base64), add it to FILE (a JSON array of
{"AccessKeyId", "RawSecretAccessKey"}; created with mode 0600 if absent), and
print the XKS proxy configuration file of the specification (URI path and
credential) that AWS KMS's console and CreateCustomKeyStore take. A proxy
reading FILE accepts every credential in it: during a rotation, the old and
the new (trent xks serve re-reads FILE on SIGHUP).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !xks.ValidURIPath(uriPath) {
				return fmt.Errorf("--uri-path %q: want [/<prefix>]/kms/xks/v1", uriPath)
			}
			var cs []xks.Credential
			data, err := boundedio.ReadFile(file, 1<<16)
			switch {
			case err == nil:
				if cs, err = xks.ParseCredentials(data); err != nil {
					return err
				}
			case !errors.Is(err, os.ErrNotExist):
				return err
			}
			c, err := xks.NewCredential()
			if err != nil {
				return err
			}
			cs = append(cs, c)
			tmp := file + ".tmp"
			if err := os.WriteFile(tmp, xks.MarshalCredentials(cs), 0o600); err != nil {
				return err
			}
			if err := os.Rename(tmp, file); err != nil {
				return err
			}
			return g.emit(xks.NewConfigFile(uriPath, c))
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the proxy's credentials file (required)")
	cmd.Flags().StringVar(&uriPath, "uri-path", xks.PathSuffix, "the proxy's URI path, [/<prefix>]/kms/xks/v1")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newXKSServeCmd(g *globals) *cobra.Command {
	var tf xksTokenFlags
	var listen, uriPath, credsFile, certFile, keyFile, clientCA, clientCN, region string
	var maxInFlight int
	cmd := &cobra.Command{
		Use:   "serve (--dir DIR | --module PATH) --credentials FILE --tls-cert FILE --tls-key FILE [--uri-path PATH]",
		Short: "Serve the XKS Proxy API over HTTPS with the token's keys",
		Long: `Serve GetHealthStatus, GetKeyMetadata, Encrypt and Decrypt (AWS's XKS Proxy API,
version 1) on --listen over HTTPS (TLS 1.2 or later; under 1.2 only the ECDHE
AES-256-GCM suites the specification lists; HTTP/1.1), at POST paths under --uri-path
([/<prefix>]/kms/xks/v1). The external keys are the token's AES-256 keys, by
label (trent xks keys create); AES-256-GCM runs in the token.

Requests must be SigV4-signed for the service kms-xks-proxy with a credential
of --credentials (trent xks credentials new), within 5 minutes of this host's
clock, and in --region if given (any region otherwise); SIGHUP re-reads the
file, so that a credential is rotated without a restart. With --client-ca and
--client-cn the proxy demands a client certificate chained to that CA with
that subject common name (AWS KMS presents CN=cks.kms.<region>.amazonaws.com).

Errors carry the specification's names and statuses (ValidationException
400, AuthenticationFailedException 401, KeyNotFoundException 404, ...). Each
request is logged on stderr with its kmsRequestId and metadata, never its
plaintext. The token is the one trent xks init provisioned in DIR, or with
--module the token --token-label of any PKCS#11 module (PIN from --pin-file or
$TRENT_XKS_PIN).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := tf.apply(); err != nil {
				return err
			}
			if (clientCA == "") != (clientCN == "") {
				return errors.New("--client-ca and --client-cn go together")
			}
			readCreds := func() ([]xks.Credential, error) {
				data, err := boundedio.ReadFile(credsFile, 1<<16)
				if err != nil {
					return nil, err
				}
				return xks.ParseCredentials(data)
			}
			creds, err := readCreds()
			if err != nil {
				return err
			}
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			tlsCfg := xks.ServerTLS([]tls.Certificate{cert})
			if clientCA != "" {
				pem, err := boundedio.ReadFile(clientCA, 1<<20)
				if err != nil {
					return err
				}
				roots := x509.NewCertPool()
				if !roots.AppendCertsFromPEM(pem) {
					return fmt.Errorf("--client-ca %s: no PEM certificate", clientCA)
				}
				xks.RequireClientCert(tlsCfg, roots, clientCN)
			}
			tok, err := p11.OpenToken(tf.opts)
			if err != nil {
				return err
			}
			defer tok.Close()
			be, err := p11.New(tok)
			if err != nil {
				return err
			}
			defer be.Close()
			version := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				version = bi.Main.Version
			}
			log := slog.New(slog.NewTextHandler(g.stderr, nil))
			h, err := xks.NewHandler(xks.ServerConfig{URIPath: uriPath, Credentials: creds, Region: region, Backend: be,
				Vendor: "Trent", Model: "trent xks serve " + version, MaxInFlight: maxInFlight, Log: log})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: h, TLSConfig: tlsCfg, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 20 * time.Second,
				WriteTimeout: 20 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
				ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
				// HTTP/1.1 only: HTTP/2 would need a TLS 1.2 AES-128 suite
				// beyond the specification's list.
				TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						cs, err := readCreds()
						if err == nil {
							err = h.SetCredentials(cs)
						}
						if err != nil {
							log.Error("xks: credentials not reloaded", "err", err)
							continue
						}
						log.Info("xks: credentials reloaded", "count", len(cs))
					}
				}
			}()
			errc := make(chan error, 1)
			go func() { errc <- srv.ServeTLS(ln, "", "") }()
			fmt.Fprintf(g.stderr, "trent: XKS proxy of token %q serving on https://%s%s\n", tok.Label(), ln.Addr(), uriPath)
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	tf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:7443", "address to serve on")
	fl.StringVar(&uriPath, "uri-path", xks.PathSuffix, "URI path, [/<prefix>]/kms/xks/v1")
	fl.StringVar(&credsFile, "credentials", "", "credentials file (trent xks credentials new; required)")
	fl.StringVar(&certFile, "tls-cert", "", "server certificate chain, PEM (required)")
	fl.StringVar(&keyFile, "tls-key", "", "server private key, PEM (required)")
	fl.StringVar(&clientCA, "client-ca", "", "mutual TLS: the CA client certificates must chain to, PEM")
	fl.StringVar(&clientCN, "client-cn", "", "mutual TLS: the subject common name client certificates must have")
	fl.StringVar(&region, "region", "", "the only SigV4 region accepted (default: any)")
	fl.IntVar(&maxInFlight, "max-in-flight", 64, "requests served at once; more are answered ThrottlingException")
	for _, f := range []string{"credentials", "tls-cert", "tls-key"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}
