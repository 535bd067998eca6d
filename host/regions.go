package host

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/trentkms/trent/audit"
	"github.com/trentkms/trent/internal/strictjson"
	"github.com/trentkms/trent/kms"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Peer regions (docs/protocol.md, Multi-Region keys): the hosts of one
// region's cluster reach the hosts of another's over HTTPS with mutual
// TLS. A region's identity is a certificate whose Subject CommonName and
// DNS name are the region's name (us-east-1), from a CA the other regions
// trust: a host presents it as a client and as a server, a client checks
// that the server's certificate names the region it called, and a server
// takes the calling region from the client certificate's CommonName,
// which must be one of its configured peer regions. The requests are the
// kms.Regions calls, as strict JSON:
//
//	POST /trent/v1/region/replicate  kms.Replica        → kms.ReplicaResult
//	POST /trent/v1/region/primary    kms.PrimaryUpdate  → {}
//	POST /trent/v1/region/rotation   kms.RotationSync   → {}
//
// A KMS exception comes back as the KMS API's error body with its
// status. They are served on the region's raft leader; another host
// answers 421 and the caller tries the region's next host.

const (
	pathReplicate = "/trent/v1/region/replicate"
	pathPrimary   = "/trent/v1/region/primary"
	pathRotation  = "/trent/v1/region/rotation"
	// maxRegionBody bounds a request or answer between regions: a
	// transport (hsmcmd.MaxReplicaTransport) in base64, and the rest.
	maxRegionBody = 2 << 20
	// regionTimeout bounds one call to a peer region.
	regionTimeout = 30 * time.Second
)

// LoadRegionTLS builds the mutual-TLS configuration of peer-region
// traffic from this region's certificate and key (PEM files; CommonName
// and a DNS name: the region's name) and the peer regions' CA
// certificates (one PEM file, any number).
func LoadRegionTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	var files [3][]byte
	for i, f := range []string{certFile, keyFile, caFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("host: region TLS: %w", err)
		}
		files[i] = b
	}
	return RegionTLS(files[0], files[1], files[2])
}

// regions is kms.Regions over the peer regions' hosts.
type regions struct{ h *Host }

func (r regions) Peers() []string {
	r.h.regionMu.RLock()
	defer r.h.regionMu.RUnlock()
	return slices.Sorted(maps.Keys(r.h.peerURLs))
}

// peerRegion returns the URLs of a peer region's hosts (nil if it is
// none).
func (h *Host) peerRegion(region string) []string {
	h.regionMu.RLock()
	defer h.regionMu.RUnlock()
	return h.peerURLs[region]
}

// SetPeerRegion sets a peer region's hosts' peer-region URLs (tried in
// order), or with none removes the region, as Config.PeerRegions does at
// start.
func (h *Host) SetPeerRegion(region string, urls []string) {
	h.regionMu.Lock()
	defer h.regionMu.Unlock()
	if len(urls) == 0 {
		delete(h.peerURLs, region)
		return
	}
	h.peerURLs[region] = slices.Clone(urls)
}

