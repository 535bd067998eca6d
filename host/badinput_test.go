package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/audit"
)

// clientFrom is credential i's client of host h's KMS API, connecting
// from the loopback address local (127.0.0.2: another source than the
// hosts' own 127.0.0.1).
func (k *kmsCluster) clientFrom(h, i int, local string) *kms.Client {
	cr := testCreds.Credentials[i]
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return kms.NewFromConfig(aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{DialContext: d.DialContext}},
	}, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(k.hosts[h].KMSURL())
		o.RetryMaxAttempts = 1
	})
}

// The lockout safety check asks the new policy with the condition keys a
// later PutKeyPolicy of the caller will have (issue 16: a Deny of
// kms:PutKeyPolicy when aws:SecureTransport is "false", which every
// request here is, was accepted without BypassPolicyLockoutSafetyCheck and
// locked the administrator out; so was one on aws:SourceIp).
func TestLockoutCheckRequestContext(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	admin := `{"Sid":"admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:user/alice"},"Action":"kms:*","Resource":"*"}`
	deny := func(cond string) string {
		return policyDoc(admin, `{"Sid":"lock","Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*","Condition":`+cond+`}`)
	}
	insecure := deny(`{"Bool":{"aws:SecureTransport":"false"}}`)
	loopback := deny(`{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}`)
	v6 := deny(`{"NotIpAddress":{"aws:SourceIp":"2001:db8::/32"}}`)
	elsewhere := deny(`{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}`)
	spec := deny(`{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT"}}`)

	for name, doc := range map[string]string{"SecureTransport": insecure, "SourceIp": loopback, "NotIpAddress IPv6": v6, "KeySpec": spec} {
		_, err := k.alice.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(doc)})
		assert.Equal(t, "MalformedPolicyDocumentException", apiCode(t, err), "CreateKey, %s", name)
	}
	md := k.createKey(t, k.alice, nil)
	for name, doc := range map[string]string{"SecureTransport": insecure, "SourceIp": loopback, "NotIpAddress IPv6": v6, "KeySpec": spec} {
		_, err := k.alice.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String(doc)})
		assert.Equal(t, "MalformedPolicyDocumentException", apiCode(t, err), "PutKeyPolicy, %s", name)
	}
	// A Deny that does not apply to this caller from here passes.
	_, err := k.alice.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String(elsewhere)})
	require.NoError(t, err)
	_, err = k.alice.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(elsewhere)})
	require.NoError(t, err)
	// Bypassed, the policy is set, and it does lock alice out.
	_, err = k.alice.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String(insecure), BypassPolicyLockoutSafetyCheck: true})
	require.NoError(t, err)
	_, err = k.alice.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String(policyDoc(admin)), BypassPolicyLockoutSafetyCheck: true})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "locked out, as the check warned")
}

// aws:SourceIp is the client's address: a Deny for 127.0.0.0/8 denies
// (issue 16: it was accepted and never enforced), and a request a follower
// forwards to the leader is judged by its client's address, which the
// follower vouches for, not by the follower's own.
func TestSourceIPCondition(t *testing.T) {
	k := newKMSCluster(t, 3, 1)
	ctx := context.Background()
	waitLeader(t, k.hosts[0])
	admin := `{"Sid":"admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:user/alice"},"Action":"kms:*","Resource":"*"}`
	doc := policyDoc(admin,
		`{"Sid":"no-loopback-encrypt","Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}}`,
		`{"Sid":"tag-from-2-only","Effect":"Deny","Principal":"*","Action":"kms:TagResource","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["127.0.0.2/32","2001:db8::/32"]}}}`)
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Policy: aws.String(doc)})
	from1, from2 := k.client(0, 0), k.clientFrom(0, 0, "127.0.0.2")

	_, err := from1.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	assert.Equal(t, "AccessDeniedException", apiCode(t, err), "IpAddress 127.0.0.1/32 denies a client on 127.0.0.1")
	_, err = from2.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	require.NoError(t, err, "a client on 127.0.0.2 is outside the Deny")

	tag := func(cl *kms.Client) error {
		_, err := cl.TagResource(ctx, &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("b")}}})
		return err
	}
	assert.Equal(t, "AccessDeniedException", apiCode(t, tag(from1)), "NotIpAddress denies 127.0.0.1")
	require.NoError(t, tag(from2))
	// Through a follower (host-3 on 127.0.0.1): the leader judges the
	// client's address.
	require.NoError(t, tag(k.clientFrom(2, 0, "127.0.0.2")), "forwarded from 127.0.0.2")
	assert.Equal(t, "AccessDeniedException", apiCode(t, tag(k.client(2, 0))), "forwarded from 127.0.0.1")

	// The leader's audit trail records the client's address, also for
	// the forwarded request: the two TagResource requests it served.
	trail, err := os.ReadFile(k.hosts[0].AuditFile())
	require.NoError(t, err)
	served := 0
	for _, line := range strings.Split(strings.TrimSpace(string(trail)), "\n") {
		var e struct {
			EventName, SourceIPAddress, ErrorCode string
		}
		require.NoError(t, json.Unmarshal([]byte(line), &e))
		if e.EventName == "TagResource" && e.ErrorCode == "" {
			served++
			assert.Equal(t, "127.0.0.2", e.SourceIPAddress)
		}
	}
	assert.Equal(t, 2, served)
}

