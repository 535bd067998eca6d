package kms

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/policy"
)

// Key management operations of the KMS API for SYMMETRIC_DEFAULT keys.
// Each checks its request as the AWS API reference constrains it, resolves
// the key, asks the key policy (kms:<Operation>), and only then looks at
// the key's state, as KMS does.

// Limits from the AWS KMS API reference.
const (
	maxDescription    = 8192
	maxTags           = 50
	maxTagKey         = 128
	maxTagValue       = 256
	maxOnDemand       = 25 // on-demand rotations per key
	minPendingWindow  = 7
	maxPendingWindow  = 30
	minRotationPeriod = 90
	maxRotationPeriod = 2560
	defaultRotation   = 365
	day               = 24 * time.Hour
)

// epoch is a KMS timestamp: seconds since 1970 as a JSON number.
type epoch = float64

func unix(t int64) *epoch {
	if t == 0 {
		return nil
	}
	v := epoch(t)
	return &v
}

type keyMetadata struct {
	AWSAccountId           string               `json:"AWSAccountId"`
	KeyId                  string               `json:"KeyId"`
	Arn                    string               `json:"Arn"`
	CreationDate           *epoch               `json:"CreationDate"`
	Enabled                bool                 `json:"Enabled"`
	Description            string               `json:"Description"`
	KeyUsage               string               `json:"KeyUsage"`
	KeyState               string               `json:"KeyState"`
	DeletionDate           *epoch               `json:"DeletionDate,omitempty"`
	Origin                 string               `json:"Origin"`
	KeyManager             string               `json:"KeyManager"`
	CustomerMasterKeySpec  string               `json:"CustomerMasterKeySpec"`
	KeySpec                string               `json:"KeySpec"`
	EncryptionAlgorithms   []string             `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms      []string             `json:"SigningAlgorithms,omitempty"`
	MacAlgorithms          []string             `json:"MacAlgorithms,omitempty"`
	KeyAgreementAlgorithms []string             `json:"KeyAgreementAlgorithms,omitempty"`
	MultiRegion            bool                 `json:"MultiRegion"`
	ExpirationModel        string               `json:"ExpirationModel,omitempty"`
	ValidTo                *epoch               `json:"ValidTo,omitempty"`
	CustomKeyStoreId       string               `json:"CustomKeyStoreId,omitempty"`
	CloudHsmClusterId      string               `json:"CloudHsmClusterId,omitempty"`
	XksKeyConfiguration    *xksKeyConfiguration `json:"XksKeyConfiguration,omitempty"`

	// MultiRegionConfiguration: multi-Region keys only (multiregion.go).
	MultiRegionConfiguration *multiRegionConfiguration `json:"MultiRegionConfiguration,omitempty"`
}

func metadata(k *keystore.Key) *keyMetadata {
	m := &keyMetadata{
		AWSAccountId: k.Account, KeyId: k.KeyID, Arn: k.ARN(), CreationDate: unix(k.Created),
		Enabled: k.State == keystore.StateEnabled, Description: k.Description, KeyUsage: k.KeyUsage,
		KeyState: k.State, DeletionDate: unix(k.DeletionDate), Origin: k.Origin, KeyManager: "CUSTOMER",
		CustomerMasterKeySpec: k.KeySpec, KeySpec: k.KeySpec, CustomKeyStoreId: k.CustomKeyStoreID,
		MultiRegion: k.MultiRegion != nil, MultiRegionConfiguration: multiRegionConfigOf(k),
	}
	if k.XksKeyID != "" {
		m.XksKeyConfiguration = &xksKeyConfiguration{Id: k.XksKeyID}
	}
	if k.Import != nil && k.State != keystore.StatePendingImport {
		m.ExpirationModel, m.ValidTo = k.Import.ExpirationModel, unix(k.Import.ValidTo)
	}
	a := algorithmsOf(k)
	switch k.KeyUsage {
	case usageEncrypt:
		m.EncryptionAlgorithms = a
	case usageSign:
		m.SigningAlgorithms = a
	case usageMAC:
		m.MacAlgorithms = a
	case usageAgree:
		m.KeyAgreementAlgorithms = a
	}
	return m
}

type tagList []keystore.Tag

// checkTags validates tags as TagResource and CreateKey do.
func checkTags(tags tagList) error {
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case len(t.TagKey) < 1 || len(t.TagKey) > maxTagKey:
			return validation("tags.member.tagKey", "Member must have length between 1 and 128", t.TagKey)
		case len(t.TagValue) > maxTagValue:
			return validation("tags.member.tagValue", "Member must have length less than or equal to 256", t.TagValue)
		case strings.HasPrefix(strings.ToLower(t.TagKey), "aws:"):
			return kmsapi.Errorf("TagException", "Tags beginning with aws: are reserved")
		case seen[t.TagKey]:
			return kmsapi.Errorf("TagException", "Duplicate tag keys %s", t.TagKey)
		}
		seen[t.TagKey] = true
	}
	return nil
}

// mergeTags adds or replaces tags, keeping them sorted by key.
func mergeTags(cur []keystore.Tag, add tagList) ([]keystore.Tag, error) {
	out := slices.Clone(cur)
	for _, t := range add {
		i := slices.IndexFunc(out, func(o keystore.Tag) bool { return o.TagKey == t.TagKey })
		if i >= 0 {
			out[i].TagValue = t.TagValue
		} else {
			out = append(out, t)
		}
	}
	if len(out) > maxTags {
		return nil, kmsapi.Errorf("TagException", "A KMS key can have at most %d tags", maxTags)
	}
	slices.SortFunc(out, func(a, b keystore.Tag) int { return strings.Compare(a.TagKey, b.TagKey) })
	return out, nil
}

func newKeyID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// parsePolicy checks a policy document for CreateKey and PutKeyPolicy on
// key k, including KMS's lockout safety check: unless bypassed, the new
// policy must let the caller change the policy again, asked with the
// condition keys a later PutKeyPolicy of the caller will have (the same
// transport and source address).
func (s *Service) parsePolicy(p kmsapi.Principal, doc string, k *keystore.Key, bypass bool) (*policy.Policy, error) {
	if len(doc) < 1 || len(doc) > policy.MaxDocument {
		return nil, validation("policy", "Member must have length between 1 and 32768", "…")
	}
	pol, err := policy.Parse([]byte(doc))
	if err != nil {
		return nil, kmsapi.Errorf("MalformedPolicyDocumentException", "%s", strings.TrimPrefix(err.Error(), "policy: "))
	}
	if !bypass {
		ctx := keyConditions(p, k, 0)
		d := pol.Evaluate(&policy.Request{Principal: p.ARN, Account: p.AccountID, Action: "kms:PutKeyPolicy", Resource: k.ARN(), Context: ctx})
		if d != policy.Allow {
			return nil, kmsapi.Errorf("MalformedPolicyDocumentException",
				"The new key policy will not allow you to update the key policy in the future.")
		}
	}
	return pol, nil
}

// createHBK asks an HSM for a new HBK token of key id.
func (s *Service) createHBK(ctx context.Context, id string) ([]byte, error) {
	out, err := call(ctx, s, hsmcmd.CreateHBKRequest{KeyID: id}, hsmcmd.ParseCreateHBKResponse)
	if errors.Is(err, errNoHSM) {
		return nil, err
	}
	if err != nil {
		s.log.Info("CreateHBK", "err", err)
		return nil, &kmsapi.Error{Type: kmsapi.KMSInternal, Message: "the HSMs did not answer", Status: 500}
	}
	return out.Token, nil
}

type createKeyRequest struct {
	Policy                         *string `json:"Policy"`
	Description                    *string `json:"Description"`
	KeyUsage                       *string `json:"KeyUsage"`
	CustomerMasterKeySpec          *string `json:"CustomerMasterKeySpec"`
	KeySpec                        *string `json:"KeySpec"`
	Origin                         *string `json:"Origin"`
	CustomKeyStoreId               *string `json:"CustomKeyStoreId"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
	Tags                           tagList `json:"Tags"`
	MultiRegion                    bool    `json:"MultiRegion"`
	XksKeyId                       *string `json:"XksKeyId"`
}

