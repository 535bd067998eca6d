package kms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Key import (BYOK) for keys of Origin EXTERNAL: SYMMETRIC_DEFAULT, RSA,
// ECC (NIST and secp256k1) and HMAC keys.
//
// GetParametersForImport has an HSM make an RSA wrapping key for the key
// (CreateKeyPair with a wrapping spec: a key token only ImportKeyMaterial
// uses) and keeps its key token in the key record with the import token's
// expiry, so that any HSM of the domain can unwrap with it. The import
// token is version 1 ‖ the key ID (36 bytes) ‖ a 32-byte random handle
// (69 bytes): it names the key record, and the handle, compared in
// constant time with the record's, makes it unguessable. Each
// GetParametersForImport's token stays valid for its 24 hours, as in AWS:
// the record keeps the last one's parameters and, in Import.Earlier, the
// keystore.MaxEarlierImports earlier ones before it, expired or not (past
// that, the oldest is dropped, and its token is
// InvalidImportTokenException).
//
// ImportKeyMaterial sends the HSM the wrapping key token, the algorithm,
// the wrapped material and the key ID (hsmcmd.ImportKeyMaterial for a
// SYMMETRIC_DEFAULT key, hsmcmd.ImportKeyToken with the spec for the
// others); the HSM unwraps, checks and seals the material as an HBK token
// or a key token and answers it with a check value (and the public key of
// an asymmetric key). The first import fixes the check value (and the HBK
// ID); a re-import must have the same check value (else
// IncorrectKeyMaterialException) and a symmetric key's token takes the
// same HBK ID, so the key's ciphertexts open again.
//
// The exceptions are AWS's: an import token that is none of the key's
// is InvalidImportTokenException, one of the key's past its 24 hours
// ExpiredImportTokenException, a wrapped material that does not
// decrypt under the wrapping key InvalidCiphertextException, and one that
// decrypts to material that is not of the key's spec, or not the
// material imported before, IncorrectKeyMaterialException. A wrapping
// key token under a domain key no HSM holds (which the re-encryption job
// prevents) is KMSInternalException, never a statement about the
// request.

const (
	importTokenVersion = 1
	importHandleSize   = 32
	importTokenSize    = 1 + 36 + importHandleSize
	importParamsLife   = 24 * time.Hour
	maxImportBlob      = 6144 // ImportToken and EncryptedKeyMaterial (API reference)
	maxMaterialLife    = 365 * day

	expiresModel      = "KEY_MATERIAL_EXPIRES"
	doesNotExpire     = "KEY_MATERIAL_DOES_NOT_EXPIRE"
	errPendingImportF = "%s is pending import."
)

// wrappingAlgorithms are AWS's AlgorithmSpec values: true for those this
// build serves (RSAES_PKCS1_V1_5 AWS no longer serves either).
var wrappingAlgorithms = map[string]bool{
	"RSAES_OAEP_SHA_1": true, "RSAES_OAEP_SHA_256": true, "RSA_AES_KEY_WRAP_SHA_1": true, "RSA_AES_KEY_WRAP_SHA_256": true,
	"RSAES_PKCS1_V1_5": false, "SM2PKE": false,
}

// importable reports whether this build imports key material of spec:
// every spec it makes keys of but ML-DSA (and SM2, which it does not
// make).
func importable(spec string) bool {
	return spec == symmetricDefault || (hsmcmd.SpecCode(spec) != 0 && hsmcmd.MLDSAScheme(hsmcmd.SpecCode(spec)) == nil)
}

// checkWrapping applies the API reference's rules of which wrapping
// algorithm wraps which key material (GetParametersForImport's
// WrappingAlgorithm): RSA_AES_KEY_WRAP_SHA_* wraps RSA and ECC key
// material, and an RSA private key needs it; RSAES_OAEP_SHA_* wraps all
// but RSA private keys, and not ECC_NIST_P521 key material with an
// RSA_2048 wrapping key (it does not fit).
func checkWrapping(spec, alg, wrapSpec string) error {
	aesWrap := strings.HasPrefix(alg, "RSA_AES_KEY_WRAP_")
	rsaKey, eccKey := strings.HasPrefix(spec, "RSA_"), strings.HasPrefix(spec, "ECC_")
	switch {
	case rsaKey && !aesWrap:
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s key material (an RSA private key) must be wrapped with RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256", spec)
	case aesWrap && !rsaKey && !eccKey:
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s wraps RSA and ECC key material, not %s", alg, spec)
	case spec == "ECC_NIST_P521" && wrapSpec == "RSA_2048" && !aesWrap:
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "ECC_NIST_P521 key material does not fit %s with an RSA_2048 wrapping key", alg)
	}
	return nil
}

