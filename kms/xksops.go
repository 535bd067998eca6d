package kms

import (
	"context"
	"errors"
	"regexp"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// The external key store members of the custom key store operations, as
// the AWS KMS API reference constrains them. XksProxyConnectivity is
// PUBLIC_ENDPOINT only (no VPC endpoint services here); the URI endpoint
// may name a port, which AWS does not allow, so that a proxy on a test
// machine can be used.

var (
	xksEndpointRE = regexp.MustCompile(`^https://[a-zA-Z0-9.-]+(:[0-9]{1,5})?$`)
	xksPathRE     = regexp.MustCompile(`^(/[a-zA-Z0-9/_-]+)?/kms/xks/v[0-9]{1,2}$`)
	xksAKIDRE     = regexp.MustCompile(`^[A-Z2-7]{20,30}$`)
	xksSecretRE   = regexp.MustCompile(`^[a-zA-Z0-9/+=]{43,64}$`)
	xksKeyIDRE    = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,128}$`)
)

const connectivityPublic = "PUBLIC_ENDPOINT"

// checkXKSMembers checks the members a request gives (all of them on
// create).
func checkXKSMembers(x *xksMembers, create bool) error {
	if x.XksProxyConnectivity != nil {
		switch *x.XksProxyConnectivity {
		case connectivityPublic:
		case "VPC_ENDPOINT_SERVICE":
			return kmsapi.Errorf(kmsapi.UnsupportedOperation, "XksProxyConnectivity VPC_ENDPOINT_SERVICE is not supported by this Trent build")
		default:
			return validation("xksProxyConnectivity", "Member must satisfy enum value set: [PUBLIC_ENDPOINT, VPC_ENDPOINT_SERVICE]", *x.XksProxyConnectivity)
		}
	}
	if x.XksProxyVpcEndpointServiceName != nil {
		return kmsapi.Errorf(kmsapi.ValidationException, "XksProxyVpcEndpointServiceName is valid only with XksProxyConnectivity VPC_ENDPOINT_SERVICE.")
	}
	if create && (x.XksProxyConnectivity == nil || x.XksProxyUriEndpoint == nil || x.XksProxyUriPath == nil || x.XksProxyAuthenticationCredential == nil) {
		return kmsapi.Errorf(kmsapi.ValidationException, "An EXTERNAL_KEY_STORE custom key store needs XksProxyConnectivity, XksProxyUriEndpoint, XksProxyUriPath and XksProxyAuthenticationCredential.")
	}
	if e := x.XksProxyUriEndpoint; e != nil && (len(*e) < 10 || len(*e) > 128 || !xksEndpointRE.MatchString(*e)) {
		return validation("xksProxyUriEndpoint", "Member must have length between 10 and 128 and be https://host[:port]", *e)
	}
	if u := x.XksProxyUriPath; u != nil && (len(*u) < 10 || len(*u) > 128 || !xksPathRE.MatchString(*u)) {
		return validation("xksProxyUriPath", "Member must have length between 10 and 128 and end with /kms/xks/v1", *u)
	}
	if c := x.XksProxyAuthenticationCredential; c != nil {
		if !xksAKIDRE.MatchString(c.AccessKeyId) {
			return validation("xksProxyAuthenticationCredential.accessKeyId", "Member must be 20 to 30 characters of A-Z and 2-7", c.AccessKeyId)
		}
		if !xksSecretRE.MatchString(c.RawSecretAccessKey) {
			return validation("xksProxyAuthenticationCredential.rawSecretAccessKey", "Member must be 43 to 64 characters of a-z A-Z 0-9 / + =", "***")
		}
	}
	return nil
}

// xksURIInUse reports whether another store of the account (other than
// except) uses the endpoint and path.
func (s *Service) xksURIInUse(account, endpoint, path, except string) bool {
	for _, c := range s.accountStores(account) {
		if c.ID != except && c.Type == keystore.StoreTypeExternal && c.XksURIEndpoint == endpoint && c.XksURIPath == path {
			return true
		}
	}
	return false
}

func errURIInUse() error {
	return kmsapi.Errorf("XksProxyUriInUseException", "Another external key store of the account uses this XksProxyUriEndpoint and XksProxyUriPath.")
}

// createXKSStore is CreateCustomKeyStore of an EXTERNAL_KEY_STORE: its
// members checked, the proxy's health asked, the secret access key sealed.
func (s *Service) createXKSStore(ctx context.Context, p kmsapi.Principal, req *createCustomKeyStoreRequest) (*customKeyStoreIDResponse, error) {
	if s.cfg.XKS == nil {
		return nil, errXKSUnsupported
	}
	if req.CloudHsmClusterId != nil || req.TrustAnchorCertificate != nil || req.KeyStorePassword != nil {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword are valid only for an AWS_CLOUDHSM custom key store.")
	}
	if err := checkXKSMembers(&req.xksMembers, true); err != nil {
		return nil, err
	}
	if len(s.accountStores(p.AccountID)) >= maxStoresPerAcct {
		return nil, kmsapi.Errorf("LimitExceededException", "An account may have at most %d custom key stores.", maxStoresPerAcct)
	}
	if _, ok := s.store.Get(keystore.StoreNameIndexID(p.AccountID, req.CustomKeyStoreName)); ok {
		return nil, errNameInUse(req.CustomKeyStoreName)
	}
	endpoint, path, cred := *req.XksProxyUriEndpoint, *req.XksProxyUriPath, req.XksProxyAuthenticationCredential
	if s.xksURIInUse(p.AccountID, endpoint, path, "") {
		return nil, errURIInUse()
	}
	secret := []byte(cred.RawSecretAccessKey)
	defer clear(secret)
	cfg := XKSConfig{URIEndpoint: endpoint, URIPath: path, AccessKeyID: cred.AccessKeyId, Secret: secret}
	if err := s.checkProxy(ctx, "CreateCustomKeyStore", cfg); err != nil {
		return nil, err
	}
	id := newStoreID()
	tok, blob, err := s.sealSecret(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	c := &keystore.CustomKeyStore{ID: id, Account: p.AccountID, Region: s.region(), Name: req.CustomKeyStoreName,
		Type: keystore.StoreTypeExternal, Created: s.now().Unix(), XksURIEndpoint: endpoint, XksURIPath: path,
		XksConnectivity: connectivityPublic, XksAccessKeyID: cred.AccessKeyId, Token: tok, Secret: blob, State: keystore.ConnDisconnected}
	return s.proposeNewStore(ctx, p, c)
}

// proposeNewStore commits a new store record and its name index.
func (s *Service) proposeNewStore(ctx context.Context, p kmsapi.Principal, c *keystore.CustomKeyStore) (*customKeyStoreIDResponse, error) {
	raw, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	idx, err := (&keystore.StoreNameIndex{StoreID: c.ID}).Marshal()
	if err != nil {
		return nil, err
	}
	err = s.store.Propose(ctx, domain.Replacement{ID: keystore.StoreRecordID(c.ID), New: raw},
		domain.Replacement{ID: keystore.StoreNameIndexID(p.AccountID, c.Name), New: idx})
	if errors.Is(err, ErrConflict) {
		return nil, errNameInUse(c.Name)
	}
	if err != nil {
		return nil, err
	}
	return &customKeyStoreIDResponse{CustomKeyStoreId: c.ID}, nil
}

// xksUpdate checks UpdateCustomKeyStore's external key store members for
// store c (DISCONNECTED) and returns the change to apply to its record:
// the new configuration's health is asked first, and a new secret access
// key is sealed.
func (s *Service) xksUpdate(ctx context.Context, p kmsapi.Principal, c *keystore.CustomKeyStore, x *xksMembers) (func(*keystore.CustomKeyStore), error) {
	if err := checkXKSMembers(x, false); err != nil {
		return nil, err
	}
	nw := c.Clone()
	if x.XksProxyUriEndpoint != nil {
		nw.XksURIEndpoint = *x.XksProxyUriEndpoint
	}
	if x.XksProxyUriPath != nil {
		nw.XksURIPath = *x.XksProxyUriPath
	}
	if (nw.XksURIEndpoint != c.XksURIEndpoint || nw.XksURIPath != c.XksURIPath) && s.xksURIInUse(p.AccountID, nw.XksURIEndpoint, nw.XksURIPath, c.ID) {
		return nil, errURIInUse()
	}
	var secret []byte
	if cr := x.XksProxyAuthenticationCredential; cr != nil {
		nw.XksAccessKeyID, secret = cr.AccessKeyId, []byte(cr.RawSecretAccessKey)
	} else {
		var err error
		if secret, err = s.openSecret(ctx, c); err != nil {
			return nil, internal(s, "UpdateCustomKeyStore", err)
		}
	}
	defer clear(secret)
	if err := s.checkProxy(ctx, "UpdateCustomKeyStore", xksConfig(nw, secret)); err != nil {
		return nil, err
	}
	if x.XksProxyAuthenticationCredential != nil {
		blob, err := s.sealUnder(ctx, c, secret)
		if err != nil {
			return nil, err
		}
		nw.Secret = blob
	}
	return func(r *keystore.CustomKeyStore) {
		r.XksURIEndpoint, r.XksURIPath, r.XksAccessKeyID, r.Secret = nw.XksURIEndpoint, nw.XksURIPath, nw.XksAccessKeyID, nw.Secret
	}, nil
}

type xksProxyConfiguration struct {
	AccessKeyId  string `json:"AccessKeyId"`
	Connectivity string `json:"Connectivity"`
	UriEndpoint  string `json:"UriEndpoint"`
	UriPath      string `json:"UriPath"`
}

type xksKeyConfiguration struct {
	Id string `json:"Id"`
}
