package kms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// The six custom key store operations of the KMS API. A PKCS#11 store's
// request members map onto CloudHSM's (docs/conformance.md, Custom key
// stores): CloudHsmClusterId is the token label, TrustAnchorCertificate
// the path of the PKCS#11 module (one the host operator allowed), and
// KeyStorePassword the kmsuser PIN (the token's user PIN).

// Limits from the AWS KMS API reference, and Trent's own.
const (
	maxStoreName     = 256
	maxTrustAnchor   = 5000
	minStorePassword = 7
	maxStorePassword = 32
	maxTokenLabel    = 32 // a PKCS#11 token label (CK_TOKEN_INFO)
	maxStoresPerAcct = 10 // KMS's quota of custom key stores per account
	connectTimeout   = 30 * time.Second
)

var errStoreTypeEnum = "Member must satisfy enum value set: [AWS_CLOUDHSM, EXTERNAL_KEY_STORE]"

type xksCredential struct {
	AccessKeyId        string `json:"AccessKeyId"`
	RawSecretAccessKey string `json:"RawSecretAccessKey"`
}

// xksMembers are the request members of an external key store.
type xksMembers struct {
	XksProxyUriEndpoint              *string        `json:"XksProxyUriEndpoint"`
	XksProxyUriPath                  *string        `json:"XksProxyUriPath"`
	XksProxyVpcEndpointServiceName   *string        `json:"XksProxyVpcEndpointServiceName"`
	XksProxyAuthenticationCredential *xksCredential `json:"XksProxyAuthenticationCredential"`
	XksProxyConnectivity             *string        `json:"XksProxyConnectivity"`
}

func (x *xksMembers) any() bool {
	return x.XksProxyUriEndpoint != nil || x.XksProxyUriPath != nil || x.XksProxyVpcEndpointServiceName != nil ||
		x.XksProxyAuthenticationCredential != nil || x.XksProxyConnectivity != nil
}

type createCustomKeyStoreRequest struct {
	CustomKeyStoreName     string  `json:"CustomKeyStoreName"`
	CloudHsmClusterId      *string `json:"CloudHsmClusterId"`
	TrustAnchorCertificate *string `json:"TrustAnchorCertificate"`
	KeyStorePassword       *string `json:"KeyStorePassword"`
	CustomKeyStoreType     *string `json:"CustomKeyStoreType"`
	xksMembers
}

type customKeyStoreIDResponse struct {
	CustomKeyStoreId string `json:"CustomKeyStoreId"`
}

func newStoreID() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "cks-" + hex.EncodeToString(b)[:17]
}

func checkStoreName(field, name string) error {
	if len(name) < 1 || len(name) > maxStoreName {
		return validation(field, "Member must have length between 1 and 256", name)
	}
	return nil
}

func checkTokenLabel(field string, label string) error {
	if len(label) < 1 || len(label) > maxTokenLabel {
		return validation(field, "Member must have length between 1 and 32 (a PKCS#11 token label)", label)
	}
	return nil
}

func checkPassword(pw string) error {
	if len(pw) < minStorePassword || len(pw) > maxStorePassword {
		return validation("keyStorePassword", "Member must have length between 7 and 32", "***")
	}
	return nil
}

// errXKSUnsupported answers the external key store operations on a host
// that reaches no XKS proxy (Config.XKS nil).
var errXKSUnsupported = kmsapi.Errorf(kmsapi.UnsupportedOperation, "this host serves no EXTERNAL_KEY_STORE custom key stores")

// checkToken asks this host's KeyStores whether module and label name a
// token, answering with CloudHSM's exceptions.
func (s *Service) checkToken(ctx context.Context, module, label string) error {
	if s.cfg.KeyStores == nil {
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "this host serves no PKCS#11 custom key stores")
	}
	err := s.cfg.KeyStores.Check(ctx, module, label)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrStoreModule):
		return kmsapi.Errorf("IncorrectTrustAnchorException", "The PKCS#11 module %q (TrustAnchorCertificate) is not one this host may load.", module)
	case errors.Is(err, ErrStoreTokenNotFound):
		return kmsapi.Errorf("CloudHsmClusterNotFoundException", "No initialised token is labelled %q (CloudHsmClusterId).", label)
	}
	s.log.Info("custom key store: check token", "err", err)
	return &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500, Message: "the PKCS#11 module did not answer"}
}

