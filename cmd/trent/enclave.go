package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/nitro"
)

func newEnclaveCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "enclave",
		Short: "Simulated Nitro Enclaves: image measurements, attestation documents",
	}
	c.AddCommand(newEnclaveBuildCmd(g), newEnclaveAttestCmd(g), newEnclaveProxyCmd(g), newEnclaveRunCmd(g), newEnclaveBootCmd(g))
	return c
}

// readImage reads an enclave image (an EIF or any application file).
func readImage(path string) ([]byte, error) {
	return boundedio.ReadFile(path, nitro.MaxImage)
}

// measurements is nitro-cli build-enclave's output.
type measurements struct {
	Measurements struct {
		HashAlgorithm string `json:"HashAlgorithm"`
		PCR0          string `json:"PCR0"`
		PCR1          string `json:"PCR1"`
		PCR2          string `json:"PCR2"`
	} `json:"Measurements"`
}

func newEnclaveBuildCmd(g *globals) *cobra.Command {
	var image, out string
	c := &cobra.Command{
		Use:   "build --image FILE [--output-file OUT.eif]",
		Short: "Print an image's PCR0, PCR1 and PCR2 as nitro-cli build-enclave does",
		Long: `build measures an enclave image. An EIF file is measured as it is; any
other file (a binary, a container archive) is the application ramdisk of
an EIF with Trent's simulated kernel and bootstrap, which --output-file
writes. Each PCR is SHA-384(48 zero bytes || SHA-384(sections)): PCR0 over
the kernel, cmdline and every ramdisk, PCR1 over the kernel, cmdline and
the first ramdisk, PCR2 over the others (docs/operations.md, Enclaves).
The output is nitro-cli's JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := readImage(image)
			if err != nil {
				return err
			}
			if out != "" {
				if !nitro.IsEIF(b) {
					b = nitro.BuildEIF(b)
				}
				if err := os.WriteFile(out, b, 0o644); err != nil {
					return err
				}
			}
			pcrs, err := nitro.MeasureImage(b)
			if err != nil {
				return err
			}
			var m measurements
			m.Measurements.HashAlgorithm = "Sha384 { ... }"
			m.Measurements.PCR0 = hex.EncodeToString(pcrs[0])
			m.Measurements.PCR1 = hex.EncodeToString(pcrs[1])
			m.Measurements.PCR2 = hex.EncodeToString(pcrs[2])
			if out != "" && !g.json {
				fmt.Fprintf(g.stderr, "Enclave Image successfully created: %s\n", out)
			}
			return g.emit(m)
		},
	}
	c.Flags().StringVar(&image, "image", "", "the enclave image: an EIF, or an application file")
	c.Flags().StringVar(&out, "output-file", "", "write the EIF here")
	c.MarkFlagRequired("image")
	return c
}

// simNSMPath is the simulated NSM file of a dev data dir (or DIR itself
// when it holds the file directly).
func simNSMPath(dir string) string {
	if p := filepath.Join(dir, dev.SimNSMFile); fileExists(p) {
		return p
	}
	return filepath.Join(dir, "nitro", dev.SimNSMFile)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// bytesFlag decodes --user-data and --nonce: text, or bytes as "hex:…".
func bytesFlag(s string) ([]byte, error) {
	if h, ok := strings.CutPrefix(s, "hex:"); ok {
		return hex.DecodeString(h)
	}
	if s == "" {
		return nil, nil
	}
	return []byte(s), nil
}

type attestResult struct {
	Out        string            `json:"out"`
	Bytes      int               `json:"bytes"`
	ModuleID   string            `json:"module_id"`
	Timestamp  time.Time         `json:"timestamp"`
	ValidUntil time.Time         `json:"valid_until"`
	Root       string            `json:"root_sha256"`
	PublicKey  string            `json:"public_key_sha256,omitempty"`
	PCRs       map[string]string `json:"pcrs"`
}

func newEnclaveAttestCmd(g *globals) *cobra.Command {
	var dir, image, pubFile, userData, nonce, out, moduleID, at string
	var debug bool
	c := &cobra.Command{
		Use:   "attest --dir DIR --image FILE --public-key PEM [--user-data S] [--nonce S] --out doc.cbor",
		Short: "Sign an attestation document with the simulated NSM of a dev data dir",
		Long: `attest makes the attestation document a Nitro Secure Module would give an
enclave booted from --image: PCR0-2 of the image (zero with --debug), the
enclave's public key, user data and nonce, signed through the simulated
NSM hierarchy kept in DIR/nitro/sim-nsm.pem (made if missing), whose root
trent dev trusts. The leaf certificate lives three hours, as a real one.
--user-data and --nonce take text, or hex:… for bytes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			img, err := readImage(image)
			if err != nil {
				return err
			}
			pcrs, err := nitro.MeasureImage(img)
			if err != nil {
				return err
			}
			req := nitro.AttestRequest{ModuleID: moduleID, PCRs: nitro.EnclavePCRs(pcrs, debug), Time: time.Now()}
			if at != "" {
				if req.Time, err = time.Parse(time.RFC3339Nano, at); err != nil {
					return fmt.Errorf("--time: %w", err)
				}
			}
			if pubFile != "" {
				pb, err := boundedio.ReadFile(pubFile, 64<<10)
				if err != nil {
					return err
				}
				blk, rest := pem.Decode(pb)
				if blk == nil || blk.Type != "PUBLIC KEY" || len(strings.TrimSpace(string(rest))) != 0 {
					return errors.New("--public-key: want one PEM PUBLIC KEY block (SubjectPublicKeyInfo)")
				}
				if _, err := x509.ParsePKIXPublicKey(blk.Bytes); err != nil {
					return fmt.Errorf("--public-key: %w", err)
				}
				req.PublicKey = blk.Bytes
			}
			if req.UserData, err = bytesFlag(userData); err != nil {
				return fmt.Errorf("--user-data: %w", err)
			}
			if req.Nonce, err = bytesFlag(nonce); err != nil {
				return fmt.Errorf("--nonce: %w", err)
			}
			path := simNSMPath(dir)
			ca, created, err := nitro.OpenSimCA(path)
			if err != nil {
				return err
			}
			if created && !g.json {
				fmt.Fprintf(g.stderr, "made a simulated NSM in %s (trust its root with SetTrustedAttestationRoots)\n", path)
			}
			doc, err := ca.Attest(req)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, doc, 0o644); err != nil {
				return err
			}
			d, _, err := nitro.Parse(doc)
			if err != nil {
				return err
			}
			root := sha256.Sum256(ca.Root.Raw)
			r := attestResult{Out: out, Bytes: len(doc), ModuleID: d.ModuleID, Timestamp: d.Timestamp.UTC(),
				ValidUntil: d.Certificate.NotAfter.UTC(), Root: hex.EncodeToString(root[:]), PCRs: map[string]string{}}
			if req.PublicKey != nil {
				pk := sha256.Sum256(req.PublicKey)
				r.PublicKey = hex.EncodeToString(pk[:])
			}
			for i := 0; i <= 2; i++ {
				r.PCRs[fmt.Sprintf("PCR%d", i)] = hex.EncodeToString(d.PCRs[i])
			}
			if g.json {
				return g.emit(r)
			}
			fmt.Fprintf(g.stdout, "attestation document: %s (%d bytes)\nmodule:     %s\ntimestamp:  %s (leaf valid until %s)\nroot:       sha256 %s\nPCR0:       %s\nPCR1:       %s\nPCR2:       %s\n",
				out, len(doc), r.ModuleID, r.Timestamp.Format(time.RFC3339), r.ValidUntil.Format(time.RFC3339), r.Root, r.PCRs["PCR0"], r.PCRs["PCR1"], r.PCRs["PCR2"])
			if r.PublicKey != "" {
				fmt.Fprintf(g.stdout, "public key: sha256 %s\n", r.PublicKey)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "dir", ".trent-dev", "the trent dev data dir (its nitro/sim-nsm.pem), or a dir holding sim-nsm.pem")
	f.StringVar(&image, "image", "", "the enclave image (EIF or application file)")
	f.StringVar(&pubFile, "public-key", "", "the enclave's public key, PEM SubjectPublicKeyInfo")
	f.StringVar(&userData, "user-data", "", "user_data: text, or hex:…")
	f.StringVar(&nonce, "nonce", "", "nonce: text, or hex:…")
	f.StringVar(&out, "out", "", "write the document (CBOR) here")
	f.StringVar(&moduleID, "module-id", "", "the enclave's module ID (a simulated one if empty)")
	f.StringVar(&at, "time", "", "the document's timestamp, RFC 3339 (now if empty)")
	f.BoolVar(&debug, "debug", false, "a debug-mode enclave: PCR0-2 are zero")
	c.MarkFlagRequired("image")
	c.MarkFlagRequired("out")
	return c
}