func (s *Service) createKey(ctx context.Context, p kmsapi.Principal, req *createKeyRequest) (*keyMetadataResponse, error) {
	spec := "SYMMETRIC_DEFAULT"
	if req.KeySpec != nil && req.CustomerMasterKeySpec != nil {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "You cannot specify KeySpec and CustomerMasterKeySpec in the same request.")
	}
	for _, s := range []*string{req.KeySpec, req.CustomerMasterKeySpec} {
		if s != nil {
			spec = *s
		}
	}
	usage, err := checkSpecUsage(spec, req.KeyUsage)
	if err != nil {
		return nil, err
	}
	origin := "AWS_KMS"
	if req.Origin != nil {
		origin = *req.Origin
	}
	switch origin {
	case "AWS_KMS":
	case keystore.OriginExternal:
		if !importable(spec) {
			return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "this Trent build does not import %s key material", spec)
		}
	case keystore.OriginCloudHSM:
		if spec != symmetricDefault {
			return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "a custom key store holds SYMMETRIC_DEFAULT keys only")
		}
		if req.CustomKeyStoreId == nil {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "Origin AWS_CLOUDHSM needs a CustomKeyStoreId.")
		}
	case keystore.OriginExternalKeyStore:
		if spec != symmetricDefault {
			return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "a custom key store holds SYMMETRIC_DEFAULT keys only")
		}
		if req.CustomKeyStoreId == nil || req.XksKeyId == nil {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "Origin EXTERNAL_KEY_STORE needs a CustomKeyStoreId and an XksKeyId.")
		}
		if !xksKeyIDRE.MatchString(*req.XksKeyId) {
			return nil, validation("xksKeyId", "Member must have length between 1 and 128 of [a-zA-Z0-9._-]", *req.XksKeyId)
		}
	default:
		return nil, validation("origin", "Member must satisfy enum value set: [AWS_CLOUDHSM, EXTERNAL, AWS_KMS, EXTERNAL_KEY_STORE]", origin)
	}
	if req.CustomKeyStoreId != nil && origin != keystore.OriginCloudHSM && origin != keystore.OriginExternalKeyStore {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "A CustomKeyStoreId needs Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE, not %s.", origin)
	}
	if req.XksKeyId != nil && origin != keystore.OriginExternalKeyStore {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "XksKeyId is valid only with Origin EXTERNAL_KEY_STORE.")
	}
	if req.MultiRegion && (spec != symmetricDefault || origin != "AWS_KMS") {
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "this Trent build makes multi-Region keys of SYMMETRIC_DEFAULT and Origin AWS_KMS only")
	}
	desc := ""
	if req.Description != nil {
		desc = *req.Description
		if len(desc) > maxDescription {
			return nil, validation("description", "Member must have length less than or equal to 8192", "…")
		}
	}
	if err := checkTags(req.Tags); err != nil {
		return nil, err
	}
	tags, err := mergeTags(nil, req.Tags)
	if err != nil {
		return nil, err
	}
	id := newKeyID()
	if req.MultiRegion {
		id = newMultiRegionKeyID()
	}
	doc := string(policy.Default(p.AccountID))
	if req.Policy != nil {
		doc = *req.Policy
		k := &keystore.Key{KeyID: id, Account: p.AccountID, Region: s.region(), KeySpec: spec, KeyUsage: usage, Origin: origin}
		if _, err := s.parsePolicy(p, doc, k, req.BypassPolicyLockoutSafetyCheck); err != nil {
			return nil, err
		}
	}
	rec := &keystore.Record{Key: keystore.Key{
		KeyID: id, Account: p.AccountID, Region: s.region(), Created: s.now().Unix(), Description: desc,
		State: keystore.StateEnabled, KeySpec: spec, KeyUsage: usage, Origin: origin,
		Policy: doc, Tags: tags,
	}}
	if req.MultiRegion {
		rec.Key.MultiRegion = &keystore.MultiRegion{PrimaryRegion: s.region(), Regions: []string{s.region()}}
	}
	var storeRaw []byte // the store as read before its checks
	if req.CustomKeyStoreId != nil && keystore.ValidStoreID(*req.CustomKeyStoreId) {
		storeRaw, _ = s.store.Get(keystore.StoreRecordID(*req.CustomKeyStoreId))
	}
	switch {
	case origin == keystore.OriginCloudHSM: // the material is in the store's token only
		if err := s.createStoreKey(ctx, p, *req.CustomKeyStoreId, id); err != nil {
			return nil, err
		}
		rec.Key.CustomKeyStoreID = *req.CustomKeyStoreId
	case origin == keystore.OriginExternalKeyStore: // an HBK, and the external key
		if err := s.createXKSKey(ctx, p, *req.CustomKeyStoreId, *req.XksKeyId, id); err != nil {
			return nil, err
		}
		tok, err := s.createHBK(ctx, id)
		if err != nil {
			return nil, err
		}
		rec.Tokens, rec.Key.CustomKeyStoreID, rec.Key.XksKeyID = [][]byte{tok}, *req.CustomKeyStoreId, *req.XksKeyId
	case origin == keystore.OriginExternal: // no material until ImportKeyMaterial
		rec.Key.State, rec.Key.Import = keystore.StatePendingImport, &keystore.Import{}
	case spec == symmetricDefault:
		tok, err := s.createHBK(ctx, id)
		if err != nil {
			return nil, err
		}
		rec.Tokens = [][]byte{tok}
	default:
		tok, public, err := s.createKeyPair(ctx, spec, id)
		if err != nil {
			return nil, err
		}
		rec.Tokens, rec.Key.PublicKey = [][]byte{tok}, public
	}
	raw, err := rec.Marshal()
	if err != nil {
		return nil, recordTooLarge(err)
	}
	rs := []domain.Replacement{{ID: keystore.KeyRecordID(id), New: raw}}
	if rec.Key.CustomKeyStoreID != "" {
		// The store as it was checked: not disconnected or deleted since.
		rs = append(rs, domain.Replacement{ID: keystore.StoreRecordID(rec.Key.CustomKeyStoreID), Old: storeRaw, New: storeRaw})
	}
	if err := s.store.Propose(ctx, rs...); errors.Is(err, ErrConflict) {
		return nil, errStoreState("Custom key store %s changed while the key was made; retry.", rec.Key.CustomKeyStoreID)
	} else if err != nil {
		return nil, err
	}
	m := metadata(&rec.Key)
	if rec.Key.CustomKeyStoreID != "" {
		s.storeKeyState(&key{rec: rec}, m)
	}
	return &keyMetadataResponse{KeyMetadata: m}, nil
}