// Alias names of up to 256 characters work (issue 16: 241–256 answered
// KMSInternalException); longer ones are a ValidationException.
func TestAliasNameLengths(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	md := k.createKey(t, k.alice, nil)
	other := k.createKey(t, k.alice, nil)
	names := map[string]bool{}
	for _, n := range []int{240, 241, 255, 256} {
		name := "alias/" + strings.Repeat("x", n-len("alias/")-1) + string(rune('a'+n%26))
		require.Len(t, name, n)
		names[name] = true
		_, err := k.alice.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: md.KeyId})
		require.NoError(t, err, "%d characters", n)
		_, err = k.alice.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: md.KeyId})
		assert.Equal(t, "AlreadyExistsException", apiCode(t, err), "%d characters", n)
		d, err := k.alice.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)})
		require.NoError(t, err, "%d characters", n)
		assert.Equal(t, *md.KeyId, *d.KeyMetadata.KeyId)
		_, err = k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(name), Plaintext: []byte("x")})
		require.NoError(t, err)
		_, err = k.alice.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(name), TargetKeyId: other.KeyId})
		require.NoError(t, err, "%d characters", n)
	}
	list, err := k.alice.ListAliases(ctx, &kms.ListAliasesInput{KeyId: other.KeyId})
	require.NoError(t, err)
	listed := map[string]bool{}
	for _, a := range list.Aliases {
		listed[*a.AliasName] = true
	}
	assert.Equal(t, names, listed)
	for name := range names {
		_, err := k.alice.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(name)})
		require.NoError(t, err)
	}
	_, err = k.alice.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/" + strings.Repeat("y", 251)), TargetKeyId: md.KeyId})
	assert.Equal(t, "ValidationException", apiCode(t, err), "257 characters")
}

// The largest key the KMS API allows, every string at the JSON
// encoding's worst (a 32 KiB policy padded with line feeds, an 8 KiB
// description and 50 tags of \u0001 characters), is made through the SDK
// on a three-host cluster: its record of over 200 KB is committed by raft and
// read on a follower, it encrypts, and the leader's audit trail reads
// back with the event whole (before, CreateKey answered it with
// KMSInternalException, and a line this long stopped trent audit).
func TestLargestLegalKeyEndToEnd(t *testing.T) {
	k := newKMSCluster(t, 3, 1)
	ctx := context.Background()
	pol := `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	pol += strings.Repeat("\n", 32768-len(pol))
	desc := strings.Repeat("\x01", 8192)
	var tags []types.Tag
	for i := range 50 {
		tags = append(tags, types.Tag{TagKey: aws.String(fmt.Sprintf("%03d", i) + strings.Repeat("\x01", 125)), TagValue: aws.String(strings.Repeat("\x01", 256))})
	}
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Policy: aws.String(pol), Description: aws.String(desc), Tags: tags})
	out, err := k.client(2, 0).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
	require.NoError(t, err, "read on a follower")
	assert.Equal(t, desc, aws.ToString(out.KeyMetadata.Description))
	enc, err := k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	require.NoError(t, err)
	_, err = k.client(1, 0).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)

	f, err := os.Open(k.hosts[0].AuditFile())
	require.NoError(t, err)
	defer f.Close()
	var created *audit.Event
	require.NoError(t, audit.Scan(f, &audit.Filter{EventName: "CreateKey"}, func(e *audit.Event) error { created = e; return nil }))
	require.NotNil(t, created)
	assert.Equal(t, desc, created.RequestParameters["description"])
	assert.Equal(t, pol, created.RequestParameters["policy"])
}
