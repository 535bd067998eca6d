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
	switch {
	case !hbk.ValidKeyID(keyID):
		return nil, nil, fmt.Errorf("%w: invalid key ID", ErrKeyUse)
	case len(hbkID) != 0 && len(hbkID) != hbk.IDSize:
		return nil, nil, fmt.Errorf("%w: invalid HBK ID", ErrKeyUse)
	case alg != hsmcmd.AlgOAEPSHA1 && alg != hsmcmd.AlgOAEPSHA256:
		return nil, nil, fmt.Errorf("%w: wrapping algorithm %d", ErrKeyUse, alg)
	}
	k, err := n.openKey(wrapToken)
	if err != nil {
		return nil, nil, err
	}
	priv, ok := k.priv.(*rsa.PrivateKey)
	if !ok || k.keyID != keyID || !hsmcmd.IsWrappingSpec(k.spec) {
		return nil, nil, fmt.Errorf("%w: not a wrapping key of %s", ErrKeyUse, keyID)
	}
	m, err := rsa.DecryptOAEP(oaepHash(alg), nil, priv, wrapped, nil)
	if err != nil {
		return nil, nil, ErrUnwrap
	}
	defer clear(m)
	if len(m) != hbk.Size {
		return nil, nil, ErrUnwrap
	}
	r, err := n.tok.Random(hbk.IDSize + hbk.IVSize)
	if err != nil {
		return nil, nil, err
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
		switch {
		case errors.Is(err, ErrUnwrap) || errors.Is(err, ErrKeyUse) || errors.Is(err, ErrHBK):
			// What the request caused (or a wrapping token under a domain
			// key this HSM does not hold, which the host resyncs for).
			return nil, refused(err)
		case err != nil:
			return nil, err // the HSM's own failure (its RNG, its ring): Alert 21
		}
		return hsmcmd.ImportKeyMaterialResponse{Token: tok, Check: check}.Marshal()
	}
}

// oaepHash is the hash of RSAES-OAEP algorithm alg (AlgOAEPSHA1 or
// AlgOAEPSHA256, which the callers check).
func oaepHash(alg uint8) hash.Hash {
	if alg == hsmcmd.AlgOAEPSHA1 {
		return sha1.New()
	}
	return sha256.New()
}
