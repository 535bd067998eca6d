package node_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/tokenstore"
)

func ec(t *testing.T, m map[string]string) []byte {
	e, err := hbk.EncodeContext(m)
	require.NoError(t, err)
	return e
}

// The hierarchy across two HSMs of a domain: an HBK made by one serves
// the other; a ciphertext opens only under its key and context; ReEncrypt
// and domain key rotation keep old ciphertexts working.
func TestKeyHierarchy(t *testing.T) { eachModule(t, testKeyHierarchy) }

func testKeyHierarchy(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2 := c.nodes[0], c.nodes[1]
	require.NoError(t, h2.Import(c.genesis(h1, h2), c.now))

	tokA, err := h1.CreateHBK("key-a")
	require.NoError(t, err)
	tokB, err := h2.CreateHBK("key-b")
	require.NoError(t, err)
	_, err = h1.CreateHBK("bad id")
	require.Error(t, err)

	ctx := ec(t, map[string]string{"purpose": "test"})
	blob, err := h1.Encrypt(tokA, ctx, []byte("secret"))
	require.NoError(t, err)
	pt, err := h2.Decrypt(tokA, ctx, blob)
	require.NoError(t, err)
	require.Equal(t, []byte("secret"), pt)

	_, err = h2.Decrypt(tokA, ec(t, nil), blob)
	require.ErrorIs(t, err, hbk.ErrOpen, "another encryption context")
	_, err = h2.Decrypt(tokB, ctx, blob)
	require.ErrorIs(t, err, hbk.ErrOpen, "another key")
	bad := bytes.Clone(tokA)
	bad[len(bad)-1] ^= 1
	_, err = h2.Decrypt(bad, ctx, blob)
	require.ErrorIs(t, err, node.ErrHBK, "a tampered HBK token")

	// A second HBK of the same key (rotation) does not open the first's
	// ciphertexts; the first still does.
	tokA2, err := h1.CreateHBK("key-a")
	require.NoError(t, err)
	_, err = h1.Decrypt(tokA2, ctx, blob)
	require.ErrorIs(t, err, hbk.ErrOpen)

	pt, blobDK, err := h1.GenerateDataKey(tokA2, ctx, 32)
	require.NoError(t, err)
	require.Len(t, pt, 32)
	back, err := h2.Decrypt(tokA2, ctx, blobDK)
	require.NoError(t, err)
	require.Equal(t, pt, back)
	_, _, err = h1.GenerateDataKey(tokA2, ctx, 0)
	require.Error(t, err)

	ctxB := ec(t, map[string]string{"to": "b"})
	moved, err := h2.ReEncrypt(tokA, ctx, blob, tokB, ctxB)
	require.NoError(t, err)
	pt, err = h1.Decrypt(tokB, ctxB, moved)
	require.NoError(t, err)
	require.Equal(t, []byte("secret"), pt)
	_, err = h1.ReEncrypt(tokA, ctxB, blob, tokB, ctxB)
	require.ErrorIs(t, err, hbk.ErrOpen, "ReEncrypt checks the source context")

	// Rotate domain keys (retention 1): the HBK token is re-sealed under
	// the new domain key and still opens the old ciphertext; after one
	// more rotation the token left under the dropped key is refused.
	ret, err := domain.ParamsRetention(1)
	require.NoError(t, err)
	apply := func(sc *quorum.SignedCommand) {
		tok, err := h1.Export(sc, c.now)
		require.NoError(t, err)
		require.NoError(t, h1.Import(tok, c.now))
		require.NoError(t, h2.Import(tok, c.now))
	}
	apply(c.command(1, quorum.SetRetention, ret, c.alice, c.bob))
	apply(c.command(2, quorum.RotateDomainKeys, nil, c.host))
	out, errs, err := h2.ReencryptEKTs([][]byte{tokA})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.NotEqual(t, tokA, out[0])
	nt, err := hbk.ParseToken(out[0])
	require.NoError(t, err)
	ot, _ := hbk.ParseToken(tokA)
	require.Equal(t, ot.HBKID, nt.HBKID)
	require.NotEqual(t, ot.DomainKeyID, nt.DomainKeyID)
	pt, err = h1.Decrypt(out[0], ctx, blob)
	require.NoError(t, err)
	require.Equal(t, []byte("secret"), pt)

	apply(c.command(3, quorum.RotateDomainKeys, nil, c.alice, c.bob))
	_, err = h1.Decrypt(tokA, ctx, blob)
	require.ErrorIs(t, err, node.ErrHBK, "a token under a dropped domain key")
	_, err = h1.Decrypt(out[0], ctx, blob)
	require.NoError(t, err, "the token moved in time still opens")
}

// batchNode is the node of a fresh one-node domain, the HBK token of a
// key it made, and an encryption context, for the batch tests.
func batchNode(t *testing.T, kind tokenstore.Kind) (h1 *node.Node, tok, ctx []byte) {
	c := newCeremonyOn(t, kind)
	h1 = c.nodes[0]
	c.genesis(h1)
	tok, err := h1.CreateHBK("key-a")
	require.NoError(t, err)
	return h1, tok, ec(t, map[string]string{"a": "1"})
}

// A batch is served command by command; each fails alone.
func TestBatch(t *testing.T) { eachModule(t, testBatch) }

