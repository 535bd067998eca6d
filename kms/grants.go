package kms

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// KMS grants (keystore.Grant): a grant lets its grantee principal do some
// operations with one key, within its encryption context constraints, in
// addition to what the key policy allows; an explicit deny of the policy
// still wins (authorize in keystore.go). Grants are written on the raft
// leader like every key-store change, each together with its key's grant
// index in one compare-and-swap entry; a grant is effective on every host
// once that entry is applied, and CreateGrant answers only after the
// leader applied it, so a grant token is never needed to use a new grant:
// it only names the grant.
//
// Who may do what:
//   - CreateGrant: kms:CreateGrant by the key policy (condition keys
//     kms:GrantOperations, kms:GranteePrincipal, kms:RetiringPrincipal,
//     kms:GrantIsForAWSResource, kms:GrantConstraintType), or a grant of
//     the key to the caller that includes CreateGrant, whose operations
//     include every requested one and whose constraint is no weaker than
//     the requested one (KMS's rule for grants made through a grant).
//   - ListGrants and RevokeGrant: kms:ListGrants and kms:RevokeGrant by the
//     key policy (a grant cannot include them).
//   - RetireGrant: decided by the grant, as KMS does (kms:RetireGrant in a
//     key policy has no effect): its retiring principal, its grantee
//     principal if its operations include RetireGrant, and the account that
//     created it. Trent has no IAM, so "the account" is every principal of
//     that account, as for an account named in a key policy.
//   - ListRetirableGrants: any principal, for a retiring principal of its
//     own account (KMS leaves it to IAM); the answer holds that principal's
//     grants on keys of every account, as KMS's does.
//
// A grantee or retiring principal matches the caller whose ARN it is, and
// an account root ARN (arn:aws:iam::ACCOUNT:root) matches every principal
// of that account.

// keyGrantOp reports whether a grant on key k may include op: KMS refuses
// (ValidationException) an operation the key's type does not support
// (the operation table's grant rules).
func (s *Service) keyGrantOp(k *keystore.Key, op string) bool {
	return s.grantOps[op].keys&kindOf(k) != 0
}

// Grant tokens. A token is base64url (no padding) of
//
//	u8 version (1) ‖ key ID (16 bytes, the UUID's) ‖ grant ID (32 bytes)
//
// or, for a multi-Region key, version 2 and the 16 bytes of its mrk- ID's
// hex digits: 66 characters either way. It carries no authority and needs no MAC: a grant is
// effective as soon as CreateGrant returns, and a token only names a grant
// (RetireGrant finds the grant by it with one lookup). A token of a
// retired or revoked grant names nothing and allows nothing.
const (
	grantTokenVersion    = 1
	grantTokenVersionMRK = 2 // the key is a multi-Region key
)

func grantToken(keyID, grantID string) string {
	v := byte(grantTokenVersion)
	hexID := strings.ReplaceAll(keyID, "-", "")
	if mrk, ok := strings.CutPrefix(keyID, "mrk-"); ok {
		v, hexID = grantTokenVersionMRK, mrk
	}
	kb, _ := hex.DecodeString(hexID)
	gb, _ := hex.DecodeString(grantID)
	return base64.RawURLEncoding.EncodeToString(append(append([]byte{v}, kb...), gb...))
}

var errInvalidGrantToken = kmsapi.Errorf("InvalidGrantTokenException", "The grant token is not valid.")

// parseGrantToken returns the key ID and grant ID a token names.
func parseGrantToken(tok string) (keyID, grantID string, err error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || len(b) != 1+16+32 || (b[0] != grantTokenVersion && b[0] != grantTokenVersionMRK) {
		return "", "", errInvalidGrantToken
	}
	k := b[1:17]
	keyID = fmt.Sprintf("%x-%x-%x-%x-%x", k[0:4], k[4:6], k[6:8], k[8:10], k[10:16])
	if b[0] == grantTokenVersionMRK {
		keyID = "mrk-" + hex.EncodeToString(k)
	}
	return keyID, hex.EncodeToString(b[17:]), nil
}

