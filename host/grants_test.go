package host_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/keystore"
)

var (
	aliceARN = "arn:aws:iam::" + acctA + ":user/alice"
	bobARN   = "arn:aws:iam::" + acctA + ":user/bob"
	eveARN   = "arn:aws:iam::" + acctB + ":user/eve"
	// onlyAlice is a key policy that names alice alone.
	onlyAlice = `{"Sid":"admin","Effect":"Allow","Principal":{"AWS":"` + aliceARN + `"},"Action":"kms:*","Resource":"*"}`
)

func ops(names ...string) []types.GrantOperation {
	out := make([]types.GrantOperation, len(names))
	for i, n := range names {
		out[i] = types.GrantOperation(n)
	}
	return out
}

// encryptCode is the error code of cl's Encrypt under key id with ec ("" if
// it succeeds).
func encryptCode(t *testing.T, cl *kms.Client, id *string, ec map[string]string, tokens ...string) string {
	t.Helper()
	_, err := cl.Encrypt(context.Background(), &kms.EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionContext: ec, GrantTokens: tokens})
	if err == nil {
		return ""
	}
	return apiCode(t, err)
}

// A grant adds to the key policy: its grantee may do its operations, within
// its encryption context constraint, until it is retired or revoked; an
// explicit deny of the policy still wins.
func TestGrantsAllowWhatThePolicyDoesNot(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Policy: aws.String(policyDoc(onlyAlice))})
	id := md.KeyId
	acme := map[string]string{"tenant": "acme", "x": "y"}

	assert.Equal(t, "AccessDeniedException", encryptCode(t, k.bob, id, acme), "the policy names alice alone")
	g, err := k.alice.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(bobARN),
		RetiringPrincipal: aws.String(eveARN), Operations: ops("Encrypt", "Decrypt"),
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "acme"}}})
	require.NoError(t, err)
	require.Len(t, *g.GrantId, 64)
	require.NotEmpty(t, *g.GrantToken)

	// Within the constraint, at once (the grant token is not needed).
	assert.Equal(t, "", encryptCode(t, k.bob, id, acme))
	assert.Equal(t, "", encryptCode(t, k.bob, id, map[string]string{"tenant": "acme"}))
	assert.Equal(t, "", encryptCode(t, k.bob, md.Arn, map[string]string{"TENANT": "acme"}), "constraint keys are case-insensitive")
	assert.Equal(t, "", encryptCode(t, k.bob, id, acme, *g.GrantToken), "with the grant token")
	enc, err := k.bob.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("secret"), EncryptionContext: acme})
	require.NoError(t, err)
	dec, err := k.bob.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: acme})
	require.NoError(t, err)
	assert.Equal(t, "secret", string(dec.Plaintext))
	// Outside it.
	for _, ec := range []map[string]string{nil, {"tenant": "other"}, {"tenant": "ACME"}, {"x": "y"}} {
		assert.Equal(t, "AccessDeniedException", encryptCode(t, k.bob, id, ec), "%v", ec)
	}
	other, err := k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionContext: map[string]string{"tenant": "other"}})
	require.NoError(t, err)
	_, err = k.bob.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: other.CiphertextBlob, EncryptionContext: map[string]string{"tenant": "other"}})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))
	// Not its operations, not its grantee.
	_, err = k.bob.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, KeySpec: types.DataKeySpecAes256, EncryptionContext: acme})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "GenerateDataKey is not in the grant")
	_, err = k.bob.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))
	assert.Equal(t, "AccessDeniedException", encryptCode(t, k.eve, md.Arn, acme), "eve is the retiring principal, not the grantee")
	// Grant tokens must be tokens.
	v3 := base64.RawURLEncoding.EncodeToString(append([]byte{3}, make([]byte, 48)...)) // 1: UUID keys, 2: multi-Region keys
	for _, bad := range []string{"not-a-token", *g.GrantToken + "A", (*g.GrantToken)[1:], *g.GrantToken + "==", v3} {
		assert.Equal(t, "InvalidGrantTokenException", encryptCode(t, k.bob, id, acme, bad), bad)
	}

	// An explicit deny for bob beats the grant; without it the grant works again.
	denyBob := `{"Effect":"Deny","Principal":{"AWS":"` + bobARN + `"},"Action":"kms:Encrypt","Resource":"*"}`
	_, err = k.alice.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, Policy: aws.String(policyDoc(onlyAlice, denyBob))})
	require.NoError(t, err)
	assert.Equal(t, "AccessDeniedException", encryptCode(t, k.bob, id, acme))
	_, err = k.bob.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: acme})
	require.NoError(t, err, "the deny names Encrypt only")
	_, err = k.alice.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, Policy: aws.String(policyDoc(onlyAlice))})
	require.NoError(t, err)
	assert.Equal(t, "", encryptCode(t, k.bob, id, acme))

	// EncryptionContextEquals: exactly these pairs.
	eq, err := k.alice.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: md.Arn, GranteePrincipal: aws.String(bobARN),
		Operations:  ops("GenerateDataKey", "DescribeKey"),
		Constraints: &types.GrantConstraints{EncryptionContextEquals: map[string]string{"a": "1", "b": "2"}}})
	require.NoError(t, err)
	for ec, want := range map[string]string{
		"a=1,b=2": "", "A=1,b=2": "", "a=1": "AccessDeniedException", "a=1,b=2,c=3": "AccessDeniedException",
		"a=1,b=3": "AccessDeniedException", "": "AccessDeniedException",
	} {
		m := map[string]string{}
		for _, kv := range strings.Split(ec, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
		_, err := k.bob.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, NumberOfBytes: aws.Int32(16), EncryptionContext: m})
		if want == "" {
			require.NoError(t, err, ec)
		} else {
			assert.Equal(t, want, apiCode(t, err), ec)
		}
	}
	_, err = k.bob.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	require.NoError(t, err, "a constraint does not apply to DescribeKey")

	// ListGrants, one page at a time.
	var listed []types.GrantListEntry
	var marker *string
	for {
		out, err := k.alice.ListGrants(ctx, &kms.ListGrantsInput{KeyId: id, Limit: aws.Int32(1), Marker: marker})
		require.NoError(t, err)
		require.LessOrEqual(t, len(out.Grants), 1)
		listed = append(listed, out.Grants...)
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	require.Len(t, listed, 2)
	byID := map[string]types.GrantListEntry{}
	for _, e := range listed {
		byID[*e.GrantId] = e
	}
	first := byID[*g.GrantId]
	assert.Equal(t, *md.Arn, *first.KeyId)
	assert.Equal(t, bobARN, *first.GranteePrincipal)
	assert.Equal(t, eveARN, *first.RetiringPrincipal)
	assert.Equal(t, "arn:aws:iam::"+acctA+":root", *first.IssuingAccount)
	assert.Equal(t, ops("Decrypt", "Encrypt"), first.Operations)
	assert.Equal(t, map[string]string{"tenant": "acme"}, first.Constraints.EncryptionContextSubset)
	assert.WithinDuration(t, time.Now(), *first.CreationDate, time.Minute)
	assert.Nil(t, byID[*eq.GrantId].RetiringPrincipal)
	assert.Equal(t, map[string]string{"a": "1", "b": "2"}, byID[*eq.GrantId].Constraints.EncryptionContextEquals)
	one, err := k.alice.ListGrants(ctx, &kms.ListGrantsInput{KeyId: id, GrantId: eq.GrantId})
	require.NoError(t, err)
	require.Len(t, one.Grants, 1)
	assert.Equal(t, *eq.GrantId, *one.Grants[0].GrantId)
	none, err := k.alice.ListGrants(ctx, &kms.ListGrantsInput{KeyId: id, GranteePrincipal: aws.String(eveARN)})
	require.NoError(t, err)
	assert.Empty(t, none.Grants)
	_, err = k.bob.ListGrants(ctx, &kms.ListGrantsInput{KeyId: id})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "ListGrants needs the policy")
	_, err = k.alice.ListGrants(ctx, &kms.ListGrantsInput{KeyId: id, GrantId: aws.String("nope")})
	assert.Equal(t, "InvalidGrantIdException", apiCode(t, err))

	// ListRetirableGrants: eve's grants, on another account's key; only for
	// a principal of the caller's account.
	ret, err := k.eve.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(eveARN)})
	require.NoError(t, err)
	require.Len(t, ret.Grants, 1)
	assert.Equal(t, *g.GrantId, *ret.Grants[0].GrantId)
	assert.Equal(t, *md.Arn, *ret.Grants[0].KeyId)
	mine, err := k.bob.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(bobARN)})
	require.NoError(t, err)
	assert.Empty(t, mine.Grants)
	_, err = k.eve.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(bobARN)})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "another account's principal")

	// RetireGrant: eve (the retiring principal, another account) by the
	// token; bob's Encrypt is denied again.
	_, err = k.eve.RetireGrant(ctx, &kms.RetireGrantInput{GrantId: eq.GrantId, KeyId: md.Arn})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "eve is not named by that grant")
	_, err = k.eve.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g.GrantToken, DryRun: aws.Bool(true)})
	assert.Equal(t, "DryRunOperationException", apiCode(t, err))
	assert.Equal(t, "", encryptCode(t, k.bob, id, acme), "a dry run retires nothing")
	_, err = k.eve.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g.GrantToken})
	require.NoError(t, err)
	assert.Equal(t, "AccessDeniedException", encryptCode(t, k.bob, id, acme))
	assert.Equal(t, "AccessDeniedException", encryptCode(t, k.bob, id, acme, *g.GrantToken), "a retired grant's token allows nothing")
	_, err = k.eve.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g.GrantToken})
	assert.Equal(t, "NotFoundException", apiCode(t, err))
	_, err = k.eve.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String("bad")})
	assert.Equal(t, "InvalidGrantTokenException", apiCode(t, err))
	_, err = k.eve.RetireGrant(ctx, &kms.RetireGrantInput{GrantId: eq.GrantId})
	assert.Equal(t, "ValidationException", apiCode(t, err), "neither a token nor a key and grant ID")

	// RevokeGrant: the policy decides.
	_, err = k.bob.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: id, GrantId: eq.GrantId})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))
	_, err = k.alice.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: id, GrantId: eq.GrantId})
	require.NoError(t, err)
	_, err = k.bob.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, NumberOfBytes: aws.Int32(16), EncryptionContext: map[string]string{"a": "1", "b": "2"}})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "revoked")
	_, err = k.alice.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: id, GrantId: eq.GrantId})
	assert.Equal(t, "NotFoundException", apiCode(t, err))
	left, err := k.alice.ListGrants(ctx, &kms.ListGrantsInput{KeyId: id})
	require.NoError(t, err)
	assert.Empty(t, left.Grants)
	_, ok := k.hosts[0].FSM().Key(keystore.GrantIndexID(*id))
	assert.False(t, ok, "the last grant's removal removes the key's grant index")
}

