package node

import (
	"fmt"
	"time"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// The commands an HSM node serves inside sessions, by their hsmcmd codes
// (the contract, with every encoding, is package hsmcmd). Quorum commands
// and domain tokens authenticate themselves; the session adds that only a
// service host of the domain asks.

// refused marks err (if any) as the HSM's refusal of the host's request.
func refused(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", session.ErrRefused, err)
}

// handlers is the node's table of commands.
type handlers map[hsmcmd.Code]session.CommandHandler

func (n *Node) commands() map[uint16]session.CommandHandler {
	m := handlers{
		hsmcmd.Ping: ping,
		hsmcmd.Export: func(r *session.Request) ([]byte, error) {
			req, err := hsmcmd.ParseExportRequest(r.Command)
			if err != nil {
				return nil, refused(err)
			}
			sc, _, err := quorum.ParseSignedCommand(req.SignedCommand)
			if err != nil {
				return nil, refused(err)
			}
			tok, err := n.Export(sc, time.Now())
			if err != nil {
				return nil, refused(err)
			}
			return hsmcmd.ExportResponse{Token: tok}.Marshal()
		},
		hsmcmd.Import: func(r *session.Request) ([]byte, error) {
			req, err := hsmcmd.ParseImportRequest(r.Command)
			if err != nil {
				return nil, refused(err)
			}
			return n.importToken(req.Token)
		},
		hsmcmd.ReencryptEKTs: func(r *session.Request) ([]byte, error) {
			req, err := hsmcmd.ParseReencryptEKTsRequest(r.Command)
			if err != nil {
				return nil, refused(err)
			}
			out, errs, err := n.ReencryptEKTs(req.EKTs)
			if err != nil {
				return nil, err
			}
			resp := hsmcmd.ReencryptEKTsResponse{Results: make([]hsmcmd.EKTResult, len(out))}
			for i := range out {
				if errs[i] != nil {
					resp.Results[i].Alert = session.AlertFor(errs[i]).Code
					continue
				}
				resp.Results[i].EKT = out[i]
			}
			return resp.Marshal()
		},
		hsmcmd.Random: func(r *session.Request) ([]byte, error) {
			req, err := hsmcmd.ParseRandomRequest(r.Command)
			if err != nil {
				return nil, refused(err)
			}
			b, err := n.tok.Random(int(req.Size))
			if err != nil {
				return nil, err
			}
			defer clear(b)
			return hsmcmd.RandomResponse{Bytes: b}.Marshal()
		},
		hsmcmd.DomainStatus: func(r *session.Request) ([]byte, error) {
			if _, err := hsmcmd.ParseDomainStatusRequest(r.Command); err != nil {
				return nil, refused(err)
			}
			st, _ := n.DomainState()
			if st == nil {
				return hsmcmd.DomainStatusResponse{}.Marshal()
			}
			raw, err := st.Marshal()
			if err != nil {
				return nil, err
			}
			return hsmcmd.DomainStatusResponse{State: raw}.Marshal()
		},
	}
	n.keyCommands(m)
	n.asymCommands(m)
	n.verifyCommand(m)
	n.recipientCommand(m)
	n.importCommand(m)
	n.replicaCommands(m)
	m[hsmcmd.Batch] = batchHandler(m, n.dataKeyDraw)
	out := make(map[uint16]session.CommandHandler, len(m))
	for c, h := range m {
		out[uint16(c)] = h
	}
	return out
}

// importToken imports a domain token (hsmcmd.Import, and hsmcmd.PathToken
// outside sessions) and answers the new state version.
func (n *Node) importToken(token []byte) ([]byte, error) {
	if err := n.Import(token, time.Now()); err != nil {
		return nil, fmt.Errorf("%w: %w", session.ErrRefused, err)
	}
	st, _ := n.DomainState()
	return hsmcmd.ImportResponse{Version: st.Version}.Marshal()
}
