package node

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/session"
)

// Customer asymmetric and HMAC keys. The key material is drawn from the
// token RNG (Go's key generation reading the token), sealed under the
// active domain key in a key token (package hbk) for the raft key store,
// and used in this process: opened per use into a bounded cache of parsed
// keys, operations by Go's crypto. docs/hsm-boundary.md says why these are
// not token objects yet.

// Key specs (their codes in key tokens and commands).
const (
	SpecRSA2048   uint8 = 1
	SpecRSA3072   uint8 = 2
	SpecRSA4096   uint8 = 3
	SpecECCP256   uint8 = 4
	SpecECCP384   uint8 = 5
	SpecECCP521   uint8 = 6
	SpecHMAC224   uint8 = 8
	SpecHMAC256   uint8 = 9
	SpecHMAC384   uint8 = 10
	SpecHMAC512   uint8 = 11
	maxHMACMsg          = 4096
	maxSignMsg          = 4096
	maxAsymCipher       = 512 // RSA-4096
)

// SpecNames are the KMS key spec names of the codes.
var SpecNames = map[uint8]string{
	SpecRSA2048: "RSA_2048", SpecRSA3072: "RSA_3072", SpecRSA4096: "RSA_4096",
	SpecECCP256: "ECC_NIST_P256", SpecECCP384: "ECC_NIST_P384", SpecECCP521: "ECC_NIST_P521",
	SpecHMAC224: "HMAC_224", SpecHMAC256: "HMAC_256", SpecHMAC384: "HMAC_384", SpecHMAC512: "HMAC_512",
}

// SpecCode returns the code of a KMS key spec name (0 if unknown here).
func SpecCode(name string) uint8 {
	for c, n := range SpecNames {
		if n == name {
			return c
		}
	}
	return 0
}

// Algorithm codes of the commands.
const (
	AlgRSAPSSSHA256 uint8 = iota + 1
	AlgRSAPSSSHA384
	AlgRSAPSSSHA512
	AlgRSAPKCS1SHA256
	AlgRSAPKCS1SHA384
	AlgRSAPKCS1SHA512
	AlgECDSASHA256
	AlgECDSASHA384
	AlgECDSASHA512
	AlgOAEPSHA1
	AlgOAEPSHA256
	AlgHMACSHA224
	AlgHMACSHA256
	AlgHMACSHA384
	AlgHMACSHA512
)

// AlgNames are the KMS algorithm names of the codes.
var AlgNames = map[uint8]string{
	AlgRSAPSSSHA256: "RSASSA_PSS_SHA_256", AlgRSAPSSSHA384: "RSASSA_PSS_SHA_384", AlgRSAPSSSHA512: "RSASSA_PSS_SHA_512",
	AlgRSAPKCS1SHA256: "RSASSA_PKCS1_V1_5_SHA_256", AlgRSAPKCS1SHA384: "RSASSA_PKCS1_V1_5_SHA_384", AlgRSAPKCS1SHA512: "RSASSA_PKCS1_V1_5_SHA_512",
	AlgECDSASHA256: "ECDSA_SHA_256", AlgECDSASHA384: "ECDSA_SHA_384", AlgECDSASHA512: "ECDSA_SHA_512",
	AlgOAEPSHA1: "RSAES_OAEP_SHA_1", AlgOAEPSHA256: "RSAES_OAEP_SHA_256",
	AlgHMACSHA224: "HMAC_SHA_224", AlgHMACSHA256: "HMAC_SHA_256", AlgHMACSHA384: "HMAC_SHA_384", AlgHMACSHA512: "HMAC_SHA_512",
}

// AlgCode returns the code of a KMS algorithm name (0 if unknown here).
func AlgCode(name string) uint8 {
	for c, n := range AlgNames {
		if n == name {
			return c
		}
	}
	return 0
}

