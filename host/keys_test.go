package host_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/kms/kmsapi"
)

const (
	acctA = "111122223333"
	acctB = "444455556666"
)

var testCreds = &kmsapi.Credentials{Region: "eu-west-1", Credentials: []kmsapi.Credential{
	{AccessKeyID: "AKIAALICE00000000001", SecretAccessKey: "alice-secret-0000000000000000", AccountID: acctA, ARN: "arn:aws:iam::" + acctA + ":user/alice"},
	{AccessKeyID: "AKIABOB0000000000001", SecretAccessKey: "bob-secret-00000000000000000", AccountID: acctA, ARN: "arn:aws:iam::" + acctA + ":user/bob"},
	{AccessKeyID: "AKIAEVE0000000000001", SecretAccessKey: "eve-secret-00000000000000000", AccountID: acctB, ARN: "arn:aws:iam::" + acctB + ":user/eve"},
}}

// kmsCluster is a test cluster whose hosts serve the KMS API, with a
// clock tests can move forward.
type kmsCluster struct {
	*testCluster
	skew            *atomic.Int64 // nanoseconds added to the hosts' clock
	alice, bob, eve *kms.Client
}

func newKMSCluster(t *testing.T, nHosts, nHSMs int) *kmsCluster {
	return newKMSClusterWith(t, nHosts, nHSMs, nil)
}

// newKMSClusterWith is newKMSCluster with more host configuration.
func newKMSClusterWith(t *testing.T, nHosts, nHSMs int, more func(*host.Config)) *kmsCluster {
	skew := &atomic.Int64{}
	c := newTestClusterWith(t, nHosts, nHSMs, func(hc *host.Config) {
		hc.Credentials, hc.KMSAddr = testCreds, "127.0.0.1:0"
		hc.Clock = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		hc.KeyMaintenanceEvery = time.Hour // tests call KeyMaintenance
		if more != nil {
			more(hc)
		}
	})
	k := &kmsCluster{testCluster: c, skew: skew}
	k.alice, k.bob, k.eve = k.client(0, 0), k.client(0, 1), k.client(0, 2)
	return k
}

// client is credential i's client of host h's KMS API.
func (k *kmsCluster) client(h, i int) *kms.Client {
	cr := testCreds.Credentials[i]
	return kmsClient(k.hosts[h].KMSURL(), cr.AccessKeyID, cr.SecretAccessKey, "eu-west-1")
}

func (k *kmsCluster) createKey(t *testing.T, cl *kms.Client, in *kms.CreateKeyInput) *types.KeyMetadata {
	t.Helper()
	if in == nil {
		in = &kms.CreateKeyInput{}
	}
	out, err := cl.CreateKey(context.Background(), in)
	require.NoError(t, err)
	return out.KeyMetadata
}

