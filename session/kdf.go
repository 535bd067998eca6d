package session

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/binary"
	"fmt"

	"github.com/trentkms/trent/internal/wire"
)

// Context labels. Every signature and every KDF of the protocol binds one,
// followed by a zero byte, so that no input of one role can be taken for
// another's.
const (
	labelHello            = "trent/v1 session hello"
	labelReply            = "trent/v1 session reply"
	labelSessionID        = "trent/v1 session id"
	labelNK               = "trent/v1 session nk"
	labelNKHybrid         = "trent/v1 session hybrid nk"
	labelTranscript       = "trent/v1 session transcript"
	labelEKT              = "trent/v1 ekt"
	labelEnvelope         = "trent/v1 envelope"
	labelResponse         = "trent/v1 response"
	labelOnePassSig       = "trent/v1 onepass sig"
	labelOnePassKEK       = "trent/v1 onepass kek"
	labelOnePassKEKHybrid = "trent/v1 onepass hybrid kek"
	labelOnePassAAD       = "trent/v1 onepass wrap"
)

// labelled hashes label ‖ 0x00 ‖ parts with SHA-384.
func labelled(label string, parts ...[]byte) []byte { return wire.LabelledHash(label, parts...) }

func hash384(b []byte) []byte {
	d := sha512.Sum384(b)
	return d[:]
}

// oneStepKDF is the SP 800-56C rev. 2 one-step KDF with H = SHA-384 for a
// 256-bit output: the first 32 bytes of SHA-384(0x00000001 ‖ Z ‖ FixedInfo).
// One hash block suffices for 256 bits, so the counter is always 1.
// Hand-written: no maintained Go package implements the one-step KDF, and
// it is one hash call.
func oneStepKDF(z, fixedInfo []byte) []byte {
	h := sha512.New384()
	h.Write([]byte{0, 0, 0, 1})
	h.Write(z)
	h.Write(fixedInfo)
	sum := h.Sum(nil)
	k := make([]byte, 32)
	copy(k, sum)
	clear(sum)
	return k
}

// sign signs SHA-384(label ‖ 0x00 ‖ msg) with signer (a token key or a
// software key) and returns the DER signature.
func sign(signer crypto.Signer, label string, msg ...[]byte) ([]byte, error) {
	sig, err := signer.Sign(nil, labelled(label, msg...), crypto.SHA384)
	if err != nil {
		return nil, fmt.Errorf("session: sign: %w", err)
	}
	return sig, nil
}

func verify(pub *ecdsa.PublicKey, sig []byte, label string, msg ...[]byte) bool {
	return ecdsa.VerifyASN1(pub, labelled(label, msg...), sig)
}

// gcm returns AES-256-GCM under key (a key held in process memory: NK, SK
// or a one-pass KEK).
func gcm(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("session: AES key of the wrong size: " + err.Error())
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		panic("session: " + err.Error())
	}
	return a
}

// seqNonce is the AES-GCM nonce of an envelope (dir 0) or a response (dir 1)
// with sequence number seq: dir ‖ 0x000000 ‖ seq.
func seqNonce(dir byte, seq uint64) []byte {
	n := make([]byte, gcmNonceSize)
	n[0] = dir
	binary.BigEndian.PutUint64(n[4:], seq)
	return n
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func lp8(b []byte) []byte { return append([]byte{byte(len(b))}, b...) }
