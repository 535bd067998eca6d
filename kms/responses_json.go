package kms

import "github.com/trentkms/trent/internal/jsonenc"

// The answers of Encrypt, Decrypt and GenerateDataKey write their own
// JSON (kmsapi.JSONAppender): the bytes json.Marshal writes for them
// (TestResponsesAppendJSON and FuzzResponsesAppendJSON compare the two),
// without reflection, into the server's pooled buffer; and they name
// their key to the audit event (kmsapi.KeyNamer) without being read again.

// AppendJSON implements kmsapi.JSONAppender.
func (r *encryptResponse) AppendJSON(b []byte) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"CiphertextBlob":`...)
	b = jsonenc.AppendBytes(b, r.CiphertextBlob)
	b = append(b, `,"KeyId":`...)
	b = jsonenc.AppendString(b, r.KeyId)
	b = append(b, `,"EncryptionAlgorithm":`...)
	b = jsonenc.AppendString(b, r.EncryptionAlgorithm)
	return append(b, '}')
}

// AppendJSON implements kmsapi.JSONAppender.
func (r *decryptResponse) AppendJSON(b []byte) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	if len(r.Plaintext) > 0 {
		b = append(b, `"Plaintext":`...)
		b = jsonenc.AppendBytes(b, r.Plaintext)
		b = append(b, ',')
	}
	if len(r.CiphertextForRecipient) > 0 {
		b = append(b, `"CiphertextForRecipient":`...)
		b = jsonenc.AppendBytes(b, r.CiphertextForRecipient)
		b = append(b, ',')
	}
	b = append(b, `"KeyId":`...)
	b = jsonenc.AppendString(b, r.KeyId)
	if r.EncryptionAlgorithm != "" {
		b = append(b, `,"EncryptionAlgorithm":`...)
		b = jsonenc.AppendString(b, r.EncryptionAlgorithm)
	}
	return append(b, '}')
}

// AppendJSON implements kmsapi.JSONAppender.
func (r *generateDataKeyResponse) AppendJSON(b []byte) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"CiphertextBlob":`...)
	b = jsonenc.AppendBytes(b, r.CiphertextBlob)
	if len(r.Plaintext) > 0 {
		b = append(b, `,"Plaintext":`...)
		b = jsonenc.AppendBytes(b, r.Plaintext)
	}
	if len(r.CiphertextForRecipient) > 0 {
		b = append(b, `,"CiphertextForRecipient":`...)
		b = jsonenc.AppendBytes(b, r.CiphertextForRecipient)
	}
	b = append(b, `,"KeyId":`...)
	b = jsonenc.AppendString(b, r.KeyId)
	return append(b, '}')
}

// AnswerKeyID implements kmsapi.KeyNamer: the audit event's key.
func (r *encryptResponse) AnswerKeyID() string {
	if r == nil {
		return ""
	}
	return r.KeyId
}

// AnswerKeyID implements kmsapi.KeyNamer.
func (r *decryptResponse) AnswerKeyID() string {
	if r == nil {
		return ""
	}
	return r.KeyId
}

// AnswerKeyID implements kmsapi.KeyNamer.
func (r *generateDataKeyResponse) AnswerKeyID() string {
	if r == nil {
		return ""
	}
	return r.KeyId
}
