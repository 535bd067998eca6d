package pprofserve_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/trentkms/trent/internal/pprofserve"
)

func TestStart(t *testing.T) {
	addr, stop, err := pprofserve.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("%d: %.200s", resp.StatusCode, body)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:0"} {
		if _, stop, err := pprofserve.Start(addr); err == nil {
			stop()
			t.Errorf("%s: accepted", addr)
		}
	}
}
