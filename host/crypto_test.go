package host_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/host"
)

// The key hierarchy through the SDK: a ciphertext opens only under its key
// and encryption context; ReEncrypt, data keys, key states, rotation.
func TestCryptographicOperations(t *testing.T) {
	k := newKMSCluster(t, 1, 2)
	ctx := context.Background()
	cl := k.alice
	a := k.createKey(t, cl, nil)
	b := k.createKey(t, cl, nil)
	_, err := cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/a"), TargetKeyId: a.KeyId})
	require.NoError(t, err)

	ec := map[string]string{"tenant": "acme", "purpose": "test"}
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/a"), Plaintext: []byte("hello"), EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, *a.Arn, *enc.KeyId)
	assert.Equal(t, types.EncryptionAlgorithmSpecSymmetricDefault, enc.EncryptionAlgorithm)
	dec, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, "hello", string(dec.Plaintext))
	assert.Equal(t, *a.Arn, *dec.KeyId)
	again, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: a.KeyId, Plaintext: []byte("hello"), EncryptionContext: ec})
	require.NoError(t, err)
	assert.NotEqual(t, enc.CiphertextBlob, again.CiphertextBlob, "fresh nonce and IV each time")

	// Another context (missing, changed, extra pair), another key.
	for _, other := range []map[string]string{nil, {"tenant": "acme"}, {"tenant": "acme", "purpose": "Test"},
		{"tenant": "acme", "purpose": "test", "x": ""}} {
		_, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: other})
		assert.Equal(t, "InvalidCiphertextException", apiCode(t, err), "%v", other)
	}
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: b.KeyId})
	assert.Equal(t, "IncorrectKeyException", apiCode(t, err))
	dec, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String("alias/a")})
	require.NoError(t, err, "the right key named by alias")
	assert.Equal(t, "hello", string(dec.Plaintext))
	// Every header byte, then a sample of the ciphertext bytes.
	for i := 0; i < len(enc.CiphertextBlob); i = next(i) {
		bad := bytes.Clone(enc.CiphertextBlob)
		bad[i] ^= 0x04
		_, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: bad, EncryptionContext: ec})
		require.Error(t, err, "byte %d", i)
		code := apiCode(t, err)
		assert.Equal(t, "InvalidCiphertextException", code, "byte %d", i)
	}
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob[:len(enc.CiphertextBlob)-1], EncryptionContext: ec})
	assert.Equal(t, "InvalidCiphertextException", apiCode(t, err))

	// Contexts whose naive concatenations collide are different contexts.
	c1, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: a.KeyId, Plaintext: []byte("x"), EncryptionContext: map[string]string{"a": "bc"}})
	require.NoError(t, err)
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: c1.CiphertextBlob, EncryptionContext: map[string]string{"ab": "c"}})
	assert.Equal(t, "InvalidCiphertextException", apiCode(t, err))
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: c1.CiphertextBlob, EncryptionContext: map[string]string{"a": "b", "c": ""}})
	assert.Equal(t, "InvalidCiphertextException", apiCode(t, err))

	// ReEncrypt to key b under a new context.
	ec2 := map[string]string{"moved": "yes"}
	re, err := cl.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec,
		DestinationKeyId: b.KeyId, DestinationEncryptionContext: ec2})
	require.NoError(t, err)
	assert.Equal(t, *a.Arn, *re.SourceKeyId)
	assert.Equal(t, *b.Arn, *re.KeyId)
	dec, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: ec2})
	require.NoError(t, err)
	assert.Equal(t, "hello", string(dec.Plaintext))
	_, err = cl.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: b.KeyId})
	assert.Equal(t, "InvalidCiphertextException", apiCode(t, err), "ReEncrypt checks the source context")
	_, err = cl.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec, SourceKeyId: b.KeyId, DestinationKeyId: b.KeyId})
	assert.Equal(t, "IncorrectKeyException", apiCode(t, err))

	// Data keys.
	dk, err := cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: a.KeyId, KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
	require.NoError(t, err)
	require.Len(t, dk.Plaintext, 32)
	dec, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, dk.Plaintext, dec.Plaintext)
	dk16, err := cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: a.KeyId, NumberOfBytes: aws.Int32(16)})
	require.NoError(t, err)
	assert.Len(t, dk16.Plaintext, 16)
	wp, err := cl.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: a.KeyId, KeySpec: types.DataKeySpecAes128})
	require.NoError(t, err)
	dec, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wp.CiphertextBlob})
	require.NoError(t, err)
	assert.Len(t, dec.Plaintext, 16)
	_, err = cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: a.KeyId})
	assert.Equal(t, "ValidationException", apiCode(t, err), "neither KeySpec nor NumberOfBytes")
	_, err = cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: a.KeyId, KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
	assert.Equal(t, "ValidationException", apiCode(t, err), "both")
	_, err = cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: a.KeyId, NumberOfBytes: aws.Int32(1025)})
	assert.Equal(t, "ValidationException", apiCode(t, err))

	// Field constraints and algorithms.
	_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: a.KeyId, Plaintext: make([]byte, 4097)})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: a.KeyId, Plaintext: make([]byte, 4096)})
	require.NoError(t, err)
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: make([]byte, 6145)})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: a.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	assert.Equal(t, "InvalidKeyUsageException", apiCode(t, err))
	_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: a.KeyId, Plaintext: []byte("x"), DryRun: aws.Bool(true)})
	assert.Equal(t, "DryRunOperationException", apiCode(t, err))
	_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/none"), Plaintext: []byte("x")})
	assert.Equal(t, "NotFoundException", apiCode(t, err))

	// Rotation: new ciphertexts use the new version; old ones still open.
	_, err = cl.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: a.KeyId})
	require.NoError(t, err)
	after, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: a.KeyId, Plaintext: []byte("new"), EncryptionContext: ec})
	require.NoError(t, err)
	assert.NotEqual(t, enc.CiphertextBlob[7+36:7+36+16], after.CiphertextBlob[7+36:7+36+16], "another HBK ID")
	for _, ct := range [][]byte{enc.CiphertextBlob, after.CiphertextBlob} {
		_, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ec})
		require.NoError(t, err)
	}

	// Disabled and pending-deletion keys.
	_, err = cl.DisableKey(ctx, &kms.DisableKeyInput{KeyId: a.KeyId})
	require.NoError(t, err)
	_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: a.KeyId, Plaintext: []byte("x")})
	assert.Equal(t, "DisabledException", apiCode(t, err))
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	assert.Equal(t, "DisabledException", apiCode(t, err))
	_, err = cl.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: re.CiphertextBlob, SourceEncryptionContext: ec2, DestinationKeyId: a.KeyId})
	assert.Equal(t, "DisabledException", apiCode(t, err), "a disabled destination")
	_, err = cl.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: a.KeyId})
	require.NoError(t, err)
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
	_, err = cl.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: a.KeyId, KeySpec: types.DataKeySpecAes256})
	assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
}