func testBatch(t *testing.T, kind tokenstore.Kind) {
	h1, tok, ctx := batchNode(t, kind)
	enc, err := hsmcmd.EncryptRequest{Token: tok, Context: ctx, Plaintext: []byte("batched")}.Marshal()
	require.NoError(t, err)
	blob, err := h1.Encrypt(tok, ctx, []byte("earlier"))
	require.NoError(t, err)
	wrongCtx, err := hsmcmd.DecryptRequest{Token: tok, Context: ec(t, nil), Blob: blob}.Marshal()
	require.NoError(t, err)
	dec, err := hsmcmd.DecryptRequest{Token: tok, Context: ctx, Blob: blob}.Marshal()
	require.NoError(t, err)
	in, err := hsmcmd.BatchRequest{Items: []hsmcmd.BatchItem{
		{Code: hsmcmd.Encrypt, Command: enc},
		{Code: hsmcmd.Decrypt, Command: wrongCtx},
		{Code: hsmcmd.Random, Command: []byte{0, 8}},
		{Code: hsmcmd.Decrypt, Command: dec},
	}}.Marshal()
	require.NoError(t, err)
	out, err := h1.ServeCommand(hsmcmd.Batch, in)
	require.NoError(t, err)
	resp, err := hsmcmd.ParseBatchResponse(out, 4)
	require.NoError(t, err)
	res := resp.Results
	require.NoError(t, res[0].Err())
	pt, err := h1.Decrypt(tok, ctx, res[0].Response)
	require.NoError(t, err)
	require.Equal(t, "batched", string(pt))
	require.ErrorIs(t, res[1].Err(), session.ErrRefused, "the wrong context fails alone")
	require.NoError(t, res[2].Err())
	require.Len(t, res[2].Response, 8)
	require.NoError(t, res[3].Err())
	require.Equal(t, "earlier", string(res[3].Response))

	// Malformed batches, and one naming a command that may not be batched,
	// are refused whole.
	for _, bad := range [][]byte{nil, {0, 0}, {0, 1, 0, byte(hsmcmd.Export), 0, 0, 0}, append(bytes.Clone(in), 0)} {
		_, err := h1.ServeCommand(hsmcmd.Batch, bad)
		require.ErrorIs(t, err, session.ErrRefused, "%x", bad)
	}
}

// The GenerateDataKey commands of a batch draw their data keys in one
// token call and each gets its own: every answer has its size, opens to
// its own plaintext and differs from the others; a command that fails
// (a malformed one, one under a tampered HBK token) fails alone.
func TestBatchDrawsDataKeysOnce(t *testing.T) { eachModule(t, testBatchDrawsDataKeysOnce) }

func testBatchDrawsDataKeysOnce(t *testing.T, kind tokenstore.Kind) {
	h1, tok, ctx := batchNode(t, kind)
	gdk := func(tok []byte, size uint16, withPlaintext bool) hsmcmd.BatchItem {
		cmd, err := hsmcmd.GenerateDataKeyRequest{Token: tok, Context: ctx, Size: size, WithPlaintext: withPlaintext}.Marshal()
		require.NoError(t, err)
		return hsmcmd.BatchItem{Code: hsmcmd.GenerateDataKey, Command: cmd}
	}
	bad := bytes.Clone(tok)
	bad[len(bad)-1] ^= 1
	enc, err := hsmcmd.EncryptRequest{Token: tok, Context: ctx, Plaintext: []byte("batched")}.Marshal()
	require.NoError(t, err)
	items := []hsmcmd.BatchItem{
		gdk(tok, 32, true),
		{Code: hsmcmd.Encrypt, Command: enc},
		gdk(tok, 16, true),
		gdk(bad, 32, true),
		{Code: hsmcmd.GenerateDataKey, Command: []byte{1, 2, 3}},
		gdk(tok, 1024, false),
		gdk(tok, 32, true),
	}
	require.Equal(t, 5, h1.DataKeyDraw(items), "the well-formed GenerateDataKey commands share one draw")
	require.Zero(t, h1.DataKeyDraw(items[:2]), "one GenerateDataKey command draws alone")

	in, err := hsmcmd.BatchRequest{Items: items}.Marshal()
	require.NoError(t, err)
	out, err := h1.ServeCommand(hsmcmd.Batch, in)
	require.NoError(t, err)
	resp, err := hsmcmd.ParseBatchResponse(out, len(items))
	require.NoError(t, err)
	res := resp.Results
	var keys [][]byte
	for i, size := range map[int]int{0: 32, 2: 16, 6: 32} {
		require.NoError(t, res[i].Err(), i)
		r, err := hsmcmd.ParseGenerateDataKeyResponse(res[i].Response)
		require.NoError(t, err)
		require.Len(t, r.Plaintext, size, i)
		pt, err := h1.Decrypt(tok, ctx, r.Blob)
		require.NoError(t, err)
		require.Equal(t, r.Plaintext, pt, i)
		for _, k := range keys {
			require.NotEqual(t, k, r.Plaintext[:16], "each command its own bytes")
		}
		keys = append(keys, r.Plaintext[:16])
	}
	require.NoError(t, res[1].Err())
	require.ErrorIs(t, res[3].Err(), session.ErrRefused, "a tampered HBK token fails alone")
	require.ErrorIs(t, res[4].Err(), session.ErrRefused, "a malformed command fails alone")
	require.NoError(t, res[5].Err())
	r, err := hsmcmd.ParseGenerateDataKeyResponse(res[5].Response)
	require.NoError(t, err)
	require.Empty(t, r.Plaintext, "no plaintext unless asked for")
	pt, err := h1.Decrypt(tok, ctx, r.Blob)
	require.NoError(t, err)
	require.Len(t, pt, 1024)
}