// Every key management operation through the AWS SDK, and the errors it
// parses.
func TestKeyManagement(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	cl := k.alice

	md := k.createKey(t, cl, &kms.CreateKeyInput{Description: aws.String("first"),
		Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("infra")}}})
	id := *md.KeyId
	assert.Equal(t, "arn:aws:kms:eu-west-1:"+acctA+":key/"+id, *md.Arn)
	assert.Equal(t, types.KeyStateEnabled, md.KeyState)
	assert.Equal(t, types.KeySpecSymmetricDefault, md.KeySpec)
	assert.Equal(t, types.KeyUsageTypeEncryptDecrypt, md.KeyUsage)
	assert.Equal(t, []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecSymmetricDefault}, md.EncryptionAlgorithms)
	assert.WithinDuration(t, time.Now(), *md.CreationDate, time.Minute)

	// Aliases, and every way to name the key.
	_, err := cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(id)})
	require.NoError(t, err)
	for _, name := range []string{id, *md.Arn, "alias/app", "arn:aws:kms:eu-west-1:" + acctA + ":alias/app"} {
		d, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)})
		require.NoError(t, err, name)
		assert.Equal(t, id, *d.KeyMetadata.KeyId)
		assert.Equal(t, "first", *d.KeyMetadata.Description)
	}
	for name, code := range map[string]string{
		"alias/none": "NotFoundException", "not-a-key": "NotFoundException",
		"1234abcd-12ab-34cd-56ef-1234567890ab":                             "NotFoundException",
		"arn:aws:kms:us-east-1:" + acctA + ":key/" + id:                    "NotFoundException", // another region
		"arn:aws:kms:eu-west-1:" + acctA + ":alias/none":                   "NotFoundException",
		"arn:aws:kms:eu-west-1:" + acctA + ":something/" + id:              "NotFoundException",
		"arn:aws:kms:eu-west-1:" + acctB + ":key/" + id:                    "NotFoundException", // another account
		"arn:aws:kms:eu-west-1:" + acctA + ":key/" + id[:len(id)-1] + "0x": "NotFoundException",
	} {
		_, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)})
		assert.Equal(t, code, apiCode(t, err), name)
	}
	_, err = k.eve.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	assert.Equal(t, "NotFoundException", apiCode(t, err), "a key ID is looked up in the caller's account")
	_, err = k.eve.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.Arn})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "another account's key by ARN: the policy decides")

	_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(id)})
	assert.Equal(t, "AlreadyExistsException", apiCode(t, err))
	_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/x"), TargetKeyId: aws.String(id)})
	assert.Equal(t, "NotAuthorizedException", apiCode(t, err))
	_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("app"), TargetKeyId: aws.String(id)})
	assert.Equal(t, "InvalidAliasNameException", apiCode(t, err))
	_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/two"), TargetKeyId: aws.String("alias/app")})
	assert.Equal(t, "NotFoundException", apiCode(t, err), "an alias cannot target an alias")
	_, err = k.eve.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: md.Arn})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))

	second := k.createKey(t, cl, nil)
	_, err = cl.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: second.KeyId})
	require.NoError(t, err)
	d, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/app")})
	require.NoError(t, err)
	assert.Equal(t, *second.KeyId, *d.KeyMetadata.KeyId)
	_, err = cl.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/none"), TargetKeyId: second.KeyId})
	assert.Equal(t, "NotFoundException", apiCode(t, err))
	for i := range 3 {
		_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/p%d", i)), TargetKeyId: aws.String(id)})
		require.NoError(t, err)
	}
	// Pagination: ListAliases 2 at a time visits all four, in order.
	var names []string
	var marker *string
	for {
		out, err := cl.ListAliases(ctx, &kms.ListAliasesInput{Limit: aws.Int32(2), Marker: marker})
		require.NoError(t, err)
		for _, a := range out.Aliases {
			names = append(names, *a.AliasName)
			assert.Equal(t, "arn:aws:kms:eu-west-1:"+acctA+":"+*a.AliasName, *a.AliasArn)
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	assert.Equal(t, []string{"alias/app", "alias/p0", "alias/p1", "alias/p2"}, names)
	byKey, err := cl.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	assert.Len(t, byKey.Aliases, 3)
	_, err = cl.ListAliases(ctx, &kms.ListAliasesInput{Marker: aws.String("!!")})
	assert.Equal(t, "InvalidMarkerException", apiCode(t, err))
	eveAliases, err := k.eve.ListAliases(ctx, &kms.ListAliasesInput{})
	require.NoError(t, err)
	assert.Empty(t, eveAliases.Aliases, "aliases are per account")
	_, err = cl.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/p2")})
	require.NoError(t, err)
	_, err = cl.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/p2")})
	assert.Equal(t, "NotFoundException", apiCode(t, err))

	keys, err := cl.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1)})
	require.NoError(t, err)
	require.Len(t, keys.Keys, 1)
	require.True(t, keys.Truncated)
	rest, err := cl.ListKeys(ctx, &kms.ListKeysInput{Marker: keys.NextMarker})
	require.NoError(t, err)
	require.Len(t, rest.Keys, 1)
	assert.False(t, rest.Truncated)
	assert.ElementsMatch(t, []string{id, *second.KeyId}, []string{*keys.Keys[0].KeyId, *rest.Keys[0].KeyId})
	_, err = cl.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1001)})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	eveKeys, err := k.eve.ListKeys(ctx, &kms.ListKeysInput{})
	require.NoError(t, err)
	assert.Empty(t, eveKeys.Keys)

	// Tags and description.
	_, err = cl.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: []types.Tag{
		{TagKey: aws.String("env"), TagValue: aws.String("test")}, {TagKey: aws.String("team"), TagValue: aws.String("sec")}}})
	require.NoError(t, err)
	_, err = cl.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(id), TagKeys: []string{"env"}})
	require.NoError(t, err)
	tags, err := cl.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	require.Len(t, tags.Tags, 1)
	assert.Equal(t, "team", *tags.Tags[0].TagKey)
	assert.Equal(t, "sec", *tags.Tags[0].TagValue)
	_, err = cl.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: []types.Tag{{TagKey: aws.String("aws:x"), TagValue: aws.String("")}}})
	assert.Equal(t, "TagException", apiCode(t, err))
	_, err = cl.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String("alias/p0"), Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("")}}})
	assert.Equal(t, "NotFoundException", apiCode(t, err), "TagResource does not take an alias")
	_, err = cl.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(id), Description: aws.String("renamed")})
	require.NoError(t, err)

	// Policies.
	pols, err := cl.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	assert.Equal(t, []string{"default"}, pols.PolicyNames)
	pol, err := cl.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	assert.Contains(t, *pol.Policy, `"arn:aws:iam::`+acctA+`:root"`)
	_, err = cl.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(`{"Version":"2012-10-17","Statement":[]`)})
	assert.Equal(t, "MalformedPolicyDocumentException", apiCode(t, err))
	onlyBob := policyDoc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:user/bob"},"Action":"kms:*","Resource":"*"}`)
	_, err = cl.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(onlyBob)})
	assert.Equal(t, "MalformedPolicyDocumentException", apiCode(t, err), "the lockout safety check")
	_, err = cl.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(onlyBob), BypassPolicyLockoutSafetyCheck: true})
	require.NoError(t, err)
	_, err = cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "alice is locked out")
	_, err = k.bob.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	cl = k.bob // the key is bob's now

	// Rotation.
	st, err := cl.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	assert.False(t, st.KeyRotationEnabled)
	_, err = cl.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(30)})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	_, err = cl.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(90)})
	require.NoError(t, err)
	st, err = cl.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	assert.True(t, st.KeyRotationEnabled)
	assert.Equal(t, int32(90), *st.RotationPeriodInDays)
	assert.WithinDuration(t, time.Now().Add(90*24*time.Hour), *st.NextRotationDate, time.Minute)
	_, err = cl.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	rots, err := cl.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	require.Len(t, rots.Rotations, 1)
	assert.Equal(t, types.RotationTypeOnDemand, rots.Rotations[0].RotationType)
	_, err = cl.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)})
	require.NoError(t, err)

	// States.
	_, err = cl.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	d, err = cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	assert.Equal(t, types.KeyStateDisabled, d.KeyMetadata.KeyState)
	assert.False(t, d.KeyMetadata.Enabled)
	_, err = cl.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	assert.Equal(t, "DisabledException", apiCode(t, err))
	_, err = cl.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	_, err = cl.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(6)})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	del, err := cl.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	require.NoError(t, err)
	assert.Equal(t, types.KeyStatePendingDeletion, del.KeyState)
	assert.WithinDuration(t, time.Now().Add(7*24*time.Hour), *del.DeletionDate, time.Minute)
	_, err = cl.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
	assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
	_, err = cl.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id)})
	assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
	_, err = cl.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	d, err = cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	require.NoError(t, err)
	assert.Equal(t, types.KeyStateDisabled, d.KeyMetadata.KeyState, "a cancelled deletion leaves the key disabled")
	assert.Equal(t, "renamed", *d.KeyMetadata.Description)
	_, err = cl.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)})
	assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))

	// What CreateKey refuses.
	_, err = k.alice.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeSignVerify})
	assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))
	_, err = k.alice.CreateKey(ctx, &kms.CreateKeyInput{KeyUsage: types.KeyUsageTypeSignVerify})
	assert.Equal(t, "ValidationException", apiCode(t, err))
	_, err = k.alice.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(`{"Version":"2012-10-17"}`)})
	assert.Equal(t, "MalformedPolicyDocumentException", apiCode(t, err))
	_, err = k.alice.CreateKey(ctx, &kms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("aws:reserved"), TagValue: aws.String("")}}})
	assert.Equal(t, "TagException", apiCode(t, err))
}

