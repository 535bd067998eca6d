package kms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Handler tests over in-memory fakes of the Store (memStore) and the HSM
// (softHSM, package hbk with a software domain key): no raft, no SoftHSM.
// The end-to-end tests with real parts are in package host.

const account = "111122223333"

var (
	alice = kmsapi.Principal{AccessKeyID: "AKIAALICE", AccountID: account, ARN: "arn:aws:iam::" + account + ":user/alice"}
	bob   = kmsapi.Principal{AccessKeyID: "AKIABOB", AccountID: account, ARN: "arn:aws:iam::" + account + ":user/bob"}
)

type fixture struct {
	s     *Service
	store *memStore
	hsm   *softHSM
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: newMemStore(), hsm: newSoftHSM(), now: time.Unix(1_800_000_000, 0)}
	f.s = New(Config{Store: f.store, HSM: f.hsm, Region: "eu-west-1", Clock: func() time.Time { return f.now }})
	return f
}

// call runs operation op for p with the request req (JSON-encoded) and
// returns the answer as JSON decoded into a map.
func (f *fixture) call(p kmsapi.Principal, op string, req any) (map[string]any, error) {
	body, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	out, err := f.s.Operations()[op].Handler(context.Background(), p, body)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(out)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		panic(err)
	}
	return m, nil
}

func (f *fixture) must(t *testing.T, p kmsapi.Principal, op string, req any) map[string]any {
	t.Helper()
	out, err := f.call(p, op, req)
	require.NoError(t, err, op)
	return out
}

// createKey makes a symmetric key and returns its ID.
func (f *fixture) createKey(t *testing.T, req map[string]any) string {
	t.Helper()
	out := f.must(t, alice, "CreateKey", req)
	return out["KeyMetadata"].(map[string]any)["KeyId"].(string)
}

// exception is the KMS exception of err ("" if none).
func exception(err error) string {
	var ke *kmsapi.Error
	if errors.As(err, &ke) {
		return ke.Type
	}
	if err != nil {
		return "not a KMS error: " + err.Error()
	}
	return ""
}

func aliceOnly() string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + alice.ARN + `"},"Action":"kms:*","Resource":"*"}]}`
}

