package node

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// The customer key hierarchy inside the HSM (package hbk). An HBK is drawn
// from the token RNG, sealed under the active domain key into an HBK token
// for the key store, and used only as a volatile HMAC key in the token. The
// one-time key K of a ciphertext is the token's HMAC output; it lives in
// this process for one AES-GCM operation and is cleared.

// MaxHBKCache bounds the HBK keys held open in the token.
const MaxHBKCache = 4096

// ErrHBK is wrapped by refusals of an HBK token (its domain key is not
// held, or it does not authenticate).
var ErrHBK = errors.New("node: HBK token refused")

// hbkCache holds opened HBKs as token HMAC keys, by the SHA-256 of the
// HBK token they came from: a hit means those exact bytes authenticated
// before. Entries in use are never destroyed; the cache is emptied when
// the domain changes, so a token under a dropped domain key stops working.
type hbkCache struct {
	mu sync.Mutex
	m  map[[32]byte]*hbkEntry
}

type hbkEntry struct {
	key     *hsm.SecretKey
	refs    int
	evicted bool
}

func (c *hbkCache) release(e *hbkEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.evicted && e.refs == 0 {
		e.key.Destroy()
	}
}

// evictLocked drops e from the cache, destroying its key once unused.
func (c *hbkCache) evictLocked(sum [32]byte, e *hbkEntry) {
	delete(c.m, sum)
	e.evicted = true
	if e.refs == 0 {
		e.key.Destroy()
	}
}

// purge empties the cache (the domain changed).
func (c *hbkCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sum, e := range c.m {
		c.evictLocked(sum, e)
	}
}

// openHBK returns the token's HBK as a token HMAC key and the parsed
// token; the caller calls release when done.
func (n *Node) openHBK(raw []byte) (*hsm.SecretKey, *hbk.Token, func(), error) {
	t, err := hbk.ParseToken(raw)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrHBK, err)
	}
	sum := sha256.Sum256(raw)
	c := &n.hbks
	c.mu.Lock()
	if e := c.m[sum]; e != nil {
		e.refs++
		c.mu.Unlock()
		return e.key, t, func() { c.release(e) }, nil
	}
	c.mu.Unlock()

	dk, err := n.ring.Key(t.DomainKeyID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: domain key %x not held", ErrHBK, t.DomainKeyID)
	}
	v, err := t.Open(dk)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrHBK, err)
	}
	key, err := n.tok.ImportSecretKey(hsm.HMACSHA256, v)
	clear(v)
	if err != nil {
		return nil, nil, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[32]byte]*hbkEntry{}
	}
	if e := c.m[sum]; e != nil { // opened meanwhile by another request
		key.Destroy()
		e.refs++
		return e.key, t, func() { c.release(e) }, nil
	}
	if len(c.m) >= MaxHBKCache {
		for s, e := range c.m {
			c.evictLocked(s, e)
			break
		}
	}
	e := &hbkEntry{key: key, refs: 1}
	c.m[sum] = e
	return key, t, func() { c.release(e) }, nil
}

// noncePool buffers the token RNG's output for the public nonces and IVs
// of ciphertexts (never for keys): one token call serves about a hundred
// ciphertexts.
type noncePool struct {
	mu  sync.Mutex
	buf []byte
}

const noncePoolSize = 4096

// read returns n fresh bytes.
func (p *noncePool) read(t *hsm.Token, n int) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) < n {
		b, err := t.Random(noncePoolSize)
		if err != nil {
			return nil, err
		}
		p.buf = b
	}
	out := append([]byte(nil), p.buf[:n]...)
	p.buf = p.buf[n:]
	return out, nil
}

// CreateHBK draws a new HBK and its ID for the KMS key keyID and returns
// its HBK token under the active domain key.
func (n *Node) CreateHBK(keyID string) ([]byte, error) {
	if !hbk.ValidKeyID(keyID) {
		return nil, errors.New("node: invalid key ID")
	}
	raw, err := n.tok.Random(hbk.IDSize + hbk.IVSize + hbk.Size)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return n.sealHBK(keyID, nil, raw[:hbk.IDSize+hbk.IVSize], raw[hbk.IDSize+hbk.IVSize:])
}

// sealHBK seals material as key keyID's HBK token under the active domain
// key: its HBK ID is hbkID if given (a re-import keeps the first), else
// the first IDSize bytes of r, and its IV the IVSize bytes after them (r
// is from the token's RNG, drawn by the caller with whatever else it
// needs in one call).
func (n *Node) sealHBK(keyID string, hbkID, r, material []byte) ([]byte, error) {
	dkID, dk, err := n.ring.Active()
	if err != nil {
		return nil, err
	}
	var id [hbk.IDSize]byte
	var iv [hbk.IVSize]byte
	copy(id[:], r)
	copy(iv[:], r[hbk.IDSize:])
	if hbkID != nil {
		copy(id[:], hbkID)
	}
	t, err := hbk.SealToken(dk, dkID, keyID, id, iv, material)
	if err != nil {
		return nil, err
	}
	return t.Marshal()
}