func policyDoc(statements ...string) string {
	s := `{"Version":"2012-10-17","Statement":[`
	for i, st := range statements {
		if i > 0 {
			s += ","
		}
		s += st
	}
	return s + `]}`
}

// Deletion really removes the key (and its aliases) after the pending
// window; automatic rotation adds a version when due.
func TestKeyDeletionAndAutomaticRotation(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	h := k.hosts[0]
	waitLeader(t, h)
	doomed := k.createKey(t, k.alice, nil)
	kept := k.createKey(t, k.alice, nil)
	_, err := k.alice.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: doomed.KeyId})
	require.NoError(t, err)
	ct, err := k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: kept.KeyId, Plaintext: []byte("kept")})
	require.NoError(t, err)
	_, err = k.alice.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: doomed.KeyId, PendingWindowInDays: aws.Int32(7)})
	require.NoError(t, err)
	_, err = k.alice.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: kept.KeyId, RotationPeriodInDays: aws.Int32(90)})
	require.NoError(t, err)

	deleted, rotated, err := h.KeyMaintenance(ctx)
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 0}, [2]int{deleted, rotated}, "nothing is due yet")

	k.skew.Store(int64(8 * 24 * time.Hour))
	deleted, rotated, err = h.KeyMaintenance(ctx)
	require.NoError(t, err)
	assert.Equal(t, [2]int{1, 0}, [2]int{deleted, rotated})
	_, err = k.alice.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: doomed.KeyId})
	assert.Equal(t, "NotFoundException", apiCode(t, err))
	_, err = k.alice.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/doomed")})
	assert.Equal(t, "NotFoundException", apiCode(t, err))
	_, ok := h.FSM().Key("k/" + *doomed.KeyId)
	assert.False(t, ok, "the record is gone from the key store")

	k.skew.Store(int64(91 * 24 * time.Hour))
	deleted, rotated, err = h.KeyMaintenance(ctx)
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 1}, [2]int{deleted, rotated})
	rots, err := k.alice.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: kept.KeyId})
	require.NoError(t, err)
	require.Len(t, rots.Rotations, 1)
	assert.Equal(t, types.RotationTypeAutomatic, rots.Rotations[0].RotationType)
	st, err := k.alice.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: kept.KeyId})
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(181*24*time.Hour), *st.NextRotationDate, time.Minute)
	pt, err := k.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	require.NoError(t, err, "the old version still decrypts")
	assert.Equal(t, "kept", string(pt.Plaintext))
}