// Every operation is declared once, and what is derived from the table
// agrees with AWS: the writes are the operations that change the key
// store, the cryptographic ones are those whose responses CloudTrail
// omits, and the grant operations are KMS's.
func TestOperationTable(t *testing.T) {
	s := New(Config{})
	rows := s.table()
	names := map[string]bool{}
	for _, o := range rows {
		assert.False(t, names[o.name], "%s declared twice", o.name)
		names[o.name] = true
		assert.NotNil(t, o.handler, o.name)
	}
	assert.Len(t, s.Operations(), len(rows))

	var writes, crypto []string
	for name, o := range s.Operations() {
		if o.Write {
			writes = append(writes, name)
		}
		if o.Cryptographic {
			crypto = append(crypto, name)
		}
		assert.Equal(t, o.Write, s.IsWrite(name))
	}
	slices.Sort(writes)
	slices.Sort(crypto)
	// TestCustomKeyStoreOperations checks the custom key store rows.
	writes = slices.DeleteFunc(writes, func(n string) bool { return strings.HasSuffix(n, "CustomKeyStore") })
	assert.Equal(t, []string{"CancelKeyDeletion", "CreateAlias", "CreateGrant", "CreateKey", "DeleteAlias",
		"DeleteImportedKeyMaterial", "DisableKey", "DisableKeyRotation", "EnableKey", "EnableKeyRotation",
		"GetParametersForImport", "ImportKeyMaterial", "PutKeyPolicy", "ReplicateKey", "RetireGrant",
		"RevokeGrant", "RotateKeyOnDemand", "ScheduleKeyDeletion", "TagResource", "UntagResource",
		"UpdateAlias", "UpdateKeyDescription", "UpdatePrimaryRegion"}, writes)
	assert.Equal(t, []string{"Decrypt", "DeriveSharedSecret", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair",
		"GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "GenerateMac", "GenerateRandom",
		"ReEncrypt", "Sign", "Verify", "VerifyMac"}, crypto)
	for name, o := range s.Operations() {
		assert.False(t, o.Write && o.Cryptographic, "%s is both a write and cryptographic", name)
	}

	// AWS's grant operations (API reference, CreateGrant, Operations).
	assert.Equal(t, []string{"CreateGrant", "Decrypt", "DeriveSharedSecret", "DescribeKey", "Encrypt",
		"GenerateDataKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
		"GenerateDataKeyWithoutPlaintext", "GenerateMac", "GetPublicKey", "ReEncryptFrom",
		"ReEncryptTo", "RetireGrant", "Sign", "Verify", "VerifyMac"}, s.grantOpNames())
	var ctxOps []string
	for n, g := range s.grantOps {
		if g.context {
			ctxOps = append(ctxOps, n)
		}
	}
	slices.Sort(ctxOps)
	assert.Equal(t, []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair",
		"GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo"}, ctxOps)

	hmacKey := &keystore.Key{KeySpec: "HMAC_256", KeyUsage: usageMAC}
	symKey := &keystore.Key{KeySpec: symmetricDefault, KeyUsage: usageEncrypt}
	rsaKey := &keystore.Key{KeySpec: "RSA_2048", KeyUsage: usageEncrypt}
	assert.True(t, s.keyGrantOp(hmacKey, "GenerateMac"))
	assert.False(t, s.keyGrantOp(hmacKey, "Encrypt"))
	assert.True(t, s.keyGrantOp(symKey, "GenerateDataKeyPair"))
	assert.False(t, s.keyGrantOp(symKey, "GetPublicKey"))
	assert.True(t, s.keyGrantOp(rsaKey, "ReEncryptTo"))
	assert.False(t, s.keyGrantOp(rsaKey, "GenerateDataKey"))
	for _, op := range []string{"CreateGrant", "RetireGrant", "DescribeKey"} {
		assert.True(t, s.keyGrantOp(hmacKey, op), op)
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, map[string]any{"Description": "unit"})
	ec := map[string]string{"app": "unit", "tenant": "a"}
	enc := f.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("hello"), "EncryptionContext": ec})
	assert.Equal(t, "arn:aws:kms:eu-west-1:"+account+":key/"+id, enc["KeyId"])
	blob := enc["CiphertextBlob"].(string) // base64, as JSON carries []byte

	dec := f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": blob, "EncryptionContext": ec})
	assert.Equal(t, "aGVsbG8=", dec["Plaintext"])
	assert.Equal(t, enc["KeyId"], dec["KeyId"])
	assert.Equal(t, "SYMMETRIC_DEFAULT", dec["EncryptionAlgorithm"])

	_, err := f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": blob, "EncryptionContext": map[string]string{"app": "other"}})
	assert.Equal(t, "InvalidCiphertextException", exception(err), "another context")
	_, err = f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": blob})
	assert.Equal(t, "InvalidCiphertextException", exception(err), "no context")

	// GenerateDataKey: the blob decrypts to the plaintext returned.
	dk := f.must(t, alice, "GenerateDataKey", map[string]any{"KeyId": id, "KeySpec": "AES_256", "EncryptionContext": ec})
	require.Len(t, dk["Plaintext"], 44) // 32 bytes in base64
	dec = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": dk["CiphertextBlob"], "EncryptionContext": ec})
	assert.Equal(t, dk["Plaintext"], dec["Plaintext"])
	wo := f.must(t, alice, "GenerateDataKeyWithoutPlaintext", map[string]any{"KeyId": id, "NumberOfBytes": 16})
	assert.NotContains(t, wo, "Plaintext")
	dec = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": wo["CiphertextBlob"]})
	assert.Len(t, dec["Plaintext"], 24)

	// ReEncrypt to another key and context, then Decrypt there.
	other := f.createKey(t, nil)
	re := f.must(t, alice, "ReEncrypt", map[string]any{"CiphertextBlob": blob, "SourceEncryptionContext": ec, "DestinationKeyId": other})
	assert.Equal(t, enc["KeyId"], re["SourceKeyId"])
	dec = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": re["CiphertextBlob"]})
	assert.Equal(t, "aGVsbG8=", dec["Plaintext"])

	// GenerateRandom.
	r := f.must(t, alice, "GenerateRandom", map[string]any{"NumberOfBytes": 12})
	assert.Len(t, r["Plaintext"], 16)

	// Encrypt after an on-demand rotation uses the new HBK; old blobs still open.
	f.must(t, alice, "RotateKeyOnDemand", map[string]any{"KeyId": id})
	dec = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": blob, "EncryptionContext": ec})
	assert.Equal(t, "aGVsbG8=", dec["Plaintext"])
}

