package vectors

import (
	"os"
	"testing"

	"github.com/trentkms/trent/internal/testvec"
)

// TestPerPackageVectors: the first valid test of each family is the
// per-package vector of the same name (session/testdata/, quorum/testdata/,
// domain/testdata/, hbk/testdata/), so the two sets cannot drift apart.
func TestPerPackageVectors(t *testing.T) {
	for _, c := range []struct{ file, id, field, txt, txtField string }{
		{"hello.json", "hello-001", "hello", "../../session/testdata/handshake.txt", "hello"},
		{"reply.json", "reply-001", "reply", "../../session/testdata/handshake.txt", "reply"},
		{"reply.json", "reply-001", "sk", "../../session/testdata/handshake.txt", "sk"},
		{"ekt.json", "ekt-001", "ekt", "../../session/testdata/handshake.txt", "ekt"},
		{"envelope.json", "envelope-001", "envelope", "../../session/testdata/envelope.txt", "envelope"},
		{"response.json", "response-001", "response", "../../session/testdata/envelope.txt", "response"},
		{"onepass.json", "onepass-001", "message", "../../session/testdata/onepass.txt", "message"},
		{"quorum-command.json", "command-001", "command", "../../quorum/testdata/command.txt", "command"},
		{"signed-command.json", "signed-command-001", "signed_command", "../../quorum/testdata/command.txt", "signed_command"},
		{"hbk-token.json", "hbk-token-001", "token", "../../hbk/testdata/hierarchy.txt", "token"},
		{"blob.json", "blob-001", "blob", "../../hbk/testdata/hierarchy.txt", "blob"},
		{"domain-token.json", "token-001", "token", "../../domain/testdata/token.txt", "token"},
	} {
		data, err := os.ReadFile(c.txt)
		if err != nil {
			t.Fatal(err)
		}
		m, err := testvec.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, v := range loadFile(t, c.file) {
			if v.ID == c.id {
				found = true
				eq(t, c.id, c.field+" against "+c.txt, v.hex(c.field), m[c.txtField])
			}
		}
		if !found {
			t.Fatalf("%s: no %s", c.file, c.id)
		}
	}
}
