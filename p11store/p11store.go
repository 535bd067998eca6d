// Package p11store is the PKCS#11 custom key store of a service host:
// kms.KeyStores over a customer's own token in any PKCS#11 module, Trent's
// analog of an AWS CloudHSM key store (docs/hsm-boundary.md, Custom key
// stores). The module is named by its path, which must be one the host
// operator allowed (Stores.Modules, with the environment the module reads
// at C_Initialize); the token by its label; the login is the token's user
// PIN (CloudHSM's kmsuser). Nothing here is specific to a module: SoftHSM
// and any other module that has CKM_AES_KEY_GEN and CKM_AES_GCM serve.
//
// # Keys
//
// Every KMS key of the store is a persistent AES-256 token object
// (CKA_TOKEN), private, sensitive and not extractable, whose CKA_LABEL and
// CKA_ID are the KMS key ID, as AWS labels a CloudHSM key store's keys.
// Encrypt, Decrypt and Random run in the token (CKM_AES_GCM with a 12-byte
// IV from the token's C_GenerateRandom, C_GenerateRandom); the key's value
// never leaves it.
//
// # Concurrency and limits
//
// A Stores and the TokenStores it connects are safe for concurrent use
// (package hsm's session pool). PKCS#11 calls are not cancellable: a
// context's deadline is not honoured once a call into the module began.
// Several stores on one module in one process share its one initialised
// instance (package hsm), so they must agree on its environment: a second
// environment for a module in use fails as INTERNAL_ERROR.
package p11store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/kms"
)

// Stores is kms.KeyStores over the modules the host operator allowed.
type Stores struct {
	// Modules are the allowed modules by the path requests name
	// (CreateCustomKeyStore's TrustAnchorCertificate).
	Modules map[string]hsm.ModuleConfig
	// MaxSessions bounds each token's session pool (package hsm's
	// default if zero).
	MaxSessions int
}

var _ kms.KeyStores = (*Stores)(nil)

func (s *Stores) module(path string) (hsm.ModuleConfig, bool) {
	m, ok := s.Modules[path]
	return m, ok
}

// Check reports whether path is allowed and its module holds a token
// labelled label.
func (s *Stores) Check(_ context.Context, path, label string) error {
	m, ok := s.module(path)
	if !ok {
		return fmt.Errorf("p11store: %q: %w", path, kms.ErrStoreModule)
	}
	err := hsm.CheckToken(m, label)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, hsm.ErrModuleNotFound):
		return fmt.Errorf("p11store: %w: %w", kms.ErrStoreModule, err)
	case errors.Is(err, hsm.ErrTokenNotFound):
		return fmt.Errorf("p11store: %w: %w", kms.ErrStoreTokenNotFound, err)
	}
	return fmt.Errorf("p11store: %w", err)
}

// Connect opens the token and logs in; its error is a *kms.StoreError
// with the ConnectionErrorCode KMS would report.
func (s *Stores) Connect(_ context.Context, cfg kms.TokenConfig) (kms.TokenStore, error) {
	m, ok := s.module(cfg.ModulePath)
	if !ok {
		return nil, &kms.StoreError{Code: kms.CodeNetworkErrors, Err: fmt.Errorf("p11store: %q: %w", cfg.ModulePath, kms.ErrStoreModule)}
	}
	t, err := hsm.Open(hsm.Config{Module: m, TokenLabel: cfg.TokenLabel, PIN: string(cfg.PIN), MaxSessions: s.MaxSessions})
	if err != nil {
		return nil, &kms.StoreError{Code: ConnectionErrorCode(err), Err: err}
	}
	return &tokenStore{t: t, keys: map[string]*hsm.SecretKey{}}, nil
}

