package kms

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"hash"
	"slices"
	"strings"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Asymmetric and HMAC keys: RSA (encryption or signing), ECC NIST curves
// (signing or key agreement) and HMAC. Their private and secret keys are
// made and used by the HSMs (package hsm/node); the host verifies
// signatures and encrypts with RSA public keys itself, as KMS's public
// operations may.

// Key usages, as KMS names them.
const (
	usageEncrypt = "ENCRYPT_DECRYPT"
	usageSign    = "SIGN_VERIFY"
	usageMAC     = "GENERATE_VERIFY_MAC"
	usageAgree   = "KEY_AGREEMENT"
)

// specUsages are the key specs served and the usages each allows (the
// first is the default).
var specUsages = map[string][]string{
	symmetricDefault: {usageEncrypt},
	"RSA_2048":       {usageEncrypt, usageSign}, "RSA_3072": {usageEncrypt, usageSign}, "RSA_4096": {usageEncrypt, usageSign},
	"ECC_NIST_P256": {usageSign, usageAgree}, "ECC_NIST_P384": {usageSign, usageAgree}, "ECC_NIST_P521": {usageSign, usageAgree},
	"HMAC_224": {usageMAC}, "HMAC_256": {usageMAC}, "HMAC_384": {usageMAC}, "HMAC_512": {usageMAC},
	"ML_DSA_44": {usageSign}, "ML_DSA_65": {usageSign}, "ML_DSA_87": {usageSign},
	"ECC_SECG_P256K1": {usageSign},
}

// knownSpecs are KMS key specs this build does not make yet.
var knownSpecs = map[string]bool{"SM2": true}

// checkSpecUsage returns the key usage of a CreateKey request.
func checkSpecUsage(spec string, usage *string) (string, error) {
	usages, ok := specUsages[spec]
	if !ok {
		if knownSpecs[spec] {
			return "", kmsapi.Errorf(kmsapi.UnsupportedOperation, "KeySpec %s is not supported by this Trent build", spec)
		}
		return "", validation("keySpec", "Member must satisfy enum value set", spec)
	}
	if usage == nil {
		if spec != symmetricDefault && usages[0] != usageEncrypt && len(usages) > 1 {
			return "", kmsapi.Errorf(kmsapi.ValidationException, "KeyUsage is required for KeySpec %s", spec)
		}
		return usages[0], nil
	}
	if !slices.Contains(usages, *usage) {
		return "", kmsapi.Errorf(kmsapi.ValidationException, "KeyUsage %s is not compatible with KeySpec %s", *usage, spec)
	}
	return *usage, nil
}

// algorithmsOf are the algorithms a key offers for its usage.
func algorithmsOf(k *keystore.Key) []string {
	switch {
	case k.KeySpec == symmetricDefault:
		return []string{symmetricDefault}
	case strings.HasPrefix(k.KeySpec, "RSA_") && k.KeyUsage == usageEncrypt:
		return []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	case strings.HasPrefix(k.KeySpec, "RSA_"):
		return []string{"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
			"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"}
	case k.KeyUsage == usageAgree:
		return []string{"ECDH"}
	case k.KeySpec == "ECC_NIST_P256", k.KeySpec == "ECC_SECG_P256K1":
		return []string{"ECDSA_SHA_256"}
	case k.KeySpec == "ECC_NIST_P384":
		return []string{"ECDSA_SHA_384"}
	case k.KeySpec == "ECC_NIST_P521":
		return []string{"ECDSA_SHA_512"}
	case strings.HasPrefix(k.KeySpec, "HMAC_"):
		return []string{"HMAC_SHA_" + strings.TrimPrefix(k.KeySpec, "HMAC_")}
	case strings.HasPrefix(k.KeySpec, "ML_DSA_"):
		return []string{"ML_DSA_SHAKE_256"}
	}
	return nil
}

