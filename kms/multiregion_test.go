package kms

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

func TestCreateMultiRegionKey(t *testing.T) {
	f := newFixture(t)
	out := f.must(t, alice, "CreateKey", map[string]any{"MultiRegion": true, "Description": "mrk"})
	m := out["KeyMetadata"].(map[string]any)
	id := m["KeyId"].(string)
	assert.Regexp(t, regexp.MustCompile(`^mrk-[0-9a-f]{32}$`), id)
	assert.Equal(t, true, m["MultiRegion"])
	arn := "arn:aws:kms:eu-west-1:" + account + ":key/" + id
	assert.Equal(t, arn, m["Arn"])
	want := map[string]any{
		"MultiRegionKeyType": "PRIMARY",
		"PrimaryKey":         map[string]any{"Arn": arn, "Region": "eu-west-1"},
		"ReplicaKeys":        []any{},
	}
	assert.Equal(t, want, m["MultiRegionConfiguration"])

	d := f.must(t, alice, "DescribeKey", map[string]any{"KeyId": arn})["KeyMetadata"].(map[string]any)
	assert.Equal(t, want, d["MultiRegionConfiguration"])

	// A single-Region key says MultiRegion false and has no configuration.
	single := f.must(t, alice, "CreateKey", map[string]any{})["KeyMetadata"].(map[string]any)
	assert.Equal(t, false, single["MultiRegion"])
	assert.NotContains(t, single, "MultiRegionConfiguration")

	// The key works: Encrypt and Decrypt by mrk ID and alias.
	f.must(t, alice, "CreateAlias", map[string]any{"AliasName": "alias/mrk", "TargetKeyId": id})
	ct := f.must(t, alice, "Encrypt", map[string]any{"KeyId": "alias/mrk", "Plaintext": []byte("hi")})
	pt := f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct["CiphertextBlob"]})
	assert.Equal(t, id, lastPart(pt["KeyId"].(string)))
}

func TestCreateMultiRegionKeyRefusals(t *testing.T) {
	f := newFixture(t)
	for _, req := range []map[string]any{
		{"MultiRegion": true, "KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
		{"MultiRegion": true, "Origin": "EXTERNAL"},
	} {
		_, err := f.call(alice, "CreateKey", req)
		var ke *kmsapi.Error
		require.ErrorAs(t, err, &ke, "%v", req)
		assert.Equal(t, kmsapi.UnsupportedOperation, ke.Type)
	}
}

func lastPart(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == '/' {
			return arn[i+1:]
		}
	}
	return arn
}

// regionHSM is the softHSM of one region plus the two replica commands
// over a software link: a transport is the replica payload sealed with
// AES-GCM under a key the test's regions share, with the replica context
// (key ID, source and destination region) as associated data, so that a
// transport opens only for the key and direction it was made for. (The
// one-pass C(1,2) transport of real HSMs is tested in hsm/node and, end
// to end, in host.)
type regionHSM struct {
	*softHSM
	region string
	link   cipher.AEAD
	peers  []string // the regions this HSM's "domain" trusts
}

func (h *regionHSM) Do(ctx context.Context, req hsmcmd.Request) ([]byte, error) {
	switch r := req.(type) {
	case hsmcmd.ExportReplicaRequest:
		h.softHSM.mu.Lock()
		h.softHSM.cmds = append(h.softHSM.cmds, r.Code())
		h.softHSM.mu.Unlock()
		if !slices.Contains(h.peers, r.Region) {
			return nil, fmt.Errorf("%w: untrusted peer", ErrRefused)
		}
		var vs []hsmcmd.ReplicaHBK
		for _, raw := range r.Tokens {
			t, k, err := h.openToken(raw)
			if err != nil || t.KeyID != r.KeyID {
				return nil, fmt.Errorf("%w: token", ErrRefused)
			}
			vs = append(vs, hsmcmd.ReplicaHBK{ID: t.HBKID, HBK: k})
		}
		payload, err := hsmcmd.EncodeReplicaPayload(vs)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		nonce := make([]byte, 12)
		rand.Read(nonce)
		ct := h.link.Seal(nonce, nonce, payload, hsmcmd.ReplicaContext(r.KeyID, h.region, r.Region))
		return hsmcmd.ExportReplicaResponse{Transport: ct}.Marshal()
	case hsmcmd.ImportReplicaRequest:
		h.softHSM.mu.Lock()
		h.softHSM.cmds = append(h.softHSM.cmds, r.Code())
		h.softHSM.mu.Unlock()
		if !slices.Contains(h.peers, r.Region) || len(r.Transport) < 12 {
			return nil, fmt.Errorf("%w: untrusted peer", ErrRefused)
		}
		payload, err := h.link.Open(nil, r.Transport[:12], r.Transport[12:], hsmcmd.ReplicaContext(r.KeyID, r.Region, h.region))
		if err != nil {
			return nil, fmt.Errorf("%w: transport", ErrRefused)
		}
		vs, err := hsmcmd.ParseReplicaPayload(payload)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		var out [][]byte
		for _, v := range vs {
			var iv [hbk.IVSize]byte
			rand.Read(iv[:])
			t, err := hbk.SealToken(h.dk, h.dkID, r.KeyID, v.ID, iv, v.HBK)
			if err != nil {
				return nil, err
			}
			raw, _ := t.Marshal()
			out = append(out, raw)
		}
		return hsmcmd.ImportReplicaResponse{Tokens: out}.Marshal()
	}
	return h.softHSM.Do(ctx, req)
}