// Who may retire a grant: its retiring principal, its grantee if it
// includes RetireGrant, the account that made it; nobody else.
func TestRetireGrantPrincipals(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Policy: aws.String(policyDoc(onlyAlice))})
	create := func(grantee string, op ...string) *kms.CreateGrantOutput {
		t.Helper()
		g, err := k.alice.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: aws.String(grantee), Operations: ops(op...)})
		require.NoError(t, err)
		return g
	}
	// eve, the grantee (another account), without RetireGrant: refused.
	g := create(eveARN, "Encrypt")
	_, err := k.eve.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g.GrantToken})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err))
	// bob, of the issuing account: allowed.
	_, err = k.bob.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: md.KeyId, GrantId: g.GrantId})
	require.NoError(t, err)
	// eve, the grantee, with RetireGrant: allowed, naming the key by ARN.
	g = create(eveARN, "Encrypt", "RetireGrant")
	_, err = k.eve.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: md.Arn, GrantId: g.GrantId})
	require.NoError(t, err)
	// A grant to eve's account root: every principal of that account uses it.
	g = create("arn:aws:iam::"+acctB+":root", "Encrypt")
	assert.Equal(t, "", encryptCode(t, k.eve, md.Arn, nil))
	_, err = k.alice.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g.GrantToken, GrantId: aws.String(strings.Repeat("0", 64))})
	assert.Equal(t, "ValidationException", apiCode(t, err), "a token and another grant ID")
	_, err = k.alice.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g.GrantToken})
	require.NoError(t, err)
	assert.Equal(t, "AccessDeniedException", encryptCode(t, k.eve, md.Arn, nil))
}

