package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/conformance"
	kmsconf "github.com/trentkms/trent/conformance/kms"
)

// conformanceCmd is `trent conformance`: black-box conformance suites run
// against any endpoint.
func conformanceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Run a black-box conformance suite against an endpoint (Trent, AWS, moto, …)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(conformanceKMSCmd())
	cmd.AddCommand(conformanceHSMCmd())
	cmd.AddCommand(conformanceXKSCmd())
	return cmd
}

func conformanceKMSCmd() *cobra.Command {
	var (
		cfg kmsconf.Config
		sf  suiteFlags
	)
	cmd := &cobra.Command{
		Use:   "kms [--endpoint URL] [--region R] [--run REGEXP] [--junit FILE] [--list]",
		Short: "Check that an endpoint behaves as the AWS KMS JSON API specifies",
		Long: `Run the AWS KMS conformance suite against --endpoint (AWS itself if absent)
with the aws-sdk-go-v2 KMS client and raw SigV4-signed requests, as the
identity of the usual AWS environment (as the AWS SDKs find it: the
AWS_* variables, the shared files, --profile).

Each check prints PASS, FAIL (with what was expected and what was observed)
or SKIP (with the reason: a capability the target lacks is never counted as
passed). The exit status is non-zero if any check failed. Keys the suite
creates are tagged trent-conformance=1 and scheduled for deletion (7 days).

Checks needing more:
  second-principal  --second-principal-profile P (or TRENT_CONFORMANCE_SECOND_*
                    variables) and --second-principal-arn ARN
  recipient         --attestation-root FILE, a simulated NSM the endpoint trusts
                    (trent dev keeps one: DIR/nitro/sim-nsm.pem)
  asymmetric        probed: CreateKey ECC_NIST_P256 SIGN_VERIFY

--list prints the catalogue (ID, statement, clause) without running it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel, err := sf.selector()
			if err != nil {
				return err
			}
			if sf.list {
				return sf.catalogue(cmd, kmsconf.Catalogue(), sel)
			}
			ctx := cmd.Context()
			env, err := kmsconf.NewEnv(ctx, cfg)
			if err != nil {
				return err
			}
			checks := conformance.Select(env.Checks(), sel)
			if len(checks) == 0 {
				return fmt.Errorf("--run %q selects no check", sf.run)
			}
			opts := conformance.Options{Suite: kmsconf.Suite, Target: env.Endpoint, Missing: env.Missing(ctx, checks)}
			sf.begin(cmd, &opts, fmt.Sprintf("trent conformance kms: %s (region %s), %d checks", env.Endpoint, env.Region, len(checks)))
			return sf.report(cmd, conformance.Run(ctx, checks, opts))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.Endpoint, "endpoint", "", "base URL of the KMS API (default: AWS's endpoint for the region)")
	fl.StringVar(&cfg.Region, "region", "", "region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)")
	fl.StringVar(&cfg.Profile, "profile", "", "shared-config profile of the identity (default: the AWS environment)")
	fl.StringVar(&cfg.SecondProfile, "second-principal-profile", "", "profile of a second identity, for the policy checks that need another principal")
	fl.StringVar(&cfg.SecondARN, "second-principal-arn", "", "principal ARN of the second identity")
	fl.StringVar(&cfg.AttestationRoot, "attestation-root", "", "simulated NSM file (root and keys) whose root the endpoint trusts, for the Recipient checks")
	sf.add(cmd)
	return cmd
}

// emitJSON prints v as indented JSON on the command's output.
func emitJSON(cmd *cobra.Command, v any) error {
	g := &globals{stdout: cmd.OutOrStdout()}
	return g.emit(v)
}

// suiteFlags are the flags both suites' commands share, and the steps
// around a run they share: selecting, listing, the table's progress and
// the reports.
type suiteFlags struct {
	run, junit string
	list       bool
}

func (f *suiteFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.run, "run", "", "run only the checks whose ID matches this regular expression")
	fl.StringVar(&f.junit, "junit", "", "also write the results as JUnit XML to this file")
	fl.BoolVar(&f.list, "list", false, "print the catalogue (ID, statement, clause) without running it")
}

func (f *suiteFlags) selector() (*regexp.Regexp, error) {
	if f.run == "" {
		return nil, nil
	}
	sel, err := regexp.Compile(f.run)
	if err != nil {
		return nil, fmt.Errorf("--run: %w", err)
	}
	return sel, nil
}

// catalogue prints the selected checks of a catalogue (--list).
func (f *suiteFlags) catalogue(cmd *cobra.Command, all []conformance.Check, sel *regexp.Regexp) error {
	checks := conformance.Select(all, sel)
	if j, _ := cmd.Flags().GetBool("json"); j {
		return emitJSON(cmd, conformance.Catalogue(checks))
	}
	return conformance.WriteCatalogue(cmd.OutOrStdout(), checks)
}

// begin prints the header and streams the table's rows (not with --json).
func (f *suiteFlags) begin(cmd *cobra.Command, opts *conformance.Options, header string) {
	if j, _ := cmd.Flags().GetBool("json"); j {
		return
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s\n\n", header)
	opts.Progress = conformance.NewTable(cmd.OutOrStdout()).Row
}

// report prints the summary (or the JSON report), writes --junit and
// returns the run's verdict: an error if a check failed.
func (f *suiteFlags) report(cmd *cobra.Command, rep *conformance.Report) error {
	stdout := cmd.OutOrStdout()
	if j, _ := cmd.Flags().GetBool("json"); j {
		if err := conformance.WriteJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		conformance.NewTable(stdout).Summary(rep)
	}
	if f.junit != "" {
		var b bytes.Buffer
		if err := conformance.WriteJUnit(&b, rep); err != nil {
			return err
		}
		if err := os.WriteFile(f.junit, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return rep.Err()
}
