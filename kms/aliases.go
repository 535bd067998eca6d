package kms

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Aliases: per account, each naming one key of that account. Creating,
// repointing and deleting an alias need permission on the keys involved
// (kms:CreateAlias, kms:UpdateAlias on the old and the new key,
// kms:DeleteAlias); listing is allowed to every principal of the account,
// as KMS leaves it to IAM.

type aliasRequest struct {
	AliasName   string `json:"AliasName"`
	TargetKeyId string `json:"TargetKeyId"`
}

func checkAliasName(name string) error {
	if len(name) < 1 || len(name) > 256 {
		return validation("aliasName", "Member must have length between 1 and 256", name)
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return kmsapi.Errorf("NotAuthorizedException", "Cannot create, update or delete an alias with the reserved prefix alias/aws/")
	}
	if !keystore.ValidAliasName(name) {
		return kmsapi.Errorf("InvalidAliasNameException", "Alias must start with alias/ and contain only alphanumeric characters, forward slashes (/), underscores (_) and dashes (-)")
	}
	return nil
}

// loadAlias returns the alias of account (nil, nil if absent) and its
// record bytes.
func (s *Service) loadAlias(account, name string) (*keystore.Alias, []byte, error) {
	raw, ok := s.store.Get(keystore.AliasRecordID(account, name))
	if !ok {
		return nil, nil, nil
	}
	a, err := keystore.ParseAlias(raw)
	return a, raw, err
}

// existingAlias checks an alias name and loads the caller's alias of that
// name, NotFoundException if there is none.
func (s *Service) existingAlias(p kmsapi.Principal, name string) (*keystore.Alias, []byte, error) {
	if err := checkAliasName(name); err != nil {
		return nil, nil, err
	}
	a, raw, err := s.loadAlias(p.AccountID, name)
	if err != nil {
		return nil, nil, err
	}
	if a == nil {
		return nil, nil, errNotFound("Alias %s is not found.", s.aliasARN(p.AccountID, name))
	}
	return a, raw, nil
}

func (s *Service) createAlias(ctx context.Context, p kmsapi.Principal, req *aliasRequest) (*emptyResponse, error) {
	if err := checkAliasName(req.AliasName); err != nil {
		return nil, err
	}
	k, err := s.useKey(p, req.TargetKeyId, false, keyUse{op: "CreateAlias", state: stateNotPending})
	if err != nil {
		return nil, err
	}
	if a, _, err := s.loadAlias(p.AccountID, req.AliasName); err != nil || a != nil {
		if err != nil {
			return nil, err
		}
		return nil, kmsapi.Errorf("AlreadyExistsException", "An alias with the name %s already exists", s.aliasARN(p.AccountID, req.AliasName))
	}
	now := s.now().Unix()
	raw, err := (&keystore.Alias{Name: req.AliasName, TargetKeyID: k.rec.Key.KeyID, Created: now, Updated: now}).Marshal()
	if err != nil {
		return nil, err
	}
	if err := s.store.Propose(ctx, domain.Replacement{ID: keystore.AliasRecordID(p.AccountID, req.AliasName), New: raw}); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, kmsapi.Errorf("AlreadyExistsException", "An alias with the name %s already exists", s.aliasARN(p.AccountID, req.AliasName))
		}
		return nil, err
	}
	return empty, nil
}