// The use-a-key pipeline: resolve, authorize (policy, then grants), key
// state, key usage, DryRun.
func TestUseAKey(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, map[string]any{"Policy": aliceOnly()})
	enc := func(p kmsapi.Principal, keyID string, extra ...any) error {
		req := map[string]any{"KeyId": keyID, "Plaintext": []byte("x")}
		for i := 0; i+1 < len(extra); i += 2 {
			req[extra[i].(string)] = extra[i+1]
		}
		_, err := f.call(p, "Encrypt", req)
		return err
	}
	assert.NoError(t, enc(alice, id))
	assert.Equal(t, "NotFoundException", exception(enc(alice, "00000000-0000-4000-8000-000000000000")))
	assert.Equal(t, "NotFoundException", exception(enc(alice, "alias/none")))
	assert.Equal(t, "ValidationException", exception(enc(alice, "")))
	assert.Equal(t, "AccessDeniedException", exception(enc(bob, id)))
	assert.Equal(t, "DryRunOperationException", exception(enc(alice, id, "DryRun", true)))
	assert.Equal(t, "AccessDeniedException", exception(enc(bob, id, "DryRun", true)), "DryRun after authorization")

	// A grant allows what the policy does not, within its constraint.
	g := f.must(t, alice, "CreateGrant", map[string]any{"KeyId": id, "GranteePrincipal": bob.ARN,
		"Operations": []string{"Encrypt"}, "Constraints": map[string]any{"EncryptionContextSubset": map[string]string{"app": "unit"}}})
	assert.NotEmpty(t, g["GrantToken"])
	assert.NoError(t, enc(bob, id, "EncryptionContext", map[string]string{"app": "unit", "more": "x"}))
	assert.Equal(t, "AccessDeniedException", exception(enc(bob, id, "EncryptionContext", map[string]string{"app": "other"})))
	_, err := f.call(bob, "GenerateDataKey", map[string]any{"KeyId": id, "NumberOfBytes": 16, "EncryptionContext": map[string]string{"app": "unit"}})
	assert.Equal(t, "AccessDeniedException", exception(err), "an operation the grant does not include")

	// Key state.
	f.must(t, alice, "DisableKey", map[string]any{"KeyId": id})
	assert.Equal(t, "DisabledException", exception(enc(alice, id)))
	assert.Equal(t, "AccessDeniedException", exception(enc(bob, id)), "authorization comes before the state")
	f.must(t, alice, "EnableKey", map[string]any{"KeyId": id})
	assert.NoError(t, enc(alice, id))
	f.must(t, alice, "ScheduleKeyDeletion", map[string]any{"KeyId": id, "PendingWindowInDays": 7})
	assert.Equal(t, "KMSInvalidStateException", exception(enc(alice, id)))

	// Key usage: an HMAC key cannot encrypt or sign.
	mac := putKey(t, f, "HMAC_256", usageMAC)
	assert.Equal(t, "InvalidKeyUsageException", exception(enc(alice, mac)))
	_, err = f.call(alice, "Sign", map[string]any{"KeyId": mac, "Message": []byte("m"), "SigningAlgorithm": "ECDSA_SHA_256"})
	assert.Equal(t, "InvalidKeyUsageException", exception(err))
	_, err = f.call(alice, "GenerateDataKey", map[string]any{"KeyId": mac, "NumberOfBytes": 16})
	assert.Equal(t, "InvalidKeyUsageException", exception(err))
}

