// Package keystore is the encoding of KMS key records, aliases and grants
// in the raft key store (domain.FSM's records). A key record is the key's
// metadata (JSON, as DescribeKey and the management operations need it)
// and its HBK tokens, one per key version, oldest first; the last is the
// current version. An alias record names its target key. A grant record
// (grant.go) lets a principal use a key.
//
// Records are written by the raft leader's service host and applied by
// every host's FSM as opaque bytes; this package parses them strictly
// (versioned header, no trailing bytes, strict JSON) and holds no secret:
// HBK tokens are sealed under a domain key (package hbk).
//
// # Record IDs
//
// A key lives under "k/" + its key ID (a UUID, or "mrk-" and 32 hex
// digits for a multi-Region key), an alias under "a/" +
// account ID + "/" + alias name (or its hash, AliasRecordID), a grant under "g/" + key ID + "/" + grant
// ID and a key's grant index under "g/" + key ID; all fit domain.MaxKeyID.
package keystore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/internal/strictjson"
	"github.com/trentkms/trent/internal/wire"
)

// Object types.
const (
	TypeKey   byte = 0x40
	TypeAlias byte = 0x41
)

// Limits.
const (
	MaxVersions = 1024 // HBKs of one key (KMS allows 25 on-demand rotations plus yearly ones)
	// MaxMetadata bounds a record's JSON metadata. It holds what the
	// KMS API lets a key have, at its worst: a 32 KiB policy whose every
	// byte the JSON encoding doubles, an 8 KiB description and 50 tags of
	// 128 + 256 bytes whose every byte it writes as \u00XX (six),
	// MaxVersions rotations and the wrapping key tokens of 8 imports, in
	// 323,958 bytes (TestLargestLegalKeyFits).
	MaxMetadata = 512 << 10
	MaxRegions  = 32 // regions of one multi-Region key
)

// Errors.
var (
	ErrMalformed = errors.New("keystore: malformed record")
	// ErrTooLarge: a key record's metadata over MaxMetadata, or the
	// record over domain.MaxKeyRecord, a grant's JSON over its bound, a
	// custom key store record over MaxStoreRecord; not written.
	ErrTooLarge = errors.New("keystore: record too large")
	ErrVersion  = errors.New("keystore: unsupported protocol version")
)

// Key states, as KMS names them.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
	StatePendingImport   = "PendingImport"
)

// Tag is a resource tag.
type Tag struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

// Rotation is a key version after the first.
type Rotation struct {
	Date int64  `json:"date"` // Unix seconds
	Type string `json:"type"` // AUTOMATIC or ON_DEMAND
}

// Key is a key's metadata. Times are Unix seconds (0: unset).
type Key struct {
	KeyID                string     `json:"key_id"`
	Account              string     `json:"account"`
	Region               string     `json:"region"`
	Created              int64      `json:"created"`
	Description          string     `json:"description"`
	State                string     `json:"state"`
	DeletionDate         int64      `json:"deletion_date,omitempty"`
	PendingWindowDays    int        `json:"pending_window_days,omitempty"`
	KeySpec              string     `json:"key_spec"`
	KeyUsage             string     `json:"key_usage"`
	Origin               string     `json:"origin"`
	Policy               string     `json:"policy"`
	Tags                 []Tag      `json:"tags"`
	RotationEnabled      bool       `json:"rotation_enabled"`
	RotationPeriodDays   int        `json:"rotation_period_days,omitempty"`
	NextRotation         int64      `json:"next_rotation,omitempty"`
	Rotations            []Rotation `json:"rotations"`
	OnDemandRotationDate int64      `json:"on_demand_rotation_date,omitempty"`
	// PendingRotation is a multi-Region primary key's rotation whose
	// new version (the last token) decrypts but is not yet current: it
	// becomes current, and a Rotation, once every replica region holds
	// it (docs/protocol.md, Multi-Region keys). Nil otherwise (a former
	// primary may keep one, decrypt-only, until the new primary's next
	// rotation reaches it).
	PendingRotation *Rotation `json:"pending_rotation,omitempty"`
	// PublicKey is an asymmetric key's public key (DER
	// SubjectPublicKeyInfo); empty for symmetric and HMAC keys.
	PublicKey []byte `json:"public_key,omitempty"`
	// Import is an EXTERNAL key's import state; nil for other keys.
	Import *Import `json:"import,omitempty"`
	// CustomKeyStoreID is the custom key store of a key of Origin
	// AWS_CLOUDHSM or EXTERNAL_KEY_STORE; XksKeyID is the external key of
	// the latter (customstore.go).
	CustomKeyStoreID string `json:"custom_key_store_id,omitempty"`
	XksKeyID         string `json:"xks_key_id,omitempty"`
	// MultiRegion is a multi-Region key's configuration; nil for a
	// single-Region key.
	MultiRegion *MultiRegion `json:"multi_region,omitempty"`
}

