package node

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// Customer asymmetric and HMAC keys. The key material is drawn from the
// token RNG (Go's key generation reading the token), sealed under the
// active domain key in a key token (package hbk) for the raft key store,
// and used in this process: opened per use into a bounded cache of parsed
// keys, operations by Go's crypto. docs/hsm-boundary.md says why these are
// not token objects yet.

// ErrKeyUse is wrapped when a key cannot do what a command asks (another
// spec's algorithm, a wrong length).
var ErrKeyUse = errors.New("node: the key cannot do that")

func hmacHash(spec uint8) (func() hash.Hash, int) {
	switch spec {
	case hsmcmd.SpecHMAC224:
		return sha256.New224, 28
	case hsmcmd.SpecHMAC256:
		return sha256.New, 32
	case hsmcmd.SpecHMAC384:
		return sha512.New384, 48
	case hsmcmd.SpecHMAC512:
		return sha512.New, 64
	}
	return nil, 0
}

func curveOf(spec uint8) elliptic.Curve {
	switch spec {
	case hsmcmd.SpecECCP256:
		return elliptic.P256()
	case hsmcmd.SpecECCP384:
		return elliptic.P384()
	case hsmcmd.SpecECCP521:
		return elliptic.P521()
	}
	return nil
}

func rsaBits(spec uint8) int {
	switch spec {
	case hsmcmd.SpecRSA2048:
		return 2048
	case hsmcmd.SpecRSA3072:
		return 3072
	case hsmcmd.SpecRSA4096:
		return 4096
	case hsmcmd.SpecWrapRSA2048:
		return 2048
	case hsmcmd.SpecWrapRSA3072:
		return 3072
	case hsmcmd.SpecWrapRSA4096:
		return 4096
	}
	return 0
}

// generate makes a key of spec from the token RNG: its material (PKCS#8
// DER, or the raw HMAC key) and public key (DER SubjectPublicKeyInfo;
// empty for HMAC).
func (n *Node) generate(spec uint8) (material, public []byte, err error) {
	rng := n.tok.Reader()
	var priv any
	switch {
	case rsaBits(spec) > 0:
		k, err := rsa.GenerateKey(rng, rsaBits(spec))
		if err != nil {
			return nil, nil, err
		}
		priv = k
		public, err = x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			return nil, nil, err
		}
	case curveOf(spec) != nil:
		k, err := ecdsa.GenerateKey(curveOf(spec), rng)
		if err != nil {
			return nil, nil, err
		}
		priv = k
		if public, err = x509.MarshalPKIXPublicKey(&k.PublicKey); err != nil {
			return nil, nil, err
		}
	case hsmcmd.MLDSAScheme(spec) != nil:
		return generateMLDSA(spec, rng)
	case spec == hsmcmd.SpecSECP256K1:
		return n.generateSecp256k1()
	default:
		_, size := hmacHash(spec)
		if size == 0 {
			return nil, nil, fmt.Errorf("%w: key spec %d", ErrKeyUse, spec)
		}
		material, err = n.tok.Random(size)
		return material, nil, err
	}
	material, err = x509.MarshalPKCS8PrivateKey(priv)
	return material, public, err
}

// CreateKeyPair makes a key of spec for keyID and returns its key token
// under the active domain key and its public key (DER
// SubjectPublicKeyInfo; empty for HMAC keys).
func (n *Node) CreateKeyPair(spec uint8, keyID string) (token, public []byte, err error) {
	if !hbk.ValidKeyID(keyID) {
		return nil, nil, errors.New("node: invalid key ID")
	}
	material, public, err := n.generate(spec)
	if err != nil {
		return nil, nil, err
	}
	defer clear(material)
	token, err = n.sealKeyToken(spec, keyID, material)
	return token, public, err
}

// sealKeyToken seals material as a key token of spec for keyID under
// the active domain key.
func (n *Node) sealKeyToken(spec uint8, keyID string, material []byte) ([]byte, error) {
	dkID, dk, err := n.ring.Active()
	if err != nil {
		return nil, err
	}
	r, err := n.tok.Random(hbk.IDSize + hbk.IVSize)
	if err != nil {
		return nil, err
	}
	var vid [hbk.IDSize]byte
	var iv [hbk.IVSize]byte
	copy(vid[:], r)
	copy(iv[:], r[hbk.IDSize:])
	t, err := hbk.SealKeyToken(dk, dkID, keyID, vid, spec, iv, material)
	if err != nil {
		return nil, err
	}
	return t.Marshal()
}

