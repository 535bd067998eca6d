// Package kmsapi is the AWS KMS JSON protocol as service hosts speak it:
// AWS JSON 1.1 requests (POST /, X-Amz-Target: TrentService.<Operation>),
// SigV4 verification against a credentials file, strict request bodies, and
// errors as KMS names them ({"__type": "…Exception", "message": …}, HTTP
// 400). Operations are registered by the host; an operation not registered
// answers UnsupportedOperationException, never a 5xx. A request body must
// arrive within Server.BodyTimeout. Each request's Principal carries its
// source address and transport (aws:SourceIp, aws:SecureTransport), from
// the connection, or for a request a peer host forwarded, from that peer's
// signed voucher (peer.go). Safe for concurrent use.
package kmsapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/trentkms/trent/audit"
	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/internal/strictjson"
)

// errInternal answers every failure that is not a KMS exception; its
// cause is not shown to the caller.
var errInternal = &Error{Type: KMSInternal, Message: "internal error", Status: http.StatusInternalServerError}

// Error is a KMS error: its exception name and message.
type Error struct {
	Type    string // e.g. "ValidationException"
	Message string
	Status  int // HTTP status; 400 if zero
}

func (e *Error) Error() string { return "kmsapi: " + e.Type + ": " + e.Message }

// Errorf makes an Error of type typ.
func Errorf(typ, format string, a ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, a...)}
}

// Exception names used here.
const (
	ValidationException        = "ValidationException"
	UnsupportedOperation       = "UnsupportedOperationException"
	UnrecognizedClient         = "UnrecognizedClientException"
	InvalidSignature           = "InvalidSignatureException"
	MissingAuthenticationToken = "MissingAuthenticationTokenException"
	IncompleteSignature        = "IncompleteSignatureException"
	KMSInternal                = "KMSInternalException"
	SerializationException     = "SerializationException"
	AccessDenied               = "AccessDeniedException"
	DependencyTimeout          = "DependencyTimeoutException"
)

// Principal is the authenticated caller, with where its request came
// from.
type Principal struct {
	AccessKeyID string
	AccountID   string
	ARN         string
	// SourceIP is the client's IP address (aws:SourceIp): the remote
	// address of the connection the request arrived on, or, for a
	// request a peer host forwarded, the address that peer vouched for
	// (Server.Peer). Headers such as X-Forwarded-For are never read.
	SourceIP string
	// SecureTransport is whether the request arrived over TLS
	// (aws:SecureTransport).
	SecureTransport bool
	// Time is when the request is served (aws:CurrentTime,
	// aws:EpochTime), on the host that serves it; zero leaves them out.
	Time time.Time
	// Region is the region the request is addressed to
	// (aws:RequestedRegion): the endpoint's, which SigV4 checked.
	Region string
}

// Conditions are the global condition keys of p's request, lower case, as
// a key policy sees them: aws:PrincipalArn, aws:PrincipalAccount,
// kms:CallerAccount, aws:PrincipalType and aws:username (an IAM user's
// name), aws:SecureTransport, aws:SourceIp, aws:CurrentTime,
// aws:EpochTime and aws:RequestedRegion. Keys of what Trent has no notion
// of (VPCs, organizations, tags, MFA, AWS services calling) are absent, as
// they are in AWS for a request without them. Every
// authorization of a request, and the lockout safety check of a new key
// policy, starts from these. A fresh map.
func (p Principal) Conditions() map[string][]string {
	m := make(map[string][]string, 8)
	p.AddConditions(m)
	return m
}

// AddConditions adds Conditions' keys to m (one map for all of a
// request's condition keys). The values share one array: a caller must
// not append to them.
func (p Principal) AddConditions(m map[string][]string) {
	typ, name := principalType(p.ARN)
	v := [...]string{p.ARN, p.AccountID, strconv.FormatBool(p.SecureTransport), p.SourceIP, typ, name, "", "", p.Region}
	vs := v[:]
	m["aws:principalarn"] = vs[0:1:1]
	m["aws:principalaccount"] = vs[1:2:2]
	m["kms:calleraccount"] = vs[1:2:2]
	m["aws:securetransport"] = vs[2:3:3]
	if p.SourceIP != "" {
		m["aws:sourceip"] = vs[3:4:4]
	}
	if typ != "" {
		m["aws:principaltype"] = vs[4:5:5]
	}
	if name != "" {
		m["aws:username"] = vs[5:6:6]
	}
	if !p.Time.IsZero() {
		v[6], v[7] = conditionTimes(p.Time)
		m["aws:currenttime"] = vs[6:7:7]
		m["aws:epochtime"] = vs[7:8:8]
	}
	if p.Region != "" {
		m["aws:requestedregion"] = vs[8:9:9]
	}
}