// checkGrantTokens checks a request's GrantTokens: at most 10, each 1 to
// 8192 characters and a grant token.
func checkGrantTokens(tokens []string) error {
	if len(tokens) > maxGrantTokens {
		return validation("grantTokens", "Member must have length less than or equal to 10", len(tokens))
	}
	for _, g := range tokens {
		if len(g) < 1 || len(g) > 8192 {
			return validation("grantTokens.member", "Member must have length between 1 and 8192", "…")
		}
		if _, _, err := parseGrantToken(g); err != nil {
			return err
		}
	}
	return nil
}

func newGrantID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// grantSet is a key's grants, sorted by grant ID, and indexed by grantee
// principal.
type grantSet struct {
	all       []*keystore.Grant
	byGrantee map[string][]*keystore.Grant
}

var noGrants = &grantSet{}

// keyGrants returns the grants of key id, shared: not to be modified. A
// key without grants costs one record lookup; otherwise the grants are
// cached by the bytes of the key's grant index, which change with every
// grant added or removed (grant records themselves never change).
func (s *Service) keyGrants(id string) (*grantSet, error) {
	ix := keystore.GrantIndexID(id)
	raw, ok := s.store.Get(ix)
	if !ok {
		return noGrants, nil
	}
	return s.keys.grants.get(ix, raw, func(raw []byte) (*grantSet, error) {
		ids, err := keystore.ParseGrantIndex(raw)
		if err != nil {
			return nil, err
		}
		gs := &grantSet{all: make([]*keystore.Grant, 0, len(ids)), byGrantee: map[string][]*keystore.Grant{}}
		for _, gid := range ids {
			g, err := s.loadGrant(id, gid)
			if err != nil {
				return nil, err
			}
			// A grant removed since the index was read is skipped: its
			// removal changed the index, so this entry is not used again.
			if g != nil {
				gs.all = append(gs.all, g)
				gs.byGrantee[g.GranteePrincipal] = append(gs.byGrantee[g.GranteePrincipal], g)
			}
		}
		return gs, nil
	})
}

// loadGrant returns grant grantID of key keyID, nil if absent.
func (s *Service) loadGrant(keyID, grantID string) (*keystore.Grant, error) {
	id := keystore.GrantRecordID(keyID, grantID)
	raw, ok := s.store.Get(id)
	if !ok {
		return nil, nil
	}
	return s.keys.grant.get(id, raw, keystore.ParseGrant)
}

// principalIs reports whether a grant's principal names the caller.
func principalIs(spec string, p kmsapi.Principal) bool {
	return spec != "" && (spec == p.ARN || spec == "arn:aws:iam::"+p.AccountID+":root")
}

// requestContext rebuilds a request's encryption context from its
// kms:EncryptionContext:<key> condition keys.
func requestContext(cond map[string][]string) map[string]string {
	ec := map[string]string{}
	for n, v := range cond {
		if k, ok := strings.CutPrefix(n, "kms:EncryptionContext:"); ok && len(v) == 1 {
			ec[k] = v[0]
		}
	}
	return ec
}

