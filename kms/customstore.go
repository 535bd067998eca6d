package kms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Custom key stores: the customer's own PKCS#11 token (CustomKeyStoreType
// AWS_CLOUDHSM, Trent's analog of a CloudHSM cluster). The Service holds
// no connection itself but through Config.KeyStores, which a host wires to
// a PKCS#11 implementation (package p11store); this file is the
// per-host connection manager and the use of a connected store by the
// cryptographic operations.
//
// # Connection state for the cluster
//
// ConnectCustomKeyStore records the wish in the store's record (state
// CONNECTING, Attempt+1) and returns, as KMS does. Every host then connects
// to the token itself (KeyStoreMaintenance, which the host calls on every
// host, and on demand when a request needs the store). The leader records
// its own outcome in the record: CONNECTED, or FAILED with the
// ConnectionErrorCode. A host answers a record's CONNECTING or CONNECTED
// with what holds for itself as well: CONNECTING until its own connection
// for that attempt is up, FAILED with its own code if its own connection
// failed, and CONNECTED only when both the leader and it are connected.
// DisconnectCustomKeyStore records DISCONNECTED; every host closes its
// connection, and no host uses the store once it has read the record
// (every operation reads after a read barrier).

// TokenConfig names a PKCS#11 store's token: the module (a path the host
// operator allowed), the token label, and the kmsuser PIN.
type TokenConfig struct {
	ModulePath string
	TokenLabel string
	PIN        []byte // the caller clears it after Connect returns
}

// KeyStores connects this host to customers' PKCS#11 tokens.
type KeyStores interface {
	// Check reports whether the module is allowed and holds an
	// initialised token with the label, without logging in: an error
	// wrapping ErrStoreModule or ErrStoreTokenNotFound, or another error
	// for a failure of the module.
	Check(ctx context.Context, modulePath, tokenLabel string) error
	// Connect opens the token and logs in with the PIN. Its error is a
	// *StoreError naming the ConnectionErrorCode.
	Connect(ctx context.Context, cfg TokenConfig) (TokenStore, error)
}

// TokenStore is a connected PKCS#11 store: every key is an AES-256 token
// object, sensitive and not extractable, labelled with its KMS key ID.
// Errors: ErrStoreKeyExists, ErrStoreKeyNotFound, ErrRefused (a
// ciphertext that does not open), ErrStoreUnavailable (the connection
// failed: a retryable condition), anything else unexpected.
type TokenStore interface {
	CreateKey(ctx context.Context, label string) error
	// Encrypt seals plaintext with AES-256-GCM under the key labelled
	// label with aad, the token choosing the IV.
	Encrypt(ctx context.Context, label string, aad, plaintext []byte) (iv, ciphertext []byte, err error)
	Decrypt(ctx context.Context, label string, iv, aad, ciphertext []byte) ([]byte, error)
	// Random returns n bytes of the token's RNG.
	Random(ctx context.Context, n int) ([]byte, error)
	Close() error
}

// Errors of KeyStores and TokenStore.
var (
	ErrStoreModule        = errors.New("kms: PKCS#11 module not allowed or not loadable")
	ErrStoreTokenNotFound = errors.New("kms: no token with that label")
	ErrStoreKeyExists     = errors.New("kms: the token already holds a key with that label")
	ErrStoreKeyNotFound   = errors.New("kms: the token holds no key with that label")
	ErrStoreUnavailable   = errors.New("kms: the custom key store's connection failed")
)

// Connection error codes, as KMS names them (ConnectionErrorCode).
const (
	CodeInvalidCredentials = "INVALID_CREDENTIALS"
	CodeClusterNotFound    = "CLUSTER_NOT_FOUND"
	CodeNetworkErrors      = "NETWORK_ERRORS"
	CodeInternalError      = "INTERNAL_ERROR"
	CodeUserLockedOut      = "USER_LOCKED_OUT"
	CodeUserNotFound       = "USER_NOT_FOUND"
)

