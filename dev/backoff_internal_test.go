package dev

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The restart pause doubles from 0.5 s up to 10 s while a process keeps
// crashing, and starts from 0.5 s again once it had stayed up for
// restartStable.
func TestRestartBackoff(t *testing.T) {
	const crash = time.Second // up for less than restartStable
	var d time.Duration
	var got []time.Duration
	for range 7 {
		d = restartBackoff(d, crash)
		got = append(got, d)
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{500 * ms, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, got)

	assert.Equal(t, restartMin, restartBackoff(restartMax, restartStable), "up for restartStable: a first restart again")
	assert.Equal(t, restartMin, restartBackoff(restartMax, time.Hour))
	assert.Equal(t, restartMax, restartBackoff(restartMax, restartStable-time.Millisecond), "not quite stable")
	assert.Equal(t, restartMin, restartBackoff(0, 0), "the first restart")
}

// trent dev shares the machine's cores among its processes: on 2 cores
// (CI, this project's machines) every HSM and the host run one Go thread
// and the host keeps one batch in flight; with cores to spare each HSM
// gets its share and the host half the cores and a batch per HSM.
func TestSharedShape(t *testing.T) {
	for _, tc := range []struct {
		cpus, hsms int
		want       coLocated
	}{
		{2, 3, coLocated{hsmProcs: 1, hostProcs: 1, batchWorkers: 1}},
		{1, 1, coLocated{hsmProcs: 1, hostProcs: 1, batchWorkers: 1}},
		{4, 3, coLocated{hsmProcs: 1, hostProcs: 2, batchWorkers: 2}},
		{8, 3, coLocated{hsmProcs: 2, hostProcs: 4, batchWorkers: 3}},
		{16, 2, coLocated{hsmProcs: 8, hostProcs: 8, batchWorkers: 2}},
		{4, 0, coLocated{hsmProcs: 4, hostProcs: 2, batchWorkers: 1}},
	} {
		if got := sharedShape(tc.cpus, tc.hsms); got != tc.want {
			t.Errorf("sharedShape(%d, %d) = %+v, want %+v", tc.cpus, tc.hsms, got, tc.want)
		}
	}
}

// trent dev's processes get quietSysmon in GODEBUG, beside whatever else
// trent dev's own GODEBUG sets, unless that already sets schedtrace.
func TestSysmonEnv(t *testing.T) {
	for _, c := range []struct {
		godebug string
		want    []string
	}{
		{"", []string{"GODEBUG=schedtrace=2147483647"}},
		{"madvdontneed=1", []string{"GODEBUG=madvdontneed=1,schedtrace=2147483647"}},
		{"gctrace=1,schedtrace=1000", nil},
		{"schedtrace=0", nil},
		{"xschedtrace=5", []string{"GODEBUG=xschedtrace=5,schedtrace=2147483647"}},
	} {
		t.Setenv("GODEBUG", c.godebug)
		assert.Equal(t, c.want, sysmonEnv(), "GODEBUG=%q", c.godebug)
	}
}
