package enclave

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The enclave's HTTP client dials the proxy whatever the URL says, and
// ignores HTTP_PROXY.
func TestProxyClientDialsOnlyTheProxy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p.sock")
	if len(sock) > 100 {
		t.Skip("temporary path too long for a Unix socket")
	}
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	var mu sync.Mutex
	var hosts []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		io.WriteString(w, "via the proxy")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")

	hc, err := proxyClient("unix:" + sock)
	require.NoError(t, err)
	defer hc.CloseIdleConnections()
	for _, u := range []string{"http://kms.us-east-1.amazonaws.com/", "http://127.0.0.1:1/", "http://192.0.2.1:443/x"} {
		resp, err := hc.Get(u)
		require.NoError(t, err, u)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "via the proxy", string(b), u)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"kms.us-east-1.amazonaws.com", "127.0.0.1:1", "192.0.2.1:443"}, hosts)

	_, err = proxyClient("10.0.0.1:80")
	assert.Error(t, err, "the proxy must be local")
}