// keyRequest is the body of the operations that take only a key.
type keyRequest struct {
	KeyId string `json:"KeyId"`
}

// emptyResponse is the answer of operations that return nothing ({}).
type emptyResponse struct{}

var empty = &emptyResponse{}

// setState serves EnableKey and DisableKey.
func (s *Service) setState(op, to string) kmsapi.Handler {
	return typed(func(ctx context.Context, p kmsapi.Principal, req *keyRequest) (*emptyResponse, error) {
		k, err := s.useKey(p, req.KeyId, false, keyUse{op: op, state: stateAny})
		if err != nil {
			return nil, err
		}
		_, err = s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
			if r.Key.State == keystore.StatePendingDeletion {
				return kmsapi.Errorf("KMSInvalidStateException", "%s is pending deletion.", r.Key.ARN())
			}
			if r.Key.State == keystore.StatePendingImport {
				return kmsapi.Errorf("KMSInvalidStateException", errPendingImportF, r.Key.ARN())
			}
			r.Key.State = to
			return nil
		})
		return empty, err
	})
}

// paginate returns the page of items (sorted by keyOf) after marker, at
// most limit (1 to max, def if nil), and the marker of the next page.
func paginate[T any](items []T, keyOf func(T) string, limit *int, marker *string, max, def int) ([]T, *string, error) {
	n := def
	if limit != nil {
		n = *limit
		if n < 1 || n > max {
			return nil, nil, validation("limit", fmt.Sprintf("Member must have value between 1 and %d", max), n)
		}
	}
	start := 0
	if marker != nil {
		after, err := base64.RawURLEncoding.DecodeString(*marker)
		if err != nil || len(after) == 0 {
			return nil, nil, kmsapi.Errorf("InvalidMarkerException", "Invalid marker")
		}
		start, _ = slices.BinarySearchFunc(items, string(after), func(t T, s string) int { return strings.Compare(keyOf(t), s) })
		if start < len(items) && keyOf(items[start]) == string(after) {
			start++
		}
	}
	end := min(start+n, len(items))
	page := items[start:end]
	if end < len(items) {
		m := base64.RawURLEncoding.EncodeToString([]byte(keyOf(items[end-1])))
		return page, &m, nil
	}
	return page, nil, nil
}

