package kms

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/trentkms/trent/keystore"
)

// Decrypt with a KeyId resolves it once: one read of the key record (and
// of the alias record when it names an alias), shared by the asymmetric
// path's check and the ciphertext's; the answers are the same as ever.
func TestDecryptResolvesKeyIdOnce(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, nil)
	other := f.createKey(t, nil)
	f.must(t, alice, "CreateAlias", map[string]any{"AliasName": "alias/once", "TargetKeyId": id})
	blob := f.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("hello")})["CiphertextBlob"]
	rec, aliasRec := keystore.KeyRecordID(id), keystore.AliasRecordID(account, "alias/once")
	arn := "arn:aws:kms:eu-west-1:" + account + ":key/" + id

	for _, keyID := range []string{id, arn, "alias/once", "arn:aws:kms:eu-west-1:" + account + ":alias/once"} {
		clear(f.store.gets)
		dec := f.must(t, alice, "Decrypt", map[string]any{"KeyId": keyID, "CiphertextBlob": blob})
		assert.Equal(t, "aGVsbG8=", dec["Plaintext"], keyID)
		assert.Equal(t, arn, dec["KeyId"], keyID)
		assert.Equal(t, 1, f.store.gets[rec], "%s: reads of the key record", keyID)
		if keyID != id && keyID != arn {
			assert.Equal(t, 1, f.store.gets[aliasRec], "%s: reads of the alias record", keyID)
		}
	}

	// The same answers as before for a KeyId that is another key, no key,
	// or an unknown alias.
	_, err := f.call(alice, "Decrypt", map[string]any{"KeyId": other, "CiphertextBlob": blob})
	assert.Equal(t, "IncorrectKeyException", exception(err))
	_, err = f.call(alice, "Decrypt", map[string]any{"KeyId": "alias/none", "CiphertextBlob": blob})
	assert.Equal(t, "NotFoundException", exception(err))
	_, err = f.call(alice, "Decrypt", map[string]any{"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "CiphertextBlob": blob})
	assert.Equal(t, "NotFoundException", exception(err))

	// An asymmetric key's Decrypt reads its record once too.
	rsaKey := putKey(t, f, "RSA_2048", usageEncrypt)
	clear(f.store.gets)
	_, err = f.call(alice, "Decrypt", map[string]any{"KeyId": rsaKey, "CiphertextBlob": make([]byte, 256),
		"EncryptionAlgorithm": "RSAES_OAEP_SHA_256", "DryRun": true})
	assert.Equal(t, "DryRunOperationException", exception(err))
	assert.Equal(t, 1, f.store.gets[keystore.KeyRecordID(rsaKey)], "reads of the RSA key's record")
}
