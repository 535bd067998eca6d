package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDevRegions(t *testing.T) {
	_, _, err := run(t, "dev", "--regions", "2", "--in-process", "--dir", t.TempDir(), "--once")
	require.ErrorContains(t, err, "not with --in-process")

	out, stderr, err := run(t, "dev", "--regions", "2", "--dir", t.TempDir(), "--hsms", "1", "--listen", "127.0.0.1:0", "--kms-listen", "127.0.0.1:0", "--once")
	require.NoError(t, err, stderr)
	assert.Contains(t, out, "trent dev: 2 regions")
	assert.Contains(t, out, "peer regions us-west-2=dev-us-west-2")
	assert.Contains(t, out, "peer regions us-east-1=dev-us-east-1")
	assert.Contains(t, stderr, "SetPeerRegion signed by dev-operator-1 and dev-operator-2")
	assert.Contains(t, out, "aws kms replicate-key --key-id $KEY --replica-region us-west-2")
}
