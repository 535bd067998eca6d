package policy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// kind is what an operator compares.
type kind uint8

const (
	kindString kind = iota
	kindStringFold
	kindStringLike
	kindNumeric
	kindDate
	kindBool
	kindBinary
	kindIP
	kindARN
	kindNull
)

// cmp is the comparison of a Numeric or Date operator.
type cmp uint8

const (
	cmpEq cmp = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

type operator struct {
	kind   kind
	cmp    cmp
	negate bool
}

var operators = map[string]operator{
	"StringEquals":              {kind: kindString},
	"StringNotEquals":           {kind: kindString, negate: true},
	"StringEqualsIgnoreCase":    {kind: kindStringFold},
	"StringNotEqualsIgnoreCase": {kind: kindStringFold, negate: true},
	"StringLike":                {kind: kindStringLike},
	"StringNotLike":             {kind: kindStringLike, negate: true},
	"NumericEquals":             {kind: kindNumeric, cmp: cmpEq},
	"NumericNotEquals":          {kind: kindNumeric, cmp: cmpEq, negate: true},
	"NumericLessThan":           {kind: kindNumeric, cmp: cmpLt},
	"NumericLessThanEquals":     {kind: kindNumeric, cmp: cmpLe},
	"NumericGreaterThan":        {kind: kindNumeric, cmp: cmpGt},
	"NumericGreaterThanEquals":  {kind: kindNumeric, cmp: cmpGe},
	"DateEquals":                {kind: kindDate, cmp: cmpEq},
	"DateNotEquals":             {kind: kindDate, cmp: cmpEq, negate: true},
	"DateLessThan":              {kind: kindDate, cmp: cmpLt},
	"DateLessThanEquals":        {kind: kindDate, cmp: cmpLe},
	"DateGreaterThan":           {kind: kindDate, cmp: cmpGt},
	"DateGreaterThanEquals":     {kind: kindDate, cmp: cmpGe},
	"Bool":                      {kind: kindBool},
	"BinaryEquals":              {kind: kindBinary},
	"IpAddress":                 {kind: kindIP},
	"NotIpAddress":              {kind: kindIP, negate: true},
	"ArnEquals":                 {kind: kindARN},
	"ArnNotEquals":              {kind: kindARN, negate: true},
	"ArnLike":                   {kind: kindARN},
	"ArnNotLike":                {kind: kindARN, negate: true},
	"Null":                      {kind: kindNull},
}

// set is an operator's set prefix.
type set uint8

const (
	setNone set = iota
	setAny      // ForAnyValue:
	setAll      // ForAllValues:
)

// condition is one key of one operator of a Condition element.
type condition struct {
	op       operator
	set      set
	ifExists bool
	key      string // as written
	lowerKey string

	// The policy values, in the form op.kind compares.
	strs     []string       // String kinds (and the text of every value)
	nums     []float64      // Numeric
	times    []time.Time    // Date
	bools    []bool         // Bool, Null
	bins     [][]byte       // Binary
	prefixes []netip.Prefix // IP
	arns     [][6]string    // ARN
}

func parseConditions(v any) ([]condition, error) {
	block, ok := v.(map[string]any)
	if !ok {
		return nil, problemf("Condition is not an object")
	}
	var out []condition
	for _, name := range sortedKeys(block) {
		op, set, ifExists, err := parseOperator(name)
		if err != nil {
			return nil, err
		}
		keys, ok := block[name].(map[string]any)
		if !ok {
			return nil, problemf("Condition %s is not an object of condition keys", name)
		}
		for _, key := range sortedKeys(keys) {
			if key == "" {
				return nil, problemf("Condition %s has an empty condition key", name)
			}
			c := condition{op: op, set: set, ifExists: ifExists, key: key, lowerKey: strings.ToLower(key)}
			if err := c.parseValues(keys[key]); err != nil {
				return nil, problemf("Condition %s %q: %v", name, key, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func parseOperator(name string) (op operator, s set, ifExists bool, err error) {
	base := name
	switch {
	case strings.HasPrefix(base, "ForAnyValue:"):
		s, base = setAny, strings.TrimPrefix(base, "ForAnyValue:")
	case strings.HasPrefix(base, "ForAllValues:"):
		s, base = setAll, strings.TrimPrefix(base, "ForAllValues:")
	}
	if b, ok := strings.CutSuffix(base, "IfExists"); ok {
		base, ifExists = b, true
	}
	op, ok := operators[base]
	if !ok {
		return op, s, ifExists, problemf("Condition operator %q is unknown", name)
	}
	if op.kind == kindNull && (ifExists || s != setNone) {
		return op, s, ifExists, problemf("Condition operator %q is unknown: Null takes no IfExists or set prefix", name)
	}
	return op, s, ifExists, nil
}

// parseValues reads a string, boolean or number or a non-empty array of
// them, as op.kind compares them.
func (c *condition) parseValues(v any) error {
	var raw []any
	if a, ok := v.([]any); ok {
		if len(a) == 0 {
			return problemf("no values")
		}
		raw = a
	} else {
		raw = []any{v}
	}
	for _, e := range raw {
		var text string
		switch e := e.(type) {
		case string:
			text = e
		case json.Number:
			text = e.String()
		case bool:
			text = strconv.FormatBool(e)
		default:
			return problemf("values must be strings, booleans or numbers")
		}
		if err := c.addValue(text); err != nil {
			return err
		}
	}
	return nil
}

func (c *condition) addValue(text string) error {
	c.strs = append(c.strs, text)
	switch c.op.kind {
	case kindNumeric:
		n, ok := parseNumber(text)
		if !ok {
			return problemf("%q is not a number", text)
		}
		c.nums = append(c.nums, n)
	case kindDate:
		t, ok := parseDate(text)
		if !ok {
			return problemf("%q is not an RFC 3339 date or epoch seconds", text)
		}
		c.times = append(c.times, t)
	case kindBool, kindNull:
		b, ok := parseBool(text)
		if !ok {
			return problemf("%q is not true or false", text)
		}
		c.bools = append(c.bools, b)
	case kindBinary:
		b, err := base64.StdEncoding.Strict().DecodeString(text)
		if err != nil {
			return problemf("%q is not base64", text)
		}
		c.bins = append(c.bins, b)
	case kindIP:
		p, ok := parsePrefix(text)
		if !ok {
			return problemf("%q is not an IP address or CIDR block", text)
		}
		c.prefixes = append(c.prefixes, p)
	case kindARN:
		var parts [6]string
		if !splitARN(text, &parts) {
			return problemf("%q is not an ARN (six colon-separated parts)", text)
		}
		c.arns = append(c.arns, parts)
	}
	return nil
}

// parseNumber reads a decimal number: optional sign, digits with an
// optional fraction, optional exponent; finite.
func parseNumber(s string) (float64, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(n, 0) {
		return 0, false
	}
	return n, true
}

// parseDate reads RFC 3339 or integer epoch seconds.
func parseDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	digits := s
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.Unix(n, 0), true
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

func parseBool(s string) (b, ok bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// lookup finds key in ctx case-insensitively: the exact spelling, then the
// lower-case one, then the byte-wise smallest spelling equal under folding.
func (c *condition) lookup(ctx map[string][]string) []string {
	if len(ctx) == 0 {
		return nil
	}
	if v, ok := ctx[c.key]; ok {
		return v
	}
	if v, ok := ctx[c.lowerKey]; ok {
		return v
	}
	var best string
	var vals []string
	found := false
	for k, v := range ctx {
		if strings.EqualFold(k, c.key) && (!found || k < best) {
			best, vals, found = k, v, true
		}
	}
	return vals
}

func (c *condition) eval(ctx map[string][]string) bool {
	vals := c.lookup(ctx)
	if c.op.kind == kindNull {
		absent := len(vals) == 0
		for _, b := range c.bools {
			if b == absent {
				return true
			}
		}
		return false
	}
	if len(vals) == 0 {
		switch {
		case c.ifExists:
			return true
		case c.set == setAll:
			return true
		case c.set == setAny:
			return false
		}
		return c.op.negate
	}
	switch c.set {
	case setAny:
		for _, v := range vals {
			if c.holds(v) {
				return true
			}
		}
		return false
	case setAll:
		for _, v := range vals {
			if !c.holds(v) {
				return false
			}
		}
		return true
	}
	if c.op.negate {
		// No request value matches the positive form.
		for _, v := range vals {
			if !c.holds(v) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if c.holds(v) {
			return true
		}
	}
	return false
}

// holds reports whether request value v satisfies the operator (with its
// negation) against the policy values. A value the operator cannot read
// satisfies neither the operator nor its negation.
func (c *condition) holds(v string) bool {
	m, ok := c.matches(v)
	if !ok {
		return false
	}
	return m != c.op.negate
}

// matches reports whether v matches any policy value under the positive
// form of the operator; ok is false if v cannot be read.
func (c *condition) matches(v string) (match, ok bool) {
	switch c.op.kind {
	case kindString:
		for _, s := range c.strs {
			if s == v {
				return true, true
			}
		}
	case kindStringFold:
		for _, s := range c.strs {
			if strings.EqualFold(s, v) {
				return true, true
			}
		}
	case kindStringLike:
		for _, s := range c.strs {
			if glob(s, v, false) {
				return true, true
			}
		}
	case kindNumeric:
		n, ok := parseNumber(v)
		if !ok {
			return false, false
		}
		for _, p := range c.nums {
			if compare(c.op.cmp, cmpFloat(n, p)) {
				return true, true
			}
		}
	case kindDate:
		t, ok := parseDate(v)
		if !ok {
			return false, false
		}
		for _, p := range c.times {
			if compare(c.op.cmp, t.Compare(p)) {
				return true, true
			}
		}
	case kindBool:
		b, ok := parseBool(v)
		if !ok {
			return false, false
		}
		for _, p := range c.bools {
			if p == b {
				return true, true
			}
		}
	case kindBinary:
		var buf [192]byte
		enc := base64.StdEncoding.Strict()
		var dst []byte
		if n := enc.DecodedLen(len(v)); n <= len(buf) {
			dst = buf[:n]
		} else {
			dst = make([]byte, n)
		}
		n, err := enc.Decode(dst, []byte(v))
		if err != nil {
			return false, false
		}
		for _, p := range c.bins {
			if bytes.Equal(p, dst[:n]) {
				return true, true
			}
		}
	case kindIP:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false, false
		}
		a = a.WithZone("").Unmap()
		for _, p := range c.prefixes {
			if p.Contains(a) {
				return true, true
			}
		}
	case kindARN:
		var parts [6]string
		if !splitARN(v, &parts) {
			return false, false
		}
		for i := range c.arns {
			if arnMatch(&c.arns[i], &parts) {
				return true, true
			}
		}
	}
	return false, true
}

func arnMatch(pattern, arn *[6]string) bool {
	for i := range pattern {
		if !glob(pattern[i], arn[i], false) {
			return false
		}
	}
	return true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compare reports whether the result of comparing request to policy value
// (-1, 0, 1) satisfies cmp.
func compare(c cmp, r int) bool {
	switch c {
	case cmpEq:
		return r == 0
	case cmpLt:
		return r < 0
	case cmpLe:
		return r <= 0
	case cmpGt:
		return r > 0
	case cmpGe:
		return r >= 0
	}
	return false
}
