package node

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// Key import (BYOK). The wrapping key is an RSA key of a wrapping spec
// made by CreateKeyPair for the KMS key; its key token is kept by the
// hosts in the key store. ImportKeyMaterial opens it, unwraps the
// customer's material with RSAES-OAEP (in HSM-process memory, as every
// customer RSA key is used: docs/hsm-boundary.md), seals the material
// at once into an HBK token as CreateHBK seals a drawn HBK, and clears
// it. The material itself is never in an answer.

// ErrUnwrap is wrapped when the wrapped material does not decrypt under
// the wrapping key, or is not 32 bytes.
var ErrUnwrap = errors.New("node: the key material does not unwrap")

// ImportKeyMaterial unwraps wrapped (RSAES-OAEP with alg's hash) with the
// wrapping key of wrapToken, which must be a wrapping key made for keyID,
// and returns the material's HBK token under the active domain key (with
// HBK ID hbkID when given, else a new one) and its check value
// (hsmcmd.ImportCheckValue).
func (n *Node) ImportKeyMaterial(wrapToken []byte, alg uint8, wrapped []byte, keyID string, hbkID []byte) (token, check []byte, err error) {
	if !hbk.ValidKeyID(keyID) {
		return nil, nil, errors.New("node: invalid key ID")
	}
	kt, err := hbk.ParseKeyToken(wrapToken)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHBK, err)
	}
	if kt.KeyID != keyID || !hsmcmd.IsWrappingSpec(kt.Spec) {
		return nil, nil, fmt.Errorf("%w: not a wrapping key of %s", ErrKeyUse, keyID)
	}
	var h hash.Hash
	switch alg {
	case hsmcmd.AlgOAEPSHA1:
		h = sha1.New()
	case hsmcmd.AlgOAEPSHA256:
		h = sha256.New()
	default:
		return nil, nil, fmt.Errorf("%w: wrapping algorithm %d", ErrKeyUse, alg)
	}
	k, err := n.openKey(wrapToken)
	if err != nil {
		return nil, nil, err
	}
	priv, ok := k.priv.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%w: not an RSA key", ErrKeyUse)
	}
	m, err := rsa.DecryptOAEP(h, nil, priv, wrapped, nil)
	if err != nil {
		return nil, nil, ErrUnwrap
	}
	defer clear(m)
	if len(m) != hbk.Size {
		return nil, nil, ErrUnwrap
	}
	if len(hbkID) != 0 && len(hbkID) != hbk.IDSize {
		return nil, nil, errors.New("node: invalid HBK ID")
	}
	r, err := n.tok.Random(hbk.IDSize + hbk.IVSize)
	if err != nil {
		return nil, nil, err
	}
	if len(hbkID) == 0 {
		hbkID = nil
	}
	if token, err = n.sealHBK(keyID, hbkID, r, m); err != nil {
		return nil, nil, err
	}
	return token, hsmcmd.ImportCheckValue(m, keyID), nil
}

func (n *Node) importCommand(m handlers) {
	m[hsmcmd.ImportKeyMaterial] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseImportKeyMaterialRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		tok, check, err := n.ImportKeyMaterial(req.WrappingToken, req.Alg, req.Material, req.KeyID, req.HBKID)
		if err != nil {
			return nil, refused(err)
		}
		return hsmcmd.ImportKeyMaterialResponse{Token: tok, Check: check}.Marshal()
	}
}