// MultiRegion is what a region's record of a multi-Region key knows of
// the key's regions (docs/protocol.md, Multi-Region keys): which holds
// the primary key and every region holding a copy, the primary's among
// them. The key's own Region is one of Regions.
type MultiRegion struct {
	PrimaryRegion string   `json:"primary_region"`
	Regions       []string `json:"regions"` // sorted, no duplicates
	// Unsynced is set on a primary key whose shared rotation state
	// (versions, rotation status) changed since every replica region
	// last took it; the primary's key maintenance pushes it again.
	Unsynced bool `json:"unsynced,omitempty"`
}

// IsPrimary reports whether k is a multi-Region primary key.
func (k *Key) IsPrimary() bool {
	return k.MultiRegion != nil && k.MultiRegion.PrimaryRegion == k.Region
}

// ARNIn is the key's ARN in region (a multi-Region key has the same key
// ID in every region).
func (k *Key) ARNIn(region string) string {
	return "arn:aws:kms:" + region + ":" + k.Account + ":key/" + k.KeyID
}

// Import is the import state of a key of Origin EXTERNAL (key import,
// BYOK): the wrapping keys of its GetParametersForImport calls still
// valid and what is known of its imported material. A key without
// material (PendingImport, or PendingDeletion before any import) has no
// HBK token.
type Import struct {
	// Handle is the random part of the import token (32 bytes) of the
	// last GetParametersForImport (valid until it expires); empty if none.
	Handle []byte `json:"handle,omitempty"`
	// WrappingToken is the key token of its RSA wrapping key (a wrapping
	// spec of package hsmcmd, made for this key by an HSM).
	WrappingToken []byte `json:"wrapping_token,omitempty"`
	WrappingAlg   string `json:"wrapping_alg,omitempty"`
	// ParametersValidTo is when the import token expires (Unix seconds).
	ParametersValidTo int64 `json:"parameters_valid_to,omitempty"`
	// Earlier are the parameters of the earlier GetParametersForImport
	// calls, oldest first, the last MaxEarlierImports of them, expired or
	// not: each import token stays valid for its 24 hours, as in AWS KMS,
	// unless more than MaxEarlierImports + 1 are made within them, and is
	// known as expired after them until dropped.
	Earlier []ImportParams `json:"earlier,omitempty"`
	// Check is the HSM's check value of the imported material and HBKID
	// the HBK ID of its token: a re-import must have the same check
	// value, and its token takes the same HBK ID. Both stay when the
	// material is deleted or expires.
	Check []byte `json:"check,omitempty"`
	HBKID []byte `json:"hbk_id,omitempty"`
	// ExpirationModel is KEY_MATERIAL_EXPIRES or
	// KEY_MATERIAL_DOES_NOT_EXPIRE; ValidTo (Unix seconds) is when the
	// material expires under the first.
	ExpirationModel string `json:"expiration_model,omitempty"`
	ValidTo         int64  `json:"valid_to,omitempty"`
}

// ImportParams are one earlier GetParametersForImport's: its import
// token's handle, its wrapping key token and algorithm, and its expiry.
type ImportParams struct {
	Handle            []byte `json:"handle"`
	WrappingToken     []byte `json:"wrapping_token"`
	WrappingAlg       string `json:"wrapping_alg"`
	ParametersValidTo int64  `json:"parameters_valid_to"`
}

// MaxEarlierImports bounds Import.Earlier.
const MaxEarlierImports = 7

// Last is the last GetParametersForImport's parameters (Handle empty if
// there was none).
func (im *Import) Last() ImportParams {
	return ImportParams{Handle: im.Handle, WrappingToken: im.WrappingToken, WrappingAlg: im.WrappingAlg, ParametersValidTo: im.ParametersValidTo}
}

// WrappingTokens points at the import's wrapping key tokens, the sealed
// items the re-encryption job re-seals: the last GetParametersForImport's
// (if any), then the earlier ones', in order. Nil for a nil Import.
func (im *Import) WrappingTokens() []*[]byte {
	if im == nil {
		return nil
	}
	var out []*[]byte
	if len(im.WrappingToken) > 0 {
		out = append(out, &im.WrappingToken)
	}
	for i := range im.Earlier {
		out = append(out, &im.Earlier[i].WrappingToken)
	}
	return out
}

// OriginExternal is the origin of a key whose material is imported.
const OriginExternal = "EXTERNAL"

// ARN is the key's ARN.
func (k *Key) ARN() string { return k.ARNIn(k.Region) }

// Record is a key record: metadata and HBK tokens (len(Rotations)+1 of
// them, oldest first, and the pending version's last if the key has a
// PendingRotation; none for an EXTERNAL key without material).
type Record struct {
	Key    Key
	Tokens [][]byte
}

