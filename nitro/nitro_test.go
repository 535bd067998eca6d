package nitro_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/nitro"
)

func fixtures(t testing.TB) map[string][]byte {
	paths, err := filepath.Glob("testdata/*.cbor")
	require.NoError(t, err)
	require.Len(t, paths, 7)
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[strings.TrimSuffix(filepath.Base(p), ".cbor")] = b
	}
	return out
}

func at(t time.Time) *nitro.Verifier {
	return &nitro.Verifier{Roots: []*x509.Certificate{nitro.RootG1()}, Now: func() time.Time { return t }}
}

func TestRootG1(t *testing.T) {
	r := nitro.RootG1()
	sum := sha256.Sum256(r.Raw)
	require.Equal(t, "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b", hex.EncodeToString(sum[:]))
	require.Equal(t, "aws.nitro-enclaves", r.Subject.CommonName)
}

// Every real document verifies as of its timestamp and fails four hours
// later, when its leaf has expired.
func TestRealDocuments(t *testing.T) {
	for name, raw := range fixtures(t) {
		d, _, err := nitro.Parse(raw)
		require.NoError(t, err, name)
		got, err := at(d.Timestamp).Verify(raw)
		require.NoError(t, err, name)
		require.Equal(t, "SHA384", got.Digest)
		require.Len(t, got.PCRs, 16, name)
		require.Len(t, got.CABundle, 4, name)
		_, err = at(d.Timestamp.Add(4 * time.Hour)).Verify(raw)
		require.ErrorIs(t, err, nitro.ErrChain, "%s four hours later", name)
		_, err = (&nitro.Verifier{Roots: []*x509.Certificate{nitro.RootG1()}}).Verify(raw)
		require.ErrorIs(t, err, nitro.ErrChain, "%s now", name)

		// Tagged (18) is tolerated.
		_, err = at(d.Timestamp).Verify(append([]byte{0xd2}, raw...))
		require.NoError(t, err, name)
		// Trailing bytes and prefixes are refused.
		_, _, err = nitro.Parse(append(bytes.Clone(raw), 0))
		require.ErrorIs(t, err, nitro.ErrMalformed, name)
		for _, n := range []int{0, 1, 10, len(raw) / 2, len(raw) - 1} {
			_, _, err := nitro.Parse(raw[:n])
			require.Error(t, err, "%s prefix %d", name, n)
		}
	}
}

func TestDocumentFields(t *testing.T) {
	f := fixtures(t)
	ts := func(name string) *nitro.Document {
		d, _, err := nitro.Parse(f[name])
		require.NoError(t, err)
		got, err := at(d.Timestamp).Verify(f[name])
		require.NoError(t, err)
		return got
	}
	d := ts("anjuna_debug_rsa2048_userdata_nonce_2024-01-24")
	require.Equal(t, "Hello World!\n", string(d.UserData))
	require.Equal(t, "Nonce\n", string(d.Nonce))
	require.Equal(t, int64(1706120065635), d.Timestamp.UnixMilli())
	pemBytes, err := os.ReadFile("testdata/anjuna_debug_rsa2048_userdata_nonce_2024-01-24.expected_pubkey.pem")
	require.NoError(t, err)
	b, _ := pem.Decode(pemBytes)
	require.Equal(t, b.Bytes, d.PublicKey)
	require.Equal(t, make([]byte, 48), d.PCRs[0], "debug mode: PCR0 is zero")

	d = ts("anjuna_prod_nulls_2021-03-17")
	require.Nil(t, d.PublicKey)
	require.Nil(t, d.UserData)
	require.Nil(t, d.Nonce)

	d = ts("anjuna_prod_rsa2048_pubkey_2021-03-24")
	require.Equal(t, "672cd3c91b7ac756037d260051169c70b1de59c7a3a9a8253322c98763697891c722fec043cbf72a824ae5d5ac41fc41", hex.EncodeToString(d.PCRs[0]))
	require.Len(t, d.PublicKey, 294)

	d = ts("blocky_prod_1024B_fields_2024-09-07")
	require.Equal(t, bytes.Repeat([]byte{1}, 1024), d.PublicKey)
	require.Equal(t, bytes.Repeat([]byte{1}, 1024), d.Nonce)

	d = ts("cape_debug_32Bpubkey_2022-07-14")
	require.Len(t, d.PublicKey, 32)
	require.Len(t, d.Nonce, 6)
}

// A changed byte of the payload or signature, or another root, fails.
func TestTamperingAndRoots(t *testing.T) {
	raw := fixtures(t)["anjuna_prod_userdata_2023-09-21"]
	d, _, err := nitro.Parse(raw)
	require.NoError(t, err)
	v := at(d.Timestamp)
	for _, i := range []int{len(raw) - 10, len(raw) - 200, len(raw) / 2, 40} {
		m := bytes.Clone(raw)
		m[i] ^= 0x01
		_, err := v.Verify(m)
		require.Error(t, err, "byte %d", i)
	}
	// A root of our own, same name: the chain does not reach it.
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aws.nitro-enclaves"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	fake, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	_, err = (&nitro.Verifier{Roots: []*x509.Certificate{fake}, Now: func() time.Time { return d.Timestamp }}).Verify(raw)
	require.ErrorIs(t, err, nitro.ErrChain)
	_, err = (&nitro.Verifier{Now: func() time.Time { return d.Timestamp }}).Verify(raw)
	require.ErrorIs(t, err, nitro.ErrChain, "no trusted root at all")
	_, _, err = nitro.Parse(make([]byte, nitro.MaxDocument+1))
	require.ErrorIs(t, err, nitro.ErrMalformed)
}

func FuzzParse(f *testing.F) {
	for _, raw := range fixtures(f) {
		f.Add(raw)
	}
	f.Add([]byte{0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, in []byte) {
		d, _, err := nitro.Parse(in)
		if err != nil {
			return
		}
		if d.Certificate == nil || len(d.CABundle) == 0 || len(d.PCRs) == 0 {
			t.Fatal("a parsed document without its required fields")
		}
	})
}