// Encrypt seals plaintext under the HBK of token with the encoded
// encryption context ec and returns the ciphertext blob.
func (n *Node) Encrypt(token, ec, plaintext []byte) ([]byte, error) {
	key, t, release, err := n.openHBK(token)
	if err != nil {
		return nil, err
	}
	defer release()
	return n.seal(key, t, ec, plaintext)
}

func (n *Node) seal(key *hsm.SecretKey, t *hbk.Token, ec, plaintext []byte) ([]byte, error) {
	r, err := n.nonces.read(n.tok, hbk.NonceSize+hbk.IVSize)
	if err != nil {
		return nil, err
	}
	var nonce [hbk.NonceSize]byte
	var iv [hbk.IVSize]byte
	copy(nonce[:], r)
	copy(iv[:], r[hbk.NonceSize:])
	bl, err := hbk.Seal(key, t.KeyID, t.HBKID, nonce, iv, ec, plaintext)
	if err != nil {
		return nil, err
	}
	return bl.Marshal()
}

// GenerateDataKey draws size bytes (1 to hsmcmd.MaxRandom) from the token RNG and
// seals them like Encrypt; it returns the plaintext and the blob.
func (n *Node) GenerateDataKey(token, ec []byte, size int) (plaintext, blob []byte, err error) {
	return n.generateDataKey(token, ec, size, nil)
}

// generateDataKey is GenerateDataKey with the data key drawn already, if
// drawn is not nil: size bytes of the token RNG's output that serve this
// data key alone (dataKeyDraw cuts them to size).
func (n *Node) generateDataKey(token, ec []byte, size int, drawn []byte) (plaintext, blob []byte, err error) {
	if size < 1 || size > hsmcmd.MaxRandom {
		return nil, nil, fmt.Errorf("node: data key of %d bytes", size)
	}
	key, t, release, err := n.openHBK(token)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	if plaintext = drawn; plaintext == nil {
		if plaintext, err = n.tok.Random(size); err != nil {
			return nil, nil, err
		}
	}
	if blob, err = n.seal(key, t, ec, plaintext); err != nil {
		clear(plaintext)
		return nil, nil, err
	}
	return plaintext, blob, nil
}

// Decrypt opens blob under the HBK of token with the encoded encryption
// context ec. The blob must name the token's key and HBK.
func (n *Node) Decrypt(token, ec, blob []byte) ([]byte, error) {
	key, t, release, err := n.openHBK(token)
	if err != nil {
		return nil, err
	}
	defer release()
	return openBlob(key, t, ec, blob)
}

func openBlob(key *hsm.SecretKey, t *hbk.Token, ec, blob []byte) ([]byte, error) {
	bl, err := hbk.ParseBlob(blob)
	if err != nil {
		return nil, err
	}
	if bl.KeyID != t.KeyID || bl.HBKID != t.HBKID {
		return nil, hbk.ErrOpen
	}
	return bl.Open(key, ec)
}

// ReEncrypt opens blob under the source HBK token and context and seals
// its plaintext under the destination's, inside the HSM.
func (n *Node) ReEncrypt(srcToken, srcEC, blob, dstToken, dstEC []byte) ([]byte, error) {
	src, st, release, err := n.openHBK(srcToken)
	if err != nil {
		return nil, err
	}
	defer release()
	pt, err := openBlob(src, st, srcEC, blob)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	dst, dt, release2, err := n.openHBK(dstToken)
	if err != nil {
		return nil, err
	}
	defer release2()
	return n.seal(dst, dt, dstEC, pt)
}

// reencryptHBK re-seals an HBK token or a key token under the active
// domain key (after a domain key rotation); a token already under it is
// returned as is.
func (n *Node) reencryptHBK(raw, iv []byte) ([]byte, error) {
	var under [hbk.DKIDSize]byte
	var open func(hbk.Opener) ([]byte, error)
	var reseal func(dk hbk.Sealer, id [hbk.DKIDSize]byte, iv [hbk.IVSize]byte, v []byte) ([]byte, error)
	switch hbk.TokenType(raw) {
	case hbk.TypeKeyToken:
		t, err := hbk.ParseKeyToken(raw)
		if err != nil {
			return nil, err
		}
		under, open = t.DomainKeyID, t.Open
		reseal = func(dk hbk.Sealer, id [hbk.DKIDSize]byte, iv [hbk.IVSize]byte, v []byte) ([]byte, error) {
			out, err := hbk.SealKeyToken(dk, id, t.KeyID, t.VersionID, t.Spec, iv, v)
			if err != nil {
				return nil, err
			}
			return out.Marshal()
		}
	default:
		t, err := hbk.ParseToken(raw)
		if err != nil {
			return nil, err
		}
		under, open = t.DomainKeyID, t.Open
		reseal = func(dk hbk.Sealer, id [hbk.DKIDSize]byte, iv [hbk.IVSize]byte, v []byte) ([]byte, error) {
			out, err := hbk.SealToken(dk, id, t.KeyID, t.HBKID, iv, v)
			if err != nil {
				return nil, err
			}
			return out.Marshal()
		}
	}
	activeID, active, err := n.ring.Active()
	if err != nil {
		return nil, err
	}
	if under == activeID {
		return append([]byte(nil), raw...), nil
	}
	dk, err := n.ring.Key(under)
	if err != nil {
		return nil, err
	}
	v, err := open(dk)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed key token", session.ErrAuthentication)
	}
	defer clear(v)
	var nv [hbk.IVSize]byte
	copy(nv[:], iv)
	return reseal(active, activeID, nv, v)
}

