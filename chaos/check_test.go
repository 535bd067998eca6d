package chaos

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hist builds a history from ops whose times are in milliseconds.
func hist(ops ...Op) []Op {
	for i := range ops {
		ops[i].ID = i
		ops[i].Call *= time.Millisecond
		ops[i].Return *= time.Millisecond
		if ops[i].Outcome == "" {
			ops[i].Outcome = OK
		}
		if ops[i].Host == "" {
			ops[i].Host = "host-1"
		}
	}
	return ops
}

func TestLinearizableHistoryPasses(t *testing.T) {
	ops := hist(
		Op{Client: 0, Kind: CreateKey, Key: "k1", Call: 0, Return: 10},
		Op{Client: 0, Kind: DisableKey, Key: "k1", Call: 20, Return: 30},
		// Concurrent with the Disable: either state may be read.
		Op{Client: 1, Kind: DescribeKey, Key: "k1", Enabled: true, Call: 25, Return: 35},
		Op{Client: 1, Kind: DescribeKey, Key: "k1", Enabled: false, Call: 40, Return: 50},
		Op{Client: 2, Kind: Encrypt, Key: "k1", Outcome: "DisabledException", Call: 41, Return: 51},
		Op{Client: 0, Kind: EnableKey, Key: "k1", Call: 60, Return: 70},
		Op{Client: 0, Kind: Encrypt, Key: "k1", CT: 0, Call: 75, Return: 78},
		// A write that failed retryably may have happened later...
		Op{Client: 0, Kind: PutKeyPolicy, Key: "k1", Policy: "p1", Outcome: Retryable, Call: 80, Return: 90},
		Op{Client: 1, Kind: GetKeyPolicy, Key: "k1", Policy: "default", Call: 95, Return: 100},
		Op{Client: 1, Kind: GetKeyPolicy, Key: "k1", Policy: "p1", Call: 110, Return: 120},
		// ...a read that failed retryably is left out.
		Op{Client: 2, Kind: GetKeyPolicy, Key: "k1", Outcome: Retryable, Call: 111, Return: 121},
		Op{Client: 2, Kind: CreateAlias, Alias: "alias/a", Target: "k1", Call: 130, Return: 140},
		Op{Client: 1, Kind: DescribeAlias, Alias: "alias/a", Target: "k1", Call: 150, Return: 160},
		Op{Client: 2, Kind: CreateAlias, Alias: "alias/a", Target: "k1", Outcome: "AlreadyExistsException", Call: 170, Return: 180},
		Op{Client: 2, Kind: Decrypt, Key: "k1", CT: 0, Call: 190, Return: 200, Final: true},
	)
	r := Check(ops, 10*time.Second)
	assert.Equal(t, Linearizable, r.Linearizable)
	assert.Empty(t, r.Misleading)
	assert.Empty(t, r.Lost)
	assert.True(t, r.Passed())
	assert.Equal(t, 11, r.Acknowledged)
	assert.Equal(t, 2, r.Retryable)
}

func TestStaleReadFails(t *testing.T) {
	ops := hist(
		Op{Client: 0, Kind: CreateKey, Key: "k1", Call: 0, Return: 10},
		Op{Client: 0, Kind: PutKeyPolicy, Key: "k1", Policy: "p1", Call: 20, Return: 30},
		Op{Client: 1, Kind: GetKeyPolicy, Key: "k1", Policy: "default", Host: "host-2", Call: 40, Return: 50},
	)
	r := Check(ops, 10*time.Second)
	assert.Equal(t, NotLinearizable, r.Linearizable)
	assert.Equal(t, NotLinearizable, r.StaleReads)
	assert.Empty(t, r.Misleading, "a stale read is not an error answer")
	assert.False(t, r.Passed())
	require.NoError(t, r.Visualize(t.TempDir()+"/history.html"))

	// An alias read behind its update is stale too.
	ops = hist(
		Op{Client: 0, Kind: CreateAlias, Alias: "alias/a", Target: "k1", Call: 0, Return: 10},
		Op{Client: 0, Kind: UpdateAlias, Alias: "alias/a", Target: "k2", Call: 20, Return: 30},
		Op{Client: 1, Kind: DescribeAlias, Alias: "alias/a", Target: "k1", Call: 40, Return: 50},
	)
	assert.Equal(t, NotLinearizable, Check(ops, 10*time.Second).Linearizable)
}

func TestNotFoundAfterAcknowledgedCreateIsMisleading(t *testing.T) {
	ops := hist(
		Op{Client: 0, Kind: CreateKey, Key: "k1", Call: 0, Return: 10},
		// Concurrent with the create: a fair answer.
		Op{Client: 1, Kind: DescribeKey, Key: "k1", Outcome: "NotFoundException", Call: 5, Return: 8},
		// After it: a lie.
		Op{Client: 1, Kind: DescribeKey, Key: "k1", Outcome: "NotFoundException", Host: "host-3", Call: 20, Return: 30},
	)
	r := Check(ops, 10*time.Second)
	require.Len(t, r.Misleading, 1)
	assert.Equal(t, 2, r.Misleading[0].Op.ID)
	assert.Contains(t, r.Misleading[0].Why, "created before")
	assert.Equal(t, NotLinearizable, r.Linearizable)
	assert.Equal(t, Linearizable, r.StaleReads, "linearizable without the misleading answer")
}

