package kms

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/internal/wire"
)

// storeBlob is the ciphertext of a key in a PKCS#11 custom key store
// (docs/protocol.md, Custom key store ciphertexts): header (type
// TypeStoreBlob) ‖ v8 key ID ‖ v8 IV ‖ v16 ciphertext ‖ tag. The token
// made it with AES-256-GCM under the key labelled with the key ID, with
// additional data storeKeyAAD(key ID, encoded encryption context).
type storeBlob struct {
	KeyID      string
	IV         []byte
	Ciphertext []byte // ciphertext ‖ 16-byte tag
}

// TypeStoreBlob is the object type of a custom key store ciphertext.
const TypeStoreBlob byte = 0x38

// labelStoreBlob is the context label of a storeBlob's additional data.
const labelStoreBlob = "trent/v1 custom key store blob"

const (
	storeIVSize  = 12
	storeTagSize = 16
)

var errStoreBlob = errors.New("kms: malformed custom key store ciphertext")

func (b *storeBlob) Marshal() ([]byte, error) {
	if !hbk.ValidKeyID(b.KeyID) || len(b.IV) != storeIVSize || len(b.Ciphertext) <= storeTagSize || len(b.Ciphertext) > hbk.MaxPlaintext+storeTagSize {
		return nil, errStoreBlob
	}
	var c cryptobyte.Builder
	wire.AddHeader(&c, TypeStoreBlob)
	c.AddUint8LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes([]byte(b.KeyID)) })
	c.AddUint8LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes(b.IV) })
	c.AddUint16LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes(b.Ciphertext) })
	return c.Bytes()
}

// parseStoreBlob decodes a storeBlob strictly.
func parseStoreBlob(in []byte) (*storeBlob, error) {
	if len(in) > maxCiphertextBlob {
		return nil, errStoreBlob
	}
	s := cryptobyte.String(in)
	if r, _ := wire.ReadHeader(&s, TypeStoreBlob); r != wire.HeaderOK {
		return nil, errStoreBlob
	}
	var id, iv, ct cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&id) || !hbk.ValidKeyID(string(id)) ||
		!s.ReadUint8LengthPrefixed(&iv) || len(iv) != storeIVSize ||
		!s.ReadUint16LengthPrefixed(&ct) || len(ct) <= storeTagSize || len(ct) > hbk.MaxPlaintext+storeTagSize || !s.Empty() {
		return nil, errStoreBlob
	}
	return &storeBlob{KeyID: string(id), IV: append([]byte(nil), iv...), Ciphertext: append([]byte(nil), ct...)}, nil
}
