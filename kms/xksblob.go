package kms

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/internal/wire"
)

// xksBlob is the ciphertext of a key in an external key store
// (docs/protocol.md, External key store ciphertexts): header (type
// TypeXKSBlob) ‖ v8 key ID ‖ v8 IV ‖ v8 tag ‖ v8 ciphertext metadata ‖ v16
// ciphertext. The proxy made IV, tag, metadata and ciphertext with the
// external key over the inner ciphertext, an hbk.Blob (type 0x31) of the
// key's HBK, with the additional data xksAAD(key ID, encoded encryption
// context): a ciphertext opens only with both the external key and the
// domain's HSMs.
type xksBlob struct {
	KeyID      string
	IV         []byte // 12 or 16 bytes
	Tag        []byte // 16 bytes
	Metadata   []byte // 0 to 20 bytes
	Ciphertext []byte // as long as the inner blob
}

// TypeXKSBlob is the object type of an external key store ciphertext.
const TypeXKSBlob byte = 0x39

// labelXKSBlob is the context label of an xksBlob's additional data.
const labelXKSBlob = "trent/v1 external key store blob"

const (
	xksTagSize = 16
	xksMaxMeta = 20
)

var errXKSBlob = errors.New("kms: malformed external key store ciphertext")

func (b *xksBlob) valid() bool {
	return hbk.ValidKeyID(b.KeyID) && (len(b.IV) == 12 || len(b.IV) == 16) && len(b.Tag) == xksTagSize &&
		len(b.Metadata) <= xksMaxMeta && len(b.Ciphertext) > 0 && len(b.Ciphertext) <= hbk.MaxBlob
}

func (b *xksBlob) Marshal() ([]byte, error) {
	if !b.valid() {
		return nil, errXKSBlob
	}
	var c cryptobyte.Builder
	wire.AddHeader(&c, TypeXKSBlob)
	for _, f := range [][]byte{[]byte(b.KeyID), b.IV, b.Tag, b.Metadata} {
		c.AddUint8LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes(f) })
	}
	c.AddUint16LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes(b.Ciphertext) })
	return c.Bytes()
}

// parseXKSBlob decodes an xksBlob strictly.
func parseXKSBlob(in []byte) (*xksBlob, error) {
	if len(in) > maxCiphertextBlob {
		return nil, errXKSBlob
	}
	s := cryptobyte.String(in)
	if r, _ := wire.ReadHeader(&s, TypeXKSBlob); r != wire.HeaderOK {
		return nil, errXKSBlob
	}
	var id, iv, tag, meta, ct cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&id) || !s.ReadUint8LengthPrefixed(&iv) || !s.ReadUint8LengthPrefixed(&tag) ||
		!s.ReadUint8LengthPrefixed(&meta) || !s.ReadUint16LengthPrefixed(&ct) || !s.Empty() {
		return nil, errXKSBlob
	}
	b := &xksBlob{KeyID: string(id), IV: clone(iv), Tag: clone(tag), Metadata: clone(meta), Ciphertext: clone(ct)}
	if !b.valid() {
		return nil, errXKSBlob
	}
	return b, nil
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

// xksAAD is the additional authenticated data an external key store key's
// proxy call binds: label ‖ 0x00 ‖ v8 key ID ‖ the encoded encryption
// context.
func xksAAD(keyID string, ec []byte) []byte { return labelledAAD(labelXKSBlob, keyID, ec) }
