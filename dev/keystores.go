package dev

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/p11store"
	"github.com/trentkms/trent/softhsm"
	"github.com/trentkms/trent/xksstore"
)

// keyStoreModule is the PKCS#11 module a dev cluster's hosts allow for
// custom key stores: SoftHSM with the cluster's own data dir (DIR/softhsm),
// where a customer's token is another token beside the HSM nodes'
// (docs/operations.md, Connecting a custom key store).
func keyStoreModule(dir string) (*softhsm.Store, error) {
	return softhsm.Open(filepath.Join(dir, "softhsm"))
}

// keyStores is the hosts' kms.KeyStores of an in-process dev cluster.
func keyStores(dir string) (*p11store.Stores, error) {
	s, err := keyStoreModule(dir)
	if err != nil {
		return nil, err
	}
	return &p11store.Stores{Modules: map[string]hsm.ModuleConfig{s.Module: s.ModuleConfig()}}, nil
}

// keyStoreArgs are the flags of trent host serve for the same module.
func keyStoreArgs(dir string) ([]string, error) {
	s, err := keyStoreModule(dir)
	if err != nil {
		return nil, err
	}
	args := []string{"--keystore-module", s.Module}
	for _, e := range s.ModuleConfig().Env {
		args = append(args, "--keystore-module-env", e)
	}
	return args, nil
}

// xksProxies is the hosts' kms.XKSProxies of an in-process dev cluster:
// the system roots, and those of caFile if set.
func xksProxies(region, caFile string) (*xksstore.Proxies, error) {
	p := &xksstore.Proxies{Region: region}
	if caFile == "" {
		return p, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	p.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return p, nil
}
