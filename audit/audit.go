// Package audit keeps the service host's CloudTrail-like record of KMS API
// requests: one JSON object per line, one line per request, appended
// before the answer is sent, and filtered back by `trent audit`.
//
// An event names the caller, the operation, the key and the outcome. It
// never holds a secret: request parameters and response elements that
// carry plaintext, ciphertext or key material are dropped before the event
// is made (Redact). As in CloudTrail, the cryptographic operations record
// no response elements, only the key they used.
package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/trentkms/trent/internal/strictjson"
)

// Event is one request, in CloudTrail's field names.
type Event struct {
	EventVersion      string         `json:"eventVersion"`
	EventTime         time.Time      `json:"eventTime"`
	EventSource       string         `json:"eventSource"`
	EventName         string         `json:"eventName"`
	AWSRegion         string         `json:"awsRegion"`
	SourceIPAddress   string         `json:"sourceIPAddress"`
	UserAgent         string         `json:"userAgent"`
	UserIdentity      *UserIdentity  `json:"userIdentity,omitempty"`
	RequestParameters map[string]any `json:"requestParameters"`
	ResponseElements  map[string]any `json:"responseElements"`
	ErrorCode         string         `json:"errorCode,omitempty"`
	ErrorMessage      string         `json:"errorMessage,omitempty"`
	KeyID             string         `json:"keyId,omitempty"`
	// AdditionalEventData holds what an operation adds, as CloudTrail's
	// field of that name: for a Recipient, the attestation document's
	// module ID and PCRs (never the document itself).
	AdditionalEventData map[string]any `json:"additionalEventData,omitempty"`
	RequestID           string         `json:"requestID"`
	EventID             string         `json:"eventID"`
	ReadOnly            bool           `json:"readOnly"`
	EventType           string         `json:"eventType"`
}

