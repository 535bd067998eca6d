package kms

import (
	"context"
	"slices"

	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// The operation table: every KMS operation the Service serves, declared
// once with the facts the rest of the code derives from it: registration
// with kmsapi (Operations), forwarding of writes to the raft leader
// (IsWrite), CloudTrail's readOnly and the omitted response of
// cryptographic operations (kmsapi.Operation), what a grant may allow
// (grantOps), and the key usage an operation needs (use, keystore.go).

// keyKinds is a set of kinds of KMS key, for the operations a grant on a
// key of that kind may include.
type keyKinds uint8

const (
	kindSymmetric keyKinds = 1 << iota // SYMMETRIC_DEFAULT
	kindEncrypt                        // asymmetric ENCRYPT_DECRYPT (RSA)
	kindSign                           // SIGN_VERIFY
	kindMAC                            // GENERATE_VERIFY_MAC (HMAC)
	kindAgree                          // KEY_AGREEMENT
	kindAny       = kindSymmetric | kindEncrypt | kindSign | kindMAC | kindAgree
)

// kindOf is the kind of key k.
func kindOf(k *keystore.Key) keyKinds {
	switch {
	case k.KeySpec == symmetricDefault:
		return kindSymmetric
	case k.KeyUsage == usageEncrypt:
		return kindEncrypt
	case k.KeyUsage == usageSign:
		return kindSign
	case k.KeyUsage == usageMAC:
		return kindMAC
	case k.KeyUsage == usageAgree:
		return kindAgree
	}
	return 0
}

// grantRule is what a grant may say of an operation.
type grantRule struct {
	// as are the grant operations the API operation is allowed by (its
	// own name if empty; ReEncrypt is ReEncryptFrom and ReEncryptTo).
	as []string
	// context: its requests carry an encryption context, to which a
	// grant's constraints apply (they apply to no other operation).
	context bool
	// keys are the kinds of key a grant of it may be on.
	keys keyKinds
}

// operation is one row of the table.
type operation struct {
	name string
	// write: it changes the key store (served on the raft leader;
	// CloudTrail's readOnly is false).
	write bool
	// crypto: a cryptographic operation (CloudTrail omits its response).
	crypto bool
	// grant, if set, lets a grant allow it.
	grant *grantRule
	// usage is the key usage it needs of an asymmetric or HMAC key ("":
	// none, or checked by the handler by key spec).
	usage string
	// local: it reads nothing of the key store (GenerateRandom), so it
	// is served without a read barrier (Store.Sync).
	local bool
	// handler serves it.
	handler kmsapi.Handler
}

// table is the operation table. Adding an operation is one row here and
// its handler.
func (s *Service) table() []operation {
	symmetric := &grantRule{context: true, keys: kindSymmetric}
	encryption := &grantRule{context: true, keys: kindSymmetric | kindEncrypt}
	anyKey := &grantRule{keys: kindAny}
	return []operation{
		// Cryptographic operations.
		{name: "GenerateRandom", crypto: true, local: true, handler: typed(s.generateRandom)},
		{name: "Encrypt", crypto: true, grant: encryption, handler: typed(s.encrypt)},
		{name: "Decrypt", crypto: true, grant: encryption, handler: typed(s.decrypt)},
		{name: "ReEncrypt", crypto: true, grant: &grantRule{as: []string{"ReEncryptFrom", "ReEncryptTo"}, context: true, keys: kindSymmetric | kindEncrypt}, handler: typed(s.reEncrypt)},
		{name: "GenerateDataKey", crypto: true, grant: symmetric, handler: s.generateDataKey(true)},
		{name: "GenerateDataKeyWithoutPlaintext", crypto: true, grant: symmetric, handler: s.generateDataKey(false)},
		{name: "GenerateDataKeyPair", crypto: true, grant: symmetric, handler: s.generateDataKeyPair(true)},
		{name: "GenerateDataKeyPairWithoutPlaintext", crypto: true, grant: symmetric, handler: s.generateDataKeyPair(false)},
		{name: "Sign", crypto: true, grant: &grantRule{keys: kindSign}, usage: usageSign, handler: typed(s.sign)},
		{name: "Verify", crypto: true, grant: &grantRule{keys: kindSign}, usage: usageSign, handler: typed(s.verify)},
		{name: "GenerateMac", crypto: true, grant: &grantRule{keys: kindMAC}, usage: usageMAC, handler: typed(s.generateMac)},
		{name: "VerifyMac", crypto: true, grant: &grantRule{keys: kindMAC}, usage: usageMAC, handler: typed(s.verifyMac)},
		{name: "DeriveSharedSecret", crypto: true, grant: &grantRule{keys: kindAgree}, usage: usageAgree, handler: typed(s.deriveSharedSecret)},

		// Keys.
		{name: "CreateKey", write: true, handler: typed(s.createKey)},
		{name: "DescribeKey", grant: anyKey, handler: typed(s.describeKey)},
		{name: "ListKeys", handler: typed(s.listKeys)},
		{name: "GetPublicKey", grant: &grantRule{keys: kindEncrypt | kindSign | kindAgree}, handler: typed(s.getPublicKey)},
		{name: "EnableKey", write: true, handler: s.setState("EnableKey", keystore.StateEnabled)},
		{name: "DisableKey", write: true, handler: s.setState("DisableKey", keystore.StateDisabled)},
		{name: "ScheduleKeyDeletion", write: true, handler: typed(s.scheduleKeyDeletion)},
		{name: "CancelKeyDeletion", write: true, handler: typed(s.cancelKeyDeletion)},
		{name: "UpdateKeyDescription", write: true, handler: typed(s.updateKeyDescription)},
		{name: "TagResource", write: true, handler: typed(s.tagResource)},
		{name: "UntagResource", write: true, handler: typed(s.untagResource)},
		{name: "ListResourceTags", handler: typed(s.listResourceTags)},
		{name: "GetKeyPolicy", handler: typed(s.getKeyPolicy)},
		{name: "ListKeyPolicies", handler: typed(s.listKeyPolicies)},
		{name: "PutKeyPolicy", write: true, handler: typed(s.putKeyPolicy)},

		// Key import (importops.go).
		{name: "GetParametersForImport", write: true, handler: typed(s.getParametersForImport)},
		{name: "ImportKeyMaterial", write: true, handler: typed(s.importKeyMaterial)},
		{name: "DeleteImportedKeyMaterial", write: true, handler: typed(s.deleteImportedKeyMaterial)},

		// Rotation.
		{name: "EnableKeyRotation", write: true, handler: typed(s.enableKeyRotation)},
		{name: "DisableKeyRotation", write: true, handler: typed(s.disableKeyRotation)},
		{name: "GetKeyRotationStatus", handler: typed(s.getKeyRotationStatus)},
		{name: "RotateKeyOnDemand", write: true, handler: typed(s.rotateKeyOnDemand)},
		{name: "ListKeyRotations", handler: typed(s.listKeyRotations)},

		// Aliases.
		{name: "CreateAlias", write: true, handler: typed(s.createAlias)},
		{name: "UpdateAlias", write: true, handler: typed(s.updateAlias)},
		{name: "DeleteAlias", write: true, handler: typed(s.deleteAlias)},
		{name: "ListAliases", handler: typed(s.listAliases)},

		// Grants.
		{name: "CreateGrant", write: true, grant: anyKey, handler: typed(s.createGrant)},
		{name: "ListGrants", handler: typed(s.listGrants)},
		{name: "ListRetirableGrants", handler: typed(s.listRetirableGrants)},
		{name: "RetireGrant", write: true, grant: anyKey, handler: typed(s.retireGrant)},
		{name: "RevokeGrant", write: true, handler: typed(s.revokeGrant)},

		// Custom key stores (customstoreops.go).
		{name: "CreateCustomKeyStore", write: true, handler: typed(s.createCustomKeyStore)},
		{name: "DescribeCustomKeyStores", handler: typed(s.describeCustomKeyStores)},
		{name: "UpdateCustomKeyStore", write: true, handler: typed(s.updateCustomKeyStore)},
		{name: "DeleteCustomKeyStore", write: true, handler: typed(s.deleteCustomKeyStore)},
		{name: "ConnectCustomKeyStore", write: true, handler: typed(s.connectCustomKeyStore)},
		{name: "DisconnectCustomKeyStore", write: true, handler: typed(s.disconnectCustomKeyStore)},
	}
}

// derive makes what the Service looks up from the table: the kmsapi
// registrations, the grant operations and the usages. It panics on a
// name declared twice (a bug of the table).
func (s *Service) derive() {
	s.ops = map[string]kmsapi.Operation{}
	s.grantOps = map[string]grantOp{}
	s.usage = map[string]string{}
	for _, o := range s.table() {
		if _, dup := s.ops[o.name]; dup {
			panic("kms: operation " + o.name + " declared twice")
		}
		h := o.handler
		if !o.local {
			h = s.synced(h)
		}
		s.ops[o.name] = kmsapi.Operation{Handler: h, Write: o.write, Cryptographic: o.crypto}
		if o.usage != "" {
			s.usage[o.name] = o.usage
		}
		if o.grant == nil {
			continue
		}
		names := o.grant.as
		if len(names) == 0 {
			names = []string{o.name}
		}
		for _, n := range names {
			if _, dup := s.grantOps[n]; dup {
				panic("kms: grant operation " + n + " declared twice")
			}
			s.grantOps[n] = grantOp{context: o.grant.context, keys: o.grant.keys}
		}
	}
}

// synced serves h after a read barrier (Store.Sync): a request that
// cannot be answered truthfully for the cluster gets Sync's retryable
// error instead.
func (s *Service) synced(h kmsapi.Handler) kmsapi.Handler {
	return func(ctx context.Context, p kmsapi.Principal, body []byte) (any, error) {
		if err := s.store.Sync(ctx); err != nil {
			return nil, err
		}
		return h(ctx, p, body)
	}
}

// grantOp is one grant operation as the table declares it.
type grantOp struct {
	context bool     // grant constraints apply to it
	keys    keyKinds // the kinds of key a grant of it may be on
}

// grantOpNames are the grant operations, sorted.
func (s *Service) grantOpNames() []string {
	out := make([]string, 0, len(s.grantOps))
	for n := range s.grantOps {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// typed makes a kmsapi.Handler of a handler of a typed request: the body
// is decoded strictly (kmsapi.Decode) into a new Req, and the handler's
// response is what kmsapi encodes.
func typed[Req, Resp any](f func(ctx context.Context, p kmsapi.Principal, req *Req) (Resp, error)) kmsapi.Handler {
	return func(ctx context.Context, p kmsapi.Principal, body []byte) (any, error) {
		req := new(Req)
		if err := kmsapi.Decode(body, req); err != nil {
			return nil, err
		}
		out, err := f(ctx, p, req)
		if err != nil {
			return nil, err
		}
		return out, nil
	}
}
