package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/kwp"
)

// memStore is an in-memory Store: a map with compare-and-swap.
type memStore struct {
	mu       sync.Mutex
	m        map[string][]byte
	proposed int
	// conflicts, if > 0, makes that many next proposals lose their
	// compare-and-swap as if another write came first.
	conflicts int
	syncs     int            // calls of Sync
	syncErr   error          // Sync's answer
	gets      map[string]int // calls of Get, by record ID
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}, gets: map[string]int{}} }

// Sync fails with syncErr when set (a host cut off from its leader).
func (s *memStore) Sync(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncs++
	return s.syncErr
}

func (s *memStore) Get(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets[id]++
	v, ok := s.m[id]
	return v, ok
}

func (s *memStore) Records(prefix string, f func(id string, raw []byte) bool) {
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.m))
	m := maps.Clone(s.m)
	s.mu.Unlock()
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) && !f(id, m[id]) {
			return
		}
	}
}

func (s *memStore) Propose(_ context.Context, rs ...domain.Replacement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proposed++
	if s.conflicts > 0 {
		s.conflicts--
		return ErrConflict
	}
	for _, r := range rs {
		cur, ok := s.m[r.ID]
		if (r.Old == nil) == ok || !bytes.Equal(cur, r.Old) {
			return ErrConflict
		}
	}
	for _, r := range rs {
		if r.New == nil {
			delete(s.m, r.ID)
		} else {
			s.m[r.ID] = bytes.Clone(r.New)
		}
	}
	return nil
}

// aesKey is a software domain key (hbk.Sealer and hbk.Opener).
type aesKey struct{ aead cipher.AEAD }

func newAESKey() aesKey {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	a, _ := cipher.NewGCM(b)
	return aesKey{a}
}

func (k aesKey) Seal(nonce, pt, aad []byte) ([]byte, error) {
	return k.aead.Seal(nil, nonce, pt, aad), nil
}
func (k aesKey) Open(nonce, ct, aad []byte) ([]byte, error) { return k.aead.Open(nil, nonce, ct, aad) }

// hmacKey is a software HBK (hbk.MAC).
type hmacKey []byte

func (k hmacKey) MAC(data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, k)
	m.Write(data)
	return m.Sum(nil), nil
}

// softHSM is an in-memory HSM serving the symmetric hierarchy's commands
// (hsmcmd.Random, CreateHBK, Encrypt, GenerateDataKey, Decrypt,
// ReEncrypt) with package hbk and a software domain key, as hsm/node does
// them in a token, and key import's (CreateKeyPair of a wrapping spec,
// ImportKeyMaterial: a software RSA key sealed in a key token, and
// RSAES-OAEP unwrapping with Go's crypto/rsa, as hsm/node does). It takes each request as an HSM does, encoded: it
// marshals it and parses it with hsmcmd's Parse…Request, and answers
// with the typed response's encoding; cmds lists the codes of the
// commands sent. A request that does not marshal (not sent) and a command
// that does not open are refused (ErrRefused), as HSM.Do says; fail, if
// set, answers every command sent instead.
type softHSM struct {
	dk   aesKey
	dkID [hbk.DKIDSize]byte
	fail error

	mu   sync.Mutex
	cmds []hsmcmd.Code
}

func newSoftHSM() *softHSM {
	h := &softHSM{dk: newAESKey()}
	rand.Read(h.dkID[:])
	return h
}

func (h *softHSM) Do(_ context.Context, req hsmcmd.Request) ([]byte, error) {
	in, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err) // unsent: cmds has it not
	}
	h.mu.Lock()
	h.cmds = append(h.cmds, req.Code())
	h.mu.Unlock()
	if h.fail != nil {
		return nil, h.fail
	}
	resp, err := h.do(req.Code(), in)
	if errors.Is(err, ErrKeyMaterial) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return resp.Marshal()
}