// customerKey is an opened key token: the parsed key.
type customerKey struct {
	keyID string // the KMS key the token was made for
	spec  uint8
	priv  crypto.PrivateKey // *rsa.PrivateKey or *ecdsa.PrivateKey
	mac   []byte            // HMAC key
}

// keyCache holds opened key tokens by the SHA-256 of their bytes; it is
// emptied when the domain changes.
type keyCache struct {
	mu sync.Mutex
	m  map[[32]byte]*customerKey
}

func (c *keyCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.m {
		clear(k.mac)
	}
	c.m = nil
}

// openKey opens a key token (from the cache when the same bytes opened
// before).
func (n *Node) openKey(raw []byte) (*customerKey, error) {
	sum := sha256.Sum256(raw)
	n.keys.mu.Lock()
	k := n.keys.m[sum]
	n.keys.mu.Unlock()
	if k != nil {
		return k, nil
	}
	t, err := hbk.ParseKeyToken(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHBK, err)
	}
	dk, err := n.ring.Key(t.DomainKeyID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %x", ErrHBK, ErrKeyNotHeld, t.DomainKeyID)
	}
	m, err := t.Open(dk)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHBK, err)
	}
	defer clear(m)
	k = &customerKey{keyID: t.KeyID, spec: t.Spec}
	if s := hsmcmd.MLDSAScheme(t.Spec); s != nil {
		if len(m) != s.SeedSize() {
			return nil, fmt.Errorf("%w: ML-DSA seed size", ErrHBK)
		}
		k.mac = append([]byte(nil), m...) // the seed, cleared like an HMAC key
	} else if t.Spec == hsmcmd.SpecSECP256K1 {
		// The scalar, 32 bytes; a token sealed before generation padded
		// SoftHSM's shortest form may hold it a byte or more short.
		if len(m) == 0 || len(m) > 32 {
			return nil, fmt.Errorf("%w: secp256k1 scalar size", ErrHBK)
		}
		k.mac = make([]byte, 32)
		copy(k.mac[32-len(m):], m)
	} else if _, size := hmacHash(t.Spec); size > 0 {
		if len(m) < size || len(m) > hmacMaxKey(t.Spec) {
			return nil, fmt.Errorf("%w: HMAC key size", ErrHBK)
		}
		k.mac = append([]byte(nil), m...)
	} else {
		if k.priv, err = x509.ParsePKCS8PrivateKey(m); err != nil {
			return nil, fmt.Errorf("%w: key material", ErrHBK)
		}
	}
	n.keys.mu.Lock()
	if n.keys.m == nil || len(n.keys.m) >= MaxHBKCache {
		n.keys.m = map[[32]byte]*customerKey{}
	}
	n.keys.m[sum] = k
	n.keys.mu.Unlock()
	return k, nil
}

