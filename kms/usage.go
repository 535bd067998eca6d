package kms

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Key last usage (GetKeyLastUsage), kept off the hot path.
//
// A successful cryptographic operation costs its host one map update in
// memory (note: a sharded mutex, no allocation once the key is known, no
// raft write). Each host thus knows the last usage of the keys it served
// since it started that the key store does not have yet: its pending
// usages. The raft leader gathers them every Config.UsageEvery (host:
// its own, and each peer's through the host API) and commits, in one
// compare-and-swap entry, the newest usage of each key as its usage
// record (keystore.UsageRecordID), never older than the one stored. A
// host drops a pending usage once the key store has it or a newer one.
//
// GetKeyLastUsage answers the newer of the key store's record (read
// after the read barrier, as every read) and the host's own pending
// usage. So a use shows at once on the host that served it, and on
// every other host once the leader has gathered and committed it: within
// UsageEvery plus one gather and one raft commit. A host that stops
// before the leader gathers its pending usages loses them (at most
// UsageEvery of usage); the key store's record is as durable as any
// other.

// usageShards spreads note's lock.
const usageShards = 64

// usageEntryMax bounds the usage records of one raft entry (about 128
// KiB of records); a merge of more commits several entries.
const usageEntryMax = 512

// MaxUsageBatch bounds the usages of one gathered batch (a host's
// pending usages beyond it wait for the next round).
const MaxUsageBatch = 2048

// usageTracker is a host's pending usages by key ID.
type usageTracker struct {
	seed   maphash.Seed
	shards [usageShards]usageShard
}

type usageShard struct {
	mu sync.Mutex
	m  map[string]keystore.Usage
}

func (t *usageTracker) shard(id string) *usageShard {
	return &t.shards[maphash.String(t.seed, id)%usageShards]
}

// note records u as key id's usage unless the one pending is newer. Two
// usages of one millisecond on this host: the later noted wins (Newer's
// tie-break by event ID is for usages of different hosts).
func (t *usageTracker) note(id string, u keystore.Usage) {
	sh := t.shard(id)
	sh.mu.Lock()
	if cur, ok := sh.m[id]; !ok || u.Millis >= cur.Millis {
		if sh.m == nil {
			sh.m = map[string]keystore.Usage{}
		}
		sh.m[id] = u
	}
	sh.mu.Unlock()
}

// get returns key id's pending usage.
func (t *usageTracker) get(id string) (keystore.Usage, bool) {
	sh := t.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	u, ok := sh.m[id]
	return u, ok
}

