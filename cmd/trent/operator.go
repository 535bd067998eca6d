package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/quorum"
)

// envOperatorPIN holds an operator token's user PIN.
const envOperatorPIN = "TRENT_OPERATOR_PIN"

func newOperatorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Make and show operator keys for quorum ceremonies",
	}
	cmd.AddCommand(newOperatorKeygenCmd(g), newOperatorShowCmd(g))
	return cmd
}

func newOperatorKeygenCmd(g *globals) *cobra.Command {
	var id, out, tokenDir, pinFile string
	var mldsa bool
	cmd := &cobra.Command{
		Use:   "keygen --id ID (--out FILE [--ml-dsa] | --pkcs11-dir DIR)",
		Short: "Make an operator key and print the operator's public entry",
		Long: `Make an operator's signing key and print its public entry as JSON,
{"id", "alg", "public_key"}: the file a proposer passes to
trent quorum propose (--operator FILE:ROLE for CreateDomain, --operator FILE
--role ROLE for AddOperator). The role is given when the operator joins a
domain.

--out FILE writes an ECDSA P-384 key (PEM "PRIVATE KEY", PKCS#8), or with
--ml-dsa an ML-DSA-87 key (PEM "ML-DSA-87 PRIVATE KEY", the 32-byte seed),
with mode 0600; an existing FILE is never overwritten.

--pkcs11-dir DIR makes the key inside a token labelled ID in the data dir DIR
(an operator's smartcard, simulated): ECDSA P-384, never extractable. The token
is SoftHSM2's, or NSS's softoken's if DIR is a data dir of trent hsm init
--module nss.
Sign with --key pkcs11:DIR:ID. A token that already holds a key keeps it and
its entry is printed again. The user PIN comes from --pin-file, else
$` + envOperatorPIN + `, else DIR/user.pin (generated on first use: development only).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (out == "") == (tokenDir == "") {
				return errors.New("give one of --out and --pkcs11-dir")
			}
			var e ceremony.Entry
			var err error
			if out != "" {
				alg := quorum.ECDSAP384
				if mldsa {
					alg = quorum.MLDSA87
				}
				if e, err = ceremony.GenerateKeyFile(out, id, alg); err != nil {
					return err
				}
				fmt.Fprintf(g.stderr, "trent: wrote %v key of %s to %s (mode 0600)\n", alg, id, out)
			} else {
				if mldsa {
					return errors.New("--ml-dsa keys are files: tokens hold ECDSA P-384 keys")
				}
				pin, err := pinFrom(pinFile, envOperatorPIN)
				if err != nil {
					return err
				}
				var created bool
				if e, created, err = ceremony.GenerateTokenKey(tokenDir, id, pin); err != nil {
					return err
				}
				state := "made"
				if !created {
					state = "already held"
				}
				fmt.Fprintf(g.stderr, "trent: token %q in %s %s the key of %s; sign with --key %s%s:%s\n",
					id, tokenDir, state, id, ceremony.PKCS11Prefix, tokenDir, id)
			}
			fmt.Fprintf(g.stderr, "trent: public key %s (read it to the other operators)\n", ceremony.KeyFingerprint(e.Key))
			return g.emit(e)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "operator ID (required)")
	cmd.Flags().StringVar(&out, "out", "", "write the private key to this file")
	cmd.Flags().BoolVar(&mldsa, "ml-dsa", false, "make an ML-DSA-87 key instead of ECDSA P-384 (with --out)")
	cmd.Flags().StringVar(&tokenDir, "pkcs11-dir", "", "make the key in a token in this data dir (SoftHSM2, or NSS if DIR holds NSS tokens)")
	cmd.Flags().StringVar(&pinFile, "pin-file", "", "file holding the token's user PIN (with --pkcs11-dir)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func newOperatorShowCmd(g *globals) *cobra.Command {
	var id, spec, pinFile string
	cmd := &cobra.Command{
		Use:   "show --key KEYSPEC --id ID",
		Short: "Print the public entry of an operator key (a file or pkcs11:DIR:LABEL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pin, err := pinFrom(pinFile, envOperatorPIN)
			if err != nil {
				return err
			}
			k, err := ceremony.OpenKey(spec, pin)
			if err != nil {
				return err
			}
			defer k.Close()
			e, err := ceremony.NewEntry(id, k.Public())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "trent: public key %s\n", ceremony.KeyFingerprint(e.Key))
			return g.emit(e)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "operator ID (required)")
	cmd.Flags().StringVar(&spec, "key", "", "key file, or pkcs11:DIR:LABEL (required)")
	cmd.Flags().StringVar(&pinFile, "pin-file", "", "file holding the token's user PIN (else $"+envOperatorPIN+", else DIR/user.pin)")
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}
