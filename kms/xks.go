package kms

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// External key stores (CustomKeyStoreType EXTERNAL_KEY_STORE): keys whose
// outer encryption is done by an external key manager behind an XKS
// proxy (AWS's External Key Store Proxy API). The Service reaches proxies
// through Config.XKS, which a host wires to package xks's client
// (package xksstore). A key of Origin EXTERNAL_KEY_STORE has an HBK in
// the domain's HSMs as every key has, and an external key named by its
// XksKeyId: Encrypt seals with the HBK first (an hbk.Blob made by an HSM)
// and then has the proxy encrypt that blob under the external key (AWS's
// double encryption), so a ciphertext needs both to open.
//
// Connection states work as for PKCS#11 stores (customstore.go): a host's
// "connection" is a proxy client whose GetHealthStatus answered.

// XKSConfig names an external key store's proxy and its credential.
type XKSConfig struct {
	URIEndpoint string // "https://host[:port]"
	URIPath     string // "[/<prefix>]/kms/xks/v1"
	AccessKeyID string
	Secret      []byte // the RawSecretAccessKey; the caller clears it
}

// XKSProxies makes this host's clients of XKS proxies.
type XKSProxies interface {
	// Proxy makes a client of the proxy cfg names; nothing is sent. An
	// error wraps ErrXKSInvalidConfiguration.
	Proxy(cfg XKSConfig) (XKSProxy, error)
}

// XKSRequest is the requestMetadata of a proxy call.
type XKSRequest struct {
	PrincipalARN string
	Operation    string // the KMS operation
	RequestID    string
	KeyARN       string
}

// XKSKeyMetadata is GetKeyMetadata's answer.
type XKSKeyMetadata struct {
	KeySpec   string
	KeyUsage  []string
	KeyStatus string
}

// XKSCiphertext is what a proxy's Encrypt answers and its Decrypt takes.
type XKSCiphertext struct {
	Ciphertext, IV, Tag, Metadata []byte
}

// XKSProxy is a client of one proxy. Its errors wrap one of the ErrXKS
// sentinels, or ErrRefused for a ciphertext the proxy does not open.
type XKSProxy interface {
	// Health calls GetHealthStatus; a proxy whose external key managers
	// are all UNAVAILABLE is ErrXKSUnreachable.
	Health(ctx context.Context, r XKSRequest) error
	KeyMetadata(ctx context.Context, r XKSRequest, keyID string) (*XKSKeyMetadata, error)
	Encrypt(ctx context.Context, r XKSRequest, keyID string, aad, plaintext []byte) (*XKSCiphertext, error)
	Decrypt(ctx context.Context, r XKSRequest, keyID string, aad []byte, c *XKSCiphertext) ([]byte, error)
	Close()
}

// Errors of XKSProxy, by what AWS KMS tells apart.
var (
	ErrXKSUnreachable          = errors.New("kms: XKS proxy unreachable")
	ErrXKSTimeout              = errors.New("kms: XKS proxy timed out")
	ErrXKSAuthentication       = errors.New("kms: XKS proxy refused the credential")
	ErrXKSInvalidConfiguration = errors.New("kms: XKS proxy configuration invalid")
	ErrXKSInvalidResponse      = errors.New("kms: XKS proxy answered an invalid response")
	ErrXKSKeyNotFound          = errors.New("kms: external key not found")
	ErrXKSKeyInvalid           = errors.New("kms: external key disabled or without the usage")
	ErrXKSAccessDenied         = errors.New("kms: XKS proxy denied access")
)

// Connection error codes of external key stores, as KMS names them.
const (
	CodeXKSAccessDenied         = "XKS_PROXY_ACCESS_DENIED"
	CodeXKSNotReachable         = "XKS_PROXY_NOT_REACHABLE"
	CodeXKSInvalidResponse      = "XKS_PROXY_INVALID_RESPONSE"
	CodeXKSInvalidConfiguration = "XKS_PROXY_INVALID_CONFIGURATION"
	CodeXKSTimedOut             = "XKS_PROXY_TIMED_OUT"
)