// Sign signs message (RAW: the message, hashed here; DIGEST: its digest)
// with an RSA or ECDSA key and alg. ECDSA signatures are DER, as KMS's.
func (n *Node) Sign(token []byte, alg uint8, digest bool, message []byte) ([]byte, error) {
	k, err := n.openKey(token)
	if err != nil {
		return nil, err
	}
	if hsmcmd.IsWrappingSpec(k.spec) {
		return nil, fmt.Errorf("%w: a wrapping key only unwraps imported key material", ErrKeyUse)
	}
	if k.spec == hsmcmd.SpecSECP256K1 {
		return n.signSecp256k1(k.mac, alg, digest, message)
	}
	if hsmcmd.MLDSAScheme(k.spec) != nil {
		if alg != hsmcmd.AlgMLDSA || digest {
			return nil, fmt.Errorf("%w: ML-DSA signs RAW messages with ML_DSA_SHAKE_256", ErrKeyUse)
		}
		return signMLDSA(k.spec, k.mac, message)
	}
	h := hsmcmd.AlgHash(alg)
	if h == 0 {
		return nil, fmt.Errorf("%w: algorithm %d", ErrKeyUse, alg)
	}
	d := message
	if !digest {
		hh := h.New()
		hh.Write(message)
		d = hh.Sum(nil)
	} else if len(message) != h.Size() {
		return nil, fmt.Errorf("%w: a %d-byte digest for %s", ErrKeyUse, len(message), hsmcmd.AlgNames[alg])
	}
	rng := n.tok.Reader()
	switch priv := k.priv.(type) {
	case *rsa.PrivateKey:
		switch alg {
		case hsmcmd.AlgRSAPSSSHA256, hsmcmd.AlgRSAPSSSHA384, hsmcmd.AlgRSAPSSSHA512:
			return rsa.SignPSS(rng, priv, h, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		case hsmcmd.AlgRSAPKCS1SHA256, hsmcmd.AlgRSAPKCS1SHA384, hsmcmd.AlgRSAPKCS1SHA512:
			return rsa.SignPKCS1v15(rng, priv, h, d)
		}
	case *ecdsa.PrivateKey:
		if alg == hsmcmd.AlgECDSASHA256 || alg == hsmcmd.AlgECDSASHA384 || alg == hsmcmd.AlgECDSASHA512 {
			return ecdsa.SignASN1(rng, priv, d)
		}
	}
	return nil, fmt.Errorf("%w: %s with a %s key", ErrKeyUse, hsmcmd.AlgNames[alg], hsmcmd.SpecNames[k.spec])
}

// AsymDecrypt decrypts an RSAES-OAEP ciphertext (SHA-1 or SHA-256, MGF1
// with the same hash) with an RSA key.
func (n *Node) AsymDecrypt(token []byte, alg uint8, ciphertext []byte) ([]byte, error) {
	k, err := n.openKey(token)
	if err != nil {
		return nil, err
	}
	priv, ok := k.priv.(*rsa.PrivateKey)
	if !ok || hsmcmd.IsWrappingSpec(k.spec) || (alg != hsmcmd.AlgOAEPSHA1 && alg != hsmcmd.AlgOAEPSHA256) {
		return nil, fmt.Errorf("%w: decrypt with %s", ErrKeyUse, hsmcmd.SpecNames[k.spec])
	}
	pt, err := rsa.DecryptOAEP(oaepHash(alg), nil, priv, ciphertext, nil)
	if err != nil {
		return nil, errors.New("node: RSA decryption failed")
	}
	return pt, nil
}

// GenerateMac computes the MAC of message with an HMAC key and alg.
func (n *Node) GenerateMac(token []byte, alg uint8, message []byte) ([]byte, error) {
	k, err := n.openKey(token)
	if err != nil {
		return nil, err
	}
	f, _ := hmacHash(k.spec)
	if f == nil || hsmcmd.AlgNames[alg] != "HMAC_SHA_"+hsmcmd.SpecNames[k.spec][len("HMAC_"):] {
		return nil, fmt.Errorf("%w: %s with %s", ErrKeyUse, hsmcmd.AlgNames[alg], hsmcmd.SpecNames[k.spec])
	}
	m := hmac.New(f, k.mac)
	m.Write(message)
	return m.Sum(nil), nil
}

// VerifyMac reports whether mac is message's MAC under the key and alg,
// compared in constant time.
func (n *Node) VerifyMac(token []byte, alg uint8, message, mac []byte) (bool, error) {
	want, err := n.GenerateMac(token, alg, message)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(want, mac) == 1, nil
}

// DeriveSharedSecret is ECDH between an ECC key and a peer public key
// (DER SubjectPublicKeyInfo on the same curve): the raw shared secret (the
// x-coordinate), as KMS returns it.
func (n *Node) DeriveSharedSecret(token, peerDER []byte) ([]byte, error) {
	k, err := n.openKey(token)
	if err != nil {
		return nil, err
	}
	priv, ok := k.priv.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: key agreement with %s", ErrKeyUse, hsmcmd.SpecNames[k.spec])
	}
	pub, err := x509.ParsePKIXPublicKey(peerDER)
	if err != nil {
		return nil, fmt.Errorf("%w: peer public key", ErrKeyUse)
	}
	peer, ok := pub.(*ecdsa.PublicKey)
	if !ok || peer.Curve != priv.Curve {
		return nil, fmt.Errorf("%w: the peer key is not on the key's curve", ErrKeyUse)
	}
	mine, err := priv.ECDH()
	if err != nil {
		return nil, err
	}
	theirs, err := peer.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: peer public key", ErrKeyUse)
	}
	return mine.ECDH(theirs)
}

