package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	p := Redact([]byte(`{"KeyId":"alias/a","Plaintext":"c2VjcmV0","EncryptionContext":{"k":"v"},"NumberOfBytes":8}`))
	assert.Equal(t, map[string]any{"keyId": "alias/a", "encryptionContext": map[string]any{"k": "v"}, "numberOfBytes": float64(8)}, p)
	assert.Nil(t, Redact([]byte(`[1]`)))
	assert.Nil(t, Redact([]byte(`{`)))
}

func event(name, arn, key, code string, at time.Time) *Event {
	e := &Event{EventVersion: Version, EventTime: at, EventSource: Source, EventType: EventType, EventName: name, KeyID: key, ErrorCode: code, RequestID: "r", EventID: "e"}
	if arn != "" {
		e.UserIdentity = &UserIdentity{Type: "IAMUser", ARN: arn, AccountID: "1", AccessKeyID: "AKIA"}
	}
	return e
}

func TestLogAndScan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	require.NoError(t, err)
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			require.NoError(t, l.Write(event("GenerateRandom", "arn:aws:iam::1:user/alice", "", "", t0.Add(time.Duration(i)*time.Minute))))
		})
	}
	wg.Wait()
	require.NoError(t, l.Write(event("Encrypt", "arn:aws:iam::1:user/bob", "alias/x", "UnsupportedOperationException", t0.Add(time.Hour))))
	require.NoError(t, l.Write(event("", "", "", "InvalidSignatureException", t0.Add(2*time.Hour))))
	require.NoError(t, l.Close())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	count := func(f Filter) int {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		n := 0
		require.NoError(t, Scan(bytes.NewReader(data), &f, func(*Event) error { n++; return nil }))
		return n
	}
	assert.Equal(t, 52, count(Filter{}))
	assert.Equal(t, 50, count(Filter{EventName: "GenerateRandom"}))
	assert.Equal(t, 1, count(Filter{Principal: "arn:aws:iam::1:user/bob"}))
	assert.Equal(t, 1, count(Filter{KeyID: "alias/x"}))
	assert.Equal(t, 2, count(Filter{ErrorsOnly: true}))
	assert.Equal(t, 10, count(Filter{Since: t0.Add(40 * time.Minute), Until: t0.Add(50 * time.Minute)}))

	// A file reopened appends.
	l, err = Open(path)
	require.NoError(t, err)
	require.NoError(t, l.Write(event("ListKeys", "arn:aws:iam::1:user/alice", "", "", t0)))
	require.NoError(t, l.Close())
	assert.Equal(t, 53, count(Filter{}))
}

func TestParseLineIsStrict(t *testing.T) {
	good := `{"eventVersion":"1.08","eventTime":"2026-11-22T09:00:00Z","eventSource":"kms.amazonaws.com","eventName":"ListKeys","awsRegion":"eu-west-1","sourceIPAddress":"127.0.0.1","userAgent":"x","requestParameters":null,"responseElements":null,"requestID":"r","eventID":"e","readOnly":true,"eventType":"AwsApiCall"}`
	_, err := ParseLine([]byte(good))
	require.NoError(t, err)
	for name, bad := range map[string]string{
		"duplicate key":  strings.Replace(good, `"eventName":"ListKeys"`, `"eventName":"ListKeys","eventName":"Decrypt"`, 1),
		"unknown field":  strings.Replace(good, `{`, `{"extra":1,`, 1),
		"trailing bytes": good + `{}`,
		"no name":        strings.Replace(good, `"eventName":"ListKeys"`, `"eventName":""`, 1),
		"not JSON":       `eventName=ListKeys`,
	} {
		_, err := ParseLine([]byte(bad))
		assert.Error(t, err, name)
	}
	err = Scan(strings.NewReader(good+"\n"+good+"x\n"), &Filter{}, func(*Event) error { return nil })
	assert.ErrorContains(t, err, "line 2")
}