func (s *Service) createCustomKeyStore(ctx context.Context, p kmsapi.Principal, req *createCustomKeyStoreRequest) (*customKeyStoreIDResponse, error) {
	if err := checkStoreName("customKeyStoreName", req.CustomKeyStoreName); err != nil {
		return nil, err
	}
	typ := keystore.StoreTypeCloudHSM
	if req.CustomKeyStoreType != nil {
		typ = *req.CustomKeyStoreType
	}
	switch typ {
	case keystore.StoreTypeCloudHSM:
	case keystore.StoreTypeExternal:
		return s.createXKSStore(ctx, p, req)
	default:
		return nil, validation("customKeyStoreType", errStoreTypeEnum, typ)
	}
	if req.xksMembers.any() {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "The XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store.")
	}
	if req.CloudHsmClusterId == nil || req.TrustAnchorCertificate == nil || req.KeyStorePassword == nil {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "An AWS_CLOUDHSM custom key store needs CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword.")
	}
	label, module, pw := *req.CloudHsmClusterId, *req.TrustAnchorCertificate, []byte(*req.KeyStorePassword)
	defer clear(pw)
	if err := checkTokenLabel("cloudHsmClusterId", label); err != nil {
		return nil, err
	}
	if len(module) < 1 || len(module) > maxTrustAnchor {
		return nil, validation("trustAnchorCertificate", "Member must have length between 1 and 5000", "…")
	}
	if err := checkPassword(*req.KeyStorePassword); err != nil {
		return nil, err
	}
	mine := s.accountStores(p.AccountID)
	if len(mine) >= maxStoresPerAcct {
		return nil, kmsapi.Errorf("LimitExceededException", "An account may have at most %d custom key stores.", maxStoresPerAcct)
	}
	if _, ok := s.store.Get(keystore.StoreNameIndexID(p.AccountID, req.CustomKeyStoreName)); ok {
		return nil, errNameInUse(req.CustomKeyStoreName)
	}
	if s.tokenInUse(module, label, "") {
		return nil, errClusterInUse(label)
	}
	if err := s.checkToken(ctx, module, label); err != nil {
		return nil, err
	}
	id := newStoreID()
	tok, blob, err := s.sealSecret(ctx, id, pw)
	if err != nil {
		return nil, err
	}
	c := &keystore.CustomKeyStore{ID: id, Account: p.AccountID, Region: s.region(), Name: req.CustomKeyStoreName,
		Type: typ, Created: s.now().Unix(), TokenLabel: label, ModulePath: module,
		Token: tok, Secret: blob, State: keystore.ConnDisconnected}
	raw, err := c.Marshal()
	if err != nil {
		return nil, recordTooLarge(err)
	}
	idx, err := (&keystore.StoreNameIndex{StoreID: id}).Marshal()
	if err != nil {
		return nil, err
	}
	err = s.store.Propose(ctx, domain.Replacement{ID: keystore.StoreRecordID(id), New: raw},
		domain.Replacement{ID: keystore.StoreNameIndexID(p.AccountID, c.Name), New: idx})
	if errors.Is(err, ErrConflict) {
		return nil, errNameInUse(req.CustomKeyStoreName)
	}
	if err != nil {
		return nil, err
	}
	return &customKeyStoreIDResponse{CustomKeyStoreId: id}, nil
}

func errNameInUse(name string) error {
	return kmsapi.Errorf("CustomKeyStoreNameInUseException", "Custom key store name %s is already in use.", name)
}

func errClusterInUse(label string) error {
	return kmsapi.Errorf("CloudHsmClusterInUseException", "The token %q is already associated with a custom key store.", label)
}

