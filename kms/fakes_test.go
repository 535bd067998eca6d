package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
)

// memStore is an in-memory Store: a map with compare-and-swap.
type memStore struct {
	mu       sync.Mutex
	m        map[string][]byte
	proposed int
	// conflicts, if > 0, makes that many next proposals lose their
	// compare-and-swap as if another write came first.
	conflicts int
	syncs     int   // calls of Sync
	syncErr   error // Sync's answer
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

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
// (CmdRandom, CmdCreateHBK, CmdEncrypt, CmdGenerateDataKey, CmdDecrypt,
// CmdReEncrypt) with package hbk and a software domain key, as
// hsm/node does them in a token. A command that does not open is refused
// (ErrRefused); fail, if set, answers every command instead.
type softHSM struct {
	dk   aesKey
	dkID [hbk.DKIDSize]byte
	fail error

	mu   sync.Mutex
	cmds []uint16
}

func newSoftHSM() *softHSM {
	h := &softHSM{dk: newAESKey()}
	rand.Read(h.dkID[:])
	return h
}

var errBadCommand = errors.New("softhsm: malformed command")

func fields(in []byte, n int) ([][]byte, cryptobyte.String, error) {
	s := cryptobyte.String(in)
	out := make([][]byte, n)
	for i := range out {
		var f cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&f) {
			return nil, nil, errBadCommand
		}
		out[i] = f
	}
	return out, s, nil
}

func (h *softHSM) Do(_ context.Context, cmd uint16, in []byte) ([]byte, error) {
	h.mu.Lock()
	h.cmds = append(h.cmds, cmd)
	h.mu.Unlock()
	if h.fail != nil {
		return nil, h.fail
	}
	out, err := h.do(cmd, in)
	if err != nil && !errors.Is(err, errBadCommand) {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return out, err
}

func (h *softHSM) do(cmd uint16, in []byte) ([]byte, error) {
	switch cmd {
	case uint16(hsmcmd.Random):
		if len(in) != 2 {
			return nil, errBadCommand
		}
		b := make([]byte, binary.BigEndian.Uint16(in))
		rand.Read(b)
		return b, nil
	case uint16(hsmcmd.CreateHBK):
		s := cryptobyte.String(in)
		var id cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&id) || !s.Empty() {
			return nil, errBadCommand
		}
		var hid [hbk.IDSize]byte
		var iv [hbk.IVSize]byte
		key := make([]byte, hbk.Size)
		rand.Read(hid[:])
		rand.Read(iv[:])
		rand.Read(key)
		t, err := hbk.SealToken(h.dk, h.dkID, string(id), hid, iv, key)
		if err != nil {
			return nil, err
		}
		return t.Marshal()
	case uint16(hsmcmd.Encrypt):
		f, rest, err := fields(in, 3)
		if err != nil || !rest.Empty() {
			return nil, errBadCommand
		}
		return h.seal(f[0], f[1], f[2])
	case uint16(hsmcmd.GenerateDataKey):
		f, rest, err := fields(in, 2)
		var size uint16
		var flags uint8
		if err != nil || !rest.ReadUint16(&size) || !rest.ReadUint8(&flags) || !rest.Empty() {
			return nil, errBadCommand
		}
		pt := make([]byte, size)
		rand.Read(pt)
		blob, err := h.seal(f[0], f[1], pt)
		if err != nil {
			return nil, err
		}
		if flags&1 == 0 {
			pt = nil
		}
		return hsmcmd.KeyCommand(nil, pt, blob)
	case uint16(hsmcmd.Decrypt):
		f, rest, err := fields(in, 3)
		if err != nil || !rest.Empty() {
			return nil, errBadCommand
		}
		return h.open(f[0], f[1], f[2])
	case uint16(hsmcmd.ReEncrypt):
		f, rest, err := fields(in, 5)
		if err != nil || !rest.Empty() {
			return nil, errBadCommand
		}
		pt, err := h.open(f[0], f[1], f[2])
		if err != nil {
			return nil, err
		}
		return h.seal(f[3], f[4], pt)
	}
	return nil, fmt.Errorf("softhsm: command %d not served", cmd)
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