// putKey writes a key record of spec and usage directly into the store
// (the fake HSM makes no key pairs) and returns its ID.
func putKey(t *testing.T, f *fixture, spec, usage string) string {
	t.Helper()
	id := newKeyID()
	rec := &keystore.Record{Key: keystore.Key{KeyID: id, Account: account, Region: "eu-west-1", Created: f.now.Unix(),
		State: keystore.StateEnabled, KeySpec: spec, KeyUsage: usage, Origin: "AWS_KMS", Policy: aliceOnly()},
		Tokens: [][]byte{f.hsm.keyToken(t, id)}}
	raw, err := rec.Marshal()
	require.NoError(t, err)
	require.NoError(t, f.store.Propose(context.Background(), domainNew(keystore.KeyRecordID(id), raw)))
	return id
}

func TestAliasResolution(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, nil)
	f.must(t, alice, "CreateAlias", map[string]any{"AliasName": "alias/unit", "TargetKeyId": id})
	_, err := f.call(alice, "CreateAlias", map[string]any{"AliasName": "alias/unit", "TargetKeyId": id})
	assert.Equal(t, "AlreadyExistsException", exception(err))
	arn := "arn:aws:kms:eu-west-1:" + account + ":key/" + id
	for _, name := range []string{"alias/unit", "arn:aws:kms:eu-west-1:" + account + ":alias/unit", id, arn} {
		out, err := f.call(alice, "Encrypt", map[string]any{"KeyId": name, "Plaintext": []byte("x")})
		require.NoError(t, err, name)
		assert.Equal(t, arn, out["KeyId"], name)
	}
	_, err = f.call(alice, "Encrypt", map[string]any{"KeyId": "arn:aws:kms:us-east-1:" + account + ":alias/unit", "Plaintext": []byte("x")})
	assert.Equal(t, "NotFoundException", exception(err), "another region")
	_, err = f.call(alice, "EnableKey", map[string]any{"KeyId": "alias/unit"})
	assert.Equal(t, "NotFoundException", exception(err), "EnableKey takes no alias")
	list := f.must(t, alice, "ListAliases", map[string]any{"KeyId": id})
	assert.Len(t, list["Aliases"], 1)

	// kms:RequestAlias is the alias the request named.
	pol := `{"Version":"2012-10-17","Statement":[` +
		`{"Effect":"Allow","Principal":{"AWS":"` + alice.ARN + `"},"Action":"kms:*","Resource":"*"},` +
		`{"Effect":"Allow","Principal":{"AWS":"` + bob.ARN + `"},"Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:RequestAlias":"alias/unit"}}}]}`
	f.must(t, alice, "PutKeyPolicy", map[string]any{"KeyId": id, "Policy": pol})
	_, err = f.call(bob, "Encrypt", map[string]any{"KeyId": "alias/unit", "Plaintext": []byte("x")})
	assert.NoError(t, err)
	_, err = f.call(bob, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
	assert.Equal(t, "AccessDeniedException", exception(err))
	_, err = f.call(bob, "DescribeKey", map[string]any{"KeyId": "alias/unit"})
	assert.Equal(t, "AccessDeniedException", exception(err))
}

// A write that loses its compare-and-swap reads again and retries; one
// that keeps losing answers ConflictException.
func TestConflictRetry(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, nil)
	f.store.conflicts, f.store.proposed = 3, 0
	f.must(t, alice, "UpdateKeyDescription", map[string]any{"KeyId": id, "Description": "after conflicts"})
	assert.Equal(t, 4, f.store.proposed)
	d := f.must(t, alice, "DescribeKey", map[string]any{"KeyId": id})
	assert.Equal(t, "after conflicts", d["KeyMetadata"].(map[string]any)["Description"])

	f.store.conflicts = 1000
	_, err := f.call(alice, "DisableKey", map[string]any{"KeyId": id})
	assert.Equal(t, "ConflictException", exception(err))
}

