package kms

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/policy"
)

// The KMS key store as the API sees it: key records and aliases in the
// Store (package keystore encodes them), read locally and written with
// compare-and-swap proposals.

// key is a parsed key record.
type key struct {
	raw    []byte
	rec    *keystore.Record
	policy *policy.Policy
	conds  []string // keyConditionValues(&rec.Key); nil: compute them
	arn    string   // rec.Key.ARN(); "": compute it
}

// ARN is k's ARN (rec.Key.ARN()), kept by a parsed key.
func (k *key) ARN() string {
	if k.arn != "" {
		return k.arn
	}
	return k.rec.Key.ARN()
}

// parsed caches what was parsed from key-store records, by record ID and
// checked against the record's current bytes, so that the hot path
// (Encrypt, Decrypt) parses neither JSON nor policies per request.
type parsed[T any] struct {
	mu sync.Mutex
	m  map[string]parsedEntry[T]
}

type parsedEntry[T any] struct {
	raw []byte
	v   T
}

// get returns the value parsed from raw (the current bytes of record id),
// parsing it with parse on a miss.
func (c *parsed[T]) get(id string, raw []byte, parse func([]byte) (T, error)) (T, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.v, nil
	}
	v, err := parse(raw)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 100000 {
		c.m = map[string]parsedEntry[T]{}
	}
	c.m[id] = parsedEntry[T]{raw, v}
	c.mu.Unlock()
	return v, nil
}

// keyCache holds the host's parsed key records, aliases and grants.
type keyCache struct {
	keys    parsed[*key]
	aliases parsed[*keystore.Alias]
	grant   parsed[*keystore.Grant] // by grant record ID
	grants  parsed[*grantSet]       // a key's grants, by grant index ID
}

// loadKey returns the key record id (a key ID), nil if absent.
func (s *Service) loadKey(id string) (*key, error) {
	raw, ok := s.store.Get(keystore.KeyRecordID(id))
	if !ok {
		return nil, nil
	}
	return s.keys.keys.get(id, raw, func(raw []byte) (*key, error) {
		rec, err := keystore.ParseRecord(raw)
		if err != nil {
			return nil, err
		}
		p, err := policy.Parse([]byte(rec.Key.Policy))
		if err != nil {
			return nil, err
		}
		return &key{raw: raw, rec: rec, policy: p, conds: keyConditionValues(&rec.Key), arn: rec.Key.ARN()}, nil
	})
}

// errNotFound is KMS's answer for a key or alias that does not exist.
func errNotFound(format string, a ...any) error {
	return kmsapi.Errorf("NotFoundException", format, a...)
}

// resolveKey finds the key a request names: a key ID or key ARN, and if
// aliasOK an alias name or alias ARN. Key IDs and alias names are looked
// up in the caller's account; ARNs name their account.
func (s *Service) resolveKey(p kmsapi.Principal, keyID string, aliasOK bool) (*key, error) {
	k, _, err := s.resolveKeyAlias(p, keyID, aliasOK)
	return k, err
}

// resolveKeyAlias is resolveKey that also returns the alias name the
// request used, if any (the kms:RequestAlias condition key).
func (s *Service) resolveKeyAlias(p kmsapi.Principal, keyID string, aliasOK bool) (*key, string, error) {
	if keyID == "" {
		return nil, "", validation("keyId", "Member must have length greater than or equal to 1", keyID)
	}
	if len(keyID) > 2048 {
		return nil, "", validation("keyId", "Member must have length less than or equal to 2048", "…")
	}
	account, rest := p.AccountID, keyID
	if strings.HasPrefix(keyID, "arn:") {
		parts := strings.SplitN(keyID, ":", 6)
		if len(parts) != 6 || parts[1] != "aws" || parts[2] != "kms" || parts[3] != s.region() || parts[4] == "" {
			return nil, "", errNotFound("Invalid arn %s", keyID)
		}
		account, rest = parts[4], parts[5]
		if id, ok := strings.CutPrefix(rest, "key/"); ok {
			rest = id
		} else if !strings.HasPrefix(rest, "alias/") {
			return nil, "", errNotFound("Invalid arn %s", keyID)
		}
	}
	alias := ""
	if strings.HasPrefix(rest, "alias/") {
		if !aliasOK {
			return nil, "", errNotFound("Invalid keyId %s", keyID)
		}
		alias = rest
		id := keystore.AliasRecordID(account, rest)
		raw, ok := s.store.Get(id)
		if !ok {
			return nil, "", errNotFound("Alias %s is not found.", s.aliasARN(account, rest))
		}
		a, err := s.keys.aliases.get(id, raw, keystore.ParseAlias)
		if err != nil {
			return nil, "", err
		}
		rest = a.TargetKeyID
	}
	if !keystore.ValidKeyID(rest) {
		return nil, "", errNotFound("Invalid keyId %s", keyID)
	}
	k, err := s.loadKey(rest)
	if err != nil {
		return nil, "", err
	}
	if k == nil || k.rec.Key.Account != account {
		return nil, "", errNotFound("Key '%s' does not exist", s.keyARN(account, rest))
	}
	return k, alias, nil
}

