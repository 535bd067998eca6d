package host_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

// regionCluster is one region: a test cluster serving the KMS API in its
// region, reachable by the other region's hosts.
type regionCluster struct {
	*testCluster
	region        string
	regionURLs    []string
	alice         *kms.Client
	ca, cert, key []byte // its region identity
}

// twoRegionClusters starts us-east-1 (domain "east") and us-west-2
// (domain "west"), two hosts and two HSMs each, on real SoftHSM tokens
// and raft over TCP, each with its own region identity and the other's
// CA; neither domain trusts the other yet.
func twoRegionClusters(t *testing.T) (east, west *regionCluster) {
	store := softhsmtest.NewStore(t)
	type ident struct{ ca, cert, key []byte }
	ids := map[string]ident{}
	for _, r := range []string{"us-east-1", "us-west-2"} {
		ca, cert, key, err := host.NewRegionIdentity(r)
		require.NoError(t, err)
		ids[r] = ident{ca, cert, key}
	}
	mk := func(region, peer, name string) *regionCluster {
		creds := &kmsapi.Credentials{Region: region, Credentials: testCreds.Credentials}
		tlsCfg, err := host.RegionTLS(ids[region].cert, ids[region].key, ids[peer].ca)
		require.NoError(t, err)
		c := newNamedCluster(t, store.Dir, name, name, 2, 2, func(hc *host.Config) {
			hc.Credentials, hc.KMSAddr = creds, "127.0.0.1:0"
			hc.RegionTLS, hc.RegionAddr = tlsCfg, "127.0.0.1:0"
		})
		cr := testCreds.Credentials[0]
		rc := &regionCluster{testCluster: c, region: region,
			alice: kmsClient(c.hosts[0].KMSURL(), cr.AccessKeyID, cr.SecretAccessKey, region),
			ca:    ids[region].ca, cert: ids[region].cert, key: ids[region].key}
		for i := len(c.hosts) - 1; i >= 0; i-- { // the second host first: a follower, most often
			rc.regionURLs = append(rc.regionURLs, c.hosts[i].RegionURL())
		}
		return rc
	}
	east, west = mk("us-east-1", "us-west-2", "east"), mk("us-west-2", "us-east-1", "west")
	for _, pair := range [][2]*regionCluster{{east, west}, {west, east}} {
		for _, h := range pair[0].hosts {
			h.SetPeerRegion(pair[1].region, pair[1].regionURLs)
		}
	}
	return east, west
}

