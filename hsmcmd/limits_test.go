package hsmcmd_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/nitro"
	"github.com/trentkms/trent/session"
)

// enc builds an encoding from its fields: []byte as is, v8/v16/v24 of n
// zero bytes, u8 and u16 values.
type (
	v8  int
	v16 int
	v24 int
	u8  uint8
	u16 uint16
	raw int
)

func enc(fields ...any) []byte {
	var b cryptobyte.Builder
	for _, f := range fields {
		switch f := f.(type) {
		case []byte:
			b.AddBytes(f)
		case v8:
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(make([]byte, f)) })
		case v16:
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(make([]byte, f)) })
		case v24:
			b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(make([]byte, f)) })
		case u8:
			b.AddUint8(uint8(f))
		case u16:
			b.AddUint16(uint16(f))
		case raw:
			b.AddBytes(make([]byte, f))
		default:
			panic(f)
		}
	}
	return b.BytesOrPanic()
}

func parseOf[T any](p func([]byte) (*T, error)) func([]byte) error {
	return func(b []byte) error { _, err := p(b); return err }
}

// Each case is a message with one field just over its maximum (or
// otherwise out of its range), and the same message just within it.
func TestOverMaximumRefused(t *testing.T) {
	const tok, ktok, ctx = hsmcmd.MaxHBKToken, hsmcmd.MaxKeyToken, hbk.MaxContext
	cases := []struct {
		name     string
		parse    func([]byte) error
		ok, over []byte
	}{
		{"Ping payload", parseOf(hsmcmd.ParsePingRequest), enc(raw(hsmcmd.MaxPing)), enc(raw(hsmcmd.MaxPing + 1))},
		{"Ping answer", parseOf(hsmcmd.ParsePingResponse), enc(raw(hsmcmd.MaxPing)), enc(raw(hsmcmd.MaxPing + 1))},
		{"Export command", parseOf(hsmcmd.ParseExportRequest), enc(raw(hsmcmd.MaxMessage)), enc(raw(hsmcmd.MaxMessage + 1))},
		{"Export empty", parseOf(hsmcmd.ParseExportRequest), enc(raw(1)), nil},
		{"Export token", parseOf(hsmcmd.ParseExportResponse), enc(raw(hsmcmd.MaxTokenSize)), enc(raw(hsmcmd.MaxTokenSize + 1))},
		{"Import token", parseOf(hsmcmd.ParseImportRequest), enc(raw(hsmcmd.MaxTokenSize)), enc(raw(hsmcmd.MaxTokenSize + 1))},
		{"Import answer", parseOf(hsmcmd.ParseImportResponse), enc(raw(8)), enc(raw(7))},
		{"ReencryptEKTs count", parseOf(hsmcmd.ParseReencryptEKTsRequest), enc(u16(0)), enc(u16(hsmcmd.MaxReencryptBatch + 1))},
		{"ReencryptEKTs EKT", parseOf(hsmcmd.ParseReencryptEKTsRequest), enc(u16(1), v16(hsmcmd.MaxReencryptItem)), enc(u16(1), v16(hsmcmd.MaxReencryptItem+1))},
		{"ReencryptEKTs empty EKT", parseOf(hsmcmd.ParseReencryptEKTsRequest), enc(u16(1), v16(1)), enc(u16(1), v16(0))},
		{"ReencryptEKTs result", parseOf(hsmcmd.ParseReencryptEKTsResponse), enc(u16(1), u16(0), v16(hsmcmd.MaxReencryptItem)), enc(u16(1), u16(0), v16(hsmcmd.MaxReencryptItem+1))},
		{"ReencryptEKTs empty success", parseOf(hsmcmd.ParseReencryptEKTsResponse), enc(u16(1), u16(7), v16(0)), enc(u16(1), u16(0), v16(0))},
		{"ReencryptEKTs failure with EKT", parseOf(hsmcmd.ParseReencryptEKTsResponse), enc(u16(1), u16(7), v16(0)), enc(u16(1), u16(7), v16(1))},
		{"ReencryptEKTs result count", parseOf(hsmcmd.ParseReencryptEKTsResponse), enc(u16(0)), enc(u16(hsmcmd.MaxReencryptBatch + 1))},
		{"DomainStatus command", parseOf(hsmcmd.ParseDomainStatusRequest), nil, enc(raw(1))},
		{"DomainStatus state", parseOf(hsmcmd.ParseDomainStatusResponse), enc(raw(hsmcmd.MaxMessage)), enc(raw(hsmcmd.MaxMessage + 1))},
		{"Random size", parseOf(hsmcmd.ParseRandomRequest), enc(u16(hsmcmd.MaxRandom)), enc(u16(hsmcmd.MaxRandom + 1))},
		{"Random zero", parseOf(hsmcmd.ParseRandomRequest), enc(u16(1)), enc(u16(0))},
		{"Random answer", parseOf(hsmcmd.ParseRandomResponse), enc(raw(hsmcmd.MaxRandom)), enc(raw(hsmcmd.MaxRandom + 1))},

		{"CreateHBK token", parseOf(hsmcmd.ParseCreateHBKResponse), enc(raw(tok)), enc(raw(tok + 1))},
		{"Encrypt token", parseOf(hsmcmd.ParseEncryptRequest), enc(v16(tok), v16(0), v16(1)), enc(v16(tok+1), v16(0), v16(1))},
		{"Encrypt context", parseOf(hsmcmd.ParseEncryptRequest), enc(v16(1), v16(ctx), v16(1)), enc(v16(1), v16(ctx+1), v16(1))},
		{"Encrypt plaintext", parseOf(hsmcmd.ParseEncryptRequest), enc(v16(1), v16(0), v16(hbk.MaxPlaintext)), enc(v16(1), v16(0), v16(hbk.MaxPlaintext+1))},
		{"Encrypt blob", parseOf(hsmcmd.ParseEncryptResponse), enc(raw(hbk.MaxBlob)), enc(raw(hbk.MaxBlob + 1))},
		{"GenerateDataKey size", parseOf(hsmcmd.ParseGenerateDataKeyRequest), enc(v16(1), v16(0), u16(hsmcmd.MaxRandom), u8(1)), enc(v16(1), v16(0), u16(hsmcmd.MaxRandom+1), u8(1))},
		{"GenerateDataKey zero", parseOf(hsmcmd.ParseGenerateDataKeyRequest), enc(v16(1), v16(0), u16(1), u8(0)), enc(v16(1), v16(0), u16(0), u8(0))},
		{"GenerateDataKey flags", parseOf(hsmcmd.ParseGenerateDataKeyRequest), enc(v16(1), v16(0), u16(32), u8(1)), enc(v16(1), v16(0), u16(32), u8(2))},
		{"GenerateDataKey context", parseOf(hsmcmd.ParseGenerateDataKeyRequest), enc(v16(1), v16(ctx), u16(32), u8(1)), enc(v16(1), v16(ctx+1), u16(32), u8(1))},
		{"GenerateDataKey plaintext", parseOf(hsmcmd.ParseGenerateDataKeyResponse), enc(v16(hsmcmd.MaxRandom), v16(1)), enc(v16(hsmcmd.MaxRandom+1), v16(1))},
		{"GenerateDataKey blob", parseOf(hsmcmd.ParseGenerateDataKeyResponse), enc(v16(0), v16(hbk.MaxBlob)), enc(v16(0), v16(hbk.MaxBlob+1))},
		{"GenerateDataKey no blob", parseOf(hsmcmd.ParseGenerateDataKeyResponse), enc(v16(0), v16(1)), enc(v16(0), v16(0))},
		{"Decrypt blob", parseOf(hsmcmd.ParseDecryptRequest), enc(v16(1), v16(0), v16(hbk.MaxBlob)), enc(v16(1), v16(0), v16(hbk.MaxBlob+1))},
		{"Decrypt plaintext", parseOf(hsmcmd.ParseDecryptResponse), enc(raw(hbk.MaxPlaintext)), enc(raw(hbk.MaxPlaintext + 1))},
		{"ReEncrypt destination context", parseOf(hsmcmd.ParseReEncryptRequest), enc(v16(1), v16(0), v16(1), v16(tok), v16(ctx)), enc(v16(1), v16(0), v16(1), v16(tok), v16(ctx+1))},
		{"ReEncrypt destination token", parseOf(hsmcmd.ParseReEncryptRequest), enc(v16(1), v16(0), v16(1), v16(tok), v16(0)), enc(v16(1), v16(0), v16(1), v16(tok+1), v16(0))},
		{"ReEncrypt blob", parseOf(hsmcmd.ParseReEncryptResponse), enc(raw(hbk.MaxBlob)), enc(raw(hbk.MaxBlob + 1))},

		{"CreateKeyPair key ID", parseOf(hsmcmd.ParseCreateKeyPairRequest), enc(u8(1), v8(hbk.MaxKeyID)), enc(u8(1), v8(hbk.MaxKeyID+1))},
		{"CreateKeyPair token", parseOf(hsmcmd.ParseCreateKeyPairResponse), enc(v16(ktok), v16(0)), enc(v16(ktok+1), v16(0))},
		{"CreateKeyPair public key", parseOf(hsmcmd.ParseCreateKeyPairResponse), enc(v16(1), v16(hsmcmd.MaxPublicKey)), enc(v16(1), v16(hsmcmd.MaxPublicKey+1))},
		{"Sign token", parseOf(hsmcmd.ParseSignRequest), enc(v16(ktok), u8(7), u8(0), v16(1)), enc(v16(ktok+1), u8(7), u8(0), v16(1))},
		{"Sign message", parseOf(hsmcmd.ParseSignRequest), enc(v16(1), u8(7), u8(0), v16(hsmcmd.MaxSignMessage)), enc(v16(1), u8(7), u8(0), v16(hsmcmd.MaxSignMessage+1))},
		{"Sign message type", parseOf(hsmcmd.ParseSignRequest), enc(v16(1), u8(7), u8(1), v16(32)), enc(v16(1), u8(7), u8(2), v16(32))},
		{"Sign signature", parseOf(hsmcmd.ParseSignResponse), enc(raw(hsmcmd.MaxSignature)), enc(raw(hsmcmd.MaxSignature + 1))},
		{"AsymDecrypt ciphertext", parseOf(hsmcmd.ParseAsymDecryptRequest), enc(v16(1), u8(11), v16(hsmcmd.MaxAsymCiphertext)), enc(v16(1), u8(11), v16(hsmcmd.MaxAsymCiphertext+1))},
		{"ImportKeyMaterial material", parseOf(hsmcmd.ParseImportKeyMaterialRequest), enc(v16(1), u8(11), v16(hsmcmd.MaxWrappedMaterial), v8(36), v8(0)), enc(v16(1), u8(11), v16(hsmcmd.MaxWrappedMaterial+1), v8(36), v8(0))},
		{"ImportKeyToken material", parseOf(hsmcmd.ParseImportKeyTokenRequest), enc(v16(1), u8(18), u8(1), v16(hsmcmd.MaxWrappedMaterial), v8(36)), enc(v16(1), u8(18), u8(1), v16(hsmcmd.MaxWrappedMaterial+1), v8(36))},
		{"ImportKeyToken wrapping token", parseOf(hsmcmd.ParseImportKeyTokenRequest), enc(v16(ktok), u8(18), u8(1), v16(1), v8(36)), enc(v16(ktok+1), u8(18), u8(1), v16(1), v8(36))},
		{"ImportKeyToken key ID", parseOf(hsmcmd.ParseImportKeyTokenRequest), enc(v16(1), u8(18), u8(1), v16(1), v8(hbk.MaxKeyID)), enc(v16(1), u8(18), u8(1), v16(1), v8(hbk.MaxKeyID+1))},
		{"ImportKeyToken token", parseOf(hsmcmd.ParseImportKeyTokenResponse), enc(v16(ktok), v16(0), v8(32)), enc(v16(ktok+1), v16(0), v8(32))},
		{"ImportKeyToken public key", parseOf(hsmcmd.ParseImportKeyTokenResponse), enc(v16(1), v16(hsmcmd.MaxPublicKey), v8(32)), enc(v16(1), v16(hsmcmd.MaxPublicKey+1), v8(32))},
		{"ImportKeyToken check value", parseOf(hsmcmd.ParseImportKeyTokenResponse), enc(v16(1), v16(0), v8(32)), enc(v16(1), v16(0), v8(33))},
		{"ImportKeyMaterial HBK ID", parseOf(hsmcmd.ParseImportKeyMaterialRequest), enc(v16(1), u8(11), v16(256), v8(36), v8(hbk.IDSize)), enc(v16(1), u8(11), v16(256), v8(36), v8(hbk.IDSize-1))},
		{"ImportKeyMaterial token", parseOf(hsmcmd.ParseImportKeyMaterialResponse), enc(v16(tok), v8(32)), enc(v16(tok+1), v8(32))},
		{"ImportKeyMaterial check value", parseOf(hsmcmd.ParseImportKeyMaterialResponse), enc(v16(1), v8(32)), enc(v16(1), v8(31))},
		{"AsymDecrypt plaintext", parseOf(hsmcmd.ParseAsymDecryptResponse), enc(raw(hsmcmd.MaxAsymCiphertext)), enc(raw(hsmcmd.MaxAsymCiphertext + 1))},
		{"GenerateMac message", parseOf(hsmcmd.ParseGenerateMacRequest), enc(v16(1), u8(13), v16(hsmcmd.MaxMacMessage)), enc(v16(1), u8(13), v16(hsmcmd.MaxMacMessage+1))},
		{"GenerateMac MAC", parseOf(hsmcmd.ParseGenerateMacResponse), enc(raw(hsmcmd.MaxMac)), enc(raw(hsmcmd.MaxMac + 1))},
		{"VerifyMac message", parseOf(hsmcmd.ParseVerifyMacRequest), enc(v16(1), u8(13), v16(hsmcmd.MaxMacMessage), v16(32)), enc(v16(1), u8(13), v16(hsmcmd.MaxMacMessage+1), v16(32))},
		{"VerifyMac verdict", parseOf(hsmcmd.ParseVerifyMacResponse), enc(u8(1)), enc(u8(2))},
		{"DeriveSharedSecret peer key", parseOf(hsmcmd.ParseDeriveSharedSecretRequest), enc(v16(1), v16(hsmcmd.MaxPublicKey)), enc(v16(1), v16(hsmcmd.MaxPublicKey+1))},
		{"DeriveSharedSecret secret", parseOf(hsmcmd.ParseDeriveSharedSecretResponse), enc(raw(hsmcmd.MaxSharedSecret)), enc(raw(hsmcmd.MaxSharedSecret + 1))},
		{"GenerateDataKeyPair flags", parseOf(hsmcmd.ParseGenerateDataKeyPairRequest), enc(v16(1), v16(0), u8(4), u8(1)), enc(v16(1), v16(0), u8(4), u8(3))},
		{"GenerateDataKeyPair token", parseOf(hsmcmd.ParseGenerateDataKeyPairRequest), enc(v16(tok), v16(0), u8(4), u8(1)), enc(v16(tok+1), v16(0), u8(4), u8(1))},
		{"GenerateDataKeyPair private key", parseOf(hsmcmd.ParseGenerateDataKeyPairResponse), enc(v16(hbk.MaxPlaintext), v16(1), v16(1)), enc(v16(hbk.MaxPlaintext+1), v16(1), v16(1))},
		{"GenerateDataKeyPair blob", parseOf(hsmcmd.ParseGenerateDataKeyPairResponse), enc(v16(0), v16(1), v16(hbk.MaxBlob)), enc(v16(0), v16(1), v16(hbk.MaxBlob+1))},
		{"Verify public key", parseOf(hsmcmd.ParseVerifyRequest), enc(v16(hsmcmd.MaxPublicKey), u8(7), u8(0), v16(1), v16(8)), enc(v16(hsmcmd.MaxPublicKey+1), u8(7), u8(0), v16(1), v16(8))},
		{"Verify message", parseOf(hsmcmd.ParseVerifyRequest), enc(v16(88), u8(7), u8(0), v16(hsmcmd.MaxSignMessage), v16(8)), enc(v16(88), u8(7), u8(0), v16(hsmcmd.MaxSignMessage+1), v16(8))},
		{"Verify verdict", parseOf(hsmcmd.ParseVerifyResponse), enc(u8(0)), enc(u8(2))},

		{"Batch count", parseOf(hsmcmd.ParseBatchRequest), enc(u16(1), u16(6), v24(2)), enc(u16(0))},
		{"Batch too many", parseOf(hsmcmd.ParseBatchRequest), enc(u16(1), u16(6), v24(2)), enc(u16(hsmcmd.MaxBatch + 1))},
		{"Batch command type", parseOf(hsmcmd.ParseBatchRequest), enc(u16(1), u16(6), v24(2)), enc(u16(1), u16(2), v24(2))},
		{"Batch command", parseOf(hsmcmd.ParseBatchRequest), enc(u16(1), u16(6), v24(hsmcmd.MaxMessage)), enc(u16(1), u16(6), v24(hsmcmd.MaxMessage+1))},
		{"Batch result count", func(b []byte) error { _, err := hsmcmd.ParseBatchResponse(b, 1); return err }, enc(u16(1), u16(0), v24(1)), enc(u16(2), u16(0), v24(1), u16(0), v24(1))},
		{"Batch failure with answer", func(b []byte) error { _, err := hsmcmd.ParseBatchResponse(b, 1); return err }, enc(u16(1), u16(23), v24(0)), enc(u16(1), u16(23), v24(1))},
		{"Recipient document", parseOf(hsmcmd.ParseRecipientRequest), enc(v24(nitro.MaxDocument), u16(6), v24(2)), enc(v24(nitro.MaxDocument+1), u16(6), v24(2))},
		{"Recipient inner type", parseOf(hsmcmd.ParseRecipientRequest), enc(v24(1), u16(10), v24(2)), enc(v24(1), u16(8), v24(2))},
		{"Recipient inner command", parseOf(hsmcmd.ParseRecipientRequest), enc(v24(1), u16(6), v24(hsmcmd.MaxMessage)), enc(v24(1), u16(6), v24(hsmcmd.MaxMessage+1))},
		{"Recipient CiphertextForRecipient", parseOf(hsmcmd.ParseRecipientResponse), enc(v16(1), v16(0)), enc(v16(0), v16(0))},
	}
	for _, c := range cases {
		if c.ok != nil || c.name == "DomainStatus command" {
			require.NoError(t, c.parse(c.ok), "%s: within the maximum", c.name)
		}
		if c.over != nil || c.name == "Export empty" {
			err := c.parse(c.over)
			require.ErrorIs(t, err, hsmcmd.ErrMalformed, "%s: over the maximum", c.name)
		}
	}
}

