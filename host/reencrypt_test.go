package host_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/session"
)

// Rotation over 10,000 EKTs, the job crashed half way and resumed: every
// EKT ends under the active key and still opens.
func TestReencryptionResumes(t *testing.T) {
	c := newTestCluster(t, 1, 1)
	h := c.hosts[0]
	ctx := context.Background()

	// One EKT, from a session with the HSM, stored under 10,000 IDs.
	st, _ := h.FSM().State()
	dir, err := st.Directory()
	require.NoError(t, err)
	p, hello, err := (&session.Host{ID: "host-1", Signer: c.hostKeys[0].k, Dir: dir}).Begin()
	require.NoError(t, err)
	reply, err := c.hsms[0].n.Handler().HSM.Handshake(hello)
	require.NoError(t, err)
	s, err := p.Finish(reply)
	require.NoError(t, err)
	const n = 10000
	var rs []domain.Replacement
	for i := range n {
		rs = append(rs, domain.Replacement{ID: fmt.Sprintf("key-%05d", i), New: s.EKT()})
		if len(rs) == domain.MaxReplaceBatch || i == n-1 {
			e, err := domain.ReplaceKeysEntry(rs)
			require.NoError(t, err)
			require.NoError(t, h.ApplyForTest(e))
			rs = nil
		}
	}
	outdated, total := h.EKTProgress()
	require.Equal(t, n, total)
	require.Zero(t, outdated, "under the active key so far")

	_, err = h.RotateNow(ctx, st)
	require.NoError(t, err)
	outdated, _ = h.EKTProgress()
	require.Equal(t, n, outdated)

	// The job "crashes" after five batches.
	jctx, cancel := context.WithCancel(ctx)
	batches := 0
	err = h.Reencrypt(jctx, func(done, total int) {
		if batches++; batches == 5 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	outdated, _ = h.EKTProgress()
	assert.Less(t, outdated, n, "progress was kept")

	// Resumed: it finishes.
	require.NoError(t, h.Reencrypt(ctx, nil))
	outdated, _ = h.EKTProgress()
	require.Zero(t, outdated)

	// Every EKT still opens: after another rotation the HSM must open each
	// one (under the now retained key) to move it.
	st, _ = h.FSM().State()
	_, err = h.RotateNow(ctx, st)
	require.NoError(t, err)
	require.NoError(t, h.Reencrypt(ctx, nil), "every EKT opened")
	outdated, total = h.EKTProgress()
	assert.Zero(t, outdated)
	assert.Equal(t, n, total)
}

// Key tokens of asymmetric keys (an RSA-4096 key token is several KiB,
// beyond an EKT's bound) are moved to the active domain key like HBK
// tokens and EKTs: the job once refused the whole batch, so a key store
// holding an RSA key was never re-encrypted, scheduled rotation waited
// for ever, and an operator's rotation would have dropped the key.
func TestReencryptAsymmetricKeys(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	h := k.hosts[0]
	var ids []string
	for _, spec := range []types.KeySpec{types.KeySpecRsa4096, types.KeySpecRsa2048, types.KeySpecEccNistP384} {
		md := k.createKey(t, k.alice, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify})
		ids = append(ids, *md.KeyId)
	}
	sym := k.createKey(t, k.alice, nil)
	st, _ := h.FSM().State()
	_, err := h.RotateNow(ctx, st)
	require.NoError(t, err)
	outdated, total := h.EKTProgress()
	require.Equal(t, total, outdated)
	require.NoError(t, h.Reencrypt(ctx, nil))
	outdated, _ = h.EKTProgress()
	require.Zero(t, outdated)
	// A second rotation: every token must open under the retained key to move.
	st, _ = h.FSM().State()
	_, err = h.RotateNow(ctx, st)
	require.NoError(t, err)
	require.NoError(t, h.Reencrypt(ctx, nil))
	for i, id := range ids {
		alg := types.SigningAlgorithmSpecRsassaPssSha256
		if i == 2 {
			alg = types.SigningAlgorithmSpecEcdsaSha384
		}
		_, err := k.alice.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: []byte("m"), SigningAlgorithm: alg})
		require.NoError(t, err, id)
	}
	_, err = k.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: sym.KeyId, Plaintext: []byte("x")})
	require.NoError(t, err)
}
