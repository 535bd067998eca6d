package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/trentkms/trent/internal/strictjson"
)

// MaxDocument is KMS's limit on a key policy: 32768 bytes.
const MaxDocument = 32768

// ErrMalformed is wrapped by every Parse error (the host answers
// MalformedPolicyDocumentException with the error's message after the
// "policy: " prefix).
var ErrMalformed = errors.New("policy: malformed policy document")

// The policy language versions KMS accepts.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Policy is a parsed key policy: immutable, safe for concurrent Evaluate.
type Policy struct {
	version    string
	id         string
	statements []statement
}

// HasConditions reports whether any statement has a Condition element:
// if none has, Evaluate never reads Request.Context, and a caller may
// leave it nil.
func (p *Policy) HasConditions() bool {
	if p == nil {
		return false
	}
	for i := range p.statements {
		if len(p.statements[i].conditions) > 0 {
			return true
		}
	}
	return false
}

// Version is the document's Version element.
func (p *Policy) Version() string { return p.version }

// ID is the document's Id element ("" if it has none).
func (p *Policy) ID() string { return p.id }

// Request is one authorization question.
type Request struct {
	Principal string // caller ARN, e.g. arn:aws:iam::111122223333:user/alice
	Account   string // caller's account ID, "111122223333"
	Action    string // "kms:Encrypt"
	Resource  string // the key ARN, arn:aws:kms:us-east-1:111122223333:key/<uuid>
	// Context holds the condition keys (names case-insensitive, e.g.
	// "kms:EncryptionContext:Department", "aws:SecureTransport"); a key
	// absent from the map, or with no values, is absent.
	Context map[string][]string
}

// Decision is the answer to a Request.
type Decision int

// Decisions.
const (
	ImplicitDeny Decision = iota // no statement allows
	Allow                        // a statement allows and none denies
	ExplicitDeny                 // a statement denies
)

