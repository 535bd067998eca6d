package dev_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
)

func TestProvision(t *testing.T) {
	dir := t.TempDir()
	var seen []string
	c, err := dev.Provision(dev.Options{Dir: dir}, func(i, n int, label string) {
		assert.Equal(t, dev.DefaultHSMs, n)
		seen = append(seen, label)
	})
	require.NoError(t, err)
	require.Len(t, c.HSMs, dev.DefaultHSMs)
	assert.Equal(t, []string{"hsm-1", "hsm-2", "hsm-3"}, seen)
	ids := map[string]bool{}
	for _, h := range c.HSMs {
		assert.True(t, h.TokenCreated)
		ids[h.HSMID] = true
	}
	assert.Len(t, ids, dev.DefaultHSMs, "every node has its own identity")

	again, err := dev.Provision(dev.Options{Dir: dir}, nil)
	require.NoError(t, err)
	for i, h := range again.HSMs {
		assert.False(t, h.TokenCreated || h.IdentityCreated)
		assert.Equal(t, c.HSMs[i].HSMID, h.HSMID)
	}

	_, err = dev.Provision(dev.Options{Dir: dir, HSMs: 17}, nil)
	require.Error(t, err)
	_, err = dev.Provision(dev.Options{}, nil)
	require.Error(t, err)
}
