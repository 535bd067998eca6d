package keystore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/strictjson"
	"github.com/trentkms/trent/internal/wire"
)

// Grants. A grant of a key lives under "g/" + key ID + "/" + grant ID
// (GrantRecordID): header ‖ v16 JSON. Grants never change once written;
// they are created and removed. Every key with at least one grant also
// has a grant index under "g/" + key ID (GrantIndexID): header ‖ u16 n ‖
// n × 32-byte grant ID, strictly increasing, n from 1 to MaxGrantsPerKey;
// the index and the grant records it names are written in one
// compare-and-swap entry, so the index bytes determine a key's grants
// exactly. The index is what lets a host find a key's grants with one
// record lookup: the FSM has no prefix search.

// Object types of grant records.
const (
	TypeGrant      byte = 0x42
	TypeGrantIndex byte = 0x43
)

// Limits of grants.
const (
	MaxGrantsPerKey       = 1000 // Trent's bound; KMS allows 50000
	MaxGrantName          = 256
	MaxGrantPrincipal     = 256
	MaxGrantContextPairs  = 8   // per constraint, as KMS
	MaxGrantContextLength = 384 // characters of a constraint key or value, as KMS
	// maxGrantJSON bounds a grant's JSON (within its v16): the largest
	// grant the KMS API allows, a constraint of 8 pairs of 384 characters
	// each way that the encoding writes as \u00XX (six bytes), takes about
	// 39 KiB (TestLargestLegalGrantFits).
	maxGrantJSON = 48 << 10
)

// MaxGrantOperations bounds a grant's operations (KMS has 17 grant
// operations; which names are valid is the KMS service's operation table,
// package kms, not this encoding's).
const MaxGrantOperations = 32

// validOperationName is the shape of an operation name: an upper-case
// letter, then letters, at most 64.
var validOperationName = regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)

// GrantConstraints are a grant's encryption context constraints: at most
// one of them is set (non-empty).
type GrantConstraints struct {
	EncryptionContextEquals map[string]string `json:"encryption_context_equals,omitempty"`
	EncryptionContextSubset map[string]string `json:"encryption_context_subset,omitempty"`
}

// Empty reports whether no constraint is set.
func (c *GrantConstraints) Empty() bool {
	return len(c.EncryptionContextEquals) == 0 && len(c.EncryptionContextSubset) == 0
}

// Grant is a grant record. Created is Unix seconds.
type Grant struct {
	GrantID           string           `json:"grant_id"`
	KeyID             string           `json:"key_id"`
	Account           string           `json:"account"` // the issuing account
	Name              string           `json:"name,omitempty"`
	GranteePrincipal  string           `json:"grantee_principal"`
	RetiringPrincipal string           `json:"retiring_principal,omitempty"`
	Operations        []string         `json:"operations"` // sorted, unique
	Constraints       GrantConstraints `json:"constraints"`
	Created           int64            `json:"created"`
}

// GrantRecordID is where grant grantID of key keyID lives in the key store
// (2 + 36 + 1 + 64 bytes: within domain.MaxKeyID).
func GrantRecordID(keyID, grantID string) string { return "g/" + keyID + "/" + grantID }

// GrantIndexID is where the grant index of key keyID lives.
func GrantIndexID(keyID string) string { return "g/" + keyID }

var (
	grantIDRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	grantNameRE = regexp.MustCompile(`^[a-zA-Z0-9:/_-]{1,256}$`)
	principalRE = regexp.MustCompile(`^[\w+=,.@:/-]{1,256}$`)
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
)

// ValidGrantID reports whether id is a grant ID: 64 lower-case hex digits.
func ValidGrantID(id string) bool { return grantIDRE.MatchString(id) }

// ValidGrantName reports whether name is a grant name KMS accepts.
func ValidGrantName(name string) bool { return grantNameRE.MatchString(name) }

// ValidGrantPrincipal reports whether p has the form KMS accepts for a
// grantee or retiring principal.
func ValidGrantPrincipal(p string) bool { return principalRE.MatchString(p) }

// ValidGrantContext reports whether ec fits a grant constraint: 1 to 8
// pairs, keys of 1 to 384 characters, values of at most 384.
func ValidGrantContext(ec map[string]string) bool {
	if len(ec) == 0 || len(ec) > MaxGrantContextPairs {
		return false
	}
	for k, v := range ec {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) ||
			utf8.RuneCountInString(k) > MaxGrantContextLength || utf8.RuneCountInString(v) > MaxGrantContextLength {
			return false
		}
	}
	return true
}

