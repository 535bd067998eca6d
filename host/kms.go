package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/kms"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/session"
)

// The host's side of the KMS API (package kms): the Store over the raft
// FSM and the leader's compare-and-swap entries, the HSM client over the
// sessions, the batcher and token delivery, forwarding of key-store
// writes to the leader, and key maintenance on the leader.

// newService makes the host's kms.Service.
func (h *Host) newService() *kms.Service {
	cfg := kms.Config{
		Store:           fsmStore{h},
		AttestationTime: h.cfg.AttestationTime,
		Clock:           h.cfg.Clock,
		Log:             h.log,
		KeyStores:       h.cfg.KeyStores,
		XKS:             h.cfg.XKS,
		AttestationRoots: func() [][]byte {
			if st, _ := h.fsm.State(); st != nil {
				return st.Roots
			}
			return nil
		},
	}
	if h.cfg.Credentials != nil {
		cfg.Region = h.cfg.Credentials.Region
	}
	if h.hsms != nil {
		cfg.HSM = &hsmClient{h: h}
	}
	if h.cfg.RegionTLS != nil {
		cfg.Regions = regions{h}
	}
	return kms.New(cfg)
}

// KMSOperations are the AWS KMS operations this host serves (package
// kms's operation table).
func (h *Host) KMSOperations() map[string]kmsapi.Operation { return h.service.Operations() }

// forwardKMS names the leader's forwarding URL for a key-store write on a
// follower.
func (h *Host) forwardKMS(ctx context.Context, op string) (string, error) {
	if !h.service.IsWrite(op) || h.IsLeader() {
		return "", nil
	}
	u, err := h.leaderURL(ctx)
	if err != nil {
		return "", &kmsapi.Error{Type: kmsapi.DependencyTimeout, Message: "no raft leader is known", Status: 503}
	}
	if u == h.APIURL() {
		return "", nil
	}
	return u + kmsapi.ForwardPath, nil
}

// fsmStore is kms.Store over the host's FSM (reads) and raft (writes,
// on the leader).
type fsmStore struct{ h *Host }

func (s fsmStore) Get(id string) ([]byte, bool) { return s.h.fsm.Key(id) }

// Sync is the host's read barrier (Host.ReadBarrier); when it fails the
// answer is DependencyTimeoutException (503), which SDKs retry.
func (s fsmStore) Sync(ctx context.Context) error {
	if err := s.h.ReadBarrier(ctx); err != nil {
		s.h.log.Debug("kms: read barrier", "err", err) // one per request while it lasts
		return &kmsapi.Error{Type: kmsapi.DependencyTimeout, Status: 503,
			Message: "this host cannot yet confirm it holds the cluster's latest state; retry"}
	}
	return nil
}

func (s fsmStore) Records(prefix string, f func(id string, raw []byte) bool) {
	s.h.fsm.Records(func(id string, raw []byte) bool {
		if !strings.HasPrefix(id, prefix) {
			return true
		}
		return f(id, raw)
	})
}

// Propose commits replacements to the key store on the leader and reports
// kms.ErrConflict if any compare-and-swap did not hold.
func (s fsmStore) Propose(_ context.Context, rs ...domain.Replacement) error {
	entry, err := domain.ReplaceKeysEntry(rs)
	if err != nil {
		return err
	}
	f := s.h.raft.Apply(entry, 10*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrEnqueueTimeout) || errors.Is(err, raft.ErrRaftShutdown) {
			// A state of this host's raft, not of the request: the write
			// may or may not have committed, as with any timeout.
			return &kmsapi.Error{Type: kmsapi.DependencyTimeout, Message: "raft leadership changed or this host is stopping; retry", Status: 503}
		}
		return fmt.Errorf("host: raft: %w", err)
	}
	switch r := f.Response().(type) {
	case error:
		return r
	case domain.ApplyResult:
		if r.Replaced != len(rs) {
			return kms.ErrConflict
		}
		return nil
	}
	return errors.New("host: unexpected raft response")
}

// hsmClient is kms.HSM over the host's sessions (hsmDo); a refusal that
// persists after hsmDo's resync, and a request that does not marshal, are
// reported wrapping kms.ErrRefused.
type hsmClient struct{ h *Host }

