package wire

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"testing"
)

// The HSM ID of the P-384 key whose private scalar is 1 (public key the
// generator G): "hsm-" and the first 8 bytes of SHA-256 over its DER
// SubjectPublicKeyInfo, computed independently with
// `openssl pkey -pubin -outform DER | sha256sum`.
func TestHSMIDKnownAnswer(t *testing.T) {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), append(make([]byte, 47), 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := HSMID(&k.PublicKey), "hsm-29f8fe74f38c49d4"; got != want {
		t.Fatalf("HSMID(G) = %s, want %s", got, want)
	}
	if !ValidID(HSMID(&k.PublicKey)) {
		t.Fatal("an HSM ID is not a valid identifier")
	}
}