// AlgHash is the hash an algorithm signs, encrypts or MACs with.
func AlgHash(alg uint8) crypto.Hash {
	switch alg {
	case AlgRSAPSSSHA256, AlgRSAPKCS1SHA256, AlgECDSASHA256, AlgOAEPSHA256, AlgHMACSHA256:
		return crypto.SHA256
	case AlgRSAPSSSHA384, AlgRSAPKCS1SHA384, AlgECDSASHA384, AlgHMACSHA384:
		return crypto.SHA384
	case AlgRSAPSSSHA512, AlgRSAPKCS1SHA512, AlgECDSASHA512, AlgHMACSHA512:
		return crypto.SHA512
	case AlgHMACSHA224:
		return crypto.SHA224
	case AlgOAEPSHA1:
		return crypto.SHA1
	}
	return 0
}

// ErrKeyUse is wrapped when a key cannot do what a command asks (another
// spec's algorithm, a wrong length).
var ErrKeyUse = errors.New("node: the key cannot do that")

func hmacHash(spec uint8) (func() hash.Hash, int) {
	switch spec {
	case SpecHMAC224:
		return sha256.New224, 28
	case SpecHMAC256:
		return sha256.New, 32
	case SpecHMAC384:
		return sha512.New384, 48
	case SpecHMAC512:
		return sha512.New, 64
	}
	return nil, 0
}

func curveOf(spec uint8) elliptic.Curve {
	switch spec {
	case SpecECCP256:
		return elliptic.P256()
	case SpecECCP384:
		return elliptic.P384()
	case SpecECCP521:
		return elliptic.P521()
	}
	return nil
}