// conditionTimes are aws:CurrentTime and aws:EpochTime at t: both depend
// on t's second only, so the last second's strings are kept and shared
// by the requests of that second.
func conditionTimes(t time.Time) (current, epoch string) {
	u := t.Unix()
	if c := lastSecond.Load(); c != nil && c.unix == u {
		return c.current, c.epoch
	}
	c := &secondStrings{unix: u, current: t.UTC().Format("2006-01-02T15:04:05Z"), epoch: strconv.FormatInt(u, 10)}
	lastSecond.Store(c)
	return c.current, c.epoch
}

type secondStrings struct {
	unix           int64
	current, epoch string
}

var lastSecond atomic.Pointer[secondStrings]

// principalType is aws:PrincipalType of an IAM ARN ("User", "Account",
// "AssumedRole", "" for another kind) and, for a user, aws:username.
func principalType(arn string) (typ, user string) {
	_, rest, ok := strings.Cut(arn, ":iam::")
	if !ok {
		if _, rest, ok = strings.Cut(arn, ":sts::"); ok {
			if _, role, ok := strings.Cut(rest, ":assumed-role/"); ok && role != "" {
				return "AssumedRole", ""
			}
		}
		return "", ""
	}
	_, res, ok := strings.Cut(rest, ":")
	switch {
	case !ok:
		return "", ""
	case res == "root":
		return "Account", ""
	case strings.HasPrefix(res, "user/"):
		name := res[strings.LastIndexByte(res, '/')+1:]
		return "User", name
	}
	return "", ""
}

// Credential is one entry of the credentials file.
type Credential struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	AccountID       string `json:"account_id"`
	ARN             string `json:"arn"`
}

// Credentials maps access key IDs to secrets and principals.
type Credentials struct {
	Region      string       `json:"region"`
	Credentials []Credential `json:"credentials"`
}

// MaxCredentialsFile bounds the credentials file.
const MaxCredentialsFile = 1 << 20

// ReadCredentials reads and checks a credentials file (strict JSON).
func ReadCredentials(path string) (*Credentials, error) {
	data, err := boundedio.ReadFile(path, MaxCredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("kmsapi: %w", err)
	}
	var c Credentials
	if err := strictjson.Unmarshal(data, MaxCredentialsFile, &c); err != nil {
		return nil, fmt.Errorf("kmsapi: credentials: %w", err)
	}
	if c.Region == "" {
		return nil, errors.New("kmsapi: credentials: no region")
	}
	seen := map[string]bool{}
	for _, e := range c.Credentials {
		if e.AccessKeyID == "" || len(e.SecretAccessKey) < 16 || e.AccountID == "" || e.ARN == "" || seen[e.AccessKeyID] {
			return nil, fmt.Errorf("kmsapi: credentials: entry %q incomplete or repeated", e.AccessKeyID)
		}
		seen[e.AccessKeyID] = true
	}
	return &c, nil
}

// JSONAppender is an answer that writes its own JSON: AppendJSON appends
// to b exactly the bytes json.Marshal would write for it. The server
// serves such answers from a pooled buffer, cleared after use (an answer
// may carry plaintext).
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// KeyNamer is an answer that says which key it names: AnswerKeyID is
// the member KeyId of the JSON it marshals to ("" if it has none). The
// audit event takes the key from it, when it is valid UTF-8, instead of
// reading the answer again (record).
type KeyNamer interface {
	AnswerKeyID() string
}

// answerPool holds the buffers of JSONAppender answers; one grown past
// maxPooledAnswer is left to the collector.
var answerPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledAnswer = 64 << 10

// jsonContentType is every answer's Content-Type, one slice shared by
// all (net/http only reads it).
var jsonContentType = []string{"application/x-amz-json-1.1"}

// Handler serves one KMS operation: the request body (JSON) in, the
// response (marshalled to JSON) or an error (an *Error for KMS exceptions)
// out.
type Handler func(ctx context.Context, p Principal, body []byte) (any, error)

