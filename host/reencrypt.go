package host

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/session"
)

// Re-encryption after a rotation. Key-store records that are EKTs (the KMS
// API will wrap them in richer records) under a domain key other than the
// active one are re-sealed under the active key by an HSM, in batches, and
// written back with a compare-and-swap raft entry. The replicated key store
// is the job's only progress record, so the job resumes after a crash or a
// leader change by scanning again; the leader runs it whenever outdated EKTs
// exist. A scheduled rotation waits while any EKT is still under a domain key
// the rotation would drop.

// ReencryptBatch is how many EKTs one HSM call re-seals.
const ReencryptBatch = 1000

const pathReencrypt = "/trent/v1/host/reencrypt"

// EKTProgress counts the key records that are EKTs, and those under a key
// other than the active one.
func (h *Host) EKTProgress() (outdated, total int) {
	st, _ := h.fsm.State()
	if st == nil {
		return 0, 0
	}
	active, _ := st.ActiveKey()
	h.fsm.Records(func(_ string, rec []byte) bool {
		if e, err := session.ParseEKT(rec); err == nil {
			total++
			if e.KeyID != active.ID {
				outdated++
			}
		}
		return true
	})
	return outdated, total
}

// Reencrypt runs the job on the leader until no EKT is outdated, calling
// progress after each batch. EKTs the HSMs cannot open (their key is no
// longer retained) are skipped and reported in the error.
func (h *Host) Reencrypt(ctx context.Context, progress func(done, total int)) error {
	if !h.IsLeader() {
		return errors.New("host: the re-encryption job runs on the leader")
	}
	if h.hsms == nil {
		return errors.New("host: no HSM to re-encrypt with")
	}
	failed := map[string]error{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		st, _ := h.fsm.State()
		if st == nil {
			return ErrNoDomain
		}
		active, _ := st.ActiveKey()
		var ids []string
		var olds [][]byte
		h.fsm.Records(func(id string, rec []byte) bool {
			if e, err := session.ParseEKT(rec); err == nil && e.KeyID != active.ID && failed[id] == nil {
				ids, olds = append(ids, id), append(olds, rec)
			}
			return len(ids) < ReencryptBatch
		})
		if len(ids) == 0 {
			break
		}
		batch, err := node.MarshalEKTBatch(olds)
		if err != nil {
			return err
		}
		res, err := h.hsms.Do(ctx, node.CmdReencryptEKTs, batch)
		if err != nil {
			return err
		}
		news, errs, err := node.ParseEKTResults(res)
		if err != nil || len(news) != len(ids) {
			return fmt.Errorf("host: re-encryption answer: %v", err)
		}
		var rs []domain.Replacement
		for i, id := range ids {
			if errs[i] != nil {
				failed[id] = errs[i]
				continue
			}
			rs = append(rs, domain.Replacement{ID: id, Old: olds[i], New: news[i]})
		}
		if len(rs) > 0 {
			entry, err := domain.ReplaceKeysEntry(rs)
			if err != nil {
				return err
			}
			f := h.raft.Apply(entry, 30*time.Second)
			if err := f.Error(); err != nil {
				return fmt.Errorf("host: raft: %w", err)
			}
		}
		if progress != nil {
			outdated, total := h.EKTProgress()
			progress(total-outdated, total)
		}
	}
	if len(failed) > 0 {
		var first error
		for _, err := range failed {
			first = err
			break
		}
		return fmt.Errorf("host: %d EKTs could not be re-encrypted (%w)", len(failed), first)
	}
	return nil
}

// outdatedUnder reports whether any EKT record is under one of keys.
func (h *Host) outdatedUnder(keys map[[16]byte]bool) bool {
	found := false
	h.fsm.Records(func(_ string, rec []byte) bool {
		if e, err := session.ParseEKT(rec); err == nil && keys[e.KeyID] {
			found = true
		}
		return !found
	})
	return found
}

// wouldDrop is the set of domain keys a rotation of st drops, and when the
// newest of them stopped being active: sessions made under it live until
// then plus their validity.
func wouldDrop(st *domain.State) (map[[16]byte]bool, time.Time) {
	out := map[[16]byte]bool{}
	var deactivated time.Time
	if n := len(st.Keys) - st.Retention; n > 0 {
		for _, k := range st.Keys[:n] {
			out[k.ID] = true
		}
		deactivated = time.Unix(int64(st.Keys[n].Created), 0) // its successor's creation
	}
	return out, deactivated
}

// jobLoop runs the re-encryption job on the leader whenever outdated EKTs
// exist: after a rotation, and after a crash or a leader change.
func (h *Host) jobLoop(ctx context.Context) {
	h.onLeader(ctx, time.Second, func() {
		if outdated, _ := h.EKTProgress(); outdated == 0 {
			return
		}
		if err := h.Reencrypt(ctx, nil); err != nil {
			h.log.Info("re-encryption", "err", err)
		}
	})
}

func (h *Host) reencryptHandler(w http.ResponseWriter, r *http.Request) {
	if !h.IsLeader() {
		u, err := h.leaderURL(r.Context())
		if err == nil {
			_, err = postVersion(r.Context(), u+pathReencrypt, nil)
		}
		writeVersion(w, 0, err)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if err := h.Reencrypt(ctx, nil); err != nil {
			h.log.Info("re-encryption", "err", err)
		}
	}()
	outdated, _ := h.EKTProgress()
	writeVersion(w, uint64(outdated), nil)
}

// StartReencrypt asks the host at apiURL (the leader, through forwarding) to
// run the re-encryption job now; it returns at once.
func StartReencrypt(ctx context.Context, apiURL string) error {
	_, err := postVersion(ctx, apiURL+pathReencrypt, nil)
	return err
}