// drop forgets key id's pending usage if stored is not older.
func (t *usageTracker) drop(id string, stored *keystore.Usage) {
	sh := t.shard(id)
	sh.mu.Lock()
	if cur, ok := sh.m[id]; ok && !cur.Newer(stored) {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
}

// keyUser is a response of a cryptographic operation: the keys it used,
// as the ARNs it answers (the second "" but for ReEncrypt's source key).
type keyUser interface{ usedKeys() (string, string) }

func (r *encryptResponse) usedKeys() (string, string)             { return r.KeyId, "" }
func (r *decryptResponse) usedKeys() (string, string)             { return r.KeyId, "" }
func (r *reEncryptResponse) usedKeys() (string, string)           { return r.KeyId, r.SourceKeyId }
func (r *generateDataKeyResponse) usedKeys() (string, string)     { return r.KeyId, "" }
func (r *generateDataKeyPairResponse) usedKeys() (string, string) { return r.KeyId, "" }
func (r *signResponse) usedKeys() (string, string)                { return r.KeyId, "" }
func (r *verifyResponse) usedKeys() (string, string)              { return r.KeyId, "" }
func (r *generateMacResponse) usedKeys() (string, string)         { return r.KeyId, "" }
func (r *verifyMacResponse) usedKeys() (string, string)           { return r.KeyId, "" }
func (r *deriveSharedSecretResponse) usedKeys() (string, string)  { return r.KeyId, "" }

// noted serves a cryptographic operation's handler h and notes the
// usage of the keys its successful answer names (ReEncrypt: the source
// key and the destination key, each noted once).
func (s *Service) noted(op string, h kmsapi.Handler) kmsapi.Handler {
	return func(ctx context.Context, p kmsapi.Principal, body []byte) (any, error) {
		out, err := h(ctx, p, body)
		if err != nil {
			return out, err
		}
		if ku, ok := out.(keyUser); ok {
			reqID, eventID := kmsapi.RequestIDs(ctx)
			u := keystore.Usage{Millis: s.now().UnixMilli(), Operation: op, EventID: eventID, RequestID: reqID}
			a, b := ku.usedKeys()
			if _, id, ok := strings.Cut(a, ":key/"); ok {
				s.usageT.note(id, u)
			}
			if _, id, ok := strings.Cut(b, ":key/"); ok && b != a {
				s.usageT.note(id, u)
			}
		}
		return out, nil
	}
}

type getKeyLastUsageRequest struct {
	KeyId string `json:"KeyId"`
}

type keyLastUsage struct {
	Operation         string `json:"Operation,omitempty"`
	Timestamp         *epoch `json:"Timestamp,omitempty"`
	CloudTrailEventId string `json:"CloudTrailEventId,omitempty"`
	KmsRequestId      string `json:"KmsRequestId,omitempty"`
}

type getKeyLastUsageResponse struct {
	KeyId             string        `json:"KeyId"`
	KeyLastUsage      *keyLastUsage `json:"KeyLastUsage"`
	TrackingStartDate *epoch        `json:"TrackingStartDate"`
	KeyCreationDate   *epoch        `json:"KeyCreationDate"`
}

func millis(ms int64) *epoch {
	e := epoch(ms) / 1000
	return &e
}

func (s *Service) getKeyLastUsage(_ context.Context, p kmsapi.Principal, req *getKeyLastUsageRequest) (*getKeyLastUsageResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "GetKeyLastUsage", state: stateAny})
	if err != nil {
		return nil, err
	}
	id := k.rec.Key.KeyID
	out := &getKeyLastUsageResponse{KeyId: id, KeyLastUsage: &keyLastUsage{}, KeyCreationDate: unix(k.rec.Key.Created)}
	last, ok := s.storedUsage(id)
	if mine, mok := s.usageT.get(id); mok && (!ok || mine.Newer(last)) {
		last, ok = &mine, true
	}
	if ok {
		out.KeyLastUsage = &keyLastUsage{Operation: last.Operation, Timestamp: millis(last.Millis),
			CloudTrailEventId: last.EventID, KmsRequestId: last.RequestID}
	}
	since := s.usageSince()
	if created := k.rec.Key.Created * 1000; created > since {
		since = created
	}
	out.TrackingStartDate = millis(since)
	return out, nil
}

// storedUsage is key id's usage record in the key store.
func (s *Service) storedUsage(id string) (*keystore.Usage, bool) {
	raw, ok := s.store.Get(keystore.UsageRecordID(id))
	if !ok {
		return nil, false
	}
	u, err := keystore.ParseUsage(raw)
	if err != nil {
		s.log.Error("usage record does not parse", "key", id, "err", err)
		return nil, false
	}
	return u, true
}

// usageSince is when the cluster began recording usage (Unix ms): the
// key store's UsageSinceID record, or before the leader first wrote it,
// when this Service began.
func (s *Service) usageSince() int64 {
	if raw, ok := s.store.Get(keystore.UsageSinceID); ok {
		if u, err := keystore.ParseUsage(raw); err == nil {
			return u.Millis
		}
	}
	return s.started
}

// PendingUsage returns a batch of this host's pending usages (at most
// MaxUsageBatch), encoded for MergeUsage: u16 n ‖ n × (v8 key ID ‖ v16
// usage record). Usages the key store already has (or a newer one) are
// dropped, not sent.
func (s *Service) PendingUsage() ([]byte, error) {
	var ids []string
	var us []keystore.Usage
	for i := range s.usageT.shards {
		sh := &s.usageT.shards[i]
		sh.mu.Lock()
		for id, u := range sh.m {
			if len(ids) < MaxUsageBatch {
				ids, us = append(ids, id), append(us, u)
			}
		}
		sh.mu.Unlock()
	}
	var b cryptobyte.Builder
	n := 0
	var items [][2][]byte
	for i, id := range ids {
		if stored, ok := s.storedUsage(id); ok && !us[i].Newer(stored) {
			s.usageT.drop(id, stored)
			continue
		}
		raw, err := us[i].Marshal()
		if err != nil {
			return nil, err
		}
		items = append(items, [2][]byte{[]byte(id), raw})
		n++
	}
	b.AddUint16(uint16(n))
	for _, it := range items {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(it[0]) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(it[1]) })
	}
	return b.Bytes()
}