func (s *Service) region() string { return s.cfg.Region }

func (s *Service) keyARN(account, id string) string {
	return "arn:aws:kms:" + s.region() + ":" + account + ":key/" + id
}

func (s *Service) aliasARN(account, name string) string {
	return "arn:aws:kms:" + s.region() + ":" + account + ":" + name
}

// The use-a-key pipeline. Every operation that uses a key resolves it
// (resolveKeyAlias), then use checks, in KMS's order: the key policy and
// grants (authorizeWith) with the operation's condition keys and
// kms:RequestAlias when the request named an alias, the key's state, the
// key usage the operation table declares, the operation's own checks,
// and DryRun.

// stateCheck is what use asks of a key's state.
type stateCheck uint8

const (
	stateUsable     stateCheck = iota // enabled (usable)
	stateNotPending                   // not pending deletion (notPending)
	stateAny                          // none here (the handler's own, if any)
)

// keyUse is a request's use of a key.
type keyUse struct {
	op     string     // the table's operation: kms:<op> and its usage
	action string     // the policy action, if not kms:<op>
	cond   conditions // the operation's condition keys (nil: none)
	state  stateCheck
	check  func(k *key) error         // after the state and usage, before DryRun
	accept func(*keystore.Grant) bool // a grant that allows it must hold this
	dryRun bool
}

// useKey resolves the key keyID names (an alias too if aliasOK) and runs
// use on it.
func (s *Service) useKey(p kmsapi.Principal, keyID string, aliasOK bool, u keyUse) (*key, error) {
	k, alias, err := s.resolveKeyAlias(p, keyID, aliasOK)
	if err != nil {
		return nil, err
	}
	if _, err := s.use(p, k, alias, u); err != nil {
		return nil, err
	}
	return k, nil
}

// use is the pipeline after resolution: alias is the alias the request
// named ("" if none). It returns the grant that allowed the request (nil
// when the policy did).
func (s *Service) use(p kmsapi.Principal, k *key, alias string, u keyUse) (*keystore.Grant, error) {
	action := u.action
	if action == "" {
		action = "kms:" + u.op
	}
	g, err := s.authorizeAlias(p, action, k, u.cond, alias, u.accept)
	if err != nil {
		return nil, err
	}
	switch u.state {
	case stateUsable:
		err = s.usable(k)
	case stateNotPending:
		err = notPending(k)
	}
	if err != nil {
		return nil, err
	}
	if want := s.usage[u.op]; want != "" && k.rec.Key.KeyUsage != want {
		return nil, kmsapi.Errorf("InvalidKeyUsageException", "%s key usage is %s, not %s", k.rec.Key.ARN(), k.rec.Key.KeyUsage, want)
	}
	if u.check != nil {
		if err := u.check(k); err != nil {
			return nil, err
		}
	}
	if u.dryRun {
		return nil, errDryRun
	}
	return g, nil
}

