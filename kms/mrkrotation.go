package kms

import (
	"bytes"
	"context"
	"errors"
	"slices"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Rotation of multi-Region keys (docs/protocol.md, Multi-Region keys):
// related multi-Region keys share their key material and their rotation,
// which only the primary key's region manages (EnableKeyRotation,
// DisableKeyRotation and RotateKeyOnDemand on a replica are
// UnsupportedOperationException). A rotation of a primary key makes the
// new HBK version pending: decrypt-capable, never current, so no region
// encrypts under it yet. The primary's region then pushes the key's
// versions and rotation status to every replica region (RotationSync,
// over the peer-region path, the HBKs in an ExportReplica transport),
// each of which takes the new version as current at once; only when every
// replica region has answered does the version become current on the
// primary. A push that fails leaves the rotation pending (the primary
// keeps encrypting under the previous version) and the key maintenance
// pushes again; the call that made it answers a retryable
// KMSInternalException. So no region ever encrypts under a version
// another region's copy cannot decrypt.

// RotationSync is what a primary key's region sends each replica region
// when the key's shared rotation state changes: every version after the
// first (a pending one included, which the replica takes as current), the
// automatic rotation status, and the transport of all the key's HBKs
// (hsmcmd.ExportReplica's), which only the destination's HSMs open.
type RotationSync struct {
	KeyID                string              `json:"key_id"`
	Account              string              `json:"account"`
	Rotations            []keystore.Rotation `json:"rotations"`
	RotationEnabled      bool                `json:"rotation_enabled"`
	RotationPeriodDays   int                 `json:"rotation_period_days"`
	NextRotation         int64               `json:"next_rotation"`
	OnDemandRotationDate int64               `json:"on_demand_rotation_date"`
	Transport            []byte              `json:"transport"`
}

// rotationStatus is the automatic rotation status the regions of a
// multi-Region key share.
type rotationStatus struct {
	enabled  bool
	days     int
	next, od int64
}

func statusOf(k *keystore.Key) rotationStatus {
	return rotationStatus{k.RotationEnabled, k.RotationPeriodDays, k.NextRotation, k.OnDemandRotationDate}
}

// syncOf is the RotationSync of primary key record r (without its
// transport): the pending version, if any, as the last rotation.
func syncOf(r *keystore.Record) *RotationSync {
	rots := slices.Clone(r.Key.Rotations)
	if r.Key.PendingRotation != nil {
		rots = append(rots, *r.Key.PendingRotation)
	}
	return &RotationSync{KeyID: r.Key.KeyID, Account: r.Key.Account, Rotations: rots,
		RotationEnabled: r.Key.RotationEnabled, RotationPeriodDays: r.Key.RotationPeriodDays,
		NextRotation: r.Key.NextRotation, OnDemandRotationDate: r.Key.OnDemandRotationDate}
}

// rotationManagedOnPrimary refuses a rotation call on a multi-Region
// replica key.
func rotationManagedOnPrimary(k *key) error {
	if k.rec.Key.MultiRegion != nil && !k.rec.Key.IsPrimary() {
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s is a multi-Region replica key: its rotation is managed on its primary key in %s",
			k.rec.Key.ARN(), k.rec.Key.MultiRegion.PrimaryRegion)
	}
	return nil
}

// needsSync reports whether primary key record r has shared rotation
// state that not every replica region holds yet.
func needsSync(r *keystore.Record) bool {
	return r.Key.IsPrimary() && (r.Key.PendingRotation != nil || r.Key.MultiRegion.Unsynced)
}

// errPending is the answer when a multi-Region key's new version or
// rotation status has not reached every replica region: retryable.
func errPending(region string, cause error) error {
	msg := "the peer region did not take the multi-Region key's rotation"
	var ke *kmsapi.Error
	if errors.As(cause, &ke) {
		msg += " (" + ke.Type + ": " + ke.Message + ")"
	}
	return &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500, Message: "region " + region + ": " + msg +
		"; the new key version stays pending (ciphertexts are made under the previous one) and is pushed again by the key maintenance; retry"}
}

// syncReplicas pushes primary key id's shared rotation state to every
// replica region; when all have taken it, a pending version becomes
// current here and the key is no longer Unsynced. It does nothing for a
// key that is not a primary key needing it. A replica region that no
// longer holds the key (NotFoundException) needs nothing.
func (s *Service) syncReplicas(ctx context.Context, id string) error {
	k, err := s.loadKey(id)
	if err != nil {
		return err
	}
	if k == nil || !needsSync(k.rec) {
		return nil
	}
	rec := k.rec
	sy := syncOf(rec)
	regions := slices.Clone(rec.Key.MultiRegion.Regions)
	for _, to := range regions {
		if to == s.region() {
			continue
		}
		if err := s.pushRotation(ctx, rec, to, sy); err != nil {
			s.log.Info("multi-Region rotation push", "key", id, "region", to, "err", err)
			return errPending(to, err)
		}
	}
	_, err = s.updateKey(ctx, id, func(r *keystore.Record) error {
		if !needsSync(r) {
			return nil // another call completed it
		}
		if !slices.Equal(r.Key.MultiRegion.Regions, regions) || len(r.Tokens) != len(rec.Tokens) || len(r.Key.Rotations) != len(rec.Key.Rotations) {
			return &kmsapi.Error{Type: "ConflictException", Message: "the multi-Region key changed during its rotation's push; retry"}
		}
		if r.Key.PendingRotation != nil {
			r.Key.Rotations = append(r.Key.Rotations, *r.Key.PendingRotation)
			r.Key.PendingRotation = nil
		}
		if statusOf(&r.Key) == statusOf(&rec.Key) {
			r.Key.MultiRegion.Unsynced = false
		}
		return nil
	})
	if err == nil && rec.Key.PendingRotation != nil {
		s.log.Info("multi-Region rotation complete", "key", id, "regions", regions)
	}
	return err
}