// ErrUsageBatch is wrapped by ParseUsageBatch's errors.
var ErrUsageBatch = errors.New("kms: malformed usage batch")

// ParseUsageBatch decodes a PendingUsage batch strictly: at most
// MaxUsageBatch usages, each of a valid key ID, each key once.
func ParseUsageBatch(in []byte) (map[string]keystore.Usage, error) {
	s := cryptobyte.String(in)
	var n uint16
	if !s.ReadUint16(&n) || n > MaxUsageBatch {
		return nil, fmt.Errorf("%w: count", ErrUsageBatch)
	}
	out := make(map[string]keystore.Usage, n)
	for range n {
		var id, raw cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&id) || !s.ReadUint16LengthPrefixed(&raw) || !keystore.ValidKeyID(string(id)) {
			return nil, fmt.Errorf("%w: item", ErrUsageBatch)
		}
		if _, dup := out[string(id)]; dup {
			return nil, fmt.Errorf("%w: key %s twice", ErrUsageBatch, id)
		}
		u, err := keystore.ParseUsage(raw)
		if err != nil || u.Operation == "" {
			return nil, fmt.Errorf("%w: usage of %s", ErrUsageBatch, id)
		}
		out[string(id)] = *u
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing bytes", ErrUsageBatch)
	}
	return out, nil
}

// MergeUsage commits the newest usage of each key among batches
// (PendingUsage's, from this host and its peers) as the keys' usage
// records, in one compare-and-swap entry, skipping keys the key store
// has a newer usage of or no longer has; the first call also records
// when the cluster began tracking (keystore.UsageSinceID). It is meant
// to run where the Store's proposals are served (the raft leader), one
// call at a time, and retries a compare-and-swap that lost a few times.
func (s *Service) MergeUsage(ctx context.Context, batches ...[]byte) error {
	newest := map[string]keystore.Usage{}
	for _, b := range batches {
		m, err := ParseUsageBatch(b)
		if err != nil {
			return err
		}
		for id, u := range m {
			if cur, ok := newest[id]; !ok || u.Newer(&cur) {
				newest[id] = u
			}
		}
	}
	ids := make([]string, 0, len(newest))
	for id := range newest {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var err error
	for range 8 {
		if err = s.mergeUsage(ctx, ids, newest); !errors.Is(err, ErrConflict) {
			break
		}
	}
	return err
}

func (s *Service) mergeUsage(ctx context.Context, ids []string, newest map[string]keystore.Usage) error {
	var rs []domain.Replacement
	if _, ok := s.store.Get(keystore.UsageSinceID); !ok {
		raw, err := (&keystore.Usage{Millis: s.started}).Marshal()
		if err != nil {
			return err
		}
		rs = append(rs, domain.Replacement{ID: keystore.UsageSinceID, New: raw})
	}
	var written []string
	for _, id := range ids {
		u := newest[id]
		if _, ok := s.store.Get(keystore.KeyRecordID(id)); !ok {
			continue // deleted since: no record outlives its key
		}
		old, _ := s.store.Get(keystore.UsageRecordID(id))
		if stored, ok := s.storedUsage(id); ok && !u.Newer(stored) {
			s.usageT.drop(id, stored)
			continue
		}
		raw, err := u.Marshal()
		if err != nil {
			return err
		}
		rs = append(rs, domain.Replacement{ID: keystore.UsageRecordID(id), Old: old, New: raw})
		written = append(written, id)
	}
	for len(rs) > 0 {
		n := min(len(rs), usageEntryMax)
		if err := s.store.Propose(ctx, rs[:n]...); err != nil {
			return err
		}
		rs = rs[n:]
	}
	for _, id := range written {
		u := newest[id]
		s.usageT.drop(id, &u)
	}
	return nil
}