// Current is the token of the current key version (never a pending
// one).
func (r *Record) Current() []byte { return r.Tokens[len(r.Committed())-1] }

// Committed is the tokens of the key's versions, without a pending
// one.
func (r *Record) Committed() [][]byte {
	if r.Key.PendingRotation != nil && len(r.Tokens) > 0 {
		return r.Tokens[:len(r.Tokens)-1]
	}
	return r.Tokens
}

// Clone returns a deep copy (records read from the FSM are shared).
func (r *Record) Clone() *Record {
	c := &Record{Key: r.Key}
	c.Key.Tags = slices.Clone(r.Key.Tags)
	c.Key.Rotations = slices.Clone(r.Key.Rotations)
	if r.Key.PendingRotation != nil {
		pr := *r.Key.PendingRotation
		c.Key.PendingRotation = &pr
	}
	if r.Key.Import != nil {
		im := *r.Key.Import
		im.Earlier = slices.Clone(im.Earlier)
		c.Key.Import = &im
	}
	if r.Key.MultiRegion != nil {
		mr := *r.Key.MultiRegion
		mr.Regions = slices.Clone(mr.Regions)
		c.Key.MultiRegion = &mr
	}
	for _, t := range r.Tokens {
		c.Tokens = append(c.Tokens, slices.Clone(t))
	}
	return c
}

// KeyRecordID is where key id lives in the key store.
func KeyRecordID(id string) string { return "k/" + id }

// AliasRecordID is where an account's alias lives in the key store:
// "a/" + account + "/" + name when that fits domain.MaxKeyID, else "a/" +
// account + "/#" + the SHA-256 of the name in hex ('#' is in no alias
// name, so the two forms never meet). Alias names are up to 256
// characters and a record ID up to 255 bytes: the long form keeps names
// of 241–256 characters (with a 12-digit account) storable, while every
// shorter name keeps the ID it always had. An alias record holds its name,
// so nothing reads the name from the ID.
func AliasRecordID(account, name string) string {
	id := "a/" + account + "/" + name
	if len(id) <= domain.MaxKeyID {
		return id
	}
	sum := sha256.Sum256([]byte(name))
	return "a/" + account + "/#" + hex.EncodeToString(sum[:])
}

// ValidKeyID reports whether id is a key ID as KMS makes them: a lower
// case UUID, or a multi-Region key's "mrk-" and 32 lower case hex digits.
// It is checked on every request, so by hand, not by regexp;
// FuzzValidKeyID holds it to the patterns
// ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ and
// ^mrk-[0-9a-f]{32}$.
func ValidKeyID(id string) bool {
	if len(id) != 36 {
		return false
	}
	if id[:4] == "mrk-" {
		return IsMultiRegionKeyID(id)
	}
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if id[i] != '-' {
				return false
			}
		} else if !lowerHex(id[i]) {
			return false
		}
	}
	return true
}

// IsMultiRegionKeyID reports whether id is a multi-Region key's ID.
func IsMultiRegionKeyID(id string) bool {
	if len(id) != 4+32 || id[:4] != "mrk-" {
		return false
	}
	for i := 4; i < len(id); i++ {
		if !lowerHex(id[i]) {
			return false
		}
	}
	return true
}

func lowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// Marshal encodes the record: header ‖ v24 metadata JSON ‖ u16 n ‖ n ×
// v16 HBK token.
func (r *Record) Marshal() ([]byte, error) {
	if err := r.Key.checkConfig(); err != nil {
		return nil, err
	}
	meta, err := marshalJSON(&r.Key)
	if err != nil {
		return nil, err
	}
	if !r.tokenCountOK(len(r.Tokens)) {
		return nil, fmt.Errorf("keystore: %d tokens for %d rotations", len(r.Tokens), len(r.Key.Rotations))
	}
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeKey)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(meta) })
	b.AddUint16(uint16(len(r.Tokens)))
	for _, t := range r.Tokens {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t) })
	}
	out, err := b.Bytes()
	if err == nil && len(out) > domain.MaxKeyRecord {
		return nil, fmt.Errorf("%w: a record of %d bytes (at most %d)", ErrTooLarge, len(out), domain.MaxKeyRecord)
	}
	return out, err
}

// tokenCountOK reports whether a record may have n HBK tokens: one per
// version (the pending one included), or none for an EXTERNAL key
// without material or an AWS_CLOUDHSM key (no rotations). Only a
// multi-Region key has a pending rotation (a primary's, or one a former
// primary kept when UpdatePrimaryRegion moved the primary away).
func (r *Record) tokenCountOK(n int) bool {
	pending := 0
	if r.Key.PendingRotation != nil {
		if r.Key.MultiRegion == nil {
			return false
		}
		pending = 1
	}
	if n == 0 {
		// An AWS_CLOUDHSM key's material is in its store's token only.
		return (r.Key.Origin == OriginExternal || r.Key.Origin == OriginCloudHSM) && len(r.Key.Rotations) == 0 && pending == 0
	}
	return n <= MaxVersions && n == len(r.Key.Rotations)+1+pending
}

