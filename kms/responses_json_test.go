package kms

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/trentkms/trent/kms/kmsapi"
)

// sameJSON fails t unless v's AppendJSON writes what json.Marshal(v)
// writes, and its AnswerKeyID (kmsapi.KeyNamer), when valid UTF-8 (the
// audit event reads the answer otherwise), is the KeyId that reading that
// JSON finds.
func sameJSON(t *testing.T, v kmsapi.JSONAppender) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.AppendJSON([]byte("p")); !bytes.Equal(got, append([]byte("p"), want...)) {
		t.Fatalf("%T: AppendJSON\n%s\njson.Marshal\n%s", v, got[1:], want)
	}
	n, ok := v.(kmsapi.KeyNamer)
	if !ok {
		t.Fatalf("%T is not a KeyNamer", v)
	}
	var read struct{ KeyId string }
	if err := json.Unmarshal(want, &read); err != nil {
		t.Fatal(err)
	}
	if named := n.AnswerKeyID(); utf8.ValidString(named) && named != read.KeyId {
		t.Fatalf("%T: AnswerKeyID %q, the answer's KeyId %q", v, named, read.KeyId)
	}
}

func TestResponsesAppendJSON(t *testing.T) {
	arn := "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-4000-8000-000000000001"
	for _, v := range []kmsapi.JSONAppender{
		&encryptResponse{CiphertextBlob: []byte{1, 2, 3}, KeyId: arn, EncryptionAlgorithm: symmetricDefault},
		&encryptResponse{}, (*encryptResponse)(nil),
		&decryptResponse{Plaintext: []byte("x"), KeyId: arn, EncryptionAlgorithm: symmetricDefault},
		&decryptResponse{CiphertextForRecipient: []byte{9}, KeyId: arn},
		&decryptResponse{Plaintext: []byte{}}, (*decryptResponse)(nil),
		&generateDataKeyResponse{CiphertextBlob: []byte{1}, Plaintext: make([]byte, 32), KeyId: arn},
		&generateDataKeyResponse{CiphertextBlob: []byte{1}, CiphertextForRecipient: []byte{2}, KeyId: "<&>"},
		&generateDataKeyResponse{}, (*generateDataKeyResponse)(nil),
	} {
		sameJSON(t, v)
	}
}

// FuzzResponsesAppendJSON: the three answers' AppendJSON write what
// json.Marshal writes, whatever their fields hold.
func FuzzResponsesAppendJSON(f *testing.F) {
	f.Add([]byte{1, 2}, []byte(nil), "arn:aws:kms:eu-west-1:1:key/k", symmetricDefault)
	f.Add([]byte{}, []byte{0}, "\u2028<\xff", "")
	f.Fuzz(func(t *testing.T, a, b []byte, s1, s2 string) {
		sameJSON(t, &encryptResponse{CiphertextBlob: a, KeyId: s1, EncryptionAlgorithm: s2})
		sameJSON(t, &decryptResponse{Plaintext: a, CiphertextForRecipient: b, KeyId: s1, EncryptionAlgorithm: s2})
		sameJSON(t, &generateDataKeyResponse{CiphertextBlob: a, Plaintext: b, CiphertextForRecipient: a, KeyId: s2})
	})
}