// An HSM that does not answer is a retryable 5xx, never a statement
// about the ciphertext; an HSM's refusal of a ciphertext is
// InvalidCiphertextException.
func TestHSMErrors(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, nil)
	enc := f.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})

	f.hsm.fail = errors.New("connection reset by peer")
	for op, req := range map[string]map[string]any{
		"Decrypt":         {"CiphertextBlob": enc["CiphertextBlob"]},
		"Encrypt":         {"KeyId": id, "Plaintext": []byte("x")},
		"GenerateDataKey": {"KeyId": id, "NumberOfBytes": 16},
		"ReEncrypt":       {"CiphertextBlob": enc["CiphertextBlob"], "DestinationKeyId": id},
		"GenerateRandom":  {"NumberOfBytes": 16},
		"CreateKey":       {},
	} {
		_, err := f.call(alice, op, req)
		var ke *kmsapi.Error
		require.ErrorAs(t, err, &ke, op)
		assert.Equal(t, kmsapi.KMSInternal, ke.Type, op)
		assert.GreaterOrEqual(t, ke.Status, 500, op)
	}
	f.hsm.fail = nil

	// A blob of this key that the HSM refuses (its tag altered).
	blob := []byte(nil)
	require.NoError(t, json.Unmarshal([]byte(`"`+enc["CiphertextBlob"].(string)+`"`), &blob))
	blob[len(blob)-1] ^= 1
	_, err := f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": blob})
	assert.Equal(t, "InvalidCiphertextException", exception(err))

	// A request that does not marshal (an RSA ciphertext longer than
	// RSA-4096's) is refused unsent, as the HSM would refuse it.
	rsaKey := putKey(t, f, "RSA_2048", usageEncrypt)
	_, err = f.call(alice, "Decrypt", map[string]any{"KeyId": rsaKey, "CiphertextBlob": make([]byte, hsmcmd.MaxAsymCiphertext+1),
		"EncryptionAlgorithm": "RSAES_OAEP_SHA_256"})
	assert.Equal(t, "InvalidCiphertextException", exception(err))
	assert.NotContains(t, f.hsm.cmds, hsmcmd.AsymDecrypt)

	// Without an HSM: DependencyTimeoutException.
	s := New(Config{Store: f.store, Region: "eu-west-1"})
	_, err = s.Operations()["CreateKey"].Handler(context.Background(), alice, []byte(`{}`))
	assert.Equal(t, kmsapi.DependencyTimeout, exception(err))
	_, err = s.Operations()["GenerateRandom"].Handler(context.Background(), alice, []byte(`{"NumberOfBytes":8}`))
	assert.Equal(t, kmsapi.DependencyTimeout, exception(err))
	// Every operation that needs an HSM says so with a retryable 503, not
	// an internal error and not a 4xx.
	noHSM := &fixture{s: s, store: f.store}
	for op, req := range map[string]map[string]any{
		"Encrypt":         {"KeyId": id, "Plaintext": []byte("x")},
		"Decrypt":         {"CiphertextBlob": enc["CiphertextBlob"]},
		"GenerateDataKey": {"KeyId": id, "NumberOfBytes": 16},
		"ReEncrypt":       {"CiphertextBlob": enc["CiphertextBlob"], "DestinationKeyId": id},
		"CreateKey":       {},
		"GenerateRandom":  {"NumberOfBytes": 8},
	} {
		_, err := noHSM.call(alice, op, req)
		var ke *kmsapi.Error
		require.ErrorAs(t, err, &ke, op)
		assert.Equal(t, kmsapi.DependencyTimeout, ke.Type, op)
		assert.Equal(t, 503, ke.Status, op)
	}
}

