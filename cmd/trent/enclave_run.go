package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/enclave"
)

func newEnclaveProxyCmd(g *globals) *cobra.Command {
	var listen, remote string
	var allow []string
	var maxConns int
	c := &cobra.Command{
		Use:   "proxy --listen ADDR --remote HOST:PORT [--allow HOST:PORT …]",
		Short: "Forward an enclave's connections to one TCP endpoint, as vsock-proxy does",
		Long: `proxy is the parent-side proxy of a simulated enclave, vsock-proxy's
analog: it listens on ADDR (unix:/path, the stand-in for a vsock port, or a
loopback HOST:PORT) and forwards every connection, byte for byte, to
--remote over TCP. The remote must be on the allowlist (--allow, default
the remote itself), else the proxy refuses to start. At most
--max-connections are served at once; SIGINT or SIGTERM stops it, closing
open connections. It logs one line per connection (addresses, byte
counts, duration), never payloads.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h slog.Handler = slog.NewTextHandler(g.stderr, nil)
			if g.json {
				h = slog.NewJSONHandler(g.stderr, nil)
			}
			log := slog.New(h)
			p, err := enclave.NewProxy(enclave.ProxyConfig{Remote: remote, Allow: allow, MaxConns: maxConns, Log: log})
			if err != nil {
				return err
			}
			ln, err := enclave.Listen(listen)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			log.Info("proxy: listening", "listen", listen, "remote", remote)
			err = p.Serve(ctx, ln)
			log.Info("proxy: stopped")
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&listen, "listen", "", "where enclaves connect: unix:/path or a loopback HOST:PORT")
	f.StringVar(&remote, "remote", "", "the TCP endpoint to forward to, HOST:PORT")
	f.StringSliceVar(&allow, "allow", nil, "an endpoint the proxy may forward to (repeatable; default: --remote)")
	f.IntVar(&maxConns, "max-connections", enclave.DefaultMaxConns, "concurrent connections served at once")
	c.MarkFlagRequired("listen")
	c.MarkFlagRequired("remote")
	return c
}

func newEnclaveRunCmd(g *globals) *cobra.Command {
	var image, dir, proxy, region, netns string
	var debug bool
	c := &cobra.Command{
		Use:   "run --image FILE --dir DEVDIR --proxy ADDR [--region R] [--debug] -- decrypt|genkey|genrandom [kmstool flags]",
		Short: "Run a kmstool_enclave_cli command in a simulated enclave",
		Long: `run boots a simulated enclave from --image as a separate process (this
binary again, with an environment holding only AWS credentials) and runs
one kmstool_enclave_cli command in it:

  decrypt --ciphertext B64 [--key-id K --encryption-algorithm A]  PLAINTEXT: <b64>
  genkey --key-id K --key-spec AES-256|AES-128                    CIPHERTEXT: <b64>, PLAINTEXT: <b64>
  genrandom --length N                                            PLAINTEXT: <b64>

The enclave makes an RSA-2048 key, has the simulated NSM of DEVDIR attest it
with the image's PCRs, calls KMS with that attestation document as the
Recipient through --proxy only (trent enclave proxy), and opens the
CiphertextForRecipient with its key, which never leaves the process.
Credentials: the command's --aws-access-key-id, --aws-secret-access-key and
--aws-session-token, or else AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN, passed to the enclave explicitly. --proxy-port is
accepted and unused. On Linux the enclave gets a network namespace of its
own when the proxy is a Unix socket (--netns).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := enclave.Executable()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return enclave.Run(ctx, enclave.RunConfig{
				Exe: []string{exe, "enclave", "boot"}, Image: image, NSMFile: enclave.NSMFile(dir), Proxy: proxy,
				Region: region, Debug: debug, NetNS: enclave.NetNS(netns), Command: args, Environ: os.Environ(),
				Stdout: g.stdout, Stderr: g.stderr,
			})
		},
	}
	f := c.Flags()
	f.StringVar(&image, "image", "", "the enclave image (EIF or application file)")
	f.StringVar(&dir, "dir", ".trent-dev", "the trent dev data dir (its nitro/sim-nsm.pem)")
	f.StringVar(&proxy, "proxy", "", "the proxy address: unix:/path or a loopback HOST:PORT")
	f.StringVar(&region, "region", "", "KMS region (default AWS_REGION, else us-east-1)")
	f.BoolVar(&debug, "debug", false, "a debug-mode enclave: PCR0-2 are zero")
	f.StringVar(&netns, "netns", string(enclave.NetNSAuto), "own network namespace: auto, on or off")
	c.MarkFlagRequired("image")
	c.MarkFlagRequired("proxy")
	return c
}

// newEnclaveBootCmd is the enclave process of trent enclave run.
func newEnclaveBootCmd(*globals) *cobra.Command {
	return &cobra.Command{
		Use:                "boot",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if code := enclave.BootMain(ctx, args, os.Stdout, os.Stderr); code != 0 {
				stop()
				os.Exit(code)
			}
			return nil
		},
	}
}