// Operation is one KMS operation as the server needs it (package kms
// declares each in its operation table).
type Operation struct {
	Handler Handler
	// Write is set for an operation that changes state: CloudTrail's
	// readOnly is false for it (true for every other registered one).
	Write bool
	// Cryptographic is set for an operation whose response CloudTrail
	// does not record.
	Cryptographic bool
}

// Server serves the KMS JSON API.
type Server struct {
	Creds      *Credentials
	Operations map[string]Operation
	Now        func() time.Time
	// MaxBody bounds a request body; 1 MiB if zero.
	MaxBody int64
	// Record, if set, gets each request's audit event (no secrets) before
	// the answer is sent; an error from it fails the request with
	// KMSInternalException, so nothing is answered unrecorded.
	Record func(*audit.Event) error
	// Forward, if set, says where an operation must be served instead of
	// here (a key-store write on a raft follower goes to the leader's
	// ForwardPath): a URL, or "" to serve it here. A forwarded request is
	// checked here, then verified, served and recorded there; its answer
	// is relayed as is. A request that arrives forwarded is never
	// forwarded again.
	Forward func(ctx context.Context, op string) (string, error)
	// Peer, if set, vouches for the client of the requests this host
	// forwards and checks the vouchers of the requests it is forwarded
	// (see Peer). Without it a forwarded request's source is the
	// forwarding host's address.
	Peer *Peer
	// BodyTimeout bounds the reading of a request body, from the end of
	// its headers (which the http.Server bounds); 20 s if zero.
	BodyTimeout time.Duration

	keysMu sync.Mutex
	keys   map[scopeKey][]byte // SigV4 signing keys by credential and scope
}

// ForwardPath is where a host serves requests forwarded by its peers.
const ForwardPath = "/trent/v1/host/kms"

// forwardedKey marks, in a request's context, a request that arrived
// forwarded (at ForwardPath): a context value, which a client cannot set.
type forwardedKey struct{}

// ServeForwarded serves a request another host forwarded (at ForwardPath)
// as if it had arrived at "/".
func (s *Server) ServeForwarded(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(context.WithValue(r.Context(), forwardedKey{}, true))
	r2.URL.Path, r2.URL.RawPath = "/", ""
	s.ServeHTTP(w, r2)
}

// ForwardTimeout bounds a forwarded request: a leader that does not
// answer within it (cut off, paused) leaves the client a retryable
// DependencyTimeoutException (the write may or may not have committed, as
// with any timeout), not a connection held open. It exceeds the leader's
// own bound on committing an entry (10 s).
const ForwardTimeout = 12 * time.Second

// forward relays the request to url, with the peer's voucher for its
// client, and copies the answer back.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, url string, body []byte, from client) {
	ctx, cancel := context.WithTimeout(r.Context(), ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		writeError(w, errInternal)
		return
	}
	req.Header = r.Header.Clone()
	req.Header.Del(clientHeader)
	if s.Peer != nil {
		v, err := s.Peer.vouch(from, r, body)
		if err != nil {
			writeError(w, errInternal)
			return
		}
		req.Header.Set(clientHeader, v)
	}
	req.Host = r.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		writeError(w, &Error{Type: DependencyTimeout, Message: "the raft leader did not answer", Status: http.StatusServiceUnavailable})
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "X-Amzn-Requestid"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, io.LimitReader(resp.Body, 8<<20))
}