// createKeyPair asks an HSM for a new asymmetric or HMAC key.
func (s *Service) createKeyPair(ctx context.Context, spec, id string) (token, public []byte, err error) {
	code := hsmcmd.SpecCode(spec)
	if code == 0 { // a spec the HSMs do not make: permanent, and not an HSM's absence
		return nil, nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "KeySpec %s is not supported by this Trent build", spec)
	}
	out, err := call(ctx, s, hsmcmd.CreateKeyPairRequest{Spec: code, KeyID: id}, hsmcmd.ParseCreateKeyPairResponse)
	if err != nil {
		return nil, nil, internal(s, "CreateKey", err)
	}
	return out.Token, out.PublicKey, nil
}

// asymKey runs the use-a-key pipeline for an operation of an asymmetric
// or HMAC key (the usage the table declares for op), whose algorithm
// (named by the request's field algField) must be one of the key's.
func (s *Service) asymKey(p kmsapi.Principal, keyID, op, algField, alg string, cond map[string][]string, dryRun bool) (*key, error) {
	return s.useKey(p, keyID, true, keyUse{op: op, cond: fixedConditions(cond), dryRun: dryRun, check: func(k *key) error {
		if !slices.Contains(algorithmsOf(&k.rec.Key), alg) {
			return kmsapi.Errorf("InvalidKeyUsageException", "Algorithm %s is incompatible with key spec %s (%s)", alg, k.rec.Key.KeySpec, algField)
		}
		return nil
	}})
}

// hsmAnswer maps call's error for a key command to a KMS exception: an
// HSM's refusal to refused (if not nil), any other to an internal error.
func (s *Service) hsmAnswer(op string, err error, refused error) error {
	if errors.Is(err, ErrRefused) && refused != nil {
		return refused
	}
	if err != nil {
		return internal(s, op, err)
	}
	return nil
}

// checkMessage validates a Sign/Verify/GenerateMac message.
func checkMessage(msg []byte) error {
	if len(msg) < 1 || len(msg) > 4096 {
		return validation("message", "Member must have length between 1 and 4096", "***")
	}
	return nil
}

// messageType checks a MessageType (RAW by default) and, for DIGEST, the
// digest's length for the algorithm.
func messageType(t *string, alg string, msg []byte) (bool, error) {
	if t == nil || *t == "RAW" {
		return false, nil
	}
	if *t == "EXTERNAL_MU" {
		return false, kmsapi.Errorf(kmsapi.UnsupportedOperation, "MessageType EXTERNAL_MU is not supported by this Trent build")
	}
	if *t != "DIGEST" {
		return false, validation("messageType", "Member must satisfy enum value set: [RAW, DIGEST, EXTERNAL_MU]", *t)
	}
	if alg == "ML_DSA_SHAKE_256" {
		return false, kmsapi.Errorf(kmsapi.ValidationException, "ML_DSA_SHAKE_256 signs RAW or EXTERNAL_MU messages, not DIGEST")
	}
	if h := hsmcmd.AlgHash(hsmcmd.AlgCode(alg)); h != 0 && len(msg) != h.Size() {
		return false, kmsapi.Errorf(kmsapi.ValidationException, "Digest is invalid length for algorithm %s.", alg)
	}
	return true, nil
}

type generateDataKeyPairRequest struct {
	cryptoRequest
	KeyId       string     `json:"KeyId"`
	KeyPairSpec string     `json:"KeyPairSpec"`
	Recipient   *recipient `json:"Recipient"`
}

