package kms

import (
	"context"
	"errors"
	"slices"
	"sort"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Cryptographic operations of the KMS API on SYMMETRIC_DEFAULT keys: the
// host checks the request, resolves the key, asks the policy with the
// encryption context as condition keys, and has an HSM do the work under
// the key's HBK (package hbk). Plaintext passes through the host only as
// the caller's input or answer; ReEncrypt never shows it outside the HSM.

const (
	maxCiphertextBlob = 6144
	maxGrantTokens    = 10
	symmetricDefault  = "SYMMETRIC_DEFAULT"
)

// cryptoRequest holds the fields the cryptographic operations share.
type cryptoRequest struct {
	EncryptionContext map[string]string `json:"EncryptionContext"`
	GrantTokens       []string          `json:"GrantTokens"`
	DryRun            bool              `json:"DryRun"`
}

// recipient is the Recipient parameter (Nitro Enclaves), refused until
// attestation is supported.
type recipient struct {
	AttestationDocument    []byte `json:"AttestationDocument"`
	KeyEncryptionAlgorithm string `json:"KeyEncryptionAlgorithm"`
}

// contextKey is what Encrypt, GenerateDataKey and GenerateDataKeyPair do
// first: check the shared fields, encode the encryption context, resolve
// the key (and the alias the request named).
func (s *Service) contextKey(p kmsapi.Principal, c *cryptoRequest, keyID string) (k *key, alias string, ec []byte, err error) {
	if err := c.check(); err != nil {
		return nil, "", nil, err
	}
	if ec, err = encodeContext(c.EncryptionContext); err != nil {
		return nil, "", nil, err
	}
	k, alias, err = s.resolveKeyAlias(p, keyID, true)
	return k, alias, ec, err
}

func (c *cryptoRequest) check() error {
	return checkGrantTokens(c.GrantTokens)
}

// encodeContext encodes an encryption context for the HSM.
func encodeContext(ec map[string]string) ([]byte, error) {
	e, err := hbk.EncodeContext(ec)
	if err != nil {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "invalid encryption context: %s", err)
	}
	return e, nil
}

// contextConditions are the condition keys of an encryption context and
// the algorithm (use adds kms:RequestAlias).
func contextConditions(ec map[string]string, alg string) map[string][]string {
	c := make(map[string][]string, 2+len(ec))
	c["kms:EncryptionAlgorithm"] = []string{alg}
	keys := make([]string, 0, len(ec))
	vals := make([]string, 0, len(ec)) // one array for the values
	for k, v := range ec {
		vals = append(vals, v)
		c["kms:EncryptionContext:"+k] = vals[len(vals)-1 : len(vals) : len(vals)]
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		c["kms:EncryptionContextKeys"] = keys
	}
	return c
}

// checkAlgorithm accepts SYMMETRIC_DEFAULT (or none) for a symmetric key.
func checkAlgorithm(alg *string) error {
	if alg == nil || *alg == symmetricDefault {
		return nil
	}
	switch *alg {
	case "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE":
		return kmsapi.Errorf("InvalidKeyUsageException", "The encryption algorithm %s is not compatible with a SYMMETRIC_DEFAULT key", *alg)
	}
	return validation("encryptionAlgorithm", "Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]", *alg)
}

// asymEncryption checks an Encrypt or Decrypt with an asymmetric key: an
// RSA encryption key, one of its algorithms, no encryption context.
func asymEncryption(k *key, alg string, ec map[string]string) error {
	if k.rec.Key.KeyUsage != usageEncrypt {
		return kmsapi.Errorf("InvalidKeyUsageException", "%s key usage is %s, not ENCRYPT_DECRYPT", k.rec.Key.ARN(), k.rec.Key.KeyUsage)
	}
	if !slices.Contains(algorithmsOf(&k.rec.Key), alg) {
		return kmsapi.Errorf("InvalidKeyUsageException", "The encryption algorithm %s is not compatible with key spec %s", alg, k.rec.Key.KeySpec)
	}
	if len(ec) > 0 {
		return kmsapi.Errorf(kmsapi.ValidationException, "EncryptionContext is not supported with asymmetric keys")
	}
	return nil
}

// symmetricOnly refuses an operation of symmetric keys on another key.
func symmetricOnly(k *key) error {
	if k.rec.Key.KeySpec != symmetricDefault {
		return kmsapi.Errorf("InvalidKeyUsageException", "%s is a %s key; this operation needs a SYMMETRIC_DEFAULT key", k.rec.Key.ARN(), k.rec.Key.KeySpec)
	}
	return nil
}

var errDryRun = kmsapi.Errorf("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")