// external runs the checks every import operation makes of its key: its
// origin is EXTERNAL and it is not pending deletion.
func external(k *key) error {
	if k.rec.Key.Origin != keystore.OriginExternal {
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s origin is %s, not EXTERNAL", k.rec.Key.ARN(), k.rec.Key.Origin)
	}
	return notPending(k)
}

// materialExpired reports whether the imported material of key k has
// passed its ValidTo at now (the key is then PendingImport: its record
// says so after key maintenance, every use says so at once).
func materialExpired(k *keystore.Key, now time.Time) bool {
	im := k.Import
	return k.Origin == keystore.OriginExternal && im != nil && im.ExpirationModel == expiresModel && im.ValidTo <= now.Unix()
}

type getParametersForImportRequest struct {
	KeyId             string `json:"KeyId"`
	WrappingAlgorithm string `json:"WrappingAlgorithm"`
	WrappingKeySpec   string `json:"WrappingKeySpec"`
}

type getParametersForImportResponse struct {
	KeyId             string `json:"KeyId"`
	ImportToken       []byte `json:"ImportToken"`
	PublicKey         []byte `json:"PublicKey"`
	ParametersValidTo *epoch `json:"ParametersValidTo"`
}

func (s *Service) getParametersForImport(ctx context.Context, p kmsapi.Principal, req *getParametersForImportRequest) (*getParametersForImportResponse, error) {
	serves, known := wrappingAlgorithms[req.WrappingAlgorithm]
	if !known {
		return nil, validation("wrappingAlgorithm", "Member must satisfy enum value set: [RSAES_PKCS1_V1_5, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256, SM2PKE]", req.WrappingAlgorithm)
	}
	spec, ok := hsmcmd.WrappingSpecs[req.WrappingKeySpec]
	if !ok && req.WrappingKeySpec != "SM2" {
		return nil, validation("wrappingKeySpec", "Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, SM2]", req.WrappingKeySpec)
	}
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "GetParametersForImport", state: stateAny, check: external})
	if err != nil {
		return nil, err
	}
	if !serves || !ok {
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s with %s is not supported by this Trent build", req.WrappingAlgorithm, req.WrappingKeySpec)
	}
	if err := checkWrapping(k.rec.Key.KeySpec, req.WrappingAlgorithm, req.WrappingKeySpec); err != nil {
		return nil, err
	}
	id := k.rec.Key.KeyID
	out, err := call(ctx, s, hsmcmd.CreateKeyPairRequest{Spec: spec, KeyID: id}, hsmcmd.ParseCreateKeyPairResponse)
	if err != nil {
		return nil, internal(s, "GetParametersForImport", err)
	}
	handle := make([]byte, importHandleSize)
	rand.Read(handle)
	validTo := s.now().Add(importParamsLife).Unix()
	r, err := s.updateKey(ctx, id, func(r *keystore.Record) error {
		if err := external(&key{rec: r}); err != nil {
			return err
		}
		if r.Key.Import == nil {
			r.Key.Import = &keystore.Import{}
		}
		im := r.Key.Import
		im.Earlier = keepEarlier(im)
		im.Handle, im.WrappingToken = handle, out.Token
		im.WrappingAlg, im.ParametersValidTo = req.WrappingAlgorithm, validTo
		return nil
	})
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 0, importTokenSize)
	tok = append(append(append(tok, importTokenVersion), id...), handle...)
	return &getParametersForImportResponse{KeyId: r.Key.ARN(), ImportToken: tok, PublicKey: out.PublicKey, ParametersValidTo: unix(validTo)}, nil
}

// keepEarlier is im's earlier parameters for a new GetParametersForImport:
// the earlier ones and the current ones, oldest first, the last
// keystore.MaxEarlierImports of them, expired or not. An expired one is
// kept so that its token is still answered as what it is,
// ExpiredImportTokenException, and not as a token the key never had;
// since every token lives 24 hours, the kept ones include every one not
// yet expired that the bound allows.
func keepEarlier(im *keystore.Import) []keystore.ImportParams {
	out := slices.Clone(im.Earlier)
	if len(im.Handle) > 0 {
		out = append(out, im.Last())
	}
	return out[max(0, len(out)-keystore.MaxEarlierImports):]
}

var errInvalidImportToken = kmsapi.Errorf("InvalidImportTokenException", "The import token is invalid or is associated with a different KMS key.")

