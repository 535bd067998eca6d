package kms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"slices"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/policy"
)

// Multi-Region keys (docs/protocol.md, Multi-Region keys): a key made with
// MultiRegion true has an mrk- key ID, which is the same in every region
// that holds a copy; one region's copy is the primary key, the others are
// replicas. Each region's record knows the primary's region and every
// region holding the key (keystore.MultiRegion); the KMS API shows them as
// the MultiRegionConfiguration of the key's metadata.

// newMultiRegionKeyID is a multi-Region key ID: "mrk-" and 32 lower case
// hex digits (16 random bytes).
func newMultiRegionKeyID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "mrk-" + hex.EncodeToString(b)
}

// Region is the region the Service answers for (Config.Region).
func (s *Service) Region() string { return s.cfg.Region }

// multiRegionKey is an entry of MultiRegionConfiguration.
type multiRegionKey struct {
	Arn    string `json:"Arn"`
	Region string `json:"Region"`
}

// multiRegionConfiguration is the AWS KMS API's MultiRegionConfiguration.
type multiRegionConfiguration struct {
	MultiRegionKeyType string           `json:"MultiRegionKeyType"` // PRIMARY or REPLICA
	PrimaryKey         *multiRegionKey  `json:"PrimaryKey"`
	ReplicaKeys        []multiRegionKey `json:"ReplicaKeys"`
}

// multiRegionConfigOf is k's MultiRegionConfiguration, nil for a
// single-Region key. ReplicaKeys lists every region holding the key but
// the primary's, in region order.
func multiRegionConfigOf(k *keystore.Key) *multiRegionConfiguration {
	mr := k.MultiRegion
	if mr == nil {
		return nil
	}
	c := &multiRegionConfiguration{MultiRegionKeyType: "REPLICA", ReplicaKeys: []multiRegionKey{},
		PrimaryKey: &multiRegionKey{Arn: k.ARNIn(mr.PrimaryRegion), Region: mr.PrimaryRegion}}
	if k.IsPrimary() {
		c.MultiRegionKeyType = "PRIMARY"
	}
	for _, r := range mr.Regions {
		if r != mr.PrimaryRegion {
			c.ReplicaKeys = append(c.ReplicaKeys, multiRegionKey{Arn: k.ARNIn(r), Region: r})
		}
	}
	return c
}

// Regions reaches the KMS of the other regions (the peer regions) that
// hold copies of multi-Region keys: another Trent cluster each, with its
// own domain, HSMs and hosts. The host implements it over mutual-TLS
// HTTPS between the clusters' hosts (package host, docs/protocol.md,
// Multi-Region keys); the receiving cluster's Service serves each call
// with AcceptReplica or AcceptPrimary. Errors a peer answers as a KMS
// exception are *kmsapi.Error values, passed on to the caller as they
// are; a peer that cannot be reached is a retryable *kmsapi.Error.
type Regions interface {
	// Peers lists the regions this cluster reaches.
	Peers() []string
	// Replicate asks region's cluster to create the replica rep.
	Replicate(ctx context.Context, region string, rep *Replica) (*ReplicaResult, error)
	// UpdatePrimary tells region's cluster that the primary key of a
	// multi-Region key moves (to it).
	UpdatePrimary(ctx context.Context, region string, up *PrimaryUpdate) error
	// SyncRotation gives region's replica of a multi-Region key the
	// primary's versions and rotation status (mrkrotation.go).
	SyncRotation(ctx context.Context, region string, sy *RotationSync) error
}

