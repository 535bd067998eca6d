package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host/kmsapi"
	"github.com/trentkms/trent/internal/mutation"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/policy"
)

// The KMS key store as the API sees it: key records and aliases in the
// raft FSM (package keystore), read locally on any host and written only
// by the leader with compare-and-swap entries (a follower's kmsapi server
// forwards key-store writes to the leader, which verifies them again).

// keyWrites are the KMS operations that change the key store.
var keyWrites = map[string]bool{
	"CreateKey": true, "EnableKey": true, "DisableKey": true, "ScheduleKeyDeletion": true,
	"CancelKeyDeletion": true, "CreateAlias": true, "UpdateAlias": true, "DeleteAlias": true,
	"TagResource": true, "UntagResource": true, "UpdateKeyDescription": true, "PutKeyPolicy": true,
	"EnableKeyRotation": true, "DisableKeyRotation": true, "RotateKeyOnDemand": true,
	"CreateGrant": true, "RetireGrant": true, "RevokeGrant": true,
}

// forwardKMS names the leader's forwarding URL for a key-store write on a
// follower.
func (h *Host) forwardKMS(ctx context.Context, op string) (string, error) {
	if !keyWrites[op] || h.IsLeader() {
		return "", nil
	}
	u, err := h.leaderURL(ctx)
	if err != nil {
		return "", &kmsapi.Error{Type: kmsapi.DependencyTimeout, Message: "no raft leader is known", Status: 503}
	}
	if u == h.APIURL() {
		return "", nil
	}
	return u + kmsapi.ForwardPath, nil
}

