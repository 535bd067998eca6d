package xks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/trentkms/trent/internal/strictjson"
)

// operation is one of the four API operations.
type operation int

const (
	opHealth operation = iota + 1
	opMetadata
	opEncrypt
	opDecrypt
)

func (o operation) String() string {
	switch o {
	case opHealth:
		return "GetHealthStatus"
	case opMetadata:
		return "GetKeyMetadata"
	case opEncrypt:
		return "Encrypt"
	case opDecrypt:
		return "Decrypt"
	}
	return "unknown"
}

// request is a decoded request body: the metadata and, for Encrypt and
// Decrypt, the inputs (nil when absent).
type request struct {
	md         RequestMetadata
	plaintext  []byte
	ciphertext []byte
	meta       []byte // ciphertextMetadata
	aad        []byte
	iv         []byte
	tag        []byte
	cdiv       bool // ciphertextDataIntegrityValueAlgorithm SHA_256 was given
}

// clear zeroes the request's plaintext.
func (r *request) clear() { clear(r.plaintext) }

// decodeRequest parses the body of op strictly: a JSON object with
// exactly the specification's members (no unknown, duplicate or
// case-folded names at the top level; requestMetadata may carry members
// this version does not know, as the specification's Appendix B says AWS
// may add some), required members present, strings within
// MaxMetadataStringLen, blobs strict base64 within the limits. A
// *fieldError says what is wrong and whether it is a size this
// implementation does not support.
func decodeRequest(op operation, body []byte) (*request, error) {
	var w struct {
		RequestMetadata                       json.RawMessage `json:"requestMetadata"`
		Plaintext                             json.RawMessage `json:"plaintext"`
		Ciphertext                            *string         `json:"ciphertext"`
		CiphertextMetadata                    *string         `json:"ciphertextMetadata"`
		EncryptionAlgorithm                   *string         `json:"encryptionAlgorithm"`
		AdditionalAuthenticatedData           *string         `json:"additionalAuthenticatedData"`
		InitializationVector                  *string         `json:"initializationVector"`
		AuthenticationTag                     *string         `json:"authenticationTag"`
		CiphertextDataIntegrityValueAlgorithm *string         `json:"ciphertextDataIntegrityValueAlgorithm"`
	}
	if err := unmarshal(body, MaxBodySize, &w); err != nil {
		return nil, err
	}
	// Members of another operation are unknown members.
	var plaintext *string // stands for w.Plaintext in the member count
	if w.Plaintext != nil {
		plaintext = new(string)
	}
	allowed := map[operation][]*string{
		opHealth:   nil,
		opMetadata: nil,
		opEncrypt:  {plaintext, w.EncryptionAlgorithm, w.AdditionalAuthenticatedData, w.CiphertextDataIntegrityValueAlgorithm},
		opDecrypt:  {w.Ciphertext, w.CiphertextMetadata, w.EncryptionAlgorithm, w.AdditionalAuthenticatedData, w.InitializationVector, w.AuthenticationTag},
	}[op]
	n := 0
	for _, p := range []*string{plaintext, w.Ciphertext, w.CiphertextMetadata, w.EncryptionAlgorithm, w.AdditionalAuthenticatedData,
		w.InitializationVector, w.AuthenticationTag, w.CiphertextDataIntegrityValueAlgorithm} {
		if p != nil {
			n++
		}
	}
	for _, p := range allowed {
		if p != nil {
			n--
		}
	}
	if n != 0 {
		return nil, badField("body", "a member of another operation")
	}
	req := &request{}
	var err error
	if req.md, err = decodeMetadata(op, w.RequestMetadata); err != nil {
		return nil, err
	}
	if op == opHealth || op == opMetadata {
		return req, nil
	}
	alg, err := required("encryptionAlgorithm", w.EncryptionAlgorithm)
	if err != nil {
		return nil, err
	}
	if alg != AlgorithmAESGCM {
		return nil, badField("encryptionAlgorithm", "must be AES_GCM")
	}
	if req.aad, err = optionalBlob("additionalAuthenticatedData", w.AdditionalAuthenticatedData, MaxAADSize); err != nil {
		return nil, tooLarge(err, w.AdditionalAuthenticatedData, MaxAADSize)
	}
	if op == opEncrypt {
		if req.plaintext, err = rawBlob("plaintext", w.Plaintext, MaxDataSize); err != nil {
			return nil, err
		}
		if w.CiphertextDataIntegrityValueAlgorithm != nil {
			if *w.CiphertextDataIntegrityValueAlgorithm != CDIVSHA256 {
				req.clear()
				return nil, badField("ciphertextDataIntegrityValueAlgorithm", "must be SHA_256")
			}
			req.cdiv = true
		}
		return req, nil
	}
	if req.ciphertext, err = requiredBlob("ciphertext", w.Ciphertext, MaxDataSize); err != nil {
		return nil, tooLarge(err, w.Ciphertext, MaxDataSize)
	}
	if req.meta, err = optionalBlob("ciphertextMetadata", w.CiphertextMetadata, MaxCiphertextMeta); err != nil {
		return nil, err
	}
	if req.iv, err = requiredBlob("initializationVector", w.InitializationVector, 16); err != nil {
		return nil, err
	}
	if len(req.iv) != 12 && len(req.iv) != 16 {
		return nil, badField("initializationVector", "must be 12 or 16 bytes")
	}
	if req.tag, err = requiredBlob("authenticationTag", w.AuthenticationTag, TagSize); err != nil {
		return nil, err
	}
	if len(req.tag) != TagSize {
		return nil, badField("authenticationTag", "must be 16 bytes")
	}
	return req, nil
}