const targetPrefix = "TrentService."

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID, eventID := requestID(), requestID()
	w.Header()["X-Amzn-Requestid"] = []string{reqID} // Set("X-Amzn-RequestId") without canonicalising per request
	start := s.now()
	var (
		op        string
		p         *Principal
		body      []byte
		eventData map[string]any            // AddEventData's fields
		src       = client{ip: sourceIP(r)} // the client, for the audit event
	)
	// answer records the request's outcome once, then sends it; an
	// outcome that cannot be recorded is not sent.
	answer := func(out any, err error) {
		var (
			data  []byte
			named string // the key the answer names, when it says so (KeyNamer)
		)
		if err == nil {
			if n, ok := out.(KeyNamer); ok {
				named = n.AnswerKeyID()
			}
			if a, ok := out.(JSONAppender); ok {
				buf := answerPool.Get().(*[]byte)
				data = a.AppendJSON((*buf)[:0])
				defer func() {
					// The answer may hold plaintext: cleared before reuse.
					clear(data)
					if cap(data) <= maxPooledAnswer {
						*buf = data[:0]
						answerPool.Put(buf)
					}
				}()
			} else {
				data, err = json.Marshal(out)
			}
		}
		var ke *Error
		if err != nil && !errors.As(err, &ke) {
			ke = errInternal
		}
		if s.record(start, r, src.ip, reqID, eventID, op, p, body, data, named, ke, eventData) != nil {
			ke = errInternal
		}
		if ke != nil {
			writeError(w, ke)
			return
		}
		w.Header()["Content-Type"] = jsonContentType
		w.Write(data)
	}

	limit := s.MaxBody
	if limit == 0 {
		limit = 1 << 20
	}
	// The body's read is bounded in time as in size: headers have the
	// http.Server's ReadHeaderTimeout, and a client trickling its body
	// must not hold a connection longer. The deadline is lifted once the
	// body is read: http.Server's background read would otherwise take
	// it for a dead connection and cancel the request.
	rc := http.NewResponseController(w)
	bodyTimeout := s.BodyTimeout
	if bodyTimeout == 0 {
		bodyTimeout = DefaultBodyTimeout
	}
	rc.SetReadDeadline(time.Now().Add(bodyTimeout)) // ErrNotSupported for a recorder: no connection to bound
	body, err := boundedio.ReadAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	if err != nil {
		// The deadline stays, and the connection closes after the
		// answer: the server would otherwise wait for the rest of the
		// body to reuse it.
		w.Header().Set("Connection", "close")
		body = nil
		answer(nil, Errorf(ValidationException, "request body too large or unreadable"))
		return
	}
	rc.SetReadDeadline(time.Time{})
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		answer(nil, &Error{Type: UnsupportedOperation, Message: "POST / only", Status: http.StatusBadRequest})
		return
	}
	principal, aerr := s.authenticate(r, body)
	if aerr != nil {
		answer(nil, aerr)
		return
	}
	from := client{ip: sourceIP(r), secure: r.TLS != nil}
	if forwarded, _ := r.Context().Value(forwardedKey{}).(bool); forwarded && r.Header.Get(clientHeader) != "" {
		// A peer's voucher for the client it forwards; checked only once
		// the request's signature holds. Without one, the sender's own
		// address is the source: true, and no more than it claims.
		if s.Peer == nil {
			answer(nil, Errorf(AccessDenied, "forwarded request: this host checks no peer vouchers"))
			return
		}
		var err error
		if from, err = s.Peer.check(r.Header.Get(clientHeader), r, body); err != nil {
			answer(nil, Errorf(AccessDenied, "forwarded request: %v", err))
			return
		}
	}
	src = from
	principal.SourceIP, principal.SecureTransport = from.ip, from.secure
	principal.Time, principal.Region = start, s.Creds.Region
	p = &principal
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if !ok || op == "" {
		op = ""
		answer(nil, Errorf(UnsupportedOperation, "unknown target %q", target))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		answer(nil, Errorf(SerializationException, "Content-Type must be application/x-amz-json-1.1"))
		return
	}
	handler := s.Operations[op].Handler
	if handler == nil {
		answer(nil, Errorf(UnsupportedOperation, "%s is not supported by this Trent build", op))
		return
	}
	if forwarded, _ := r.Context().Value(forwardedKey{}).(bool); s.Forward != nil && !forwarded {
		url, err := s.Forward(r.Context(), op)
		if err != nil {
			answer(nil, err)
			return
		}
		if url != "" {
			s.forward(w, r, url, body, from)
			return
		}
	}
	ctx := context.WithValue(r.Context(), eventDataKey{}, &requestInfo{data: &eventData, requestID: reqID, eventID: eventID})
	answer(handler(ctx, principal, body))
}

type eventDataKey struct{}

// requestInfo is what an operation's context carries of its request:
// the audit event's additionalEventData, its request ID and event ID.
type requestInfo struct {
	data               *map[string]any
	requestID, eventID string
}

// RequestIDs returns the request ID (X-Amzn-RequestId, the audit event's
// requestID) and the audit event's eventID of the request that ctx
// belongs to (an operation's context); "" outside a request.
func RequestIDs(ctx context.Context) (requestID, eventID string) {
	if in, _ := ctx.Value(eventDataKey{}).(*requestInfo); in != nil {
		return in.requestID, in.eventID
	}
	return "", ""
}

