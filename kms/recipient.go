package kms

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/nitro"
)

// Recipient (Nitro Enclaves). The host verifies the attestation document
// too, for the policy's kms:RecipientAttestation:* condition keys and to
// refuse early; the HSM verifies it again and alone sees the plaintext,
// which it returns only as a CiphertextForRecipient (hsmcmd.Recipient).

// checkRecipient is the Recipient prologue of every operation that takes
// one: nothing if the request has none; ValidationException if it has one
// and op takes none (takes false); else the attestation document,
// verified, and the condition keys it adds, and the enclave named in the
// request's audit event.
func (s *Service) checkRecipient(ctx context.Context, op string, takes bool, r *recipient) ([]byte, map[string][]string, error) {
	if r == nil {
		return nil, nil, nil
	}
	if !takes {
		return nil, nil, kmsapi.Errorf(kmsapi.ValidationException, "%s does not take a Recipient", op)
	}
	if r.KeyEncryptionAlgorithm != "RSAES_OAEP_SHA_256" {
		return nil, nil, kmsapi.Errorf(kmsapi.ValidationException, "Recipient.KeyEncryptionAlgorithm must be RSAES_OAEP_SHA_256")
	}
	if len(r.AttestationDocument) < 1 || len(r.AttestationDocument) > nitro.MaxDocument {
		return nil, nil, validation("recipient.attestationDocument", "Member must have length between 1 and 262144", "…")
	}
	v := &nitro.Verifier{Roots: []*x509.Certificate{nitro.RootG1()}, Now: s.cfg.AttestationTime, Cache: &s.chains}
	if s.cfg.AttestationRoots != nil {
		v.RootsDER = s.cfg.AttestationRoots()
	}
	d, err := v.Verify(r.AttestationDocument)
	if err != nil {
		return nil, nil, kmsapi.Errorf(kmsapi.ValidationException, "The attestation document is not valid: %v", err)
	}
	if _, err := hsmcmd.RecipientKey(d); err != nil {
		return nil, nil, kmsapi.Errorf(kmsapi.ValidationException, "%v", err)
	}
	cond := make(map[string][]string, len(d.PCRs)+1)
	pcrHex := make(map[int]string, len(d.PCRs))
	for i, v := range d.PCRs {
		pcrHex[i] = hex.EncodeToString(v)
		cond["kms:RecipientAttestation:PCR"+strconv.Itoa(i)] = []string{pcrHex[i]}
	}
	if p0, ok := pcrHex[0]; ok {
		cond["kms:RecipientAttestation:ImageSha384"] = []string{p0}
	}
	// The audit event names the enclave as CloudTrail does.
	rec := map[string]string{"attestationDocumentModuleId": d.ModuleID}
	for _, i := range []int{0, 1, 2, 3, 4, 8} {
		if v, ok := pcrHex[i]; ok {
			name := "attestationDocumentEnclavePCR" + strconv.Itoa(i)
			if i == 0 {
				name = "attestationDocumentEnclaveImageDigest"
			}
			rec[name] = v
		}
	}
	kmsapi.AddEventData(ctx, "recipient", rec)
	return r.AttestationDocument, cond, nil
}

// viaRecipient runs inner under a Recipient (hsmcmd.NewRecipientRequest)
// and returns the answer: the CiphertextForRecipient and the inner
// answer's other fields (RecipientResponse.DataKeyBlob, DataKeyPair);
// refused is the answer when the HSM refuses the inner command (nil: an
// internal error).
func (s *Service) viaRecipient(ctx context.Context, op string, doc []byte, inner hsmcmd.Request, refused error) (*hsmcmd.RecipientResponse, error) {
	if s.hsm == nil {
		return nil, errNoHSM
	}
	req, err := hsmcmd.NewRecipientRequest(doc, inner)
	var res *hsmcmd.RecipientResponse
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrRefused, err) // as HSM.Do refuses what does not marshal
	} else {
		res, err = call(ctx, s, req, hsmcmd.ParseRecipientResponse)
	}
	if errors.Is(err, ErrRefused) && refused != nil {
		return nil, refused
	}
	if err != nil {
		return nil, internal(s, op, err)
	}
	return res, nil
}

// merge adds b's condition keys to a.
func merge(a, b map[string][]string) map[string][]string {
	if a == nil {
		a = map[string][]string{}
	}
	for k, v := range b {
		a[k] = v
	}
	return a
}
