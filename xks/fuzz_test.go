package xks

import (
	"bytes"
	"testing"
)

// The client's answer decoders never panic, and what they accept holds
// the specification's invariants.
func FuzzParseAnswers(f *testing.F) {
	f.Add(0, []byte(`{"xksProxyFleetSize":1,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{"id":"i","model":"m","healthStatus":"ACTIVE"}]}`))
	f.Add(1, []byte(`{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"}`))
	f.Add(2, []byte(`{"ciphertext":"ghxkK1txeDNn3q8Y","ciphertextMetadata":"a2V5X3ZlcnNpb249MQ==","initializationVector":"HMrlRw85cAJUd5Ax","authenticationTag":"vBxN2ncH1oEkR8WVXpmyYQ==","ciphertextDataIntegrityValue":"qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="}`))
	f.Add(3, []byte(`{"errorName":"KeyNotFoundException","errorMessage":"x"}`))
	f.Fuzz(func(t *testing.T, which int, raw []byte) {
		switch (which%4 + 4) % 4 {
		case 0:
			h, err := parseHealth(raw)
			if err == nil && (h.XksProxyFleetSize < 1 || len(h.EkmFleetDetails) < 1 || len(h.EkmFleetDetails) > MaxFleetDetails) {
				t.Fatalf("accepted %+v", h)
			}
		case 1:
			m, err := parseKeyMetadata(raw)
			if err == nil && (len(m.KeyUsage) > MaxKeyUsages || (m.KeyStatus != StatusEnabled && m.KeyStatus != StatusDisabled)) {
				t.Fatalf("accepted %+v", m)
			}
		case 2:
			e, err := parseEncryptResponse(raw)
			if err == nil && ((len(e.InitializationVector) != 12 && len(e.InitializationVector) != 16) || len(e.AuthenticationTag) != TagSize ||
				len(e.CiphertextMetadata) > MaxCiphertextMeta || len(e.Ciphertext) > MaxDataSize) {
				t.Fatalf("accepted %+v", e)
			}
		case 3:
			for _, status := range []int{400, 401, 404, 429, 500, 501, 503} {
				e := errorAnswer("Op", status, raw)
				if e.Kind != KindInvalidResponse {
					if want, ok := errorStatus[e.Name]; !ok || want != status {
						t.Fatalf("classified %q with status %d as %v", e.Name, status, e.Kind)
					}
				}
				if len(e.Message) > MaxErrorMessageLen || bytes.ContainsFunc([]byte(e.Message+e.Name), func(r rune) bool { return r < 0x20 || r > 0x7e }) {
					t.Fatalf("message not bounded printable ASCII: %q", e.Message)
				}
			}
		}
	})
}

// The credentials file decoder never panics and accepts only credentials
// of the specification's form, which it writes back identically.
func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte(`[{"AccessKeyId":"AKIAI2SFODNN7EXAMPLE","RawSecretAccessKey":"FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE"}]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cs, err := ParseCredentials(raw)
		if err != nil {
			return
		}
		for _, c := range cs {
			if !c.Valid() {
				t.Fatalf("accepted %q", c.AccessKeyID)
			}
		}
		again, err := ParseCredentials(MarshalCredentials(cs))
		if err != nil || len(again) != len(cs) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range cs {
			if again[i] != cs[i] {
				t.Fatal("round trip changed a credential")
			}
		}
	})
}