func waitLeader(t *testing.T, h *host.Host) {
	t.Helper()
	require.Eventually(t, h.IsLeader, 10*time.Second, 10*time.Millisecond)
}

// A follower's KMS API forwards key-store writes to the leader, which
// verifies the signature again and records the request; reads and
// cryptography are served where they arrive.
func TestFollowerForwardsKeyWrites(t *testing.T) {
	k := newKMSCluster(t, 3, 1)
	ctx := context.Background()
	waitLeader(t, k.hosts[0])
	cl := k.client(2, 0) // host-3, a follower
	md, err := cl.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("via a follower")})
	require.NoError(t, err)
	_, err = cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/f"), TargetKeyId: md.KeyMetadata.KeyId})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, ok := k.hosts[2].FSM().Key("a/" + acctA + "/alias/f")
		return ok
	}, 5*time.Second, 10*time.Millisecond)
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/f"), Plaintext: []byte("x")})
	require.NoError(t, err)
	dec, err := k.client(1, 0).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, "x", string(dec.Plaintext))

	// The leader recorded the forwarded CreateKey; the follower did not.
	leaderLog, err := os.ReadFile(k.hosts[0].AuditFile())
	require.NoError(t, err)
	assert.Contains(t, string(leaderLog), `"eventName":"CreateKey"`)
	followerLog, err := os.ReadFile(k.hosts[2].AuditFile())
	require.NoError(t, err)
	assert.NotContains(t, string(followerLog), `"eventName":"CreateKey"`)
	assert.Contains(t, string(followerLog), `"eventName":"Encrypt"`)

	// A bad signature is refused before forwarding.
	bad := kmsClient(k.hosts[2].KMSURL(), testCreds.Credentials[0].AccessKeyID, "wrong-secret-000000000000000", "eu-west-1")
	_, err = bad.CreateKey(ctx, &kms.CreateKeyInput{})
	assert.Equal(t, "InvalidSignatureException", apiCode(t, err))
}