// xksCode is the ConnectionErrorCode of a failed health check.
func xksCode(err error) string {
	switch {
	case errors.Is(err, ErrXKSAuthentication), errors.Is(err, ErrXKSAccessDenied):
		return CodeXKSAccessDenied
	case errors.Is(err, ErrXKSUnreachable):
		return CodeXKSNotReachable
	case errors.Is(err, ErrXKSTimeout):
		return CodeXKSTimedOut
	case errors.Is(err, ErrXKSInvalidConfiguration):
		return CodeXKSInvalidConfiguration
	case errors.Is(err, ErrXKSInvalidResponse):
		return CodeXKSInvalidResponse
	}
	return CodeInternalError
}

// xksManagementError is the exception of a failed health check in
// CreateCustomKeyStore and UpdateCustomKeyStore.
func (s *Service) xksManagementError(err error) error {
	switch {
	case errors.Is(err, ErrXKSUnreachable), errors.Is(err, ErrXKSTimeout):
		return kmsapi.Errorf("XksProxyUriUnreachableException", "The XKS proxy did not answer GetHealthStatus: %s", err)
	case errors.Is(err, ErrXKSAuthentication), errors.Is(err, ErrXKSAccessDenied):
		return kmsapi.Errorf("XksProxyIncorrectAuthenticationCredentialException", "The XKS proxy refused the authentication credential.")
	case errors.Is(err, ErrXKSInvalidConfiguration):
		return kmsapi.Errorf("XksProxyInvalidConfigurationException", "The XKS proxy configuration is not valid: %s", err)
	case errors.Is(err, ErrXKSInvalidResponse):
		return kmsapi.Errorf("XksProxyInvalidResponseException", "The XKS proxy's answer is not valid: %s", err)
	}
	s.log.Info("xks: health", "err", err)
	return &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500, Message: "the XKS proxy check failed"}
}

// xksConfig is the configuration of store c with its opened secret.
func xksConfig(c *keystore.CustomKeyStore, secret []byte) XKSConfig {
	return XKSConfig{URIEndpoint: c.XksURIEndpoint, URIPath: c.XksURIPath, AccessKeyID: c.XksAccessKeyID, Secret: secret}
}

// checkProxy makes a client of cfg and asks its health, for
// CreateCustomKeyStore and UpdateCustomKeyStore.
func (s *Service) checkProxy(ctx context.Context, op string, cfg XKSConfig) error {
	if s.cfg.XKS == nil {
		return errXKSUnsupported
	}
	px, err := s.cfg.XKS.Proxy(cfg)
	if err != nil {
		return s.xksManagementError(err)
	}
	defer px.Close()
	if err := px.Health(ctx, XKSRequest{Operation: op, RequestID: newKeyID()}); err != nil {
		return s.xksManagementError(err)
	}
	return nil
}

// connectXKS is connect for an external key store: a client and one
// answered health check.
func (s *Service) connectXKS(ctx context.Context, c *keystore.CustomKeyStore, n *conn) {
	if s.cfg.XKS == nil {
		n.code = CodeNetworkErrors
		return
	}
	secret, err := s.openSecret(ctx, c)
	if err != nil {
		n.code = CodeInternalError
		s.log.Info("custom key store: open secret", "store", c.ID, "err", err)
		return
	}
	defer clear(secret)
	px, err := s.cfg.XKS.Proxy(xksConfig(c, secret))
	if err != nil {
		n.code = xksCode(err)
		return
	}
	if err := px.Health(ctx, XKSRequest{Operation: "ConnectCustomKeyStore"}); err != nil {
		px.Close()
		n.code = xksCode(err)
		s.log.Info("custom key store: XKS health", "store", c.ID, "code", n.code, "err", err)
		return
	}
	n.xks = px
}

// proxyFor returns this host's proxy client for the store of key k (an
// EXTERNAL_KEY_STORE key).
func (s *Service) proxyFor(ctx context.Context, k *key) (XKSProxy, error) {
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
	return n.xks, nil
}