// Key maintenance deletes keys past their pending window (with their
// aliases) and rotates keys whose rotation is due.
func TestKeyMaintenance(t *testing.T) {
	f := newFixture(t)
	gone := f.createKey(t, nil)
	f.must(t, alice, "CreateAlias", map[string]any{"AliasName": "alias/gone", "TargetKeyId": gone})
	f.must(t, alice, "ScheduleKeyDeletion", map[string]any{"KeyId": gone, "PendingWindowInDays": 7})
	rot := f.createKey(t, nil)
	f.must(t, alice, "EnableKeyRotation", map[string]any{"KeyId": rot, "RotationPeriodInDays": 90})

	d, r, err := f.s.KeyMaintenance(context.Background())
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 0}, [2]int{d, r})
	f.now = f.now.Add(91 * 24 * time.Hour)
	d, r, err = f.s.KeyMaintenance(context.Background())
	require.NoError(t, err)
	assert.Equal(t, [2]int{1, 1}, [2]int{d, r})
	_, err = f.call(alice, "DescribeKey", map[string]any{"KeyId": gone})
	assert.Equal(t, "NotFoundException", exception(err))
	_, ok := f.store.Get(keystore.AliasRecordID(account, "alias/gone"))
	assert.False(t, ok)
	rs := f.must(t, alice, "ListKeyRotations", map[string]any{"KeyId": rot})
	assert.Len(t, rs["Rotations"], 1)
}

// Hierarchy commands go to the HSM as hsmcmd's typed requests.
func TestHSMCommands(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, nil)
	f.must(t, alice, "GenerateDataKeyWithoutPlaintext", map[string]any{"KeyId": id, "NumberOfBytes": 32})
	assert.Equal(t, []hsmcmd.Code{hsmcmd.CreateHBK, hsmcmd.GenerateDataKey}, f.hsm.cmds)
}

// The Recipient prologue: refused where the operation takes none, and an
// attestation document that does not verify is a ValidationException
// before any key is looked at.
func TestRecipientPrologue(t *testing.T) {
	f := newFixture(t)
	rcpt := map[string]any{"AttestationDocument": []byte("not a document"), "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}
	_, err := f.call(alice, "GenerateDataKeyWithoutPlaintext", map[string]any{"KeyId": "alias/none", "NumberOfBytes": 16, "Recipient": rcpt})
	require.Error(t, err)
	assert.Equal(t, "ValidationException", exception(err))
	assert.Contains(t, err.Error(), "GenerateDataKeyWithoutPlaintext does not take a Recipient")
	for op, req := range map[string]map[string]any{
		"Decrypt": {}, "GenerateDataKey": {"NumberOfBytes": 16}, "GenerateRandom": {"NumberOfBytes": 16},
		"DeriveSharedSecret": {}, "GenerateDataKeyPair": {},
	} {
		req["Recipient"] = rcpt
		_, err := f.call(alice, op, req)
		assert.Equal(t, "ValidationException", exception(err), op)
		assert.Contains(t, err.Error(), "attestation document is not valid", op)
	}
}

// Every operation that reads the key store passes a read barrier first,
// once; when the barrier cannot be had (no leader, this host cut off), the
// answer is the barrier's retryable error and the handler never runs:
// no NotFoundException for a key the cluster holds. GenerateRandom, which
// reads nothing of the key store, needs no barrier.
func TestReadBarrier(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, nil)
	enc := f.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
	before := f.store.syncs
	f.must(t, alice, "DescribeKey", map[string]any{"KeyId": id})
	assert.Equal(t, before+1, f.store.syncs, "one barrier per request")
	f.must(t, alice, "GenerateRandom", map[string]any{"NumberOfBytes": 8})
	assert.Equal(t, before+1, f.store.syncs, "GenerateRandom reads no key")

	behind := &kmsapi.Error{Type: kmsapi.DependencyTimeout, Status: 503, Message: "behind"}
	f.store.syncErr = behind
	proposed := f.store.proposed
	for op, req := range map[string]any{
		"DescribeKey":  map[string]any{"KeyId": id},
		"DescribeKey ": map[string]any{"KeyId": "alias/none"}, // would be NotFound
		"Decrypt":      map[string]any{"CiphertextBlob": enc["CiphertextBlob"]},
		"Encrypt":      map[string]any{"KeyId": id, "Plaintext": []byte("x")},
		"CreateKey":    map[string]any{},
		"DisableKey":   map[string]any{"KeyId": id},
		"ListKeys":     map[string]any{},
	} {
		_, err := f.call(alice, strings.TrimSpace(op), req)
		assert.Equal(t, behind, err, op)
	}
	assert.Equal(t, proposed, f.store.proposed, "nothing was written")
	f.must(t, alice, "GenerateRandom", map[string]any{"NumberOfBytes": 8})
	for name, op := range f.s.Operations() {
		if name == "GenerateRandom" {
			continue
		}
		_, err := op.Handler(context.Background(), alice, []byte(`{}`))
		assert.Equal(t, behind, err, "%s is served without a read barrier", name)
	}
}