// CreateGrant's checks: parameters, key state and type, idempotency by
// name, the grant-related condition keys of the key policy, and grants
// made through a grant.
func TestCreateGrantChecks(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	// bob may create grants only of Encrypt and Decrypt, only for principals
	// of account A, only with a retiring principal.
	bobGrants := `{"Effect":"Allow","Principal":{"AWS":"` + bobARN + `"},"Action":"kms:CreateGrant","Resource":"*","Condition":{
	  "ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt","Decrypt"]},
	  "StringLike":{"kms:GranteePrincipal":"arn:aws:iam::` + acctA + `:*"},
	  "Null":{"kms:RetiringPrincipal":"false"},
	  "Bool":{"kms:GrantIsForAWSResource":"false"}}}`
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Policy: aws.String(policyDoc(onlyAlice, bobGrants))})
	id := md.KeyId
	in := func(grantee string, op ...string) *kms.CreateGrantInput {
		return &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(grantee), RetiringPrincipal: aws.String(bobARN), Operations: ops(op...)}
	}
	_, err := k.bob.CreateGrant(ctx, in(aliceARN, "Encrypt"))
	require.NoError(t, err)
	for name, req := range map[string]*kms.CreateGrantInput{
		"an operation outside kms:GrantOperations": in(aliceARN, "Encrypt", "GenerateDataKey"),
		"a grantee of another account":             in(eveARN, "Encrypt"),
		"no retiring principal":                    {KeyId: id, GranteePrincipal: aws.String(aliceARN), Operations: ops("Decrypt")},
	} {
		_, err := k.bob.CreateGrant(ctx, req)
		assert.Equal(t, "AccessDeniedException", apiCode(t, err), name)
	}

	// Parameters.
	for name, req := range map[string]*kms.CreateGrantInput{
		"no operations":     {KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: []types.GrantOperation{}},
		"unknown operation": {KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("PutKeyPolicy")},
		"no grantee":        {KeyId: id, Operations: ops("Encrypt")},
		"bad grantee":       {KeyId: id, GranteePrincipal: aws.String("a b"), Operations: ops("Encrypt")},
		"bad name":          {KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt"), Name: aws.String("a b")},
		"two constraints": {KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt"),
			Constraints: &types.GrantConstraints{EncryptionContextEquals: map[string]string{"a": "b"}, EncryptionContextSubset: map[string]string{"a": "b"}}},
		"nine pairs": {KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt"),
			Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"1": "", "2": "", "3": "", "4": "", "5": "", "6": "", "7": "", "8": "", "9": ""}}},
		"Sign on a symmetric key": {KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt", "Sign")},
		"a bad grant token":       {KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt"), GrantTokens: []string{"x"}},
	} {
		_, err := k.alice.CreateGrant(ctx, req)
		want := "ValidationException"
		if name == "a bad grant token" {
			want = "InvalidGrantTokenException"
		}
		assert.Equal(t, want, apiCode(t, err), name)
	}
	_, err = k.alice.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String("alias/x"), GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt")})
	assert.Equal(t, "NotFoundException", apiCode(t, err), "not an alias")
	_, err = k.alice.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt"), DryRun: aws.Bool(true)})
	assert.Equal(t, "DryRunOperationException", apiCode(t, err))

	// Idempotency by name: the same parameters give the same grant.
	named := &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt", "Decrypt"), Name: aws.String("app:1"),
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"t": "1"}}}
	a, err := k.alice.CreateGrant(ctx, named)
	require.NoError(t, err)
	named.Operations = ops("Decrypt", "Encrypt", "Encrypt") // the same set
	b, err := k.alice.CreateGrant(ctx, named)
	require.NoError(t, err)
	assert.Equal(t, *a.GrantId, *b.GrantId)
	assert.Equal(t, *a.GrantToken, *b.GrantToken)
	named.Operations = ops("Encrypt")
	c, err := k.alice.CreateGrant(ctx, named)
	require.NoError(t, err)
	assert.NotEqual(t, *a.GrantId, *c.GrantId, "other parameters: a new grant of the same name")
	unnamed := &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt")}
	d, err := k.alice.CreateGrant(ctx, unnamed)
	require.NoError(t, err)
	e, err := k.alice.CreateGrant(ctx, unnamed)
	require.NoError(t, err)
	assert.NotEqual(t, *d.GrantId, *e.GrantId, "without a name every CreateGrant makes a grant")

	// Through a grant: bob holds CreateGrant within tenant=acme, and may
	// pass on no more than he holds.
	_, err = k.alice.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("CreateGrant", "Encrypt"),
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "acme"}}})
	require.NoError(t, err)
	through := func(op []string, c *types.GrantConstraints) error {
		_, err := k.bob.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: md.Arn, GranteePrincipal: aws.String(eveARN), Operations: ops(op...), Constraints: c})
		return err
	}
	assert.Equal(t, "AccessDeniedException", apiCode(t, through([]string{"Encrypt"}, nil)), "no constraint: weaker")
	assert.Equal(t, "AccessDeniedException", apiCode(t, through([]string{"Decrypt"},
		&types.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "acme"}})), "an operation bob does not hold")
	assert.Equal(t, "AccessDeniedException", apiCode(t, through([]string{"Encrypt"},
		&types.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "other"}})), "another constraint")
	require.NoError(t, through([]string{"Encrypt"}, &types.GrantConstraints{EncryptionContextEquals: map[string]string{"tenant": "acme", "app": "1"}}))
	assert.Equal(t, "", encryptCode(t, k.eve, md.Arn, map[string]string{"tenant": "acme", "app": "1"}))
	assert.Equal(t, "AccessDeniedException", encryptCode(t, k.eve, md.Arn, map[string]string{"tenant": "acme"}))

	// Key states: disabled, then pending deletion.
	_, err = k.alice.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id})
	require.NoError(t, err)
	_, err = k.alice.CreateGrant(ctx, unnamed)
	assert.Equal(t, "DisabledException", apiCode(t, err))
	_, err = k.alice.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)})
	require.NoError(t, err)
	_, err = k.alice.CreateGrant(ctx, unnamed)
	assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
	_, err = k.alice.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: id, GrantId: e.GrantId})
	require.NoError(t, err, "grants can be revoked while the key is pending deletion")
}