// UserIdentity is the authenticated caller (absent when SigV4 failed).
type UserIdentity struct {
	Type        string `json:"type"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	AccessKeyID string `json:"accessKeyId"`
}

// The fixed fields of every event.
const (
	Version   = "1.08"
	Source    = "kms.amazonaws.com"
	EventType = "AwsApiCall"
)

// secretParams are request fields never recorded: they carry plaintext,
// ciphertext, key material or attestation documents. They are matched
// whatever their case: a request whose "plaintext" the API refuses as an
// unknown member is still recorded, and its secret must not be.
var secretParams = map[string]bool{
	"plaintext": true, "ciphertextblob": true, "sourceciphertextblob": true,
	"encryptedkeymaterial": true, "importtoken": true, "message": true,
	"signature": true, "recipient": true,
	// In responses too:
	"ciphertextforrecipient": true, "privatekeyplaintext": true,
	"privatekeyciphertextblob": true, "sharedsecret": true, "mac": true,
	// A custom key store's kmsuser PIN and XKS proxy credential.
	"keystorepassword": true, "xksproxyauthenticationcredential": true,
}

// secret reports whether a member named name is a secret parameter.
func secret(name string) bool {
	var lower [len("xksproxyauthenticationcredential")]byte
	if len(name) > len(lower) {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return secretParams[string(lower[:len(name)])] // no allocation for a map lookup
}

// Redact turns a request body or a response (JSON object) into request
// parameters or response elements: secret fields dropped, names in
// CloudTrail's lowerCamelCase. Input that is not a JSON object gives nil
// (a secret value is skipped unread, so only its extent is checked).
//
// Secret fields are dropped before their values are decoded: a plaintext
// or an attestation document is never copied for the audit trail, nor
// even read (strictjson.Members finds where it ends). The other values
// are decoded, so a body whose recorded values are not JSON gives nil.
func Redact(body []byte) map[string]any {
	members, err := Members(body)
	if err != nil {
		return nil
	}
	out := make(map[string]any, len(members))
	for _, m := range members {
		if secret(m.Key) || m.Key == "" {
			continue
		}
		v, ok := decodeValue(m.Value)
		if !ok && json.Unmarshal(m.Value, &v) != nil {
			return nil
		}
		name, ok := lowerNames[m.Key]
		if !ok {
			name = lowerFirst(m.Key)
		}
		out[name] = v
	}
	return out
}

// Members is strictjson.Members with the KMS API's usual member names
// interned (memberNames): the audit trail splits every request and
// answer.
func Members(data []byte) ([]strictjson.Member, error) {
	return strictjson.MembersIntern(data, memberNames)
}

// memberNames are the member names of the KMS API's requests and answers
// that the audit trail meets most (interned: names[k] is k); lowerNames
// are their CloudTrail spellings (lowerFirst). Names not here are
// copied and lowered per request, with the same result.
var memberNames, lowerNames = func() (names, lower map[string]string) {
	names, lower = map[string]string{}, map[string]string{}
	for _, n := range strings.Fields(`KeyId EncryptionContext GrantTokens DryRun EncryptionAlgorithm
		KeySpec NumberOfBytes Plaintext CiphertextBlob Recipient CiphertextForRecipient
		SourceKeyId DestinationKeyId SourceEncryptionContext DestinationEncryptionContext
		SourceEncryptionAlgorithm DestinationEncryptionAlgorithm KeyPairSpec PublicKey
		Message MessageType Signature SigningAlgorithm SignatureValid Mac MacAlgorithm MacValid
		KeyAgreementAlgorithm KeyMetadata Limit Marker NextMarker Truncated AliasName TargetKeyId
		Description Policy PolicyName KeyUsage Origin Tags TagKeys GranteePrincipal
		RetiringPrincipal Operations Constraints Name GrantId GrantToken PendingWindowInDays
		BypassPolicyLockoutSafetyCheck MultiRegion CustomKeyStoreId RotationPeriodInDays`) {
		names[n], lower[n] = n, lowerFirst(n)
	}
	return names, lower
}()

// decodeValue decodes v, a value whose extent Members found, as
// json.Unmarshal into an any would, for the values requests carry most:
// a string without escapes (SimpleString), or an object of such strings
// whose keys hold no control character (an encryption context). It
// reports false for anything else, which the caller decodes with
// encoding/json. FuzzRedact compares the two.
func decodeValue(v []byte) (any, bool) {
	if s, ok := SimpleString(v); ok {
		return s, true
	}
	if len(v) == 0 || v[0] != '{' {
		return nil, false
	}
	members, err := strictjson.Members(v)
	if err != nil {
		return nil, false
	}
	m := make(map[string]any, len(members))
	for _, mb := range members {
		s, ok := SimpleString(mb.Value)
		if !ok || strings.ContainsFunc(mb.Key, func(r rune) bool { return r < 0x20 }) {
			return nil, false
		}
		m[mb.Key] = s
	}
	return m, true
}

// lowerFirst is strings.ToLower(k[:1])+k[1:], without allocating when
// the first byte is already not an upper-case ASCII letter.
func lowerFirst(k string) string {
	c := k[0]
	switch {
	case c >= utf8.RuneSelf:
		return strings.ToLower(k[:1]) + k[1:]
	case 'A' <= c && c <= 'Z':
		return string(c+'a'-'A') + k[1:]
	}
	return k
}

// SimpleString decodes v, a JSON value whose extent strictjson.Members
// found, when it is a string that encoding/json would decode to its bytes
// as they stand: quoted, no escape, no control character, valid UTF-8.
// Anything else reports false, and the caller decodes it with
// encoding/json (which gives the same string for what this accepts).
func SimpleString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	for _, c := range in {
		if c < 0x20 || c == '\\' || c == '"' {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// Log appends events to a file. Safe for concurrent use.
type Log struct {
	mu       sync.Mutex
	f        *os.File
	pending  *group // lines waiting for the next write
	flushing bool   // a Write is writing groups
}

// group is the lines of concurrent Writes that one write(2) appends.
type group struct {
	buf  []byte
	err  error
	done chan struct{}
}

// Open opens (or creates, mode 0600) the audit file at path for appending.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &Log{f: f}, nil
}

// Write appends e as one line and returns once the line is written. Lines
// of concurrent Writes are gathered into one write(2) on the O_APPEND file
// (group commit): the first writer yields the processor once (so that the
// Writes ready to run then, the answers of one HSM batch for instance,
// add their lines even on a single thread), then writes every group that
// forms until none is left; the others wait for theirs. Lines never
// interleave; a failed write fails every Write of its group. Nothing is
// fsynced (the operating system's cache holds the lines across a process
// crash, not a power loss).
func (l *Log) Write(e *Event) error {
	lb := linePool.Get().(*[]byte)
	line, err := e.AppendJSON((*lb)[:0])
	if err == nil && len(line) > MaxLine {
		line, err = e.abridged(len(line)).AppendJSON(line[:0])
	}
	if err != nil {
		linePool.Put(lb)
		return fmt.Errorf("audit: %w", err)
	}
	l.mu.Lock()
	if l.pending == nil {
		l.pending = &group{done: make(chan struct{})}
		if gb, ok := groupPool.Get().(*[]byte); ok {
			l.pending.buf = (*gb)[:0]
		}
	}
	g := l.pending
	g.buf = append(append(g.buf, line...), '\n')
	if cap(line) <= maxPooled {
		*lb = line
		linePool.Put(lb)
	}
	if l.flushing {
		l.mu.Unlock()
		<-g.done
		return g.err
	}
	l.flushing = true
	l.mu.Unlock()
	runtime.Gosched() // a yield, not a wait: alone, this writer runs on at once
	l.mu.Lock()
	for l.pending != nil {
		w := l.pending
		l.pending = nil
		l.mu.Unlock()
		if _, err := l.f.Write(w.buf); err != nil {
			w.err = fmt.Errorf("audit: %w", err)
		}
		if cap(w.buf) <= maxPooled {
			buf := w.buf[:0]
			groupPool.Put(&buf)
		}
		w.buf = nil
		close(w.done)
		l.mu.Lock()
	}
	l.flushing = false
	l.mu.Unlock()
	return g.err
}

// Buffers of Write: one line's encoding, and a group's lines. A buffer
// grown past maxPooled (a large event) is left to the collector.
var (
	linePool  = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
	groupPool sync.Pool
)

const maxPooled = 64 << 10

// Close closes the file.
func (l *Log) Close() error { return l.f.Close() }

// MaxLine bounds one line of an audit file. Write keeps to it: an event
// whose line would be longer (a request body near the KMS API's 1 MiB
// limit whose strings the encoding expands: invalid UTF-8 becomes
// U+FFFD, three bytes for one) is written abridged.
const MaxLine = 1 << 20

// maxAbridged bounds each string an abridged event keeps.
const maxAbridged = 2048

// abridged is e without its request parameters, response elements and
// additional data, with a note of the omission in additionalEventData
// ("omitted"), and its strings (user agent, event name, key ID, error
// message, source address, region) cut to maxAbridged bytes:
// the event Write records when e's line would be n > MaxLine bytes. Who
// called what, when, on which key, and how it ended stay.
func (e *Event) abridged(n int) *Event {
	a := *e
	a.RequestParameters, a.ResponseElements = nil, nil
	a.AdditionalEventData = map[string]any{"omitted": fmt.Sprintf(
		"requestParameters, responseElements and additionalEventData: the event was %d bytes, over the audit trail's %d", n, MaxLine)}
	for _, f := range []*string{&a.UserAgent, &a.EventName, &a.KeyID, &a.ErrorMessage, &a.SourceIPAddress, &a.AWSRegion} {
		*f = cut(*f, maxAbridged)
	}
	return &a
}

// cut is s cut to at most n bytes, at the start of a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ParseLine decodes one line strictly (no duplicate keys, no unknown
// fields, nothing after the object).
func ParseLine(line []byte) (*Event, error) {
	var e Event
	if err := strictjson.Unmarshal(line, MaxLine, &e); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if e.EventName == "" && e.ErrorCode == "" {
		return nil, errors.New("audit: event without a name or an error")
	}
	return &e, nil
}

// Filter selects events; zero fields match everything.
type Filter struct {
	EventName  string    // exact operation name
	Principal  string    // caller ARN, exact
	KeyID      string    // exact key ID or ARN
	ErrorsOnly bool      // only events with an error code
	Since      time.Time // at or after
	Until      time.Time // before
}

// Match reports whether e passes f.
func (f *Filter) Match(e *Event) bool {
	switch {
	case f.EventName != "" && e.EventName != f.EventName,
		f.KeyID != "" && e.KeyID != f.KeyID,
		f.ErrorsOnly && e.ErrorCode == "",
		!f.Since.IsZero() && e.EventTime.Before(f.Since),
		!f.Until.IsZero() && !e.EventTime.Before(f.Until):
		return false
	case f.Principal != "":
		return e.UserIdentity != nil && e.UserIdentity.ARN == f.Principal
	}
	return true
}

// Scan reads an audit file from r and calls each for every event f
// matches, in file order. A malformed line stops it with the line number.
func Scan(r io.Reader, f *Filter, each func(*Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	for n := 1; sc.Scan(); n++ {
		e, err := ParseLine(sc.Bytes())
		if err != nil {
			return fmt.Errorf("audit: line %d: %w", n, err)
		}
		if f.Match(e) {
			if err := each(e); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
