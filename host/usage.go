package host

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/trentkms/trent/kms"
)

// Key last usage (GetKeyLastUsage; package kms, usage.go). Every host
// keeps the last usages it served in memory; the leader gathers them
// every UsageEvery, its own and each peer's (GET pathUsage on the host
// API, which answers kms.Service.PendingUsage's batch), and commits them
// with kms.Service.MergeUsage. A peer that does not answer is skipped
// this round: its usages stay pending until the next.

const pathUsage = "/trent/v1/host/usage"

// DefaultUsageEvery is how often the leader gathers the hosts' key
// usages when Config.UsageEvery is zero: the bound (plus one gather and
// one raft commit) after which a key's use on one host shows on every
// other.
const DefaultUsageEvery = 5 * time.Second

// usageGatherTimeout bounds one peer's answer.
const usageGatherTimeout = 2 * time.Second

// maxUsageBody bounds a peer's batch (kms.MaxUsageBatch usages of at
// most 2+36+2+17+3×64 bytes each, and the count).
const maxUsageBody = 2 + kms.MaxUsageBatch*(1+36+2+17+3*(1+64))

func (h *Host) usageHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET "+pathUsage, func(w http.ResponseWriter, r *http.Request) {
		b, err := h.service.PendingUsage()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})
}

// usageLoop gathers usages on the leader.
func (h *Host) usageLoop(ctx context.Context) {
	every := h.cfg.UsageEvery
	if every == 0 {
		every = DefaultUsageEvery
	}
	h.onLeader(ctx, every, func() {
		if err := h.GatherUsage(ctx); err != nil {
			h.log.Info("key usage", "err", err)
		}
	})
}

// GatherUsage runs on the leader: it commits the pending key usages of
// this host and of every peer that answers.
func (h *Host) GatherUsage(ctx context.Context) error {
	if !h.IsLeader() {
		return fmt.Errorf("host: key usages are gathered on the leader")
	}
	own, err := h.service.PendingUsage()
	if err != nil {
		return err
	}
	batches := [][]byte{own}
	h.mu.Lock()
	urls := make([]string, 0, len(h.peers))
	for id, u := range h.peers {
		if id != h.cfg.ID {
			urls = append(urls, u)
		}
	}
	h.mu.Unlock()
	for _, u := range urls {
		b, err := fetchUsage(ctx, u)
		if err != nil {
			h.log.Info("key usage: a peer did not answer", "peer", u, "err", err)
			continue
		}
		if _, err := kms.ParseUsageBatch(b); err != nil {
			h.log.Warn("key usage: a peer's batch does not parse", "peer", u, "err", err)
			continue
		}
		batches = append(batches, b)
	}
	return h.service.MergeUsage(ctx, batches...)
}

func fetchUsage(ctx context.Context, apiURL string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, usageGatherTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+pathUsage, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("host: %s: %s", apiURL+pathUsage, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxUsageBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxUsageBody {
		return nil, fmt.Errorf("host: %s: batch too large", apiURL+pathUsage)
	}
	return b, nil
}