func marshalJSON(k *Key) ([]byte, error) {
	c := *k
	if c.Tags == nil {
		c.Tags = []Tag{}
	}
	if c.Rotations == nil {
		c.Rotations = []Rotation{}
	}
	meta, err := jsonMarshal(&c)
	if err != nil {
		return nil, err
	}
	if len(meta) > MaxMetadata {
		return nil, fmt.Errorf("%w: %d bytes of metadata (at most %d)", ErrTooLarge, len(meta), MaxMetadata)
	}
	return meta, nil
}

// ParseRecord decodes a key record strictly; every HBK token must parse
// and name the record's key.
func ParseRecord(in []byte) (*Record, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeKey, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	var meta cryptobyte.String
	var n uint16
	if !s.ReadUint24LengthPrefixed(&meta) || len(meta) > MaxMetadata || !s.ReadUint16(&n) || n > MaxVersions {
		return nil, fmt.Errorf("%w: key record", ErrMalformed)
	}
	r := &Record{}
	if err := strictjson.Unmarshal(meta, MaxMetadata, &r.Key); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !ValidKeyID(r.Key.KeyID) || !r.tokenCountOK(int(n)) {
		return nil, fmt.Errorf("%w: key ID or version count", ErrMalformed)
	}
	if err := r.Key.checkConfig(); err != nil {
		return nil, err
	}
	for range n {
		var t cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&t) {
			return nil, fmt.Errorf("%w: HBK token", ErrMalformed)
		}
		kid, _, err := hbk.TokenKeyID(t) // an HBK token or a key token
		if err != nil || kid != r.Key.KeyID {
			return nil, fmt.Errorf("%w: sealed key token", ErrMalformed)
		}
		r.Tokens = append(r.Tokens, append([]byte(nil), t...))
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing bytes", ErrMalformed)
	}
	return r, nil
}

// checkConfig checks that a key has at most MaxEarlierImports earlier
// import parameters, a multi-Region configuration exactly when its ID is
// an mrk- ID, and that the configuration names its own region and its
// primary's among sorted, distinct regions.
func (k *Key) checkConfig() error {
	if im := k.Import; im != nil && len(im.Earlier) > MaxEarlierImports {
		return fmt.Errorf("%w: %d earlier import parameters", ErrMalformed, len(im.Earlier))
	}
	mr := k.MultiRegion
	if (mr != nil) != IsMultiRegionKeyID(k.KeyID) {
		return fmt.Errorf("%w: multi-Region configuration and key ID disagree", ErrMalformed)
	}
	if mr == nil {
		return nil
	}
	if len(mr.Regions) == 0 || len(mr.Regions) > MaxRegions || !slices.IsSorted(mr.Regions) ||
		len(slices.Compact(slices.Clone(mr.Regions))) != len(mr.Regions) ||
		!slices.Contains(mr.Regions, k.Region) || !slices.Contains(mr.Regions, mr.PrimaryRegion) {
		return fmt.Errorf("%w: multi-Region configuration", ErrMalformed)
	}
	return nil
}

// IsKeyRecord reports whether raw has a key record's header.
func IsKeyRecord(raw []byte) bool {
	return len(raw) > 5 && string(raw[:4]) == wire.Magic && raw[5] == TypeKey
}

// Alias is an alias record.
type Alias struct {
	Name        string `json:"name"` // "alias/…"
	TargetKeyID string `json:"target_key_id"`
	Created     int64  `json:"created"`
	Updated     int64  `json:"updated"`
}

var aliasRE = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)

// ValidAliasName reports whether name is an alias name KMS accepts for a
// customer alias (not the reserved alias/aws/ prefix).
func ValidAliasName(name string) bool {
	return aliasRE.MatchString(name) && !strings.HasPrefix(name, "alias/aws/")
}

// Marshal encodes the alias: header ‖ JSON.
func (a *Alias) Marshal() ([]byte, error) {
	j, err := jsonMarshal(a)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeAlias)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(j) })
	return b.Bytes()
}

// ParseAlias decodes an alias record strictly.
func ParseAlias(in []byte) (*Alias, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeAlias, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	var j cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&j) || !s.Empty() {
		return nil, fmt.Errorf("%w: alias", ErrMalformed)
	}
	a := &Alias{}
	if err := strictjson.Unmarshal(j, 4096, a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !strings.HasPrefix(a.Name, "alias/") || !ValidKeyID(a.TargetKeyID) {
		return nil, fmt.Errorf("%w: alias fields", ErrMalformed)
	}
	return a, nil
}
