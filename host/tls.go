package host

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStream is a raft.StreamLayer over mutual TLS: every host presents a
// certificate of the cluster's CA and verifies its peer's.
type tlsStream struct {
	net.Listener
	cfg *tls.Config
}

func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(addr), s.cfg)
}

// newTLSTransport listens on addr with TLS and returns a raft transport.
func newTLSTransport(addr string, cfg *tls.Config) (*raft.NetworkTransport, error) {
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransport(&tlsStream{Listener: ln, cfg: cfg}, 3, 5*time.Second, io.Discard), nil
}

// LoadRaftTLS builds the mutual-TLS configuration of raft traffic from a
// certificate and key (PEM files) and the cluster's CA certificate.
func LoadRaftTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("host: raft TLS: %w", err)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("host: raft TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("host: raft TLS: no certificate in the CA file")
	}
	return RaftTLS(cert, pool), nil
}

// RaftTLS is the mutual-TLS configuration for a host with cert, trusting
// the CAs in pool, for both ends of raft connections.
func RaftTLS(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}