func (h *softHSM) do(code hsmcmd.Code, in []byte) (interface{ Marshal() ([]byte, error) }, error) {
	switch code {
	case hsmcmd.Random:
		req, err := hsmcmd.ParseRandomRequest(in)
		if err != nil {
			return nil, err
		}
		b := make([]byte, req.Size)
		rand.Read(b)
		return hsmcmd.RandomResponse{Bytes: b}, nil
	case hsmcmd.CreateHBK:
		req, err := hsmcmd.ParseCreateHBKRequest(in)
		if err != nil {
			return nil, err
		}
		var hid [hbk.IDSize]byte
		var iv [hbk.IVSize]byte
		key := make([]byte, hbk.Size)
		rand.Read(hid[:])
		rand.Read(iv[:])
		rand.Read(key)
		t, err := hbk.SealToken(h.dk, h.dkID, req.KeyID, hid, iv, key)
		if err != nil {
			return nil, err
		}
		tok, err := t.Marshal()
		return hsmcmd.CreateHBKResponse{Token: tok}, err
	case hsmcmd.Encrypt:
		req, err := hsmcmd.ParseEncryptRequest(in)
		if err != nil {
			return nil, err
		}
		blob, err := h.seal(req.Token, req.Context, req.Plaintext)
		return hsmcmd.EncryptResponse{Blob: blob}, err
	case hsmcmd.GenerateDataKey:
		req, err := hsmcmd.ParseGenerateDataKeyRequest(in)
		if err != nil {
			return nil, err
		}
		pt := make([]byte, req.Size)
		rand.Read(pt)
		blob, err := h.seal(req.Token, req.Context, pt)
		if !req.WithPlaintext {
			pt = nil
		}
		return hsmcmd.GenerateDataKeyResponse{Plaintext: pt, Blob: blob}, err
	case hsmcmd.Decrypt:
		req, err := hsmcmd.ParseDecryptRequest(in)
		if err != nil {
			return nil, err
		}
		pt, err := h.open(req.Token, req.Context, req.Blob)
		return hsmcmd.DecryptResponse{Plaintext: pt}, err
	case hsmcmd.ReEncrypt:
		req, err := hsmcmd.ParseReEncryptRequest(in)
		if err != nil {
			return nil, err
		}
		pt, err := h.open(req.SourceToken, req.SourceContext, req.Blob)
		if err != nil {
			return nil, err
		}
		blob, err := h.seal(req.DestinationToken, req.DestinationContext, pt)
		return hsmcmd.ReEncryptResponse{Blob: blob}, err
	case hsmcmd.CreateKeyPair:
		req, err := hsmcmd.ParseCreateKeyPairRequest(in)
		if err != nil {
			return nil, err
		}
		return h.createWrappingKey(req)
	case hsmcmd.ImportKeyMaterial:
		req, err := hsmcmd.ParseImportKeyMaterialRequest(in)
		if err != nil {
			return nil, err
		}
		return h.importKeyMaterial(req)
	case hsmcmd.ImportKeyToken:
		req, err := hsmcmd.ParseImportKeyTokenRequest(in)
		if err != nil {
			return nil, err
		}
		return h.importKeyToken(req)
	}
	return nil, fmt.Errorf("softhsm: command %v not served", code)
}

func (h *softHSM) openToken(raw []byte) (*hbk.Token, hmacKey, error) {
	t, err := hbk.ParseToken(raw)
	if err != nil {
		return nil, nil, err
	}
	k, err := t.Open(h.dk)
	if err != nil {
		return nil, nil, err
	}
	return t, k, nil
}

func (h *softHSM) seal(token, ec, pt []byte) ([]byte, error) {
	t, k, err := h.openToken(token)
	if err != nil {
		return nil, err
	}
	var nonce [hbk.NonceSize]byte
	var iv [hbk.IVSize]byte
	rand.Read(nonce[:])
	rand.Read(iv[:])
	bl, err := hbk.Seal(k, t.KeyID, t.HBKID, nonce, iv, ec, pt)
	if err != nil {
		return nil, err
	}
	return bl.Marshal()
}

func (h *softHSM) open(token, ec, blob []byte) ([]byte, error) {
	t, k, err := h.openToken(token)
	if err != nil {
		return nil, err
	}
	bl, err := hbk.ParseBlob(blob)
	if err != nil {
		return nil, err
	}
	if bl.KeyID != t.KeyID || bl.HBKID != t.HBKID {
		return nil, hbk.ErrOpen
	}
	return bl.Open(k, ec)
}

// createWrappingKey makes an RSA wrapping key (a wrapping spec only).
func (h *softHSM) createWrappingKey(req *hsmcmd.CreateKeyPairRequest) (hsmcmd.CreateKeyPairResponse, error) {
	bits := map[uint8]int{hsmcmd.SpecWrapRSA2048: 2048, hsmcmd.SpecWrapRSA3072: 3072, hsmcmd.SpecWrapRSA4096: 4096}[req.Spec]
	if bits == 0 {
		return hsmcmd.CreateKeyPairResponse{}, fmt.Errorf("softhsm: spec %d not served", req.Spec)
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return hsmcmd.CreateKeyPairResponse{}, err
	}
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	var v [hbk.IDSize]byte
	var iv [hbk.IVSize]byte
	rand.Read(v[:])
	rand.Read(iv[:])
	kt, err := hbk.SealKeyToken(h.dk, h.dkID, req.KeyID, v, req.Spec, iv, der)
	if err != nil {
		return hsmcmd.CreateKeyPairResponse{}, err
	}
	tok, err := kt.Marshal()
	return hsmcmd.CreateKeyPairResponse{Token: tok, PublicKey: pub}, err
}