// A key has at most 1000 grants.
func TestGrantLimit(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	md := k.createKey(t, k.alice, nil)
	in := &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt")}
	g, err := k.alice.CreateGrant(ctx, in)
	require.NoError(t, err)
	// Fill the key's grant index up to the limit (the other grant records
	// need not exist for the count).
	ids := []string{*g.GrantId}
	for i := 1; i < keystore.MaxGrantsPerKey; i++ {
		ids = append(ids, fmt.Sprintf("%064x", i))
	}
	ix, err := keystore.MarshalGrantIndex(ids)
	require.NoError(t, err)
	e, err := domain.PutKeyEntry(keystore.GrantIndexID(*md.KeyId), ix)
	require.NoError(t, err)
	require.NoError(t, k.hosts[0].ApplyForTest(e))
	_, err = k.alice.CreateGrant(ctx, in)
	assert.Equal(t, "LimitExceededException", apiCode(t, err))
	_, err = k.alice.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: md.KeyId, GrantId: g.GrantId})
	require.NoError(t, err)
	_, err = k.alice.CreateGrant(ctx, in)
	require.NoError(t, err, "one below the limit again")
}

// A follower forwards CreateGrant, RetireGrant and RevokeGrant to the
// leader; the grant then works on every host.
func TestFollowerForwardsGrants(t *testing.T) {
	k := newKMSCluster(t, 3, 1)
	ctx := context.Background()
	waitLeader(t, k.hosts[0])
	alice3, bob2 := k.client(2, 0), k.client(1, 1)
	md, err := alice3.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(policyDoc(onlyAlice))})
	require.NoError(t, err)
	id := md.KeyMetadata.KeyId
	require.Eventually(t, func() bool { _, ok := k.hosts[1].FSM().Key("k/" + *id); return ok }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "AccessDeniedException", encryptCode(t, bob2, id, nil))

	g, err := alice3.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt")})
	require.NoError(t, err)
	assert.Equal(t, "", encryptCode(t, k.client(0, 1), id, nil), "effective on the leader when CreateGrant answers")
	require.Eventually(t, func() bool { return encryptCode(t, bob2, id, nil) == "" }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return encryptCode(t, k.client(2, 1), id, nil) == "" }, 5*time.Second, 10*time.Millisecond)
	list, err := k.client(1, 0).ListGrants(ctx, &kms.ListGrantsInput{KeyId: id})
	require.NoError(t, err)
	require.Len(t, list.Grants, 1)

	_, err = alice3.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: id, GrantId: g.GrantId})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return encryptCode(t, bob2, id, nil) == "AccessDeniedException" }, 5*time.Second, 10*time.Millisecond)
	g, err = alice3.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(bobARN), Operations: ops("Encrypt")})
	require.NoError(t, err)
	_, err = k.client(2, 1).RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g.GrantToken})
	require.NoError(t, err, "bob, of the issuing account, retires it through a follower")
	assert.Equal(t, "AccessDeniedException", encryptCode(t, k.client(0, 1), id, nil))
}

