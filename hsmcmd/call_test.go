package hsmcmd_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

func TestCall(t *testing.T) {
	var gotType uint16
	var gotCmd []byte
	do := func(answer []byte, err error) hsmcmd.DoFunc {
		return func(_ context.Context, typ uint16, cmd []byte) ([]byte, error) {
			gotType, gotCmd = typ, cmd
			return answer, err
		}
	}
	ctx := context.Background()
	resp, err := hsmcmd.Call(ctx, do([]byte{0, 0, 0, 2, 'b', 'l'}, nil),
		hsmcmd.GenerateDataKeyRequest{Token: []byte("t"), Size: 32}, hsmcmd.ParseGenerateDataKeyResponse)
	require.NoError(t, err)
	require.Equal(t, uint16(hsmcmd.GenerateDataKey), gotType)
	require.Equal(t, []byte{0, 1, 't', 0, 0, 0, 32, 0}, gotCmd)
	require.Empty(t, resp.Plaintext)
	require.Equal(t, []byte("bl"), resp.Blob)

	_, err = hsmcmd.Call(ctx, do(nil, session.ErrRefused), hsmcmd.RandomRequest{Size: 8}, hsmcmd.ParseRandomResponse)
	require.ErrorIs(t, err, session.ErrRefused, "the HSM's refusal as it came")
	_, err = hsmcmd.Call(ctx, do([]byte{2}, nil), hsmcmd.VerifyRequest{}, hsmcmd.ParseVerifyResponse)
	require.ErrorIs(t, err, hsmcmd.ErrMalformed, "an answer that does not parse")
	gotCmd = nil
	_, err = hsmcmd.Call(ctx, do(nil, nil), hsmcmd.RandomRequest{}, hsmcmd.ParseRandomResponse)
	require.ErrorIs(t, err, hsmcmd.ErrMalformed, "a request over its limits is not sent")
	require.Nil(t, gotCmd)
}

func TestRecipientRest(t *testing.T) {
	m := hsmcmd.RecipientResponse{CiphertextForRecipient: []byte{1}, Rest: []byte{0, 2, 'b', 'l'}}
	blob, err := m.DataKeyBlob()
	require.NoError(t, err)
	require.Equal(t, []byte("bl"), blob)
	_, _, err = m.DataKeyPair()
	require.ErrorIs(t, err, hsmcmd.ErrMalformed)
	m.Rest = []byte{0, 1, 'p', 0, 2, 'b', 'l'}
	pub, blob, err := m.DataKeyPair()
	require.NoError(t, err)
	require.Equal(t, []byte("p"), pub)
	require.Equal(t, []byte("bl"), blob)
	_, err = m.DataKeyBlob()
	require.ErrorIs(t, err, hsmcmd.ErrMalformed)
	m.Rest = nil
	_, err = m.DataKeyBlob()
	require.ErrorIs(t, err, hsmcmd.ErrMalformed)
}