// FuzzParseLine: no line makes the parser panic, and what it accepts
// re-encodes to a line it accepts again.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"eventVersion":"1.08","eventTime":"2026-11-22T09:00:00Z","eventName":"ListKeys","requestParameters":{"keyId":"k"},"readOnly":true}`))
	f.Add([]byte(`{"errorCode":"InvalidSignatureException","userIdentity":{"type":"IAMUser","arn":"a","accountId":"1","accessKeyId":"A"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "a.jsonl")
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Write(e); err != nil {
			t.Fatal(err)
		}
		l.Close()
		data, _ := os.ReadFile(path)
		if _, err := ParseLine(bytes.TrimSuffix(data, []byte("\n"))); err != nil {
			t.Fatalf("re-encoded event refused: %v", err)
		}
	})
}

// Concurrent Writes are gathered into shared write(2)s: every line arrives
// whole, once.
func TestConcurrentWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jsonl")
	l, err := Open(path)
	require.NoError(t, err)
	const writers, each = 32, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e := &Event{EventName: "Encrypt", RequestID: fmt.Sprintf("%d-%d", w, i)}
				if err := l.Write(e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, l.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		e, err := ParseLine(line)
		require.NoError(t, err)
		require.False(t, seen[e.RequestID], "line %s twice", e.RequestID)
		seen[e.RequestID] = true
	}
	require.Len(t, seen, writers*each)

	// A write that fails fails its Write.
	require.Error(t, l.Write(&Event{EventName: "Encrypt"}))
}

// writeCalls is this process's count of write system calls so far
// (syscw in /proc/self/io).
func writeCalls(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io to count write(2) calls: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
			return n
		}
	}
	t.Skip("no syscw in /proc/self/io")
	return 0
}

// Lines ready together share one write(2) even on a single thread: the
// writer that is to write yields once first, so the lines of the Writes
// ready to run then join its group. Without the yield, each Write on one
// thread writes its line alone.
func TestReadyWritesShareAWrite(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	path := filepath.Join(t.TempDir(), "jsonl")
	l, err := Open(path)
	require.NoError(t, err)
	defer l.Close()
	const writers = 16
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			assert.NoError(t, l.Write(&Event{EventName: "Encrypt", RequestID: strconv.Itoa(w)}))
		})
	}
	before := writeCalls(t)
	close(start) // every writer ready at once
	wg.Wait()
	writes := writeCalls(t) - before
	assert.LessOrEqual(t, writes, writers/4, "write(2) calls for %d lines ready together", writers)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, writers, bytes.Count(data, []byte("\n")), "every line, once")
}

// SimpleString agrees with encoding/json on every string it accepts, and
// leaves to encoding/json what it might decode differently or refuse.
func TestSimpleString(t *testing.T) {
	for in, simple := range map[string]bool{
		`""`: true, `"a"`: true, `"arn:aws:kms:eu-west-1:1:key/x"`: true, `"é"`: true,
		`"\u00e9"`: false, `"a\"b"`: false, "\"\t\"": false, "\"\x01\"": false, "\"\xff\"": false,
		`"a`: false, `1`: false, `null`: false, `{}`: false,
	} {
		got, ok := SimpleString([]byte(in))
		if ok != simple {
			t.Errorf("%q: simple %v, want %v", in, ok, simple)
		}
		var want any
		if err := json.Unmarshal([]byte(in), &want); ok && (err != nil || want != got) {
			t.Errorf("%q: SimpleString %q, encoding/json %q %v", in, got, want, err)
		}
	}
}

// A secret member is dropped whatever the case of its name: the API
// refuses "plaintext" as an unknown member (names are case-sensitive), but
// the refused request is still recorded, and its secret must not be.
func TestRedactSecretsAnyCase(t *testing.T) {
	got := Redact([]byte(`{"KeyId":"k","plaintext":"c2VjcmV0","PLAINTEXT":"eA==","cipherTextBlob":"eA==","Mac":"eA=="}`))
	if len(got) != 1 || got["keyId"] != "k" {
		t.Fatalf("Redact kept %v, want only keyId", got)
	}
}

// An event is written whole up to MaxLine (the largest CreateKey the KMS
// API allows, about 280 KB, among them); a longer one (a 1 MiB body of
// invalid UTF-8, which the encoding triples, and a 2 MiB user agent) is
// written abridged, and the file still reads back line by line.
func TestLongEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	require.NoError(t, err)
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

	tags := []any{}
	for i := range 50 {
		tags = append(tags, map[string]any{"tagKey": fmt.Sprintf("%03d", i) + strings.Repeat("\x01", 125), "tagValue": strings.Repeat("\x01", 256)})
	}
	largest := event("CreateKey", "arn:aws:iam::1:user/alice", "k", "", t0)
	largest.RequestParameters = map[string]any{"policy": strings.Repeat("\n", 32768), "description": strings.Repeat("\x01", 8192), "tags": tags}
	largest.ResponseElements = map[string]any{"keyMetadata": map[string]any{"description": strings.Repeat("\x01", 8192)}}
	require.NoError(t, l.Write(largest))

	huge := event("CreateKey", "arn:aws:iam::1:user/bob", "k2", "ValidationException", t0.Add(time.Second))
	huge.RequestParameters = map[string]any{"description": strings.Repeat("\xff", 1<<20)}
	huge.UserAgent = strings.Repeat("é", 1<<20)
	require.NoError(t, l.Write(huge))
	require.NoError(t, l.Write(event("ListKeys", "arn:aws:iam::1:user/alice", "", "", t0.Add(2*time.Second))))
	require.NoError(t, l.Close())

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		require.LessOrEqual(t, len(line), MaxLine)
	}
	var got []*Event
	require.NoError(t, Scan(bytes.NewReader(data), &Filter{}, func(e *Event) error { got = append(got, e); return nil }))
	require.Len(t, got, 3)
	assert.Equal(t, strings.Repeat("\n", 32768), got[0].RequestParameters["policy"], "the largest legal CreateKey, whole")
	assert.Len(t, got[0].RequestParameters["tags"], 50)
	assert.Nil(t, got[0].AdditionalEventData)

	a := got[1]
	assert.Equal(t, "CreateKey", a.EventName)
	assert.Equal(t, "arn:aws:iam::1:user/bob", a.UserIdentity.ARN)
	assert.Equal(t, "k2", a.KeyID)
	assert.Equal(t, "ValidationException", a.ErrorCode)
	assert.Nil(t, a.RequestParameters)
	assert.Contains(t, a.AdditionalEventData["omitted"], "over the audit trail's")
	assert.LessOrEqual(t, len(a.UserAgent), maxAbridged)
	assert.True(t, utf8.ValidString(a.UserAgent), "cut at a character's start")
	assert.Equal(t, "ListKeys", got[2].EventName)
}