// tokenInUse reports whether a store other than except uses the token.
func (s *Service) tokenInUse(module, label, except string) bool {
	used := false
	s.store.Records(keystore.StorePrefix, func(_ string, raw []byte) bool {
		c, err := keystore.ParseCustomKeyStore(raw)
		if err == nil && c.ID != except && c.Type == keystore.StoreTypeCloudHSM && c.ModulePath == module && c.TokenLabel == label {
			used = true
			return false
		}
		return true
	})
	return used
}

// ownStore returns the caller's store id, or CustomKeyStoreNotFound.
func (s *Service) ownStore(p kmsapi.Principal, id string) (*keystore.CustomKeyStore, error) {
	if len(id) < 1 || len(id) > 64 {
		return nil, validation("customKeyStoreId", "Member must have length between 1 and 64", id)
	}
	if !keystore.ValidStoreID(id) {
		return nil, errStoreNotFound(id)
	}
	c, _, err := s.loadStore(id)
	if err != nil {
		return nil, internal(s, "custom key store", err)
	}
	if c == nil || c.Account != p.AccountID {
		return nil, errStoreNotFound(id)
	}
	return c, nil
}

type describeCustomKeyStoresRequest struct {
	CustomKeyStoreId   *string `json:"CustomKeyStoreId"`
	CustomKeyStoreName *string `json:"CustomKeyStoreName"`
	Limit              *int    `json:"Limit"`
	Marker             *string `json:"Marker"`
}

type customKeyStoreEntry struct {
	CustomKeyStoreId       string                 `json:"CustomKeyStoreId"`
	CustomKeyStoreName     string                 `json:"CustomKeyStoreName"`
	CustomKeyStoreType     string                 `json:"CustomKeyStoreType"`
	CloudHsmClusterId      string                 `json:"CloudHsmClusterId,omitempty"`
	TrustAnchorCertificate string                 `json:"TrustAnchorCertificate,omitempty"`
	XksProxyConfiguration  *xksProxyConfiguration `json:"XksProxyConfiguration,omitempty"`
	ConnectionState        string                 `json:"ConnectionState"`
	ConnectionErrorCode    string                 `json:"ConnectionErrorCode,omitempty"`
	CreationDate           *epoch                 `json:"CreationDate"`
}

type describeCustomKeyStoresResponse struct {
	CustomKeyStores []customKeyStoreEntry `json:"CustomKeyStores"`
	page
}

func (s *Service) describeCustomKeyStores(ctx context.Context, p kmsapi.Principal, req *describeCustomKeyStoresRequest) (*describeCustomKeyStoresResponse, error) {
	if req.CustomKeyStoreId != nil && req.CustomKeyStoreName != nil {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "Specify CustomKeyStoreId or CustomKeyStoreName, not both.")
	}
	var stores []*keystore.CustomKeyStore
	switch {
	case req.CustomKeyStoreId != nil:
		c, err := s.ownStore(p, *req.CustomKeyStoreId)
		if err != nil {
			return nil, err
		}
		stores = append(stores, c)
	case req.CustomKeyStoreName != nil:
		if err := checkStoreName("customKeyStoreName", *req.CustomKeyStoreName); err != nil {
			return nil, err
		}
		for _, c := range s.accountStores(p.AccountID) {
			if c.Name == *req.CustomKeyStoreName {
				stores = append(stores, c)
			}
		}
		if len(stores) == 0 {
			return nil, kmsapi.Errorf("CustomKeyStoreNotFoundException", "Custom key store %s does not exist.", *req.CustomKeyStoreName)
		}
	default:
		stores = s.accountStores(p.AccountID)
	}
	page, next, err := paginate(stores, func(c *keystore.CustomKeyStore) string { return c.ID }, req.Limit, req.Marker, 1000, 1000)
	if err != nil {
		return nil, err
	}
	out := []customKeyStoreEntry{}
	for _, c := range page {
		st, code := s.connectionState(c)
		e := customKeyStoreEntry{CustomKeyStoreId: c.ID, CustomKeyStoreName: c.Name, CustomKeyStoreType: c.Type,
			CloudHsmClusterId: c.TokenLabel, TrustAnchorCertificate: c.ModulePath,
			ConnectionState: st, ConnectionErrorCode: code, CreationDate: unix(c.Created)}
		if c.Type == keystore.StoreTypeExternal {
			e.XksProxyConfiguration = &xksProxyConfiguration{AccessKeyId: c.XksAccessKeyID, Connectivity: c.XksConnectivity,
				UriEndpoint: c.XksURIEndpoint, UriPath: c.XksURIPath}
		}
		out = append(out, e)
	}
	return &describeCustomKeyStoresResponse{CustomKeyStores: out, page: pageOf(next)}, nil
}