// fakeRegions links Services in-process, their requests round-tripped
// through JSON as the host's wire carries them.
type fakeRegions struct {
	self  string
	peers map[string]*Service
	down  bool // every call fails as an unreachable region does
}

func (r *fakeRegions) Peers() []string { return slices.Sorted(maps.Keys(r.peers)) }

func (r *fakeRegions) Replicate(ctx context.Context, region string, rep *Replica) (*ReplicaResult, error) {
	if r.down {
		return nil, &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500, Message: "unreachable"}
	}
	var wire Replica
	b, _ := json.Marshal(rep)
	if err := json.Unmarshal(b, &wire); err != nil {
		return nil, err
	}
	return r.peers[region].AcceptReplica(ctx, r.self, &wire)
}

func (r *fakeRegions) UpdatePrimary(ctx context.Context, region string, up *PrimaryUpdate) error {
	if r.down {
		return &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500, Message: "unreachable"}
	}
	return r.peers[region].AcceptPrimary(ctx, r.self, up)
}

func (r *fakeRegions) SyncRotation(ctx context.Context, region string, sy *RotationSync) error {
	if r.down {
		return &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500, Message: "unreachable"}
	}
	var wire RotationSync
	b, _ := json.Marshal(sy)
	if err := json.Unmarshal(b, &wire); err != nil {
		return err
	}
	return r.peers[region].AcceptRotation(ctx, r.self, &wire)
}

type region struct {
	*fixture
	hsm   *regionHSM
	links *fakeRegions
}

// twoRegions makes us-east-1 and us-west-2, each trusting the other.
func twoRegions(t *testing.T) (east, west *region) {
	t.Helper()
	key := newAESKey()
	mk := func(name, peer string) *region {
		f := &fixture{store: newMemStore(), hsm: newSoftHSM(), now: time.Unix(1_800_000_000, 0)}
		r := &region{fixture: f, hsm: &regionHSM{softHSM: f.hsm, region: name, link: key.aead, peers: []string{peer}},
			links: &fakeRegions{self: name, peers: map[string]*Service{}}}
		f.s = New(Config{Store: f.store, HSM: r.hsm, Region: name, Regions: r.links, Clock: func() time.Time { return f.now }})
		return r
	}
	east, west = mk("us-east-1", "us-west-2"), mk("us-west-2", "us-east-1")
	east.links.peers["us-west-2"] = west.s
	west.links.peers["us-east-1"] = east.s
	return east, west
}

func mrConfig(t *testing.T, f *fixture, id string) map[string]any {
	t.Helper()
	m := f.must(t, alice, "DescribeKey", map[string]any{"KeyId": id})["KeyMetadata"].(map[string]any)
	return m["MultiRegionConfiguration"].(map[string]any)
}

