package drill_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/drill"
)

func TestDrillAgainstDevCluster(t *testing.T) {
	dir := t.TempDir()
	c, err := dev.Start(dev.Options{Dir: dir, HSMs: 2, Hosts: 3, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1}, nil)
	require.NoError(t, err)
	defer c.Stop()

	var seen []drill.Step
	rep, err := drill.Run(context.Background(), dir, func(s drill.Step) { seen = append(seen, s) })
	require.NoError(t, err, "%+v", rep)
	assert.True(t, rep.OK)
	assert.Equal(t, rep.Steps, seen)
	require.GreaterOrEqual(t, len(rep.Steps), 10)
	for _, s := range rep.Steps {
		assert.True(t, s.OK, "%s: %s", s.Name, s.Outcome)
	}
	assert.Contains(t, rep.Steps[0].Outcome, "refused")

	// A second drill runs just as well: the first left nothing behind.
	rep, err = drill.Run(context.Background(), dir, nil)
	require.NoError(t, err, "%+v", rep)
}

func TestDrillWithoutCluster(t *testing.T) {
	_, err := drill.Run(context.Background(), t.TempDir(), nil)
	require.ErrorContains(t, err, "is trent dev running")
}