func (c *hsmClient) Do(ctx context.Context, req hsmcmd.Request) ([]byte, error) {
	in, err := req.Marshal()
	if err != nil {
		// An HSM refuses what does not parse: refuse it here, unsent.
		return nil, fmt.Errorf("%w: %w", kms.ErrRefused, err)
	}
	out, err := c.h.hsmDo(ctx, uint16(req.Code()), in)
	clear(in) // it may hold a plaintext; hsmDo is done with it
	if errors.Is(err, session.ErrRefused) || errors.Is(err, session.ErrUntrustedPeer) || errors.Is(err, session.ErrPeerContext) {
		return nil, fmt.Errorf("%w: %w", kms.ErrRefused, err)
	}
	var re *session.RemoteError
	if c := req.Code(); (c == hsmcmd.ExportReplica || c == hsmcmd.ImportReplica) && errors.As(err, &re) && !errors.Is(err, session.ErrInternal) {
		// A replica transport refused for its signature, entries or
		// recipients (Alerts 9, 11, 19): the HSM answered.
		return nil, fmt.Errorf("%w: %w", kms.ErrRefused, err)
	}
	if errors.Is(err, session.ErrKeyMaterial) {
		return nil, fmt.Errorf("%w: %w", kms.ErrKeyMaterial, err)
	}
	return out, err
}

// hsmDo runs one command on an HSM: through the batcher if the command
// may be batched (hsmcmd.Code.Batchable), else alone (GenerateDataKeyPair,
// whose RSA key generation would hold a batch for up to seconds,
// CreateHBK, CreateKeyPair, Export). It is the host's one retry policy: a
// refusal (session.ErrRefused, or session.ErrTokenKeyNotHeld: a key token
// under a domain key the HSM does not hold) is retried once after the latest domain
// token is offered to every HSM, since an HSM may lag a domain change;
// concurrent refusals share one delivery. It is an hsmcmd.DoFunc, for
// hsmcmd.Call.
func (h *Host) hsmDo(ctx context.Context, typ uint16, in []byte) ([]byte, error) {
	code := hsmcmd.Code(typ)
	do := func() ([]byte, error) {
		if code.Batchable() {
			return h.batch.do(ctx, code, in)
		}
		return h.hsms.Do(ctx, typ, in)
	}
	out, err := do()
	if errors.Is(err, session.ErrRefused) || errors.Is(err, session.ErrTokenKeyNotHeld) || errors.Is(err, session.ErrUntrustedPeer) {
		// An HSM that has not yet taken the token of a SetPeerRegion
		// refuses a replica transport as from an untrusted peer.
		h.resync(ctx)
		out, err = do()
	}
	return out, err
}

// resync delivers the latest token to every HSM; a caller that finds a
// delivery in flight waits for that one.
func (h *Host) resync(ctx context.Context) {
	h.resyncMu.Lock()
	if ch := h.resyncing; ch != nil {
		h.resyncMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	ch := make(chan struct{})
	h.resyncing = ch
	h.resyncMu.Unlock()
	h.Deliver(ctx)
	h.resyncMu.Lock()
	h.resyncing = nil
	h.resyncMu.Unlock()
	close(ch)
}

// KeyMaintenance runs on the leader: it deletes every key whose pending
// window has passed (with its aliases and grants), pushes the pending
// rotations and rotation status of multi-Region primary keys to their
// replica regions, and rotates every key whose automatic rotation is due
// (kms.Service.KeyMaintenance). It returns how many keys it deleted and
// rotated.
func (h *Host) KeyMaintenance(ctx context.Context) (deleted, rotated int, err error) {
	if !h.IsLeader() {
		return 0, 0, fmt.Errorf("host: key maintenance runs on the leader")
	}
	return h.service.KeyMaintenance(ctx)
}

// maintenanceLoop runs KeyMaintenance on the leader.
func (h *Host) maintenanceLoop(ctx context.Context) {
	every := h.cfg.KeyMaintenanceEvery
	if every == 0 {
		every = time.Minute
	}
	h.onLeader(ctx, every, func() {
		if _, _, err := h.KeyMaintenance(ctx); err != nil {
			h.log.Info("key maintenance", "err", err)
		}
	})
}

// keyStoreLoop keeps this host's custom key store connections in line
// with the key store on every host, and records the leader's outcome of a
// connection (kms.Service.KeyStoreMaintenance). A pass reads every record
// of the key store, so it runs only when something may have changed: the
// FSM applied an entry, this host's leadership changed, or the last pass
// left work pending (a connection under way).
func (h *Host) keyStoreLoop(ctx context.Context) {
	t := time.NewTicker(keyStoreEvery)
	defer t.Stop()
	var applied uint64
	var leader, pending bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a, l := h.fsmIndex.applied.Load(), h.IsLeader()
		if a == applied && l == leader && !pending {
			continue
		}
		applied, leader = a, l
		pending = h.service.KeyStoreMaintenance(ctx, l)
	}
}

// keyStoreEvery is how often keyStoreLoop looks.
const keyStoreEvery = 250 * time.Millisecond