// CreateGrant takes the grant operations of the operation table and no
// other: an operation a grant cannot allow (PutKeyPolicy), or no KMS
// operation at all, is a ValidationException that lists the table's.
func TestGrantOperationsFromTable(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, nil)
	_, err := f.call(alice, "CreateGrant", map[string]any{"KeyId": id, "GranteePrincipal": bob.ARN, "Operations": []string{"Encrypt"}})
	require.NoError(t, err)
	for _, op := range []string{"PutKeyPolicy", "Frobnicate", "encrypt"} {
		_, err := f.call(alice, "CreateGrant", map[string]any{"KeyId": id, "GranteePrincipal": bob.ARN, "Operations": []string{op}})
		var ke *kmsapi.Error
		require.ErrorAs(t, err, &ke, op)
		assert.Equal(t, kmsapi.ValidationException, ke.Type, op)
		assert.Contains(t, ke.Message, strings.Join(f.s.grantOpNames(), ", "), op)
	}
}

// Key policies see the request's time and region (aws:CurrentTime,
// aws:EpochTime, aws:RequestedRegion) and the caller's type and name: a
// condition on them decides, it is never silently ignored.
func TestGlobalConditionKeys(t *testing.T) {
	f := newFixture(t)
	p := alice
	p.Time, p.Region = f.now, "eu-west-1"
	deny := func(cond string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + alice.ARN + `"},"Action":"kms:*","Resource":"*"},` +
			`{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":` + cond + `}]}`
	}
	for cond, denied := range map[string]bool{
		`{"StringNotEquals":{"aws:RequestedRegion":"eu-west-1"}}`:            false,
		`{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}`:               true,
		`{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`:     true,
		`{"DateLessThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`:        false,
		`{"NumericGreaterThan":{"aws:EpochTime":"1577836800"}}`:              true,
		`{"StringEquals":{"aws:PrincipalType":"User","aws:username":"bob"}}`: false,
		`{"StringEquals":{"aws:username":"alice"}}`:                          true,
	} {
		out, err := f.call(p, "CreateKey", map[string]any{"Policy": deny(cond)})
		require.NoError(t, err, cond)
		id := out["KeyMetadata"].(map[string]any)["KeyId"].(string)
		_, err = f.call(p, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
		if denied {
			assert.Equal(t, kmsapi.AccessDenied, exception(err), cond)
		} else {
			assert.NoError(t, err, cond)
		}
	}
}

// ListAliases pages by name, also across aliases whose names are too long
// for their record IDs (stored under a hash that sorts elsewhere): every
// alias comes once, in name order.
func TestListAliasesLongNames(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, nil)
	names := []string{"alias/a", "alias/" + strings.Repeat("b", 250), "alias/c", "alias/" + strings.Repeat("d", 250), "alias/e"}
	for _, n := range names {
		f.must(t, alice, "CreateAlias", map[string]any{"AliasName": n, "TargetKeyId": id})
	}
	var got []string
	marker := ""
	for range 10 {
		req := map[string]any{"Limit": 2}
		if marker != "" {
			req["Marker"] = marker
		}
		out := f.must(t, alice, "ListAliases", req)
		for _, a := range out["Aliases"].([]any) {
			got = append(got, a.(map[string]any)["AliasName"].(string))
		}
		if out["Truncated"] != true {
			break
		}
		marker = out["NextMarker"].(string)
	}
	assert.Equal(t, names, got)
}

