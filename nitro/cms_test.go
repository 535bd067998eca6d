package nitro_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/nitro"
)

// The real KMS samples parse; what Trent seals has their shape byte for
// byte where sizes allow, and opens with the recipient's key alone.
func TestCiphertextForRecipient(t *testing.T) {
	real1, err := os.ReadFile("testdata/kms_ciphertext_for_recipient_sdkc_1.ber")
	require.NoError(t, err)
	real2, err := os.ReadFile("testdata/kms_ciphertext_for_recipient_sdkc_2_primitive_content.ber")
	require.NoError(t, err)
	for _, r := range [][]byte{real1, real2} {
		e, err := nitro.ParseEnvelope(r)
		require.NoError(t, err)
		require.Len(t, e.SubjectKeyID, 32)
		require.Len(t, e.WrappedKey, 256, "RSA-2048")
		require.Len(t, e.IV, 16)
	}

	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	ski := nitro.SubjectKeyID(spki)
	secret := []byte("32-byte data key for the enclave")
	ct, err := nitro.SealForRecipient(rand.Reader, &k.PublicKey, ski, secret)
	require.NoError(t, err)

	// KMS's layout: the same bytes up to the subjectKeyIdentifier, the
	// same algorithm identifier after it, the same structure after the
	// wrapped key, five end-of-contents at the end.
	require.Equal(t, real1[:0x21], ct[:0x21])
	require.Equal(t, real1[0x41:0x83], ct[0x41:0x83])
	require.Equal(t, real1[0x183:0x19f], ct[0x183:0x19f], "EncryptedContentInfo up to the IV")
	require.Equal(t, real1[0x1af:0x1b2], ct[0x1af:0x1b2], "a constructed [0] of one 48-byte OCTET STRING")
	require.Len(t, ct, len(real1), "a 32-byte plaintext makes a message of the sample's size")
	require.Equal(t, make([]byte, 10), ct[len(ct)-10:])

	e, err := nitro.ParseEnvelope(ct)
	require.NoError(t, err)
	require.Equal(t, ski, e.SubjectKeyID)
	pt, err := e.Open(k)
	require.NoError(t, err)
	require.Equal(t, secret, pt)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, err = e.Open(other)
	require.ErrorIs(t, err, nitro.ErrCMS, "only the recipient's key opens it")

	for _, n := range []int{0, 5, 0x22, 0x100, len(ct) - 1} {
		_, err := nitro.ParseEnvelope(ct[:n])
		require.Error(t, err, "prefix %d", n)
	}
	_, err = nitro.ParseEnvelope(append(bytes.Clone(ct), 0))
	require.ErrorIs(t, err, nitro.ErrCMS)
	// A DER (definite) outer level is not KMS's shape.
	_, err = nitro.ParseEnvelope(append([]byte{0x30, 0x03}, 0x02, 0x01, 0x02))
	require.ErrorIs(t, err, nitro.ErrCMS)
}

func FuzzParseEnvelope(f *testing.F) {
	for _, p := range []string{"testdata/kms_ciphertext_for_recipient_sdkc_1.ber", "testdata/kms_ciphertext_for_recipient_sdkc_2_primitive_content.ber"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if e, err := nitro.ParseEnvelope(in); err == nil && (len(e.IV) != 16 || len(e.Ciphertext)%16 != 0) {
			t.Fatal("an envelope with a bad IV or content length parsed")
		}
	})
}

// Indefinite values nested beyond what KMS writes are refused, not
// followed down.
func TestEnvelopeNestingBound(t *testing.T) {
	deep := bytes.Repeat([]byte{0x30, 0x80}, 100)
	deep = append(deep, bytes.Repeat([]byte{0, 0}, 100)...)
	_, err := nitro.ParseEnvelope(deep)
	require.ErrorIs(t, err, nitro.ErrCMS)
	require.Contains(t, err.Error(), "nested too deep")
}
