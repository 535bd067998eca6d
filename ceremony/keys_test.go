package ceremony_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/softhsm/softhsmtest"
	"github.com/trentkms/trent/tokenstore"
)

// verifies reports whether sig checks as the HSMs check it.
func verifies(t *testing.T, pub quorum.PublicKey, command []byte, sig quorum.Signature) bool {
	t.Helper()
	st := &quorum.State{Domain: "test", Version: 3, Operators: []quorum.Operator{{ID: sig.Signer, Role: "r", Key: pub}},
		Rules: quorum.Rules{quorum.AddMember: {{{Role: "r", N: 1}}}}}
	return quorum.Evaluate(st, command, []quorum.Signature{sig}, now).Outcome == quorum.Satisfied
}

func testCommand(t *testing.T) []byte {
	t.Helper()
	c, err := quorum.NewCommand("test", 3, quorum.AddMember, []byte("p"), now, 0, func(b []byte) error { _, err := rand.Read(b); return err })
	require.NoError(t, err)
	raw, err := c.Marshal()
	require.NoError(t, err)
	return raw
}

func TestKeyFiles(t *testing.T) {
	cmd := testCommand(t)
	for _, alg := range []quorum.Alg{quorum.ECDSAP384, quorum.MLDSA87} {
		t.Run(alg.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "k.pem")
			e, err := ceremony.GenerateKeyFile(path, "alice", alg)
			require.NoError(t, err)
			assert.Equal(t, alg, e.Key.Alg())
			fi, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

			data, err := os.ReadFile(path)
			require.NoError(t, err)
			block, _ := pem.Decode(data)
			want := map[quorum.Alg]string{quorum.ECDSAP384: ceremony.PEMTypeECDSA, quorum.MLDSA87: ceremony.PEMTypeMLDSA}[alg]
			assert.Equal(t, want, block.Type)

			_, err = ceremony.GenerateKeyFile(path, "alice", alg)
			require.ErrorContains(t, err, "refusing to overwrite")
			again, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, data, again, "the existing key is untouched")

			k, err := ceremony.OpenKey(path, "")
			require.NoError(t, err)
			defer k.Close()
			assert.True(t, k.Public().Equal(e.Key))
			sig, err := k.Sign("alice", cmd)
			require.NoError(t, err)
			assert.True(t, verifies(t, e.Key, cmd, sig))

			// The entry round-trips through its JSON.
			js, err := json.Marshal(e)
			require.NoError(t, err)
			back, err := ceremony.ParseEntry(js)
			require.NoError(t, err)
			assert.Equal(t, "alice", back.ID)
			assert.True(t, back.Key.Equal(e.Key))

			require.NoError(t, os.Chmod(path, 0o640))
			_, err = ceremony.OpenKey(path, "")
			require.ErrorContains(t, err, "others may read it")
		})
	}
	_, err := ceremony.GenerateKeyFile(filepath.Join(t.TempDir(), "k"), "has space", quorum.ECDSAP384)
	require.ErrorContains(t, err, "invalid operator ID")
}

func pemOf(typ string, der []byte, headers map[string]string) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der, Headers: headers}))
}

