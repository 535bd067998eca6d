package node_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/nitro"
	"github.com/trentkms/trent/session"
)

// A real document verifies in the HSM only at a time its leaf was valid
// (Options.AttestationTime, for conformance runs); by default the clock
// decides, and it has expired.
func TestRecipientAttestationTime(t *testing.T) {
	doc, err := os.ReadFile("testdata/anjuna_debug_rsa2048_userdata_nonce_2024-01-24.cbor")
	require.NoError(t, err)
	c := newCeremony(t)
	_, err = node.Init(node.InitOptions{Dir: c.dir, Label: "hsm-at"})
	require.NoError(t, err)
	at := time.UnixMilli(1706120065635).Add(time.Minute)
	n, err := node.Open(node.Options{Dir: c.dir, Label: "hsm-at", AttestationTime: func() time.Time { return at }})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	d, pub, err := n.VerifyAttestation(doc)
	require.NoError(t, err)
	require.Equal(t, 2048, pub.N.BitLen())
	require.Equal(t, "Hello World!\n", string(d.UserData))

	_, _, err = c.nodes[0].VerifyAttestation(doc)
	require.ErrorIs(t, err, hsmcmd.ErrRecipient)
	require.ErrorIs(t, err, nitro.ErrChain, "expired now")
}

// The HSM wraps to the key of the document it verified itself: a host
// that puts its own key in a real document's public_key (same length, so
// the CBOR stays well formed) is refused, because the NSM's signature no
// longer holds; the genuine document gets a CiphertextForRecipient for
// the enclave's key.
func TestRecipientHostCannotSubstituteKey(t *testing.T) {
	doc, err := os.ReadFile("testdata/anjuna_prod_rsa2048_pubkey_2021-03-24.cbor")
	require.NoError(t, err)
	enclavePEM, err := os.ReadFile("testdata/anjuna_prod_rsa2048_pubkey_2021-03-24.expected_pubkey.pem")
	require.NoError(t, err)
	blk, _ := pem.Decode(enclavePEM)
	require.NotNil(t, blk)
	enclaveSPKI := blk.Bytes

	c := newCeremony(t)
	_, err = node.Init(node.InitOptions{Dir: c.dir, Label: "hsm-sub"})
	require.NoError(t, err)
	at := time.UnixMilli(1616602241734).Add(time.Minute)
	n, err := node.Open(node.Options{Dir: c.dir, Label: "hsm-sub", AttestationTime: func() time.Time { return at }})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	c.genesis(n)

	recipient := func(doc []byte) ([]byte, error) {
		req, err := hsmcmd.NewRecipientRequest(doc, hsmcmd.RandomRequest{Size: 32})
		require.NoError(t, err)
		cmd, err := req.Marshal()
		require.NoError(t, err)
		return n.ServeCommand(hsmcmd.Recipient, cmd)
	}
	out, err := recipient(doc)
	require.NoError(t, err)
	resp, err := hsmcmd.ParseRecipientResponse(out)
	require.NoError(t, err)
	require.Empty(t, resp.Rest)
	env, err := nitro.ParseEnvelope(resp.CiphertextForRecipient)
	require.NoError(t, err)
	require.Equal(t, nitro.SubjectKeyID(enclaveSPKI), env.SubjectKeyID, "wrapped to the document's key")

	host, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	hostSPKI, err := x509.MarshalPKIXPublicKey(&host.PublicKey)
	require.NoError(t, err)
	require.Len(t, hostSPKI, len(enclaveSPKI))
	i := bytes.Index(doc, enclaveSPKI)
	require.Positive(t, i)
	forged := bytes.Clone(doc)
	copy(forged[i:], hostSPKI)
	_, _, err = nitro.Parse(forged)
	require.NoError(t, err, "the forgery is well formed")
	_, err = recipient(forged)
	require.ErrorIs(t, err, session.ErrRefused)
	_, _, err = n.VerifyAttestation(forged)
	require.ErrorIs(t, err, nitro.ErrSignature)
}
