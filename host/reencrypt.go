package host

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
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

// ReencryptBatch is how many EKTs one HSM call re-seals; a batch also
// stops at reencryptBatchBytes of items (key tokens are several KiB), so
// that it and its answer fit one envelope.
const ReencryptBatch = 1000

const reencryptBatchBytes = 256 << 10

const pathReencrypt = "/trent/v1/host/reencrypt"

// sealedItems returns the domain-key-sealed items of a key-store record
// and the domain key each is under: the record itself if it is an EKT,
// the HBK or key tokens of a KMS key record, then its imports' wrapping
// key tokens (the last GetParametersForImport's, then the earlier ones'),
// if it has any; nil for other records.
func sealedItems(rec []byte) (items [][]byte, under [][16]byte) {
	if e, err := session.ParseEKT(rec); err == nil {
		return [][]byte{rec}, [][16]byte{e.KeyID}
	}
	if keystore.IsCustomKeyStoreRecord(rec) {
		// The HBK token under which the store's secret is sealed.
		c, err := keystore.ParseCustomKeyStore(rec)
		if err != nil {
			return nil, nil
		}
		_, dk, err := hbk.TokenKeyID(c.Token)
		if err != nil {
			return nil, nil
		}
		return [][]byte{c.Token}, [][16]byte{dk}
	}
	if !keystore.IsKeyRecord(rec) {
		return nil, nil
	}
	r, err := keystore.ParseRecord(rec)
	if err != nil {
		return nil, nil
	}
	// The imports' wrapping key tokens are re-sealed like the key's own,
	// so that a rotation never drops the domain key of an import token
	// still in use.
	toks := slices.Clip(r.Tokens)
	for _, p := range r.Key.Import.WrappingTokens() {
		toks = append(toks, *p)
	}
	for _, t := range toks {
		_, dk, err := hbk.TokenKeyID(t)
		if err != nil {
			return nil, nil
		}
		items, under = append(items, t), append(under, dk)
	}
	return items, under
}

// withItems returns rec with its sealed items replaced by news (in
// sealedItems order).
func withItems(rec []byte, news [][]byte) ([]byte, error) {
	if keystore.IsCustomKeyStoreRecord(rec) {
		c, err := keystore.ParseCustomKeyStore(rec)
		if err != nil {
			return nil, err
		}
		c.Token = news[0]
		return c.Marshal()
	}
	if !keystore.IsKeyRecord(rec) {
		return news[0], nil
	}
	r, err := keystore.ParseRecord(rec)
	if err != nil {
		return nil, err
	}
	n := len(r.Tokens)
	r.Tokens = news[:n]
	for i, p := range r.Key.Import.WrappingTokens() {
		*p = news[n+i]
	}
	return r.Marshal()
}

// EKTProgress counts the sealed items of the key store (EKTs and HBK
// tokens), and those under a domain key other than the active one.
func (h *Host) EKTProgress() (outdated, total int) {
	st, _ := h.fsm.State()
	if st == nil {
		return 0, 0
	}
	active, _ := st.ActiveKey()
	h.fsm.Records(func(_ string, rec []byte) bool {
		_, under := sealedItems(rec)
		for _, k := range under {
			total++
			if k != active.ID {
				outdated++
			}
		}
		return true
	})
	return outdated, total
}

// Reencrypt runs the job on the leader until no sealed item is outdated,
// calling progress after each batch. Items the HSMs cannot open (their key
// is no longer retained) are skipped and reported in the error.
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
		type pending struct {
			id       string
			old      []byte
			items    [][]byte
			from, to int // its items' range in the batch
		}
		var recs []pending
		var batchItems [][]byte
		batchBytes := 0
		h.fsm.Records(func(id string, rec []byte) bool {
			if failed[id] != nil {
				return true
			}
			items, under := sealedItems(rec)
			if !slices.ContainsFunc(under, func(k [16]byte) bool { return k != active.ID }) {
				return true
			}
			recs = append(recs, pending{id: id, old: rec, items: items, from: len(batchItems), to: len(batchItems) + len(items)})
			batchItems = append(batchItems, items...)
			for _, it := range items {
				batchBytes += len(it)
			}
			return len(batchItems) < ReencryptBatch && batchBytes < reencryptBatchBytes
		})
		if len(recs) == 0 {
			break
		}
		req := hsmcmd.ReencryptEKTsRequest{EKTs: batchItems}
		batch, err := req.Marshal()
		if err != nil {
			return err
		}
		res, err := h.hsms.Do(ctx, uint16(req.Code()), batch)
		if err != nil {
			return err
		}
		ans, err := hsmcmd.ParseReencryptEKTsResponse(res)
		if err != nil || len(ans.Results) != len(batchItems) {
			return fmt.Errorf("host: re-encryption answer: %v", err)
		}
		news, errs := ans.EKTs(), ans.Errs()
		var rs []domain.Replacement
	records:
		for _, p := range recs {
			for i := p.from; i < p.to; i++ {
				if errs[i] != nil {
					failed[p.id] = errs[i]
					continue records
				}
			}
			nw, err := withItems(p.old, news[p.from:p.to])
			if err != nil {
				failed[p.id] = err
				continue
			}
			rs = append(rs, domain.Replacement{ID: p.id, Old: p.old, New: nw})
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
		return fmt.Errorf("host: %d records could not be re-encrypted (%w)", len(failed), first)
	}
	return nil
}

// outdatedUnder reports whether any sealed item is under one of keys.
func (h *Host) outdatedUnder(keys map[[16]byte]bool) bool {
	found := false
	h.fsm.Records(func(_ string, rec []byte) bool {
		_, under := sealedItems(rec)
		found = slices.ContainsFunc(under, func(k [16]byte) bool { return keys[k] })
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