// unwrap unwraps as hsm/node does (RSAES-OAEP, or RSAES-OAEP of an AES
// key then RFC 5649 key wrap with padding).
func (h *softHSM) unwrap(wrapToken []byte, alg uint8, wrapped []byte, keyID string) ([]byte, error) {
	kt, err := hbk.ParseKeyToken(wrapToken)
	if err != nil {
		return nil, err
	}
	if kt.KeyID != keyID || !hsmcmd.IsWrappingSpec(kt.Spec) {
		return nil, fmt.Errorf("softhsm: not a wrapping key of %s", keyID)
	}
	der, err := kt.Open(h.dk)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	priv := k.(*rsa.PrivateKey)
	hf := map[uint8]func() hash.Hash{hsmcmd.AlgOAEPSHA1: sha1.New, hsmcmd.AlgOAEPSHA256: sha256.New,
		hsmcmd.AlgRSAAESKeyWrapSHA1: sha1.New, hsmcmd.AlgRSAAESKeyWrapSHA256: sha256.New}[alg]
	if hf == nil {
		return nil, fmt.Errorf("softhsm: wrapping algorithm %d", alg)
	}
	if alg == hsmcmd.AlgOAEPSHA1 || alg == hsmcmd.AlgOAEPSHA256 {
		return rsa.DecryptOAEP(hf(), nil, priv, wrapped, nil)
	}
	if len(wrapped) <= priv.Size() {
		return nil, errors.New("softhsm: short")
	}
	kek, err := rsa.DecryptOAEP(hf(), nil, priv, wrapped[:priv.Size()], nil)
	if err != nil {
		return nil, err
	}
	return kwp.Unwrap(kek, wrapped[priv.Size():])
}

// importKeyMaterial unwraps as hsm/node's ImportKeyMaterial does.
func (h *softHSM) importKeyMaterial(req *hsmcmd.ImportKeyMaterialRequest) (hsmcmd.ImportKeyMaterialResponse, error) {
	var none hsmcmd.ImportKeyMaterialResponse
	m, err := h.unwrap(req.WrappingToken, req.Alg, req.Material, req.KeyID)
	if err != nil {
		return none, fmt.Errorf("softhsm: the key material does not unwrap")
	}
	if len(m) != hbk.Size {
		return none, errBadMaterial
	}
	var id [hbk.IDSize]byte
	var iv [hbk.IVSize]byte
	rand.Read(id[:])
	rand.Read(iv[:])
	if req.HBKID != nil {
		copy(id[:], req.HBKID)
	}
	t, err := hbk.SealToken(h.dk, h.dkID, req.KeyID, id, iv, m)
	if err != nil {
		return none, err
	}
	tok, err := t.Marshal()
	return hsmcmd.ImportKeyMaterialResponse{Token: tok, Check: hsmcmd.ImportCheckValue(m, req.KeyID)}, err
}

// errBadMaterial is the fake's refusal of material not of the key's
// spec, as HSM.Do reports it.
var errBadMaterial = fmt.Errorf("%w: softhsm", ErrKeyMaterial)

// importKeyToken imports HMAC and NIST ECC keys as hsm/node's
// ImportKeyToken does (the fake makes no other asymmetric key).
func (h *softHSM) importKeyToken(req *hsmcmd.ImportKeyTokenRequest) (hsmcmd.ImportKeyTokenResponse, error) {
	var none hsmcmd.ImportKeyTokenResponse
	m, err := h.unwrap(req.WrappingToken, req.Alg, req.Material, req.KeyID)
	if err != nil {
		return none, fmt.Errorf("softhsm: the key material does not unwrap")
	}
	var pub []byte
	switch req.Spec {
	case hsmcmd.SpecHMAC256:
		if len(m) < 32 || len(m) > 64 {
			return none, errBadMaterial
		}
	case hsmcmd.SpecECCP256:
		k, err := x509.ParsePKCS8PrivateKey(m)
		ek, ok := k.(*ecdsa.PrivateKey)
		if err != nil || !ok || ek.Curve != elliptic.P256() {
			return none, errBadMaterial
		}
		pub, _ = x509.MarshalPKIXPublicKey(&ek.PublicKey)
		m, _ = x509.MarshalPKCS8PrivateKey(ek)
	default:
		return none, fmt.Errorf("softhsm: spec %d not imported", req.Spec)
	}
	var v [hbk.IDSize]byte
	var iv [hbk.IVSize]byte
	rand.Read(v[:])
	rand.Read(iv[:])
	kt, err := hbk.SealKeyToken(h.dk, h.dkID, req.KeyID, v, req.Spec, iv, m)
	if err != nil {
		return none, err
	}
	tok, err := kt.Marshal()
	return hsmcmd.ImportKeyTokenResponse{Token: tok, PublicKey: pub, Check: hsmcmd.ImportCheckValue(m, req.KeyID)}, err
}

func domainNew(id string, raw []byte) domain.Replacement { return domain.Replacement{ID: id, New: raw} }

// keyToken seals random key material for key id as a key token (the
// fake serves no command that uses it).
func (h *softHSM) keyToken(t interface{ Fatal(...any) }, id string) []byte {
	var v [hbk.IDSize]byte
	var iv [hbk.IVSize]byte
	rand.Read(v[:])
	rand.Read(iv[:])
	kt, err := hbk.SealKeyToken(h.dk, h.dkID, id, v, 1, iv, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func domainDelete(id string, old []byte) domain.Replacement {
	return domain.Replacement{ID: id, Old: old}
}