// contextHas reports whether every pair of small is in ec: keys compared
// case-insensitively, values exactly, as KMS compares grant constraints.
func contextHas(ec, small map[string]string) bool {
	for k, v := range small {
		if w, ok := ec[k]; ok && w == v {
			continue
		}
		found := false
		for ek, ev := range ec {
			if ev == v && strings.EqualFold(ek, k) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// constraintHolds reports whether a request's encryption context meets a
// grant's constraint.
func constraintHolds(c *keystore.GrantConstraints, ec map[string]string) bool {
	if eq := c.EncryptionContextEquals; len(eq) > 0 {
		return len(ec) == len(eq) && contextHas(ec, eq) && contextHas(eq, ec)
	}
	return contextHas(ec, c.EncryptionContextSubset)
}

// grantFor returns a grant of k that lets p do action (kms:<Operation>)
// in a request with condition keys cond, nil if none does; accept, if not
// nil, must also hold for it.
func (s *Service) grantFor(p kmsapi.Principal, action string, k *key, cond conditions, accept func(*keystore.Grant) bool) *keystore.Grant {
	op, ok := strings.CutPrefix(action, "kms:")
	if _, grantable := s.grantOps[op]; !ok || !grantable {
		return nil
	}
	gs, err := s.keyGrants(k.rec.Key.KeyID)
	if err != nil {
		s.log.Info("grants", "key", k.rec.Key.KeyID, "err", err)
		return nil
	}
	if len(gs.all) == 0 {
		return nil
	}
	var ec map[string]string
	for _, grantee := range []string{p.ARN, "arn:aws:iam::" + p.AccountID + ":root"} {
		for _, g := range gs.byGrantee[grantee] {
			if _, ok := slices.BinarySearch(g.Operations, op); !ok {
				continue
			}
			if s.grantOps[op].context && !g.Constraints.Empty() {
				if ec == nil && cond != nil {
					ec = requestContext(cond())
				}
				if !constraintHolds(&g.Constraints, ec) {
					continue
				}
			}
			if accept != nil && !accept(g) {
				continue
			}
			return g
		}
	}
	return nil
}

// noWeaker reports whether constraint c is at least as strict as parent:
// a grant made through a grant keeps its parent's constraint or narrows
// it.
func noWeaker(c, parent *keystore.GrantConstraints) bool {
	switch {
	case parent.Empty():
		return true
	case len(parent.EncryptionContextEquals) > 0:
		eq := c.EncryptionContextEquals
		return len(eq) == len(parent.EncryptionContextEquals) && contextHas(eq, parent.EncryptionContextEquals) &&
			contextHas(parent.EncryptionContextEquals, eq)
	case len(c.EncryptionContextEquals) > 0:
		return contextHas(c.EncryptionContextEquals, parent.EncryptionContextSubset)
	}
	return contextHas(c.EncryptionContextSubset, parent.EncryptionContextSubset)
}

// grantConstraints is the API's GrantConstraints.
type grantConstraints struct {
	EncryptionContextSubset map[string]string `json:"EncryptionContextSubset,omitempty"`
	EncryptionContextEquals map[string]string `json:"EncryptionContextEquals,omitempty"`
}

// grantListEntry is the API's GrantListEntry.
type grantListEntry struct {
	KeyId             string            `json:"KeyId"`
	GrantId           string            `json:"GrantId"`
	Name              string            `json:"Name,omitempty"`
	CreationDate      *epoch            `json:"CreationDate"`
	GranteePrincipal  string            `json:"GranteePrincipal"`
	RetiringPrincipal string            `json:"RetiringPrincipal,omitempty"`
	IssuingAccount    string            `json:"IssuingAccount"`
	Operations        []string          `json:"Operations"`
	Constraints       *grantConstraints `json:"Constraints,omitempty"`
}

func grantEntry(keyARN string, g *keystore.Grant) grantListEntry {
	e := grantListEntry{KeyId: keyARN, GrantId: g.GrantID, Name: g.Name, CreationDate: unix(g.Created),
		GranteePrincipal: g.GranteePrincipal, RetiringPrincipal: g.RetiringPrincipal,
		IssuingAccount: "arn:aws:iam::" + g.Account + ":root", Operations: g.Operations}
	if !g.Constraints.Empty() {
		e.Constraints = &grantConstraints{EncryptionContextSubset: g.Constraints.EncryptionContextSubset,
			EncryptionContextEquals: g.Constraints.EncryptionContextEquals}
	}
	return e
}

func checkPrincipal(field, v string) error {
	if !keystore.ValidGrantPrincipal(v) {
		return validation(field, `Member must have length between 1 and 256 and satisfy regular expression pattern: ^[\w+=,.@:/-]+$`, v)
	}
	return nil
}

// newGrant checks CreateGrant's parameters and returns the grant they
// describe (without IDs).
func (s *Service) newGrant(grantee, retiring *string, ops []string, c *grantConstraints, name *string) (*keystore.Grant, error) {
	g := &keystore.Grant{}
	if grantee == nil {
		return nil, validation("granteePrincipal", "Member must not be null", "null")
	}
	if err := checkPrincipal("granteePrincipal", *grantee); err != nil {
		return nil, err
	}
	g.GranteePrincipal = *grantee
	if retiring != nil {
		if err := checkPrincipal("retiringPrincipal", *retiring); err != nil {
			return nil, err
		}
		g.RetiringPrincipal = *retiring
	}
	if len(ops) == 0 {
		return nil, validation("operations", "Member must have length greater than or equal to 1", "[]")
	}
	for _, op := range ops {
		if _, ok := s.grantOps[op]; !ok {
			return nil, validation("operations.member", "Member must satisfy enum value set: ["+strings.Join(s.grantOpNames(), ", ")+"]", op)
		}
	}
	g.Operations = slices.Compact(slices.Sorted(slices.Values(ops)))
	if c != nil {
		if len(c.EncryptionContextEquals) > 0 && len(c.EncryptionContextSubset) > 0 {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "A grant can have only one of EncryptionContextEquals and EncryptionContextSubset.")
		}
		for _, ec := range []map[string]string{c.EncryptionContextEquals, c.EncryptionContextSubset} {
			if len(ec) > 0 && !keystore.ValidGrantContext(ec) {
				return nil, kmsapi.Errorf(kmsapi.ValidationException,
					"A grant constraint has 1 to 8 encryption context pairs, keys of 1 to 384 characters and values of at most 384.")
			}
		}
		if len(c.EncryptionContextEquals) > 0 {
			g.Constraints.EncryptionContextEquals = c.EncryptionContextEquals
		} else if len(c.EncryptionContextSubset) > 0 {
			g.Constraints.EncryptionContextSubset = c.EncryptionContextSubset
		}
	}
	if name != nil {
		if !keystore.ValidGrantName(*name) {
			return nil, validation("name", "Member must have length between 1 and 256 and satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$", *name)
		}
		g.Name = *name
	}
	return g, nil
}

// sameGrant reports whether a and b were made with the same parameters
// (CreateGrant's idempotency by name).
func sameGrant(a, b *keystore.Grant) bool {
	return a.Name == b.Name && a.Account == b.Account && a.GranteePrincipal == b.GranteePrincipal &&
		a.RetiringPrincipal == b.RetiringPrincipal && slices.Equal(a.Operations, b.Operations) &&
		maps.Equal(a.Constraints.EncryptionContextEquals, b.Constraints.EncryptionContextEquals) &&
		maps.Equal(a.Constraints.EncryptionContextSubset, b.Constraints.EncryptionContextSubset)
}

type createGrantRequest struct {
	KeyId             string            `json:"KeyId"`
	GranteePrincipal  *string           `json:"GranteePrincipal"`
	RetiringPrincipal *string           `json:"RetiringPrincipal"`
	Operations        []string          `json:"Operations"`
	Constraints       *grantConstraints `json:"Constraints"`
	GrantTokens       []string          `json:"GrantTokens"`
	Name              *string           `json:"Name"`
	DryRun            bool              `json:"DryRun"`
}

func (s *Service) createGrant(ctx context.Context, p kmsapi.Principal, req *createGrantRequest) (*createGrantResponse, error) {
	g, err := s.newGrant(req.GranteePrincipal, req.RetiringPrincipal, req.Operations, req.Constraints, req.Name)
	if err != nil {
		return nil, err
	}
	if err := checkGrantTokens(req.GrantTokens); err != nil {
		return nil, err
	}
	k, err := s.resolveKey(p, req.KeyId, false)
	if err != nil {
		return nil, err
	}
	g.KeyID, g.Account = k.rec.Key.KeyID, p.AccountID
	cond := map[string][]string{
		"kms:GrantOperations":       g.Operations,
		"kms:GranteePrincipal":      {g.GranteePrincipal},
		"kms:GrantIsForAWSResource": {"false"},
	}
	if g.RetiringPrincipal != "" {
		cond["kms:RetiringPrincipal"] = []string{g.RetiringPrincipal}
	}
	switch {
	case len(g.Constraints.EncryptionContextEquals) > 0:
		cond["kms:GrantConstraintType"] = []string{"EncryptionContextEquals"}
	case len(g.Constraints.EncryptionContextSubset) > 0:
		cond["kms:GrantConstraintType"] = []string{"EncryptionContextSubset"}
	}
	// Through a grant, only a grant within that grant.
	within := func(parent *keystore.Grant) bool {
		for _, op := range g.Operations {
			if _, ok := slices.BinarySearch(parent.Operations, op); !ok {
				return false
			}
		}
		return noWeaker(&g.Constraints, &parent.Constraints)
	}
	// The key's kind must allow every operation and the constraint.
	fits := func(k *key) error {
		for _, op := range g.Operations {
			if !s.keyGrantOp(&k.rec.Key, op) {
				return kmsapi.Errorf(kmsapi.ValidationException, "Grant operation %s is not valid for a %s key with key usage %s.",
					op, k.rec.Key.KeySpec, k.rec.Key.KeyUsage)
			}
		}
		if !g.Constraints.Empty() && k.rec.Key.KeySpec != symmetricDefault {
			return kmsapi.Errorf(kmsapi.ValidationException, "Encryption context grant constraints are supported only on symmetric encryption keys.")
		}
		return nil
	}
	if _, err := s.use(p, k, "", keyUse{op: "CreateGrant", cond: fixedConditions(cond), accept: within, check: fits, dryRun: req.DryRun}); err != nil {
		return nil, err
	}
	for range 8 {
		out, err := s.addGrant(ctx, k.rec.Key.KeyID, g)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &createGrantResponse{GrantToken: grantToken(out.KeyID, out.GrantID), GrantId: out.GrantID}, nil
	}
	return nil, &kmsapi.Error{Type: "ConflictException", Message: "the key's grants changed concurrently; retry"}
}

// addGrant commits g (its GrantID and Created set here) to key id, or
// returns the existing grant of the same name and parameters. The entry
// also compares the key record with itself, so that no grant is added to
// a key deleted or scheduled for deletion meanwhile.
func (s *Service) addGrant(ctx context.Context, id string, g *keystore.Grant) (*keystore.Grant, error) {
	k, err := s.loadKey(id)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, errNotFound("Key '%s' does not exist", id)
	}
	if err := s.usable(k); err != nil {
		return nil, err
	}
	ix := keystore.GrantIndexID(id)
	old, _ := s.store.Get(ix)
	var ids []string
	if old != nil {
		if ids, err = keystore.ParseGrantIndex(old); err != nil {
			return nil, err
		}
	}
	if g.Name != "" {
		gs, err := s.keyGrants(id)
		if err != nil {
			return nil, err
		}
		for _, e := range gs.byGrantee[g.GranteePrincipal] {
			if sameGrant(e, g) {
				return e, nil
			}
		}
	}
	if len(ids) >= keystore.MaxGrantsPerKey {
		return nil, kmsapi.Errorf("LimitExceededException", "The key has %d grants, the most Trent allows.", len(ids))
	}
	n := *g
	n.GrantID, n.Created = newGrantID(), s.now().Unix()
	rec, err := n.Marshal()
	if err != nil {
		return nil, recordTooLarge(err)
	}
	nix, err := keystore.MarshalGrantIndex(append(ids, n.GrantID))
	if err != nil {
		return nil, err
	}
	err = s.store.Propose(ctx, domain.Replacement{ID: keystore.KeyRecordID(id), Old: k.raw, New: k.raw},
		domain.Replacement{ID: ix, Old: old, New: nix},
		domain.Replacement{ID: keystore.GrantRecordID(id, n.GrantID), New: rec})
	return &n, err
}

// removeGrant deletes grant grantID of key keyID and updates the key's
// grant index, retrying on a concurrent change.
func (s *Service) removeGrant(ctx context.Context, keyID, grantID string) error {
	for range 8 {
		ix := keystore.GrantIndexID(keyID)
		old, ok := s.store.Get(ix)
		if !ok {
			return errGrantNotFound(grantID)
		}
		ids, err := keystore.ParseGrantIndex(old)
		if err != nil {
			return err
		}
		rec, ok := s.store.Get(keystore.GrantRecordID(keyID, grantID))
		if !ok || !slices.Contains(ids, grantID) {
			return errGrantNotFound(grantID)
		}
		var nix []byte // no grants left: the index goes too
		if rest := slices.DeleteFunc(ids, func(id string) bool { return id == grantID }); len(rest) > 0 {
			if nix, err = keystore.MarshalGrantIndex(rest); err != nil {
				return err
			}
		}
		err = s.store.Propose(ctx, domain.Replacement{ID: ix, Old: old, New: nix},
			domain.Replacement{ID: keystore.GrantRecordID(keyID, grantID), Old: rec})
		if errors.Is(err, ErrConflict) {
			continue
		}
		return err
	}
	return &kmsapi.Error{Type: "ConflictException", Message: "the key's grants changed concurrently; retry"}
}

// keyGrantRemovals are the replacements that remove every grant of key
// keyID and its grant index (KeyMaintenance deletes them with the key).
// At most 1 + MaxGrantsPerKey of them, within domain.MaxReplaceBatch with
// the key and its aliases. A grant retired at the same moment makes the
// entry's compare-and-swap fail for the index: the key still goes, and
// the orphaned index names grants of a key that no longer exists, which
// allow nothing.
func (s *Service) keyGrantRemovals(keyID string) []domain.Replacement {
	ix := keystore.GrantIndexID(keyID)
	old, ok := s.store.Get(ix)
	if !ok {
		return nil
	}
	rs := []domain.Replacement{{ID: ix, Old: old}}
	ids, _ := keystore.ParseGrantIndex(old)
	for _, gid := range ids {
		id := keystore.GrantRecordID(keyID, gid)
		if raw, ok := s.store.Get(id); ok {
			rs = append(rs, domain.Replacement{ID: id, Old: raw})
		}
	}
	return rs
}

func errGrantNotFound(grantID string) error {
	return errNotFound("Grant ID %s not found", grantID)
}

func checkGrantID(id string) error {
	if !keystore.ValidGrantID(id) {
		return kmsapi.Errorf("InvalidGrantIdException", "Invalid grant ID %s", id)
	}
	return nil
}

type listGrantsRequest struct {
	KeyId            string  `json:"KeyId"`
	Limit            *int    `json:"Limit"`
	Marker           *string `json:"Marker"`
	GrantId          *string `json:"GrantId"`
	GranteePrincipal *string `json:"GranteePrincipal"`
}

func (s *Service) listGrants(ctx context.Context, p kmsapi.Principal, req *listGrantsRequest) (*listGrantsResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "ListGrants", state: stateAny})
	if err != nil {
		return nil, err
	}
	if req.GrantId != nil {
		if err := checkGrantID(*req.GrantId); err != nil {
			return nil, err
		}
	}
	if req.GranteePrincipal != nil {
		if err := checkPrincipal("granteePrincipal", *req.GranteePrincipal); err != nil {
			return nil, err
		}
	}
	set, err := s.keyGrants(k.rec.Key.KeyID)
	if err != nil {
		return nil, err
	}
	gs := slices.DeleteFunc(slices.Clone(set.all), func(g *keystore.Grant) bool {
		return (req.GrantId != nil && g.GrantID != *req.GrantId) ||
			(req.GranteePrincipal != nil && g.GranteePrincipal != *req.GranteePrincipal)
	})
	page, next, err := paginate(gs, func(g *keystore.Grant) string { return g.GrantID }, req.Limit, req.Marker, 100, 50)
	if err != nil {
		return nil, err
	}
	out := []grantListEntry{}
	for _, g := range page {
		out = append(out, grantEntry(k.rec.Key.ARN(), g))
	}
	return &listGrantsResponse{Grants: out, page: pageOf(next)}, nil
}