// Marshal refuses what Parse would refuse.
func TestMarshalRefuses(t *testing.T) {
	for name, m := range map[string]interface{ Marshal() ([]byte, error) }{
		"long ping":                 hsmcmd.PingRequest{Payload: make([]byte, hsmcmd.MaxPing+1)},
		"random of 0":               hsmcmd.RandomRequest{},
		"random of 1025":            hsmcmd.RandomRequest{Size: hsmcmd.MaxRandom + 1},
		"empty EKT":                 hsmcmd.ReencryptEKTsRequest{EKTs: [][]byte{nil}},
		"failed EKT with bytes":     hsmcmd.ReencryptEKTsResponse{Results: []hsmcmd.EKTResult{{Alert: 12, EKT: []byte{1}}}},
		"empty EKT success":         hsmcmd.ReencryptEKTsResponse{Results: []hsmcmd.EKTResult{{}}},
		"long plaintext":            hsmcmd.EncryptRequest{Plaintext: make([]byte, hbk.MaxPlaintext+1)},
		"long HBK token":            hsmcmd.DecryptRequest{Token: make([]byte, hsmcmd.MaxHBKToken+1)},
		"data key of 0":             hsmcmd.GenerateDataKeyRequest{},
		"long key ID":               hsmcmd.CreateKeyPairRequest{KeyID: string(make([]byte, hbk.MaxKeyID+1))},
		"key ID beyond v8":          hsmcmd.CreateHBKRequest{KeyID: string(make([]byte, 256))},
		"long message":              hsmcmd.SignRequest{Message: make([]byte, hsmcmd.MaxSignMessage+1)},
		"empty batch":               hsmcmd.BatchRequest{},
		"unbatchable":               hsmcmd.BatchRequest{Items: []hsmcmd.BatchItem{{Code: hsmcmd.Export}}},
		"batch of 65":               hsmcmd.BatchRequest{Items: make([]hsmcmd.BatchItem, hsmcmd.MaxBatch+1)},
		"failed batch with answer":  hsmcmd.BatchResponse{Results: []hsmcmd.BatchResult{{Alert: 23, Response: []byte{1}}}},
		"not an inner command":      hsmcmd.RecipientRequest{Inner: hsmcmd.Encrypt},
		"no CiphertextForRecipient": hsmcmd.RecipientResponse{},
		"no blob":                   hsmcmd.GenerateDataKeyResponse{},
	} {
		_, err := m.Marshal()
		require.ErrorIs(t, err, hsmcmd.ErrMalformed, name)
	}
}