func TestReplicateKey(t *testing.T) {
	east, west := twoRegions(t)
	id := east.createKey(t, map[string]any{"MultiRegion": true, "Description": "primary"})
	single := east.createKey(t, map[string]any{})
	ec := map[string]string{"app": "mrk"}
	ct := east.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("east"), "EncryptionContext": ec})["CiphertextBlob"]

	// Before the replica, west knows no such key (Decrypt's answer for a
	// ciphertext of no key here).
	_, err := west.call(alice, "Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": ec})
	assert.Equal(t, "InvalidCiphertextException", exception(err))

	out := east.must(t, alice, "ReplicateKey", map[string]any{"KeyId": id, "ReplicaRegion": "us-west-2",
		"Description": "replica", "Tags": []map[string]string{{"TagKey": "where", "TagValue": "west"}}})
	m := out["ReplicaKeyMetadata"].(map[string]any)
	westARN := "arn:aws:kms:us-west-2:" + account + ":key/" + id
	eastARN := "arn:aws:kms:us-east-1:" + account + ":key/" + id
	assert.Equal(t, westARN, m["Arn"])
	assert.Equal(t, id, m["KeyId"])
	assert.Equal(t, "replica", m["Description"])
	assert.Equal(t, "Enabled", m["KeyState"])
	assert.Equal(t, []any{map[string]any{"TagKey": "where", "TagValue": "west"}}, out["ReplicaTags"])
	assert.Contains(t, out["ReplicaPolicy"], `"kms:*"`)
	replicaCfg := map[string]any{"MultiRegionKeyType": "REPLICA",
		"PrimaryKey":  map[string]any{"Arn": eastARN, "Region": "us-east-1"},
		"ReplicaKeys": []any{map[string]any{"Arn": westARN, "Region": "us-west-2"}}}
	assert.Equal(t, replicaCfg, m["MultiRegionConfiguration"])
	assert.Equal(t, replicaCfg, mrConfig(t, west.fixture, id))
	primaryCfg := map[string]any{"MultiRegionKeyType": "PRIMARY",
		"PrimaryKey":  map[string]any{"Arn": eastARN, "Region": "us-east-1"},
		"ReplicaKeys": []any{map[string]any{"Arn": westARN, "Region": "us-west-2"}}}
	assert.Equal(t, primaryCfg, mrConfig(t, east.fixture, id))
	// The primary keeps its own description and tags.
	em := east.must(t, alice, "DescribeKey", map[string]any{"KeyId": id})["KeyMetadata"].(map[string]any)
	assert.Equal(t, "primary", em["Description"])

	// Ciphertexts cross both ways.
	pt := west.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": ec})
	assert.Equal(t, []byte("east"), decodeB64(t, pt["Plaintext"]))
	assert.Equal(t, westARN, pt["KeyId"])
	ct2 := west.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("west"), "EncryptionContext": ec})["CiphertextBlob"]
	pt = east.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct2, "EncryptionContext": ec})
	assert.Equal(t, []byte("west"), decodeB64(t, pt["Plaintext"]))

	// Key state, aliases and policies are each region's own.
	west.must(t, alice, "DisableKey", map[string]any{"KeyId": id})
	_, err = west.call(alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
	assert.Equal(t, "DisabledException", exception(err))
	east.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
	west.must(t, alice, "EnableKey", map[string]any{"KeyId": id})
	west.must(t, alice, "CreateAlias", map[string]any{"AliasName": "alias/west-only", "TargetKeyId": id})
	_, err = east.call(alice, "Encrypt", map[string]any{"KeyId": "alias/west-only", "Plaintext": []byte("x")})
	assert.Equal(t, "NotFoundException", exception(err))
	west.must(t, alice, "PutKeyPolicy", map[string]any{"KeyId": id, "Policy": denyBobPolicy})
	assert.Contains(t, east.must(t, alice, "GetKeyPolicy", map[string]any{"KeyId": id})["Policy"], `"kms:*"`)

	// Rotation is managed on the primary (mrkrotation_test.go).
	for _, op := range []string{"EnableKeyRotation", "DisableKeyRotation", "RotateKeyOnDemand"} {
		_, err = west.call(alice, op, map[string]any{"KeyId": id})
		assert.Equal(t, kmsapi.UnsupportedOperation, exception(err), op)
	}

	// Refusals.
	for _, tc := range []struct {
		r    *region
		req  map[string]any
		want string
	}{
		{east, map[string]any{"KeyId": id, "ReplicaRegion": "us-west-2"}, "AlreadyExistsException"},
		{west, map[string]any{"KeyId": id, "ReplicaRegion": "us-east-1"}, kmsapi.UnsupportedOperation}, // a replica
		{east, map[string]any{"KeyId": single, "ReplicaRegion": "us-west-2"}, kmsapi.UnsupportedOperation},
		{east, map[string]any{"KeyId": id, "ReplicaRegion": "mars"}, kmsapi.ValidationException},
		{east, map[string]any{"KeyId": id}, kmsapi.ValidationException},
		{east, map[string]any{"KeyId": id, "ReplicaRegion": "us-east-1"}, kmsapi.ValidationException},
		{east, map[string]any{"KeyId": id, "ReplicaRegion": "eu-central-1"}, kmsapi.UnsupportedOperation},
		{east, map[string]any{"KeyId": "alias/west-only", "ReplicaRegion": "eu-central-1"}, "NotFoundException"},
	} {
		_, err := tc.r.call(alice, "ReplicateKey", tc.req)
		assert.Equal(t, tc.want, exception(err), "%v", tc.req)
	}
	// Bob may not replicate: the key policy decides first.
	east.must(t, alice, "PutKeyPolicy", map[string]any{"KeyId": id, "Policy": denyBobPolicy})
	_, err = east.call(bob, "ReplicateKey", map[string]any{"KeyId": id, "ReplicaRegion": "us-west-2"})
	assert.Equal(t, kmsapi.AccessDenied, exception(err))
}