type updateCustomKeyStoreRequest struct {
	CustomKeyStoreId      string  `json:"CustomKeyStoreId"`
	NewCustomKeyStoreName *string `json:"NewCustomKeyStoreName"`
	KeyStorePassword      *string `json:"KeyStorePassword"`
	CloudHsmClusterId     *string `json:"CloudHsmClusterId"`
	xksMembers
}

func errStoreState(format string, a ...any) error {
	return kmsapi.Errorf("CustomKeyStoreInvalidStateException", format, a...)
}

func (s *Service) updateCustomKeyStore(ctx context.Context, p kmsapi.Principal, req *updateCustomKeyStoreRequest) (*emptyResponse, error) {
	c, err := s.ownStore(p, req.CustomKeyStoreId)
	if err != nil {
		return nil, err
	}
	if req.xksMembers.any() && c.Type != keystore.StoreTypeExternal {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "The XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store.")
	}
	if (req.CloudHsmClusterId != nil || req.KeyStorePassword != nil) && c.Type != keystore.StoreTypeCloudHSM {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "CloudHsmClusterId and KeyStorePassword are valid only for an AWS_CLOUDHSM custom key store.")
	}
	if req.NewCustomKeyStoreName != nil {
		if err := checkStoreName("newCustomKeyStoreName", *req.NewCustomKeyStoreName); err != nil {
			return nil, err
		}
	}
	if req.CloudHsmClusterId != nil {
		if err := checkTokenLabel("cloudHsmClusterId", *req.CloudHsmClusterId); err != nil {
			return nil, err
		}
	}
	var pw []byte
	if req.KeyStorePassword != nil {
		if err := checkPassword(*req.KeyStorePassword); err != nil {
			return nil, err
		}
		pw = []byte(*req.KeyStorePassword)
		defer clear(pw)
	}
	others := req.CloudHsmClusterId != nil || req.KeyStorePassword != nil || req.xksMembers.any()
	if req.NewCustomKeyStoreName == nil && !others {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "Specify at least one property to update.")
	}
	if c.State != keystore.ConnDisconnected && (others || c.State != keystore.ConnConnected) {
		return nil, errStoreState("Custom key store %s is %s: disconnect it to change it (a CONNECTED store may change only its name).", c.ID, c.State)
	}
	if req.CloudHsmClusterId != nil && *req.CloudHsmClusterId != c.TokenLabel {
		if s.tokenInUse(c.ModulePath, *req.CloudHsmClusterId, c.ID) {
			return nil, errClusterInUse(*req.CloudHsmClusterId)
		}
		if err := s.checkToken(ctx, c.ModulePath, *req.CloudHsmClusterId); err != nil {
			return nil, err
		}
	}
	var secret []byte
	if pw != nil {
		if secret, err = s.sealUnder(ctx, c, pw); err != nil {
			return nil, err
		}
	}
	var xksChange func(*keystore.CustomKeyStore)
	if req.xksMembers.any() {
		if xksChange, err = s.xksUpdate(ctx, p, c, &req.xksMembers); err != nil {
			return nil, err
		}
	}
	for range 8 {
		cur, raw, err := s.loadStore(c.ID)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			return nil, errStoreNotFound(c.ID)
		}
		if cur.State != c.State {
			return nil, errStoreState("Custom key store %s changed state to %s; retry.", c.ID, cur.State)
		}
		nw := cur.Clone()
		rs := []domain.Replacement{}
		if req.NewCustomKeyStoreName != nil && *req.NewCustomKeyStoreName != cur.Name {
			oldIdx, _ := s.store.Get(keystore.StoreNameIndexID(p.AccountID, cur.Name))
			idx, err := (&keystore.StoreNameIndex{StoreID: cur.ID}).Marshal()
			if err != nil {
				return nil, err
			}
			if _, taken := s.store.Get(keystore.StoreNameIndexID(p.AccountID, *req.NewCustomKeyStoreName)); taken {
				return nil, errNameInUse(*req.NewCustomKeyStoreName)
			}
			rs = append(rs, domain.Replacement{ID: keystore.StoreNameIndexID(p.AccountID, cur.Name), Old: oldIdx},
				domain.Replacement{ID: keystore.StoreNameIndexID(p.AccountID, *req.NewCustomKeyStoreName), New: idx})
			nw.Name = *req.NewCustomKeyStoreName
		}
		if req.CloudHsmClusterId != nil {
			nw.TokenLabel = *req.CloudHsmClusterId
		}
		if secret != nil {
			nw.Secret = secret
		}
		if xksChange != nil {
			xksChange(nw)
		}
		b, err := nw.Marshal()
		if err != nil {
			return nil, recordTooLarge(err)
		}
		rs = append(rs, domain.Replacement{ID: keystore.StoreRecordID(cur.ID), Old: raw, New: b})
		err = s.store.Propose(ctx, rs...)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return empty, nil
	}
	return nil, &kmsapi.Error{Type: "ConflictException", Message: "the custom key store changed concurrently; retry"}
}

