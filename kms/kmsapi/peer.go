package kmsapi

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
)

// A follower forwards a key-store write to the leader over the host API,
// so the leader sees the follower's address, not the client's. The
// follower vouches for the client in the X-Trent-Client header:
//
//	u8 version (1) ‖ v8 host ID ‖ v8 client IP (text) ‖ u8 secure transport (0 or 1) ‖ v8 signature
//
// base64 (standard, padded), the signature by the host's identity key (the
// one its joins are signed with) over SHA-384("trent/v1 kms forwarded
// client" ‖ 0x00 ‖ everything before it ‖ SHA-256(Authorization header) ‖
// SHA-256(body)). The leader believes it only from a service host of the
// domain and only for the request it was made for: the Authorization
// header holds the request's SigV4 signature, which covers its date and
// body, so a voucher cannot be moved to another request, and replaying
// the whole request gives it the source it had. A forwarded request
// without a voucher has the forwarding connection's address as its
// source; a client's own X-Trent-Client header on the KMS port is dropped
// (before forwarding) or ignored (serving it here).
const labelForwardedClient = "trent/v1 kms forwarded client"

const clientHeader = "X-Trent-Client"

// voucherVersion is the voucher encoding's version.
const voucherVersion = 1

// Peer is a host's part in forwarding: its ID and identity key, to vouch
// for the clients of the requests it forwards, and the service hosts'
// keys, to check its peers' vouchers.
type Peer struct {
	ID      string
	Signer  crypto.Signer
	HostKey func(id string) (*ecdsa.PublicKey, error) // a service host's key; an error for anyone else
}

// client is where a request came from.
type client struct {
	ip     string
	secure bool
}

func clientDigest(unsigned []byte, r *http.Request, body []byte) []byte {
	a := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	b := sha256.Sum256(body)
	return wire.LabelledHash(labelForwardedClient, unsigned, a[:], b[:])
}

// vouch makes the X-Trent-Client header for request r (with body) from c.
func (p *Peer) vouch(c client, r *http.Request, body []byte) (string, error) {
	var b cryptobyte.Builder
	add := func(s string) { b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) }) }
	b.AddUint8(voucherVersion)
	add(p.ID)
	add(c.ip)
	secure := uint8(0)
	if c.secure {
		secure = 1
	}
	b.AddUint8(secure)
	unsigned, err := b.Bytes()
	if err != nil {
		return "", err
	}
	sig, err := p.Signer.Sign(nil, clientDigest(unsigned, r, body), crypto.SHA384)
	if err != nil {
		return "", fmt.Errorf("kmsapi: vouch: %w", err)
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	out, err := b.Bytes()
	return base64.StdEncoding.EncodeToString(out), err
}

var errVoucher = errors.New("the client voucher does not verify")

// check verifies a peer's X-Trent-Client header for request r (with body)
// and returns the client it vouches for.
func (p *Peer) check(header string, r *http.Request, body []byte) (client, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(header)
	if err != nil {
		return client{}, errVoucher
	}
	s := cryptobyte.String(raw)
	var id, ip, sig cryptobyte.String
	var version, secure uint8
	if !s.ReadUint8(&version) || version != voucherVersion || !s.ReadUint8LengthPrefixed(&id) || !s.ReadUint8LengthPrefixed(&ip) || !s.ReadUint8(&secure) || secure > 1 {
		return client{}, errVoucher
	}
	unsigned := raw[:len(raw)-len(s)]
	if !s.ReadUint8LengthPrefixed(&sig) || !s.Empty() {
		return client{}, errVoucher
	}
	if len(ip) > 0 { // empty: the follower knew no address (aws:SourceIp absent)
		if _, err := netip.ParseAddr(string(ip)); err != nil {
			return client{}, errVoucher
		}
	}
	key, err := p.HostKey(string(id))
	if err != nil {
		return client{}, fmt.Errorf("%w: %q is not a service host", errVoucher, string(id))
	}
	if !ecdsa.VerifyASN1(key, clientDigest(unsigned, r, body), sig) {
		return client{}, errVoucher
	}
	return client{ip: string(ip), secure: secure == 1}, nil
}
