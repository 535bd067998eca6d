package kms

import (
	"bytes"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/nitro"
)

var recipientClause = devRef + "services-nitro-enclaves.html; " + apiParam("Decrypt", "request", "Recipient")

// attest makes an attestation document from the simulated NSM for pub.
func (e *Env) attest(t *conformance.T, ca *nitro.SimCA, pub []byte) []byte {
	doc, err := ca.Attest(nitro.AttestRequest{PCRs: map[int][]byte{0: bytes.Repeat([]byte{0xc0}, 48), 1: make([]byte, 48), 2: make([]byte, 48)},
		PublicKey: pub, Time: time.Now()})
	if err != nil {
		t.Fatalf("setup: attestation document: %v", err)
	}
	return doc
}

// recipient is a RecipientInfo for the simulated enclave's key.
func (e *Env) recipient(t *conformance.T) *types.RecipientInfo {
	_, spki, err := e.enclaveKey()
	if err != nil {
		t.Fatalf("setup: the enclave's RSA key: %v", err)
	}
	return &types.RecipientInfo{AttestationDocument: e.attest(t, e.SimCA, spki), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}
}

// open parses a CiphertextForRecipient and opens it with the enclave's key.
func (e *Env) open(t *conformance.T, what string, cms []byte) []byte {
	if len(cms) == 0 {
		t.Mismatch(what+": CiphertextForRecipient", "a CMS EnvelopedData", "none")
	}
	priv, spki, _ := e.enclaveKey()
	env, err := nitro.ParseEnvelope(cms)
	if err != nil {
		t.Mismatch(what+": CiphertextForRecipient", "a CMS EnvelopedData to the enclave's key", err.Error())
	}
	if !bytes.Equal(env.SubjectKeyID, nitro.SubjectKeyID(spki)) {
		t.Mismatch(what+": the envelope's recipient", fmt.Sprintf("subject key ID %x", nitro.SubjectKeyID(spki)), fmt.Sprintf("%x", env.SubjectKeyID))
	}
	pt, err := env.Open(priv)
	if err != nil {
		t.Mismatch(what+": opening CiphertextForRecipient with the enclave's key", "the plaintext", err.Error())
	}
	return pt
}

// recipientDecrypts is a refusal check's baseline: Decrypt of ct (made
// without a context, plaintext "x") with the untampered Recipient works.
func (e *Env) recipientDecrypts(t *conformance.T, ct []byte, r *types.RecipientInfo) {
	out, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ct, Recipient: r})
	must(t, "the baseline: Decrypt with the untampered Recipient", err)
	equal(t, "the baseline: the opened CiphertextForRecipient", "x", string(e.open(t, "Decrypt", out.CiphertextForRecipient)))
}