type customKeyStoreRequest struct {
	CustomKeyStoreId string `json:"CustomKeyStoreId"`
}

func (s *Service) deleteCustomKeyStore(ctx context.Context, p kmsapi.Principal, req *customKeyStoreRequest) (*emptyResponse, error) {
	c, err := s.ownStore(p, req.CustomKeyStoreId)
	if err != nil {
		return nil, err
	}
	if c.State != keystore.ConnDisconnected {
		return nil, errStoreState("Custom key store %s is %s: disconnect it before deleting it.", c.ID, c.State)
	}
	if n := s.storeKeys(c.ID); n > 0 {
		return nil, kmsapi.Errorf("CustomKeyStoreHasCMKsException", "Custom key store %s holds %d KMS keys: delete them (ScheduleKeyDeletion) first.", c.ID, n)
	}
	raw, _ := s.store.Get(keystore.StoreRecordID(c.ID))
	idx, _ := s.store.Get(keystore.StoreNameIndexID(p.AccountID, c.Name))
	err = s.store.Propose(ctx, domain.Replacement{ID: keystore.StoreRecordID(c.ID), Old: raw},
		domain.Replacement{ID: keystore.StoreNameIndexID(p.AccountID, c.Name), Old: idx})
	if errors.Is(err, ErrConflict) {
		return nil, &kmsapi.Error{Type: "ConflictException", Message: "the custom key store changed concurrently; retry"}
	}
	if err != nil {
		return nil, err
	}
	return empty, nil
}