// The final deletion of a key removes its grants with it; scheduling the
// deletion does not.
func TestKeyDeletionRemovesGrants(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	h := k.hosts[0]
	waitLeader(t, h)
	doomed := k.createKey(t, k.alice, nil)
	kept := k.createKey(t, k.alice, nil)
	var records []string
	for _, md := range []*types.KeyMetadata{doomed, doomed, kept} {
		g, err := k.alice.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: aws.String(eveARN), Operations: ops("Encrypt")})
		require.NoError(t, err)
		records = append(records, keystore.GrantRecordID(*md.KeyId, *g.GrantId))
	}
	records = append(records, keystore.GrantIndexID(*doomed.KeyId), keystore.GrantIndexID(*kept.KeyId))
	for _, id := range records {
		_, ok := h.FSM().Key(id)
		require.True(t, ok, id)
	}
	_, err := k.alice.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: doomed.KeyId, PendingWindowInDays: aws.Int32(7)})
	require.NoError(t, err)
	deleted, _, err := h.KeyMaintenance(ctx)
	require.NoError(t, err)
	require.Zero(t, deleted)
	list, err := k.alice.ListGrants(ctx, &kms.ListGrantsInput{KeyId: doomed.KeyId})
	require.NoError(t, err)
	assert.Len(t, list.Grants, 2, "a key pending deletion keeps its grants")

	k.skew.Store(int64(8 * 24 * time.Hour))
	deleted, _, err = h.KeyMaintenance(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, deleted)
	for i, id := range records {
		_, ok := h.FSM().Key(id)
		gone := strings.Contains(id, *doomed.KeyId)
		assert.Equal(t, !gone, ok, "record %d %s", i, id)
	}
	list, err = k.alice.ListGrants(ctx, &kms.ListGrantsInput{KeyId: kept.KeyId})
	require.NoError(t, err)
	assert.Len(t, list.Grants, 1, "another key's grant stays")
}