// AddEventData adds a field to the audit event's additionalEventData of
// the request that ctx belongs to (an operation's context); it must not
// carry secrets. Outside a request it does nothing. Not safe for
// concurrent use within one request.
func AddEventData(ctx context.Context, key string, v any) {
	in, _ := ctx.Value(eventDataKey{}).(*requestInfo)
	if in == nil {
		return
	}
	m := in.data
	if *m == nil {
		*m = map[string]any{}
	}
	(*m)[key] = v
}

// signingKey is the SigV4 signing key of a credential for a day, region
// and service, cached: it changes once a day.
func (s *Server) signingKey(c *Credential, day, region, service string) []byte {
	id := scopeKey{c.AccessKeyID, day, region, service}
	s.keysMu.Lock()
	k, ok := s.keys[id]
	s.keysMu.Unlock()
	if ok {
		return k
	}
	k = hmacSHA256([]byte("AWS4"+c.SecretAccessKey), day)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	s.keysMu.Lock()
	if s.keys == nil || len(s.keys) > 4096 {
		s.keys = map[scopeKey][]byte{}
	}
	s.keys[id] = k
	s.keysMu.Unlock()
	return k
}

// scopeKey names a cached signing key: credential, day, region, service.
type scopeKey struct{ akid, day, region, service string }

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// record hands the request's audit event to s.Record. The operation and
// parameters are recorded only for an authenticated caller: before SigV4
// passes, nothing the request claims is trusted. named is the key a
// KeyNamer answer names ("" for other answers). record takes it when it is
// valid UTF-8, the string reading the answer would find; otherwise it
// reads the answer, so that the audit line is the same either way.
func (s *Server) record(at time.Time, r *http.Request, ip, reqID, eventID, op string, p *Principal, body, resp []byte, named string, ke *Error, extra map[string]any) error {
	if s.Record == nil {
		return nil
	}
	e := &audit.Event{
		EventVersion: audit.Version, EventTime: at.UTC(), EventSource: audit.Source, EventType: audit.EventType,
		EventName: op, AWSRegion: s.Creds.Region, SourceIPAddress: ip, UserAgent: r.UserAgent(),
		RequestID: reqID, EventID: eventID, ReadOnly: s.readOnly(op), AdditionalEventData: extra,
	}
	if p != nil {
		e.UserIdentity = &audit.UserIdentity{Type: identityType(p.ARN), ARN: p.ARN, AccountID: p.AccountID, AccessKeyID: p.AccessKeyID}
		e.RequestParameters = audit.Redact(body)
		if k, ok := e.RequestParameters["keyId"].(string); ok {
			e.KeyID = k
		}
	}
	if ke != nil {
		e.ErrorCode, e.ErrorMessage = ke.Type, ke.Message
	} else if p != nil && resp != nil {
		// The key the request used, as its ARN, when the answer names it:
		// as the answer says (KeyNamer), or read from it.
		if named != "" && utf8.ValidString(named) {
			e.KeyID = named
		} else if k, ok := answerKeyID(resp); ok {
			e.KeyID = k
		} else {
			var decoded struct {
				KeyId       string
				KeyMetadata *struct{ Arn string }
			}
			if json.Unmarshal(resp, &decoded) == nil {
				switch {
				case decoded.KeyId != "":
					e.KeyID = decoded.KeyId
				case decoded.KeyMetadata != nil && decoded.KeyMetadata.Arn != "":
					e.KeyID = decoded.KeyMetadata.Arn
				}
			}
		}
		if !s.Operations[op].Cryptographic {
			e.ResponseElements = audit.Redact(resp)
		}
	}
	return s.Record(e)
}

// answerKeyID finds the key an answer names, as record's decoding of it
// into struct{KeyId string; KeyMetadata *struct{Arn string}} would, in
// the common case only, without decoding the rest of the answer (an
// Encrypt's ciphertext): the answer has exactly one member whose name is
// KeyId in any case, spelled "KeyId", a non-empty string without escapes,
// and no member named KeyMetadata in any case. Otherwise it reports false
// and record decodes the answer.
func answerKeyID(resp []byte) (string, bool) {
	members, err := audit.Members(resp)
	if err != nil {
		return "", false
	}
	var id string
	found := false
	for _, m := range members {
		switch {
		case strings.EqualFold(m.Key, "KeyMetadata"):
			return "", false
		case strings.EqualFold(m.Key, "KeyId"):
			v, ok := audit.SimpleString(m.Value)
			if found || m.Key != "KeyId" || !ok || v == "" {
				return "", false
			}
			id, found = v, true
		}
	}
	return id, found
}