// An error that already is a KMS exception (no HSM configured: 503) is
// answered as it is.
func internal(s *Service, op string, err error) error {
	var ke *kmsapi.Error
	if errors.As(err, &ke) {
		return ke
	}
	s.log.Info(op, "err", err)
	return &kmsapi.Error{Type: kmsapi.KMSInternal, Message: "the HSMs did not answer", Status: 500}
}

type encryptRequest struct {
	cryptoRequest
	KeyId               string  `json:"KeyId"`
	Plaintext           []byte  `json:"Plaintext"`
	EncryptionAlgorithm *string `json:"EncryptionAlgorithm"`
}

func (s *Service) encrypt(ctx context.Context, p kmsapi.Principal, req *encryptRequest) (*encryptResponse, error) {
	if len(req.Plaintext) < 1 || len(req.Plaintext) > hbk.MaxPlaintext {
		return nil, validation("plaintext", "Member must have length between 1 and 4096", "***")
	}
	k, alias, ec, err := s.contextKey(p, &req.cryptoRequest, req.KeyId)
	if err != nil {
		return nil, err
	}
	alg := symmetricDefault
	if req.EncryptionAlgorithm != nil {
		alg = *req.EncryptionAlgorithm
	}
	if _, err := s.use(p, k, alias, keyUse{op: "Encrypt", cond: ecConditions(req.EncryptionContext, alg, nil), dryRun: req.DryRun}); err != nil {
		return nil, err
	}
	if k.rec.Key.KeySpec != symmetricDefault {
		// RSA: OAEP with the public key, here; no encryption context.
		if err := asymEncryption(k, alg, req.EncryptionContext); err != nil {
			return nil, err
		}
		ct, err := rsaEncrypt(k.rec.Key.PublicKey, alg, req.Plaintext)
		if err != nil {
			return nil, err
		}
		return &encryptResponse{CiphertextBlob: ct, KeyId: k.rec.Key.ARN(), EncryptionAlgorithm: alg}, nil
	}
	if err := checkAlgorithm(req.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	if inStore(k) {
		blob, err := s.customSeal(ctx, p, "Encrypt", k, ec, req.Plaintext)
		if err != nil {
			return nil, err
		}
		return &encryptResponse{CiphertextBlob: blob, KeyId: k.rec.Key.ARN(), EncryptionAlgorithm: symmetricDefault}, nil
	}
	out, err := call(ctx, s, hsmcmd.EncryptRequest{Token: k.rec.Current(), Context: ec, Plaintext: req.Plaintext}, hsmcmd.ParseEncryptResponse)
	if err != nil {
		return nil, internal(s, "Encrypt", err)
	}
	return &encryptResponse{CiphertextBlob: out.Blob, KeyId: k.rec.Key.ARN(), EncryptionAlgorithm: symmetricDefault}, nil
}

// dataKeySize is GenerateDataKey's size: NumberOfBytes or KeySpec, one of
// them.
func dataKeySize(n *int, spec *string) (int, error) {
	switch {
	case n != nil && spec != nil:
		return 0, kmsapi.Errorf(kmsapi.ValidationException, "Please specify either number of bytes or key spec.")
	case n != nil:
		if *n < 1 || *n > hsmcmd.MaxRandom {
			return 0, validation("numberOfBytes", "Member must have value between 1 and 1024", *n)
		}
		return *n, nil
	case spec != nil:
		switch *spec {
		case "AES_256":
			return 32, nil
		case "AES_128":
			return 16, nil
		}
		return 0, validation("keySpec", "Member must satisfy enum value set: [AES_256, AES_128]", *spec)
	}
	return 0, kmsapi.Errorf(kmsapi.ValidationException, "Please specify either number of bytes or key spec.")
}

type generateDataKeyRequest struct {
	cryptoRequest
	KeyId         string     `json:"KeyId"`
	NumberOfBytes *int       `json:"NumberOfBytes"`
	KeySpec       *string    `json:"KeySpec"`
	Recipient     *recipient `json:"Recipient"`
}

func (s *Service) generateDataKey(withPlaintext bool) kmsapi.Handler {
	op := "GenerateDataKey"
	if !withPlaintext {
		op = "GenerateDataKeyWithoutPlaintext"
	}
	return typed(func(ctx context.Context, p kmsapi.Principal, req *generateDataKeyRequest) (*generateDataKeyResponse, error) {
		doc, recipientCond, err := s.checkRecipient(ctx, op, withPlaintext, req.Recipient)
		if err != nil {
			return nil, err
		}
		size, err := dataKeySize(req.NumberOfBytes, req.KeySpec)
		if err != nil {
			return nil, err
		}
		k, alias, ec, err := s.contextKey(p, &req.cryptoRequest, req.KeyId)
		if err != nil {
			return nil, err
		}
		if _, err := s.use(p, k, alias, keyUse{op: op, cond: ecConditions(req.EncryptionContext, symmetricDefault, recipientCond), dryRun: req.DryRun}); err != nil {
			return nil, err
		}
		if err := symmetricOnly(k); err != nil {
			return nil, err
		}
		if inStore(k) && k.rec.Key.Origin == keystore.OriginExternalKeyStore {
			return s.xksDataKey(ctx, p, op, k, ec, size, withPlaintext, doc != nil)
		}
		if inStore(k) {
			return s.storeDataKey(ctx, op, k, ec, size, withPlaintext, doc != nil)
		}
		gdk := hsmcmd.GenerateDataKeyRequest{Token: k.rec.Current(), Context: ec, Size: uint16(size), WithPlaintext: withPlaintext}
		if doc != nil {
			rr, err := s.viaRecipient(ctx, op, doc, gdk, nil)
			if err != nil {
				return nil, err
			}
			blob, err := rr.DataKeyBlob()
			if err != nil {
				return nil, internal(s, op, err)
			}
			return &generateDataKeyResponse{CiphertextBlob: blob, CiphertextForRecipient: rr.CiphertextForRecipient, KeyId: k.rec.Key.ARN()}, nil
		}
		out, err := call(ctx, s, gdk, hsmcmd.ParseGenerateDataKeyResponse)
		if err != nil {
			return nil, internal(s, op, err)
		}
		pt, blob := out.Plaintext, out.Blob
		if (withPlaintext && len(pt) != size) || (!withPlaintext && len(pt) != 0) {
			return nil, internal(s, op, errors.New("kms: malformed data key answer"))
		}
		res := &generateDataKeyResponse{CiphertextBlob: blob, KeyId: k.rec.Key.ARN()}
		if withPlaintext {
			res.Plaintext = pt
		}
		return res, nil
	})
}

// errInvalidCiphertext is KMS's answer for a ciphertext that does not
// open: malformed, another key or context, or tampered. It says no more.
var errInvalidCiphertext = kmsapi.Errorf("InvalidCiphertextException", "The ciphertext is invalid or was not encrypted under this key and encryption context.")

// namedKey is the resolution (resolveKeyAlias, aliases allowed) of the
// KeyId a request gave: the key and the alias it named, or the error,
// which the caller reports where its checks come to it. A nil *namedKey
// means the request gave no KeyId.
type namedKey struct {
	k     *key
	alias string
	err   error
}

// resolveNamed resolves keyID once for every step of a request that needs
// it (Decrypt's asymmetric and symmetric paths); nil if keyID is nil.
func (s *Service) resolveNamed(p kmsapi.Principal, keyID *string) *namedKey {
	if keyID == nil {
		return nil
	}
	k, alias, err := s.resolveKeyAlias(p, *keyID, true)
	return &namedKey{k: k, alias: alias, err: err}
}

// openSource is openNamed for the caller's KeyId (nil if none).
func (s *Service) openSource(p kmsapi.Principal, raw []byte, keyID *string) (k *key, token []byte, sb *customBlob, alias string, err error) {
	return s.openNamed(p, raw, s.resolveNamed(p, keyID))
}

// openNamed finds the key and the HBK token of a ciphertext blob and
// checks the key the caller's KeyId named (if any, resolved as named) is
// the same key. The ciphertext of a key in a custom key store (a
// storeBlob or an xksBlob) gives sb instead of a token.
func (s *Service) openNamed(p kmsapi.Principal, raw []byte, named *namedKey) (k *key, token []byte, sb *customBlob, alias string, err error) {
	if len(raw) < 1 || len(raw) > maxCiphertextBlob {
		return nil, nil, nil, "", validation("ciphertextBlob", "Member must have length between 1 and 6144", "…")
	}
	var blobKey string
	bl, err := hbk.ParseBlob(raw)
	if err == nil {
		blobKey = bl.KeyID
	} else if sb, err = parseCustomBlob(raw); err == nil {
		blobKey = sb.keyID()
	} else {
		return nil, nil, nil, "", errInvalidCiphertext
	}
	if named != nil {
		if named.err != nil {
			return nil, nil, nil, "", named.err
		}
		k, alias = named.k, named.alias
		if k.rec.Key.KeyID != blobKey {
			return nil, nil, nil, "", kmsapi.Errorf("IncorrectKeyException", "The key ID in the request does not identify the KMS key that encrypted the ciphertext.")
		}
	} else {
		if k, err = s.loadKey(blobKey); err != nil {
			return nil, nil, nil, "", internal(s, "Decrypt", err) // a record that does not parse says nothing of the ciphertext
		}
		if k == nil {
			return nil, nil, nil, "", errInvalidCiphertext
		}
	}
	if sb != nil {
		if !sb.fits(k) {
			sb = nil // authorize first; then errInvalidCiphertext
		}
		return k, nil, sb, alias, nil
	}
	if k.rec.Key.Origin == keystore.OriginExternalKeyStore {
		// The inner ciphertext of an external key store key opens only
		// through the external key's layer.
		return k, nil, nil, alias, nil
	}
	for _, t := range k.rec.Tokens {
		if tok, err := hbk.ParseToken(t); err == nil && tok.HBKID == bl.HBKID {
			return k, t, nil, alias, nil
		}
	}
	return k, nil, nil, alias, nil // authorize first; then errInvalidCiphertext
}

type decryptRequest struct {
	cryptoRequest
	CiphertextBlob      []byte     `json:"CiphertextBlob"`
	KeyId               *string    `json:"KeyId"`
	EncryptionAlgorithm *string    `json:"EncryptionAlgorithm"`
	Recipient           *recipient `json:"Recipient"`
}

func (s *Service) decrypt(ctx context.Context, p kmsapi.Principal, req *decryptRequest) (*decryptResponse, error) {
	doc, recipientCond, err := s.checkRecipient(ctx, "Decrypt", true, req.Recipient)
	if err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	named := s.resolveNamed(p, req.KeyId) // once, for both paths
	if out, done, err := s.asymDecrypt(ctx, p, named, req.EncryptionAlgorithm, req.CiphertextBlob, req.EncryptionContext, req.DryRun); done {
		return out, err
	}
	if err := checkAlgorithm(req.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	ec, err := encodeContext(req.EncryptionContext)
	if err != nil {
		return nil, err
	}
	k, tok, sb, alias, err := s.openNamed(p, req.CiphertextBlob, named)
	if err != nil {
		return nil, err
	}
	if _, err := s.use(p, k, alias, keyUse{op: "Decrypt", cond: ecConditions(req.EncryptionContext, symmetricDefault, recipientCond), dryRun: req.DryRun}); err != nil {
		return nil, err
	}
	if sb != nil {
		if doc != nil {
			return nil, errStoreRecipient
		}
		pt, err := s.customOpen(ctx, p, "Decrypt", k, ec, sb)
		if err != nil {
			return nil, err
		}
		return &decryptResponse{Plaintext: pt, KeyId: k.rec.Key.ARN(), EncryptionAlgorithm: symmetricDefault}, nil
	}
	if tok == nil {
		return nil, errInvalidCiphertext
	}
	dec := hsmcmd.DecryptRequest{Token: tok, Context: ec, Blob: req.CiphertextBlob}
	if doc != nil {
		rr, err := s.viaRecipient(ctx, "Decrypt", doc, dec, errInvalidCiphertext)
		if err != nil {
			return nil, err
		}
		return &decryptResponse{CiphertextForRecipient: rr.CiphertextForRecipient, KeyId: k.rec.Key.ARN(), EncryptionAlgorithm: symmetricDefault}, nil
	}
	out, err := call(ctx, s, dec, hsmcmd.ParseDecryptResponse)
	if err := s.hsmAnswer("Decrypt", err, errInvalidCiphertext); err != nil {
		return nil, err
	}
	return &decryptResponse{Plaintext: out.Plaintext, KeyId: k.rec.Key.ARN(), EncryptionAlgorithm: symmetricDefault}, nil
}

// asymDecrypt serves Decrypt when its KeyId names an asymmetric key (KMS
// requires the KeyId for those; named is its resolution); done is false
// for a symmetric key or no KeyId, which the hierarchy serves.
func (s *Service) asymDecrypt(ctx context.Context, p kmsapi.Principal, named *namedKey, alg *string, blob []byte, ec map[string]string, dryRun bool) (out *decryptResponse, done bool, err error) {
	if named == nil || named.err != nil || named.k.rec.Key.KeySpec == symmetricDefault {
		return nil, false, nil // the hierarchy's path answers, errors included
	}
	k, alias := named.k, named.alias
	if len(blob) < 1 || len(blob) > maxCiphertextBlob {
		return nil, true, validation("ciphertextBlob", "Member must have length between 1 and 6144", "…")
	}
	a := ""
	if alg != nil {
		a = *alg
	}
	if _, err := s.use(p, k, alias, keyUse{op: "Decrypt", cond: ecConditions(ec, a, nil), dryRun: dryRun}); err != nil {
		return nil, true, err
	}
	if err := asymEncryption(k, a, ec); err != nil {
		return nil, true, err
	}
	pt, err := call(ctx, s, hsmcmd.AsymDecryptRequest{Token: k.rec.Current(), Alg: hsmcmd.AlgCode(a), Ciphertext: blob}, hsmcmd.ParseAsymDecryptResponse)
	if err = s.hsmAnswer("Decrypt", err, errInvalidCiphertext); err != nil {
		return nil, true, err
	}
	return &decryptResponse{Plaintext: pt.Plaintext, KeyId: k.rec.Key.ARN(), EncryptionAlgorithm: a}, true, nil
}

type reEncryptRequest struct {
	CiphertextBlob                 []byte            `json:"CiphertextBlob"`
	SourceEncryptionContext        map[string]string `json:"SourceEncryptionContext"`
	SourceKeyId                    *string           `json:"SourceKeyId"`
	DestinationKeyId               string            `json:"DestinationKeyId"`
	DestinationEncryptionContext   map[string]string `json:"DestinationEncryptionContext"`
	SourceEncryptionAlgorithm      *string           `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm *string           `json:"DestinationEncryptionAlgorithm"`
	GrantTokens                    []string          `json:"GrantTokens"`
	DryRun                         bool              `json:"DryRun"`
}

func (s *Service) reEncrypt(ctx context.Context, p kmsapi.Principal, req *reEncryptRequest) (*reEncryptResponse, error) {
	if err := (&cryptoRequest{GrantTokens: req.GrantTokens}).check(); err != nil {
		return nil, err
	}
	for _, a := range []*string{req.SourceEncryptionAlgorithm, req.DestinationEncryptionAlgorithm} {
		if err := checkAlgorithm(a); err != nil {
			return nil, err
		}
	}
	srcEC, err := encodeContext(req.SourceEncryptionContext)
	if err != nil {
		return nil, err
	}
	dstEC, err := encodeContext(req.DestinationEncryptionContext)
	if err != nil {
		return nil, err
	}
	src, tok, sb, srcAlias, err := s.openSource(p, req.CiphertextBlob, req.SourceKeyId)
	if err != nil {
		return nil, err
	}
	dst, dstAlias, err := s.resolveKeyAlias(p, req.DestinationKeyId, true)
	if err != nil {
		return nil, err
	}
	if _, err := s.use(p, src, srcAlias, keyUse{op: "ReEncrypt", action: "kms:ReEncryptFrom", cond: ecConditions(req.SourceEncryptionContext, symmetricDefault, nil), state: stateAny}); err != nil {
		return nil, err
	}
	if _, err := s.use(p, dst, dstAlias, keyUse{op: "ReEncrypt", action: "kms:ReEncryptTo", cond: ecConditions(req.DestinationEncryptionContext, symmetricDefault, nil), state: stateAny}); err != nil {
		return nil, err
	}
	for _, k := range []*key{src, dst} {
		if err := s.usable(k); err != nil {
			return nil, err
		}
		if err := symmetricOnly(k); err != nil {
			return nil, err
		}
	}
	if tok == nil && sb == nil {
		return nil, errInvalidCiphertext
	}
	if req.DryRun {
		return nil, errDryRun
	}
	if sb != nil || inStore(dst) {
		blob, err := s.storeReEncrypt(ctx, p, src, tok, sb, srcEC, req.CiphertextBlob, dst, dstEC)
		if err != nil {
			return nil, err
		}
		return &reEncryptResponse{CiphertextBlob: blob, SourceKeyId: src.rec.Key.ARN(), KeyId: dst.rec.Key.ARN(),
			SourceEncryptionAlgorithm: symmetricDefault, DestinationEncryptionAlgorithm: symmetricDefault}, nil
	}
	out, err := call(ctx, s, hsmcmd.ReEncryptRequest{SourceToken: tok, SourceContext: srcEC, Blob: req.CiphertextBlob,
		DestinationToken: dst.rec.Current(), DestinationContext: dstEC}, hsmcmd.ParseReEncryptResponse)
	if err := s.hsmAnswer("ReEncrypt", err, errInvalidCiphertext); err != nil {
		return nil, err
	}
	return &reEncryptResponse{CiphertextBlob: out.Blob, SourceKeyId: src.rec.Key.ARN(), KeyId: dst.rec.Key.ARN(),
		SourceEncryptionAlgorithm: symmetricDefault, DestinationEncryptionAlgorithm: symmetricDefault}, nil
}