// A replica's region takes it only from the primary's region, with a
// transport made for it.
func TestAcceptReplicaRefusals(t *testing.T) {
	east, west := twoRegions(t)
	id := east.createKey(t, map[string]any{"MultiRegion": true})
	k, err := east.s.loadKey(id)
	require.NoError(t, err)
	ex, err := call(context.Background(), east.s, hsmcmd.ExportReplicaRequest{Region: "us-west-2", KeyID: id, Tokens: k.rec.Tokens}, hsmcmd.ParseExportReplicaResponse)
	require.NoError(t, err)
	rep := func() *Replica {
		return &Replica{Principal: alice, KeyID: id, Account: account, KeySpec: symmetricDefault, KeyUsage: usageEncrypt,
			Origin: "AWS_KMS", PrimaryRegion: "us-east-1", Regions: []string{"us-east-1", "us-west-2"}, Transport: ex.Transport}
	}
	ctx := context.Background()
	// Claimed by another region than the primary's.
	_, err = west.s.AcceptReplica(ctx, "eu-central-1", rep())
	assert.Equal(t, kmsapi.UnsupportedOperation, exception(err))
	// A transport for another key.
	other := rep()
	other.KeyID = "mrk-00000000000000000000000000000000"
	_, err = west.s.AcceptReplica(ctx, "us-east-1", other)
	assert.Equal(t, kmsapi.KMSInternal, exception(err))
	// No account.
	noAccount := rep()
	noAccount.Account = ""
	_, err = west.s.AcceptReplica(ctx, "us-east-1", noAccount)
	assert.Equal(t, kmsapi.ValidationException, exception(err))
	// Versions that do not match the key's rotations.
	extra := rep()
	extra.Rotations = []keystore.Rotation{{Date: 1, Type: "ON_DEMAND"}}
	_, err = west.s.AcceptReplica(ctx, "us-east-1", extra)
	assert.Equal(t, kmsapi.ValidationException, exception(err))
	// A policy that locks the caller out.
	locked := rep()
	p := denyAllPolicy
	locked.Policy = &p
	_, err = west.s.AcceptReplica(ctx, "us-east-1", locked)
	assert.Equal(t, "MalformedPolicyDocumentException", exception(err))
	_, err = west.s.AcceptReplica(ctx, "us-east-1", rep())
	require.NoError(t, err)
	_, err = west.s.AcceptReplica(ctx, "us-east-1", rep())
	assert.Equal(t, "AlreadyExistsException", exception(err))
}

func TestUpdatePrimaryRegion(t *testing.T) {
	east, west := twoRegions(t)
	id := east.createKey(t, map[string]any{"MultiRegion": true})
	_, err := east.call(alice, "UpdatePrimaryRegion", map[string]any{"KeyId": id, "PrimaryRegion": "us-west-2"})
	assert.Equal(t, "NotFoundException", exception(err), "no replica there yet")
	east.must(t, alice, "ReplicateKey", map[string]any{"KeyId": id, "ReplicaRegion": "us-west-2"})

	// The region is unreachable: nothing changes anywhere.
	east.links.down = true
	_, err = east.call(alice, "UpdatePrimaryRegion", map[string]any{"KeyId": id, "PrimaryRegion": "us-west-2"})
	assert.Equal(t, kmsapi.KMSInternal, exception(err))
	assert.Equal(t, "PRIMARY", mrConfig(t, east.fixture, id)["MultiRegionKeyType"])
	assert.Equal(t, "REPLICA", mrConfig(t, west.fixture, id)["MultiRegionKeyType"])
	east.links.down = false

	east.must(t, alice, "UpdatePrimaryRegion", map[string]any{"KeyId": id, "PrimaryRegion": "us-west-2"})
	westARN := "arn:aws:kms:us-west-2:" + account + ":key/" + id
	for _, f := range []*fixture{east.fixture, west.fixture} {
		c := mrConfig(t, f, id)
		assert.Equal(t, map[string]any{"Arn": westARN, "Region": "us-west-2"}, c["PrimaryKey"])
		assert.Equal(t, []any{map[string]any{"Arn": "arn:aws:kms:us-east-1:" + account + ":key/" + id, "Region": "us-east-1"}}, c["ReplicaKeys"])
	}
	assert.Equal(t, "REPLICA", mrConfig(t, east.fixture, id)["MultiRegionKeyType"])
	assert.Equal(t, "PRIMARY", mrConfig(t, west.fixture, id)["MultiRegionKeyType"])
	// Only the primary moves the primary; then back again.
	_, err = east.call(alice, "UpdatePrimaryRegion", map[string]any{"KeyId": id, "PrimaryRegion": "us-west-2"})
	assert.Equal(t, kmsapi.UnsupportedOperation, exception(err))
	_, err = east.call(alice, "ReplicateKey", map[string]any{"KeyId": id, "ReplicaRegion": "us-west-2"})
	assert.Equal(t, kmsapi.UnsupportedOperation, exception(err))
	west.must(t, alice, "UpdatePrimaryRegion", map[string]any{"KeyId": id, "PrimaryRegion": "us-east-1"})
	assert.Equal(t, "PRIMARY", mrConfig(t, east.fixture, id)["MultiRegionKeyType"])
	_, err = east.call(alice, "UpdatePrimaryRegion", map[string]any{"KeyId": id, "PrimaryRegion": "not a region"})
	assert.Equal(t, kmsapi.ValidationException, exception(err))
}

