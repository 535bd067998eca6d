package node_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/nitro"
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
	require.ErrorIs(t, err, node.ErrRecipient)
	require.ErrorIs(t, err, nitro.ErrChain, "expired now")
}
