package hsmcmd_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/nitro"
	"github.com/trentkms/trent/session"
)

// kind is one message type under test: a generator of random valid
// values, its Parse, and whether the encoding delimits itself (a message
// whose last field is the rest of the input has parsable prefixes).
type kind struct {
	name      string
	family    string
	delimited bool
	gen       func(*rand.Rand) marshaler
	parse     func([]byte) (any, error)
}

type marshaler interface{ Marshal() ([]byte, error) }

func mk[T marshaler](family, name string, delimited bool, gen func(*rand.Rand) T, parse func([]byte) (*T, error)) kind {
	return kind{
		name: name, family: family, delimited: delimited,
		gen: func(r *rand.Rand) marshaler { return gen(r) },
		parse: func(b []byte) (any, error) {
			m, err := parse(b)
			if err != nil {
				return nil, err
			}
			return *m, nil
		},
	}
}

// bs is random bytes, min to max long, mostly short, sometimes max.
func bs(r *rand.Rand, lo, hi int) []byte {
	n := lo + r.IntN(min(hi, lo+48)-lo+1)
	if r.IntN(8) == 0 && hi <= 1<<16 {
		n = hi
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func str(r *rand.Rand, lo, hi int) string { return string(bs(r, lo, hi)) }

func parseBatchResponse(b []byte) (*hsmcmd.BatchResponse, error) {
	n := 0
	if len(b) >= 2 {
		n = int(b[0])<<8 | int(b[1])
	}
	return hsmcmd.ParseBatchResponse(b, n)
}

var batchable = []hsmcmd.Code{hsmcmd.Random, hsmcmd.Encrypt, hsmcmd.GenerateDataKey, hsmcmd.Decrypt, hsmcmd.ReEncrypt,
	hsmcmd.Sign, hsmcmd.AsymDecrypt, hsmcmd.GenerateMac, hsmcmd.VerifyMac, hsmcmd.DeriveSharedSecret, hsmcmd.Verify, hsmcmd.Recipient}

var inner = []hsmcmd.Code{hsmcmd.Random, hsmcmd.GenerateDataKey, hsmcmd.Decrypt, hsmcmd.DeriveSharedSecret, hsmcmd.GenerateDataKeyPair}

func alert(r *rand.Rand) uint16 { return uint16(1 + r.IntN(23)) }

var kinds = []kind{
	// Ping, the domain operations, Random.
	mk("domain", "PingRequest", false, func(r *rand.Rand) hsmcmd.PingRequest {
		return hsmcmd.PingRequest{Payload: bs(r, 0, hsmcmd.MaxPing)}
	}, hsmcmd.ParsePingRequest),
	mk("domain", "PingResponse", false, func(r *rand.Rand) hsmcmd.PingResponse {
		return hsmcmd.PingResponse{Payload: bs(r, 0, hsmcmd.MaxPing)}
	}, hsmcmd.ParsePingResponse),
	mk("domain", "ExportRequest", false, func(r *rand.Rand) hsmcmd.ExportRequest {
		return hsmcmd.ExportRequest{SignedCommand: bs(r, 1, hsmcmd.MaxMessage)}
	}, hsmcmd.ParseExportRequest),
	mk("domain", "ExportResponse", false, func(r *rand.Rand) hsmcmd.ExportResponse {
		return hsmcmd.ExportResponse{Token: bs(r, 1, hsmcmd.MaxTokenSize)}
	}, hsmcmd.ParseExportResponse),
	mk("domain", "ImportRequest", false, func(r *rand.Rand) hsmcmd.ImportRequest {
		return hsmcmd.ImportRequest{Token: bs(r, 1, hsmcmd.MaxTokenSize)}
	}, hsmcmd.ParseImportRequest),
	mk("domain", "ImportResponse", true, func(r *rand.Rand) hsmcmd.ImportResponse {
		return hsmcmd.ImportResponse{Version: r.Uint64()}
	}, hsmcmd.ParseImportResponse),
	mk("domain", "ReencryptEKTsRequest", true, func(r *rand.Rand) hsmcmd.ReencryptEKTsRequest {
		m := hsmcmd.ReencryptEKTsRequest{EKTs: make([][]byte, r.IntN(5))}
		for i := range m.EKTs {
			m.EKTs[i] = bs(r, 1, session.MaxEKTLen)
		}
		return m
	}, hsmcmd.ParseReencryptEKTsRequest),
	mk("domain", "ReencryptEKTsResponse", true, func(r *rand.Rand) hsmcmd.ReencryptEKTsResponse {
		m := hsmcmd.ReencryptEKTsResponse{Results: make([]hsmcmd.EKTResult, r.IntN(5))}
		for i := range m.Results {
			if r.IntN(3) == 0 {
				m.Results[i].Alert = alert(r)
			} else {
				m.Results[i].EKT = bs(r, 1, session.MaxEKTLen)
			}
		}
		return m
	}, hsmcmd.ParseReencryptEKTsResponse),
	mk("domain", "DomainStatusRequest", true, func(r *rand.Rand) hsmcmd.DomainStatusRequest {
		return hsmcmd.DomainStatusRequest{}
	}, hsmcmd.ParseDomainStatusRequest),
	mk("domain", "DomainStatusResponse", false, func(r *rand.Rand) hsmcmd.DomainStatusResponse {
		return hsmcmd.DomainStatusResponse{State: bs(r, 0, hsmcmd.MaxMessage)}
	}, hsmcmd.ParseDomainStatusResponse),
	mk("domain", "RandomRequest", true, func(r *rand.Rand) hsmcmd.RandomRequest {
		return hsmcmd.RandomRequest{Size: uint16(1 + r.IntN(hsmcmd.MaxRandom))}
	}, hsmcmd.ParseRandomRequest),
	mk("domain", "RandomResponse", false, func(r *rand.Rand) hsmcmd.RandomResponse {
		return hsmcmd.RandomResponse{Bytes: bs(r, 1, hsmcmd.MaxRandom)}
	}, hsmcmd.ParseRandomResponse),

	// The customer key hierarchy.
	mk("hierarchy", "CreateHBKRequest", true, func(r *rand.Rand) hsmcmd.CreateHBKRequest {
		return hsmcmd.CreateHBKRequest{KeyID: str(r, 0, hsmcmd.MaxKeyIDField)}
	}, hsmcmd.ParseCreateHBKRequest),
	mk("hierarchy", "CreateHBKResponse", false, func(r *rand.Rand) hsmcmd.CreateHBKResponse {
		return hsmcmd.CreateHBKResponse{Token: bs(r, 1, hsmcmd.MaxHBKToken)}
	}, hsmcmd.ParseCreateHBKResponse),
	mk("hierarchy", "EncryptRequest", true, func(r *rand.Rand) hsmcmd.EncryptRequest {
		return hsmcmd.EncryptRequest{Token: bs(r, 0, hsmcmd.MaxHBKToken), Context: bs(r, 0, hbk.MaxContext), Plaintext: bs(r, 0, hbk.MaxPlaintext)}
	}, hsmcmd.ParseEncryptRequest),
	mk("hierarchy", "EncryptResponse", false, func(r *rand.Rand) hsmcmd.EncryptResponse {
		return hsmcmd.EncryptResponse{Blob: bs(r, 1, hbk.MaxBlob)}
	}, hsmcmd.ParseEncryptResponse),
	mk("hierarchy", "GenerateDataKeyRequest", true, func(r *rand.Rand) hsmcmd.GenerateDataKeyRequest {
		return hsmcmd.GenerateDataKeyRequest{Token: bs(r, 0, hsmcmd.MaxHBKToken), Context: bs(r, 0, hbk.MaxContext),
			Size: uint16(1 + r.IntN(hsmcmd.MaxRandom)), WithPlaintext: r.IntN(2) == 0}
	}, hsmcmd.ParseGenerateDataKeyRequest),
	mk("hierarchy", "GenerateDataKeyResponse", true, func(r *rand.Rand) hsmcmd.GenerateDataKeyResponse {
		return hsmcmd.GenerateDataKeyResponse{Plaintext: bs(r, 0, hsmcmd.MaxRandom), Blob: bs(r, 1, hbk.MaxBlob)}
	}, hsmcmd.ParseGenerateDataKeyResponse),
	mk("hierarchy", "DecryptRequest", true, func(r *rand.Rand) hsmcmd.DecryptRequest {
		return hsmcmd.DecryptRequest{Token: bs(r, 0, hsmcmd.MaxHBKToken), Context: bs(r, 0, hbk.MaxContext), Blob: bs(r, 0, hbk.MaxBlob)}
	}, hsmcmd.ParseDecryptRequest),
	mk("hierarchy", "DecryptResponse", false, func(r *rand.Rand) hsmcmd.DecryptResponse {
		return hsmcmd.DecryptResponse{Plaintext: bs(r, 1, hbk.MaxPlaintext)}
	}, hsmcmd.ParseDecryptResponse),
	mk("hierarchy", "ReEncryptRequest", true, func(r *rand.Rand) hsmcmd.ReEncryptRequest {
		return hsmcmd.ReEncryptRequest{SourceToken: bs(r, 0, hsmcmd.MaxHBKToken), SourceContext: bs(r, 0, hbk.MaxContext),
			Blob: bs(r, 0, hbk.MaxBlob), DestinationToken: bs(r, 0, hsmcmd.MaxHBKToken), DestinationContext: bs(r, 0, hbk.MaxContext)}
	}, hsmcmd.ParseReEncryptRequest),
	mk("hierarchy", "ReEncryptResponse", false, func(r *rand.Rand) hsmcmd.ReEncryptResponse {
		return hsmcmd.ReEncryptResponse{Blob: bs(r, 1, hbk.MaxBlob)}
	}, hsmcmd.ParseReEncryptResponse),

	// Asymmetric, HMAC and ML-DSA keys.
	mk("asym", "CreateKeyPairRequest", true, func(r *rand.Rand) hsmcmd.CreateKeyPairRequest {
		return hsmcmd.CreateKeyPairRequest{Spec: uint8(r.UintN(256)), KeyID: str(r, 0, hbk.MaxKeyID)}
	}, hsmcmd.ParseCreateKeyPairRequest),
	mk("asym", "CreateKeyPairResponse", true, func(r *rand.Rand) hsmcmd.CreateKeyPairResponse {
		return hsmcmd.CreateKeyPairResponse{Token: bs(r, 1, hsmcmd.MaxKeyToken), PublicKey: bs(r, 0, hsmcmd.MaxPublicKey)}
	}, hsmcmd.ParseCreateKeyPairResponse),
	mk("asym", "SignRequest", true, func(r *rand.Rand) hsmcmd.SignRequest {
		return hsmcmd.SignRequest{Token: bs(r, 0, hsmcmd.MaxKeyToken), Alg: uint8(r.UintN(256)), Digest: r.IntN(2) == 0, Message: bs(r, 0, hsmcmd.MaxSignMessage)}
	}, hsmcmd.ParseSignRequest),
	mk("asym", "SignResponse", false, func(r *rand.Rand) hsmcmd.SignResponse {
		return hsmcmd.SignResponse{Signature: bs(r, 1, hsmcmd.MaxSignature)}
	}, hsmcmd.ParseSignResponse),
	mk("asym", "AsymDecryptRequest", true, func(r *rand.Rand) hsmcmd.AsymDecryptRequest {
		return hsmcmd.AsymDecryptRequest{Token: bs(r, 0, hsmcmd.MaxKeyToken), Alg: uint8(r.UintN(256)), Ciphertext: bs(r, 0, hsmcmd.MaxAsymCiphertext)}
	}, hsmcmd.ParseAsymDecryptRequest),
	mk("import", "ImportKeyMaterialRequest", true, func(r *rand.Rand) hsmcmd.ImportKeyMaterialRequest {
		m := hsmcmd.ImportKeyMaterialRequest{WrappingToken: bs(r, 0, hsmcmd.MaxKeyToken), Alg: uint8(r.UintN(256)),
			Material: bs(r, 0, hsmcmd.MaxWrappedMaterial), KeyID: str(r, 0, hbk.MaxKeyID)}
		if r.IntN(2) == 0 {
			m.HBKID = bs(r, hbk.IDSize, hbk.IDSize)
		}
		return m
	}, hsmcmd.ParseImportKeyMaterialRequest),
	mk("import", "ImportKeyMaterialResponse", true, func(r *rand.Rand) hsmcmd.ImportKeyMaterialResponse {
		return hsmcmd.ImportKeyMaterialResponse{Token: bs(r, 1, hsmcmd.MaxHBKToken), Check: bs(r, hsmcmd.CheckValueSize, hsmcmd.CheckValueSize)}
	}, hsmcmd.ParseImportKeyMaterialResponse),
	mk("import", "ImportKeyTokenRequest", true, func(r *rand.Rand) hsmcmd.ImportKeyTokenRequest {
		return hsmcmd.ImportKeyTokenRequest{WrappingToken: bs(r, 0, hsmcmd.MaxKeyToken), Alg: uint8(r.UintN(256)), Spec: uint8(r.UintN(256)),
			Material: bs(r, 0, hsmcmd.MaxWrappedMaterial), KeyID: str(r, 0, hbk.MaxKeyID)}
	}, hsmcmd.ParseImportKeyTokenRequest),
	mk("import", "ImportKeyTokenResponse", true, func(r *rand.Rand) hsmcmd.ImportKeyTokenResponse {
		return hsmcmd.ImportKeyTokenResponse{Token: bs(r, 1, hsmcmd.MaxKeyToken), PublicKey: bs(r, 0, hsmcmd.MaxPublicKey),
			Check: bs(r, hsmcmd.CheckValueSize, hsmcmd.CheckValueSize)}
	}, hsmcmd.ParseImportKeyTokenResponse),
	mk("asym", "AsymDecryptResponse", false, func(r *rand.Rand) hsmcmd.AsymDecryptResponse {
		return hsmcmd.AsymDecryptResponse{Plaintext: bs(r, 0, hsmcmd.MaxAsymCiphertext)}
	}, hsmcmd.ParseAsymDecryptResponse),
	mk("asym", "GenerateMacRequest", true, func(r *rand.Rand) hsmcmd.GenerateMacRequest {
		return hsmcmd.GenerateMacRequest{Token: bs(r, 0, hsmcmd.MaxKeyToken), Alg: uint8(r.UintN(256)), Message: bs(r, 0, hsmcmd.MaxMacMessage)}
	}, hsmcmd.ParseGenerateMacRequest),
	mk("asym", "GenerateMacResponse", false, func(r *rand.Rand) hsmcmd.GenerateMacResponse {
		return hsmcmd.GenerateMacResponse{Mac: bs(r, 1, hsmcmd.MaxMac)}
	}, hsmcmd.ParseGenerateMacResponse),
	mk("asym", "VerifyMacRequest", true, func(r *rand.Rand) hsmcmd.VerifyMacRequest {
		return hsmcmd.VerifyMacRequest{Token: bs(r, 0, hsmcmd.MaxKeyToken), Alg: uint8(r.UintN(256)), Message: bs(r, 0, hsmcmd.MaxMacMessage), Mac: bs(r, 0, hsmcmd.MaxVerifyField)}
	}, hsmcmd.ParseVerifyMacRequest),
	mk("asym", "VerifyMacResponse", true, func(r *rand.Rand) hsmcmd.VerifyMacResponse {
		return hsmcmd.VerifyMacResponse{Valid: r.IntN(2) == 0}
	}, hsmcmd.ParseVerifyMacResponse),
	mk("asym", "DeriveSharedSecretRequest", true, func(r *rand.Rand) hsmcmd.DeriveSharedSecretRequest {
		return hsmcmd.DeriveSharedSecretRequest{Token: bs(r, 0, hsmcmd.MaxKeyToken), PeerPublicKey: bs(r, 0, hsmcmd.MaxPublicKey)}
	}, hsmcmd.ParseDeriveSharedSecretRequest),
	mk("asym", "DeriveSharedSecretResponse", false, func(r *rand.Rand) hsmcmd.DeriveSharedSecretResponse {
		return hsmcmd.DeriveSharedSecretResponse{Secret: bs(r, 1, hsmcmd.MaxSharedSecret)}
	}, hsmcmd.ParseDeriveSharedSecretResponse),
	mk("asym", "GenerateDataKeyPairRequest", true, func(r *rand.Rand) hsmcmd.GenerateDataKeyPairRequest {
		return hsmcmd.GenerateDataKeyPairRequest{Token: bs(r, 0, hsmcmd.MaxHBKToken), Context: bs(r, 0, hbk.MaxContext),
			Spec: uint8(r.UintN(256)), WithPrivateKey: r.IntN(2) == 0}
	}, hsmcmd.ParseGenerateDataKeyPairRequest),
	mk("asym", "GenerateDataKeyPairResponse", true, func(r *rand.Rand) hsmcmd.GenerateDataKeyPairResponse {
		return hsmcmd.GenerateDataKeyPairResponse{PrivateKey: bs(r, 0, hbk.MaxPlaintext), PublicKey: bs(r, 1, hsmcmd.MaxPublicKey), Blob: bs(r, 1, hbk.MaxBlob)}
	}, hsmcmd.ParseGenerateDataKeyPairResponse),
	mk("asym", "VerifyRequest", true, func(r *rand.Rand) hsmcmd.VerifyRequest {
		return hsmcmd.VerifyRequest{PublicKey: bs(r, 0, hsmcmd.MaxPublicKey), Alg: uint8(r.UintN(256)), Digest: r.IntN(2) == 0,
			Message: bs(r, 0, hsmcmd.MaxSignMessage), Signature: bs(r, 0, hsmcmd.MaxVerifyField)}
	}, hsmcmd.ParseVerifyRequest),
	mk("asym", "VerifyResponse", true, func(r *rand.Rand) hsmcmd.VerifyResponse {
		return hsmcmd.VerifyResponse{Valid: r.IntN(2) == 0}
	}, hsmcmd.ParseVerifyResponse),

	// The envelopes: Batch and Recipient.
	mk("batch", "BatchRequest", true, func(r *rand.Rand) hsmcmd.BatchRequest {
		m := hsmcmd.BatchRequest{Items: make([]hsmcmd.BatchItem, 1+r.IntN(6))}
		if r.IntN(16) == 0 {
			m.Items = make([]hsmcmd.BatchItem, hsmcmd.MaxBatch)
		}
		for i := range m.Items {
			m.Items[i] = hsmcmd.BatchItem{Code: batchable[r.IntN(len(batchable))], Command: bs(r, 0, 64)}
		}
		return m
	}, hsmcmd.ParseBatchRequest),
	mk("batch", "BatchResponse", true, func(r *rand.Rand) hsmcmd.BatchResponse {
		m := hsmcmd.BatchResponse{Results: make([]hsmcmd.BatchResult, r.IntN(hsmcmd.MaxBatch+1))}
		for i := range m.Results {
			if r.IntN(3) == 0 {
				m.Results[i].Alert = alert(r)
			} else {
				m.Results[i].Response = bs(r, 0, 64)
			}
		}
		return m
	}, parseBatchResponse),
	mk("recipient", "RecipientRequest", true, func(r *rand.Rand) hsmcmd.RecipientRequest {
		return hsmcmd.RecipientRequest{Document: bs(r, 0, nitro.MaxDocument), Inner: inner[r.IntN(len(inner))], Command: bs(r, 0, 256)}
	}, hsmcmd.ParseRecipientRequest),
	mk("recipient", "RecipientResponse", true, func(r *rand.Rand) hsmcmd.RecipientResponse {
		return hsmcmd.RecipientResponse{CiphertextForRecipient: bs(r, 1, hsmcmd.MaxCiphertextForRecipient), Rest: bs(r, 0, 0xffff)}
	}, hsmcmd.ParseRecipientResponse),
	// Multi-Region keys.
	mk("replica", "ExportReplicaRequest", true, func(r *rand.Rand) hsmcmd.ExportReplicaRequest {
		return hsmcmd.ExportReplicaRequest{Region: str(r, 1, hsmcmd.MaxRegionName), KeyID: str(r, 0, hbk.MaxKeyID), Tokens: tokens(r)}
	}, hsmcmd.ParseExportReplicaRequest),
	mk("replica", "ExportReplicaResponse", true, func(r *rand.Rand) hsmcmd.ExportReplicaResponse {
		return hsmcmd.ExportReplicaResponse{Transport: bs(r, 1, 4096)}
	}, hsmcmd.ParseExportReplicaResponse),
	mk("replica", "ImportReplicaRequest", true, func(r *rand.Rand) hsmcmd.ImportReplicaRequest {
		return hsmcmd.ImportReplicaRequest{Region: str(r, 1, hsmcmd.MaxRegionName), KeyID: str(r, 0, hbk.MaxKeyID), Transport: bs(r, 1, 4096)}
	}, hsmcmd.ParseImportReplicaRequest),
	mk("replica", "ImportReplicaResponse", true, func(r *rand.Rand) hsmcmd.ImportReplicaResponse {
		return hsmcmd.ImportReplicaResponse{Tokens: tokens(r)}
	}, hsmcmd.ParseImportReplicaResponse),
}

// same compares two messages, a nil and an empty byte slice alike.
func same(a, b any) bool {
	return reflect.TypeOf(a) == reflect.TypeOf(b) && fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

// Every message: parse(marshal(x)) == x and marshal(parse(b)) == b, for
// random x; no strict prefix of a self-delimiting message parses; a
// trailing byte is refused.
func TestRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for i := range 100 {
				x := k.gen(r)
				b, err := x.Marshal()
				if err != nil {
					t.Fatalf("%d: marshal: %v", i, err)
				}
				y, err := k.parse(b)
				if err != nil {
					t.Fatalf("%d: parse: %v", i, err)
				}
				if !same(x, y) {
					t.Fatalf("%d: parse(marshal(x)) != x:\n%+v\n%+v", i, x, y)
				}
				b2, err := y.(marshaler).Marshal()
				if err != nil || !bytes.Equal(b, b2) {
					t.Fatalf("%d: marshal(parse(b)) != b: %v", i, err)
				}
				if !k.delimited {
					continue
				}
				if _, err := k.parse(append(bytes.Clone(b), 0)); err == nil {
					t.Fatalf("%d: a trailing byte parsed", i)
				}
				if len(b) > 4096 && i%10 != 0 {
					continue // long prefixes: every tenth message
				}
				for j := range len(b) {
					if _, err := k.parse(b[:j]); err == nil {
						t.Fatalf("%d: the prefix of %d of %d bytes parsed", i, j, len(b))
					}
				}
			}
		})
	}
}