// generateDataKeyPair serves GenerateDataKeyPair (withPrivate) and
// GenerateDataKeyPairWithoutPlaintext: an HSM makes the pair and seals the
// private key under the symmetric KMS key, as Encrypt would.
func (s *Service) generateDataKeyPair(withPrivate bool) kmsapi.Handler {
	op := "GenerateDataKeyPair"
	if !withPrivate {
		op = "GenerateDataKeyPairWithoutPlaintext"
	}
	return typed(func(ctx context.Context, p kmsapi.Principal, req *generateDataKeyPairRequest) (*generateDataKeyPairResponse, error) {
		if err := checkGrantTokens(req.GrantTokens); err != nil {
			return nil, err
		}
		doc, recipientCond, err := s.checkRecipient(ctx, op, withPrivate, req.Recipient)
		if err != nil {
			return nil, err
		}
		code := hsmcmd.SpecCode(req.KeyPairSpec)
		switch {
		case req.KeyPairSpec == "SM2":
			return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "KeyPairSpec %s is not supported by this Trent build", req.KeyPairSpec)
		case code == 0 || strings.HasPrefix(req.KeyPairSpec, "HMAC_"):
			return nil, validation("keyPairSpec", "Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SM2]", req.KeyPairSpec)
		}
		k, alias, ec, err := s.contextKey(p, &req.cryptoRequest, req.KeyId)
		if err != nil {
			return nil, err
		}
		cond := merge(contextConditions(req.EncryptionContext, symmetricDefault), recipientCond)
		cond["kms:DataKeyPairSpec"] = []string{req.KeyPairSpec}
		if _, err := s.use(p, k, alias, keyUse{op: op, cond: fixedConditions(cond), dryRun: req.DryRun}); err != nil {
			return nil, err
		}
		if inStore(k) {
			return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s does not take a KMS key in a custom key store", op)
		}
		if err := symmetricOnly(k); err != nil {
			return nil, err
		}
		gdkp := hsmcmd.GenerateDataKeyPairRequest{Token: k.rec.Current(), Context: ec, Spec: code, WithPrivateKey: withPrivate}
		if doc != nil {
			rr, err := s.viaRecipient(ctx, op, doc, gdkp, nil)
			if err != nil {
				return nil, err
			}
			pub, blob, err := rr.DataKeyPair()
			if err != nil {
				return nil, internal(s, op, err)
			}
			return &generateDataKeyPairResponse{KeyId: k.rec.Key.ARN(), KeyPairSpec: req.KeyPairSpec, CiphertextForRecipient: rr.CiphertextForRecipient,
				PrivateKeyCiphertextBlob: blob, PublicKey: pub}, nil
		}
		out, err := call(ctx, s, gdkp, hsmcmd.ParseGenerateDataKeyPairResponse)
		if err != nil {
			return nil, internal(s, op, err)
		}
		if (len(out.PrivateKey) > 0) != withPrivate {
			return nil, internal(s, op, errors.New("kms: malformed data key pair answer"))
		}
		res := &generateDataKeyPairResponse{KeyId: k.rec.Key.ARN(), KeyPairSpec: req.KeyPairSpec,
			PrivateKeyCiphertextBlob: out.Blob, PublicKey: out.PublicKey}
		if withPrivate {
			res.PrivateKeyPlaintext = out.PrivateKey
		}
		return res, nil
	})
}

// macRequest is a GenerateMac or VerifyMac request (Mac only in
// VerifyMac).
type macRequest struct {
	KeyId        string   `json:"KeyId"`
	Message      []byte   `json:"Message"`
	Mac          []byte   `json:"Mac"`
	MacAlgorithm string   `json:"MacAlgorithm"`
	GrantTokens  []string `json:"GrantTokens"`
	DryRun       bool     `json:"DryRun"`
}