// checkImportToken checks an import token against the key record r and
// returns its parameters: it must be one of the record's (the last
// GetParametersForImport's or an earlier one's), unexpired at now. Every
// handle is compared, in constant time.
func checkImportToken(r *keystore.Record, tok []byte, now time.Time) (*keystore.ImportParams, error) {
	im := r.Key.Import
	if len(tok) != importTokenSize || tok[0] != importTokenVersion || string(tok[1:37]) != r.Key.KeyID || im == nil {
		return nil, errInvalidImportToken
	}
	var found *keystore.ImportParams
	for _, p := range append([]keystore.ImportParams{im.Last()}, im.Earlier...) {
		if len(p.Handle) == importHandleSize && subtle.ConstantTimeCompare(tok[37:], p.Handle) == 1 {
			found = &p
		}
	}
	if found == nil {
		return nil, errInvalidImportToken
	}
	if found.ParametersValidTo <= now.Unix() {
		return nil, kmsapi.Errorf("ExpiredImportTokenException", "The import token has expired; call GetParametersForImport again.")
	}
	return found, nil
}

type importKeyMaterialRequest struct {
	KeyId                  string  `json:"KeyId"`
	ImportToken            []byte  `json:"ImportToken"`
	EncryptedKeyMaterial   []byte  `json:"EncryptedKeyMaterial"`
	ValidTo                *epoch  `json:"ValidTo"`
	ExpirationModel        *string `json:"ExpirationModel"`
	ImportType             *string `json:"ImportType"`
	KeyMaterialDescription *string `json:"KeyMaterialDescription"`
	KeyMaterialId          *string `json:"KeyMaterialId"`
}

func (s *Service) importKeyMaterial(ctx context.Context, p kmsapi.Principal, req *importKeyMaterialRequest) (*keyIDResponse, error) {
	if len(req.ImportToken) < 1 || len(req.ImportToken) > maxImportBlob {
		return nil, validation("importToken", "Member must have length between 1 and 6144", "…")
	}
	if len(req.EncryptedKeyMaterial) < 1 || len(req.EncryptedKeyMaterial) > maxImportBlob {
		return nil, validation("encryptedKeyMaterial", "Member must have length between 1 and 6144", "…")
	}
	model := expiresModel // the API reference's default, which needs a ValidTo
	if req.ExpirationModel != nil {
		model = *req.ExpirationModel
	}
	var validTo int64
	switch model {
	case expiresModel:
		if req.ValidTo == nil {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES")
		}
		validTo = int64(*req.ValidTo)
		if validTo <= s.now().Unix() || validTo > s.now().Add(maxMaterialLife).Unix() {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "ValidTo must be in the future and at most 365 days from now")
		}
	case doesNotExpire:
		if req.ValidTo != nil {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
		}
	default:
		return nil, validation("expirationModel", "Member must satisfy enum value set: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]", model)
	}
	if req.KeyMaterialId != nil || (req.ImportType != nil && *req.ImportType != "EXISTING_KEY_MATERIAL" && *req.ImportType != "NEW_KEY_MATERIAL") {
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "KeyMaterialId and rotation of imported key material are not supported by this Trent build")
	}
	if req.KeyMaterialDescription != nil && len(*req.KeyMaterialDescription) > 256 {
		return nil, validation("keyMaterialDescription", "Member must have length less than or equal to 256", "…")
	}
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "ImportKeyMaterial", state: stateAny, check: external})
	if err != nil {
		return nil, err
	}
	params, err := checkImportToken(k.rec, req.ImportToken, s.now())
	if err != nil {
		return nil, err
	}
	im := k.rec.Key.Import
	if req.ImportType != nil && *req.ImportType == "NEW_KEY_MATERIAL" && im.Check != nil {
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "rotation of imported key material is not supported by this Trent build")
	}
	out, err := s.importMaterial(ctx, k.rec, params, req.EncryptedKeyMaterial)
	if err != nil {
		return nil, err
	}
	r, err := s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if err := external(&key{rec: r}); err != nil {
			return err
		}
		if _, err := checkImportToken(r, req.ImportToken, s.now()); err != nil {
			return err
		}
		im := r.Key.Import
		if im.Check != nil && !hmac.Equal(im.Check, out.check) {
			return errIncorrectMaterial
		}
		if r.Key.PublicKey != nil && !bytes.Equal(r.Key.PublicKey, out.public) {
			return internal(s, "ImportKeyMaterial", errors.New("the same material's public key changed"))
		}
		im.Check, im.HBKID, r.Key.PublicKey = out.check, out.hbkID, out.public
		im.ExpirationModel, im.ValidTo = model, validTo
		if len(r.Tokens) == 0 {
			r.Tokens = [][]byte{out.token}
		}
		if r.Key.State == keystore.StatePendingImport {
			r.Key.State = keystore.StateEnabled
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &keyIDResponse{KeyId: r.Key.ARN()}, nil
}

