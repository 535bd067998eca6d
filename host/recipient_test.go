package host_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/nitro"
	"github.com/trentkms/trent/quorum"
)

// Recipient through the SDK: the answer holds no plaintext, only a
// CiphertextForRecipient that the enclave's key alone opens; documents
// from roots the domain does not trust are refused; the policy sees the
// PCRs.
func TestRecipientOperations(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	sim := trustSimulatedNSM(t, k)

	enclave, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	spki, err := x509.MarshalPKIXPublicKey(&enclave.PublicKey)
	require.NoError(t, err)
	pcr0 := bytes.Repeat([]byte{0xab}, 48)
	attest := func(ca *nitro.SimCA, pub []byte) []byte {
		doc, err := ca.Attest(nitro.AttestRequest{PCRs: map[int][]byte{0: pcr0, 1: make([]byte, 48)}, PublicKey: pub, Time: time.Now()})
		require.NoError(t, err)
		return doc
	}
	doc := attest(sim, spki)
	rcpt := &types.RecipientInfo{AttestationDocument: doc, KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}
	open := func(cms []byte) []byte {
		t.Helper()
		e, err := nitro.ParseEnvelope(cms)
		require.NoError(t, err)
		require.Equal(t, nitro.SubjectKeyID(spki), e.SubjectKeyID)
		pt, err := e.Open(enclave)
		require.NoError(t, err)
		return pt
	}

	md := k.createKey(t, k.alice, nil)
	ec := map[string]string{"app": "enclave"}
	dk, err := k.alice.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256, EncryptionContext: ec, Recipient: rcpt})
	require.NoError(t, err)
	assert.Nil(t, dk.Plaintext, "no plaintext when a Recipient is given")
	require.NotEmpty(t, dk.CiphertextBlob)
	key := open(dk.CiphertextForRecipient)
	require.Len(t, key, 32)
	dec, err := k.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, dec.Plaintext, key, "the enclave's data key is the blob's")

	enc, err := k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("for the enclave"), EncryptionContext: ec})
	require.NoError(t, err)
	rd, err := k.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, Recipient: rcpt})
	require.NoError(t, err)
	assert.Nil(t, rd.Plaintext)
	assert.Equal(t, "for the enclave", string(open(rd.CiphertextForRecipient)))

	rr, err := k.alice.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(24), Recipient: rcpt})
	require.NoError(t, err)
	assert.Nil(t, rr.Plaintext)
	assert.Len(t, open(rr.CiphertextForRecipient), 24)

	// Refusals.
	untrusted, err := nitro.NewSimCA(nil, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	ec256, _ := x509.MarshalPKIXPublicKey(&mustECDSA(t).PublicKey)
	for name, r := range map[string]*types.RecipientInfo{
		"untrusted root":      {AttestationDocument: attest(untrusted, spki), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256},
		"no public key":       {AttestationDocument: attest(sim, nil), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256},
		"not an RSA key":      {AttestationDocument: attest(sim, ec256), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256},
		"not a document":      {AttestationDocument: []byte("nonsense"), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256},
		"another algorithm":   {AttestationDocument: doc, KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_1"},
		"a changed signature": {AttestationDocument: append(bytes.Clone(doc[:len(doc)-1]), doc[len(doc)-1]^1), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256},
		"a byte after it":     {AttestationDocument: append(bytes.Clone(doc), 0), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256},
		"oversized":           {AttestationDocument: make([]byte, nitro.MaxDocument+1), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256},
		"expired leaf": {AttestationDocument: func() []byte {
			d, err := sim.Attest(nitro.AttestRequest{PCRs: map[int][]byte{0: pcr0}, PublicKey: spki, Time: time.Now().Add(-4 * time.Hour)})
			require.NoError(t, err)
			return d
		}(), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256},
	} {
		_, err := k.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, Recipient: r})
		assert.Equal(t, "ValidationException", apiCode(t, err), name)
	}
	_, err = k.alice.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)

	// The policy sees the document's PCRs.
	doc2 := policyDoc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+acctA+`:user/alice"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+acctA+`:user/bob"},"Action":"kms:Decrypt","Resource":"*",
		  "Condition":{"StringEqualsIgnoreCase":{"kms:RecipientAttestation:ImageSha384":"`+hex.EncodeToString(pcr0)+`"}}}`)
	locked := k.createKey(t, k.alice, &kms.CreateKeyInput{Policy: aws.String(doc2)})
	lenc, err := k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: locked.KeyId, Plaintext: []byte("pcr-bound")})
	require.NoError(t, err)
	out, err := k.bob.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: lenc.CiphertextBlob, Recipient: rcpt})
	require.NoError(t, err)
	assert.Equal(t, "pcr-bound", string(open(out.CiphertextForRecipient)))
	_, err = k.bob.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: lenc.CiphertextBlob})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "without the attested image, bob may not decrypt")
}

func mustECDSA(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// Recipient on GenerateDataKeyPair and DeriveSharedSecret: the private key
// and the shared secret reach only the enclave.
func TestRecipientKeyPairAndSharedSecret(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	sim := trustSimulatedNSM(t, k)
	enclave, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	spki, _ := x509.MarshalPKIXPublicKey(&enclave.PublicKey)
	doc, err := sim.Attest(nitro.AttestRequest{PCRs: map[int][]byte{0: make([]byte, 48)}, PublicKey: spki, Time: time.Now()})
	require.NoError(t, err)
	rcpt := &types.RecipientInfo{AttestationDocument: doc, KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}
	open := func(cms []byte) []byte {
		e, err := nitro.ParseEnvelope(cms)
		require.NoError(t, err)
		pt, err := e.Open(enclave)
		require.NoError(t, err)
		return pt
	}

	sym := k.createKey(t, k.alice, nil)
	pair, err := k.alice.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP256, Recipient: rcpt})
	require.NoError(t, err)
	assert.Nil(t, pair.PrivateKeyPlaintext)
	priv, err := x509.ParsePKCS8PrivateKey(open(pair.CiphertextForRecipient))
	require.NoError(t, err)
	pub, err := x509.ParsePKIXPublicKey(pair.PublicKey)
	require.NoError(t, err)
	assert.True(t, priv.(*ecdsa.PrivateKey).PublicKey.Equal(pub), "the enclave's private key matches the public key")
	dec, err := k.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: pair.PrivateKeyCiphertextBlob})
	require.NoError(t, err)
	priv2, err := x509.ParsePKCS8PrivateKey(dec.Plaintext)
	require.NoError(t, err)
	assert.True(t, priv2.(*ecdsa.PrivateKey).Equal(priv))

	agree := k.createKey(t, k.alice, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement})
	peer := mustECDSA(t)
	peerDER, _ := x509.MarshalPKIXPublicKey(&peer.PublicKey)
	ss, err := k.alice.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agree.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER, Recipient: rcpt})
	require.NoError(t, err)
	assert.Nil(t, ss.SharedSecret)
	plain, err := k.alice.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agree.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
	require.NoError(t, err)
	assert.Equal(t, plain.SharedSecret, open(ss.CiphertextForRecipient))
}

// trustSimulatedNSM makes a simulated NSM and has the domain trust its
// root (SetTrustedAttestationRoots, signed by alice and bob), waiting
// until the HSM holds that state.
func trustSimulatedNSM(t *testing.T, k *kmsCluster) *nitro.SimCA {
	t.Helper()
	ctx := context.Background()
	h := k.hosts[0]
	waitLeader(t, h)
	sim, err := nitro.NewSimCA(nil, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	params, err := domain.ParamsRoots([][]byte{sim.Root.Raw})
	require.NoError(t, err)
	st, _ := h.FSM().State()
	_, err = h.Submit(ctx, signed(t, "prod", st.Version, quorum.SetTrustedAttestationRoots, params, k.testCluster.alice, k.testCluster.bob))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		vs := h.HSMVersions(ctx)
		st, _ := h.FSM().State()
		return len(vs) == 1 && vs[0] == st.Version
	}, 10*time.Second, 10*time.Millisecond)
	return sim
}