// Grants of an asymmetric key: only operations its key usage supports, no
// encryption context constraint; a grant of Sign lets its grantee sign.
func TestGrantsOnAsymmetricKeys(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Policy: aws.String(policyDoc(onlyAlice)),
		KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	sign := func() error {
		_, err := k.bob.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		return err
	}
	assert.Equal(t, "AccessDeniedException", apiCode(t, sign()))
	for name, req := range map[string]*kms.CreateGrantInput{
		"Encrypt on a signing key": {KeyId: md.KeyId, GranteePrincipal: aws.String(bobARN), Operations: ops("Sign", "Encrypt")},
		"a constraint": {KeyId: md.KeyId, GranteePrincipal: aws.String(bobARN), Operations: ops("Sign"),
			Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"a": "b"}}},
	} {
		_, err := k.alice.CreateGrant(ctx, req)
		assert.Equal(t, "ValidationException", apiCode(t, err), name)
	}
	_, err := k.alice.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: aws.String(bobARN), Operations: ops("Sign", "GetPublicKey")})
	require.NoError(t, err)
	require.NoError(t, sign())
	_, err = k.bob.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
	require.NoError(t, err)
	_, err = k.bob.Verify(ctx, &kms.VerifyInput{KeyId: md.KeyId, Message: []byte("m"), Signature: []byte{1}, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "Verify is not in the grant")
}