// tooLarge marks err as a size above this implementation's limit when
// the member decodes but is longer than max: the specification's minimum
// is below max, so that is UnsupportedOperationException.
func tooLarge(err error, p *string, max int) error {
	fe, ok := err.(*fieldError)
	if ok && p != nil && len(*p) > 0 {
		if b, derr := decodeBlob(fe.field, *p, 1<<30); derr == nil && len(b) > max {
			clear(b)
			fe.tooLarge = true
		}
	}
	return err
}

// decodeMetadata parses requestMetadata: an object whose known members
// are strings of at most MaxMetadataStringLen bytes; kmsOperation and
// kmsRequestId are required for every operation, awsPrincipalArn for the
// key operations, kmsKeyArn for Encrypt and Decrypt. Unknown members are
// skipped (their syntax was checked with the body's). kmsOperation and
// kmsRequestId are not otherwise checked, as the specification asks.
func decodeMetadata(op operation, raw json.RawMessage) (RequestMetadata, error) {
	var md RequestMetadata
	if raw == nil {
		return md, badField("requestMetadata", "missing")
	}
	members, err := strictjson.Members(raw)
	if err != nil {
		return md, badField("requestMetadata", "not an object")
	}
	fields := map[string]*string{
		"awsPrincipalArn": &md.AWSPrincipalARN, "awsSourceVpc": &md.AWSSourceVPC, "awsSourceVpce": &md.AWSSourceVPCE,
		"kmsKeyArn": &md.KMSKeyARN, "kmsOperation": &md.KMSOperation, "kmsRequestId": &md.KMSRequestID, "kmsViaService": &md.KMSViaService,
	}
	seen := map[string]bool{}
	for _, m := range members {
		dst, known := fields[m.Key]
		if !known {
			continue
		}
		if err := json.Unmarshal(m.Value, dst); err != nil {
			return md, badField("requestMetadata."+m.Key, "not a string")
		}
		if len(*dst) > MaxMetadataStringLen {
			return md, badField("requestMetadata."+m.Key, "longer than %d", MaxMetadataStringLen)
		}
		seen[m.Key] = true
	}
	need := []string{"kmsOperation", "kmsRequestId"}
	switch op {
	case opMetadata:
		need = append(need, "awsPrincipalArn")
	case opEncrypt, opDecrypt:
		need = append(need, "awsPrincipalArn", "kmsKeyArn")
	}
	for _, n := range need {
		if !seen[n] {
			return md, badField("requestMetadata."+n, "missing")
		}
	}
	return md, nil
}

// rawBlob decodes a required base64 member from its raw JSON, so that no
// string copy of a secret is made (Go strings cannot be cleared): the
// usual unescaped string is decoded in place; one with escapes (legal
// JSON, e.g. "\/") is unescaped by encoding/json first. A value above max
// but within the specification is marked too large.
func rawBlob(field string, raw json.RawMessage, max int) ([]byte, error) {
	if raw == nil {
		return nil, badField(field, "missing")
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, badField(field, "not a string")
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badField(field, "not a string")
		}
		inner = []byte(s)
	}
	if bytes.ContainsAny(inner, "\r\n") {
		return nil, badField(field, "not base64")
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(inner)))
	n, err := base64.StdEncoding.Strict().Decode(out, inner)
	if err != nil {
		clear(out)
		return nil, badField(field, "not base64")
	}
	out = out[:n]
	if n > max {
		clear(out)
		return nil, &fieldError{field: field, msg: fmt.Sprintf("more than %d bytes", max), tooLarge: true}
	}
	return out, nil
}