func (s *Service) connectCustomKeyStore(ctx context.Context, p kmsapi.Principal, req *customKeyStoreRequest) (*emptyResponse, error) {
	c, err := s.ownStore(p, req.CustomKeyStoreId)
	if err != nil {
		return nil, err
	}
	if st, _ := s.connectionState(c); st == keystore.ConnFailed {
		// This host's (the leader's) own attempt failed, before it was
		// recorded: as FAILED as the record will say.
		return nil, errStoreState("Custom key store %s is FAILED: disconnect it, correct the error, then connect it.", c.ID)
	}
	_, err = s.updateStore(ctx, req.CustomKeyStoreId, func(c *keystore.CustomKeyStore) error {
		switch c.State {
		case keystore.ConnFailed:
			return errStoreState("Custom key store %s is FAILED: disconnect it, correct the error, then connect it.", c.ID)
		case keystore.ConnConnected, keystore.ConnConnecting:
			return errNoChange
		}
		c.State, c.ErrorCode, c.Attempt = keystore.ConnConnecting, "", c.Attempt+1
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return nil, err
	}
	return empty, nil
}

func (s *Service) disconnectCustomKeyStore(ctx context.Context, p kmsapi.Principal, req *customKeyStoreRequest) (*emptyResponse, error) {
	if _, err := s.ownStore(p, req.CustomKeyStoreId); err != nil {
		return nil, err
	}
	_, err := s.updateStore(ctx, req.CustomKeyStoreId, func(c *keystore.CustomKeyStore) error {
		if c.State == keystore.ConnDisconnected {
			return errStoreState("Custom key store %s is already DISCONNECTED.", c.ID)
		}
		c.State, c.ErrorCode = keystore.ConnDisconnected, ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	return empty, nil
}

// createStoreKey serves CreateKey with Origin AWS_CLOUDHSM: the store must
// be connected (the cluster's record; this host's own connection that is
// not up is waitConn's retryable error), and the key is made in its
// token, labelled with the key ID.
func (s *Service) createStoreKey(ctx context.Context, p kmsapi.Principal, storeID, keyID string) error {
	c, err := s.ownStore(p, storeID)
	if err != nil {
		return err
	}
	if c.Type != keystore.StoreTypeCloudHSM {
		return kmsapi.Errorf(kmsapi.ValidationException, "Origin AWS_CLOUDHSM needs an AWS_CLOUDHSM custom key store; %s is %s.", c.ID, c.Type)
	}
	if c.State != keystore.ConnConnected {
		return errStoreState("Custom key store %s is %s; CreateKey needs it CONNECTED.", c.ID, c.State)
	}
	n, err := s.waitConn(ctx, c)
	if err != nil {
		return err
	}
	return s.storeAnswer("CreateKey", n.tok.CreateKey(ctx, keyID), nil)
}

// storeKeyState is the KeyState DescribeKey reports for key k: a key in a
// custom key store that is not connected is Unavailable, as in KMS.
func (s *Service) storeKeyState(k *key, m *keyMetadata) {
	if !inStore(k) {
		return
	}
	c, _, err := s.loadStore(k.rec.Key.CustomKeyStoreID)
	if err != nil || c == nil {
		return
	}
	if c.Type == keystore.StoreTypeCloudHSM {
		m.CloudHsmClusterId = c.TokenLabel
	}
	if st, _ := s.connectionState(c); st != keystore.ConnConnected && slices.Contains([]string{keystore.StateEnabled, keystore.StateDisabled}, m.KeyState) {
		m.KeyState, m.Enabled = "Unavailable", false
	}
}

// randomFromStore serves GenerateRandom with a CustomKeyStoreId.
func (s *Service) randomFromStore(ctx context.Context, p kmsapi.Principal, id string, n int) ([]byte, error) {
	if err := s.store.Sync(ctx); err != nil {
		return nil, err
	}
	c, err := s.ownStore(p, id)
	if err != nil {
		return nil, err
	}
	if c.Type != keystore.StoreTypeCloudHSM {
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "GenerateRandom does not draw from an EXTERNAL_KEY_STORE custom key store.")
	}
	if c.State != keystore.ConnConnected {
		return nil, errStoreState("Custom key store %s is %s; GenerateRandom needs it CONNECTED.", c.ID, c.State)
	}
	cn, err := s.waitConn(ctx, c)
	if err != nil {
		return nil, err
	}
	out, err := cn.tok.Random(ctx, n)
	if err := s.storeAnswer("GenerateRandom", err, nil); err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, internal(s, "GenerateRandom", errors.New("kms: short random answer from the custom key store"))
	}
	return out, nil
}
