package session

import (
	"errors"
	"fmt"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
)

// The hybrid handshake (docs/protocol.md, "Hybrid handshake"): a Hello and
// a Reply of header version VersionHybrid carry, beside the P-384
// ephemeral keys, an ML-KEM-1024 encapsulation key (the host's, ephemeral)
// and the ciphertext the HSM made with it. The shared secret fed to the
// one-step KDF is Z = Z_ecdh ‖ Z_mlkem, as RFC 10024's SecP384r1MLKEM1024
// concatenates them, with a FixedInfo that binds both keys and the
// ciphertext; NK is secret if either component is. Every other object
// keeps version 1.

// VersionHybrid is the header version of a hybrid Hello and Reply.
const VersionHybrid byte = 2

// ML-KEM-1024 sizes (FIPS 203).
const (
	KEMKeySize        = mlkem1024.PublicKeySize  // encapsulation key, 1568 bytes
	KEMCiphertextSize = mlkem1024.CiphertextSize // 1568 bytes
	KEMSeedSize       = mlkem1024.KeySeedSize    // d ‖ z, 64 bytes
	kemEncapsSize     = mlkem1024.EncapsulationSeedSize
	kemSharedSize     = mlkem1024.SharedKeySize
)

// Hybrid errors.
var (
	// ErrHybridRequired: a classical Hello to (or one-pass message in) a
	// domain whose policy requires hybrid key establishment. Alert 26.
	ErrHybridRequired = errors.New("session: the domain requires hybrid ML-KEM-1024 + P-384 key establishment")
	// ErrInvalidKEM: an ML-KEM-1024 encapsulation key that fails FIPS 203's
	// modulus check, or a ciphertext of the wrong length. Alert 27.
	ErrInvalidKEM = errors.New("session: invalid ML-KEM-1024 key or ciphertext")
)

// HybridPolicy is implemented by a Directory whose domain may require
// hybrid key establishment (domain.State's view does). A Directory that
// does not implement it allows both modes.
type HybridPolicy interface {
	HybridRequired() bool
}

// RequiresHybrid reports whether dir's domain requires hybrid sessions.
func RequiresHybrid(dir Directory) bool {
	p, ok := dir.(HybridPolicy)
	return ok && p.HybridRequired()
}

func addHeaderV(b *cryptobyte.Builder, hybrid bool, typ byte) {
	if !hybrid {
		addHeader(b, typ)
		return
	}
	b.AddBytes([]byte(Magic))
	b.AddUint8(VersionHybrid)
	b.AddUint8(typ)
}

// readHeaderV reads the header of a Hello or Reply, which exist in version
// 1 (classical) and VersionHybrid.
func readHeaderV(s *cryptobyte.String, typ byte) (hybrid bool, err error) {
	var magic []byte
	var v, t uint8
	if !s.ReadBytes(&magic, len(Magic)) || string(magic) != Magic || !s.ReadUint8(&v) {
		return false, malformed("bad header")
	}
	if v != wire.Version && v != VersionHybrid {
		return false, fmt.Errorf("%w: %d", ErrVersion, v)
	}
	if !s.ReadUint8(&t) || t != typ {
		return false, malformed("bad header")
	}
	return v == VersionHybrid, nil
}

// ParseKEMKey decodes an ML-KEM-1024 encapsulation key: KEMKeySize bytes
// whose coefficients are all below q (FIPS 203 §7.2), else ErrInvalidKEM.
func ParseKEMKey(b []byte) (*mlkem1024.PublicKey, error) {
	if len(b) != KEMKeySize {
		return nil, ErrInvalidKEM
	}
	var pk mlkem1024.PublicKey
	if err := pk.Unpack(b); err != nil {
		return nil, ErrInvalidKEM
	}
	return &pk, nil
}

// readKEMKey reads an encapsulation key: its encoding and the key it
// decodes to (the decoding expands the key's matrix, so it is done once).
func readKEMKey(s *cryptobyte.String, what string) ([]byte, *mlkem1024.PublicKey, error) {
	k, err := readFixed(s, KEMKeySize, what)
	if err != nil {
		return nil, nil, err
	}
	ek, err := ParseKEMKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s", err, what)
	}
	return k, ek, nil
}

// KEMKeyFromSeed is ML-KEM-1024.KeyGen_internal(d, z) of a 64-byte seed
// d ‖ z: the decapsulation key and the encoded encapsulation key.
func KEMKeyFromSeed(seed []byte) (*mlkem1024.PrivateKey, []byte, error) {
	if len(seed) != KEMSeedSize {
		return nil, nil, fmt.Errorf("session: ML-KEM seed of %d bytes, want %d", len(seed), KEMSeedSize)
	}
	pk, sk := mlkem1024.NewKeyFromSeed(seed)
	ek := make([]byte, KEMKeySize)
	pk.Pack(ek)
	return sk, ek, nil
}

// kemEncaps is ML-KEM-1024.Encaps_internal(ek, m): the ciphertext and the
// 32-byte shared secret.
func kemEncaps(ek *mlkem1024.PublicKey, m []byte) (ct, ss []byte) {
	ct = make([]byte, KEMCiphertextSize)
	ss = make([]byte, kemSharedSize)
	ek.EncapsulateTo(ct, ss, m)
	return ct, ss
}

// kemDecaps is ML-KEM-1024.Decaps: with implicit rejection, a ciphertext
// of the right length always gives a secret, a wrong one an unrelated
// secret (so the AEAD after it fails).
func kemDecaps(dk *mlkem1024.PrivateKey, ct []byte) ([]byte, error) {
	if len(ct) != KEMCiphertextSize {
		return nil, ErrInvalidKEM
	}
	ss := make([]byte, kemSharedSize)
	dk.DecapsulateTo(ss, ct)
	return ss, nil
}

// hybridSecret is RFC 10024's SecP384r1MLKEM1024 shared secret: the ECDH
// secret, then the ML-KEM secret.
func hybridSecret(zECDH, zKEM []byte) []byte {
	z := make([]byte, 0, len(zECDH)+len(zKEM))
	return append(append(z, zECDH...), zKEM...)
}

// nkFixedInfoHybrid is the FixedInfo of the hybrid negotiated-key KDF: the
// classical one's fields, under its own label, with the hashes of the
// encapsulation key and the ciphertext after Q2.
func nkFixedInfoHybrid(hostID, hsmID string, q1, q2, ek, ct, hostNonce, hsmNonce []byte) []byte {
	fi := append([]byte(labelNKHybrid), 0)
	fi = append(fi, lp8([]byte(hostID))...)
	fi = append(fi, lp8([]byte(hsmID))...)
	fi = append(fi, q1...)
	fi = append(fi, q2...)
	fi = append(fi, hash384(ek)...)
	fi = append(fi, hash384(ct)...)
	fi = append(fi, hostNonce...)
	return append(fi, hsmNonce...)
}
