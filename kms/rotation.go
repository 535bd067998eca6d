package kms

import (
	"context"
	"fmt"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Key rotation (a new HBK per rotation; old ones stay for decryption) and
// the leader's key maintenance: automatic rotations when due and the
// deletion of keys whose pending window has passed.

// rotatable refuses rotation of asymmetric and HMAC keys, as KMS does.
func rotatable(k *key) error {
	if k.rec.Key.KeySpec != symmetricDefault {
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s keys cannot be rotated", k.rec.Key.KeySpec)
	}
	if k.rec.Key.Origin == keystore.OriginExternal {
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "keys with imported key material cannot be rotated by this Trent build")
	}
	if inStore(k) {
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "keys in a custom key store cannot be rotated")
	}
	return rotationManagedOnPrimary(k)
}

// rotateKey adds a key version (a new HBK) to key id. A multi-Region
// primary key's new version is pending until every replica region holds
// it (mrkrotation.go): an earlier pending rotation is completed first,
// and a push that fails is answered with a retryable error, the new
// version staying pending.
func (s *Service) rotateKey(ctx context.Context, id, typ string) error {
	if err := s.syncReplicas(ctx, id); err != nil {
		return err
	}
	tok, err := s.createHBK(ctx, id)
	if err != nil {
		return err
	}
	r, err := s.updateKey(ctx, id, func(r *keystore.Record) error {
		if len(r.Tokens) >= keystore.MaxVersions {
			return kmsapi.Errorf("LimitExceededException", "the key has %d versions", len(r.Tokens))
		}
		now := s.now().Unix()
		rot := keystore.Rotation{Date: now, Type: typ}
		r.Tokens = append(r.Tokens, tok)
		switch {
		case r.Key.IsPrimary() && r.Key.PendingRotation != nil:
			return &kmsapi.Error{Type: "ConflictException", Message: "a rotation of the key is already in progress; retry"}
		case r.Key.IsPrimary():
			r.Key.PendingRotation, r.Key.MultiRegion.Unsynced = &rot, true
		default:
			r.Key.Rotations = append(r.Key.Rotations, rot)
		}
		if typ == "ON_DEMAND" {
			r.Key.OnDemandRotationDate = now
		} else {
			r.Key.NextRotation = s.now().Add(time.Duration(r.Key.RotationPeriodDays) * day).Unix()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if r.Key.IsPrimary() {
		return s.syncReplicas(ctx, id)
	}
	return nil
}

// KeyMaintenance deletes every key whose pending window has passed (with
// its aliases and grants), pushes again what a multi-Region primary key's
// replica regions have not taken (mrkrotation.go; a region still
// unreachable is logged, not an error) and rotates every key whose
// automatic rotation is due (a replica rotates with its primary only). It returns how many keys it deleted and rotated. It is meant
// to run where the Store's proposals are served (the raft leader), one
// call at a time.
func (s *Service) KeyMaintenance(ctx context.Context) (deleted, rotated int, err error) {
	now := s.now().Unix()
	type target struct {
		id, account string
		raw         []byte
	}
	var del []target
	var rot, expired, sync []string
	s.store.Records("k/", func(id string, raw []byte) bool {
		if !keystore.IsKeyRecord(raw) {
			return true
		}
		r, perr := keystore.ParseRecord(raw)
		if perr != nil {
			return true
		}
		switch {
		case r.Key.State == keystore.StatePendingDeletion && r.Key.DeletionDate <= now:
			del = append(del, target{r.Key.KeyID, r.Key.Account, raw})
		case needsSync(r):
			sync = append(sync, r.Key.KeyID)
		case r.Key.State == keystore.StateEnabled && r.Key.RotationEnabled && r.Key.NextRotation <= now &&
			(r.Key.MultiRegion == nil || r.Key.IsPrimary()): // a replica rotates with its primary
			rot = append(rot, r.Key.KeyID)
		case len(r.Tokens) > 0 && r.Key.State != keystore.StatePendingDeletion && materialExpired(&r.Key, s.now()):
			expired = append(expired, r.Key.KeyID)
		}
		return true
	})
	for _, t := range del {
		rs := []domain.Replacement{{ID: keystore.KeyRecordID(t.id), Old: t.raw}}
		for _, a := range s.accountAliases(t.account) {
			if a.TargetKeyID == t.id {
				raw, _ := s.store.Get(keystore.AliasRecordID(t.account, a.Name))
				rs = append(rs, domain.Replacement{ID: keystore.AliasRecordID(t.account, a.Name), Old: raw})
			}
		}
		rs = append(rs, s.keyGrantRemovals(t.id)...)
		if raw, ok := s.store.Get(keystore.UsageRecordID(t.id)); ok {
			rs = append(rs, domain.Replacement{ID: keystore.UsageRecordID(t.id), Old: raw})
		}
		if err := s.store.Propose(ctx, rs...); err != nil {
			return deleted, rotated, err
		}
		s.log.Info("key deleted", "key", t.id)
		deleted++
	}
	for _, id := range sync {
		// A multi-Region primary key's pending rotation or rotation
		// status: a peer region still unreachable is tried again at the
		// next run, without holding up the other keys.
		if err := s.syncReplicas(ctx, id); err != nil {
			s.log.Info("multi-Region key still not synchronized", "key", id, "err", err)
		}
	}
	for _, id := range rot {
		if err := s.rotateKey(ctx, id, "AUTOMATIC"); err != nil {
			if keystore.IsMultiRegionKeyID(id) {
				s.log.Info("multi-Region key rotation pending", "key", id, "err", err)
				continue
			}
			return deleted, rotated, err
		}
		rotated++
	}
	for _, id := range expired {
		_, err := s.updateKey(ctx, id, func(r *keystore.Record) error {
			if len(r.Tokens) > 0 && r.Key.State != keystore.StatePendingDeletion && materialExpired(&r.Key, s.now()) {
				dropMaterial(r)
			}
			return nil
		})
		if err != nil {
			return deleted, rotated, err
		}
		s.log.Info("imported key material expired", "key", id)
	}
	return deleted, rotated, nil
}

type enableKeyRotationRequest struct {
	KeyId                string `json:"KeyId"`
	RotationPeriodInDays *int   `json:"RotationPeriodInDays"`
}

func (s *Service) enableKeyRotation(ctx context.Context, p kmsapi.Principal, req *enableKeyRotationRequest) (*emptyResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "EnableKeyRotation", state: stateAny})
	if err != nil {
		return nil, err
	}
	if err := rotatable(k); err != nil {
		return nil, err
	}
	days := defaultRotation
	if req.RotationPeriodInDays != nil {
		days = *req.RotationPeriodInDays
	}
	if days < minRotationPeriod || days > maxRotationPeriod {
		return nil, validation("rotationPeriodInDays", "Member must have value between 90 and 2560", days)
	}
	_, err = s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if err := s.usable(&key{rec: r}); err != nil {
			return err
		}
		r.Key.RotationEnabled, r.Key.RotationPeriodDays = true, days
		r.Key.NextRotation = s.now().Add(time.Duration(days) * day).Unix()
		markUnsynced(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.syncStatus(ctx, k)
	return empty, nil
}

// markUnsynced marks a multi-Region primary key's rotation status as not
// yet in every replica region.
func markUnsynced(r *keystore.Record) {
	if r.Key.IsPrimary() && len(r.Key.MultiRegion.Regions) > 1 {
		r.Key.MultiRegion.Unsynced = true
	}
}

// syncStatus pushes a multi-Region primary key's changed rotation status
// to its replica regions. The status is the primary's once committed
// here: a region that does not take it now gets it from the key
// maintenance, so the call that changed it succeeds.
func (s *Service) syncStatus(ctx context.Context, k *key) {
	if !k.rec.Key.IsPrimary() {
		return
	}
	if err := s.syncReplicas(ctx, k.rec.Key.KeyID); err != nil {
		s.log.Info("multi-Region rotation status not yet in every region", "key", k.rec.Key.KeyID, "err", err)
	}
}

func (s *Service) disableKeyRotation(ctx context.Context, p kmsapi.Principal, req *keyRequest) (*emptyResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "DisableKeyRotation", state: stateAny})
	if err != nil {
		return nil, err
	}
	if err := rotationManagedOnPrimary(k); err != nil {
		return nil, err
	}
	_, err = s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if err := s.usable(&key{rec: r}); err != nil {
			return err
		}
		r.Key.RotationEnabled, r.Key.RotationPeriodDays, r.Key.NextRotation = false, 0, 0
		markUnsynced(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.syncStatus(ctx, k)
	return empty, nil
}

func (s *Service) getKeyRotationStatus(ctx context.Context, p kmsapi.Principal, req *keyRequest) (*getKeyRotationStatusResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "GetKeyRotationStatus", state: stateNotPending})
	if err != nil {
		return nil, err
	}
	out := &getKeyRotationStatusResponse{KeyRotationEnabled: k.rec.Key.RotationEnabled, KeyId: k.rec.Key.ARN()}
	if k.rec.Key.RotationEnabled {
		days := k.rec.Key.RotationPeriodDays
		out.RotationPeriodInDays, out.NextRotationDate = &days, unix(k.rec.Key.NextRotation)
	}
	out.OnDemandRotationStartDate = unix(k.rec.Key.OnDemandRotationDate)
	return out, nil
}