// check validates a grant's fields.
func (g *Grant) check() error {
	switch {
	case !ValidGrantID(g.GrantID) || !ValidKeyID(g.KeyID) || !accountRE.MatchString(g.Account):
		return errors.New("grant, key or account ID")
	case g.Name != "" && !ValidGrantName(g.Name):
		return errors.New("name")
	case !ValidGrantPrincipal(g.GranteePrincipal) || (g.RetiringPrincipal != "" && !ValidGrantPrincipal(g.RetiringPrincipal)):
		return errors.New("principal")
	case len(g.Operations) == 0 || len(g.Operations) > MaxGrantOperations:
		return errors.New("operations")
	}
	for i, op := range g.Operations {
		if !validOperationName.MatchString(op) || (i > 0 && g.Operations[i-1] >= op) {
			return errors.New("operations not names, sorted and unique")
		}
	}
	c := &g.Constraints
	if c.EncryptionContextEquals != nil && c.EncryptionContextSubset != nil {
		return errors.New("two constraints")
	}
	for _, ec := range []map[string]string{c.EncryptionContextEquals, c.EncryptionContextSubset} {
		if ec != nil && !ValidGrantContext(ec) {
			return errors.New("constraint")
		}
	}
	return nil
}

// Marshal encodes the grant: header ‖ v16 JSON (maps encode with sorted
// keys, so the encoding is deterministic).
func (g *Grant) Marshal() ([]byte, error) {
	if err := g.check(); err != nil {
		return nil, fmt.Errorf("keystore: grant: %w", err)
	}
	j, err := jsonMarshal(g)
	if err != nil {
		return nil, err
	}
	if len(j) > maxGrantJSON {
		return nil, fmt.Errorf("%w: a grant of %d bytes (at most %d)", ErrTooLarge, len(j), maxGrantJSON)
	}
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeGrant)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(j) })
	return b.Bytes()
}

// ParseGrant decodes a grant record strictly.
func ParseGrant(in []byte) (*Grant, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeGrant, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	var j cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&j) || !s.Empty() {
		return nil, fmt.Errorf("%w: grant", ErrMalformed)
	}
	g := &Grant{}
	if err := strictjson.Unmarshal(j, maxGrantJSON, g); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := g.check(); err != nil {
		return nil, fmt.Errorf("%w: grant %v", ErrMalformed, err)
	}
	return g, nil
}

// IsGrantRecord reports whether raw has a grant record's header.
func IsGrantRecord(raw []byte) bool {
	return len(raw) > 5 && string(raw[:4]) == wire.Magic && raw[5] == TypeGrant
}

// MarshalGrantIndex encodes a key's grant index; ids must be grant IDs,
// 1 to MaxGrantsPerKey of them. They are sorted into the encoding.
func MarshalGrantIndex(ids []string) ([]byte, error) {
	if len(ids) == 0 || len(ids) > MaxGrantsPerKey {
		return nil, fmt.Errorf("keystore: %d grants in an index", len(ids))
	}
	sorted := slices.Sorted(slices.Values(ids))
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeGrantIndex)
	b.AddUint16(uint16(len(sorted)))
	for i, id := range sorted {
		raw, err := hex.DecodeString(id)
		if !ValidGrantID(id) || err != nil || (i > 0 && sorted[i-1] == id) {
			return nil, fmt.Errorf("keystore: grant ID %q in an index", id)
		}
		b.AddBytes(raw)
	}
	return b.Bytes()
}

// ParseGrantIndex decodes a grant index strictly; the IDs come back
// sorted.
func ParseGrantIndex(in []byte) ([]string, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeGrantIndex, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	var n uint16
	if !s.ReadUint16(&n) || n == 0 || n > MaxGrantsPerKey {
		return nil, fmt.Errorf("%w: grant index count", ErrMalformed)
	}
	ids := make([]string, 0, n)
	for range n {
		var raw []byte
		if !s.ReadBytes(&raw, 32) {
			return nil, fmt.Errorf("%w: grant index", ErrMalformed)
		}
		id := hex.EncodeToString(raw)
		if len(ids) > 0 && ids[len(ids)-1] >= id {
			return nil, fmt.Errorf("%w: grant index order", ErrMalformed)
		}
		ids = append(ids, id)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing bytes", ErrMalformed)
	}
	return ids, nil
}
