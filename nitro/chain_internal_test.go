package nitro

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func simDoc(t *testing.T, ca *SimCA, at time.Time) []byte {
	t.Helper()
	doc, err := ca.Attest(AttestRequest{PCRs: map[int][]byte{0: make([]byte, 48)}, Time: at})
	require.NoError(t, err)
	return doc
}

// The cabundle must be in the NSM's order: the same certificates with two
// intermediates swapped form a valid chain in a pool, and are refused.
func TestCABundleOrder(t *testing.T) {
	now := time.Now()
	ca, err := NewSimCA(nil, now.Add(-time.Hour))
	require.NoError(t, err)
	v := &Verifier{Roots: []*x509.Certificate{ca.Root}}
	_, err = v.Verify(simDoc(t, ca, now))
	require.NoError(t, err)

	ca.chain[0], ca.chain[1] = ca.chain[1], ca.chain[0]
	_, err = v.Verify(simDoc(t, ca, now))
	require.ErrorIs(t, err, ErrChain)
	require.ErrorContains(t, err, "not in order")
}

// A cached bundle is verified once, serves later documents, and is not
// used once its root is no longer trusted or outside its validity.
func TestChainCache(t *testing.T) {
	now := time.Now()
	ca, err := NewSimCA(nil, now.Add(-time.Hour))
	require.NoError(t, err)
	cache := &ChainCache{}
	v := &Verifier{RootsDER: [][]byte{ca.Root.Raw}, Cache: cache}
	for range 3 {
		_, err = v.Verify(simDoc(t, ca, now))
		require.NoError(t, err)
	}
	require.Equal(t, 1, cache.Len(), "three documents, one bundle")

	untrusting := &Verifier{Cache: cache}
	_, err = untrusting.Verify(simDoc(t, ca, now))
	require.ErrorIs(t, err, ErrChain, "the cache does not stand in for trust in the root")

	late := &Verifier{RootsDER: [][]byte{ca.Root.Raw}, Cache: cache, Now: func() time.Time { return now.AddDate(20, 0, 0) }}
	_, err = late.Verify(simDoc(t, ca, now.AddDate(20, 0, 0)))
	require.ErrorIs(t, err, ErrChain, "the bundle expired: the cached entry is not used")
}

// An expired leaf fails even when its bundle is cached.
func TestExpiredLeaf(t *testing.T) {
	now := time.Now()
	ca, err := NewSimCA(nil, now.Add(-48*time.Hour))
	require.NoError(t, err)
	v := &Verifier{Roots: []*x509.Certificate{ca.Root}, Cache: &ChainCache{}}
	_, err = v.Verify(simDoc(t, ca, now))
	require.NoError(t, err)
	_, err = v.Verify(simDoc(t, ca, now.Add(-LeafValidity-time.Minute)))
	require.ErrorIs(t, err, ErrChain)
	require.ErrorContains(t, err, "leaf certificate is not valid")
}