func (s *Service) rotateKeyOnDemand(ctx context.Context, p kmsapi.Principal, req *keyRequest) (*keyIDResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "RotateKeyOnDemand"})
	if err != nil {
		return nil, err
	}
	if err := rotatable(k); err != nil {
		return nil, err
	}
	if pr := k.rec.Key.PendingRotation; pr != nil && pr.Type == "ON_DEMAND" {
		// The retry of a RotateKeyOnDemand whose push failed: it
		// completes that rotation rather than starting another.
		if err := s.syncReplicas(ctx, k.rec.Key.KeyID); err != nil {
			return nil, err
		}
		return &keyIDResponse{KeyId: k.rec.Key.ARN()}, nil
	}
	n := 0
	for _, r := range k.rec.Key.Rotations {
		if r.Type == "ON_DEMAND" {
			n++
		}
	}
	if n >= maxOnDemand {
		return nil, kmsapi.Errorf("LimitExceededException", "The key has reached the limit of %d on-demand rotations", maxOnDemand)
	}
	if err := s.rotateKey(ctx, k.rec.Key.KeyID, "ON_DEMAND"); err != nil {
		return nil, err
	}
	return &keyIDResponse{KeyId: k.rec.Key.ARN()}, nil
}

type listKeyRotationsRequest struct {
	KeyId  string  `json:"KeyId"`
	Limit  *int    `json:"Limit"`
	Marker *string `json:"Marker"`
}

func (s *Service) listKeyRotations(ctx context.Context, p kmsapi.Principal, req *listKeyRotationsRequest) (*listKeyRotationsResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "ListKeyRotations", state: stateNotPending})
	if err != nil {
		return nil, err
	}
	var all []rotationEntry
	for i, r := range k.rec.Key.Rotations {
		all = append(all, rotationEntry{KeyId: k.rec.Key.ARN(), RotationDate: unix(r.Date), RotationType: r.Type, seq: fmt.Sprintf("%05d", i)})
	}
	page, next, err := paginate(all, func(r rotationEntry) string { return r.seq }, req.Limit, req.Marker, 1000, 100)
	if err != nil {
		return nil, err
	}
	return &listKeyRotationsResponse{Rotations: orEmpty(page), page: pageOf(next)}, nil
}
