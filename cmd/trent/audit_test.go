package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/audit"
)

func TestAuditCommand(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.jsonl"))
	require.NoError(t, err)
	now := time.Now().UTC()
	for i, name := range []string{"GenerateRandom", "Encrypt", "GenerateRandom"} {
		e := &audit.Event{EventVersion: audit.Version, EventTime: now.Add(time.Duration(i-3) * time.Hour), EventName: name,
			UserIdentity: &audit.UserIdentity{Type: "IAMUser", ARN: "arn:aws:iam::1:user/alice"}, RequestID: "r", EventID: "e"}
		if name == "Encrypt" {
			e.ErrorCode, e.KeyID = "UnsupportedOperationException", "alias/x"
		}
		require.NoError(t, l.Write(e))
	}
	require.NoError(t, l.Close())

	out, _, err := run(t, "audit", "--dir", dir)
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(out, "arn:aws:iam::1:user/alice"))
	out, _, err = run(t, "audit", "--dir", dir, "--errors")
	require.NoError(t, err)
	assert.Contains(t, out, "UnsupportedOperationException")
	assert.Contains(t, out, "alias/x")
	assert.Equal(t, 1, strings.Count(out, "\n"))
	out, _, err = run(t, "--json", "audit", "--file", filepath.Join(dir, "audit.jsonl"), "--event-name", "GenerateRandom", "--since", "150m")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, out)
	e, err := audit.ParseLine([]byte(lines[0]))
	require.NoError(t, err)
	assert.Equal(t, "GenerateRandom", e.EventName)

	_, _, err = run(t, "audit", "--dir", dir, "--since", "yesterday")
	assert.ErrorContains(t, err, "neither")
}