// No plaintext key material at rest: after a workload, the raft stores,
// snapshots and HSM data dirs hold none of the data keys handed out.
func TestNoPlaintextKeyMaterialAtRest(t *testing.T) {
	k := newKMSCluster(t, 1, 2)
	ctx := context.Background()
	h := k.hosts[0]
	md := k.createKey(t, k.alice, nil)
	var secrets [][]byte
	for range 20 {
		out, err := k.alice.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256,
			EncryptionContext: map[string]string{"run": "at-rest"}})
		require.NoError(t, err)
		secrets = append(secrets, out.Plaintext)
		pt := []byte(fmt.Sprintf("plaintext-marker-%x", out.Plaintext[:8]))
		_, err = k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: pt})
		require.NoError(t, err)
		secrets = append(secrets, pt)
	}
	_, err := k.alice.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	require.NoError(t, err)
	// Asymmetric material: data key pairs' private keys, and keys whose
	// material the HSMs keep (their use must leave nothing behind either).
	for _, spec := range []types.DataKeyPairSpec{types.DataKeyPairSpecRsa2048, types.DataKeyPairSpecEccNistP256} {
		out, err := k.alice.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: spec})
		require.NoError(t, err)
		secrets = append(secrets, out.PrivateKeyPlaintext)
	}
	for _, spec := range []types.KeySpec{types.KeySpecEccNistP256, types.KeySpecHmac256} {
		usage := types.KeyUsageTypeSignVerify
		if spec == types.KeySpecHmac256 {
			usage = types.KeyUsageTypeGenerateVerifyMac
		}
		ak := k.createKey(t, k.alice, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
		if spec == types.KeySpecHmac256 {
			_, err = k.alice.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: ak.KeyId, Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
		} else {
			_, err = k.alice.Sign(ctx, &kms.SignInput{KeyId: ak.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		}
		require.NoError(t, err)
	}
	snap, err := host.FetchSnapshot(ctx, h.APIURL())
	require.NoError(t, err)
	require.NoError(t, h.Close())

	dirs := []string{h.Dir(), k.hsmDir}
	scanned := 0
	for _, dir := range dirs {
		require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			scanned += len(data)
			for _, s := range secrets {
				for _, form := range [][]byte{s, []byte(base64.StdEncoding.EncodeToString(s))} {
					require.False(t, bytes.Contains(data, form), "%s holds a secret", path)
				}
			}
			return nil
		}))
	}
	for _, s := range secrets {
		require.False(t, bytes.Contains(snap, s))
	}
	require.Greater(t, scanned, 1<<16, "the scan read the stores")
	// The audit trail is in the host's dir too (scanned above); check it
	// has the events, so the scan covered them.
	audit, err := os.ReadFile(h.AuditFile())
	require.NoError(t, err)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(bytes.SplitN(audit, []byte("\n"), 2)[0], &ev))
}

// The audit trail names the key each request used (its ARN, even when the
// request named an alias), records management responses and never a
// secret.
func TestAuditEventsOfKeyOperations(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Description: aws.String("audited")})
	_, err := k.alice.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aud"), TargetKeyId: md.KeyId})
	require.NoError(t, err)
	secret := []byte("audit-trail-must-not-hold-this")
	enc, err := k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/aud"), Plaintext: secret})
	require.NoError(t, err)
	dk, err := k.alice.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/aud"), NumberOfBytes: aws.Int32(32)})
	require.NoError(t, err)

	trail, err := os.ReadFile(k.hosts[0].AuditFile())
	require.NoError(t, err)
	for _, s := range [][]byte{secret, enc.CiphertextBlob, dk.Plaintext, dk.CiphertextBlob} {
		require.False(t, bytes.Contains(trail, []byte(base64.StdEncoding.EncodeToString(s))), "a secret in the trail")
	}
	events := map[string]map[string]any{}
	for _, line := range bytes.Split(bytes.TrimSpace(trail), []byte("\n")) {
		var e map[string]any
		require.NoError(t, json.Unmarshal(line, &e))
		events[e["eventName"].(string)] = e
	}
	assert.Equal(t, *md.Arn, events["Encrypt"]["keyId"], "the alias resolved to the key's ARN")
	assert.Nil(t, events["Encrypt"]["responseElements"], "no response elements for cryptographic operations")
	assert.Equal(t, "alias/aud", events["Encrypt"]["requestParameters"].(map[string]any)["keyId"])
	assert.Equal(t, *md.Arn, events["GenerateDataKey"]["keyId"])
	created := events["CreateKey"]
	assert.Equal(t, *md.Arn, created["keyId"])
	meta := created["responseElements"].(map[string]any)["keyMetadata"].(map[string]any)
	assert.Equal(t, "audited", meta["Description"])
}