// trust submits SetPeerRegion to c's domain: peer's region, domain and
// member HSMs, signed by c's two operators.
func (c *regionCluster) trust(t *testing.T, peer *regionCluster, peerDomain string) {
	p := domain.PeerRegion{Region: peer.region, Domain: peerDomain}
	for _, h := range peer.hsms {
		id := h.n.Identity()
		p.Members = append(p.Members, session.Member{ID: h.n.ID(), Signing: id.Signing.PublicKey(), Agreement: id.Agreement.PublicKey()})
	}
	slices.SortFunc(p.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	params, err := domain.ParamsPeerRegion(p)
	require.NoError(t, err)
	st, _ := c.hosts[0].FSM().State()
	_, err = c.hosts[0].Submit(context.Background(), signed(t, st.Name, st.Version, quorum.SetPeerRegion, params, c.testCluster.alice, c.testCluster.bob))
	require.NoError(t, err)
}

// A multi-Region key made in one cluster is replicated to another, whose
// HSMs take its material only once both domains trust each other; then
// each region decrypts the other's ciphertexts, and UpdatePrimaryRegion
// moves the primary.
func TestMultiRegionKeysAcrossTwoClusters(t *testing.T) {
	east, west := twoRegionClusters(t)
	ctx := context.Background()

	mk, err := east.alice.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), Description: aws.String("primary")})
	require.NoError(t, err)
	id := *mk.KeyMetadata.KeyId
	require.True(t, strings.HasPrefix(id, "mrk-"), id)
	require.True(t, *mk.KeyMetadata.MultiRegion)
	assert.Equal(t, types.MultiRegionKeyTypePrimary, mk.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType)
	assert.Equal(t, "us-east-1", *mk.KeyMetadata.MultiRegionConfiguration.PrimaryKey.Region)
	assert.Contains(t, *mk.KeyMetadata.Arn, ":us-east-1:")
	ec := map[string]string{"app": "mrk"}
	fromEast, err := east.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: &id, Plaintext: []byte("made in east"), EncryptionContext: ec})
	require.NoError(t, err)

	// Neither domain trusts the other: east's HSMs do not wrap for west.
	_, err = east.alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-west-2")})
	require.Error(t, err)
	assert.Equal(t, "KMSInternalException", apiCode(t, err))
	// East trusts west, west not yet east: west's HSMs refuse the transport.
	east.trust(t, west, "west")
	_, err = east.alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-west-2")})
	require.Error(t, err)
	assert.Equal(t, "KMSInternalException", apiCode(t, err))
	_, err = west.alice.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &id})
	assert.Equal(t, "NotFoundException", apiCode(t, err))

	west.trust(t, east, "east")
	start := time.Now()
	rep, err := east.alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-west-2"),
		Description: aws.String("replica"), Tags: []types.Tag{{TagKey: aws.String("where"), TagValue: aws.String("west")}}})
	require.NoError(t, err)
	t.Logf("ReplicateKey (an HSM's transport, the other region's HSM, both commits): %v", time.Since(start))
	assert.Contains(t, *rep.ReplicaKeyMetadata.Arn, ":us-west-2:")
	assert.Equal(t, "replica", *rep.ReplicaKeyMetadata.Description)
	assert.Equal(t, types.MultiRegionKeyTypeReplica, rep.ReplicaKeyMetadata.MultiRegionConfiguration.MultiRegionKeyType)
	require.Len(t, rep.ReplicaTags, 1)

	// West answers in its own region, and decrypts east's ciphertext.
	d, err := west.alice.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &id})
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:kms:us-west-2:"+acctA+":key/"+id, *d.KeyMetadata.Arn)
	assert.Equal(t, types.MultiRegionKeyTypeReplica, d.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType)
	assert.Equal(t, "us-east-1", *d.KeyMetadata.MultiRegionConfiguration.PrimaryKey.Region)
	pt, err := west.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: fromEast.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, "made in east", string(pt.Plaintext))
	fromWest, err := west.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: &id, Plaintext: []byte("made in west"), EncryptionContext: ec})
	require.NoError(t, err)
	pt, err = east.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: fromWest.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, "made in west", string(pt.Plaintext))
	d, err = east.alice.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &id})
	require.NoError(t, err)
	require.Len(t, d.KeyMetadata.MultiRegionConfiguration.ReplicaKeys, 1)
	assert.Equal(t, "us-west-2", *d.KeyMetadata.MultiRegionConfiguration.ReplicaKeys[0].Region)

	// The replica's record holds no HBK of east's token: it is sealed
	// under west's domain key.
	eastRec, _ := east.hosts[0].FSM().Key("k/" + id)
	westRec, _ := west.hosts[0].FSM().Key("k/" + id)
	require.NotEmpty(t, westRec)
	assert.False(t, bytes.Equal(eastRec, westRec))

	// West's audit trail records the replica's creation, by alice, from
	// us-east-1.
	found := false
	for _, h := range west.hosts {
		data, _ := os.ReadFile(h.AuditFile())
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, `"eventName":"ReplicateKey"`) && strings.Contains(line, id) &&
				strings.Contains(line, "trent peer region us-east-1") && strings.Contains(line, "user/alice") &&
				!strings.Contains(line, `"errorCode"`) {
				found = true
			}
		}
	}
	assert.True(t, found, "no ReplicateKey event in us-west-2's audit trail")

	// A second ReplicateKey: the replica exists.
	_, err = east.alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-west-2")})
	assert.Equal(t, "AlreadyExistsException", apiCode(t, err))

	// UpdatePrimaryRegion, through a follower of east (forwarded to its
	// leader).
	cr := testCreds.Credentials[0]
	follower := kmsClient(east.hosts[1].KMSURL(), cr.AccessKeyID, cr.SecretAccessKey, "us-east-1")
	_, err = follower.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: &id, PrimaryRegion: aws.String("us-west-2")})
	require.NoError(t, err)
	d, err = west.alice.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &id})
	require.NoError(t, err)
	assert.Equal(t, types.MultiRegionKeyTypePrimary, d.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType)
	d, err = east.alice.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &id})
	require.NoError(t, err)
	assert.Equal(t, types.MultiRegionKeyTypeReplica, d.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType)
	assert.Equal(t, "us-west-2", *d.KeyMetadata.MultiRegionConfiguration.PrimaryKey.Region)
	_, err = east.alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-west-2")})
	assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))
}

// The peer-region endpoint serves only the other region's hosts: a client
// certificate of an unknown CA, or of the region's own identity (its CA is
// not a peer's), fails the handshake; the peer's requests are parsed
// strictly and served on the leader only.
func TestRegionEndpointRefusals(t *testing.T) {
	east, west := twoRegionClusters(t)
	waitLeader(t, east.hosts[0])
	post := func(url string, cert, key []byte, body string) (int, string, error) {
		cfg, err := host.RegionTLS(cert, key, east.ca)
		require.NoError(t, err)
		cfg.ServerName = "us-east-1"
		cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		defer cl.CloseIdleConnections()
		resp, err := cl.Post(url+"/trent/v1/region/replicate", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	leader, follower := east.hosts[0].RegionURL(), east.hosts[1].RegionURL()
	_, strangerCert, strangerKey, err := host.NewRegionIdentity("us-west-2")
	require.NoError(t, err)
	_, _, err = post(leader, strangerCert, strangerKey, "{}")
	require.Error(t, err, "a client certificate of an unknown CA")
	_, _, err = post(leader, east.cert, east.key, "{}")
	require.Error(t, err, "east's own identity is no peer's")

	code, body, err := post(leader, west.cert, west.key, `{"key_id":"x","key_id":"y"}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "ValidationException", "a duplicate member")
	code, body, err = post(leader, west.cert, west.key, `{"Key_id":"x"}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "ValidationException", "a member name of another case")
	// A replica claimed for a primary in another region than the caller's.
	code, body, err = post(leader, west.cert, west.key, `{"key_id":"mrk-00000000000000000000000000000000","primary_region":"eu-central-1"}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "UnsupportedOperationException")
	code, _, err = post(follower, west.cert, west.key, `{}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusMisdirectedRequest, code, "a follower sends the caller to the next host")
}
