package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/quorum"
)

func newQuorumCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quorum",
		Short: "Propose, sign and check quorum-signed operator commands (offline, on files)",
	}
	cmd.AddCommand(newQuorumProposeCmd(g), newQuorumSignCmd(g), newQuorumUnsignCmd(g), newQuorumStatusCmd(g), newQuorumSubmitCmd(g))
	return cmd
}

// readStatus reads the domain's current state from its latest token;
// "" gives nil.
func readStatus(path string) (*domain.State, error) {
	if path == "" {
		return nil, nil
	}
	p, _, err := ceremony.ReadToken(path)
	if err != nil {
		return nil, err
	}
	return p.State, nil
}

func newQuorumProposeCmd(g *globals) *cobra.Command {
	var p ceremony.Proposal
	var statusFile string
	var retention int
	cmd := &cobra.Command{
		Use:   "propose TYPE [parameters] [--domain-status TOKEN] > cmd.json",
		Short: "Propose a command: write an unsigned command file to stdout",
		Long: `Propose a quorum command and write its command file (JSON) to stdout; the
operators then sign it in turn (trent quorum sign) and anyone checks it
(trent quorum status).

TYPE is a command type (the table below; the names are exact).
Every type but CreateDomain applies to the domain's current state, read from
its latest token (--domain-status), which gives the domain's name and state
version. Parameters by type:

  CreateDomain                --domain NAME --member FILE... --operator FILE:ROLE...
                              [--retention N] [--root CERT.pem]... [--hybrid-required]
                              (default rules; the members' ML-KEM keys from their files)
  AddMember                   --member FILE    (the JSON trent hsm init prints)
  RemoveMember                --id HSM-ID
  AddOperator                 --operator FILE --role ROLE  (the JSON operator keygen prints)
  RemoveOperator              --id ID
  SetRule                     --for TYPE --rule "2 kms-operator" [--rule "1 service-host"]...
                              (alternatives; a rule is "N role" terms joined by "+")
  RotateDomainKeys            (none)
  SetRetention                --retention N
  SetTrustedAttestationRoots  --root CERT.pem... | --clear-roots
  SetSessionPolicy            [--hybrid-required] [--member FILE]...
                              (the members' ML-KEM keys: the state's, and those of the
                              files given; hybrid required needs one for every member)
  SetPeerRegion               --region NAME --domain PEER-DOMAIN --member FILE...
                              (the peer region's HSMs; no --member forgets it)

The proposal is checked before it is written: it must apply to the current
state (a dry run), and must leave every command type signable by the
resulting operators (--allow-lockout overrides). The command expires after
--expires (default 10m, at most 24h).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := quorum.ParseCommandType(args[0])
			if err != nil {
				return err
			}
			p.Type = t
			if cmd.Flags().Changed("retention") {
				p.Retention = &retention
			}
			if p.Current, err = readStatus(statusFile); err != nil {
				return err
			}
			res, err := ceremony.Propose(&p, time.Now())
			if err != nil {
				return err
			}
			data, err := res.File.Marshal()
			if err != nil {
				return err
			}
			if _, err := g.stdout.Write(data); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "trent: proposed %s", res.File.Summary().Text())
			fmt.Fprintf(g.stderr, "trent: it makes state version %d: %s\n", res.Next.Version, res.Next.Summary())
			for _, lt := range res.Lockouts {
				fmt.Fprintf(g.stderr, "trent: WARNING: after it, no set of operators can sign %v\n", lt)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&statusFile, "domain-status", "", "the domain's latest token (every type but CreateDomain)")
	f.DurationVar(&p.Expires, "expires", quorum.DefaultExpiry, "how long the command stays valid (at most 24h)")
	f.StringVar(&p.Domain, "domain", "", "CreateDomain: the domain's name; SetPeerRegion: the peer region's domain")
	f.StringVar(&p.Region, "region", "", "SetPeerRegion: the peer region's name")
	f.StringArrayVar(&p.MemberFiles, "member", nil, "an HSM's identity (trent hsm init's JSON); CreateDomain, SetPeerRegion: repeat")
	f.StringArrayVar(&p.OperatorFiles, "operator", nil, "an operator's entry (keygen's JSON); CreateDomain: FILE:ROLE, repeat")
	f.StringVar(&p.Role, "role", "", "AddOperator: the operator's role")
	f.StringVar(&p.ID, "id", "", "RemoveMember, RemoveOperator: the ID")
	f.StringVar(&p.RuleFor, "for", "", "SetRule: the command type whose rule changes")
	f.StringArrayVar(&p.Rules, "rule", nil, "SetRule: an alternative, \"N role[ + N role]...\"; repeat")
	f.IntVar(&retention, "retention", domain.DefaultRetention, "SetRetention, CreateDomain: deactivated domain keys kept")
	f.StringArrayVar(&p.RootFiles, "root", nil, "SetTrustedAttestationRoots, CreateDomain: PEM certificate file; repeat")
	f.BoolVar(&p.ClearRoots, "clear-roots", false, "SetTrustedAttestationRoots: trust no root")
	f.BoolVar(&p.HybridRequired, "hybrid-required", false, "SetSessionPolicy, CreateDomain: require hybrid ML-KEM-1024 + P-384 key establishment (else classical sessions are allowed)")
	f.BoolVar(&p.AllowLockout, "allow-lockout", false, "propose even if some command type could no longer be signed")
	return cmd
}

func newQuorumSignCmd(g *globals) *cobra.Command {
	var spec, id, pinFile, statusFile string
	cmd := &cobra.Command{
		Use:   "sign --key KEYSPEC --id ID cmd.json",
		Short: "Add (or replace) an operator's signature in a command file",
		Long: `Sign the command in cmd.json as operator ID and write the file back in place
(atomically). KEYSPEC is a PEM key file (ECDSA P-384 "PRIVATE KEY" or
"ML-DSA-87 PRIVATE KEY") or pkcs11:DIR:LABEL for a key in a token (PIN from
--pin-file, else $` + envOperatorPIN + `, else DIR/user.pin).

Read the command's summary, printed from the signed bytes themselves (the
file's own summary is never trusted), and compare its fingerprint with the
proposer's before signing. An expired command is refused. For CreateDomain,
and for other types when --domain-status is given, ID must be an operator of
the domain holding this key.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := ceremony.ReadFile(args[0])
			if err != nil {
				return err
			}
			if f.Edited {
				fmt.Fprintf(g.stderr, "trent: WARNING: %s's summary does not match its signed command (edited by hand?); it is ignored and rewritten\n", args[0])
			}
			cur, err := readStatus(statusFile)
			if err != nil {
				return err
			}
			pin, err := pinFrom(pinFile, envOperatorPIN)
			if err != nil {
				return err
			}
			k, err := ceremony.OpenKey(spec, pin)
			if err != nil {
				return err
			}
			defer k.Close()
			if err := f.Sign(id, k, cur, time.Now()); err != nil {
				return err
			}
			if cur == nil && f.Command.Type != quorum.CreateDomain {
				fmt.Fprintf(g.stderr, "trent: not checked that %s is an operator holding this key (no --domain-status)\n", id)
			}
			return g.saveCommandFile(args[0], f, id+" signed ")
		},
	}
	cmd.Flags().StringVar(&spec, "key", "", "key file, or pkcs11:DIR:LABEL (required)")
	cmd.Flags().StringVar(&id, "id", "", "the signing operator's ID (required)")
	cmd.Flags().StringVar(&pinFile, "pin-file", "", "file holding the token's user PIN")
	cmd.Flags().StringVar(&statusFile, "domain-status", "", "the domain's latest token: check ID and key against it")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func newQuorumUnsignCmd(g *globals) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "unsign --id ID cmd.json",
		Short: "Remove an operator's signature from a command file",
		Long: `Remove ID's signature from cmd.json, in place (atomically). A signature that
does not verify, or from someone who is not an operator of the domain,
rejects the whole command; removing it lets the ceremony go on.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := ceremony.ReadFile(args[0])
			if err != nil {
				return err
			}
			if err := f.Unsign(id); err != nil {
				return err
			}
			return g.saveCommandFile(args[0], f, "removed the signature of "+id+": ")
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the operator whose signature goes (required)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func newQuorumStatusCmd(g *globals) *cobra.Command {
	var statusFile string
	cmd := &cobra.Command{
		Use:   "status cmd.json [--domain-status TOKEN]",
		Short: "Show who signed a command, which rule applies and what is missing; exit 0 only when satisfied",
		Long: `Check the command in cmd.json as the HSMs will (quorum.Evaluate, now):