// Replica is what a primary key's region sends the region of a new
// replica: the key's shared properties, the replica's own ones from
// ReplicateKey, and the transport of its HBKs (hsmcmd.ExportReplica's),
// which only the destination's HSMs open.
type Replica struct {
	// Principal is the caller of ReplicateKey (the new key policy's
	// lockout safety check asks whether it may change the policy).
	Principal     kmsapi.Principal    `json:"principal"`
	KeyID         string              `json:"key_id"`
	Account       string              `json:"account"`
	KeySpec       string              `json:"key_spec"`
	KeyUsage      string              `json:"key_usage"`
	Origin        string              `json:"origin"`
	PrimaryRegion string              `json:"primary_region"`
	Regions       []string            `json:"regions"` // every region holding the key, the new one included
	Rotations     []keystore.Rotation `json:"rotations"`
	// The shared automatic rotation status (keystore.Key's).
	RotationEnabled      bool           `json:"rotation_enabled"`
	RotationPeriodDays   int            `json:"rotation_period_days"`
	NextRotation         int64          `json:"next_rotation"`
	OnDemandRotationDate int64          `json:"on_demand_rotation_date"`
	Policy               *string        `json:"policy"`
	Bypass               bool           `json:"bypass_policy_lockout_safety_check"`
	Description          *string        `json:"description"`
	Tags                 []keystore.Tag `json:"tags"`
	Transport            []byte         `json:"transport"`
}

// ReplicaResult is the replica's metadata as its region committed it.
type ReplicaResult struct {
	Key keystore.Key `json:"key"`
}

// PrimaryUpdate moves the primary key of multi-Region key KeyID to
// PrimaryRegion; Regions are every region holding the key.
type PrimaryUpdate struct {
	KeyID         string   `json:"key_id"`
	Account       string   `json:"account"`
	PrimaryRegion string   `json:"primary_region"`
	Regions       []string `json:"regions"`
}

// accountIDRE is an AWS account ID.
var accountIDRE = regexp.MustCompile(`^[0-9]{12}$`)

// regionRE is an AWS Region name (the API's ReplicaRegion and
// PrimaryRegion pattern).
var regionRE = regexp.MustCompile(`^([a-z]+-){2,3}\d+$`)

func checkRegion(field, r string) error {
	if len(r) < 1 || len(r) > 32 || !regionRE.MatchString(r) {
		return validation(field, `Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\d+$`, r)
	}
	return nil
}

// peer returns the Regions if region is one of its peers, else
// UnsupportedOperationException (a region this cluster cannot reach is
// not an AWS Region it serves).
func (s *Service) peer(region string) (Regions, error) {
	if s.cfg.Regions == nil || !slices.Contains(s.cfg.Regions.Peers(), region) {
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "this Trent cluster (%s) has no peer region %s", s.region(), region)
	}
	return s.cfg.Regions, nil
}

// multiRegionPrimary refuses a key that is not a multi-Region primary key.
func multiRegionPrimary(k *key) error {
	switch {
	case k.rec.Key.MultiRegion == nil:
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s is not a multi-Region key", k.rec.Key.ARN())
	case !k.rec.Key.IsPrimary():
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s is not a multi-Region primary key", k.rec.Key.ARN())
	}
	return nil
}