// macKey checks a GenerateMac (action kms:GenerateMac) or
// VerifyMac request and returns its key.
func (s *Service) macKey(p kmsapi.Principal, req *macRequest, action string) (*key, error) {
	verify := action == "kms:VerifyMac"
	if !verify && req.Mac != nil {
		return nil, kmsapi.Errorf(kmsapi.SerializationException, "unknown field Mac")
	}
	if err := checkGrantTokens(req.GrantTokens); err != nil {
		return nil, err
	}
	if err := checkMessage(req.Message); err != nil {
		return nil, err
	}
	if verify && (len(req.Mac) < 1 || len(req.Mac) > 6144) {
		return nil, validation("mac", "Member must have length between 1 and 6144", "…")
	}
	cond := map[string][]string{"kms:MacAlgorithm": {req.MacAlgorithm}}
	k, err := s.asymKey(p, req.KeyId, strings.TrimPrefix(action, "kms:"), "MacAlgorithm", req.MacAlgorithm, cond, req.DryRun)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// signRequest is a Sign or Verify request (Signature only in Verify).
type signRequest struct {
	KeyId            string   `json:"KeyId"`
	Message          []byte   `json:"Message"`
	MessageType      *string  `json:"MessageType"`
	Signature        []byte   `json:"Signature"`
	SigningAlgorithm string   `json:"SigningAlgorithm"`
	GrantTokens      []string `json:"GrantTokens"`
	DryRun           bool     `json:"DryRun"`
}

// signingKey checks a Sign (action kms:Sign) or Verify request
// and returns its key and whether the message is a digest.
func (s *Service) signingKey(p kmsapi.Principal, req *signRequest, action string) (*key, bool, error) {
	if action == "kms:Sign" && req.Signature != nil {
		return nil, false, kmsapi.Errorf(kmsapi.SerializationException, "unknown field Signature")
	}
	if err := checkGrantTokens(req.GrantTokens); err != nil {
		return nil, false, err
	}
	if err := checkMessage(req.Message); err != nil {
		return nil, false, err
	}
	if action == "kms:Verify" && (len(req.Signature) < 1 || len(req.Signature) > 6144) {
		return nil, false, validation("signature", "Member must have length between 1 and 6144", "…")
	}
	digest, err := messageType(req.MessageType, req.SigningAlgorithm, req.Message)
	if err != nil {
		return nil, false, err
	}
	cond := map[string][]string{"kms:SigningAlgorithm": {req.SigningAlgorithm}, "kms:MessageType": {msgTypeName(digest)}}
	k, err := s.asymKey(p, req.KeyId, strings.TrimPrefix(action, "kms:"), "SigningAlgorithm", req.SigningAlgorithm, cond, req.DryRun)
	return k, digest, err
}

func msgTypeName(digest bool) string {
	if digest {
		return "DIGEST"
	}
	return "RAW"
}

// verifySignature checks a signature with the key's public key, in the
// host: verification needs no secret.
func verifySignature(spec string, pubDER []byte, alg string, digest bool, msg, sig []byte) bool {
	if code := hsmcmd.SpecCode(spec); hsmcmd.MLDSAScheme(code) != nil {
		pub, err := hsmcmd.ParseMLDSAPublicKey(code, pubDER)
		return err == nil && !digest && hsmcmd.MLDSAScheme(code).Verify(pub, msg, sig, nil)
	}
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		return false
	}
	code := hsmcmd.AlgCode(alg)
	hf := hsmcmd.AlgHash(code)
	d := msg
	if !digest {
		hh := hf.New()
		hh.Write(msg)
		d = hh.Sum(nil)
	}
	switch pk := pub.(type) {
	case *rsa.PublicKey:
		if strings.HasPrefix(alg, "RSASSA_PSS_") {
			return rsa.VerifyPSS(pk, hf, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(pk, hf, d, sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pk, d, sig)
	}
	return false
}

// rsaEncrypt is Encrypt with an RSA key: RSAES-OAEP with the public key,
// in the host (KMS's ciphertext is the raw RSA ciphertext).
func rsaEncrypt(pubDER []byte, alg string, plaintext []byte) ([]byte, error) {
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		return nil, err
	}
	pk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("kms: not an RSA key")
	}
	var h hash.Hash = sha256.New()
	if alg == "RSAES_OAEP_SHA_1" {
		h = sha1.New()
	}
	if max := pk.Size() - 2*h.Size() - 2; len(plaintext) > max {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "Plaintext is too long for %s with this key: at most %d bytes", alg, max)
	}
	return rsa.EncryptOAEP(h, rand.Reader, pk, plaintext, nil)
}