func next(i int) int {
	if i < 7+36+16+32+12 {
		return i + 1
	}
	return i + 3
}

// Key policies decide at the API: principals, explicit deny, NotAction,
// and condition operators on the encryption context.
func TestKeyPoliciesAtTheAPI(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	admin := `{"Sid":"admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:user/alice"},"Action":"kms:*","Resource":"*"}`
	doc := policyDoc(admin,
		// bob may encrypt and decrypt only with tenant=acme and a purpose key present.
		`{"Sid":"use","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+acctA+`:user/bob"},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*",
		  "Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"acme"},"Null":{"kms:EncryptionContext:purpose":"false"}}}`,
		// eve, from another account, may only describe, and only keys tagged... (no condition).
		`{"Sid":"eve","Effect":"Allow","Principal":{"AWS":"`+acctB+`"},"Action":"kms:Describe*","Resource":"*"}`,
		// nobody but alice may do anything but use the key: a Deny with NotAction and NotPrincipal.
		`{"Sid":"guard","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::`+acctA+`:user/alice"},"NotAction":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*","kms:Describe*"],"Resource":"*"}`,
		// Explicitly deny GenerateDataKeyWithoutPlaintext to everyone.
		`{"Sid":"no-wp","Effect":"Deny","Principal":"*","Action":"kms:GenerateDataKeyWithoutPlaintext","Resource":"*"}`,
		// Decrypt only for contexts whose keys are all in the allowed set.
		`{"Sid":"keys","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*",
		  "Condition":{"ForAnyValue:StringNotLike":{"kms:EncryptionContextKeys":["tenant","purpose","trace-*"]}}}`,
	)
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Policy: aws.String(doc)})
	id := md.KeyId
	good := map[string]string{"tenant": "acme", "purpose": "p"}

	enc, err := k.bob.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionContext: good})
	require.NoError(t, err)
	_, err = k.bob.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: good})
	require.NoError(t, err)
	for _, ec := range []map[string]string{nil, {"tenant": "acme"}, {"tenant": "ACME", "purpose": "p"}, {"tenant": "other", "purpose": "p"}} {
		_, err := k.bob.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionContext: ec})
		assert.Equal(t, "AccessDeniedException", apiCode(t, err), "%v", ec)
	}
	// A context with a key outside the allowed set: alice may encrypt, but
	// nobody may decrypt it (the ForAnyValue deny).
	odd := map[string]string{"tenant": "acme", "purpose": "p", "extra": "1"}
	enc2, err := k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionContext: odd})
	require.NoError(t, err)
	_, err = k.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc2.CiphertextBlob, EncryptionContext: odd})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))
	traced := map[string]string{"tenant": "acme", "purpose": "p", "trace-id": "7"}
	enc3, err := k.bob.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionContext: traced})
	require.NoError(t, err)
	_, err = k.bob.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc3.CiphertextBlob, EncryptionContext: traced})
	require.NoError(t, err, "trace-* matches StringLike")

	// bob cannot manage the key (guard deny + no allow); alice can.
	_, err = k.bob.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))
	_, err = k.alice.TagResource(ctx, &kms.TagResourceInput{KeyId: id, Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("b")}}})
	require.NoError(t, err)
	// Explicit deny beats alice's kms:*.
	_, err = k.alice.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: id, KeySpec: types.DataKeySpecAes256})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))

	// eve: DescribeKey by ARN across accounts is allowed, Encrypt is not.
	_, err = k.eve.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.Arn})
	require.NoError(t, err)
	_, err = k.eve.Encrypt(ctx, &kms.EncryptInput{KeyId: md.Arn, Plaintext: []byte("x"), EncryptionContext: good})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))
	_, err = k.eve.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: good})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "Decrypt finds the key from the blob; the policy still decides")
}