// sourceIP is the IP address of the connection's remote end.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// identityType is CloudTrail's userIdentity.type for an IAM ARN.
func identityType(arn string) string {
	switch {
	case strings.HasSuffix(arn, ":root"):
		return "Root"
	case strings.Contains(arn, ":assumed-role/"), strings.Contains(arn, ":role/"):
		return "AssumedRole"
	default:
		return "IAMUser"
	}
}

// readOnly is CloudTrail's readOnly flag: a registered operation that
// changes nothing.
func (s *Server) readOnly(op string) bool {
	o, ok := s.Operations[op]
	return ok && !o.Write
}

func writeError(w http.ResponseWriter, e *Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": e.Type, "message": e.Message})
}

// requestID is a random UUID-shaped ID: 16 random bytes as
// fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
// would write them, without fmt.
func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	return formatID(&b)
}

func formatID(b *[16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// Decode parses a request body strictly into v (no duplicate keys, no
// unknown fields, member names matched exactly, blobs as base64 strings)
// as SerializationException: AWS's JSON protocol is case-sensitive, so
// "keyid" is an unknown member, not KeyId. The body is one the Server read,
// already bounded by Server.MaxBody: Decode bounds it no further, so a
// MaxBody above 1 MiB is not undone here.
func Decode(body []byte, v any) error {
	if len(body) == 0 {
		body = []byte("{}")
	}
	err := strictjson.Unmarshal(body, len(body), v)
	if err != nil {
		return Errorf(SerializationException, "%s", strings.TrimPrefix(err.Error(), "strictjson: "))
	}
	return nil
}

// DefaultBodyTimeout is how long a request body may take to arrive when
// Server.BodyTimeout is zero: 1 MiB in 20 s is 52 KB/s.
const DefaultBodyTimeout = 20 * time.Second

// MaxClockSkew is how far X-Amz-Date may be from the host's clock.
const MaxClockSkew = 15 * time.Minute

// authenticate verifies the request's SigV4 signature. Hand-written: the
// AWS SDKs sign requests but no maintained Go package verifies them.
func (s *Server) authenticate(r *http.Request, body []byte) (Principal, *Error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return Principal{}, Errorf(MissingAuthenticationToken, "Missing Authentication Token")
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != "AWS4-HMAC-SHA256" {
		return Principal{}, Errorf(IncompleteSignature, "unsupported signature algorithm")
	}
	fields := authFields{}
	for more := true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || fields.get(k) != "" {
			return Principal{}, Errorf(IncompleteSignature, "malformed Authorization header")
		}
		fields.set(k, v)
	}
	cred, signed, sig := fields.get("Credential"), fields.get("SignedHeaders"), fields.get("Signature")
	scope, ok := splitScope(cred)
	if !ok || signed == "" || sig == "" || scope[4] != "aws4_request" {
		return Principal{}, Errorf(IncompleteSignature, "malformed Authorization header")
	}
	akid, day, region, service := scope[0], scope[1], scope[2], scope[3]
	var entry *Credential
	for i := range s.Creds.Credentials {
		if s.Creds.Credentials[i].AccessKeyID == akid {
			entry = &s.Creds.Credentials[i]
		}
	}
	if entry == nil {
		return Principal{}, Errorf(UnrecognizedClient, "The security token included in the request is invalid.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, ok := parseAmzDate(amzDate)
	if !ok || !strings.HasPrefix(amzDate, day) {
		return Principal{}, Errorf(IncompleteSignature, "X-Amz-Date missing or not the credential's date")
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if d := now().Sub(t); d > MaxClockSkew || -d > MaxClockSkew {
		return Principal{}, Errorf(InvalidSignature, "Signature expired: %s is not within 15 minutes of the server's time", amzDate)
	}
	if service != "kms" || region != s.Creds.Region {
		return Principal{}, Errorf(InvalidSignature, "Credential should be scoped to service kms in region %s", s.Creds.Region)
	}
	// SignedHeaders: sorted, with host and x-amz-date (names split at
	// ';' as they come, empty ones included).
	sorted, host, date := true, false, false
	for rest, prev, first := signed, "", true; ; first = false {
		n, more, found := strings.Cut(rest, ";")
		sorted = sorted && (first || prev <= n)
		host, date = host || n == "host", date || n == "x-amz-date"
		if prev, rest = n, more; !found {
			break
		}
	}
	if !sorted || !host || !date {
		return Principal{}, Errorf(IncompleteSignature, "SignedHeaders must be sorted and include host and x-amz-date")
	}
	// The canonical request, built in one buffer (on the stack for the
	// usual request).
	var canonBuf [1024]byte
	canon := append(append(append(canonBuf[:0], r.Method...), "\n/\n"...), r.URL.RawQuery...)
	canon = append(canon, '\n')
	for rest := signed; ; {
		n, more, found := strings.Cut(rest, ";")
		canon = append(append(canon, n...), ':')
		switch v := r.Header.Values(canonicalHeaderKey(n)); {
		case n == "host":
			canon = append(canon, r.Host...)
		case n == "content-length" && len(v) == 0 && r.ContentLength >= 0:
			// net/http may hold the length only in the field.
			canon = strconv.AppendInt(canon, r.ContentLength, 10)
		case len(v) == 0:
			return Principal{}, Errorf(IncompleteSignature, "signed header %s missing", n)
		default:
			canon = appendTrimmed(canon, v)
		}
		canon = append(canon, '\n')
		if rest = more; !found {
			break
		}
	}
	sum := sha256.Sum256(body)
	canon = append(append(append(canon, '\n'), signed...), '\n')
	canon = hex.AppendEncode(canon, sum[:])
	creq := sha256.Sum256(canon)
	// The string to sign, after room for HMAC's inner pad: the
	// algorithm, the date, the scope after the access key ID
	// (day/region/service/aws4_request), the canonical request's hash.
	var msgBuf [512]byte
	msg := append(msgBuf[:hmacBlock], "AWS4-HMAC-SHA256\n"...)
	msg = append(append(append(append(msg, amzDate...), '\n'), cred[len(akid)+1:]...), '\n')
	msg = hex.AppendEncode(msg, creq[:])
	mac := hmacSHA256Padded(s.signingKey(entry, day, region, service), msg)
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], mac[:])
	if !equalHex(want[:], sig) {
		return Principal{}, Errorf(InvalidSignature, "The request signature we calculated does not match the signature you provided.")
	}
	return Principal{AccessKeyID: akid, AccountID: entry.AccountID, ARN: entry.ARN}, nil
}

// authFields are the Authorization header's name=value pairs: in a small
// array rather than a map for the usual header (three pairs), in a map
// beyond that, so that a header of many pairs costs no more than a map's
// lookups.
type authFields struct {
	kv [][2]string
	a  [4][2]string
	m  map[string]string
}

func (f *authFields) get(k string) string {
	if f.m != nil {
		return f.m[k]
	}
	for _, p := range f.kv {
		if p[0] == k {
			return p[1]
		}
	}
	return ""
}

// set sets k to v, as a map's assignment would.
func (f *authFields) set(k, v string) {
	if f.m != nil {
		f.m[k] = v
		return
	}
	for i := range f.kv {
		if f.kv[i][0] == k {
			f.kv[i][1] = v
			return
		}
	}
	if len(f.kv) == len(f.a) {
		f.m = make(map[string]string, 2*len(f.a))
		for _, p := range f.kv {
			f.m[p[0]] = p[1]
		}
		f.m[k] = v
		return
	}
	if f.kv == nil {
		f.kv = f.a[:0]
	}
	f.kv = append(f.kv, [2]string{k, v})
}

// canonicalHeaders are the canonical forms of the header names SDKs sign,
// so that the usual ones cost no allocation.
var canonicalHeaders = map[string]string{
	"host": "Host", "content-type": "Content-Type", "content-length": "Content-Length",
	"x-amz-date": "X-Amz-Date", "x-amz-target": "X-Amz-Target", "x-amz-content-sha256": "X-Amz-Content-Sha256",
	"x-amz-security-token": "X-Amz-Security-Token", "x-amz-user-agent": "X-Amz-User-Agent",
	"amz-sdk-invocation-id": "Amz-Sdk-Invocation-Id", "amz-sdk-request": "Amz-Sdk-Request",
	"user-agent": "User-Agent", "accept-encoding": "Accept-Encoding",
}

// canonicalHeaderKey is http.CanonicalHeaderKey(n).
func canonicalHeaderKey(n string) string {
	if c, ok := canonicalHeaders[n]; ok {
		return c
	}
	return http.CanonicalHeaderKey(n)
}

// amzDateLayout is X-Amz-Date's layout (ISO 8601 basic, UTC).
const amzDateLayout = "20060102T150405Z"

// parseAmzDate is time.Parse(amzDateLayout, v), ok when it would not
// fail: exactly 16 bytes, digits where the layout has them, every field
// in range (the day within its month). Hand-written because time.Parse
// was a fifth of the verification's cost; FuzzParseAmzDate compares the
// two.
func parseAmzDate(v string) (time.Time, bool) {
	if len(v) != len(amzDateLayout) || v[8] != 'T' || v[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		x := 0
		for _, c := range []byte(v[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			x = 10*x + int(c-'0')
		}
		return x, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(4, 2)
	d, ok3 := num(6, 2)
	h, ok4 := num(9, 2)
	mi, ok5 := num(11, 2)
	sec, ok6 := num(13, 2)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	// The month's last day: day 0 of the next month.
	if d > time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC), true
}

// splitScope splits a SigV4 credential (akid/day/region/service/
// aws4_request) at its four slashes, as strings.Split would into exactly
// five parts; false for any other count.
func splitScope(cred string) (scope [5]string, ok bool) {
	rest := cred
	for i := range 4 {
		var found bool
		if scope[i], rest, found = strings.Cut(rest, "/"); !found {
			return scope, false
		}
	}
	scope[4] = rest
	return scope, !strings.Contains(rest, "/")
}

// appendTrimmed appends a signed header's values to the canonical
// request as SigV4 writes them: each trimmed, runs of spaces collapsed
// (trimAll), joined by commas.
func appendTrimmed(b []byte, vs []string) []byte {
	for i, v := range trimAll(vs) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, v...)
	}
	return b
}

// hmacBlock is SHA-256's block size, HMAC's pad length.
const hmacBlock = 64

// hmacSHA256Padded is HMAC-SHA256 (RFC 2104) of msg[hmacBlock:] under
// key, computed over msg's first hmacBlock bytes, which it overwrites
// with the inner pad: with crypto/sha256's Sum256 on the caller's buffer,
// so that a request's verification allocates nothing (crypto/hmac
// allocates its state). The pads, which hold the key, are cleared.
// TestHMACPadded checks it against crypto/hmac.
func hmacSHA256Padded(key, msg []byte) [sha256.Size]byte {
	var k [hmacBlock]byte
	if len(key) > hmacBlock {
		h := sha256.Sum256(key)
		copy(k[:], h[:])
	} else {
		copy(k[:], key)
	}
	for i := range hmacBlock {
		msg[i] = k[i] ^ 0x36
	}
	inner := sha256.Sum256(msg)
	var outer [hmacBlock + sha256.Size]byte
	for i := range hmacBlock {
		outer[i] = k[i] ^ 0x5c
	}
	copy(outer[hmacBlock:], inner[:])
	mac := sha256.Sum256(outer[:])
	clear(k[:])
	clear(msg[:hmacBlock])
	clear(outer[:])
	return mac
}

// equalHex reports, in time that depends only on the lengths, whether
// sig is the hex want (as hmac.Equal([]byte(want), []byte(sig)) would,
// without copying sig).
func equalHex(want []byte, sig string) bool {
	if len(want) != len(sig) {
		return false
	}
	var v byte
	for i := range want {
		v |= want[i] ^ sig[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// trimAll trims each value and collapses runs of spaces, as SigV4 does.
// Values already in that form (the usual case) are returned as they are.
func trimAll(vs []string) []string {
	trimmed := true
	for _, v := range vs {
		trimmed = trimmed && isTrimmed(v)
	}
	if trimmed {
		return vs
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return out
}

// isTrimmed reports whether strings.Join(strings.Fields(v), " ") is v:
// ASCII, with no white space but single spaces between other characters.
// It may report false for some such values (non-ASCII ones).
func isTrimmed(v string) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= utf8.RuneSelf, c == '\t', c == '\n', c == '\v', c == '\f', c == '\r':
			return false
		case c == ' ' && (i == 0 || i == len(v)-1 || v[i+1] == ' '):
			return false
		}
	}
	return true
}