var (
	errUnwrap            = kmsapi.Errorf("InvalidCiphertextException", "KMS could not decrypt the encrypted (wrapped) key material.")
	errIncorrectMaterial = kmsapi.Errorf("IncorrectKeyMaterialException", "The key material is not the key material previously imported into this KMS key.")
	errInvalidMaterial   = kmsapi.Errorf("IncorrectKeyMaterialException", "The key material is not valid key material for the key spec of this KMS key.")
)

// imported is an HSM's answer to an import: the material's token, its
// check value, its HBK ID (symmetric keys) or public key (asymmetric).
type imported struct {
	token, check, hbkID, public []byte
}

// importMaterial has an HSM unwrap wrapped with the wrapping key of
// params (an import token of record r, which the caller checked) and seal
// it for the key of r.
func (s *Service) importMaterial(ctx context.Context, r *keystore.Record, params *keystore.ImportParams, wrapped []byte) (*imported, error) {
	im, id := r.Key.Import, r.Key.KeyID
	alg := hsmcmd.WrappingAlgs[params.WrappingAlg]
	answer := func(err error) error {
		if errors.Is(err, ErrKeyMaterial) {
			return errInvalidMaterial
		}
		return s.hsmAnswer("ImportKeyMaterial", err, errUnwrap)
	}
	if r.Key.KeySpec == symmetricDefault {
		out, err := call(ctx, s, hsmcmd.ImportKeyMaterialRequest{WrappingToken: params.WrappingToken, Alg: alg,
			Material: wrapped, KeyID: id, HBKID: im.HBKID}, hsmcmd.ParseImportKeyMaterialResponse)
		if err = answer(err); err != nil {
			return nil, err
		}
		t, err := hbk.ParseToken(out.Token)
		if err != nil || t.KeyID != id || (im.HBKID != nil && !bytes.Equal(im.HBKID, t.HBKID[:])) {
			return nil, internal(s, "ImportKeyMaterial", errors.New("the HSM's HBK token is not the key's"))
		}
		return &imported{token: out.Token, check: out.Check, hbkID: t.HBKID[:]}, nil
	}
	spec := hsmcmd.SpecCode(r.Key.KeySpec)
	out, err := call(ctx, s, hsmcmd.ImportKeyTokenRequest{WrappingToken: params.WrappingToken, Alg: alg, Spec: spec,
		Material: wrapped, KeyID: id}, hsmcmd.ParseImportKeyTokenResponse)
	if err = answer(err); err != nil {
		return nil, err
	}
	t, err := hbk.ParseKeyToken(out.Token)
	if err != nil || t.KeyID != id || t.Spec != spec {
		return nil, internal(s, "ImportKeyMaterial", errors.New("the HSM's key token is not the key's"))
	}
	pub := out.PublicKey
	if len(pub) == 0 {
		pub = nil // an HMAC key has none
	}
	return &imported{token: out.Token, check: out.Check, public: pub}, nil
}

func (s *Service) deleteImportedKeyMaterial(ctx context.Context, p kmsapi.Principal, req *deleteImportedKeyMaterialRequest) (*keyIDResponse, error) {
	if req.KeyMaterialId != nil {
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "KeyMaterialId is not supported by this Trent build")
	}
	k, err := s.useKey(p, req.KeyId, false, keyUse{op: "DeleteImportedKeyMaterial", state: stateAny, check: external})
	if err != nil {
		return nil, err
	}
	r, err := s.updateKey(ctx, k.rec.Key.KeyID, func(r *keystore.Record) error {
		if err := external(&key{rec: r}); err != nil {
			return err
		}
		dropMaterial(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &keyIDResponse{KeyId: r.Key.ARN()}, nil
}

type deleteImportedKeyMaterialRequest struct {
	KeyId         string  `json:"KeyId"`
	KeyMaterialId *string `json:"KeyMaterialId"`
}

// dropMaterial deletes an EXTERNAL key's material (its HBK token): the key
// is PendingImport until the same material is imported again.
func dropMaterial(r *keystore.Record) {
	r.Tokens = nil
	r.Key.State = keystore.StatePendingImport
	if r.Key.Import != nil {
		r.Key.Import.ExpirationModel, r.Key.Import.ValidTo = "", 0
	}
}