func (r regions) Replicate(ctx context.Context, region string, rep *kms.Replica) (*kms.ReplicaResult, error) {
	out := &kms.ReplicaResult{}
	if err := r.post(ctx, region, pathReplicate, rep, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (r regions) UpdatePrimary(ctx context.Context, region string, up *kms.PrimaryUpdate) error {
	return r.post(ctx, region, pathPrimary, up, &struct{}{})
}

func (r regions) SyncRotation(ctx context.Context, region string, sy *kms.RotationSync) error {
	return r.post(ctx, region, pathRotation, sy, &struct{}{})
}

// errRegionDown answers when no host of a peer region served a call: the
// call may or may not have taken effect there, as with any timeout.
func errRegionDown(region string) error {
	return &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500, Message: "the peer region " + region + " did not answer; retry"}
}

// post sends a call to the region's hosts in turn until its leader
// answers.
func (r regions) post(ctx context.Context, region, path string, in, out any) error {
	urls := r.h.peerRegion(region)
	if len(urls) == 0 || r.h.cfg.RegionTLS == nil {
		return kmsapi.Errorf(kmsapi.UnsupportedOperation, "no peer region %s is configured", region)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	cfg := r.h.cfg.RegionTLS.Clone()
	cfg.ServerName = region // the server's certificate must name the region called
	client := &http.Client{Timeout: regionTimeout, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			r.h.log.Info("peer region", "region", region, "url", u, "err", err)
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxRegionBody+1))
		resp.Body.Close()
		if err != nil || len(data) > maxRegionBody {
			continue
		}
		switch {
		case resp.StatusCode == http.StatusMisdirectedRequest:
			continue // not the leader: the next host
		case resp.StatusCode == http.StatusOK:
			if err := strictjson.Unmarshal(data, maxRegionBody, out); err != nil {
				return fmt.Errorf("host: peer region %s: %w", region, err)
			}
			return nil
		}
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) != nil || e.Type == "" {
			continue
		}
		return &kmsapi.Error{Type: e.Type, Message: e.Message, Status: resp.StatusCode}
	}
	return errRegionDown(region)
}

// regionHandler serves the peer regions' calls.
func (h *Host) regionHandler() http.Handler {
	mux := http.NewServeMux()
	serve := func(path, op string, f func(ctx context.Context, from string, body []byte) (any, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			from, err := h.callingRegion(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			if !h.IsLeader() {
				http.Error(w, "host: not the raft leader", http.StatusMisdirectedRequest)
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegionBody))
			if err != nil {
				writeKMSError(w, kmsapi.Errorf(kmsapi.ValidationException, "request too large"))
				return
			}
			out, err := f(r.Context(), from, body)
			h.auditRegion(r, op, from, body, err)
			var ke *kmsapi.Error
			switch {
			case errors.As(err, &ke):
				writeKMSError(w, ke)
				return
			case err != nil:
				h.log.Info("peer region request", "from", from, "path", path, "err", err)
				writeKMSError(w, &kmsapi.Error{Type: kmsapi.KMSInternal, Status: 500, Message: "internal error"})
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(out)
		})
	}
	serve(pathReplicate, "ReplicateKey", func(ctx context.Context, from string, body []byte) (any, error) {
		rep := &kms.Replica{}
		if err := strictjson.Unmarshal(body, maxRegionBody, rep); err != nil {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "%v", err)
		}
		return h.service.AcceptReplica(ctx, from, rep)
	})
	serve(pathPrimary, "UpdatePrimaryRegion", func(ctx context.Context, from string, body []byte) (any, error) {
		up := &kms.PrimaryUpdate{}
		if err := strictjson.Unmarshal(body, maxRegionBody, up); err != nil {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "%v", err)
		}
		return struct{}{}, h.service.AcceptPrimary(ctx, from, up)
	})
	// CloudTrail's name for the synchronization of a multi-Region key's
	// shared properties.
	serve(pathRotation, "SynchronizeMultiRegionKey", func(ctx context.Context, from string, body []byte) (any, error) {
		sy := &kms.RotationSync{}
		if err := strictjson.Unmarshal(body, maxRegionBody, sy); err != nil {
			return nil, kmsapi.Errorf(kmsapi.ValidationException, "%v", err)
		}
		return struct{}{}, h.service.AcceptRotation(ctx, from, sy)
	})
	return mux
}