// GenerateDataKeyPair makes an RSA or ECC key pair of spec outside any
// key store and returns its private key (PKCS#8 DER) sealed like Encrypt
// under the HBK of token with the encoded context ec, its public key, and
// (if withPrivate) the private key itself.
func (n *Node) GenerateDataKeyPair(token, ec []byte, spec uint8, withPrivate bool) (private, public, blob []byte, err error) {
	if (rsaBits(spec) == 0 || hsmcmd.IsWrappingSpec(spec)) && curveOf(spec) == nil && spec != hsmcmd.SpecSECP256K1 {
		return nil, nil, nil, fmt.Errorf("%w: data key pair spec %d", ErrKeyUse, spec)
	}
	key, t, release, err := n.openHBK(token)
	if err != nil {
		return nil, nil, nil, err
	}
	defer release()
	material, public, err := n.generate(spec)
	if err != nil {
		return nil, nil, nil, err
	}
	if spec == hsmcmd.SpecSECP256K1 { // the scalar, as PKCS#8 like the others
		point, err := hsmcmd.ParseSecp256k1PublicKey(public)
		if err != nil {
			clear(material)
			return nil, nil, nil, err
		}
		d := material
		material, err = hsmcmd.MarshalSecp256k1PKCS8(d, point)
		clear(d)
		if err != nil {
			return nil, nil, nil, err
		}
	}
	if blob, err = n.seal(key, t, ec, material); err != nil {
		clear(material)
		return nil, nil, nil, err
	}
	if !withPrivate {
		clear(material)
		material = nil
	}
	return material, public, blob, nil
}

func (n *Node) asymCommands(m handlers) {
	m[hsmcmd.CreateKeyPair] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseCreateKeyPairRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		tok, pub, err := n.CreateKeyPair(req.Spec, req.KeyID)
		if err != nil {
			return nil, refused(err)
		}
		return hsmcmd.CreateKeyPairResponse{Token: tok, PublicKey: pub}.Marshal()
	}
	m[hsmcmd.Sign] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseSignRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		sig, err := n.Sign(req.Token, req.Alg, req.Digest, req.Message)
		if err != nil {
			return nil, refused(err)
		}
		return hsmcmd.SignResponse{Signature: sig}.Marshal()
	}
	m[hsmcmd.AsymDecrypt] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseAsymDecryptRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		pt, err := n.AsymDecrypt(req.Token, req.Alg, req.Ciphertext)
		if err != nil {
			return nil, refused(err)
		}
		defer clear(pt)
		return hsmcmd.AsymDecryptResponse{Plaintext: pt}.Marshal()
	}
	m[hsmcmd.GenerateMac] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseGenerateMacRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		mac, err := n.GenerateMac(req.Token, req.Alg, req.Message)
		if err != nil {
			return nil, refused(err)
		}
		return hsmcmd.GenerateMacResponse{Mac: mac}.Marshal()
	}
	m[hsmcmd.VerifyMac] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseVerifyMacRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		ok, err := n.VerifyMac(req.Token, req.Alg, req.Message, req.Mac)
		if err != nil {
			return nil, refused(err)
		}
		return hsmcmd.VerifyMacResponse{Valid: ok}.Marshal()
	}
	m[hsmcmd.GenerateDataKeyPair] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseGenerateDataKeyPairRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		priv, pub, blob, err := n.GenerateDataKeyPair(req.Token, req.Context, req.Spec, req.WithPrivateKey)
		if err != nil {
			return nil, refused(err)
		}
		defer clear(priv)
		return hsmcmd.GenerateDataKeyPairResponse{PrivateKey: priv, PublicKey: pub, Blob: blob}.Marshal()
	}
	m[hsmcmd.DeriveSharedSecret] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseDeriveSharedSecretRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		z, err := n.DeriveSharedSecret(req.Token, req.PeerPublicKey)
		if err != nil {
			return nil, refused(err)
		}
		defer clear(z)
		return hsmcmd.DeriveSharedSecretResponse{Secret: z}.Marshal()
	}
}