func (e *Env) recipientChecks() []conformance.Check {
	needs := []conformance.Capability{CapRecipient}
	return []conformance.Check{{
		ID:        "KMS-RCP-001",
		Statement: "Decrypt with a Recipient returns no Plaintext and a CiphertextForRecipient (CMS EnvelopedData) that the enclave's RSA key opens to the plaintext",
		Clause:    recipientClause + "; " + apiParam("Decrypt", "response", "CiphertextForRecipient"),
		Mutation:  "kms.recipient-returns-plaintext",
		Needs:     needs,
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ec := map[string]string{"app": "enclave"}
			ct := e.encrypt(t, k.KeyId, []byte("for the enclave"), ec)
			out, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ec, Recipient: e.recipient(t)})
			must(t, "Decrypt with a Recipient", err)
			if out.Plaintext != nil {
				t.Mismatch("Decrypt with a Recipient: Plaintext", "null", fmt.Sprintf("%d bytes", len(out.Plaintext)))
			}
			equal(t, "Decrypt with a Recipient: KeyId", aws.ToString(k.Arn), aws.ToString(out.KeyId))
			equal(t, "the opened CiphertextForRecipient", "for the enclave", string(e.open(t, "Decrypt", out.CiphertextForRecipient)))
		},
	}, {
		ID:        "KMS-RCP-002",
		Statement: "Decrypt with a Recipient whose KeyEncryptionAlgorithm is not RSAES_OAEP_SHA_256 fails with ValidationException",
		Clause:    apiParam("Decrypt", "request", "Recipient") + "; " + apiRef + "API_RecipientInfo.html",
		Mutation:  "kms.recipient-algorithm-unchecked",
		Needs:     needs,
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("x"), nil)
			r := e.recipient(t)
			e.recipientDecrypts(t, ct, r)
			for _, alg := range []types.KeyEncryptionMechanism{"RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5"} {
				r.KeyEncryptionAlgorithm = alg
				_, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ct, Recipient: r})
				expectCode(t, "Decrypt with a Recipient and KeyEncryptionAlgorithm "+string(alg), err, "ValidationException")
			}
		},
	}, {
		ID:        "KMS-RCP-003",
		Statement: "Decrypt with a Recipient whose attestation document has one byte flipped (in its signature, or in its payload) fails with ValidationException",
		Clause:    recipientClause,
		Mutation:  "kms.recipient-signature-unchecked",
		Needs:     needs,
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("x"), nil)
			r := e.recipient(t)
			e.recipientDecrypts(t, ct, r)
			doc := r.AttestationDocument
			for _, i := range []int{len(doc) - 1, len(doc) / 2} {
				bad := bytes.Clone(doc)
				bad[i] ^= 0x01
				_, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ct,
					Recipient: &types.RecipientInfo{AttestationDocument: bad, KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}})
				expectCode(t, fmt.Sprintf("Decrypt with byte %d of %d of the document flipped", i, len(doc)), err, "ValidationException")
			}
		},
	}, {
		ID:        "KMS-RCP-004",
		Statement: "GenerateDataKey with a Recipient returns a CiphertextBlob and a CiphertextForRecipient but no Plaintext; the enclave's data key is the one the blob decrypts to",
		Clause:    apiParam("GenerateDataKey", "request", "Recipient") + "; " + apiParam("GenerateDataKey", "response", "CiphertextForRecipient"),
		Mutation:  "kms.recipient-data-key-unbound",
		Needs:     needs,
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			out, err := e.Client.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256, Recipient: e.recipient(t)})
			must(t, "GenerateDataKey with a Recipient", err)
			if out.Plaintext != nil {
				t.Mismatch("GenerateDataKey with a Recipient: Plaintext", "null", fmt.Sprintf("%d bytes", len(out.Plaintext)))
			}
			if len(out.CiphertextBlob) == 0 {
				t.Mismatch("GenerateDataKey with a Recipient: CiphertextBlob", "the data key encrypted under the KMS key", "none")
			}
			key := e.open(t, "GenerateDataKey", out.CiphertextForRecipient)
			equal(t, "the enclave's data key: length", 32, len(key))
			e.decrypts(t, "Decrypt of the CiphertextBlob", out.CiphertextBlob, nil, string(key))
		},
	}, {
		ID:        "KMS-RCP-005",
		Statement: "GenerateRandom with a Recipient returns no Plaintext and a CiphertextForRecipient that opens to NumberOfBytes bytes",
		Clause:    apiParam("GenerateRandom", "request", "Recipient") + "; " + apiParam("GenerateRandom", "response", "CiphertextForRecipient"),
		Mutation:  "kms.recipient-random-returns-plaintext",
		Needs:     needs,
		Run: func(t *conformance.T) {
			out, err := e.Client.GenerateRandom(t.Context(), &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(24), Recipient: e.recipient(t)})
			must(t, "GenerateRandom with a Recipient", err)
			if out.Plaintext != nil {
				t.Mismatch("GenerateRandom with a Recipient: Plaintext", "null", fmt.Sprintf("%d bytes", len(out.Plaintext)))
			}
			equal(t, "the opened CiphertextForRecipient: length", 24, len(e.open(t, "GenerateRandom", out.CiphertextForRecipient)))
		},
	}, {
		ID:        "KMS-RCP-006",
		Statement: "Decrypt with a Recipient whose attestation document chains to a root the endpoint does not trust fails with ValidationException",
		Clause:    recipientClause,
		Mutation:  "kms.recipient-root-unchecked",
		Needs:     needs,
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("x"), nil)
			_, spki, err := e.enclaveKey()
			if err != nil {
				t.Fatalf("setup: the enclave's RSA key: %v", err)
			}
			e.recipientDecrypts(t, ct, e.recipient(t))
			untrusted, err := nitro.NewSimCA(nil, time.Now().Add(-time.Hour))
			if err != nil {
				t.Fatalf("setup: another simulated NSM: %v", err)
			}
			_, err = e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ct, Recipient: &types.RecipientInfo{
				AttestationDocument: e.attest(t, untrusted, spki), KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}})
			expectCode(t, "Decrypt with a document from an untrusted root", err, "ValidationException")
		},
	}}
}
