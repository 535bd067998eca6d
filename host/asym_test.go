package host_test

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsmcmd"
)

// Asymmetric and HMAC keys through the SDK: signatures verify with Go's
// crypto outside Trent, RSA ciphertexts made offline decrypt in Trent,
// shared secrets equal the peer's ECDH, MACs are HMACs; wrong usages are
// refused as KMS refuses them.
func TestAsymmetricKeysThroughTheSDK(t *testing.T) {
	k := newKMSCluster(t, 1, 2)
	ctx := context.Background()
	cl := k.alice
	msg := []byte("message to sign")
	digest := sha256.Sum256(msg)

	// ECC signing keys.
	for spec, alg := range map[types.KeySpec]types.SigningAlgorithmSpec{
		types.KeySpecEccNistP256: types.SigningAlgorithmSpecEcdsaSha256,
		types.KeySpecEccNistP384: types.SigningAlgorithmSpecEcdsaSha384,
		types.KeySpecEccNistP521: types.SigningAlgorithmSpecEcdsaSha512,
	} {
		md := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify})
		assert.Equal(t, []types.SigningAlgorithmSpec{alg}, md.SigningAlgorithms)
		assert.Empty(t, md.EncryptionAlgorithms)
		pk, err := cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
		require.NoError(t, err)
		pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
		require.NoError(t, err)
		sig, err := cl.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: alg})
		require.NoError(t, err)
		var h crypto.Hash = map[types.SigningAlgorithmSpec]crypto.Hash{types.SigningAlgorithmSpecEcdsaSha256: crypto.SHA256,
			types.SigningAlgorithmSpecEcdsaSha384: crypto.SHA384, types.SigningAlgorithmSpecEcdsaSha512: crypto.SHA512}[alg]
		hh := h.New()
		hh.Write(msg)
		require.True(t, ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), hh.Sum(nil), sig.Signature), "verifies outside Trent")
		v, err := cl.Verify(ctx, &kms.VerifyInput{KeyId: md.KeyId, Message: msg, Signature: sig.Signature, SigningAlgorithm: alg})
		require.NoError(t, err)
		assert.True(t, v.SignatureValid)
		_, err = cl.Verify(ctx, &kms.VerifyInput{KeyId: md.KeyId, Message: []byte("other"), Signature: sig.Signature, SigningAlgorithm: alg})
		assert.Equal(t, "KMSInvalidSignatureException", apiCode(t, err))
		_, err = cl.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
		assert.Equal(t, "InvalidKeyUsageException", apiCode(t, err))
		_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
		assert.Equal(t, "InvalidKeyUsageException", apiCode(t, err))
		_, err = cl.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: md.KeyId})
		assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))
	}
	_, err := cl.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	_, err = cl.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256})
	assert.Equal(t, "ValidationException", apiCode(t, err), "ECC keys need a KeyUsage")
	_, err = cl.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify})
	assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))

	// RSA signing, with RAW and DIGEST messages.
	rsaSign := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	pk, err := cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: rsaSign.KeyId})
	require.NoError(t, err)
	rpub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
	require.NoError(t, err)
	for _, alg := range []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecRsassaPssSha256, types.SigningAlgorithmSpecRsassaPkcs1V15Sha256} {
		for _, mt := range []types.MessageType{types.MessageTypeRaw, types.MessageTypeDigest} {
			in := msg
			if mt == types.MessageTypeDigest {
				in = digest[:]
			}
			sig, err := cl.Sign(ctx, &kms.SignInput{KeyId: rsaSign.KeyId, Message: in, MessageType: mt, SigningAlgorithm: alg})
			require.NoError(t, err)
			if alg == types.SigningAlgorithmSpecRsassaPssSha256 {
				require.NoError(t, rsa.VerifyPSS(rpub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}))
			} else {
				require.NoError(t, rsa.VerifyPKCS1v15(rpub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig.Signature))
			}
		}
	}
	_, err = cl.Sign(ctx, &kms.SignInput{KeyId: rsaSign.KeyId, Message: msg, MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	assert.Equal(t, "ValidationException", apiCode(t, err), "a digest of the wrong length")

	// RSA encryption: a ciphertext made offline with the public key decrypts in Trent.
	rsaEnc := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa3072, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	assert.Equal(t, []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha1, types.EncryptionAlgorithmSpecRsaesOaepSha256}, rsaEnc.EncryptionAlgorithms)
	pk, err = cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: rsaEnc.KeyId})
	require.NoError(t, err)
	epub, _ := x509.ParsePKIXPublicKey(pk.PublicKey)
	offline, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, epub.(*rsa.PublicKey), []byte("made offline"), nil)
	require.NoError(t, err)
	dec, err := cl.Decrypt(ctx, &kms.DecryptInput{KeyId: rsaEnc.KeyId, CiphertextBlob: offline, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	require.NoError(t, err)
	assert.Equal(t, "made offline", string(dec.Plaintext))
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{KeyId: rsaEnc.KeyId, CiphertextBlob: offline, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
	assert.Equal(t, "InvalidCiphertextException", apiCode(t, err))
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: offline})
	assert.Equal(t, "InvalidCiphertextException", apiCode(t, err), "an RSA ciphertext needs its KeyId")
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: rsaEnc.KeyId, Plaintext: []byte("via trent"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
	require.NoError(t, err)
	dec, err = cl.Decrypt(ctx, &kms.DecryptInput{KeyId: rsaEnc.KeyId, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
	require.NoError(t, err)
	assert.Equal(t, "via trent", string(dec.Plaintext))
	_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: rsaEnc.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256,
		EncryptionContext: map[string]string{"a": "b"}})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	_, err = cl.Sign(ctx, &kms.SignInput{KeyId: rsaEnc.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	assert.Equal(t, "InvalidKeyUsageException", apiCode(t, err))
	_, err = cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: rsaEnc.KeyId, KeySpec: types.DataKeySpecAes256})
	assert.Equal(t, "InvalidKeyUsageException", apiCode(t, err))

	// Key agreement.
	agree := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP384, KeyUsage: types.KeyUsageTypeKeyAgreement})
	assert.Equal(t, []types.KeyAgreementAlgorithmSpec{types.KeyAgreementAlgorithmSpecEcdh}, agree.KeyAgreementAlgorithms)
	peer, err := ecdh.P384().GenerateKey(rand.Reader)
	require.NoError(t, err)
	peerDER, _ := x509.MarshalPKIXPublicKey(peer.PublicKey())
	ss, err := cl.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agree.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
	require.NoError(t, err)
	pk, err = cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: agree.KeyId})
	require.NoError(t, err)
	apub, _ := x509.ParsePKIXPublicKey(pk.PublicKey)
	mine, _ := apub.(*ecdsa.PublicKey).ECDH()
	want, err := peer.ECDH(mine)
	require.NoError(t, err)
	assert.Equal(t, want, ss.SharedSecret, "the peer computes the same secret")
	wrongCurve, _ := ecdh.P256().GenerateKey(rand.Reader)
	wrongDER, _ := x509.MarshalPKIXPublicKey(wrongCurve.PublicKey())
	_, err = cl.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agree.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: wrongDER})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	ecSign := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP384, KeyUsage: types.KeyUsageTypeSignVerify})
	_, err = cl.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: ecSign.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
	assert.Equal(t, "InvalidKeyUsageException", apiCode(t, err))

	// HMAC keys.
	for spec, alg := range map[types.KeySpec]types.MacAlgorithmSpec{types.KeySpecHmac256: types.MacAlgorithmSpecHmacSha256, types.KeySpecHmac512: types.MacAlgorithmSpecHmacSha512} {
		md := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
		assert.Equal(t, []types.MacAlgorithmSpec{alg}, md.MacAlgorithms)
		mac, err := cl.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: md.KeyId, Message: msg, MacAlgorithm: alg})
		require.NoError(t, err)
		assert.Len(t, mac.Mac, map[types.MacAlgorithmSpec]int{types.MacAlgorithmSpecHmacSha256: sha256.Size, types.MacAlgorithmSpecHmacSha512: sha512.Size}[alg])
		v, err := cl.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: md.KeyId, Message: msg, Mac: mac.Mac, MacAlgorithm: alg})
		require.NoError(t, err)
		assert.True(t, v.MacValid)
		bad := append([]byte(nil), mac.Mac...)
		bad[0] ^= 1
		_, err = cl.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: md.KeyId, Message: msg, Mac: bad, MacAlgorithm: alg})
		assert.Equal(t, "KMSInvalidMacException", apiCode(t, err))
		_, err = cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
		assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))
	}
	_, err = cl.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: ecSign.KeyId, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	assert.Equal(t, "InvalidKeyUsageException", apiCode(t, err))

	// Policies see the algorithm condition keys.
	doc := policyDoc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+acctA+`:user/alice"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+acctA+`:user/bob"},"Action":"kms:Sign","Resource":"*",
		  "Condition":{"StringEquals":{"kms:SigningAlgorithm":"RSASSA_PSS_SHA_256","kms:MessageType":"DIGEST"}}}`)
	limited := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify, Policy: aws.String(doc)})
	_, err = k.bob.Sign(ctx, &kms.SignInput{KeyId: limited.KeyId, Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	require.NoError(t, err)
	_, err = k.bob.Sign(ctx, &kms.SignInput{KeyId: limited.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "RAW is not allowed")
	_, err = k.bob.Sign(ctx, &kms.SignInput{KeyId: limited.KeyId, Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPkcs1V15Sha256})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "another algorithm")
}

// GenerateDataKeyPair: the private key matches the public key, and its
// ciphertext decrypts under the symmetric key and context to the same key.
func TestGenerateDataKeyPair(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	cl := k.alice
	md := k.createKey(t, cl, nil)
	ec := map[string]string{"purpose": "pairs"}
	for _, spec := range []types.DataKeyPairSpec{types.DataKeyPairSpecRsa2048, types.DataKeyPairSpecEccNistP256, types.DataKeyPairSpecEccNistP521} {
		out, err := cl.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: spec, EncryptionContext: ec})
		require.NoError(t, err, spec)
		assert.Equal(t, spec, out.KeyPairSpec)
		priv, err := x509.ParsePKCS8PrivateKey(out.PrivateKeyPlaintext)
		require.NoError(t, err)
		pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
		require.NoError(t, err)
		require.True(t, priv.(interface{ Public() crypto.PublicKey }).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub),
			"the private key matches the public key")
		dec, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec})
		require.NoError(t, err)
		assert.Equal(t, out.PrivateKeyPlaintext, dec.Plaintext)
	}
	wp, err := cl.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: md.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP384})
	require.NoError(t, err)
	dec, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wp.PrivateKeyCiphertextBlob})
	require.NoError(t, err)
	priv, err := x509.ParsePKCS8PrivateKey(dec.Plaintext)
	require.NoError(t, err)
	pub, _ := x509.ParsePKIXPublicKey(wp.PublicKey)
	assert.True(t, priv.(*ecdsa.PrivateKey).PublicKey.Equal(pub))
	k1, err := cl.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: types.DataKeyPairSpecEccSecgP256k1})
	require.NoError(t, err)
	_, point, err := hsmcmd.ParseSecp256k1PKCS8(k1.PrivateKeyPlaintext)
	require.NoError(t, err)
	pubPoint, err := hsmcmd.ParseSecp256k1PublicKey(k1.PublicKey)
	require.NoError(t, err)
	assert.Equal(t, pubPoint, point)
	_, err = cl.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: types.DataKeyPairSpecSm2})
	assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))
	_, err = cl.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: "RSA_1024"})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	rsaKey := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	_, err = cl.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: rsaKey.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	assert.Equal(t, "InvalidKeyUsageException", apiCode(t, err))
}

// ML-DSA keys through the SDK; signatures verify with circl outside Trent.
func TestMLDSAThroughTheSDK(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	cl := k.alice
	msg := []byte("post-quantum")
	for _, spec := range []types.KeySpec{types.KeySpecMlDsa44, types.KeySpecMlDsa65, types.KeySpecMlDsa87} {
		md := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify})
		assert.Equal(t, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecMlDsaShake256}, md.SigningAlgorithms)
		pk, err := cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
		require.NoError(t, err)
		code := hsmcmd.SpecCode(string(spec))
		pub, err := hsmcmd.ParseMLDSAPublicKey(code, pk.PublicKey)
		require.NoError(t, err)
		sig, err := cl.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
		require.NoError(t, err)
		require.True(t, hsmcmd.MLDSAScheme(code).Verify(pub, msg, sig.Signature, nil), "verifies with circl")
		v, err := cl.Verify(ctx, &kms.VerifyInput{KeyId: md.KeyId, Message: msg, Signature: sig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
		require.NoError(t, err)
		assert.True(t, v.SignatureValid)
		_, err = cl.Verify(ctx, &kms.VerifyInput{KeyId: md.KeyId, Message: []byte("x"), Signature: sig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
		assert.Equal(t, "KMSInvalidSignatureException", apiCode(t, err))
		_, err = cl.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: msg, MessageType: types.MessageTypeExternalMu, SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
		assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))
		_, err = cl.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: make([]byte, 32), MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256})
		assert.Equal(t, "ValidationException", apiCode(t, err))
	}
}

// secp256k1 keys: signed and verified by the HSMs' tokens (Go has no
// secp256k1); the node tests check the signatures with their own
// arithmetic.
func TestSecp256k1ThroughTheSDK(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	cl := k.alice
	md := k.createKey(t, cl, &kms.CreateKeyInput{KeySpec: types.KeySpecEccSecgP256k1, KeyUsage: types.KeyUsageTypeSignVerify})
	assert.Equal(t, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}, md.SigningAlgorithms)
	pk, err := cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
	require.NoError(t, err)
	_, err = hsmcmd.ParseSecp256k1PublicKey(pk.PublicKey)
	require.NoError(t, err)
	msg := []byte("k1 through the API")
	sig, err := cl.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	require.NoError(t, err)
	v, err := cl.Verify(ctx, &kms.VerifyInput{KeyId: md.KeyId, Message: msg, Signature: sig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	require.NoError(t, err)
	assert.True(t, v.SignatureValid)
	_, err = cl.Verify(ctx, &kms.VerifyInput{KeyId: md.KeyId, Message: []byte("tampered"), Signature: sig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	assert.Equal(t, "KMSInvalidSignatureException", apiCode(t, err))
	_, err = cl.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccSecgP256k1, KeyUsage: types.KeyUsageTypeKeyAgreement})
	assert.Equal(t, "ValidationException", apiCode(t, err), "key agreement is for the NIST curves")
}