// StoreError is a failed connection: Code is the ConnectionErrorCode.
type StoreError struct {
	Code string
	Err  error
}

func (e *StoreError) Error() string { return "kms: custom key store: " + e.Code + ": " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

// codeOf is the ConnectionErrorCode of a Connect error.
func codeOf(err error) string {
	var se *StoreError
	if errors.As(err, &se) {
		return se.Code
	}
	return CodeInternalError
}

// conn is this host's connection to one store for one attempt.
type conn struct {
	attempt uint64
	done    chan struct{} // closed when the attempt ended
	started time.Time
	tok     TokenStore // set when a PKCS#11 store connected
	xks     XKSProxy   // set when an external key store connected
	code    string     // the ConnectionErrorCode when it failed
}

// ok reports whether the attempt connected.
func (c *conn) ok() bool { return c.tok != nil || c.xks != nil }

// close closes what the attempt opened.
func (c *conn) close() {
	if c.tok != nil {
		c.tok.Close()
	}
	if c.xks != nil {
		c.xks.Close()
	}
}

func (c *conn) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// conns are this host's store connections, by store ID.
type conns struct {
	mu sync.Mutex
	m  map[string]*conn
}

// loadStore returns custom key store id's record, nil if absent.
func (s *Service) loadStore(id string) (*keystore.CustomKeyStore, []byte, error) {
	raw, ok := s.store.Get(keystore.StoreRecordID(id))
	if !ok {
		return nil, nil, nil
	}
	c, err := keystore.ParseCustomKeyStore(raw)
	return c, raw, err
}

// connFor returns this host's connection to store c for its current
// attempt, starting it if none is under way.
func (s *Service) connFor(c *keystore.CustomKeyStore) *conn {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	if s.conns.m == nil {
		s.conns.m = map[string]*conn{}
	}
	cur := s.conns.m[c.ID]
	if cur != nil && cur.attempt == c.Attempt && !cur.retry(c, s.now()) {
		return cur
	}
	if cur != nil {
		s.closeConn(cur)
	}
	n := &conn{attempt: c.Attempt, done: make(chan struct{}), started: s.now()}
	s.conns.m[c.ID] = n
	rec := c.Clone()
	go s.connect(rec, n)
	return n
}

// retryAfter is how long a host waits before it tries again a connection
// of its own that failed while the cluster's record says CONNECTED (its
// own transient condition; the leader's failure is recorded FAILED and
// waits for DisconnectCustomKeyStore, as in KMS).
const retryAfter = 10 * time.Second

// retry reports whether this host should make a new attempt at store c's
// connection: its own failed, the cluster's is CONNECTED, and it is old.
func (c *conn) retry(rec *keystore.CustomKeyStore, now time.Time) bool {
	return rec.State == keystore.ConnConnected && c.finished() && !c.ok() && now.Sub(c.started) >= retryAfter
}

// closeConn closes a connection once its attempt ended.
func (s *Service) closeConn(c *conn) {
	go func() {
		<-c.done
		c.close()
	}()
}

// connect opens the token of store c: the PIN is opened by an HSM, used
// for the login, and cleared.
func (s *Service) connect(c *keystore.CustomKeyStore, n *conn) {
	defer close(n.done)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if c.Type == keystore.StoreTypeExternal {
		s.connectXKS(ctx, c, n)
		return
	}
	if s.cfg.KeyStores == nil {
		n.code = CodeNetworkErrors
		s.log.Info("custom key store", "store", c.ID, "err", "this host has no PKCS#11 key store support")
		return
	}
	pin, err := s.openSecret(ctx, c)
	if err != nil {
		n.code = CodeInternalError
		s.log.Info("custom key store: open secret", "store", c.ID, "err", err)
		return
	}
	defer clear(pin)
	tok, err := s.cfg.KeyStores.Connect(ctx, TokenConfig{ModulePath: c.ModulePath, TokenLabel: c.TokenLabel, PIN: pin})
	if err != nil {
		n.code = codeOf(err)
		s.log.Info("custom key store: connect", "store", c.ID, "code", n.code, "err", err)
		return
	}
	n.tok = tok
}

// openSecret has an HSM open store c's secret.
func (s *Service) openSecret(ctx context.Context, c *keystore.CustomKeyStore) ([]byte, error) {
	ec, err := encodeContext(keystore.SecretContext(c.ID))
	if err != nil {
		return nil, err
	}
	out, err := call(ctx, s, hsmcmd.DecryptRequest{Token: c.Token, Context: ec, Blob: c.Secret}, hsmcmd.ParseDecryptResponse)
	if err != nil {
		return nil, err
	}
	return out.Plaintext, nil
}

// sealSecret has an HSM make store id's HBK token and seal secret under
// it.
func (s *Service) sealSecret(ctx context.Context, id string, secret []byte) (token, blob []byte, err error) {
	tok, err := s.createHBK(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ec, err := encodeContext(keystore.SecretContext(id))
	if err != nil {
		return nil, nil, err
	}
	out, err := call(ctx, s, hsmcmd.EncryptRequest{Token: tok, Context: ec, Plaintext: secret}, hsmcmd.ParseEncryptResponse)
	if err != nil {
		return nil, nil, internal(s, "CreateCustomKeyStore", err)
	}
	return tok, out.Blob, nil
}

// connectionState is the ConnectionState and ConnectionErrorCode this
// host answers for store c (the package comment above).
func (s *Service) connectionState(c *keystore.CustomKeyStore) (state, code string) {
	switch c.State {
	case keystore.ConnDisconnected:
		return keystore.ConnDisconnected, ""
	case keystore.ConnFailed:
		return keystore.ConnFailed, c.ErrorCode
	}
	n := s.connFor(c)
	if !n.finished() {
		return keystore.ConnConnecting, ""
	}
	if !n.ok() {
		return keystore.ConnFailed, n.code
	}
	return c.State, ""
}

// errStoreNotConnected answers a use of a key whose store is not
// connected, as KMS does.
func errStoreNotConnected(k *key) error {
	return kmsapi.Errorf("KMSInvalidStateException", "%s is unavailable: its custom key store %s is not connected.", k.rec.Key.ARN(), k.rec.Key.CustomKeyStoreID)
}

// tokenFor returns this host's connection to the store of key k (an
// AWS_CLOUDHSM key), waiting for it if it is being made.
func (s *Service) tokenFor(ctx context.Context, k *key) (TokenStore, error) {
	c, _, err := s.loadStore(k.rec.Key.CustomKeyStoreID)
	if err != nil {
		return nil, internal(s, "custom key store", err)
	}
	if c == nil || c.State != keystore.ConnConnected {
		return nil, errStoreNotConnected(k)
	}
	n, err := s.waitConn(ctx, c)
	if err != nil {
		return nil, err
	}
	return n.tok, nil
}

// waitConn waits for this host's connection to store c, which the
// cluster reports connected: a connection of this host that failed or is
// not up in time is this host's transient condition, answered with a
// retryable 500.
func (s *Service) waitConn(ctx context.Context, c *keystore.CustomKeyStore) (*conn, error) {
	n := s.connFor(c)
	select {
	case <-n.done:
	case <-ctx.Done():
		return nil, errStoreHost
	}
	if !n.ok() {
		return nil, errStoreHost
	}
	return n, nil
}

var errStoreHost = &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500,
	Message: "this host is not connected to the custom key store; retry"}

// storeAnswer maps a TokenStore error of op: a ciphertext that does not
// open is refused, a key the token lacks or a failed connection is a
// retryable internal error.
func (s *Service) storeAnswer(op string, err error, refused error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrRefused) && refused != nil:
		return refused
	}
	s.log.Info(op, "custom key store", err)
	return &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500, Message: "the custom key store did not answer"}
}