func fuzzFamily(f *testing.F, family string) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range kinds {
		if k.family != family {
			continue
		}
		for range 4 {
			if b, err := k.gen(r).Marshal(); err == nil && len(b) < 4096 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, k := range kinds {
			if k.family != family {
				continue
			}
			m, err := k.parse(b)
			if err != nil {
				continue
			}
			out, err := m.(marshaler).Marshal()
			if err != nil || !bytes.Equal(out, b) {
				t.Fatalf("%s: parse→marshal changed the bytes: %v", k.name, err)
			}
		}
	})
}

// One fuzz target per family: whatever parses marshals to the same bytes.
func FuzzDomain(f *testing.F)    { fuzzFamily(f, "domain") }
func FuzzHierarchy(f *testing.F) { fuzzFamily(f, "hierarchy") }
func FuzzAsym(f *testing.F)      { fuzzFamily(f, "asym") }
func FuzzBatch(f *testing.F)     { fuzzFamily(f, "batch") }
func FuzzRecipient(f *testing.F) { fuzzFamily(f, "recipient") }
func FuzzImport(f *testing.F)    { fuzzFamily(f, "import") }
func FuzzReplica(f *testing.F)   { fuzzFamily(f, "replica") }

// tokens is 1 to 4 random HBK-token-sized fields.
func tokens(r *rand.Rand) [][]byte {
	out := make([][]byte, 1+r.IntN(4))
	for i := range out {
		out[i] = bs(r, 1, hsmcmd.MaxHBKToken)
	}
	return out
}