func TestParsePrivateKeyRefusals(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p256DER, err := x509.MarshalPKCS8PrivateKey(p256)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	edDER, err := x509.MarshalPKCS8PrivateKey(edKey)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	p384DER, err := x509.MarshalPKCS8PrivateKey(p384)
	require.NoError(t, err)
	sec1, err := x509.MarshalECPrivateKey(p384)
	require.NoError(t, err)
	good := pemOf(ceremony.PEMTypeECDSA, p384DER, nil)
	seed := make([]byte, 32)

	_, err = ceremony.ParsePrivateKey([]byte(good))
	require.NoError(t, err)
	_, err = ceremony.ParsePrivateKey([]byte(pemOf(ceremony.PEMTypeMLDSA, seed, nil)))
	require.NoError(t, err)

	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "not a PEM block"},
		{"not PEM", "hello", "not a PEM block"},
		{"text before", "junk\n" + good, "not a PEM block"},
		{"data after", good + "junk", "data after its PEM block"},
		{"two blocks", good + good, "data after its PEM block"},
		{"truncated", good[:len(good)-20], "not a PEM block"},
		{"headers", pemOf(ceremony.PEMTypeECDSA, p384DER, map[string]string{"Proc-Type": "4,ENCRYPTED"}), "PEM headers"},
		{"SEC1 type", pemOf("EC PRIVATE KEY", sec1, nil), `PEM type "EC PRIVATE KEY"`},
		{"SEC1 in PKCS#8 type", pemOf(ceremony.PEMTypeECDSA, sec1, nil), "not a PKCS#8 private key"},
		{"garbage DER", pemOf(ceremony.PEMTypeECDSA, []byte{0x30, 0x03, 1, 2, 3}, nil), "not a PKCS#8 private key"},
		{"wrong curve", pemOf(ceremony.PEMTypeECDSA, p256DER, nil), "ECDSA on P-256, operator keys are P-384"},
		{"Ed25519", pemOf(ceremony.PEMTypeECDSA, edDER, nil), "ed25519.PrivateKey"},
		{"short seed", pemOf(ceremony.PEMTypeMLDSA, seed[:31], nil), "seed is 32 bytes"},
		{"long seed", pemOf(ceremony.PEMTypeMLDSA, append(seed, 0), nil), "seed is 32 bytes"},
		{"public key", pemOf("PUBLIC KEY", p384DER, nil), `PEM type "PUBLIC KEY"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ceremony.ParsePrivateKey([]byte(tc.in))
			require.ErrorContains(t, err, tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "ceremony: "), err.Error())
		})
	}
}

func TestParseEntry(t *testing.T) {
	dir := t.TempDir()
	alice := newOp(t, dir, "alice", quorum.ECDSAP384)
	carol := newOp(t, dir, "carol", quorum.MLDSA87)
	good, err := os.ReadFile(alice.entryFile)
	require.NoError(t, err)
	e, err := ceremony.ReadEntry(alice.entryFile)
	require.NoError(t, err)
	assert.Equal(t, "alice", e.ID)
	var j map[string]any
	require.NoError(t, json.Unmarshal(good, &j))
	assert.Equal(t, "ECDSA-P384-SHA384", j["alg"])
	ml, err := os.ReadFile(carol.entryFile)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(ml, &j))
	assert.Equal(t, "ML-DSA-87", j["alg"])
	mlKey := j["public_key"].(string)

	ecKey := strings.Split(strings.Split(string(good), `"public_key":"`)[1], `"`)[0]
	for _, tc := range []struct{ name, in, want string }{
		{"duplicate key", `{"id":"alice","id":"eve","alg":"ECDSA-P384-SHA384","public_key":"` + ecKey + `"}`, "duplicate key"},
		{"unknown field", `{"id":"alice","role":"kms-operator","alg":"ECDSA-P384-SHA384","public_key":"` + ecKey + `"}`, "unknown field"},
		{"trailing data", string(good) + "{}", "after the value"},
		{"no id", `{"alg":"ECDSA-P384-SHA384","public_key":"` + ecKey + `"}`, "invalid id"},
		{"id with space", `{"id":"a b","alg":"ECDSA-P384-SHA384","public_key":"` + ecKey + `"}`, "invalid id"},
		{"unknown alg", `{"id":"alice","alg":"RSA","public_key":"` + ecKey + `"}`, "unknown algorithm"},
		{"alg mismatch", `{"id":"alice","alg":"ML-DSA-87","public_key":"` + ecKey + `"}`, "wrong size"},
		{"alg mismatch 2", `{"id":"alice","alg":"ECDSA-P384-SHA384","public_key":"` + mlKey + `"}`, "quorum:"},
		{"bad base64", `{"id":"alice","alg":"ECDSA-P384-SHA384","public_key":"!!!"}`, "strictjson"},
		{"no key", `{"id":"alice","alg":"ECDSA-P384-SHA384"}`, "quorum:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ceremony.ParseEntry([]byte(tc.in))
			require.ErrorContains(t, err, tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "ceremony: "), err.Error())
		})
	}

	// A P-256 key in an entry is refused.
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	require.NoError(t, err)
	js, err := json.Marshal(map[string]any{"id": "x", "alg": "ECDSA-P384-SHA384", "public_key": der})
	require.NoError(t, err)
	_, err = ceremony.ParseEntry(js)
	require.ErrorContains(t, err, "P-384")

	// Roles: a service host needs an ECDSA key.
	_, err = carol.entry.Operator(quorum.RoleServiceHost)
	require.ErrorContains(t, err, "needs an ECDSA P-384 key")
	_, err = carol.entry.Operator("bad role")
	require.ErrorContains(t, err, "invalid role")
	o, err := alice.entry.Operator(quorum.RoleServiceHost)
	require.NoError(t, err)
	assert.Equal(t, quorum.RoleServiceHost, o.Role)
}

func TestTokenKey(t *testing.T) {
	dir := softhsmtest.NewStore(t).Dir
	e, created, err := ceremony.GenerateTokenKey(dir, "bob", "")
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, quorum.ECDSAP384, e.Key.Alg())
	pinFile := filepath.Join(dir, node.UserPINFile)
	pin, err := tokenstore.ReadPINFile(pinFile)
	require.NoError(t, err)

	again, created, err := ceremony.GenerateTokenKey(dir, "bob", "")
	require.NoError(t, err)
	assert.False(t, created, "an existing token key is reused, never replaced")
	assert.True(t, again.Key.Equal(e.Key))

	cmd := testCommand(t)
	k, err := ceremony.OpenKey("pkcs11:"+dir+":bob", "")
	require.NoError(t, err)
	assert.True(t, k.Public().Equal(e.Key))
	sig, err := k.Sign("bob", cmd)
	require.NoError(t, err)
	assert.True(t, verifies(t, e.Key, cmd, sig))
	require.NoError(t, k.Close())
	_, err = k.Sign("bob", cmd)
	require.ErrorContains(t, err, "closed")

	// The PIN explicitly; a wrong one fails without being shown.
	k, err = ceremony.OpenKey("pkcs11:"+dir+":bob", pin)
	require.NoError(t, err)
	require.NoError(t, k.Close())
	_, err = ceremony.OpenKey("pkcs11:"+dir+":bob", "wrong-pin-1234")
	require.ErrorContains(t, err, "PIN incorrect")
	assert.NotContains(t, err.Error(), "wrong-pin-1234")
	assert.NotContains(t, err.Error(), pin)

	for _, spec := range []string{"pkcs11:", "pkcs11:" + dir, "pkcs11:" + dir + ":", "pkcs11::bob"} {
		_, err := ceremony.OpenKey(spec, "")
		require.ErrorContains(t, err, "DIR:LABEL", spec)
	}
	_, err = ceremony.OpenKey("pkcs11:"+dir+":nobody", "")
	require.Error(t, err)
	_, err = ceremony.OpenKey("pkcs11:"+t.TempDir()+":bob", "")
	require.ErrorContains(t, err, "not a token data dir")
	_, _, err = ceremony.GenerateTokenKey(dir, strings.Repeat("x", 33), "")
	require.ErrorContains(t, err, "token label")
}
