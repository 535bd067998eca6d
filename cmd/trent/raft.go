package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/internal/boundedio"
)

func newRaftCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "raft", Short: "Operate the service hosts' raft cluster: peers, remove-peer, snapshots"}
	snap := &cobra.Command{Use: "snapshot", Short: "Save or restore a snapshot of the replicated state"}
	snap.AddCommand(newRaftSnapshotSaveCmd(g), newRaftSnapshotRestoreCmd(g))
	cmd.AddCommand(newRaftPeersCmd(g), newRaftRemovePeerCmd(g), snap)
	return cmd
}

func newRaftPeersCmd(g *globals) *cobra.Command {
	var hostURL string
	cmd := &cobra.Command{
		Use:   "peers --host URL",
		Short: "List the raft peers (the leader's view)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			peers, err := host.FetchPeers(cmd.Context(), hostURL)
			if err != nil {
				return err
			}
			if g.json {
				return g.emit(peers)
			}
			for _, p := range peers {
				role := "follower"
				if p.Leader {
					role = "leader"
				}
				fmt.Fprintf(g.stdout, "%-16s %-24s %s\n", p.ID, p.Address, role)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&hostURL, "host", "", "API URL of a service host (required)")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

// adminFlags are the flags of a signed raft operation.
type adminFlags struct{ hostURL, keySpec, operator, pinFile string }

func (a *adminFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.hostURL, "host", "", "API URL of a service host (required)")
	cmd.Flags().StringVar(&a.keySpec, "key", "", "an operator's ECDSA key: PEM file or pkcs11:DIR:LABEL (required)")
	cmd.Flags().StringVar(&a.operator, "id", "", "that operator's ID (required)")
	cmd.Flags().StringVar(&a.pinFile, "pin-file", "", "the key token's user PIN")
	for _, r := range []string{"host", "key", "id"} {
		_ = cmd.MarkFlagRequired(r)
	}
}

func (a *adminFlags) send(cmd *cobra.Command, op string, payload []byte) error {
	pin, err := pinFrom(a.pinFile, "TRENT_OPERATOR_PIN")
	if err != nil {
		return err
	}
	key, err := ceremony.OpenKey(a.keySpec, pin)
	if err != nil {
		return err
	}
	defer key.Close()
	signer := key.ECDSASigner()
	if signer == nil {
		return fmt.Errorf("raft operations are signed with an ECDSA P-384 operator key")
	}
	req, err := host.SignAdmin(op, a.operator, signer, payload, time.Now())
	if err != nil {
		return err
	}
	return host.Admin(cmd.Context(), a.hostURL, op, req)
}

func newRaftRemovePeerCmd(g *globals) *cobra.Command {
	var a adminFlags
	cmd := &cobra.Command{
		Use:   "remove-peer --host URL --key KEY --id OPERATOR PEER",
		Short: "Remove a host from the raft cluster (signed by an operator)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.send(cmd, host.OpRemovePeer, []byte(args[0])); err != nil {
				return err
			}
			_, err := fmt.Fprintf(g.stdout, "removed %s from the raft cluster\n", args[0])
			return err
		},
	}
	a.add(cmd)
	return cmd
}

func newRaftSnapshotSaveCmd(g *globals) *cobra.Command {
	var hostURL string
	cmd := &cobra.Command{
		Use:   "save --host URL FILE",
		Short: "Save a snapshot of the replicated state (domain, key store, history) to FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := host.FetchSnapshot(cmd.Context(), hostURL)
			if err != nil {
				return err
			}
			if err := ceremony.WriteNewFile(args[0], data, 0o600); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "saved %d bytes to %s\n", len(data), args[0])
			return err
		},
	}
	cmd.Flags().StringVar(&hostURL, "host", "", "API URL of a service host (required)")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

func newRaftSnapshotRestoreCmd(g *globals) *cobra.Command {
	var a adminFlags
	cmd := &cobra.Command{
		Use:   "restore --host URL --key KEY --id OPERATOR FILE",
		Short: "Restore the replicated state from a snapshot (signed by an operator)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := boundedio.ReadFile(args[0], domain.MaxSnapshot)
			if err != nil {
				return err
			}
			if err := a.send(cmd, host.OpRestore, data); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "restored %s\n", args[0])
			return err
		},
	}
	a.add(cmd)
	return cmd
}