type replicateKeyRequest struct {
	KeyId                          string  `json:"KeyId"`
	ReplicaRegion                  *string `json:"ReplicaRegion"`
	Policy                         *string `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
	Description                    *string `json:"Description"`
	Tags                           tagList `json:"Tags"`
}

type replicateKeyResponse struct {
	ReplicaKeyMetadata *keyMetadata   `json:"ReplicaKeyMetadata"`
	ReplicaPolicy      string         `json:"ReplicaPolicy"`
	ReplicaTags        []keystore.Tag `json:"ReplicaTags"`
}

// replicateKey makes a replica of a multi-Region primary key in another
// region: this region's HSM wraps the key's HBKs for the destination
// region's HSMs (hsmcmd.ExportReplica), the destination commits the
// replica (AcceptReplica there), and then this region records it. The
// answer comes once the replica exists: its KeyState is the replica's
// (Enabled), not AWS's transient Creating.
func (s *Service) replicateKey(ctx context.Context, p kmsapi.Principal, req *replicateKeyRequest) (*replicateKeyResponse, error) {
	if req.ReplicaRegion == nil {
		return nil, validation("replicaRegion", "Member must not be null", "null")
	}
	to := *req.ReplicaRegion
	if err := checkRegion("replicaRegion", to); err != nil {
		return nil, err
	}
	if req.Description != nil && len(*req.Description) > maxDescription {
		return nil, validation("description", "Member must have length less than or equal to 8192", "…")
	}
	if req.Policy != nil && (len(*req.Policy) < 1 || len(*req.Policy) > policy.MaxDocument) {
		return nil, validation("policy", "Member must have length between 1 and 32768", "…")
	}
	if err := checkTags(req.Tags); err != nil {
		return nil, err
	}
	if _, err := mergeTags(nil, req.Tags); err != nil {
		return nil, err
	}
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "ReplicateKey", state: stateNotPending, check: multiRegionPrimary,
		cond: fixedConditions(map[string][]string{"kms:ReplicaRegion": {to}})})
	if err != nil {
		return nil, err
	}
	if to == s.region() {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "%s is the primary key's own region", to)
	}
	if slices.Contains(k.rec.Key.MultiRegion.Regions, to) {
		return nil, kmsapi.Errorf("AlreadyExistsException", "%s already has a replica in %s", k.rec.Key.ARN(), to)
	}
	peers, err := s.peer(to)
	if err != nil {
		return nil, err
	}
	// The committed versions only: a pending one reaches the new replica
	// with the rest of its rotation's push, which waits for this region
	// to be recorded (mrkrotation.go).
	ex, err := call(ctx, s, hsmcmd.ExportReplicaRequest{Region: to, KeyID: k.rec.Key.KeyID, Tokens: k.rec.Committed()}, hsmcmd.ParseExportReplicaResponse)
	if err != nil {
		return nil, replicaHSMError(s, "ExportReplica", err)
	}
	regions := addRegion(k.rec.Key.MultiRegion.Regions, to)
	rep := &Replica{Principal: p, KeyID: k.rec.Key.KeyID, Account: k.rec.Key.Account, KeySpec: k.rec.Key.KeySpec,
		KeyUsage: k.rec.Key.KeyUsage, Origin: k.rec.Key.Origin, PrimaryRegion: s.region(), Regions: regions,
		Rotations: k.rec.Key.Rotations, RotationEnabled: k.rec.Key.RotationEnabled, RotationPeriodDays: k.rec.Key.RotationPeriodDays,
		NextRotation: k.rec.Key.NextRotation, OnDemandRotationDate: k.rec.Key.OnDemandRotationDate, Policy: req.Policy, Bypass: req.BypassPolicyLockoutSafetyCheck,
		Description: req.Description, Tags: req.Tags, Transport: ex.Transport}
	res, err := peers.Replicate(ctx, to, rep)
	var ke *kmsapi.Error
	if errors.As(err, &ke) && ke.Type == "AlreadyExistsException" {
		// The replica exists (an earlier ReplicateKey whose answer was
		// lost): record it here too, and say so.
		if _, uerr := s.recordRegion(ctx, k.rec.Key.KeyID, to); uerr != nil {
			return nil, uerr
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.recordRegion(ctx, k.rec.Key.KeyID, to); err != nil {
		return nil, err
	}
	return &replicateKeyResponse{ReplicaKeyMetadata: metadata(&res.Key), ReplicaPolicy: res.Key.Policy, ReplicaTags: orEmpty(res.Key.Tags)}, nil
}

// replicaHSMError is the answer when an HSM does not make or take a
// replica transport: a refusal means the two domains do not trust each
// other as peer regions (or the transport was not made for this key and
// these domains), which an operator's SetPeerRegion commands fix; any
// other failure is the HSMs not answering.
func replicaHSMError(s *Service, op string, err error) error {
	if errors.Is(err, ErrRefused) {
		s.log.Info(op, "err", err)
		return &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500,
			Message: "the HSMs refused the multi-Region key transport: the two regions' domains must record each other, with their current members, as peer regions (SetPeerRegion)"}
	}
	return internal(s, op, err)
}

// addRegion is regions with r added, sorted.
func addRegion(regions []string, r string) []string {
	out := slices.Clone(regions)
	if !slices.Contains(out, r) {
		out = append(out, r)
		slices.Sort(out)
	}
	return out
}

// recordRegion adds region to the regions of multi-Region key id here.
func (s *Service) recordRegion(ctx context.Context, id, region string) (*keystore.Record, error) {
	return s.updateKey(ctx, id, func(r *keystore.Record) error {
		if r.Key.MultiRegion == nil {
			return kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s is not a multi-Region key", r.Key.ARN())
		}
		r.Key.MultiRegion.Regions = addRegion(r.Key.MultiRegion.Regions, region)
		return nil
	})
}

// AcceptReplica serves a peer region's Replicate (Regions) on this
// region's raft leader: from is the peer region the request came from,
// as its TLS identity proved. Only the primary key's region replicates
// it. This region's HSM opens the transport (hsmcmd.ImportReplica: it
// checks that the sender is a member of peer region from in this
// domain's state) and the replica is committed with its own policy,
// description and tags; an existing key of that ID is
// AlreadyExistsException.
func (s *Service) AcceptReplica(ctx context.Context, from string, rep *Replica) (*ReplicaResult, error) {
	if err := s.store.Sync(ctx); err != nil {
		return nil, err
	}
	switch {
	case rep.PrimaryRegion != from:
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "only the primary key's region (%s) replicates it, not %s", rep.PrimaryRegion, from)
	case !keystore.IsMultiRegionKeyID(rep.KeyID) || rep.KeySpec != symmetricDefault || rep.KeyUsage != usageEncrypt:
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "this Trent build replicates SYMMETRIC_DEFAULT multi-Region keys only")
	case !slices.Contains(rep.Regions, s.region()) || !slices.Contains(rep.Regions, from):
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "the replica's regions do not name %s and %s", s.region(), from)
	case !accountIDRE.MatchString(rep.Account):
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "the replica's account is not an account ID")
	}
	if old, err := s.loadKey(rep.KeyID); err != nil || old != nil {
		if err != nil {
			return nil, err
		}
		return nil, kmsapi.Errorf("AlreadyExistsException", "%s already exists in %s", rep.KeyID, s.region())
	}
	if rep.Description != nil && len(*rep.Description) > maxDescription {
		return nil, validation("description", "Member must have length less than or equal to 8192", "…")
	}
	if err := checkTags(rep.Tags); err != nil {
		return nil, err
	}
	tags, err := mergeTags(nil, rep.Tags)
	if err != nil {
		return nil, err
	}
	k := keystore.Key{KeyID: rep.KeyID, Account: rep.Account, Region: s.region(), Created: s.now().Unix(),
		State: keystore.StateEnabled, KeySpec: rep.KeySpec, KeyUsage: rep.KeyUsage, Origin: rep.Origin,
		Policy: string(policy.Default(rep.Account)), Tags: tags, Rotations: slices.Clone(rep.Rotations),
		MultiRegion:     &keystore.MultiRegion{PrimaryRegion: rep.PrimaryRegion, Regions: slices.Sorted(slices.Values(rep.Regions))},
		RotationEnabled: rep.RotationEnabled, RotationPeriodDays: rep.RotationPeriodDays,
		NextRotation: rep.NextRotation, OnDemandRotationDate: rep.OnDemandRotationDate}
	if k.RotationEnabled && (k.RotationPeriodDays < minRotationPeriod || k.RotationPeriodDays > maxRotationPeriod) {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "the replica's rotation period is out of range")
	}
	if rep.Description != nil {
		k.Description = *rep.Description
	}
	if rep.Policy != nil {
		// The caller's later PutKeyPolicy on the replica is addressed to
		// this region (aws:RequestedRegion).
		p := rep.Principal
		p.Region = s.region()
		if _, err := s.parsePolicy(p, *rep.Policy, &k, rep.Bypass); err != nil {
			return nil, err
		}
		k.Policy = *rep.Policy
	}
	im, err := call(ctx, s, hsmcmd.ImportReplicaRequest{Region: from, KeyID: rep.KeyID, Transport: rep.Transport}, hsmcmd.ParseImportReplicaResponse)
	if err != nil {
		return nil, replicaHSMError(s, "ImportReplica", err)
	}
	rec := &keystore.Record{Key: k, Tokens: im.Tokens}
	raw, err := rec.Marshal()
	if errors.Is(err, keystore.ErrTooLarge) {
		return nil, recordTooLarge(err)
	}
	if err != nil {
		// A transport whose versions do not match the key's rotations.
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "the replica does not encode: %v", err)
	}
	err = s.store.Propose(ctx, domain.Replacement{ID: keystore.KeyRecordID(rep.KeyID), New: raw})
	if errors.Is(err, ErrConflict) {
		return nil, kmsapi.Errorf("AlreadyExistsException", "%s already exists in %s", rep.KeyID, s.region())
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("replica created", "key", rep.KeyID, "primary", from)
	return &ReplicaResult{Key: rec.Key}, nil
}

type updatePrimaryRegionRequest struct {
	KeyId         string  `json:"KeyId"`
	PrimaryRegion *string `json:"PrimaryRegion"`
}

// updatePrimaryRegion moves the primary key to the replica in
// PrimaryRegion: that region's copy becomes the primary (AcceptPrimary
// there), then this one a replica; a rotation still pending completes
// first. A retry after a failure between the
// two finds the other region already primary and completes.
func (s *Service) updatePrimaryRegion(ctx context.Context, p kmsapi.Principal, req *updatePrimaryRegionRequest) (*emptyResponse, error) {
	if req.PrimaryRegion == nil {
		return nil, validation("primaryRegion", "Member must not be null", "null")
	}
	to := *req.PrimaryRegion
	if err := checkRegion("primaryRegion", to); err != nil {
		return nil, err
	}
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "UpdatePrimaryRegion", state: stateNotPending, check: multiRegionPrimary,
		cond: fixedConditions(map[string][]string{"kms:PrimaryRegion": {to}})})
	if err != nil {
		return nil, err
	}
	if to == s.region() {
		return empty, nil // the primary is there already
	}
	if !slices.Contains(k.rec.Key.MultiRegion.Regions, to) {
		return nil, errNotFound("%s has no replica in %s", k.rec.Key.ARN(), to)
	}
	peers, err := s.peer(to)
	if err != nil {
		return nil, err
	}
	// A rotation still pending here completes first: the new primary
	// must hold every version and the rotation status.
	if err := s.syncReplicas(ctx, k.rec.Key.KeyID); err != nil {
		return nil, err
	}
	up := &PrimaryUpdate{KeyID: k.rec.Key.KeyID, Account: k.rec.Key.Account, PrimaryRegion: to, Regions: k.rec.Key.MultiRegion.Regions}
	if err := peers.UpdatePrimary(ctx, to, up); err != nil {
		return nil, err
	}
	_, err = s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if r.Key.MultiRegion == nil {
			return kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s is not a multi-Region key", r.Key.ARN())
		}
		r.Key.MultiRegion.PrimaryRegion = to
		return nil
	})
	if err != nil {
		return nil, err
	}
	return empty, nil
}

// AcceptPrimary serves a peer region's UpdatePrimary on this region's
// raft leader: from is the calling region (its TLS identity), which must
// be the key's primary region as this region knows it, or the move must
// have happened already (a retry).
func (s *Service) AcceptPrimary(ctx context.Context, from string, up *PrimaryUpdate) error {
	if err := s.store.Sync(ctx); err != nil {
		return err
	}
	if !slices.Contains(up.Regions, s.region()) || !slices.Contains(up.Regions, up.PrimaryRegion) {
		return kmsapi.Errorf(kmsapi.ValidationException, "the key's regions do not name %s", s.region())
	}
	k, err := s.loadKey(up.KeyID)
	if err != nil {
		return err
	}
	if k == nil || k.rec.Key.Account != up.Account || k.rec.Key.MultiRegion == nil {
		return errNotFound("Key '%s' does not exist", s.keyARN(up.Account, up.KeyID))
	}
	_, err = s.updateKey(ctx, up.KeyID, func(r *keystore.Record) error {
		mr := r.Key.MultiRegion
		if mr.PrimaryRegion != from && mr.PrimaryRegion != up.PrimaryRegion {
			return kmsapi.Errorf(kmsapi.UnsupportedOperation, "the primary key of %s is in %s, not %s", r.Key.KeyID, mr.PrimaryRegion, from)
		}
		mr.PrimaryRegion = up.PrimaryRegion
		mr.Regions = slices.Sorted(slices.Values(up.Regions))
		return nil
	})
	return err
}