func (d Decision) String() string {
	switch d {
	case ImplicitDeny:
		return "ImplicitDeny"
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Evaluate returns ExplicitDeny if any matching Deny statement applies, else
// Allow if any matching Allow statement applies, else ImplicitDeny. A nil
// Policy or Request is ImplicitDeny.
func (p *Policy) Evaluate(r *Request) Decision {
	if p == nil || r == nil {
		return ImplicitDeny
	}
	d := ImplicitDeny
	for i := range p.statements {
		s := &p.statements[i]
		if d == Allow && !s.deny {
			continue // already allowed: only a Deny can change the answer
		}
		if !s.applies(r) {
			continue
		}
		if s.deny {
			return ExplicitDeny
		}
		d = Allow
	}
	return d
}

type statement struct {
	sid          string
	deny         bool
	notPrincipal bool
	principal    principals
	notAction    bool
	actions      []string
	notResource  bool
	resources    []string
	conditions   []condition
}

func (s *statement) applies(r *Request) bool {
	if s.principal.match(r) == s.notPrincipal {
		return false
	}
	if matchAny(s.actions, r.Action, true) == s.notAction {
		return false
	}
	if matchAny(s.resources, r.Resource, false) == s.notResource {
		return false
	}
	for i := range s.conditions {
		if !s.conditions[i].eval(r.Context) {
			return false
		}
	}
	return true
}

// Parse checks a key policy document strictly and compiles it.
func Parse(doc []byte) (*Policy, error) {
	if len(doc) > MaxDocument {
		return nil, malformed("document is %d bytes, limit %d", len(doc), MaxDocument)
	}
	if !utf8.Valid(doc) {
		return nil, malformed("document is not valid UTF-8")
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, malformed("document is empty")
	}
	var raw json.RawMessage
	if err := strictjson.Unmarshal(doc, MaxDocument, &raw); err != nil {
		msg := strings.TrimPrefix(err.Error(), strictjson.ErrInvalid.Error()+": ")
		return nil, malformed("%s", msg)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, malformed("%v", err) // unreachable: strictjson decoded it
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("document is not a JSON object")
	}
	for _, k := range sortedKeys(top) {
		switch k {
		case "Version", "Id", "Statement":
		default:
			return nil, malformed("unknown element %q", k)
		}
	}
	p := &Policy{}
	ver, ok := top["Version"]
	if !ok {
		return nil, malformed("Version is missing")
	}
	if p.version, ok = ver.(string); !ok {
		return nil, malformed("Version is not a string")
	}
	if p.version != Version2012 && p.version != Version2008 {
		return nil, malformed("Version %q is not %s or %s", p.version, Version2012, Version2008)
	}
	if id, ok := top["Id"]; ok {
		if p.id, ok = id.(string); !ok {
			return nil, malformed("Id is not a string")
		}
	}
	st, ok := top["Statement"]
	if !ok {
		return nil, malformed("Statement is missing")
	}
	var list []any
	switch st := st.(type) {
	case map[string]any:
		list = []any{st}
	case []any:
		if len(st) == 0 {
			return nil, malformed("Statement is an empty array")
		}
		list = st
	default:
		return nil, malformed("Statement is not an object or an array of objects")
	}
	sids := map[string]int{}
	for i, e := range list {
		n := i + 1
		m, ok := e.(map[string]any)
		if !ok {
			return nil, malformed("statement %d: not a JSON object", n)
		}
		s, err := parseStatement(m)
		if err != nil {
			return nil, malformed("statement %d: %v", n, err)
		}
		if s.sid != "" {
			if prev, dup := sids[s.sid]; dup {
				return nil, malformed("statement %d: Sid %q repeats statement %d's", n, s.sid, prev)
			}
			sids[s.sid] = n
		}
		p.statements = append(p.statements, s)
	}
	return p, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// problem is an error inside a document, before malformed places it.
type problem string

func (p problem) Error() string { return string(p) }

func problemf(format string, args ...any) error { return problem(fmt.Sprintf(format, args...)) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func parseStatement(m map[string]any) (statement, error) {
	var s statement
	for _, k := range sortedKeys(m) {
		switch k {
		case "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
			"Resource", "NotResource", "Condition":
		default:
			return s, problemf("unknown element %q", k)
		}
	}
	if v, ok := m["Sid"]; ok {
		if s.sid, ok = v.(string); !ok {
			return s, problemf("Sid is not a string")
		}
	}
	eff, ok := m["Effect"]
	if !ok {
		return s, problemf("Effect is missing")
	}
	switch eff {
	case "Allow":
	case "Deny":
		s.deny = true
	default:
		if str, ok := eff.(string); ok {
			return s, problemf("Effect %q is not Allow or Deny", str)
		}
		return s, problemf("Effect is not a string")
	}

	name, v, err := exactlyOne(m, "Principal", "NotPrincipal")
	if err != nil {
		return s, err
	}
	s.notPrincipal = name == "NotPrincipal"
	if s.principal, err = parsePrincipal(name, v); err != nil {
		return s, err
	}

	if name, v, err = exactlyOne(m, "Action", "NotAction"); err != nil {
		return s, err
	}
	s.notAction = name == "NotAction"
	if s.actions, err = stringList(name, v); err != nil {
		return s, err
	}
	for _, a := range s.actions {
		if !validAction(a) {
			return s, problemf("%s %q is not \"*\" or kms:NAME (letters, digits, * and ?)", name, a)
		}
	}

	if name, v, err = exactlyOne(m, "Resource", "NotResource"); err != nil {
		return s, err
	}
	s.notResource = name == "NotResource"
	if s.resources, err = stringList(name, v); err != nil {
		return s, err
	}
	for _, r := range s.resources {
		if !validResource(r) {
			return s, problemf("%s %q is not \"*\" or an ARN", name, r)
		}
	}

	if v, ok := m["Condition"]; ok {
		if s.conditions, err = parseConditions(v); err != nil {
			return s, err
		}
	}
	return s, nil
}

// exactlyOne returns the one of elements a and b present in m.
func exactlyOne(m map[string]any, a, b string) (string, any, error) {
	va, okA := m[a]
	vb, okB := m[b]
	switch {
	case okA && okB:
		return "", nil, problemf("both %s and %s are present", a, b)
	case okA:
		return a, va, nil
	case okB:
		return b, vb, nil
	}
	return "", nil, problemf("%s or %s is missing", a, b)
}

// stringList reads a string or a non-empty array of strings.
func stringList(name string, v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		if len(v) == 0 {
			return nil, problemf("%s is an empty array", name)
		}
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, problemf("%s must be a string or an array of strings", name)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, problemf("%s must be a string or an array of strings", name)
}

func validAction(a string) bool {
	if a == "*" {
		return true
	}
	if len(a) < 5 || !strings.EqualFold(a[:4], "kms:") {
		return false
	}
	for _, c := range []byte(a[4:]) {
		if !isAlnum(c) && c != '*' && c != '?' {
			return false
		}
	}
	return true
}

func validResource(r string) bool {
	if r == "*" {
		return true
	}
	if len(r) <= 4 || r[:4] != "arn:" {
		return false
	}
	for _, c := range r {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