// KeyStoreMaintenance brings this host's store connections in line with
// the records: it connects to every store the cluster wants connected,
// closes the others, and on the leader (leader true) records the
// leader's outcome of a CONNECTING store. Hosts call it when the key
// store changed, and again while it reports pending work (a connection
// under way, or a CONNECTING store).
func (s *Service) KeyStoreMaintenance(ctx context.Context, leader bool) (pending bool) {
	live := map[string]bool{}
	var stores []*keystore.CustomKeyStore
	s.store.Records(keystore.StorePrefix, func(_ string, raw []byte) bool {
		if c, err := keystore.ParseCustomKeyStore(raw); err == nil {
			stores = append(stores, c)
		}
		return true
	})
	for _, c := range stores {
		if c.State != keystore.ConnConnecting && c.State != keystore.ConnConnected {
			continue
		}
		live[c.ID] = true
		n := s.connFor(c)
		if leader && c.State == keystore.ConnConnecting && n.finished() {
			s.recordOutcome(ctx, c.ID, n)
		}
		if !n.finished() || c.State == keystore.ConnConnecting || (c.State == keystore.ConnConnected && !n.ok()) {
			pending = true // an outcome to record, or this host's own to retry
		}
	}
	s.conns.mu.Lock()
	for id, n := range s.conns.m {
		if !live[id] {
			s.closeConn(n)
			delete(s.conns.m, id)
		}
	}
	s.conns.mu.Unlock()
	return pending
}

