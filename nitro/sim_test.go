package nitro_test

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/nitro"
)

// A simulated NSM's documents verify against its root only, as of their
// time, and carry what was asked.
func TestSimulatedNSM(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ca, err := nitro.NewSimCA(nil, t0.Add(-time.Hour))
	require.NoError(t, err)
	pcrs := map[int][]byte{}
	for i := range 16 {
		pcrs[i] = bytes.Repeat([]byte{byte(i)}, 48)
	}
	raw, err := ca.Attest(nitro.AttestRequest{PCRs: pcrs, PublicKey: []byte("spki"), UserData: []byte("ud"), Time: t0})
	require.NoError(t, err)
	require.Equal(t, byte(0x84), raw[0], "untagged COSE_Sign1, as the NSM emits")

	v := &nitro.Verifier{Roots: []*x509.Certificate{ca.Root}, Now: func() time.Time { return t0.Add(time.Hour) }}
	d, err := v.Verify(raw)
	require.NoError(t, err)
	require.Equal(t, []byte("spki"), d.PublicKey)
	require.Equal(t, []byte("ud"), d.UserData)
	require.Nil(t, d.Nonce, "absent fields are CBOR null")
	require.Equal(t, pcrs[7], d.PCRs[7])
	require.Equal(t, t0, d.Timestamp)
	require.Len(t, d.CABundle, 4)

	_, err = (&nitro.Verifier{Roots: []*x509.Certificate{nitro.RootG1()}, Now: v.Now}).Verify(raw)
	require.ErrorIs(t, err, nitro.ErrChain, "AWS's root does not vouch for the simulation")
	_, err = (&nitro.Verifier{Roots: []*x509.Certificate{ca.Root}, Now: func() time.Time { return t0.Add(4 * time.Hour) }}).Verify(raw)
	require.ErrorIs(t, err, nitro.ErrChain, "the leaf has expired")
	other, err := nitro.NewSimCA(nil, t0.Add(-time.Hour))
	require.NoError(t, err)
	_, err = (&nitro.Verifier{Roots: []*x509.Certificate{other.Root}, Now: v.Now}).Verify(raw)
	require.ErrorIs(t, err, nitro.ErrChain, "another simulation's root")

	_, err = ca.Attest(nitro.AttestRequest{Time: t0})
	require.Error(t, err, "PCRs are required")
	_, err = ca.Attest(nitro.AttestRequest{PCRs: pcrs, Nonce: make([]byte, 1025), Time: t0})
	require.Error(t, err)
}