// accountKeys returns the keys of an account, sorted by key ID.
func (s *Service) accountKeys(account string) []*key {
	var ids []string
	s.store.Records("k/", func(id string, _ []byte) bool {
		ids = append(ids, strings.TrimPrefix(id, "k/"))
		return true
	})
	var out []*key
	for _, id := range ids {
		if k, err := s.loadKey(id); err == nil && k != nil && k.rec.Key.Account == account {
			out = append(out, k)
		}
	}
	return out
}

type listKeysRequest struct {
	Limit  *int    `json:"Limit"`
	Marker *string `json:"Marker"`
}

func (s *Service) listKeys(ctx context.Context, p kmsapi.Principal, req *listKeysRequest) (*listKeysResponse, error) {
	page, next, err := paginate(s.accountKeys(p.AccountID), func(k *key) string { return k.rec.Key.KeyID }, req.Limit, req.Marker, 1000, 100)
	if err != nil {
		return nil, err
	}
	out := []keyListEntry{}
	for _, k := range page {
		out = append(out, keyListEntry{k.rec.Key.KeyID, k.rec.Key.ARN()})
	}
	return &listKeysResponse{Keys: out, page: pageOf(next)}, nil
}

type describeKeyRequest struct {
	KeyId       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens"`
}

func (s *Service) describeKey(ctx context.Context, p kmsapi.Principal, req *describeKeyRequest) (*keyMetadataResponse, error) {
	k, err := s.useKey(p, req.KeyId, true, keyUse{op: "DescribeKey", state: stateAny})
	if err != nil {
		return nil, err
	}
	if err := checkGrantTokens(req.GrantTokens); err != nil {
		return nil, err
	}
	m := metadata(&k.rec.Key)
	if materialExpired(&k.rec.Key, s.now()) && k.rec.Key.State != keystore.StatePendingDeletion {
		// Expired material: PendingImport already, before key maintenance says so.
		m.KeyState, m.Enabled, m.ExpirationModel, m.ValidTo = keystore.StatePendingImport, false, "", nil
	}
	s.storeKeyState(k, m)
	return &keyMetadataResponse{KeyMetadata: m}, nil
}