// xksAnswer maps a proxy's failure in a cryptographic operation: AWS KMS
// answers KMSInvalidStateException for every failure of the external key
// store's configuration or connection, saying which in the message; a
// ciphertext the proxy does not open is InvalidCiphertextException.
func (s *Service) xksAnswer(op string, k *key, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrRefused):
		return errInvalidCiphertext
	}
	s.log.Info(op, "xks", err)
	what := "the external key store proxy failed"
	switch {
	case errors.Is(err, ErrXKSUnreachable):
		what = "the external key store proxy is unreachable"
	case errors.Is(err, ErrXKSTimeout):
		what = "the external key store proxy did not answer in time"
	case errors.Is(err, ErrXKSAuthentication):
		what = "the external key store proxy refused the authentication credential"
	case errors.Is(err, ErrXKSAccessDenied):
		what = "the external key store proxy denied access"
	case errors.Is(err, ErrXKSKeyNotFound):
		what = "the external key " + k.rec.Key.XksKeyID + " was not found"
	case errors.Is(err, ErrXKSKeyInvalid):
		what = "the external key " + k.rec.Key.XksKeyID + " is disabled or cannot do this"
	case errors.Is(err, ErrXKSInvalidResponse):
		what = "the external key store proxy's answer is not valid"
	}
	return kmsapi.Errorf("KMSInvalidStateException", "%s cannot be used: %s.", k.rec.Key.ARN(), what)
}

func xksRequest(ctx context.Context, p kmsapi.Principal, op string, k *key) XKSRequest {
	return XKSRequest{PrincipalARN: p.ARN, Operation: op, RequestID: newKeyID(), KeyARN: k.rec.Key.ARN()}
}

// xksEncrypt seals an inner hbk.Blob under EXTERNAL_KEY_STORE key k's
// external key.
func (s *Service) xksEncrypt(ctx context.Context, p kmsapi.Principal, op string, k *key, ec, inner []byte) ([]byte, error) {
	px, err := s.proxyFor(ctx, k)
	if err != nil {
		return nil, err
	}
	out, err := px.Encrypt(ctx, xksRequest(ctx, p, op, k), k.rec.Key.XksKeyID, xksAAD(k.rec.Key.KeyID, ec), inner)
	if err := s.xksAnswer(op, k, err); err != nil {
		return nil, err
	}
	blob, err := (&xksBlob{KeyID: k.rec.Key.KeyID, IV: out.IV, Tag: out.Tag, Metadata: out.Metadata, Ciphertext: out.Ciphertext}).Marshal()
	if err != nil {
		return nil, s.xksAnswer(op, k, fmt.Errorf("%w: %w", ErrXKSInvalidResponse, err))
	}
	return blob, nil
}

// xksSeal is Encrypt with EXTERNAL_KEY_STORE key k: the HSM layer, then
// the external key.
func (s *Service) xksSeal(ctx context.Context, p kmsapi.Principal, op string, k *key, ec, plaintext []byte) ([]byte, error) {
	// Check the store first: no HSM work for a store that cannot answer.
	if _, err := s.proxyFor(ctx, k); err != nil {
		return nil, err
	}
	out, err := call(ctx, s, hsmcmd.EncryptRequest{Token: k.rec.Current(), Context: ec, Plaintext: plaintext}, hsmcmd.ParseEncryptResponse)
	if err != nil {
		return nil, internal(s, op, err)
	}
	return s.xksEncrypt(ctx, p, op, k, ec, out.Blob)
}

// xksOpen opens an xksBlob of EXTERNAL_KEY_STORE key k: the external key
// first, then the HSM layer.
func (s *Service) xksOpen(ctx context.Context, p kmsapi.Principal, op string, k *key, ec []byte, bl *xksBlob) ([]byte, error) {
	px, err := s.proxyFor(ctx, k)
	if err != nil {
		return nil, err
	}
	inner, err := px.Decrypt(ctx, xksRequest(ctx, p, op, k), k.rec.Key.XksKeyID, xksAAD(k.rec.Key.KeyID, ec),
		&XKSCiphertext{Ciphertext: bl.Ciphertext, IV: bl.IV, Tag: bl.Tag, Metadata: bl.Metadata})
	if err := s.xksAnswer(op, k, err); err != nil {
		return nil, err
	}
	ib, err := hbk.ParseBlob(inner)
	if err != nil || ib.KeyID != k.rec.Key.KeyID {
		return nil, errInvalidCiphertext
	}
	var tok []byte
	for _, t := range k.rec.Tokens {
		if ht, err := hbk.ParseToken(t); err == nil && ht.HBKID == ib.HBKID {
			tok = t
		}
	}
	if tok == nil {
		return nil, errInvalidCiphertext
	}
	out, err := call(ctx, s, hsmcmd.DecryptRequest{Token: tok, Context: ec, Blob: inner}, hsmcmd.ParseDecryptResponse)
	if err := s.hsmAnswer(op, err, errInvalidCiphertext); err != nil {
		return nil, err
	}
	return out.Plaintext, nil
}

