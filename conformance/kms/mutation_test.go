//go:build trentmutation

package kms_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/conformance/kms"
	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/internal/mutation"
)

// Every check can fail, alone: against one in-process dev cluster, with
// each check's mutation on in turn, the whole suite runs and exactly that
// check fails; every other check passes. Run, from the module root, with
// the mutants' overlay (internal/mutation/overlay):
//
//	dir=$(mktemp -d); go run ./internal/mutation/cmd/mkoverlay -o "$dir"
//	go test -tags trentmutation -overlay "$dir/overlay.json" ./conformance/kms/ -run TestMutations
func TestMutations(t *testing.T) {
	require.True(t, mutation.Enabled, "build with -tags trentmutation")
	require.True(t, mutation.Overlaid, "build with the mutants' overlay: go run ./internal/mutation/cmd/mkoverlay -o DIR, then -overlay DIR/overlay.json")
	c, ids, simFile := devCluster(t)
	ctx := context.Background()
	env, err := kms.NewEnv(ctx, kms.Config{Endpoint: c.KMSURL, Region: dev.DevRegion,
		Credentials: static(ids[0]), SecondCredentials: static(ids[1]), SecondARN: secondARN, AttestationRoot: simFile})
	require.NoError(t, err)
	checks := env.Checks()
	missing := env.Missing(ctx, checks)
	require.Empty(t, missing, "the dev cluster has every capability")
	run := func(t *testing.T, name string) *conformance.Report {
		t.Helper()
		mutation.Set(name)
		defer mutation.Set("")
		start := time.Now()
		rep := conformance.Run(ctx, checks, conformance.Options{Suite: kms.Suite, Target: c.KMSURL, Missing: missing, Timeout: time.Minute})
		t.Logf("%s: %d passed, %d failed, %d skipped in %v", name, rep.Passed, rep.Failed, rep.Skipped, time.Since(start).Round(time.Millisecond))
		return rep
	}
	show := func(t *testing.T, rep *conformance.Report) {
		var b bytes.Buffer
		tb := conformance.NewTable(&b)
		for _, r := range rep.Results {
			if r.Status != conformance.Pass {
				tb.Row(r)
			}
		}
		t.Logf("\n%s", b.String())
	}

	rep := run(t, "")
	require.Zero(t, rep.Failed+rep.Skipped, "without a mutation every check passes")

	for _, check := range checks {
		t.Run(check.ID, func(t *testing.T) {
			require.NotEmpty(t, check.Mutation)
			rep := run(t, check.Mutation)
			ok := true
			for _, r := range rep.Results {
				switch {
				case r.ID == check.ID:
					ok = assert.Equal(t, conformance.Fail, r.Status, "%s with %s on", r.ID, check.Mutation) && ok
					t.Logf("%s fails: %s (expected %s, observed %s)", r.ID, r.Reason, r.Expected, r.Observed)
				case r.Status != conformance.Skip:
					ok = assert.Equal(t, conformance.Pass, r.Status, "%s with %s on: %s (expected %s, observed %s)",
						r.ID, check.Mutation, r.Reason, r.Expected, r.Observed) && ok
				}
			}
			if !ok {
				show(t, rep)
			}
		})
	}
}