// authorize asks the key's policy whether p may do action; cond adds
// condition keys to the ones every request has. When the policy neither
// allows nor denies (an implicit deny), a grant of the key to p may allow
// the action (grants.go); an explicit deny always wins.
func (s *Service) authorize(p kmsapi.Principal, action string, k *key, cond map[string][]string) error {
	_, err := s.authorizeWith(p, action, k, cond, nil)
	return err
}

// conditions yields an operation's condition keys. A key policy without
// conditions and a key without grants never read them, so they are built
// on the first call, if any (most requests: none).
type conditions func() map[string][]string

// fixedConditions are condition keys known up front.
func fixedConditions(m map[string][]string) conditions {
	if m == nil {
		return nil
	}
	return func() map[string][]string { return m }
}

// ecConditions are contextConditions(ec, alg) with extra's keys added,
// built on the first call.
func ecConditions(ec map[string]string, alg string, extra map[string][]string) conditions {
	var m map[string][]string
	return func() map[string][]string {
		if m == nil {
			m = merge(contextConditions(ec, alg), extra)
		}
		return m
	}
}

// authorizeWith is authorize that returns the grant that allowed the
// request (nil when the policy did); accept, if not nil, must hold for
// that grant. Its cost, with and without grants, is measured by
// BenchmarkAuthorizeGrants (docs/benchmarks.md).
func (s *Service) authorizeWith(p kmsapi.Principal, action string, k *key, cond map[string][]string, accept func(*keystore.Grant) bool) (*keystore.Grant, error) {
	return s.authorizeAlias(p, action, k, fixedConditions(cond), "", accept)
}