// recordOutcome records the leader's outcome of a store's attempt.
func (s *Service) recordOutcome(ctx context.Context, id string, n *conn) {
	_, err := s.updateStore(ctx, id, func(c *keystore.CustomKeyStore) error {
		if c.State != keystore.ConnConnecting || c.Attempt != n.attempt {
			return errNoChange
		}
		if n.ok() {
			c.State, c.ErrorCode = keystore.ConnConnected, ""
		} else {
			c.State, c.ErrorCode = keystore.ConnFailed, n.code
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		s.log.Info("custom key store: record state", "store", id, "err", err)
	}
}

var errNoChange = errors.New("kms: no change")

// updateStore applies change to store id's record with compare-and-swap.
func (s *Service) updateStore(ctx context.Context, id string, change func(c *keystore.CustomKeyStore) error) (*keystore.CustomKeyStore, error) {
	for range 8 {
		c, raw, err := s.loadStore(id)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, errStoreNotFound(id)
		}
		c = c.Clone()
		if err := change(c); err != nil {
			return nil, err
		}
		nw, err := c.Marshal()
		if err != nil {
			return nil, recordTooLarge(err)
		}
		err = s.store.Propose(ctx, domain.Replacement{ID: keystore.StoreRecordID(id), Old: raw, New: nw})
		if errors.Is(err, ErrConflict) {
			continue
		}
		return c, err
	}
	return nil, &kmsapi.Error{Type: "ConflictException", Message: "the custom key store changed concurrently; retry"}
}

func errStoreNotFound(id string) error {
	return kmsapi.Errorf("CustomKeyStoreNotFoundException", "Custom key store %s does not exist.", id)
}

// storeKeyAAD is the additional data of a custom key store key's AES-GCM:
// label ‖ 0x00 ‖ v8 key ID ‖ the encoded encryption context.
func storeKeyAAD(keyID string, ec []byte) []byte { return labelledAAD(labelStoreBlob, keyID, ec) }

// labelledAAD is label ‖ 0x00 ‖ v8 key ID ‖ ec, the additional data of
// both kinds of custom key store ciphertext (storeKeyAAD, xksAAD).
func labelledAAD(label, keyID string, ec []byte) []byte {
	out := make([]byte, 0, len(label)+2+len(keyID)+len(ec))
	out = append(out, label...)
	out = append(out, 0, byte(len(keyID)))
	out = append(out, keyID...)
	return append(out, ec...)
}

// storeEncrypt encrypts plaintext under AWS_CLOUDHSM key k in its store.
func (s *Service) storeEncrypt(ctx context.Context, op string, k *key, ec, plaintext []byte) ([]byte, error) {
	tok, err := s.tokenFor(ctx, k)
	if err != nil {
		return nil, err
	}
	iv, ct, err := tok.Encrypt(ctx, k.rec.Key.KeyID, storeKeyAAD(k.rec.Key.KeyID, ec), plaintext)
	if err := s.storeAnswer(op, err, nil); err != nil {
		return nil, err
	}
	blob, err := (&storeBlob{KeyID: k.rec.Key.KeyID, IV: iv, Ciphertext: ct}).Marshal()
	if err != nil {
		return nil, internal(s, op, fmt.Errorf("kms: custom key store answer: %w", err))
	}
	return blob, nil
}

// storeDecrypt opens a storeBlob of AWS_CLOUDHSM key k.
func (s *Service) storeDecrypt(ctx context.Context, op string, k *key, ec []byte, bl *storeBlob) ([]byte, error) {
	tok, err := s.tokenFor(ctx, k)
	if err != nil {
		return nil, err
	}
	pt, err := tok.Decrypt(ctx, k.rec.Key.KeyID, bl.IV, storeKeyAAD(k.rec.Key.KeyID, ec), bl.Ciphertext)
	if err := s.storeAnswer(op, err, errInvalidCiphertext); err != nil {
		return nil, err
	}
	return pt, nil
}

// inStore reports whether key k is in a custom key store.
func inStore(k *key) bool { return k.rec.Key.CustomKeyStoreID != "" }

// accountStores returns the custom key stores of an account, by ID.
func (s *Service) accountStores(account string) []*keystore.CustomKeyStore {
	var out []*keystore.CustomKeyStore
	s.store.Records(keystore.StorePrefix, func(_ string, raw []byte) bool {
		if c, err := keystore.ParseCustomKeyStore(raw); err == nil && c.Account == account {
			out = append(out, c)
		}
		return true
	})
	return out
}

// storeKeys counts the keys of store id.
func (s *Service) storeKeys(id string) int {
	n := 0
	s.store.Records("k/", func(kid string, _ []byte) bool {
		if k, err := s.loadKey(strings.TrimPrefix(kid, "k/")); err == nil && k != nil && k.rec.Key.CustomKeyStoreID == id {
			n++
		}
		return true
	})
	return n
}

// errStoreRecipient refuses a Recipient (Nitro enclave) with a key in a
// custom key store: the store's token cannot seal to an enclave.
var errStoreRecipient = kmsapi.Errorf(kmsapi.UnsupportedOperation, "a Recipient is not supported with a KMS key in a custom key store")

// storeDataKey serves GenerateDataKey(WithoutPlaintext) with an
// AWS_CLOUDHSM key: the data key comes from the store token's RNG and is
// encrypted in the token. It passes through this host's memory (as the
// plaintext of GenerateDataKey does anyway), cleared afterwards.
func (s *Service) storeDataKey(ctx context.Context, op string, k *key, ec []byte, size int, withPlaintext, recipient bool) (*generateDataKeyResponse, error) {
	if recipient {
		return nil, errStoreRecipient
	}
	tok, err := s.tokenFor(ctx, k)
	if err != nil {
		return nil, err
	}
	dk, err := tok.Random(ctx, size)
	if err := s.storeAnswer(op, err, nil); err != nil {
		return nil, err
	}
	if len(dk) != size {
		return nil, internal(s, op, errors.New("kms: short random answer from the custom key store"))
	}
	blob, err := s.storeEncrypt(ctx, op, k, ec, dk)
	if err != nil {
		clear(dk)
		return nil, err
	}
	res := &generateDataKeyResponse{CiphertextBlob: blob, KeyId: k.rec.Key.ARN()}
	if withPlaintext {
		res.Plaintext = dk
	} else {
		clear(dk)
	}
	return res, nil
}

// storeReEncrypt serves a ReEncrypt whose source or destination key is in
// a custom key store: the plaintext is opened where the source key lives
// (the HSMs, or the store's token), sealed where the destination key
// lives, and cleared; it passes through this host's memory, the one
// operation where it does (docs/hsm-boundary.md).
func (s *Service) storeReEncrypt(ctx context.Context, p kmsapi.Principal, src *key, tok []byte, sb *customBlob, srcEC, raw []byte, dst *key, dstEC []byte) ([]byte, error) {
	var pt []byte
	if sb != nil {
		var err error
		if pt, err = s.customOpen(ctx, p, "ReEncrypt", src, srcEC, sb); err != nil {
			return nil, err
		}
	} else {
		out, err := call(ctx, s, hsmcmd.DecryptRequest{Token: tok, Context: srcEC, Blob: raw}, hsmcmd.ParseDecryptResponse)
		if err := s.hsmAnswer("ReEncrypt", err, errInvalidCiphertext); err != nil {
			return nil, err
		}
		pt = out.Plaintext
	}
	defer clear(pt)
	if inStore(dst) {
		return s.customSeal(ctx, p, "ReEncrypt", dst, dstEC, pt)
	}
	out, err := call(ctx, s, hsmcmd.EncryptRequest{Token: dst.rec.Current(), Context: dstEC, Plaintext: pt}, hsmcmd.ParseEncryptResponse)
	if err != nil {
		return nil, internal(s, "ReEncrypt", err)
	}
	return out.Blob, nil
}

// CloseKeyStores closes this host's custom key store connections, waiting
// for attempts under way; the host calls it when it stops.
func (s *Service) CloseKeyStores() {
	s.conns.mu.Lock()
	m := s.conns.m
	s.conns.m = nil
	s.conns.mu.Unlock()
	for _, n := range m {
		<-n.done
		n.close()
	}
}

// customBlob is the ciphertext of a key in a custom key store: one of a
// PKCS#11 store's (storeBlob) and an external key store's (xksBlob).
type customBlob struct {
	store *storeBlob
	xks   *xksBlob
}

// parseCustomBlob parses either kind.
func parseCustomBlob(raw []byte) (*customBlob, error) {
	if b, err := parseStoreBlob(raw); err == nil {
		return &customBlob{store: b}, nil
	}
	b, err := parseXKSBlob(raw)
	if err != nil {
		return nil, err
	}
	return &customBlob{xks: b}, nil
}

func (b *customBlob) keyID() string {
	if b.store != nil {
		return b.store.KeyID
	}
	return b.xks.KeyID
}

// fits reports whether the blob is of the kind key k's ciphertexts are.
func (b *customBlob) fits(k *key) bool {
	if b.store != nil {
		return k.rec.Key.Origin == keystore.OriginCloudHSM
	}
	return k.rec.Key.Origin == keystore.OriginExternalKeyStore
}

// customSeal encrypts plaintext under key k of a custom key store.
func (s *Service) customSeal(ctx context.Context, p kmsapi.Principal, op string, k *key, ec, plaintext []byte) ([]byte, error) {
	if k.rec.Key.Origin == keystore.OriginExternalKeyStore {
		return s.xksSeal(ctx, p, op, k, ec, plaintext)
	}
	return s.storeEncrypt(ctx, op, k, ec, plaintext)
}

// customOpen opens a customBlob of key k (fits(k) holds).
func (s *Service) customOpen(ctx context.Context, p kmsapi.Principal, op string, k *key, ec []byte, b *customBlob) ([]byte, error) {
	if b.xks != nil {
		return s.xksOpen(ctx, p, op, k, ec, b.xks)
	}
	return s.storeDecrypt(ctx, op, k, ec, b.store)
}

// sealUnder has an HSM seal a new secret of store c under its HBK.
func (s *Service) sealUnder(ctx context.Context, c *keystore.CustomKeyStore, secret []byte) ([]byte, error) {
	ec, err := encodeContext(keystore.SecretContext(c.ID))
	if err != nil {
		return nil, err
	}
	out, err := call(ctx, s, hsmcmd.EncryptRequest{Token: c.Token, Context: ec, Plaintext: secret}, hsmcmd.ParseEncryptResponse)
	if err != nil {
		return nil, internal(s, "UpdateCustomKeyStore", err)
	}
	return out.Blob, nil
}