type getPublicKeyRequest struct {
	KeyId       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens"`
}

func (s *Service) getPublicKey(ctx context.Context, p kmsapi.Principal, req *getPublicKeyRequest) (*getPublicKeyResponse, error) {
	if err := checkGrantTokens(req.GrantTokens); err != nil {
		return nil, err
	}
	k, err := s.useKey(p, req.KeyId, true, keyUse{op: "GetPublicKey"})
	if err != nil {
		return nil, err
	}
	if len(k.rec.Key.PublicKey) == 0 {
		return nil, kmsapi.Errorf(kmsapi.UnsupportedOperation, "%s is not an asymmetric key", k.rec.Key.ARN())
	}
	md := metadata(&k.rec.Key)
	return &getPublicKeyResponse{KeyId: md.Arn, PublicKey: k.rec.Key.PublicKey, KeySpec: md.KeySpec,
		CustomerMasterKeySpec: md.KeySpec, KeyUsage: md.KeyUsage, EncryptionAlgorithms: md.EncryptionAlgorithms,
		SigningAlgorithms: md.SigningAlgorithms, KeyAgreementAlgorithms: md.KeyAgreementAlgorithms}, nil
}

func (s *Service) sign(ctx context.Context, p kmsapi.Principal, req *signRequest) (*signResponse, error) {
	k, digest, err := s.signingKey(p, req, "kms:Sign")
	if err != nil {
		return nil, err
	}
	sig, err := call(ctx, s, hsmcmd.SignRequest{Token: k.rec.Current(), Alg: hsmcmd.AlgCode(req.SigningAlgorithm), Digest: digest, Message: req.Message},
		hsmcmd.ParseSignResponse)
	if err = s.hsmAnswer("Sign", err, nil); err != nil {
		return nil, err
	}
	return &signResponse{KeyId: k.rec.Key.ARN(), Signature: sig.Signature, SigningAlgorithm: req.SigningAlgorithm}, nil
}

func (s *Service) verify(ctx context.Context, p kmsapi.Principal, req *signRequest) (*verifyResponse, error) {
	k, digest, err := s.signingKey(p, req, "kms:Verify")
	if err != nil {
		return nil, err
	}
	valid := false
	if k.rec.Key.KeySpec == "ECC_SECG_P256K1" {
		// Go cannot verify on secp256k1: an HSM's token does.
		out, err := call(ctx, s, hsmcmd.VerifyRequest{PublicKey: k.rec.Key.PublicKey, Alg: hsmcmd.AlgCode(req.SigningAlgorithm), Digest: digest,
			Message: req.Message, Signature: req.Signature}, hsmcmd.ParseVerifyResponse)
		if err = s.hsmAnswer("Verify", err, nil); err != nil {
			return nil, err
		}
		valid = out.Valid
	} else {
		valid = verifySignature(k.rec.Key.KeySpec, k.rec.Key.PublicKey, req.SigningAlgorithm, digest, req.Message, req.Signature)
	}
	if !valid {
		return nil, kmsapi.Errorf("KMSInvalidSignatureException", "The signature is not valid for this message, key and algorithm.")
	}
	return &verifyResponse{KeyId: k.rec.Key.ARN(), SignatureValid: true, SigningAlgorithm: req.SigningAlgorithm}, nil
}

func (s *Service) generateMac(ctx context.Context, p kmsapi.Principal, req *macRequest) (*generateMacResponse, error) {
	k, err := s.macKey(p, req, "kms:GenerateMac")
	if err != nil {
		return nil, err
	}
	mac, err := call(ctx, s, hsmcmd.GenerateMacRequest{Token: k.rec.Current(), Alg: hsmcmd.AlgCode(req.MacAlgorithm), Message: req.Message},
		hsmcmd.ParseGenerateMacResponse)
	if err = s.hsmAnswer("GenerateMac", err, nil); err != nil {
		return nil, err
	}
	return &generateMacResponse{KeyId: k.rec.Key.ARN(), Mac: mac.Mac, MacAlgorithm: req.MacAlgorithm}, nil
}