type scheduleKeyDeletionRequest struct {
	KeyId               string `json:"KeyId"`
	PendingWindowInDays *int   `json:"PendingWindowInDays"`
}

func (s *Service) scheduleKeyDeletion(ctx context.Context, p kmsapi.Principal, req *scheduleKeyDeletionRequest) (*scheduleKeyDeletionResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "ScheduleKeyDeletion", state: stateAny})
	if err != nil {
		return nil, err
	}
	days := maxPendingWindow
	if req.PendingWindowInDays != nil {
		days = *req.PendingWindowInDays
	}
	if days < minPendingWindow || days > maxPendingWindow {
		return nil, validation("pendingWindowInDays", "Member must have value between 7 and 30", days)
	}
	r, err := s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if err := notPending(&key{rec: r}); err != nil {
			return err
		}
		r.Key.State, r.Key.PendingWindowDays = keystore.StatePendingDeletion, days
		r.Key.DeletionDate = s.now().Add(time.Duration(days) * day).Unix()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &scheduleKeyDeletionResponse{KeyId: r.Key.ARN(), DeletionDate: unix(r.Key.DeletionDate),
		KeyState: r.Key.State, PendingWindowInDays: days}, nil
}

func (s *Service) cancelKeyDeletion(ctx context.Context, p kmsapi.Principal, req *keyRequest) (*keyIDResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "CancelKeyDeletion", state: stateAny})
	if err != nil {
		return nil, err
	}
	r, err := s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if r.Key.State != keystore.StatePendingDeletion {
			return kmsapi.Errorf("KMSInvalidStateException", "%s is not pending deletion.", r.Key.ARN())
		}
		// KMS leaves a key whose deletion is cancelled disabled.
		r.Key.State, r.Key.DeletionDate, r.Key.PendingWindowDays = keystore.StateDisabled, 0, 0
		if len(r.Tokens) == 0 { // an EXTERNAL key without material
			r.Key.State = keystore.StatePendingImport
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &keyIDResponse{KeyId: r.Key.ARN()}, nil
}

type updateKeyDescriptionRequest struct {
	KeyId       string  `json:"KeyId"`
	Description *string `json:"Description"`
}

func (s *Service) updateKeyDescription(ctx context.Context, p kmsapi.Principal, req *updateKeyDescriptionRequest) (*emptyResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "UpdateKeyDescription", state: stateAny})
	if err != nil {
		return nil, err
	}
	if req.Description == nil || len(*req.Description) > maxDescription {
		return nil, validation("description", "Member must not be null and have length less than or equal to 8192", "…")
	}
	_, err = s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if err := notPending(&key{rec: r}); err != nil {
			return err
		}
		r.Key.Description = *req.Description
		return nil
	})
	return empty, err
}

type tagResourceRequest struct {
	KeyId string  `json:"KeyId"`
	Tags  tagList `json:"Tags"`
}

