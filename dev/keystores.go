package dev

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/p11store"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/xksstore"
)

// keyStoreModule is the PKCS#11 module a dev cluster's hosts allow for
// custom key stores: the HSM nodes' module with the cluster's HSM data dir
// (DIR/softhsm, or DIR/nss with --hsm-module nss), where a customer's
// token is another token beside the HSM nodes' (docs/operations.md,
// Connecting a custom key store). NSS's softoken learns its tokens at
// C_Initialize: a customer's NSS token must be in the data dir when the
// hosts start.
func keyStoreModule(hsmDir string) (tokenstore.Store, hsm.ModuleConfig, error) {
	s, err := tokenstore.Open("", hsmDir, "")
	if err != nil {
		return nil, hsm.ModuleConfig{}, err
	}
	m, err := s.ModuleConfig()
	return s, m, err
}

// keyStores is the hosts' kms.KeyStores of an in-process dev cluster.
func keyStores(hsmDir string) (*p11store.Stores, error) {
	s, m, err := keyStoreModule(hsmDir)
	if err != nil {
		return nil, err
	}
	return &p11store.Stores{Modules: map[string]hsm.ModuleConfig{s.ModulePath(): m}}, nil
}

// keyStoreArgs are the flags of trent host serve for the same module.
func keyStoreArgs(hsmDir string) ([]string, error) {
	s, m, err := keyStoreModule(hsmDir)
	if err != nil {
		return nil, err
	}
	args := []string{"--keystore-module", s.ModulePath()}
	for _, e := range m.Env {
		args = append(args, "--keystore-module-env", e)
	}
	if m.InitArgs != "" {
		args = append(args, "--keystore-module-init", m.InitArgs)
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