against the domain's current state from its latest token (--domain-status),
or, for CreateDomain, against the state it creates (its own operators and
rules). Prints each signature's check, the rule and the verdict: satisfied,
"pending: need 1 more kms-operator", or rejected with why. Exits 0 only when
the command is satisfied (and applies to the state).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := ceremony.ReadFile(args[0])
			if err != nil {
				return err
			}
			cur, err := readStatus(statusFile)
			if err != nil {
				return err
			}
			st, err := ceremony.Check(f, cur, time.Now())
			if err != nil {
				return err
			}
			if f.Edited {
				fmt.Fprintf(g.stderr, "trent: WARNING: %s's summary does not match its signed command (edited by hand?); it is ignored\n", args[0])
			}
			if g.json {
				err = g.emit(st)
			} else {
				_, err = fmt.Fprint(g.stdout, st.Text())
			}
			if err != nil {
				return err
			}
			return st.Err()
		},
	}
	cmd.Flags().StringVar(&statusFile, "domain-status", "", "the domain's latest token (every type but CreateDomain)")
	return cmd
}

// saveCommandFile writes f back to path atomically and reports its summary
// after what (or as JSON).
func (g *globals) saveCommandFile(path string, f *ceremony.File, what string) error {
	data, err := f.Marshal()
	if err != nil {
		return err
	}
	if err := ceremony.WriteFileAtomic(path, data, 0o644); err != nil {
		return err
	}
	if g.json {
		return g.emit(f.Summary())
	}
	_, err = fmt.Fprintf(g.stdout, "%s%s", what, f.Summary().Text())
	return err
}