// pushRotation sends sy, with a transport of rec's HBKs (the pending one
// included) for region to's HSMs, to region to.
func (s *Service) pushRotation(ctx context.Context, rec *keystore.Record, to string, sy *RotationSync) error {
	peers, err := s.peer(to) // errPending makes its refusal a retryable answer
	if err != nil {
		return err
	}
	ex, err := call(ctx, s, hsmcmd.ExportReplicaRequest{Region: to, KeyID: rec.Key.KeyID, Tokens: rec.Tokens}, hsmcmd.ParseExportReplicaResponse)
	if err != nil {
		return replicaHSMError(s, "ExportReplica", err)
	}
	out := *sy
	out.Transport = ex.Transport
	err = peers.SyncRotation(ctx, to, &out)
	var ke *kmsapi.Error
	if errors.As(err, &ke) && ke.Type == "NotFoundException" {
		s.log.Info("multi-Region rotation push: the replica no longer exists", "key", rec.Key.KeyID, "region", to)
		return nil
	}
	return err
}

// hbkIDs are the HBK IDs of tokens, nil if one does not parse.
func hbkIDs(tokens [][]byte) [][hbk.IDSize]byte {
	var out [][hbk.IDSize]byte
	for _, t := range tokens {
		tok, err := hbk.ParseToken(t)
		if err != nil {
			return nil
		}
		out = append(out, tok.HBKID)
	}
	return out
}

// AcceptRotation serves a peer region's SyncRotation (Regions) on this
// region's raft leader: from is the calling region (its TLS identity),
// which must hold the key's primary as this region knows it. This
// region's HSM opens the transport (hsmcmd.ImportReplica) and the
// replica takes its versions, the last one current, and the rotation
// status. The versions must extend the replica's own (same HBK IDs,
// oldest first): a replica never loses a version. A repeated push is
// served again, with the same result.
func (s *Service) AcceptRotation(ctx context.Context, from string, sy *RotationSync) error {
	if err := s.store.Sync(ctx); err != nil {
		return err
	}
	switch {
	case !keystore.IsMultiRegionKeyID(sy.KeyID) || !accountIDRE.MatchString(sy.Account):
		return kmsapi.Errorf(kmsapi.ValidationException, "the rotation names no multi-Region key of an account")
	case len(sy.Rotations)+1 > keystore.MaxVersions:
		return kmsapi.Errorf(kmsapi.ValidationException, "the rotation has %d versions", len(sy.Rotations)+1)
	case sy.RotationEnabled && (sy.RotationPeriodDays < minRotationPeriod || sy.RotationPeriodDays > maxRotationPeriod):
		return kmsapi.Errorf(kmsapi.ValidationException, "the rotation period is out of range")
	}
	k, err := s.loadKey(sy.KeyID)
	if err != nil {
		return err
	}
	if k == nil || k.rec.Key.Account != sy.Account || k.rec.Key.MultiRegion == nil {
		return errNotFound("Key '%s' does not exist", s.keyARN(sy.Account, sy.KeyID))
	}
	if p := k.rec.Key.MultiRegion.PrimaryRegion; p != from {
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "the primary key of %s is in %s, not %s", sy.KeyID, p, from)
	}
	im, err := call(ctx, s, hsmcmd.ImportReplicaRequest{Region: from, KeyID: sy.KeyID, Transport: sy.Transport}, hsmcmd.ParseImportReplicaResponse)
	if err != nil {
		return replicaHSMError(s, "ImportReplica", err)
	}
	ids := hbkIDs(im.Tokens)
	if len(ids) != len(sy.Rotations)+1 {
		return kmsapi.Errorf(kmsapi.ValidationException, "the transport holds %d versions for %d rotations", len(im.Tokens), len(sy.Rotations))
	}
	before := 0
	_, err = s.updateKey(ctx, sy.KeyID, func(r *keystore.Record) error {
		if r.Key.MultiRegion == nil || r.Key.MultiRegion.PrimaryRegion != from {
			return kmsapi.Errorf(kmsapi.UnsupportedOperation, "the primary key of %s is not in %s", sy.KeyID, from)
		}
		// A version pending here (a former primary's, never pushed to
		// every region, so never current anywhere the new primary's
		// versions do not reach) gives way to the primary's.
		have := hbkIDs(r.Committed())
		if have == nil || len(have) > len(ids) || !slices.EqualFunc(have, ids[:len(have)], func(a, b [hbk.IDSize]byte) bool { return bytes.Equal(a[:], b[:]) }) {
			return kmsapi.Errorf(kmsapi.ValidationException, "the pushed versions of %s do not extend this region's", sy.KeyID)
		}
		before = len(have)
		r.Tokens = slices.Clone(im.Tokens)
		r.Key.Rotations, r.Key.PendingRotation = slices.Clone(sy.Rotations), nil
		r.Key.MultiRegion.Unsynced = false
		r.Key.RotationEnabled, r.Key.RotationPeriodDays = sy.RotationEnabled, sy.RotationPeriodDays
		r.Key.NextRotation, r.Key.OnDemandRotationDate = sy.NextRotation, sy.OnDemandRotationDate
		return nil
	})
	if err != nil {
		return err
	}
	if before < len(ids) {
		s.log.Info("multi-Region key rotated from its primary", "key", sy.KeyID, "primary", from, "versions", len(ids))
	}
	return nil
}
