package hsm

import (
	"bytes"
	"errors"

	"github.com/miekg/pkcs11"
)

// The node's long-lived ML-KEM-1024 key (docs/hsm-boundary.md, "ML-KEM
// key"). PKCS#11 as SoftHSM 2.6 implements it has no ML-KEM mechanism, so
// the token cannot hold the decapsulation key itself: it holds its 64-byte
// seed d ‖ z (FIPS 203) sealed with AES-256-GCM under a token AES key
// (KEMSealKeyLabel: a token object, sensitive, not extractable, used only
// to encrypt and decrypt) in a private data object (KEMSeedLabel). The
// node unseals the seed when it opens, expands it in process memory and
// clears the seed.

// Labels of the ML-KEM seed's token objects.
const (
	KEMSealKeyLabel = "trent kem seal"
	KEMSeedLabel    = "trent kem seed"
)

// KEMSeedSize is the ML-KEM-1024 seed: d ‖ z.
const KEMSeedSize = 64

// The sealed seed: "TRNT" 01 24 ‖ nonce (12) ‖ AES-256-GCM(seal key,
// nonce, seed, aad) (80), aad = "trent/v1 kem seed" ‖ 00 ‖ the header.
var kemSeedHeader = []byte("TRNT\x01\x24")

const kemSeedLabelAAD = "trent/v1 kem seed"

// ErrKEMSeedDamaged means the sealed seed does not decode or open.
var ErrKEMSeedDamaged = errors.New("hsm: the sealed ML-KEM seed does not open")

func kemSealTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, KEMSealKeyLabel),
	}
}

// kemSealKey finds (or, if create, makes) the token AES key that seals the
// seed.
func (t *Token) kemSealKey(create bool) (*SecretKey, error) {
	const op = "ML-KEM seal key"
	var h pkcs11.ObjectHandle
	err := t.do(op, func(s pkcs11.SessionHandle) error {
		var err error
		h, err = t.findOne(s, kemSealTemplate())
		if !create || !isKeyNotFound(err) {
			return err
		}
		tmpl := append(kemSealTemplate(),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, symKeyLen),
		)
		h, err = t.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SecretKey{t: t, h: h, typ: AES256}, nil
}

func kemSeedAAD() []byte {
	return append(append([]byte(kemSeedLabelAAD), 0), kemSeedHeader...)
}

// KEMSeed unseals the token's ML-KEM seed: ErrObjectNotFound if it has
// none, ErrKEMSeedDamaged if it does not open. The caller clears it.
func (t *Token) KEMSeed() ([]byte, error) {
	sealed, err := t.ReadData(KEMSeedLabel)
	if err != nil {
		return nil, err
	}
	key, err := t.kemSealKey(false)
	if err != nil {
		return nil, err
	}
	n := len(kemSeedHeader)
	if len(sealed) != n+GCMNonceSize+KEMSeedSize+GCMTagSize || !bytes.Equal(sealed[:n], kemSeedHeader) {
		return nil, ErrKEMSeedDamaged
	}
	seed, err := key.Open(sealed[n:n+GCMNonceSize], sealed[n+GCMNonceSize:], kemSeedAAD())
	if err != nil {
		return nil, ErrKEMSeedDamaged
	}
	return seed, nil
}

// EnsureKEMSeed returns the token's ML-KEM seed, drawing one from the
// token RNG and sealing it first if the token has none; created reports
// whether it did. A seal key left by a crash before the seed was written
// is reused.
func (t *Token) EnsureKEMSeed() (seed []byte, created bool, err error) {
	seed, err = t.KEMSeed()
	if !errors.Is(err, ErrObjectNotFound) {
		return seed, false, err
	}
	key, err := t.kemSealKey(true)
	if err != nil {
		return nil, false, err
	}
	rnd, err := t.Random(GCMNonceSize + KEMSeedSize)
	if err != nil {
		return nil, false, err
	}
	nonce, seed := rnd[:GCMNonceSize], rnd[GCMNonceSize:]
	ct, err := key.Seal(nonce, seed, kemSeedAAD())
	if err != nil {
		clear(rnd)
		return nil, false, err
	}
	sealed := append(append(append([]byte(nil), kemSeedHeader...), nonce...), ct...)
	if _, err := t.WriteData(KEMSeedLabel, "trent", sealed); err != nil {
		clear(rnd)
		return nil, false, err
	}
	out := bytes.Clone(seed)
	clear(rnd)
	return out, true, nil
}