// isHBKToken reports whether raw has an HBK token's or key token's header.
func isHBKToken(raw []byte) bool { return hbk.TokenType(raw) != 0 }

func (n *Node) keyCommands(m handlers) {
	m[hsmcmd.CreateHBK] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseCreateHBKRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		tok, err := n.CreateHBK(req.KeyID)
		if err != nil {
			return nil, err // an invalid key ID included, as always
		}
		return hsmcmd.CreateHBKResponse{Token: tok}.Marshal()
	}
	m[hsmcmd.Encrypt] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseEncryptRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		blob, err := n.Encrypt(req.Token, req.Context, req.Plaintext)
		if err != nil {
			return nil, refused(err)
		}
		return hsmcmd.EncryptResponse{Blob: blob}.Marshal()
	}
	m[hsmcmd.GenerateDataKey] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseGenerateDataKeyRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		return n.serveGenerateDataKey(req, nil)
	}
	m[hsmcmd.Decrypt] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseDecryptRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		pt, err := n.Decrypt(req.Token, req.Context, req.Blob)
		if err != nil {
			return nil, refused(err)
		}
		defer clear(pt)
		return hsmcmd.DecryptResponse{Plaintext: pt}.Marshal()
	}
	m[hsmcmd.ReEncrypt] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseReEncryptRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		blob, err := n.ReEncrypt(req.SourceToken, req.SourceContext, req.Blob, req.DestinationToken, req.DestinationContext)
		if err != nil {
			return nil, refused(err)
		}
		return hsmcmd.ReEncryptResponse{Blob: blob}.Marshal()
	}
}

// serveGenerateDataKey answers a GenerateDataKey command, with its data
// key drawn already if drawn is not nil (generateDataKey).
func (n *Node) serveGenerateDataKey(req *hsmcmd.GenerateDataKeyRequest, drawn []byte) ([]byte, error) {
	pt, blob, err := n.generateDataKey(req.Token, req.Context, int(req.Size), drawn)
	if err != nil {
		return nil, refused(err)
	}
	defer clear(pt)
	if !req.WithPlaintext {
		pt = nil
	}
	return hsmcmd.GenerateDataKeyResponse{Plaintext: pt, Blob: blob}.Marshal()
}

// dataKeyDraw prepares a batch (batchPrep): its GenerateDataKey commands
// draw their data keys in one call to the token RNG, where each would
// make its own (C_GenerateRandom, a few µs; docs/benchmarks.md). Each
// command gets bytes of the draw that no other command sees, and done
// clears them all once the batch is answered. A batch with fewer than two
// such commands, or a draw that fails (the token's, or one past
// hsm.MaxRandomSize, which Token.Random refuses without a token call), is
// served as it came: each command draws alone and reports its own failure.
func (n *Node) dataKeyDraw(items []hsmcmd.BatchItem) (serve []func() ([]byte, error), done func()) {
	count := 0
	for _, it := range items {
		if it.Code == hsmcmd.GenerateDataKey {
			count++
		}
	}
	if count < 2 {
		return nil, nil // nothing parsed or allocated for a batch of other commands
	}
	reqs := make([]*hsmcmd.GenerateDataKeyRequest, len(items))
	parsed, total := 0, 0
	for i, it := range items {
		if it.Code != hsmcmd.GenerateDataKey {
			continue
		}
		if r, err := hsmcmd.ParseGenerateDataKeyRequest(it.Command); err == nil {
			reqs[i] = r
			parsed++
			total += int(r.Size)
		}
	}
	if parsed < 2 {
		return nil, nil
	}
	buf, err := n.tok.Random(total)
	if err != nil {
		return nil, nil
	}
	serve = make([]func() ([]byte, error), len(items))
	rest := buf
	for i, r := range reqs {
		if r == nil {
			continue
		}
		drawn := rest[:r.Size:r.Size]
		rest = rest[r.Size:]
		serve[i] = func() ([]byte, error) { return n.serveGenerateDataKey(r, drawn) }
	}
	return serve, func() { clear(buf) }
}
