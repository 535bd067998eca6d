// Package pprofserve serves net/http/pprof on a listener of its own, for
// the --pprof flag of trent host serve and trent hsm serve.
//
// The endpoints expose the process's internals (stacks, heap contents by
// allocation site, the command line) and let anyone who can connect take
// CPU time for profiles: the address must stay on loopback. Start refuses
// an address whose host is not a loopback IP or "localhost".
package pprofserve

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Start listens on addr (host:port, loopback only) and serves
// /debug/pprof/ there until stop is called. It returns the address it
// listens on (useful with port 0).
func Start(addr string) (bound string, stop func() error, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("pprofserve: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, fmt.Errorf("pprofserve: %s is not a loopback address (the profiles expose the process's internals)", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("pprofserve: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.Close()
		}
	}()
	return l.Addr().String(), srv.Close, nil
}