// key is a parsed key record.
type key struct {
	raw    []byte
	rec    *keystore.Record
	policy *policy.Policy
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
func (h *Host) loadKey(id string) (*key, error) {
	raw, ok := h.fsm.Key(keystore.KeyRecordID(id))
	if !ok {
		return nil, nil
	}
	return h.keys.keys.get(id, raw, func(raw []byte) (*key, error) {
		rec, err := keystore.ParseRecord(raw)
		if err != nil {
			return nil, err
		}
		p, err := policy.Parse([]byte(rec.Key.Policy))
		if err != nil {
			return nil, err
		}
		return &key{raw: raw, rec: rec, policy: p}, nil
	})
}

// errNotFound is KMS's answer for a key or alias that does not exist.
func errNotFound(format string, a ...any) error {
	return kmsapi.Errorf("NotFoundException", format, a...)
}

// resolveKey finds the key a request names: a key ID or key ARN, and if
// aliasOK an alias name or alias ARN. Key IDs and alias names are looked
// up in the caller's account; ARNs name their account.
func (h *Host) resolveKey(p kmsapi.Principal, keyID string, aliasOK bool) (*key, error) {
	k, _, err := h.resolveKeyAlias(p, keyID, aliasOK)
	return k, err
}

// resolveKeyAlias is resolveKey that also returns the alias name the
// request used, if any (the kms:RequestAlias condition key).
func (h *Host) resolveKeyAlias(p kmsapi.Principal, keyID string, aliasOK bool) (*key, string, error) {
	if keyID == "" {
		return nil, "", validation("keyId", "Member must have length greater than or equal to 1", keyID)
	}
	if len(keyID) > 2048 {
		return nil, "", validation("keyId", "Member must have length less than or equal to 2048", "…")
	}
	account, rest := p.AccountID, keyID
	if strings.HasPrefix(keyID, "arn:") {
		parts := strings.SplitN(keyID, ":", 6)
		if len(parts) != 6 || parts[1] != "aws" || parts[2] != "kms" || parts[3] != h.region() || parts[4] == "" {
			return nil, "", errNotFound("Invalid arn %s", keyID)
		}
		account, rest = parts[4], parts[5]
		if id, ok := strings.CutPrefix(rest, "key/"); ok {
			rest = id
		} else if !strings.HasPrefix(rest, "alias/") || mutation.On("kms.alias-arn-unresolved") {
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
		raw, ok := h.fsm.Key(id)
		if !ok {
			if mutation.On("kms.unknown-alias-validation-error") {
				return nil, "", validation("keyId", "Member must name an existing alias", keyID)
			}
			return nil, "", errNotFound("Alias %s is not found.", h.aliasARN(account, rest))
		}
		a, err := h.keys.aliases.get(id, raw, keystore.ParseAlias)
		if err != nil {
			return nil, "", err
		}
		rest = a.TargetKeyID
	}
	if !keystore.ValidKeyID(rest) {
		return nil, "", errNotFound("Invalid keyId %s", keyID)
	}
	k, err := h.loadKey(rest)
	if err != nil {
		return nil, "", err
	}
	if k == nil || k.rec.Key.Account != account {
		return nil, "", errNotFound("Key '%s' does not exist", h.keyARN(account, rest))
	}
	return k, alias, nil
}

func (h *Host) region() string {
	if h.cfg.Credentials == nil {
		return ""
	}
	return h.cfg.Credentials.Region
}

func (h *Host) keyARN(account, id string) string {
	return "arn:aws:kms:" + h.region() + ":" + account + ":key/" + id
}

func (h *Host) aliasARN(account, name string) string {
	return "arn:aws:kms:" + h.region() + ":" + account + ":" + name
}

// authorize asks the key's policy whether p may do action; cond adds
// condition keys to the ones every request has. When the policy neither
// allows nor denies (an implicit deny), a grant of the key to p may allow
// the action (grants.go); an explicit deny always wins.
func (h *Host) authorize(p kmsapi.Principal, action string, k *key, cond map[string][]string) error {
	_, err := h.authorizeWith(p, action, k, cond, nil)
	return err
}

// authorizeWith is authorize that returns the grant that allowed the
// request (nil when the policy did); accept, if not nil, must hold for
// that grant.
//
// Cost (BenchmarkAuthorizeGrants, kms:Encrypt with an encryption context,
// a 2-core development VM): allowed by the policy, which never looks at
// grants, 1.2 µs; refused on a key without grants 1.9 µs, of which the
// grant lookup (the key's grant index is absent: one record lookup) is
// 70 ns; allowed by a grant 1.8 µs on a key with 10 grants and 1.9 µs
// with 1000 (the parsed grants are cached by the index bytes and indexed
// by grantee). Finding a key's grants by scanning the FSM's records
// instead took 2.5 ms with 10,000 records, hence the grant index.
func (h *Host) authorizeWith(p kmsapi.Principal, action string, k *key, cond map[string][]string, accept func(*keystore.Grant) bool) (*keystore.Grant, error) {
	ctx := keyConditions(p, &k.rec.Key)
	for n, v := range cond {
		ctx[n] = v
	}
	arn := k.rec.Key.ARN()
	d := k.policy.Evaluate(&policy.Request{Principal: p.ARN, Account: p.AccountID, Action: action, Resource: arn, Context: ctx})
	if d == policy.Allow {
		return nil, nil
	}
	if d == policy.ImplicitDeny {
		if g := h.grantFor(p, action, k, cond, accept); g != nil {
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
// what a later PutKeyPolicy will.
func keyConditions(p kmsapi.Principal, k *keystore.Key) map[string][]string {
	ctx := p.Conditions()
	ctx["kms:keyspec"] = []string{k.KeySpec}
	ctx["kms:keyusage"] = []string{k.KeyUsage}
	ctx["kms:keyorigin"] = []string{k.Origin}
	return ctx
}

// usable refuses a key that cannot be used for cryptography now.
func usable(k *key) error {
	switch k.rec.Key.State {
	case keystore.StateEnabled:
		return nil
	case keystore.StateDisabled:
		if mutation.On("kms.disabled-key-usable") {
			return nil
		}
		return kmsapi.Errorf("DisabledException", "%s is disabled.", k.rec.Key.ARN())
	}
	if mutation.On("kms.pending-deletion-key-usable") {
		return nil
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

// errConflict says a compare-and-swap lost to a concurrent write.
var errConflict = errors.New("host: key store changed concurrently")

// propose commits replacements to the key store on the leader and reports
// errConflict if any compare-and-swap did not hold.
func (h *Host) propose(rs ...domain.Replacement) error {
	entry, err := domain.ReplaceKeysEntry(rs)
	if err != nil {
		return err
	}
	f := h.raft.Apply(entry, 10*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return &kmsapi.Error{Type: kmsapi.DependencyTimeout, Message: "raft leadership changed; retry", Status: 503}
		}
		return fmt.Errorf("host: raft: %w", err)
	}
	switch r := f.Response().(type) {
	case error:
		return r
	case domain.ApplyResult:
		if r.Replaced != len(rs) {
			return errConflict
		}
		return nil
	}
	return errors.New("host: unexpected raft response")
}

// updateKey applies change to the current record of key id and commits it
// with compare-and-swap, retrying on a concurrent write. change gets a
// private copy.
func (h *Host) updateKey(id string, change func(r *keystore.Record) error) (*keystore.Record, error) {
	for range 8 {
		k, err := h.loadKey(id)
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
			return nil, err
		}
		err = h.propose(domain.Replacement{ID: keystore.KeyRecordID(id), Old: k.raw, New: nw})
		if errors.Is(err, errConflict) {
			continue
		}
		return r, err
	}
	return nil, &kmsapi.Error{Type: "ConflictException", Message: "the key changed concurrently; retry"}
}

// now is the host's clock (Config.Clock in tests).
func (h *Host) now() time.Time {
	if h.cfg.Clock != nil {
		return h.cfg.Clock()
	}
	return time.Now()
}

// validation is KMS's ValidationException for one field.
func validation(field, constraint string, value any) error {
	return kmsapi.Errorf(kmsapi.ValidationException,
		"1 validation error detected: Value '%v' at '%s' failed to satisfy constraint: %s", value, field, constraint)
}