// xksDataKey serves GenerateDataKey(WithoutPlaintext) with an
// EXTERNAL_KEY_STORE key: an HSM makes the data key and its inner blob,
// the proxy seals the blob.
func (s *Service) xksDataKey(ctx context.Context, p kmsapi.Principal, op string, k *key, ec []byte, size int, withPlaintext, recipient bool) (*generateDataKeyResponse, error) {
	if recipient {
		return nil, errStoreRecipient
	}
	if _, err := s.proxyFor(ctx, k); err != nil {
		return nil, err
	}
	out, err := call(ctx, s, hsmcmd.GenerateDataKeyRequest{Token: k.rec.Current(), Context: ec, Size: uint16(size), WithPlaintext: withPlaintext}, hsmcmd.ParseGenerateDataKeyResponse)
	if err != nil {
		return nil, internal(s, op, err)
	}
	if (withPlaintext && len(out.Plaintext) != size) || (!withPlaintext && len(out.Plaintext) != 0) {
		return nil, internal(s, op, errors.New("kms: malformed data key answer"))
	}
	blob, err := s.xksEncrypt(ctx, p, op, k, ec, out.Blob)
	if err != nil {
		clear(out.Plaintext)
		return nil, err
	}
	res := &generateDataKeyResponse{CiphertextBlob: blob, KeyId: k.rec.Key.ARN()}
	if withPlaintext {
		res.Plaintext = out.Plaintext
	}
	return res, nil
}

// createXKSKey serves CreateKey with Origin EXTERNAL_KEY_STORE: the store
// must be connected, the external key an enabled AES_256 key for ENCRYPT
// and DECRYPT, and used by no other key of the store.
func (s *Service) createXKSKey(ctx context.Context, p kmsapi.Principal, storeID, xksKeyID, keyID string) error {
	c, err := s.ownStore(p, storeID)
	if err != nil {
		return err
	}
	if c.Type != keystore.StoreTypeExternal {
		return kmsapi.Errorf(kmsapi.ValidationException, "Origin EXTERNAL_KEY_STORE needs an EXTERNAL_KEY_STORE custom key store; %s is %s.", c.ID, c.Type)
	}
	if c.State != keystore.ConnConnected {
		return errStoreState("Custom key store %s is %s; CreateKey needs it CONNECTED.", c.ID, c.State)
	}
	inUse := false
	s.store.Records("k/", func(id string, _ []byte) bool {
		k, err := s.loadKey(id[len("k/"):])
		if err == nil && k != nil && k.rec.Key.CustomKeyStoreID == c.ID && k.rec.Key.XksKeyID == xksKeyID {
			inUse = true
			return false
		}
		return true
	})
	if inUse {
		return kmsapi.Errorf("XksKeyAlreadyInUseException", "External key %s is already the XksKeyId of a KMS key in %s.", xksKeyID, c.ID)
	}
	n, err := s.waitConn(ctx, c)
	if err != nil {
		return err
	}
	md, err := n.xks.KeyMetadata(ctx, XKSRequest{PrincipalARN: p.ARN, Operation: "CreateKey", RequestID: newKeyID(),
		KeyARN: s.keyARN(p.AccountID, keyID)}, xksKeyID)
	switch {
	case errors.Is(err, ErrXKSKeyNotFound):
		return kmsapi.Errorf("XksKeyNotFoundException", "The XKS proxy has no external key %s.", xksKeyID)
	case errors.Is(err, ErrXKSKeyInvalid):
		return kmsapi.Errorf("XksKeyInvalidConfigurationException", "External key %s is disabled or cannot encrypt and decrypt.", xksKeyID)
	case err != nil:
		return s.xksAnswer("CreateKey", &key{rec: &keystore.Record{Key: keystore.Key{KeyID: keyID, Account: p.AccountID, Region: s.region(), XksKeyID: xksKeyID}}}, err)
	}
	if md.KeySpec != "AES_256" || md.KeyStatus != "ENABLED" || !slices.Contains(md.KeyUsage, "ENCRYPT") || !slices.Contains(md.KeyUsage, "DECRYPT") {
		return kmsapi.Errorf("XksKeyInvalidConfigurationException", "External key %s is %s %s with usages %v; KMS needs an ENABLED AES_256 key for ENCRYPT and DECRYPT.",
			xksKeyID, md.KeyStatus, md.KeySpec, md.KeyUsage)
	}
	return nil
}