// authorizeAlias is authorizeWith for a request that named the key by
// alias (kms:RequestAlias; "" for none). The policy sees cond and
// kms:RequestAlias in the one map of the request's condition keys; a
// grant's constraints see cond (grantFor).
func (s *Service) authorizeAlias(p kmsapi.Principal, action string, k *key, cond conditions, alias string, accept func(*keystore.Grant) bool) (*keystore.Grant, error) {
	var ctx map[string][]string // read only by a statement's conditions
	if k.policy.HasConditions() {
		var c map[string][]string
		if cond != nil {
			c = cond()
		}
		ctx = make(map[string][]string, 14+len(c))
		p.AddConditions(ctx)
		k.addConditions(ctx)
		for n, v := range c {
			ctx[n] = v
		}
		if alias != "" {
			ctx["kms:RequestAlias"] = []string{alias}
		}
	}
	arn := k.ARN()
	d := k.policy.Evaluate(&policy.Request{Principal: p.ARN, Account: p.AccountID, Action: action, Resource: arn, Context: ctx})
	if d == policy.Allow {
		return nil, nil
	}
	if d == policy.ImplicitDeny {
		if g := s.grantFor(p, action, k, cond, accept); g != nil {
			return g, nil
		}
	}
	why := "no resource-based policy allows the " + action + " action"
	if d == policy.ExplicitDeny {
		why = "an explicit deny in a resource-based policy"
	}
	return nil, kmsapi.Errorf(kmsapi.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s because %s", p.ARN, action, arn, why)
}

// keyConditions are the condition keys of p's request on key k: the
// request's own (aws:PrincipalArn, aws:SourceIp, aws:SecureTransport…;
// kmsapi.Principal.Conditions) and the key's. Every authorization and the
// lockout safety check of a new policy use them, so that the check sees
// what a later PutKeyPolicy will. The map has room for more keys besides.
func keyConditions(p kmsapi.Principal, k *keystore.Key, more int) map[string][]string {
	ctx := make(map[string][]string, 8+more)
	p.AddConditions(ctx)
	addKeyConditions(ctx, keyConditionValues(k))
	return ctx
}

// keyConditionValues are kms:KeySpec, kms:KeyUsage, kms:KeyOrigin,
// kms:MultiRegion and kms:MultiRegionKeyType ("" for a single-Region key)
// of k, in one array (a parsed key keeps them: key.conds).
func keyConditionValues(k *keystore.Key) []string {
	v := []string{k.KeySpec, k.KeyUsage, k.Origin, "false", ""}
	if k.MultiRegion != nil {
		v[3], v[4] = "true", "REPLICA"
		if k.IsPrimary() {
			v[4] = "PRIMARY"
		}
	}
	return v
}

// addKeyConditions adds a key's condition keys, from the values
// keyConditionValues made, to ctx.
func addKeyConditions(ctx map[string][]string, vs []string) {
	ctx["kms:keyspec"] = vs[0:1:1]
	ctx["kms:keyusage"] = vs[1:2:2]
	ctx["kms:keyorigin"] = vs[2:3:3]
	ctx["kms:multiregion"] = vs[3:4:4]
	if vs[4] != "" {
		ctx["kms:multiregionkeytype"] = vs[4:5:5]
	}
}

// addConditions adds k's condition keys to ctx (keyConditions' for k's
// record), from the values parsed with it.
func (k *key) addConditions(ctx map[string][]string) {
	if k.conds == nil {
		addKeyConditions(ctx, keyConditionValues(&k.rec.Key))
		return
	}
	addKeyConditions(ctx, k.conds)
}

// usable refuses a key that cannot be used for cryptography now.
//
// Imported material whose ValidTo has passed makes the key PendingImport
// here already, before key maintenance records it.
func (s *Service) usable(k *key) error {
	if materialExpired(&k.rec.Key, s.now()) {
		return kmsapi.Errorf("KMSInvalidStateException", errPendingImportF, k.rec.Key.ARN())
	}
	switch k.rec.Key.State {
	case keystore.StateEnabled:
		return nil
	case keystore.StatePendingImport:
		return kmsapi.Errorf("KMSInvalidStateException", errPendingImportF, k.rec.Key.ARN())
	case keystore.StateDisabled:
		return kmsapi.Errorf("DisabledException", "%s is disabled.", k.rec.Key.ARN())
	}
	return kmsapi.Errorf("KMSInvalidStateException", "%s is pending deletion.", k.rec.Key.ARN())
}

// notPending refuses a management change to a key pending deletion.
func notPending(k *key) error {
	if k.rec.Key.State == keystore.StatePendingDeletion {
		return kmsapi.Errorf("KMSInvalidStateException", "%s is pending deletion.", k.rec.Key.ARN())
	}
	return nil
}

// updateKey applies change to the current record of key id and commits it
// with compare-and-swap, retrying on a concurrent write. change gets a
// private copy.
func (s *Service) updateKey(ctx context.Context, id string, change func(r *keystore.Record) error) (*keystore.Record, error) {
	for range 8 {
		k, err := s.loadKey(id)
		if err != nil {
			return nil, err
		}
		if k == nil {
			return nil, errNotFound("Key '%s' does not exist", id)
		}
		r := k.rec.Clone()
		if err := change(r); err != nil {
			return nil, err
		}
		nw, err := r.Marshal()
		if err != nil {
			return nil, recordTooLarge(err)
		}
		err = s.store.Propose(ctx, domain.Replacement{ID: keystore.KeyRecordID(id), Old: k.raw, New: nw})
		if errors.Is(err, ErrConflict) {
			continue
		}
		return r, err
	}
	return nil, &kmsapi.Error{Type: "ConflictException", Message: "the key changed concurrently; retry"}
}

// recordTooLarge answers a key, grant or custom key store record over
// what the key store holds (keystore.ErrTooLarge) with
// LimitExceededException (400): a quota of this build, permanent for the
// request, which the KMS API's own limits on policies, descriptions, tags
// and grant constraints do not reach. Other errors pass.
func recordTooLarge(err error) error {
	if errors.Is(err, keystore.ErrTooLarge) {
		return kmsapi.Errorf("LimitExceededException", "The record would be larger than Trent stores: %v", err)
	}
	return err
}

// now is the Service's clock (Config.Clock).
func (s *Service) now() time.Time {
	if s.cfg.Clock != nil {
		return s.cfg.Clock()
	}
	return time.Now()
}

// validation is KMS's ValidationException for one field.
func validation(field, constraint string, value any) error {
	return kmsapi.Errorf(kmsapi.ValidationException,
		"1 validation error detected: Value '%v' at '%s' failed to satisfy constraint: %s", value, field, constraint)
}