func (s *Service) updateAlias(ctx context.Context, p kmsapi.Principal, req *aliasRequest) (*emptyResponse, error) {
	a, old, err := s.existingAlias(p, req.AliasName)
	if err != nil {
		return nil, err
	}
	to, err := s.resolveKey(p, req.TargetKeyId, false)
	if err != nil {
		return nil, err
	}
	from, err := s.resolveKey(p, a.TargetKeyID, false)
	if err != nil {
		return nil, err
	}
	for _, k := range []*key{from, to} {
		if _, err := s.use(p, k, "", keyUse{op: "UpdateAlias", state: stateAny}); err != nil {
			return nil, err
		}
	}
	if err := notPending(to); err != nil {
		return nil, err
	}
	if to.rec.Key.KeySpec != from.rec.Key.KeySpec || to.rec.Key.KeyUsage != from.rec.Key.KeyUsage {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "the new target key must have the key spec and key usage of the current one")
	}
	a.TargetKeyID, a.Updated = to.rec.Key.KeyID, s.now().Unix()
	raw, err := a.Marshal()
	if err != nil {
		return nil, err
	}
	if err := s.store.Propose(ctx, domain.Replacement{ID: keystore.AliasRecordID(p.AccountID, req.AliasName), Old: old, New: raw}); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, &kmsapi.Error{Type: "ConflictException", Message: "the alias changed concurrently; retry"}
		}
		return nil, err
	}
	return empty, nil
}

type deleteAliasRequest struct {
	AliasName string `json:"AliasName"`
}

func (s *Service) deleteAlias(ctx context.Context, p kmsapi.Principal, req *deleteAliasRequest) (*emptyResponse, error) {
	a, old, err := s.existingAlias(p, req.AliasName)
	if err != nil {
		return nil, err
	}
	if _, err := s.useKey(p, a.TargetKeyID, false, keyUse{op: "DeleteAlias", state: stateAny}); err != nil {
		return nil, err
	}
	if err := s.store.Propose(ctx, domain.Replacement{ID: keystore.AliasRecordID(p.AccountID, req.AliasName), Old: old}); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, &kmsapi.Error{Type: "ConflictException", Message: "the alias changed concurrently; retry"}
		}
		return nil, err
	}
	return empty, nil
}

type aliasEntry struct {
	AliasName       string `json:"AliasName"`
	AliasArn        string `json:"AliasArn"`
	TargetKeyId     string `json:"TargetKeyId"`
	CreationDate    *epoch `json:"CreationDate"`
	LastUpdatedDate *epoch `json:"LastUpdatedDate"`
}

// accountAliases returns the aliases of an account, sorted by name.
func (s *Service) accountAliases(account string) []*keystore.Alias {
	prefix := keystore.AliasRecordID(account, "")
	var out []*keystore.Alias
	s.store.Records(prefix, func(id string, raw []byte) bool {
		if a, err := keystore.ParseAlias(raw); err == nil {
			out = append(out, a)
		}
		return true
	})
	// By name: the record IDs of names too long to stand in them (a hash
	// after '#') do not sort with the others, and pagination's markers are
	// names.
	slices.SortFunc(out, func(a, b *keystore.Alias) int { return strings.Compare(a.Name, b.Name) })
	return out
}

type listAliasesRequest struct {
	KeyId  *string `json:"KeyId"`
	Limit  *int    `json:"Limit"`
	Marker *string `json:"Marker"`
}

func (s *Service) listAliases(ctx context.Context, p kmsapi.Principal, req *listAliasesRequest) (*listAliasesResponse, error) {
	all := s.accountAliases(p.AccountID)
	if req.KeyId != nil {
		k, err := s.resolveKey(p, *req.KeyId, false)
		if err != nil {
			return nil, err
		}
		var mine []*keystore.Alias
		for _, a := range all {
			if a.TargetKeyID == k.rec.Key.KeyID {
				mine = append(mine, a)
			}
		}
		all = mine
	}
	page, next, err := paginate(all, func(a *keystore.Alias) string { return a.Name }, req.Limit, req.Marker, 100, 50)
	if err != nil {
		return nil, err
	}
	out := []aliasEntry{}
	for _, a := range page {
		out = append(out, aliasEntry{AliasName: a.Name, AliasArn: s.aliasARN(p.AccountID, a.Name), TargetKeyId: a.TargetKeyID,
			CreationDate: unix(a.Created), LastUpdatedDate: unix(a.Updated)})
	}
	return &listAliasesResponse{Aliases: out, page: pageOf(next)}, nil
}
