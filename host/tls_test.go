package host_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/quorum"
)

// testCA issues certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trent test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: k, pool: pool}
}

func (ca *testCA) issue(t *testing.T, name string) tls.Certificate {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// Raft over mutual TLS: the hosts replicate; a peer without a certificate
// of the cluster's CA is refused.
func TestRaftOverTLS(t *testing.T) {
	alice, bob := newOp(t, "alice", quorum.RoleKMSOperator), newOp(t, "bob", quorum.RoleKMSOperator)
	hk := []*opKey{newOp(t, "host-1", quorum.RoleServiceHost), newOp(t, "host-2", quorum.RoleServiceHost)}
	genesis := genesisToken(t, alice, bob, hk[0], hk[1])
	ca := newTestCA(t)
	var hosts []*host.Host
	for _, k := range hk {
		h, err := host.Start(host.Config{ID: k.id, Signer: k.k, Dir: t.TempDir(), RaftAddr: "127.0.0.1:0",
			APIAddr: "127.0.0.1:0", RaftTLS: host.RaftTLS(ca.issue(t, k.id), ca.pool)})
		require.NoError(t, err)
		t.Cleanup(func() { h.Close() })
		hosts = append(hosts, h)
	}
	for _, a := range hosts {
		for _, b := range hosts {
			a.SetPeer(b.ID(), b.APIURL())
		}
	}
	require.NoError(t, hosts[0].Bootstrap(genesis))
	require.NoError(t, hosts[1].Join(context.Background(), hosts[0].APIURL()))
	require.Eventually(t, func() bool {
		st, _ := hosts[1].FSM().State()
		return st != nil && st.Version == 1
	}, 10*time.Second, 10*time.Millisecond, "replicated over TLS")

	// A client with the CA but no certificate of its own is refused.
	conn, err := tls.Dial("tcp", hosts[0].RaftAddr(), &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS13})
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	require.Error(t, err)
}
