package host

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
)

// Raft operations, as an operator of a Vault or Consul cluster expects
// them: list the peers, remove one, save a snapshot, restore one. Listing
// and saving are open (the snapshot holds public state and EKTs, no key in
// the clear); removing and restoring change the cluster, so they take an
// admin request signed by an ECDSA key of an operator of the domain
// (kms-operator or service-host):
//
//	v8 operation ‖ operator ID ‖ u64 time ‖ v24 payload ‖ v8 signature
//
// the signature over SHA-384("trent/v1 host admin" ‖ 0x00 ‖ everything
// before it), the time within MaxJoinSkew.
const labelAdmin = "trent/v1 host admin"

const (
	pathPeers      = "/trent/v1/host/peers"
	pathRemovePeer = "/trent/v1/host/remove-peer"
	pathSnapshot   = "/trent/v1/host/snapshot"
	pathRestore    = "/trent/v1/host/restore"
)

// ErrAdmin is wrapped by every refusal of an admin request.
var ErrAdmin = errors.New("host: admin request refused")

// Peer is a raft server of the cluster.
type Peer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
}

// Peers lists the raft configuration.
func (h *Host) Peers() ([]Peer, error) {
	f := h.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	_, leader := h.raft.LeaderWithID()
	var out []Peer
	for _, s := range f.Configuration().Servers {
		out = append(out, Peer{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader})
	}
	return out, nil
}

// SignAdmin builds a signed admin request.
func SignAdmin(op, operator string, signer crypto.Signer, payload []byte, now time.Time) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(op)) })
	wire.AddID(&b, operator)
	b.AddUint64(uint64(now.Unix()))
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(payload) })
	unsigned, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign(nil, wire.LabelledHash(labelAdmin, unsigned), crypto.SHA384)
	if err != nil {
		return nil, fmt.Errorf("host: sign: %w", err)
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	return b.Bytes()
}

// checkAdmin verifies an admin request for op against st and returns its
// payload.
func checkAdmin(in []byte, op string, st *domain.State, now time.Time) ([]byte, error) {
	s := cryptobyte.String(in)
	var gotOp, payload, sig cryptobyte.String
	var operator string
	var at uint64
	if !s.ReadUint8LengthPrefixed(&gotOp) || !wire.ReadID(&s, &operator) || !s.ReadUint64(&at) ||
		!s.ReadUint24LengthPrefixed(&payload) {
		return nil, fmt.Errorf("%w: malformed", ErrAdmin)
	}
	unsigned := in[:len(in)-len(s)]
	if !s.ReadUint8LengthPrefixed(&sig) || !s.Empty() || string(gotOp) != op {
		return nil, fmt.Errorf("%w: malformed or for another operation", ErrAdmin)
	}
	if st == nil {
		return nil, fmt.Errorf("%w: %w", ErrAdmin, ErrNoDomain)
	}
	var key *ecdsa.PublicKey
	for _, o := range st.Operators {
		if o.ID == operator && (o.Role == quorum.RoleKMSOperator || o.Role == quorum.RoleServiceHost) {
			key = o.Key.ECDSA()
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%w: %q is not an operator with an ECDSA key", ErrAdmin, operator)
	}
	if d := time.Duration(int64(at)-now.Unix()) * time.Second; d > MaxJoinSkew || -d > MaxJoinSkew {
		return nil, fmt.Errorf("%w: request time outside %v", ErrAdmin, MaxJoinSkew)
	}
	if !ecdsa.VerifyASN1(key, wire.LabelledHash(labelAdmin, unsigned), []byte(sig)) {
		return nil, fmt.Errorf("%w: signature does not verify", ErrAdmin)
	}
	return []byte(payload), nil
}

// adminHandlers adds the raft operations to mux. Changes are made on the
// leader; a follower forwards them.
func (h *Host) adminHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET "+pathPeers, func(w http.ResponseWriter, r *http.Request) {
		// The leader's view, as Consul's list-peers gives by default: a
		// follower's configuration may lag a change.
		var peers []Peer
		var err error
		if h.IsLeader() {
			peers, err = h.Peers()
		} else {
			var u string
			if u, err = h.leaderURL(r.Context()); err == nil {
				peers, err = FetchPeers(r.Context(), u)
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(peers)
	})
	mux.HandleFunc("GET "+pathSnapshot, func(w http.ResponseWriter, r *http.Request) {
		// The leader's, after a barrier: every acknowledged entry is in it.
		if !h.IsLeader() {
			u, err := h.leaderURL(r.Context())
			var data []byte
			if err == nil {
				data, err = FetchSnapshot(r.Context(), u)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(data)
			return
		}
		if err := h.raft.Barrier(10 * time.Second).Error(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		var rc io.ReadCloser
		var err error
		f := h.raft.Snapshot()
		switch err = f.Error(); {
		case err == nil:
			_, rc, err = f.Open()
		case errors.Is(err, raft.ErrNothingNewToSnapshot):
			// Nothing applied since the last snapshot: that one is current.
			var metas []*raft.SnapshotMeta
			if metas, err = h.snaps.List(); err == nil && len(metas) > 0 {
				_, rc, err = h.snaps.Open(metas[0].ID)
			}
		}
		if err == nil && rc == nil {
			err = errors.New("host: no snapshot")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, rc)
	})
	mux.HandleFunc("POST "+pathRemovePeer, h.admin(pathRemovePeer, 4096, func(payload []byte) error {
		h.beginMembership()
		defer h.endMembership()
		if f := h.raft.RemoveServer(raft.ServerID(payload), 0, 10*time.Second); f.Error() != nil {
			return fmt.Errorf("host: remove peer: %w", f.Error())
		}
		return nil
	}))
	mux.HandleFunc("POST "+pathRestore, h.admin(pathRestore, domain.MaxSnapshot, func(payload []byte) error {
		// The snapshot must decode before raft takes it.
		if err := domain.NewFSM().Restore(io.NopCloser(bytes.NewReader(payload))); err != nil {
			return err
		}
		meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: int64(len(payload))}
		h.beginMembership()
		defer h.endMembership()
		if err := h.raft.Restore(meta, bytes.NewReader(payload), time.Minute); err != nil {
			return fmt.Errorf("host: restore: %w", err)
		}
		h.poke()
		return nil
	}))
}

func (h *Host) admin(path string, limit int64, do func(payload []byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit+4096))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !h.IsLeader() {
			u, err := h.leaderURL(r.Context())
			if err == nil {
				_, err = postVersion(r.Context(), u+path, body)
			}
			writeVersion(w, 0, err)
			return
		}
		st, _ := h.fsm.State()
		payload, err := checkAdmin(body, path, st, time.Now())
		if err == nil {
			err = do(payload)
		}
		writeVersion(w, 0, err)
	}
}

// Admin sends a signed admin request to the host at apiURL.
func Admin(ctx context.Context, apiURL, path string, request []byte) error {
	_, err := postVersion(ctx, apiURL+path, request)
	return err
}

// Admin operation names (the paths), for SignAdmin.
const (
	OpRemovePeer = pathRemovePeer
	OpRestore    = pathRestore
)

// FetchSnapshot downloads a snapshot of the host at apiURL.
func FetchSnapshot(ctx context.Context, apiURL string) ([]byte, error) {
	return get(ctx, apiURL+pathSnapshot, domain.MaxSnapshot)
}

// FetchPeers lists the raft peers known to the host at apiURL.
func FetchPeers(ctx context.Context, apiURL string) ([]Peer, error) {
	var peers []Peer
	if err := getJSON(ctx, apiURL+pathPeers, &peers); err != nil {
		return nil, err
	}
	return peers, nil
}