func rsaBits(spec uint8) int {
	switch spec {
	case SpecRSA2048:
		return 2048
	case SpecRSA3072:
		return 3072
	case SpecRSA4096:
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
	case MLDSAScheme(spec) != nil:
		return generateMLDSA(spec, rng)
	case spec == SpecSECP256K1:
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
	dkID, dk, err := n.ring.Active()
	if err != nil {
		return nil, nil, err
	}
	r, err := n.tok.Random(hbk.IDSize + hbk.IVSize)
	if err != nil {
		return nil, nil, err
	}
	var vid [hbk.IDSize]byte
	var iv [hbk.IVSize]byte
	copy(vid[:], r)
	copy(iv[:], r[hbk.IDSize:])
	t, err := hbk.SealKeyToken(dk, dkID, keyID, vid, spec, iv, material)
	if err != nil {
		return nil, nil, err
	}
	token, err = t.Marshal()
	return token, public, err
}

// customerKey is an opened key token: the parsed key.
type customerKey struct {
	spec uint8
	priv crypto.PrivateKey // *rsa.PrivateKey or *ecdsa.PrivateKey
	mac  []byte            // HMAC key
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
		return nil, fmt.Errorf("%w: domain key %x not held", ErrHBK, t.DomainKeyID)
	}
	m, err := t.Open(dk)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHBK, err)
	}
	defer clear(m)
	k = &customerKey{spec: t.Spec}
	if s := MLDSAScheme(t.Spec); s != nil {
		if len(m) != s.SeedSize() {
			return nil, fmt.Errorf("%w: ML-DSA seed size", ErrHBK)
		}
		k.mac = append([]byte(nil), m...) // the seed, cleared like an HMAC key
	} else if t.Spec == SpecSECP256K1 {
		if len(m) != 32 {
			return nil, fmt.Errorf("%w: secp256k1 scalar size", ErrHBK)
		}
		k.mac = append([]byte(nil), m...) // the scalar
	} else if _, size := hmacHash(t.Spec); size > 0 {
		if len(m) != size {
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
	if k.spec == SpecSECP256K1 {
		return n.signSecp256k1(k.mac, alg, digest, message)
	}
	if MLDSAScheme(k.spec) != nil {
		if alg != AlgMLDSA || digest {
			return nil, fmt.Errorf("%w: ML-DSA signs RAW messages with ML_DSA_SHAKE_256", ErrKeyUse)
		}
		return signMLDSA(k.spec, k.mac, message)
	}
	h := AlgHash(alg)
	if h == 0 {
		return nil, fmt.Errorf("%w: algorithm %d", ErrKeyUse, alg)
	}
	d := message
	if !digest {
		hh := h.New()
		hh.Write(message)
		d = hh.Sum(nil)
	} else if len(message) != h.Size() {
		return nil, fmt.Errorf("%w: a %d-byte digest for %s", ErrKeyUse, len(message), AlgNames[alg])
	}
	rng := n.tok.Reader()
	switch priv := k.priv.(type) {
	case *rsa.PrivateKey:
		switch alg {
		case AlgRSAPSSSHA256, AlgRSAPSSSHA384, AlgRSAPSSSHA512:
			return rsa.SignPSS(rng, priv, h, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		case AlgRSAPKCS1SHA256, AlgRSAPKCS1SHA384, AlgRSAPKCS1SHA512:
			return rsa.SignPKCS1v15(rng, priv, h, d)
		}
	case *ecdsa.PrivateKey:
		if alg == AlgECDSASHA256 || alg == AlgECDSASHA384 || alg == AlgECDSASHA512 {
			return ecdsa.SignASN1(rng, priv, d)
		}
	}
	return nil, fmt.Errorf("%w: %s with a %s key", ErrKeyUse, AlgNames[alg], SpecNames[k.spec])
}

// AsymDecrypt decrypts an RSAES-OAEP ciphertext (SHA-1 or SHA-256, MGF1
// with the same hash) with an RSA key.
func (n *Node) AsymDecrypt(token []byte, alg uint8, ciphertext []byte) ([]byte, error) {
	k, err := n.openKey(token)
	if err != nil {
		return nil, err
	}
	priv, ok := k.priv.(*rsa.PrivateKey)
	if !ok || (alg != AlgOAEPSHA1 && alg != AlgOAEPSHA256) {
		return nil, fmt.Errorf("%w: decrypt with %s", ErrKeyUse, SpecNames[k.spec])
	}
	h := sha256.New()
	if alg == AlgOAEPSHA1 {
		h = sha1.New()
	}
	pt, err := rsa.DecryptOAEP(h, nil, priv, ciphertext, nil)
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
	if f == nil || AlgNames[alg] != "HMAC_SHA_"+SpecNames[k.spec][len("HMAC_"):] {
		return nil, fmt.Errorf("%w: %s with %s", ErrKeyUse, AlgNames[alg], SpecNames[k.spec])
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
		return nil, fmt.Errorf("%w: key agreement with %s", ErrKeyUse, SpecNames[k.spec])
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
	if rsaBits(spec) == 0 && curveOf(spec) == nil && spec != SpecSECP256K1 {
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
	if spec == SpecSECP256K1 { // the scalar, as PKCS#8 like the others
		point, err := ParseSecp256k1PublicKey(public)
		if err != nil {
			clear(material)
			return nil, nil, nil, err
		}
		d := material
		material, err = MarshalSecp256k1PKCS8(d, point)
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

// Commands of customer asymmetric and HMAC keys (docs/protocol.md):
//
//	CmdCreateKeyPair    u8 spec ‖ v8 key ID → v16 key token ‖ v16 public key DER
//	CmdSign             v16 token ‖ u8 alg ‖ u8 message type (0 RAW, 1 DIGEST) ‖ v16 message → signature
//	CmdAsymDecrypt      v16 token ‖ u8 alg ‖ v16 ciphertext → plaintext
//	CmdGenerateMac      v16 token ‖ u8 alg ‖ v16 message → MAC
//	CmdVerifyMac        v16 token ‖ u8 alg ‖ v16 message ‖ v16 MAC → u8 1 (valid) or 0
//	CmdDeriveSharedSecret v16 token ‖ v16 peer public key DER → shared secret
const (
	CmdCreateKeyPair      uint16 = 13
	CmdSign               uint16 = 14
	CmdAsymDecrypt        uint16 = 15
	CmdGenerateMac        uint16 = 16
	CmdVerifyMac          uint16 = 17
	CmdDeriveSharedSecret uint16 = 18
	// CmdGenerateDataKeyPair: v16 HBK token ‖ v16 encoded context ‖ u8 spec ‖
	// u8 flags (bit 0: return the private key) → v16 private key DER (empty
	// without bit 0) ‖ v16 public key DER ‖ v16 blob of the private key.
	CmdGenerateDataKeyPair uint16 = 19
)

func (n *Node) asymCommands(m map[uint16]session.CommandHandler, refused func(error) error) {
	m[CmdCreateKeyPair] = func(r *session.Request) ([]byte, error) {
		s := cryptobyte.String(r.Command)
		var spec uint8
		var id cryptobyte.String
		if !s.ReadUint8(&spec) || !s.ReadUint8LengthPrefixed(&id) || !s.Empty() {
			return nil, refused(ErrKeyCommand)
		}
		tok, pub, err := n.CreateKeyPair(spec, string(id))
		if err != nil {
			return nil, refused(err)
		}
		return KeyCommand(nil, tok, pub)
	}
	m[CmdSign] = func(r *session.Request) ([]byte, error) {
		var tok, msg cryptobyte.String
		var alg, typ uint8
		s := cryptobyte.String(r.Command)
		if !s.ReadUint16LengthPrefixed(&tok) || !s.ReadUint8(&alg) || !s.ReadUint8(&typ) || typ > 1 ||
			!s.ReadUint16LengthPrefixed(&msg) || len(msg) > maxSignMsg || !s.Empty() {
			return nil, refused(ErrKeyCommand)
		}
		out, err := n.Sign(tok, alg, typ == 1, msg)
		return out, refused(err)
	}
	m[CmdAsymDecrypt] = func(r *session.Request) ([]byte, error) {
		var tok, ct cryptobyte.String
		var alg uint8
		s := cryptobyte.String(r.Command)
		if !s.ReadUint16LengthPrefixed(&tok) || !s.ReadUint8(&alg) || !s.ReadUint16LengthPrefixed(&ct) ||
			len(ct) > maxAsymCipher || !s.Empty() {
			return nil, refused(ErrKeyCommand)
		}
		out, err := n.AsymDecrypt(tok, alg, ct)
		return out, refused(err)
	}
	m[CmdGenerateMac] = func(r *session.Request) ([]byte, error) {
		var tok, msg cryptobyte.String
		var alg uint8
		s := cryptobyte.String(r.Command)
		if !s.ReadUint16LengthPrefixed(&tok) || !s.ReadUint8(&alg) || !s.ReadUint16LengthPrefixed(&msg) ||
			len(msg) > maxHMACMsg || !s.Empty() {
			return nil, refused(ErrKeyCommand)
		}
		out, err := n.GenerateMac(tok, alg, msg)
		return out, refused(err)
	}
	m[CmdVerifyMac] = func(r *session.Request) ([]byte, error) {
		var tok, msg, mac cryptobyte.String
		var alg uint8
		s := cryptobyte.String(r.Command)
		if !s.ReadUint16LengthPrefixed(&tok) || !s.ReadUint8(&alg) || !s.ReadUint16LengthPrefixed(&msg) ||
			len(msg) > maxHMACMsg || !s.ReadUint16LengthPrefixed(&mac) || !s.Empty() {
			return nil, refused(ErrKeyCommand)
		}
		ok, err := n.VerifyMac(tok, alg, msg, mac)
		if err != nil {
			return nil, refused(err)
		}
		if ok {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	}
	m[CmdGenerateDataKeyPair] = func(r *session.Request) ([]byte, error) {
		var spec, flags uint8
		f, err := readFields(r.Command, 2, func(s *cryptobyte.String) bool {
			return s.ReadUint8(&spec) && s.ReadUint8(&flags) && flags <= 1
		})
		if err != nil {
			return nil, refused(err)
		}
		priv, pub, blob, err := n.GenerateDataKeyPair(f[0], f[1], spec, flags == 1)
		if err != nil {
			return nil, refused(err)
		}
		defer clear(priv)
		return KeyCommand(nil, priv, pub, blob)
	}
	m[CmdDeriveSharedSecret] = func(r *session.Request) ([]byte, error) {
		f, err := readFields(r.Command, 2, nil)
		if err != nil {
			return nil, refused(err)
		}
		out, err := n.DeriveSharedSecret(f[0], f[1])
		return out, refused(err)
	}
}
