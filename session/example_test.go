package session_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	"github.com/trentkms/trent/session"
)

// memDK is a domain key in Go memory, for the example only: an HSM keeps its
// domain keys in its token (an hsm.SecretKey has the same two methods).
type memDK struct{ cipher.AEAD }

func (k memDK) Seal(nonce, pt, aad []byte) ([]byte, error) {
	return k.AEAD.Seal(nil, nonce, pt, aad), nil
}
func (k memDK) Open(nonce, ct, aad []byte) ([]byte, error) { return k.AEAD.Open(nil, nonce, ct, aad) }

// A host makes a session with an HSM and sends it one command. In Trent the
// HSM's keys are in its token (package hsm); here they are software keys so
// that the example runs anywhere.
func Example() {
	hostKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	hsmKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	hsmAgree, _ := ecdh.P384().GenerateKey(rand.Reader)
	hsmID := "hsm-1" // Trent derives it from the signing key; the protocol only needs it unique

	// The domain view both ends read.
	dir, _ := session.NewStaticDirectory("example", 1,
		[]session.Operator{{ID: "host-1", Key: &hostKey.PublicKey, Roles: []string{session.RoleServiceHost}}},
		[]session.Member{{ID: hsmID, Signing: &hsmKey.PublicKey, Agreement: hsmAgree.PublicKey()}})

	// The HSM end, with one active domain key.
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(block)
	keys := session.NewMemoryKeyRing()
	keys.Add([session.KeyIDSize]byte{1}, memDK{aead}, true)
	h, _ := session.NewHSM(session.HSMConfig{
		ID: hsmID, Signer: hsmKey, Rand: rand.Reader, Dir: dir, Keys: keys,
		NewEphemeral: func() (session.EphemeralKey, error) {
			k, err := ecdh.P384().GenerateKey(rand.Reader)
			return goEphemeral{k}, err
		},
	})

	// The handshake.
	host := &session.Host{ID: "host-1", Signer: hostKey, Dir: dir}
	pending, hello, _ := host.Begin()
	reply, err := h.Handshake(hello)
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := pending.Finish(reply)
	if err != nil {
		fmt.Println(err)
		return
	}

	// One command and its response.
	envelope, _, _ := s.Seal(1, []byte("ping"))
	req, err := h.Open(envelope)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("HSM got %q from %s\n", req.Command, req.HostID)
	response, _ := req.Seal([]byte("pong"))
	answer, _ := s.Open(envelope, response)
	fmt.Printf("host got %q\n", answer)

	// The same envelope again is a replay.
	_, err = h.Open(envelope)
	fmt.Println(err)
	// Output:
	// HSM got "ping" from host-1
	// host got "pong"
	// session: sequence number already used or too old
}