// principalAccount is the account of a principal ARN or account ID.
func principalAccount(principal string) string {
	if len(principal) == 12 && strings.Trim(principal, "0123456789") == "" {
		return principal
	}
	parts := strings.SplitN(principal, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" && (parts[2] == "iam" || parts[2] == "sts") {
		return parts[4]
	}
	return ""
}

type listRetirableGrantsRequest struct {
	RetiringPrincipal *string `json:"RetiringPrincipal"`
	Limit             *int    `json:"Limit"`
	Marker            *string `json:"Marker"`
}

func (s *Service) listRetirableGrants(ctx context.Context, p kmsapi.Principal, req *listRetirableGrantsRequest) (*listGrantsResponse, error) {
	if req.RetiringPrincipal == nil {
		return nil, validation("retiringPrincipal", "Member must not be null", "null")
	}
	rp := *req.RetiringPrincipal
	if err := checkPrincipal("retiringPrincipal", rp); err != nil {
		return nil, err
	}
	if principalAccount(rp) != p.AccountID {
		return nil, kmsapi.Errorf(kmsapi.AccessDenied, "User: %s is not authorized to perform: kms:ListRetirableGrants on resource: %s", p.ARN, rp)
	}
	// Every grant record, in record ID order (key ID, then grant ID).
	type found struct {
		id  string
		raw []byte
	}
	var all []found
	s.store.Records("g/", func(id string, raw []byte) bool {
		if keystore.IsGrantRecord(raw) {
			all = append(all, found{id, raw})
		}
		return true
	})
	type match struct {
		id string
		g  *keystore.Grant
	}
	var ms []match
	for _, f := range all {
		g, err := s.keys.grant.get(f.id, f.raw, keystore.ParseGrant)
		if err == nil && g.RetiringPrincipal == rp {
			ms = append(ms, match{f.id, g})
		}
	}
	page, next, err := paginate(ms, func(m match) string { return m.id }, req.Limit, req.Marker, 100, 50)
	if err != nil {
		return nil, err
	}
	out := []grantListEntry{}
	for _, m := range page {
		// A grant index orphaned by KeyMaintenance (keyGrantRemovals) can
		// leave a grant of a deleted key: it is not listed.
		if k, err := s.loadKey(m.g.KeyID); err == nil && k != nil {
			out = append(out, grantEntry(k.rec.Key.ARN(), m.g))
		}
	}
	return &listGrantsResponse{Grants: out, page: pageOf(next)}, nil
}