// auditRegion records a peer region's request in this region's audit
// trail, as the KMS API records its own: eventName the KMS operation it
// serves (ReplicateKey, UpdatePrimaryRegion, SynchronizeMultiRegionKey), the region's name, the
// caller the peer region names for ReplicateKey, the key, the calling
// region as userAgent, the outcome. The transport is not recorded.
func (h *Host) auditRegion(r *http.Request, op, from string, body []byte, err error) {
	if h.audit == nil {
		return
	}
	var req struct {
		Principal     *kmsapi.Principal `json:"principal"`
		KeyID         string            `json:"key_id"`
		Account       string            `json:"account"`
		PrimaryRegion string            `json:"primary_region"`
	}
	json.Unmarshal(body, &req) // what parsed strictly, or a refusal's best effort
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	region := h.service.Region()
	e := &audit.Event{EventVersion: audit.Version, EventTime: time.Now().UTC(), EventSource: audit.Source,
		EventType: audit.EventType, EventName: op, AWSRegion: region, SourceIPAddress: ip,
		UserAgent: "trent peer region " + from, RequestID: kmsapi.RequestID(), EventID: kmsapi.RequestID(),
		RequestParameters: map[string]any{"keyId": req.KeyID, "primaryRegion": req.PrimaryRegion, "fromRegion": from}}
	if req.Principal != nil {
		p := req.Principal
		e.UserIdentity = &audit.UserIdentity{Type: kmsapi.IdentityType(p.ARN), ARN: p.ARN, AccountID: p.AccountID, AccessKeyID: p.AccessKeyID}
	}
	if req.KeyID != "" && req.Account != "" {
		e.KeyID = "arn:aws:kms:" + region + ":" + req.Account + ":key/" + req.KeyID
	}
	var ke *kmsapi.Error
	switch {
	case errors.As(err, &ke):
		e.ErrorCode, e.ErrorMessage = ke.Type, ke.Message
	case err != nil:
		e.ErrorCode = kmsapi.KMSInternal
	}
	if werr := h.audit.Write(e); werr != nil {
		h.log.Info("audit", "err", werr)
	}
}

// callingRegion is the peer region whose certificate the client
// presented (verified against the region CAs by the TLS handshake).
func (h *Host) callingRegion(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return "", errors.New("host: no verified client certificate")
	}
	from := r.TLS.VerifiedChains[0][0].Subject.CommonName
	if h.peerRegion(from) == nil || from == h.service.Region() {
		return "", fmt.Errorf("host: %q is not a peer region", from)
	}
	return from, nil
}

func writeKMSError(w http.ResponseWriter, e *kmsapi.Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": e.Type, "message": e.Message})
}

// startRegions serves the peer-region API on RegionAddr.
func (h *Host) startRegions() error {
	if h.cfg.RegionAddr == "" {
		return nil
	}
	if h.cfg.RegionTLS == nil {
		return errors.New("host: a peer-region listener needs RegionTLS")
	}
	ln, err := net.Listen("tcp", h.cfg.RegionAddr)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.regionLn = ln
	h.region = &http.Server{Handler: h.regionHandler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: h.cfg.RegionTLS.Clone()}
	h.wg.Go(func() { h.region.ServeTLS(ln, "", "") })
	return nil
}

// RegionURL is the host's peer-region API URL ("" if it serves none).
func (h *Host) RegionURL() string {
	if h.regionLn == nil {
		return ""
	}
	return "https://" + h.regionLn.Addr().String()
}

// NewRegionIdentity makes a region's peer-region TLS identity for dev
// clusters and tests: a CA of its own (ECDSA P-256, PEM) and a
// certificate it issues for the region (CommonName and DNS name: region;
// client and server authentication; ten years) with its key (PKCS#8
// PEM). Other regions trust the CA; production regions use their own
// PKI.
func NewRegionIdentity(region string) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		return n
	}
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "trent region CA " + region},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: region}, DNSNames: []string{region},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), nil
}

// RegionTLS is the mutual-TLS configuration of a region's identity
// (certPEM, keyPEM) trusting the peer regions' CAs (PEM, any number).
func RegionTLS(certPEM, keyPEM, peerCAs []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("host: region TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(peerCAs) {
		return nil, errors.New("host: region TLS: no peer CA certificate")
	}
	return RaftTLS(cert, pool), nil
}
