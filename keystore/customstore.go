package keystore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/internal/strictjson"
	"github.com/trentkms/trent/internal/wire"
)

// Custom key stores (the KMS API's CreateCustomKeyStore and its kin). A
// custom key store lives under "c/" + its ID; the index "cn/" + account +
// "/" + the SHA-256 of its name (hex) names the store that holds a name,
// so that two concurrent creations of one name cannot both commit (each
// proposes the index with no old value).
//
// A store's secret (the kmsuser PIN of a PKCS#11 store, the secret access
// key of an XKS proxy credential) is never in a record in the clear: it is
// an hbk.Blob made by an HSM under the store's own HBK, whose token (sealed
// under a domain key like a key record's) the record also holds
// (docs/hsm-boundary.md, Custom key stores).

// Object types.
const (
	TypeCustomKeyStore byte = 0x48
	TypeStoreNameIndex byte = 0x49
)

// Custom key store types, as the KMS API names them.
const (
	StoreTypeCloudHSM = "AWS_CLOUDHSM"
	StoreTypeExternal = "EXTERNAL_KEY_STORE"
)

// Origins of keys in custom key stores.
const (
	OriginCloudHSM         = "AWS_CLOUDHSM"
	OriginExternalKeyStore = "EXTERNAL_KEY_STORE"
)

// Connection states, as the KMS API names them. A record holds the
// cluster's state: DISCONNECTED, CONNECTING (a ConnectCustomKeyStore was
// accepted and the leader has not yet connected), CONNECTED or FAILED (the
// leader's connection failed; ErrorCode says why).
const (
	ConnDisconnected = "DISCONNECTED"
	ConnConnecting   = "CONNECTING"
	ConnConnected    = "CONNECTED"
	ConnFailed       = "FAILED"
)

// MaxStoreRecord bounds a custom key store record.
const MaxStoreRecord = 16 << 10

// CustomKeyStore is a custom key store record. Times are Unix seconds.
type CustomKeyStore struct {
	ID      string `json:"id"`
	Account string `json:"account"`
	Region  string `json:"region"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	Created int64  `json:"created"`

	// A PKCS#11 store (AWS_CLOUDHSM): the token label (CloudHsmClusterId)
	// and the module path (TrustAnchorCertificate).
	TokenLabel string `json:"token_label,omitempty"`
	ModulePath string `json:"module_path,omitempty"`

	// An external key store: the proxy's URI endpoint and path, its
	// connectivity and the access key ID of its credential.
	XksURIEndpoint  string `json:"xks_uri_endpoint,omitempty"`
	XksURIPath      string `json:"xks_uri_path,omitempty"`
	XksConnectivity string `json:"xks_connectivity,omitempty"`
	XksAccessKeyID  string `json:"xks_access_key_id,omitempty"`

	// Token is the store's HBK token (KeyID: the store ID) and Secret the
	// hbk.Blob of its secret under that HBK, with the encryption context
	// SecretContext(ID).
	Token  []byte `json:"token"`
	Secret []byte `json:"secret"`

	// State is the cluster's connection state, ErrorCode the
	// ConnectionErrorCode of FAILED, and Attempt counts the
	// ConnectCustomKeyStore requests accepted (each host connects once per
	// attempt).
	State     string `json:"state"`
	ErrorCode string `json:"error_code,omitempty"`
	Attempt   uint64 `json:"attempt"`
}

// SecretContextKey is the encryption context key under which a store's
// secret is sealed (its value is the store ID).
const SecretContextKey = "trent:custom-key-store"

// SecretContext is the encryption context of store id's secret.
func SecretContext(id string) map[string]string { return map[string]string{SecretContextKey: id} }

var storeIDRE = regexp.MustCompile(`^cks-[0-9a-f]{17}$`)

// ValidStoreID reports whether id is a custom key store ID as KMS makes
// them ("cks-" and 17 hexadecimal digits).
func ValidStoreID(id string) bool { return storeIDRE.MatchString(id) }

// StoreRecordID is where custom key store id lives in the key store.
func StoreRecordID(id string) string { return "c/" + id }

// StorePrefix is the prefix of every custom key store record ID.
const StorePrefix = "c/"

// StoreNameIndexID is where the index of an account's store name lives.
func StoreNameIndexID(account, name string) string {
	sum := sha256.Sum256([]byte(name))
	return "cn/" + account + "/" + hex.EncodeToString(sum[:])
}

// Clone returns a deep copy.
func (c *CustomKeyStore) Clone() *CustomKeyStore {
	o := *c
	o.Token, o.Secret = slices.Clone(c.Token), slices.Clone(c.Secret)
	return &o
}

// Marshal encodes the record: header ‖ v24 JSON.
func (c *CustomKeyStore) Marshal() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	j, err := jsonMarshal(c)
	if err != nil {
		return nil, err
	}
	if len(j) > MaxStoreRecord {
		return nil, fmt.Errorf("%w: a custom key store record of %d bytes (at most %d)", ErrTooLarge, len(j), MaxStoreRecord)
	}
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeCustomKeyStore)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(j) })
	return b.Bytes()
}

func (c *CustomKeyStore) check() error {
	if !ValidStoreID(c.ID) {
		return fmt.Errorf("%w: custom key store ID", ErrMalformed)
	}
	if c.Type != StoreTypeCloudHSM && c.Type != StoreTypeExternal {
		return fmt.Errorf("%w: custom key store type", ErrMalformed)
	}
	switch c.State {
	case ConnDisconnected, ConnConnecting, ConnConnected, ConnFailed:
	default:
		return fmt.Errorf("%w: connection state", ErrMalformed)
	}
	if kid, _, err := hbk.TokenKeyID(c.Token); err != nil || kid != c.ID {
		return fmt.Errorf("%w: custom key store token", ErrMalformed)
	}
	if bl, err := hbk.ParseBlob(c.Secret); err != nil || bl.KeyID != c.ID {
		return fmt.Errorf("%w: custom key store secret", ErrMalformed)
	}
	return nil
}

// ParseCustomKeyStore decodes a custom key store record strictly.
func ParseCustomKeyStore(in []byte) (*CustomKeyStore, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeCustomKeyStore, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	var j cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&j) || len(j) > MaxStoreRecord || !s.Empty() {
		return nil, fmt.Errorf("%w: custom key store record", ErrMalformed)
	}
	c := &CustomKeyStore{}
	if err := strictjson.Unmarshal(j, MaxStoreRecord, c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// IsCustomKeyStoreRecord reports whether raw has a custom key store
// record's header.
func IsCustomKeyStoreRecord(raw []byte) bool {
	return len(raw) > 5 && string(raw[:4]) == wire.Magic && raw[5] == TypeCustomKeyStore
}

// StoreNameIndex is the value of a store name index: the store's ID.
type StoreNameIndex struct {
	StoreID string
}

// Marshal encodes the index: header ‖ v8 store ID.
func (x *StoreNameIndex) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeStoreNameIndex)
	if !ValidStoreID(x.StoreID) {
		b.SetError(fmt.Errorf("%w: custom key store ID", ErrMalformed))
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(x.StoreID)) })
	return b.Bytes()
}

// ParseStoreNameIndex decodes a store name index strictly.
func ParseStoreNameIndex(in []byte) (*StoreNameIndex, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeStoreNameIndex, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	var id cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&id) || !s.Empty() || !ValidStoreID(string(id)) {
		return nil, fmt.Errorf("%w: store name index", ErrMalformed)
	}
	return &StoreNameIndex{StoreID: string(id)}, nil
}