// ConnectionErrorCode is the ConnectionErrorCode of an error of hsm.Open:
// a wrong PIN is INVALID_CREDENTIALS, a locked one USER_LOCKED_OUT, a
// token without a user PIN USER_NOT_FOUND, no token with the label
// CLUSTER_NOT_FOUND, a module that does not load or a token that is not
// present NETWORK_ERRORS (the store cannot be reached), anything else
// INTERNAL_ERROR.
func ConnectionErrorCode(err error) string {
	switch {
	case errors.Is(err, hsm.ErrPINIncorrect):
		return kms.CodeInvalidCredentials
	case errors.Is(err, hsm.ErrPINLocked):
		return kms.CodeUserLockedOut
	case errors.Is(err, hsm.ErrPINNotInitialized):
		return kms.CodeUserNotFound
	case errors.Is(err, hsm.ErrTokenNotFound), errors.Is(err, hsm.ErrTokenNotInitialized):
		return kms.CodeClusterNotFound
	case errors.Is(err, hsm.ErrModuleNotFound), errors.Is(err, hsm.ErrTokenNotPresent), errors.Is(err, hsm.ErrDevice):
		return kms.CodeNetworkErrors
	}
	return kms.CodeInternalError
}

// tokenStore is kms.TokenStore over an open token; it caches key handles
// by label.
type tokenStore struct {
	t    *hsm.Token
	mu   sync.Mutex
	keys map[string]*hsm.SecretKey
}

// storeErr maps package hsm's errors to kms's.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, hsm.ErrKeyNotFound):
		return fmt.Errorf("p11store: %w", kms.ErrStoreKeyNotFound)
	case errors.Is(err, hsm.ErrKeyExists):
		return fmt.Errorf("p11store: %w", kms.ErrStoreKeyExists)
	case errors.Is(err, hsm.ErrAuthentication):
		return fmt.Errorf("p11store: %w", kms.ErrRefused)
	case errors.Is(err, hsm.ErrClosed), errors.Is(err, hsm.ErrSessionLost), errors.Is(err, hsm.ErrDevice),
		errors.Is(err, hsm.ErrTokenNotPresent), errors.Is(err, hsm.ErrPINIncorrect), errors.Is(err, hsm.ErrNotLoggedIn):
		return fmt.Errorf("p11store: %w: %w", kms.ErrStoreUnavailable, err)
	}
	return fmt.Errorf("p11store: %w", err)
}

func (s *tokenStore) CreateKey(_ context.Context, label string) error {
	return storeErr(s.t.GeneratePersistentAESKey(label, true, true))
}

// key returns the handle of the key labelled label, finding it once.
func (s *tokenStore) key(label string) (*hsm.SecretKey, error) {
	s.mu.Lock()
	k := s.keys[label]
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	k, info, err := s.t.PersistentAESKey(label)
	if err != nil {
		return nil, err
	}
	if info.Bits != 256 || !info.Encrypt || !info.Decrypt {
		return nil, fmt.Errorf("p11store: the token's key %q is not an AES-256 key for encryption and decryption", label)
	}
	s.mu.Lock()
	s.keys[label] = k
	s.mu.Unlock()
	return k, nil
}

// withKey runs f with the key labelled label; a handle the token no
// longer knows (the object was destroyed and made again) is looked up
// once more.
func (s *tokenStore) withKey(label string, f func(k *hsm.SecretKey) error) error {
	for attempt := 0; ; attempt++ {
		k, err := s.key(label)
		if err != nil {
			return storeErr(err)
		}
		err = f(k)
		if attempt == 0 && errors.Is(err, hsm.ErrInvalidHandle) {
			s.mu.Lock()
			delete(s.keys, label)
			s.mu.Unlock()
			continue
		}
		return storeErr(err)
	}
}

func (s *tokenStore) Encrypt(_ context.Context, label string, aad, plaintext []byte) (iv, ct []byte, err error) {
	err = s.withKey(label, func(k *hsm.SecretKey) error {
		var err error
		if iv, err = s.t.Random(hsm.GCMNonceSize); err != nil {
			return err
		}
		ct, err = k.Seal(iv, plaintext, aad)
		return err
	})
	return iv, ct, err
}

func (s *tokenStore) Decrypt(_ context.Context, label string, iv, aad, ct []byte) (pt []byte, err error) {
	err = s.withKey(label, func(k *hsm.SecretKey) error {
		var err error
		pt, err = k.Open(iv, ct, aad)
		return err
	})
	return pt, err
}

func (s *tokenStore) Random(_ context.Context, n int) ([]byte, error) {
	b, err := s.t.Random(n)
	return b, storeErr(err)
}

func (s *tokenStore) Close() error { return s.t.Close() }