// denyBobPolicy lets alice's account do everything but bob nothing.
const denyBobPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},` +
	`{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"}]}`

// denyAllPolicy allows nobody anything.
const denyAllPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}]}`

func decodeB64(t *testing.T, v any) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v.(string))
	require.NoError(t, err)
	return b
}

// The multi-Region condition keys: kms:MultiRegion and
// kms:MultiRegionKeyType of the key, kms:ReplicaRegion of ReplicateKey.
func TestMultiRegionConditionKeys(t *testing.T) {
	east, _ := twoRegions(t)
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + alice.ARN + `"},"Action":"kms:*","Resource":"*"},` +
		`{"Effect":"Allow","Principal":{"AWS":"` + bob.ARN + `"},"Action":"kms:Encrypt","Resource":"*","Condition":{"Bool":{"kms:MultiRegion":"true"},"StringEquals":{"kms:MultiRegionKeyType":"PRIMARY"}}},` +
		`{"Effect":"Deny","Principal":{"AWS":"` + alice.ARN + `"},"Action":"kms:ReplicateKey","Resource":"*","Condition":{"StringEquals":{"kms:ReplicaRegion":"eu-central-1"}}}]}`
	mrk := east.createKey(t, map[string]any{"MultiRegion": true, "Policy": pol})
	single := east.createKey(t, map[string]any{"Policy": pol})
	east.must(t, bob, "Encrypt", map[string]any{"KeyId": mrk, "Plaintext": []byte("x")})
	_, err := east.call(bob, "Encrypt", map[string]any{"KeyId": single, "Plaintext": []byte("x")})
	assert.Equal(t, kmsapi.AccessDenied, exception(err))
	_, err = east.call(alice, "ReplicateKey", map[string]any{"KeyId": mrk, "ReplicaRegion": "eu-central-1"})
	assert.Equal(t, kmsapi.AccessDenied, exception(err))
	east.must(t, alice, "ReplicateKey", map[string]any{"KeyId": mrk, "ReplicaRegion": "us-west-2"})
}

// A grant on a multi-Region key has a grant token that names it (version
// 2), so that RetireGrant finds the grant by its token.
func TestMultiRegionGrantToken(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, map[string]any{"MultiRegion": true})
	g := f.must(t, alice, "CreateGrant", map[string]any{"KeyId": id, "GranteePrincipal": bob.ARN, "Operations": []string{"Encrypt"}})
	tok := g["GrantToken"].(string)
	keyID, grantID, err := parseGrantToken(tok)
	require.NoError(t, err)
	assert.Equal(t, id, keyID)
	assert.Equal(t, g["GrantId"], grantID)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	require.NoError(t, err)
	assert.Equal(t, byte(2), raw[0])
	f.must(t, bob, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x"), "GrantTokens": []string{tok}})
	f.must(t, alice, "RetireGrant", map[string]any{"GrantToken": tok})
	assert.Empty(t, f.must(t, alice, "ListGrants", map[string]any{"KeyId": id})["Grants"], "retired by its token")
	// A UUID key's token is version 1, as before.
	single := f.createKey(t, map[string]any{})
	g = f.must(t, alice, "CreateGrant", map[string]any{"KeyId": single, "GranteePrincipal": bob.ARN, "Operations": []string{"Encrypt"}})
	raw, _ = base64.RawURLEncoding.DecodeString(g["GrantToken"].(string))
	assert.Equal(t, byte(1), raw[0])
}