func (s *Service) verifyMac(ctx context.Context, p kmsapi.Principal, req *macRequest) (*verifyMacResponse, error) {
	k, err := s.macKey(p, req, "kms:VerifyMac")
	if err != nil {
		return nil, err
	}
	ok, err := call(ctx, s, hsmcmd.VerifyMacRequest{Token: k.rec.Current(), Alg: hsmcmd.AlgCode(req.MacAlgorithm), Message: req.Message, Mac: req.Mac},
		hsmcmd.ParseVerifyMacResponse)
	if err = s.hsmAnswer("VerifyMac", err, nil); err != nil {
		return nil, err
	}
	if !ok.Valid {
		return nil, kmsapi.Errorf("KMSInvalidMacException", "The MAC is not valid for this message, key and algorithm.")
	}
	return &verifyMacResponse{KeyId: k.rec.Key.ARN(), MacValid: true, MacAlgorithm: req.MacAlgorithm}, nil
}

type deriveSharedSecretRequest struct {
	KeyId                 string     `json:"KeyId"`
	KeyAgreementAlgorithm string     `json:"KeyAgreementAlgorithm"`
	PublicKey             []byte     `json:"PublicKey"`
	GrantTokens           []string   `json:"GrantTokens"`
	DryRun                bool       `json:"DryRun"`
	Recipient             *recipient `json:"Recipient"`
}

func (s *Service) deriveSharedSecret(ctx context.Context, p kmsapi.Principal, req *deriveSharedSecretRequest) (*deriveSharedSecretResponse, error) {
	if err := checkGrantTokens(req.GrantTokens); err != nil {
		return nil, err
	}
	doc, cond, err := s.checkRecipient(ctx, "DeriveSharedSecret", true, req.Recipient)
	if err != nil {
		return nil, err
	}
	if len(req.PublicKey) < 1 || len(req.PublicKey) > 8192 {
		return nil, validation("publicKey", "Member must have length between 1 and 8192", "…")
	}
	cond = merge(cond, map[string][]string{"kms:KeyAgreementAlgorithm": {req.KeyAgreementAlgorithm}})
	k, err := s.asymKey(p, req.KeyId, "DeriveSharedSecret", "KeyAgreementAlgorithm", req.KeyAgreementAlgorithm, cond, req.DryRun)
	if err != nil {
		return nil, err
	}
	if _, err := x509.ParsePKIXPublicKey(req.PublicKey); err != nil {
		return nil, kmsapi.Errorf(kmsapi.ValidationException, "PublicKey is not a DER-encoded SubjectPublicKeyInfo")
	}
	dss := hsmcmd.DeriveSharedSecretRequest{Token: k.rec.Current(), PeerPublicKey: req.PublicKey}
	if doc != nil {
		rr, err := s.viaRecipient(ctx, "DeriveSharedSecret", doc, dss,
			kmsapi.Errorf(kmsapi.ValidationException, "The public key is not on the curve of %s.", k.rec.Key.KeySpec))
		if err != nil {
			return nil, err
		}
		return &deriveSharedSecretResponse{KeyId: k.rec.Key.ARN(), CiphertextForRecipient: rr.CiphertextForRecipient, KeyAgreementAlgorithm: "ECDH", KeyOrigin: "AWS_KMS"}, nil
	}
	z, err := call(ctx, s, dss, hsmcmd.ParseDeriveSharedSecretResponse)
	if err = s.hsmAnswer("DeriveSharedSecret", err,
		kmsapi.Errorf(kmsapi.ValidationException, "The public key is not on the curve of %s.", k.rec.Key.KeySpec)); err != nil {
		return nil, err
	}
	return &deriveSharedSecretResponse{KeyId: k.rec.Key.ARN(), SharedSecret: z.Secret, KeyAgreementAlgorithm: "ECDH", KeyOrigin: "AWS_KMS"}, nil
}