// The condition keys of a request's encryption context, algorithm and
// alias are built only when a policy statement has conditions or a grant
// constraint is checked (conditions): both still see them. A policy
// conditioned on the context decides Encrypt, Decrypt and
// GenerateDataKey; under a policy without conditions, a grant's
// EncryptionContextSubset decides for its grantee.
func TestConditionKeysBuiltWhenRead(t *testing.T) {
	f := newFixture(t)
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + alice.ARN + `"},"Action":"kms:*","Resource":"*"},` +
		`{"Effect":"Deny","Principal":"*","Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey"],"Resource":"*",` +
		`"Condition":{"StringNotEquals":{"kms:EncryptionContext:tenant":"a"}}},` +
		`{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:RequestAlias":"alias/conditioned"}}}]}`
	out, err := f.call(alice, "CreateKey", map[string]any{"Policy": pol})
	require.NoError(t, err)
	id := out["KeyMetadata"].(map[string]any)["KeyId"].(string)
	f.must(t, alice, "CreateAlias", map[string]any{"AliasName": "alias/conditioned", "TargetKeyId": id})
	ok := map[string]any{"tenant": "a"}
	enc := f.must(t, alice, "Encrypt", map[string]any{"KeyId": "alias/conditioned", "Plaintext": []byte("x"), "EncryptionContext": ok})
	_, err = f.call(alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x"), "EncryptionContext": ok})
	assert.Equal(t, kmsapi.AccessDenied, exception(err), "the alias is a condition key too")
	_, err = f.call(alice, "Encrypt", map[string]any{"KeyId": "alias/conditioned", "Plaintext": []byte("x"), "EncryptionContext": map[string]any{"tenant": "b"}})
	assert.Equal(t, kmsapi.AccessDenied, exception(err))
	_, err = f.call(alice, "GenerateDataKey", map[string]any{"KeyId": "alias/conditioned", "KeySpec": "AES_256", "EncryptionContext": map[string]any{"tenant": "b"}})
	assert.Equal(t, kmsapi.AccessDenied, exception(err))
	_, err = f.call(alice, "Decrypt", map[string]any{"KeyId": "alias/conditioned", "CiphertextBlob": enc["CiphertextBlob"], "EncryptionContext": ok})
	assert.NoError(t, err)

	plain := f.createKey(t, map[string]any{"Policy": aliceOnly()}) // no conditions
	f.must(t, alice, "CreateGrant", map[string]any{"KeyId": plain, "GranteePrincipal": bob.ARN, "Operations": []string{"Encrypt"},
		"Constraints": map[string]any{"EncryptionContextSubset": map[string]any{"tenant": "a"}}})
	_, err = f.call(bob, "Encrypt", map[string]any{"KeyId": plain, "Plaintext": []byte("x"), "EncryptionContext": map[string]any{"tenant": "a", "x": "y"}})
	assert.NoError(t, err)
	_, err = f.call(bob, "Encrypt", map[string]any{"KeyId": plain, "Plaintext": []byte("x"), "EncryptionContext": map[string]any{"tenant": "b"}})
	assert.Equal(t, kmsapi.AccessDenied, exception(err))
	_, err = f.call(bob, "Encrypt", map[string]any{"KeyId": plain, "Plaintext": []byte("x")})
	assert.Equal(t, kmsapi.AccessDenied, exception(err))
}