func TestMisleadingAnswers(t *testing.T) {
	ops := hist(
		Op{Client: 0, Kind: CreateKey, Key: "k1", Call: 0, Return: 10},
		Op{Client: 0, Kind: Encrypt, Key: "k1", CT: 0, Call: 11, Return: 12},
		Op{Client: 1, Kind: Decrypt, Key: "k1", CT: 0, Outcome: "InvalidCiphertextException", Call: 20, Return: 30},
		Op{Client: 1, Kind: Encrypt, Key: "k1", Outcome: "DisabledException", Call: 31, Return: 32},
		// A Disable of unknown outcome makes DisabledException possible.
		Op{Client: 2, Kind: DisableKey, Key: "k1", Outcome: Retryable, Call: 40, Return: 45},
		Op{Client: 1, Kind: Encrypt, Key: "k1", Outcome: "DisabledException", Call: 50, Return: 55},
		Op{Client: 1, Kind: UpdateAlias, Alias: "alias/never", Target: "k1", Outcome: "NotFoundException", Call: 60, Return: 65},
		Op{Client: 1, Kind: CreateAlias, Alias: "alias/b", Target: "k1", Outcome: "AlreadyExistsException", Call: 70, Return: 75},
		Op{Client: 1, Kind: GetKeyPolicy, Key: "k1", Outcome: "AccessDeniedException", Call: 80, Return: 85},
	)
	r := Check(ops, 10*time.Second)
	var ids []int
	for _, m := range r.Misleading {
		ids = append(ids, m.Op.ID)
	}
	assert.Equal(t, []int{2, 3, 7, 8}, ids)
	assert.Equal(t, NotLinearizable, r.Linearizable)
}

func TestLostAndWindows(t *testing.T) {
	ops := hist(
		Op{Client: 0, Kind: CreateKey, Key: "k1", Call: 0, Return: 10},
		Op{Client: 0, Kind: Encrypt, Key: "k1", CT: 0, Call: 11, Return: 12},
		Op{Client: 0, Kind: Encrypt, Key: "k1", Outcome: Retryable, Call: 100, Return: 200},
		Op{Client: 0, Kind: Encrypt, Key: "k1", Outcome: Retryable, Call: 210, Return: 300},
		Op{Client: 0, Kind: Encrypt, Key: "k1", CT: 1, Call: 310, Return: 320},
		Op{Client: 0, Kind: Decrypt, Key: "k1", CT: 0, Outcome: Retryable, Call: 400, Return: 410},
		Op{Client: 0, Kind: Decrypt, Key: "k1", CT: 0, Call: 500, Return: 510, Final: true, Host: "host-2", Outcome: "InvalidCiphertextException"},
		Op{Client: 0, Kind: Decrypt, Key: "k1", CT: 0, Call: 520, Return: 530, Final: true, Host: "host-2"},
		Op{Client: 0, Kind: Decrypt, Key: "k1", CT: 1, Call: 520, Return: 530, Final: true, Host: "host-3", Outcome: "InvalidCiphertextException"},
		Op{Client: 0, Kind: Decrypt, Key: "k1", CT: 1, Call: 520, Return: 530, Final: true, Host: "host-1", Outcome: Retryable},
	)
	r := Check(ops, 10*time.Second)
	require.Len(t, r.Lost, 1)
	assert.Equal(t, 8, r.Lost[0].ID)
	assert.Equal(t, 1, r.Unverified)
	assert.Equal(t, 2, r.Windows) // Encrypt 100–310 ms (the next success), Decrypt 400–410 ms
	assert.Equal(t, 210*time.Millisecond, r.WindowMax)
	assert.Len(t, r.Misleading, 2)
}

var historyFile = flag.String("chaos.history", "", "a history.json to check again (TestReplay)")

// TestReplay checks a saved history again: go test -run TestReplay
// ./chaos/ -args -chaos.history .chaos/kill-leader/history.json
func TestReplay(t *testing.T) {
	if *historyFile == "" {
		t.Skip("no -chaos.history")
	}
	ops, _, err := ReadHistoryFile(*historyFile)
	require.NoError(t, err)
	r := Check(ops, time.Minute)
	var b strings.Builder
	Print(&b, []*Report{{Scenario: *historyFile, Result: r}})
	t.Log("\n" + b.String())
	view := strings.TrimSuffix(*historyFile, ".json") + ".replay.html"
	require.NoError(t, r.Visualize(view))
	t.Logf("view: %s", view)
}

func TestHistoryFileRoundTrip(t *testing.T) {
	h := NewHistory()
	ct := h.AddCiphertext(Ciphertext{Key: "k1", Blob: []byte{1}, Plaintext: []byte{2}})
	h.Add(Op{Kind: CreateKey, Key: "k1", Outcome: OK, Call: 1, Return: 2, CT: -1})
	h.Add(Op{Kind: Encrypt, Key: "k1", Outcome: OK, Call: 3, Return: 4, CT: ct})
	path := t.TempDir() + "/history.json"
	require.NoError(t, h.WriteFile(path))
	ops, cts, err := ReadHistoryFile(path)
	require.NoError(t, err)
	assert.Equal(t, h.Ops(), ops)
	assert.Equal(t, h.Ciphertexts(), cts)
	assert.True(t, Check(ops, time.Second).Passed())
}
