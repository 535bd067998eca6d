package enclave

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// isolateNet gives the process a network namespace of its own, with a
// loopback interface and nothing else.
func TestIsolateNet(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command(sh, "-c", "readlink /proc/self/ns/net; cat /proc/net/dev")
	isolateNet(cmd)
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("no user and network namespaces here: %v", err)
	}
	mine, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.GreaterOrEqual(t, len(lines), 3)
	assert.NotEqual(t, mine, lines[0], "another network namespace")
	var ifaces []string
	for _, l := range lines[3:] {
		name, _, _ := strings.Cut(strings.TrimSpace(l), ":")
		ifaces = append(ifaces, name)
	}
	assert.Equal(t, []string{"lo"}, ifaces, "no interface but its own loopback")
}