// A domain key rotation re-seals every HBK token; old ciphertexts keep
// decrypting after the rotated-out domain key is gone.
func TestDomainRotationReencryptsHBKs(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	h := k.hosts[0]
	var cts [][]byte
	for range 3 {
		md := k.createKey(t, k.alice, nil)
		_, err := k.alice.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
		require.NoError(t, err)
		out, err := k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
		require.NoError(t, err)
		cts = append(cts, out.CiphertextBlob)
	}
	outdated, total := h.EKTProgress()
	require.Equal(t, 6, total, "two HBK tokens a key")
	require.Zero(t, outdated)
	rotatePastRetention(t, h, 6)
	for _, ct := range cts {
		out, err := k.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct})
		require.NoError(t, err)
		assert.Equal(t, "x", string(out.Plaintext))
	}
}

// rotatePastRetention rotates the domain key three times, past the
// default retention so the first domain key is dropped, checking after
// each rotation that all sealed items are outdated and that
// re-encryption brings them all current, then waits until the HSM holds
// only the newest domain version.
func rotatePastRetention(t *testing.T, h *host.Host, sealed int) {
	t.Helper()
	ctx := context.Background()
	for range 3 {
		st, _ := h.FSM().State()
		_, err := h.RotateNow(ctx, st)
		require.NoError(t, err)
		outdated, _ := h.EKTProgress()
		require.Equal(t, sealed, outdated)
		require.NoError(t, h.Reencrypt(ctx, nil))
		outdated, _ = h.EKTProgress()
		require.Zero(t, outdated)
	}
	require.Eventually(t, func() bool {
		vs := h.HSMVersions(ctx)
		st, _ := h.FSM().State()
		return len(vs) == 1 && vs[0] == st.Version
	}, 10*time.Second, 10*time.Millisecond)
}

// kms:RequestAlias is the alias the request named, if any.
func TestRequestAliasCondition(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	doc := policyDoc(
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+acctA+`:user/alice"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+acctA+`:user/bob"},"Action":["kms:Encrypt","kms:DescribeKey"],"Resource":"*",
		  "Condition":{"StringLike":{"kms:RequestAlias":"alias/bob-*"}}}`)
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Policy: aws.String(doc)})
	for _, a := range []string{"alias/bob-1", "alias/other"} {
		_, err := k.alice.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(a), TargetKeyId: md.KeyId})
		require.NoError(t, err)
	}
	for name, want := range map[string]string{
		"alias/bob-1": "", "arn:aws:kms:eu-west-1:" + acctA + ":alias/bob-1": "",
		"alias/other": "AccessDeniedException", *md.KeyId: "AccessDeniedException", *md.Arn: "AccessDeniedException",
	} {
		_, err := k.bob.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(name), Plaintext: []byte("x")})
		if want == "" {
			require.NoError(t, err, name)
		} else {
			assert.Equal(t, want, apiCode(t, err), name)
		}
	}
	_, err := k.bob.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/bob-1")})
	require.NoError(t, err)
	_, err = k.bob.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))
}

// An HSM that stops does not fail requests: the host's session serves
// them on the others.
func TestHSMFailoverDuringRequests(t *testing.T) {
	k := newKMSCluster(t, 1, 3)
	ctx := context.Background()
	md := k.createKey(t, k.alice, nil)
	roundTrip := func() {
		t.Helper()
		enc, err := k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
		require.NoError(t, err)
		dec, err := k.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		require.NoError(t, err)
		require.Equal(t, "x", string(dec.Plaintext))
	}
	for range 6 {
		roundTrip()
	}
	k.hsms[1].stop(t)
	for range 12 { // every HSM's turn comes up several times
		roundTrip()
	}
	k.hsms[0].stop(t)
	for range 6 {
		roundTrip()
	}
	out, err := k.alice.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(16)})
	require.NoError(t, err)
	assert.Len(t, out.Plaintext, 16)
}