type retireGrantRequest struct {
	GrantToken *string `json:"GrantToken"`
	KeyId      *string `json:"KeyId"`
	GrantId    *string `json:"GrantId"`
	DryRun     bool    `json:"DryRun"`
}

func (s *Service) retireGrant(ctx context.Context, p kmsapi.Principal, req *retireGrantRequest) (*emptyResponse, error) {
	var keyID, grantID string
	switch {
	case req.GrantToken != nil:
		if len(*req.GrantToken) < 1 || len(*req.GrantToken) > 8192 {
			return nil, validation("grantToken", "Member must have length between 1 and 8192", "…")
		}
		var err error
		if keyID, grantID, err = parseGrantToken(*req.GrantToken); err != nil {
			return nil, err
		}
		if req.GrantId != nil && *req.GrantId != grantID {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "The grant token and the grant ID name different grants.")
		}
		if req.KeyId != nil {
			k, err := s.resolveKey(p, *req.KeyId, false)
			if err != nil {
				return nil, err
			}
			if k.rec.Key.KeyID != keyID {
				return nil, kmsapi.Errorf(kmsapi.ValidationException, "The grant token and the key ID name different keys.")
			}
		}
	case req.KeyId != nil && req.GrantId != nil:
		if err := checkGrantID(*req.GrantId); err != nil {
			return nil, err
		}
		k, err := s.resolveKey(p, *req.KeyId, false)
		if err != nil {
			return nil, err
		}
		keyID, grantID = k.rec.Key.KeyID, *req.GrantId
	default:
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "Either a grant token or both a key ID and a grant ID are required.")
	}
	g, err := s.loadGrant(keyID, grantID)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, errGrantNotFound(grantID)
	}
	_, retire := slices.BinarySearch(g.Operations, "RetireGrant")
	if !principalIs(g.RetiringPrincipal, p) && !(retire && principalIs(g.GranteePrincipal, p)) && p.AccountID != g.Account {
		resource := "key/" + keyID
		if k, err := s.loadKey(keyID); err == nil && k != nil {
			resource = k.rec.Key.ARN()
		}
		return nil, kmsapi.Errorf(kmsapi.AccessDenied, "User: %s is not authorized to perform: kms:RetireGrant on resource: %s because the grant does not name it", p.ARN, resource)
	}
	if req.DryRun {
		return nil, errDryRun
	}
	if err := s.removeGrant(ctx, keyID, grantID); err != nil {
		return nil, err
	}
	return empty, nil
}

type revokeGrantRequest struct {
	KeyId   string `json:"KeyId"`
	GrantId string `json:"GrantId"`
	DryRun  bool   `json:"DryRun"`
}

func (s *Service) revokeGrant(ctx context.Context, p kmsapi.Principal, req *revokeGrantRequest) (*emptyResponse, error) {
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "RevokeGrant", state: stateAny})
	if err != nil {
		return nil, err
	}
	if err := checkGrantID(req.GrantId); err != nil {
		return nil, err
	}
	if g, err := s.loadGrant(k.rec.Key.KeyID, req.GrantId); err != nil || g == nil {
		if err != nil {
			return nil, err
		}
		return nil, errGrantNotFound(req.GrantId)
	}
	if req.DryRun {
		return nil, errDryRun
	}
	if err := s.removeGrant(ctx, k.rec.Key.KeyID, req.GrantId); err != nil {
		return nil, err
	}
	return empty, nil
}