// The byte layouts of docs/protocol.md, spelled out.
func TestLayouts(t *testing.T) {
	b, err := hsmcmd.GenerateDataKeyRequest{Token: []byte("tok"), Context: []byte("ec"), Size: 32, WithPlaintext: true}.Marshal()
	require.NoError(t, err)
	require.Equal(t, []byte{0, 3, 't', 'o', 'k', 0, 2, 'e', 'c', 0, 32, 1}, b)

	ans, err := hsmcmd.GenerateDataKeyResponse{Plaintext: []byte("pt"), Blob: []byte("blob")}.Marshal()
	require.NoError(t, err)
	require.Equal(t, []byte{0, 2, 'p', 't', 0, 4, 'b', 'l', 'o', 'b'}, ans)
	dk, err := hsmcmd.ParseGenerateDataKeyResponse(ans)
	require.NoError(t, err)
	require.Equal(t, "pt", string(dk.Plaintext))
	require.Equal(t, "blob", string(dk.Blob))
	_, err = hsmcmd.ParseGenerateDataKeyResponse(append(ans, 0))
	require.ErrorIs(t, err, hsmcmd.ErrMalformed)

	b, err = hsmcmd.BatchRequest{Items: []hsmcmd.BatchItem{{Code: hsmcmd.Random, Command: []byte{0, 8}}}}.Marshal()
	require.NoError(t, err)
	require.Equal(t, []byte{0, 1, 0, 6, 0, 0, 2, 0, 8}, b)
	b, err = hsmcmd.BatchResponse{Results: []hsmcmd.BatchResult{{Response: []byte("ok")}, {Alert: 23}}}.Marshal()
	require.NoError(t, err)
	require.Equal(t, []byte{0, 2, 0, 0, 0, 0, 2, 'o', 'k', 0, 23, 0, 0, 0}, b)
	res, err := hsmcmd.ParseBatchResponse(b, 2)
	require.NoError(t, err)
	require.NoError(t, res.Results[0].Err())
	require.ErrorIs(t, res.Results[1].Err(), session.ErrRefused)

	b, err = hsmcmd.ReencryptEKTsResponse{Results: []hsmcmd.EKTResult{{EKT: []byte("e")}, {Alert: 18}}}.Marshal()
	require.NoError(t, err)
	require.Equal(t, []byte{0, 2, 0, 0, 0, 1, 'e', 0, 18, 0, 0}, b)
	r, err := hsmcmd.ParseReencryptEKTsResponse(b)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("e"), nil}, r.EKTs())
	require.ErrorIs(t, r.Errs()[1], session.ErrReplay)

	req, err := hsmcmd.NewRecipientRequest([]byte("doc"), hsmcmd.RandomRequest{Size: 32})
	require.NoError(t, err)
	b, err = req.Marshal()
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 3, 'd', 'o', 'c', 0, 6, 0, 0, 2, 0, 32}, b)
	_, err = hsmcmd.NewRecipientRequest(nil, hsmcmd.RandomRequest{})
	require.ErrorIs(t, err, hsmcmd.ErrMalformed, "the inner command's own limits")

	b, err = hsmcmd.ImportResponse{Version: 258}.Marshal()
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 0, 0, 0, 0, 1, 2}, b)
	b, err = hsmcmd.VerifyResponse{Valid: true}.Marshal()
	require.NoError(t, err)
	require.Equal(t, []byte{1}, b)
}

// Parse functions that copy do not alias their input (the host clears it).
func TestCopies(t *testing.T) {
	b := enc(u16(1), u16(0), v24(2))
	res, err := hsmcmd.ParseBatchResponse(b, 1)
	require.NoError(t, err)
	clear(b)
	require.Equal(t, []byte{0, 0}, res.Results[0].Response)
	b = enc(u16(1), []byte{0, 1, 9})
	e, err := hsmcmd.ParseReencryptEKTsRequest(b)
	require.NoError(t, err)
	clear(b)
	require.Equal(t, [][]byte{{9}}, e.EKTs)
}