func (s *Service) tagResource(ctx context.Context, p kmsapi.Principal, req *tagResourceRequest) (*emptyResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "TagResource", state: stateAny})
	if err != nil {
		return nil, err
	}
	if req.Tags == nil {
		return nil, validation("tags", "Member must not be null", "null")
	}
	if err := checkTags(req.Tags); err != nil {
		return nil, err
	}
	_, err = s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if err := notPending(&key{rec: r}); err != nil {
			return err
		}
		t, err := mergeTags(r.Key.Tags, req.Tags)
		r.Key.Tags = t
		return err
	})
	return empty, err
}

type untagResourceRequest struct {
	KeyId   string   `json:"KeyId"`
	TagKeys []string `json:"TagKeys"`
}

func (s *Service) untagResource(ctx context.Context, p kmsapi.Principal, req *untagResourceRequest) (*emptyResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "UntagResource", state: stateAny})
	if err != nil {
		return nil, err
	}
	if req.TagKeys == nil {
		return nil, validation("tagKeys", "Member must not be null", "null")
	}
	_, err = s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if err := notPending(&key{rec: r}); err != nil {
			return err
		}
		r.Key.Tags = slices.DeleteFunc(r.Key.Tags, func(t keystore.Tag) bool { return slices.Contains(req.TagKeys, t.TagKey) })
		return nil
	})
	return empty, err
}

type listResourceTagsRequest struct {
	KeyId  string  `json:"KeyId"`
	Limit  *int    `json:"Limit"`
	Marker *string `json:"Marker"`
}

func (s *Service) listResourceTags(ctx context.Context, p kmsapi.Principal, req *listResourceTagsRequest) (*listResourceTagsResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "ListResourceTags", state: stateAny})
	if err != nil {
		return nil, err
	}
	page, next, err := paginate(k.rec.Key.Tags, func(t keystore.Tag) string { return t.TagKey }, req.Limit, req.Marker, 50, 50)
	if err != nil {
		return nil, err
	}
	return &listResourceTagsResponse{Tags: orEmpty(page), page: pageOf(next)}, nil
}

type getKeyPolicyRequest struct {
	KeyId      string  `json:"KeyId"`
	PolicyName *string `json:"PolicyName"`
}

func (s *Service) getKeyPolicy(ctx context.Context, p kmsapi.Principal, req *getKeyPolicyRequest) (*getKeyPolicyResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "GetKeyPolicy", state: stateAny})
	if err != nil {
		return nil, err
	}
	if req.PolicyName != nil && *req.PolicyName != "default" {
		return nil, errNotFound("No such policy exists")
	}
	return &getKeyPolicyResponse{Policy: k.rec.Key.Policy, PolicyName: "default"}, nil
}

type listKeyPoliciesRequest struct {
	KeyId  string  `json:"KeyId"`
	Limit  *int    `json:"Limit"`
	Marker *string `json:"Marker"`
}

func (s *Service) listKeyPolicies(ctx context.Context, p kmsapi.Principal, req *listKeyPoliciesRequest) (*listKeyPoliciesResponse, error) {
	_, err := s.useKey(p, req.KeyId, false, keyUse{op: "ListKeyPolicies", state: stateAny})
	if err != nil {
		return nil, err
	}
	page, next, err := paginate([]string{"default"}, func(s string) string { return s }, req.Limit, req.Marker, 1000, 100)
	if err != nil {
		return nil, err
	}
	return &listKeyPoliciesResponse{PolicyNames: orEmpty(page), page: pageOf(next)}, nil
}

type putKeyPolicyRequest struct {
	KeyId                          string  `json:"KeyId"`
	PolicyName                     *string `json:"PolicyName"`
	Policy                         *string `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
}

func (s *Service) putKeyPolicy(ctx context.Context, p kmsapi.Principal, req *putKeyPolicyRequest) (*emptyResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "PutKeyPolicy", state: stateAny})
	if err != nil {
		return nil, err
	}
	if req.PolicyName != nil && *req.PolicyName != "default" {
		return nil, errNotFound("No such policy exists")
	}
	if req.Policy == nil {
		return nil, validation("policy", "Member must not be null", "null")
	}
	if _, err := s.parsePolicy(p, *req.Policy, &k.rec.Key, req.BypassPolicyLockoutSafetyCheck); err != nil {
		return nil, err
	}
	_, err = s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if err := notPending(&key{rec: r}); err != nil {
			return err
		}
		r.Key.Policy = *req.Policy
		return nil
	})
	return empty, err
}
