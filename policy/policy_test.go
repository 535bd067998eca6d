package policy_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/policy"
)

const (
	acct     = "111122223333"
	other    = "444455556666"
	alice    = "arn:aws:iam::111122223333:user/alice"
	bob      = "arn:aws:iam::111122223333:user/bob"
	admin    = "arn:aws:iam::111122223333:role/admin"
	mallory  = "arn:aws:iam::444455556666:user/mallory"
	keyARN   = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	otherKey = "arn:aws:kms:us-east-1:111122223333:key/0000abcd-12ab-34cd-56ef-1234567890ab"
)

func mustParse(t testing.TB, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	require.NoError(t, err, doc)
	return p
}

// doc wraps statements (JSON objects, comma-separated) in a policy.
func doc(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

func req(principal, account, action string) *policy.Request {
	return &policy.Request{Principal: principal, Account: account, Action: action, Resource: keyARN}
}

func TestDecisionString(t *testing.T) {
	require.Equal(t, "ImplicitDeny", policy.ImplicitDeny.String())
	require.Equal(t, "Allow", policy.Allow.String())
	require.Equal(t, "ExplicitDeny", policy.ExplicitDeny.String())
	require.Equal(t, "Decision(7)", policy.Decision(7).String())
	require.Equal(t, policy.Decision(0), policy.ImplicitDeny, "the zero Decision denies")
}

func TestDefault(t *testing.T) {
	want := "{\n" +
		"  \"Version\" : \"2012-10-17\",\n" +
		"  \"Id\" : \"key-default-1\",\n" +
		"  \"Statement\" : [ {\n" +
		"    \"Sid\" : \"Enable IAM User Permissions\",\n" +
		"    \"Effect\" : \"Allow\",\n" +
		"    \"Principal\" : {\n" +
		"      \"AWS\" : \"arn:aws:iam::111122223333:root\"\n" +
		"    },\n" +
		"    \"Action\" : \"kms:*\",\n" +
		"    \"Resource\" : \"*\"\n" +
		"  } ]\n" +
		"}"
	require.Equal(t, want, string(policy.Default(acct)))

	p, err := policy.Parse(policy.Default(acct))
	require.NoError(t, err)
	require.Equal(t, "key-default-1", p.ID())
	require.Equal(t, "2012-10-17", p.Version())
	require.Equal(t, policy.Allow, p.Evaluate(req(alice, acct, "kms:Encrypt")))
	require.Equal(t, policy.Allow, p.Evaluate(req(admin, acct, "kms:ScheduleKeyDeletion")))
	require.Equal(t, policy.ImplicitDeny, p.Evaluate(req(mallory, other, "kms:Encrypt")))
	require.Equal(t, policy.ImplicitDeny, p.Evaluate(req(alice, acct, "s3:GetObject")))

	// Another account's default allows that account and not the first.
	q, err := policy.Parse(policy.Default(other))
	require.NoError(t, err)
	require.Equal(t, policy.Allow, q.Evaluate(req(mallory, other, "kms:Encrypt")))
	require.Equal(t, policy.ImplicitDeny, q.Evaluate(req(alice, acct, "kms:Encrypt")))

	// A hostile account string still gives valid JSON, which Parse refuses.
	bad := policy.Default(`1"},"x":{"`)
	require.True(t, json.Valid(bad))
	_, err = policy.Parse(bad)
	require.ErrorIs(t, err, policy.ErrMalformed)
}

func TestPrincipals(t *testing.T) {
	allow := func(principal string) string {
		return `{"Effect":"Allow","Principal":` + principal + `,"Action":"kms:*","Resource":"*"}`
	}
	tests := []struct {
		name      string
		principal string
		r         *policy.Request
		want      policy.Decision
	}{
		{"star", `"*"`, req(mallory, other, "kms:Encrypt"), policy.Allow},
		{"AWS star", `{"AWS":"*"}`, req(mallory, other, "kms:Encrypt"), policy.Allow},
		{"root ARN, same account", `{"AWS":"arn:aws:iam::111122223333:root"}`, req(bob, acct, "kms:Encrypt"), policy.Allow},
		{"root ARN, other account", `{"AWS":"arn:aws:iam::111122223333:root"}`, req(mallory, other, "kms:Encrypt"), policy.ImplicitDeny},
		{"root ARN, account from the principal ARN", `{"AWS":"arn:aws:iam::111122223333:root"}`, req(bob, "", "kms:Encrypt"), policy.Allow},
		{"root ARN, other account from the principal ARN", `{"AWS":"arn:aws:iam::111122223333:root"}`, req(mallory, "", "kms:Encrypt"), policy.ImplicitDeny},
		{"root ARN, no account at all", `{"AWS":"arn:aws:iam::111122223333:root"}`, req("somebody", "", "kms:Encrypt"), policy.ImplicitDeny},
		{"bare account ID", `{"AWS":"111122223333"}`, req(admin, acct, "kms:Encrypt"), policy.Allow},
		{"bare account ID, other account", `{"AWS":"111122223333"}`, req(mallory, other, "kms:Encrypt"), policy.ImplicitDeny},
		{"user ARN, that user", `{"AWS":"arn:aws:iam::111122223333:user/alice"}`, req(alice, acct, "kms:Encrypt"), policy.Allow},
		{"user ARN, another user of the account", `{"AWS":"arn:aws:iam::111122223333:user/alice"}`, req(bob, acct, "kms:Encrypt"), policy.ImplicitDeny},
		{"user ARN is case-sensitive", `{"AWS":"arn:aws:iam::111122223333:user/Alice"}`, req(alice, acct, "kms:Encrypt"), policy.ImplicitDeny},
		{"list of ARNs", `{"AWS":["arn:aws:iam::111122223333:user/alice","arn:aws:iam::111122223333:role/admin"]}`, req(admin, acct, "kms:Encrypt"), policy.Allow},
		{"role ARN does not match an sts session", `{"AWS":"arn:aws:iam::111122223333:role/admin"}`, req("arn:aws:sts::111122223333:assumed-role/admin/s", acct, "kms:Encrypt"), policy.ImplicitDeny},
		{"service", `{"Service":"logs.amazonaws.com"}`, req("logs.amazonaws.com", "", "kms:Encrypt"), policy.Allow},
		{"service, other caller", `{"Service":"logs.amazonaws.com"}`, req(alice, acct, "kms:Encrypt"), policy.ImplicitDeny},
		{"federated", `{"Federated":"cognito-identity.amazonaws.com"}`, req("cognito-identity.amazonaws.com", "", "kms:Encrypt"), policy.Allow},
		{"several types", `{"Service":"logs.amazonaws.com","AWS":"arn:aws:iam::111122223333:user/alice"}`, req(alice, acct, "kms:Encrypt"), policy.Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, doc(allow(tc.principal)))
			require.Equal(t, tc.want, p.Evaluate(tc.r))
		})
	}
}

func TestNotPrincipal(t *testing.T) {
	p := mustParse(t, doc(
		`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:role/admin"]},"Action":"kms:ScheduleKeyDeletion","Resource":"*"}`,
	))
	require.Equal(t, policy.Allow, p.Evaluate(req(admin, acct, "kms:ScheduleKeyDeletion")))
	require.Equal(t, policy.ExplicitDeny, p.Evaluate(req(alice, acct, "kms:ScheduleKeyDeletion")))
	require.Equal(t, policy.Allow, p.Evaluate(req(alice, acct, "kms:Encrypt")))

	// An account in NotPrincipal leaves out all of its principals.
	q := mustParse(t, doc(`{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}`))
	require.Equal(t, policy.ImplicitDeny, q.Evaluate(req(alice, acct, "kms:Encrypt")))
	require.Equal(t, policy.Allow, q.Evaluate(req(mallory, other, "kms:Encrypt")))
}

func TestActions(t *testing.T) {
	tests := []struct {
		pattern string
		action  string
		want    bool
	}{
		{`"kms:*"`, "kms:Encrypt", true},
		{`"kms:*"`, "s3:GetObject", false},
		{`"*"`, "s3:GetObject", true},
		{`"kms:Encrypt"`, "kms:Encrypt", true},
		{`"kms:Encrypt"`, "kms:encrypt", true},
		{`"KMS:ENCRYPT"`, "kms:Encrypt", true},
		{`"kms:Encrypt"`, "kms:Decrypt", false},
		{`"kms:Encrypt"`, "kms:EncryptX", false},
		{`"kms:Describe*"`, "kms:DescribeKey", true},
		{`"kms:Describe*"`, "kms:describecustomkeystores", true},
		{`"kms:Describe*"`, "kms:Decrypt", false},
		{`"kms:Create*"`, "kms:CreateGrant", true},
		{`"kms:?ncrypt"`, "kms:Encrypt", true},
		{`"kms:?ncrypt"`, "kms:ReEncrypt", false},
		{`"kms:*Encrypt*"`, "kms:ReEncryptFrom", true},
		{`"kms:GenerateDataKey*"`, "kms:GenerateDataKeyWithoutPlaintext", true},
		{`["kms:Decrypt","kms:Encrypt"]`, "kms:Encrypt", true},
		{`["kms:Decrypt","kms:Encrypt"]`, "kms:Sign", false},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+" "+tc.action, func(t *testing.T) {
			p := mustParse(t, doc(`{"Effect":"Allow","Principal":"*","Action":`+tc.pattern+`,"Resource":"*"}`))
			want := policy.ImplicitDeny
			if tc.want {
				want = policy.Allow
			}
			require.Equal(t, want, p.Evaluate(req(alice, acct, tc.action)))

			// NotAction is the complement.
			q := mustParse(t, doc(`{"Effect":"Allow","Principal":"*","NotAction":`+tc.pattern+`,"Resource":"*"}`))
			want = policy.Allow
			if tc.want {
				want = policy.ImplicitDeny
			}
			require.Equal(t, want, q.Evaluate(req(alice, acct, tc.action)))
		})
	}
}

func TestNotActionDenyAdmin(t *testing.T) {
	p := mustParse(t, doc(
		`{"Sid":"Users","Effect":"Allow","Principal":{"AWS":"111122223333"},"NotAction":["kms:ScheduleKeyDeletion","kms:Disable*"],"Resource":"*"}`,
	))
	require.Equal(t, policy.Allow, p.Evaluate(req(alice, acct, "kms:Encrypt")))
	require.Equal(t, policy.ImplicitDeny, p.Evaluate(req(alice, acct, "kms:ScheduleKeyDeletion")))
	require.Equal(t, policy.ImplicitDeny, p.Evaluate(req(alice, acct, "kms:DisableKey")))
}

func TestResources(t *testing.T) {
	tests := []struct {
		element  string
		resource string
		want     policy.Decision
	}{
		{`"Resource":"*"`, keyARN, policy.Allow},
		{`"Resource":"` + keyARN + `"`, keyARN, policy.Allow},
		{`"Resource":"` + keyARN + `"`, otherKey, policy.ImplicitDeny},
		{`"Resource":"arn:aws:kms:us-east-1:111122223333:key/1234ABCD-12AB-34CD-56EF-1234567890AB"`, keyARN, policy.ImplicitDeny},
		{`"Resource":"arn:aws:kms:us-east-1:111122223333:key/*"`, keyARN, policy.Allow},
		{`"Resource":"arn:aws:kms:*:111122223333:key/*"`, keyARN, policy.Allow},
		{`"Resource":"arn:aws:kms:us-west-2:111122223333:key/*"`, keyARN, policy.ImplicitDeny},
		{`"Resource":["arn:aws:kms:us-west-2:111122223333:key/*","arn:aws:kms:us-east-1:111122223333:key/1234*"]`, keyARN, policy.Allow},
		{`"NotResource":"` + otherKey + `"`, keyARN, policy.Allow},
		{`"NotResource":"` + otherKey + `"`, otherKey, policy.ImplicitDeny},
	}
	for _, tc := range tests {
		t.Run(tc.element+" "+tc.resource, func(t *testing.T) {
			p := mustParse(t, doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*",`+tc.element+`}`))
			r := req(alice, acct, "kms:Encrypt")
			r.Resource = tc.resource
			require.Equal(t, tc.want, p.Evaluate(r))
		})
	}
}

func TestExplicitDenyBeatsAllow(t *testing.T) {
	allow := `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`
	deny := `{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Decrypt","Resource":"*"}`
	for _, d := range []string{doc(allow, deny), doc(deny, allow)} {
		p := mustParse(t, d)
		require.Equal(t, policy.ExplicitDeny, p.Evaluate(req(alice, acct, "kms:Decrypt")))
		require.Equal(t, policy.Allow, p.Evaluate(req(alice, acct, "kms:Encrypt")))
		require.Equal(t, policy.Allow, p.Evaluate(req(bob, acct, "kms:Decrypt")))
		require.Equal(t, policy.ImplicitDeny, p.Evaluate(req(mallory, other, "kms:Decrypt")))
	}

	// A Deny that matches nobody leaves the answer implicit.
	p := mustParse(t, doc(deny))
	require.Equal(t, policy.ImplicitDeny, p.Evaluate(req(bob, acct, "kms:Decrypt")))
	require.Equal(t, policy.ExplicitDeny, p.Evaluate(req(alice, acct, "kms:Decrypt")))
}

func TestDenyOnInsecureTransport(t *testing.T) {
	p := mustParse(t, doc(
		`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`,
	))
	r := req(alice, acct, "kms:Encrypt")
	r.Context = map[string][]string{"aws:SecureTransport": {"false"}}
	require.Equal(t, policy.ExplicitDeny, p.Evaluate(r))
	r.Context = map[string][]string{"aws:SecureTransport": {"true"}}
	require.Equal(t, policy.Allow, p.Evaluate(r))
	r.Context = nil
	require.Equal(t, policy.Allow, p.Evaluate(r))
}

func TestStatementObjectAndVersions(t *testing.T) {
	for _, d := range []string{
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}}`,
		`{"Version":"2008-10-17","Id":"x","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}]}`,
	} {
		p := mustParse(t, d)
		require.Equal(t, policy.Allow, p.Evaluate(req(alice, acct, "kms:Encrypt")))
		require.Equal(t, policy.ImplicitDeny, p.Evaluate(req(alice, acct, "kms:Decrypt")))
	}
}

func TestEmptySidsMayRepeat(t *testing.T) {
	st := `{"Sid":"","Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}`
	mustParse(t, doc(st, st))
}

func TestNilPolicyAndRequest(t *testing.T) {
	var p *policy.Policy
	require.Equal(t, policy.ImplicitDeny, p.Evaluate(req(alice, acct, "kms:Encrypt")))
	q := mustParse(t, string(policy.Default(acct)))
	require.Equal(t, policy.ImplicitDeny, q.Evaluate(nil))
}

func TestParseMalformed(t *testing.T) {
	st := func(fields string) string { return doc(`{` + fields + `}`) }
	const ok = `"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"`
	cond := func(c string) string { return st(ok + `,"Condition":` + c) }
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)

	tests := []struct {
		name string
		doc  string
		want string // a part of the message
	}{
		{"empty", ``, "document is empty"},
		{"white space", " \n\t", "document is empty"},
		{"not JSON", `nope`, "invalid character"},
		{"truncated", `{"Version":"2012-10-17"`, "unexpected EOF"},
		{"invalid UTF-8", "{\"Version\":\"\xff\"}", "not valid UTF-8"},
		{"too large", `{"Version":"2012-10-17","Statement":[]}` + strings.Repeat(" ", policy.MaxDocument), "limit 32768"},
		{"trailing object", string(policy.Default(acct)) + `{}`, "data after the value"},
		{"trailing garbage", string(policy.Default(acct)) + `x`, "data after the value"},
		{"array", `[]`, "not a JSON object"},
		{"string", `"policy"`, "not a JSON object"},
		{"too deep", `{"Version":"2012-10-17","Statement":` + deep + `}`, "nested deeper than 64"},
		{"duplicate top-level key", `{"Version":"2012-10-17","Version":"2012-10-17","Statement":{` + ok + `}}`, `duplicate key "Version"`},
		{"duplicate statement key", st(ok + `,"Effect":"Deny"`), `duplicate key "Effect"`},
		{"duplicate principal key", st(`"Effect":"Allow","Principal":{"AWS":"*","AWS":"111122223333"},"Action":"kms:*","Resource":"*"`), `duplicate key "AWS"`},
		{"duplicate condition key", cond(`{"StringEquals":{"kms:CallerAccount":"1","kms:CallerAccount":"2"}}`), `duplicate key "kms:CallerAccount"`},
		{"unknown top-level element", `{"Version":"2012-10-17","Statement":{` + ok + `},"Comment":"x"}`, `unknown element "Comment"`},
		{"Version missing", `{"Statement":{` + ok + `}}`, "Version is missing"},
		{"Version wrong", `{"Version":"2012-10-18","Statement":{` + ok + `}}`, `Version "2012-10-18" is not 2012-10-17 or 2008-10-17`},
		{"Version not a string", `{"Version":20121017,"Statement":{` + ok + `}}`, "Version is not a string"},
		{"Id not a string", `{"Version":"2012-10-17","Id":1,"Statement":{` + ok + `}}`, "Id is not a string"},
		{"Statement missing", `{"Version":"2012-10-17"}`, "Statement is missing"},
		{"Statement empty", `{"Version":"2012-10-17","Statement":[]}`, "Statement is an empty array"},
		{"Statement a string", `{"Version":"2012-10-17","Statement":"all"}`, "Statement is not an object or an array of objects"},
		{"Statement element a string", doc(`"all"`), "statement 1: not a JSON object"},
		{"unknown statement element", st(ok + `,"Effects":"Allow"`), `statement 1: unknown element "Effects"`},
		{"statement element names are case-sensitive", st(`"effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"`), `unknown element "effect"`},
		{"Sid not a string", st(ok + `,"Sid":1`), "Sid is not a string"},
		{"Effect missing", st(`"Principal":"*","Action":"kms:*","Resource":"*"`), "statement 1: Effect is missing"},
		{"Effect not a string", st(`"Effect":true,"Principal":"*","Action":"kms:*","Resource":"*"`), "Effect is not a string"},
		{"Effect lower case", st(`"Effect":"allow","Principal":"*","Action":"kms:*","Resource":"*"`), `Effect "allow" is not Allow or Deny`},
		{"Principal and NotPrincipal", st(ok + `,"NotPrincipal":"*"`), "both Principal and NotPrincipal are present"},
		{"no Principal", st(`"Effect":"Allow","Action":"kms:*","Resource":"*"`), "Principal or NotPrincipal is missing"},
		{"Principal a name", st(`"Effect":"Allow","Principal":"alice","Action":"kms:*","Resource":"*"`), `Principal "alice" is not "*" or an object`},
		{"Principal a number", st(`"Effect":"Allow","Principal":1,"Action":"kms:*","Resource":"*"`), `Principal is not "*" or an object`},
		{"Principal empty", st(`"Effect":"Allow","Principal":{},"Action":"kms:*","Resource":"*"`), "Principal is an empty object"},
		{"Principal type unknown", st(`"Effect":"Allow","Principal":{"CanonicalUser":"abc"},"Action":"kms:*","Resource":"*"`), `Principal type "CanonicalUser" is not AWS, Service or Federated`},
		{"Principal AWS partial wildcard", st(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"kms:*","Resource":"*"`), `Principal AWS "arn:aws:iam::111122223333:user/*" is not`},
		{"Principal AWS bogus", st(`"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"kms:*","Resource":"*"`), `Principal AWS "alice" is not`},
		{"Principal AWS short account", st(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1111:root"},"Action":"kms:*","Resource":"*"`), `is not "*", an account ID or an IAM ARN`},
		{"Principal AWS not IAM", st(`"Effect":"Allow","Principal":{"AWS":"arn:aws:s3:::bucket"},"Action":"kms:*","Resource":"*"`), `is not "*", an account ID or an IAM ARN`},
		{"Principal AWS empty array", st(`"Effect":"Allow","Principal":{"AWS":[]},"Action":"kms:*","Resource":"*"`), "Principal AWS is an empty array"},
		{"Principal AWS a number", st(`"Effect":"Allow","Principal":{"AWS":111122223333},"Action":"kms:*","Resource":"*"`), "Principal AWS must be a string or an array of strings"},
		{"Principal Service wildcard", st(`"Effect":"Allow","Principal":{"Service":"*"},"Action":"kms:*","Resource":"*"`), `Principal Service "*" is not a service principal name`},
		{"NotPrincipal bogus", st(`"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"kms:*","Resource":"*"`), `NotPrincipal AWS "x" is not`},
		{"Action and NotAction", st(ok + `,"NotAction":"kms:Encrypt"`), "both Action and NotAction are present"},
		{"no Action", st(`"Effect":"Allow","Principal":"*","Resource":"*"`), "Action or NotAction is missing"},
		{"Action of another service", st(`"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"`), `Action "s3:GetObject" is not "*" or kms:NAME`},
		{"Action without a name", st(`"Effect":"Allow","Principal":"*","Action":"kms:","Resource":"*"`), `Action "kms:" is not`},
		{"Action with a space", st(`"Effect":"Allow","Principal":"*","Action":"kms:Encrypt Decrypt","Resource":"*"`), `Action "kms:Encrypt Decrypt" is not`},
		{"Action empty array", st(`"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"`), "Action is an empty array"},
		{"Action array of numbers", st(`"Effect":"Allow","Principal":"*","Action":[1],"Resource":"*"`), "Action must be a string or an array of strings"},
		{"NotAction bad", st(`"Effect":"Allow","Principal":"*","NotAction":"Encrypt","Resource":"*"`), `NotAction "Encrypt" is not`},
		{"no Resource", st(`"Effect":"Allow","Principal":"*","Action":"kms:*"`), "Resource or NotResource is missing"},
		{"Resource and NotResource", st(ok + `,"NotResource":"*"`), "both Resource and NotResource are present"},
		{"Resource not an ARN", st(`"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"key/1234"`), `Resource "key/1234" is not "*" or an ARN`},
		{"Resource a number", st(`"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":5`), "Resource must be a string or an array of strings"},
		{"duplicate Sid", doc(`{"Sid":"a",`+ok+`}`, `{"Sid":"b",`+ok+`}`, `{"Sid":"a",`+ok+`}`), `statement 3: Sid "a" repeats statement 1's`},
		{"Condition not an object", cond(`"x"`), "Condition is not an object"},
		{"unknown operator", cond(`{"StringEqual":{"kms:CallerAccount":"1"}}`), `Condition operator "StringEqual" is unknown`},
		{"operator case", cond(`{"stringequals":{"kms:CallerAccount":"1"}}`), `Condition operator "stringequals" is unknown`},
		{"unknown set prefix", cond(`{"ForSomeValues:StringEquals":{"kms:CallerAccount":"1"}}`), `Condition operator "ForSomeValues:StringEquals" is unknown`},
		{"NullIfExists", cond(`{"NullIfExists":{"kms:CallerAccount":"true"}}`), `Condition operator "NullIfExists" is unknown`},
		{"ForAnyValue:Null", cond(`{"ForAnyValue:Null":{"kms:CallerAccount":"true"}}`), `Condition operator "ForAnyValue:Null" is unknown`},
		{"operator block not an object", cond(`{"StringEquals":"x"}`), "Condition StringEquals is not an object of condition keys"},
		{"empty condition key", cond(`{"StringEquals":{"":"x"}}`), "Condition StringEquals has an empty condition key"},
		{"no values", cond(`{"StringEquals":{"kms:CallerAccount":[]}}`), `Condition StringEquals "kms:CallerAccount": no values`},
		{"object value", cond(`{"StringEquals":{"kms:CallerAccount":{"a":"b"}}}`), "values must be strings, booleans or numbers"},
		{"null value", cond(`{"StringEquals":{"kms:CallerAccount":null}}`), "values must be strings, booleans or numbers"},
		{"nested array value", cond(`{"StringEquals":{"kms:CallerAccount":[["a"]]}}`), "values must be strings, booleans or numbers"},
		{"not a number", cond(`{"NumericLessThan":{"kms:X":"ten"}}`), `"ten" is not a number`},
		{"hex number", cond(`{"NumericLessThan":{"kms:X":"0x10"}}`), `"0x10" is not a number`},
		{"infinite number", cond(`{"NumericLessThan":{"kms:X":"1e400"}}`), `"1e400" is not a number`},
		{"NaN", cond(`{"NumericLessThan":{"kms:X":"NaN"}}`), `"NaN" is not a number`},
		{"not a date", cond(`{"DateLessThan":{"aws:CurrentTime":"yesterday"}}`), `"yesterday" is not an RFC 3339 date or epoch seconds`},
		{"not a boolean", cond(`{"Bool":{"aws:SecureTransport":"yes"}}`), `"yes" is not true or false`},
		{"Null not a boolean", cond(`{"Null":{"aws:SecureTransport":1}}`), `"1" is not true or false`},
		{"not base64", cond(`{"BinaryEquals":{"kms:X":"!!!"}}`), `"!!!" is not base64`},
		{"not a CIDR block", cond(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`), `"10.0.0.0/33" is not an IP address or CIDR block`},
		{"not an IP address", cond(`{"NotIpAddress":{"aws:SourceIp":"intranet"}}`), `"intranet" is not an IP address`},
		{"short ARN", cond(`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam"}}`), `"arn:aws:iam" is not an ARN`},
		{"bad value in a later operator", cond(`{"StringEquals":{"kms:X":"a"},"NumericEquals":{"kms:Y":"b"}}`), `Condition NumericEquals "kms:Y": "b" is not a number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Parse([]byte(tc.doc))
			require.Nil(t, p)
			require.ErrorIs(t, err, policy.ErrMalformed)
			require.True(t, strings.HasPrefix(err.Error(), "policy: malformed policy document: "), err.Error())
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := policy.Parse([]byte(doc(
		`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Alow","Principal":"*","Action":"kms:*","Resource":"*"}`,
	)))
	require.EqualError(t, err, `policy: malformed policy document: statement 2: Effect "Alow" is not Allow or Deny`)
}

func TestParseAtTheLimit(t *testing.T) {
	base := string(policy.Default(acct))
	exact := base + strings.Repeat(" ", policy.MaxDocument-len(base))
	require.Len(t, exact, policy.MaxDocument)
	_, err := policy.Parse([]byte(exact))
	require.NoError(t, err)
	_, err = policy.Parse([]byte(exact + " "))
	require.ErrorIs(t, err, policy.ErrMalformed)
}

func TestParseAccepts(t *testing.T) {
	for _, d := range []string{
		doc(`{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:role/r","arn:aws:sts::111122223333:assumed-role/r/s"]},"Action":"kms:*","Resource":"*"}`),
		doc(`{"Effect":"Allow","Principal":{"Service":["logs.amazonaws.com"],"Federated":"arn:aws:iam::111122223333:saml-provider/p"},"Action":"*","Resource":"*"}`),
		doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{}}`),
		doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{}}}`),
		doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericLessThan":{"kms:X":[1,"2.5",-3e2]},"DateLessThan":{"aws:CurrentTime":[1700000000,"2030-01-01T00:00:00.5+02:00"]},"Bool":{"aws:SecureTransport":true},"StringEquals":{"kms:Y":[true,1.50,"z"]}}}`),
		doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"ForAllValues:StringLikeIfExists":{"kms:EncryptionContextKeys":"a*"},"ForAnyValue:NumericEqualsIfExists":{"kms:X":"1"}}}`),
	} {
		mustParse(t, d)
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	p := mustParse(t, doc(
		`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}}`,
		`{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`,
	))
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				r := req(alice, acct, "kms:Decrypt")
				secure := (g+i)%2 == 0
				r.Context = map[string][]string{
					"kms:EncryptionContext:Department": {"IT"},
					"aws:SecureTransport":              {map[bool]string{true: "true", false: "false"}[secure]},
				}
				want := policy.ExplicitDeny
				if secure {
					want = policy.Allow
				}
				if got := p.Evaluate(r); got != want {
					errs <- got.String()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("concurrent Evaluate gave %s", e)
	}
}

func TestEvaluateDefaultDoesNotAllocate(t *testing.T) {
	p := mustParse(t, string(policy.Default(acct)))
	r := req(alice, acct, "kms:Encrypt")
	allocs := testing.AllocsPerRun(100, func() {
		if p.Evaluate(r) != policy.Allow {
			t.Fatal("not allowed")
		}
	})
	require.Zero(t, allocs)
}

func TestEvaluateConditionsDoNotAllocate(t *testing.T) {
	p := mustParse(t, doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{`+
		`"StringEquals":{"kms:encryptioncontext:department":"IT"},`+
		`"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"},`+
		`"NumericLessThan":{"kms:X":"10"},`+
		`"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"},`+
		`"Bool":{"aws:SecureTransport":"true"},`+
		`"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},`+
		`"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"},`+
		`"BinaryEquals":{"kms:B":"QmluYXJ5"},`+
		`"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Department","Project"]},`+
		`"Null":{"kms:GrantIsForAWSResource":"true"}}}`))
	r := req(alice, acct, "kms:Encrypt")
	r.Context = map[string][]string{
		"kms:EncryptionContext:Department": {"IT"},
		"aws:PrincipalArn":                 {alice},
		"kms:X":                            {"9"},
		"aws:CurrentTime":                  {"2026-01-01T00:00:00Z"},
		"aws:SecureTransport":              {"true"},
		"aws:SourceIp":                     {"10.1.2.3"},
		"kms:B":                            {"QmluYXJ5"},
		"kms:EncryptionContextKeys":        {"Department"},
	}
	require.Equal(t, policy.Allow, p.Evaluate(r))
	allocs := testing.AllocsPerRun(100, func() { p.Evaluate(r) })
	require.Zero(t, allocs)
}

func BenchmarkEvaluateDefault(b *testing.B) {
	p, err := policy.Parse(policy.Default(acct))
	if err != nil {
		b.Fatal(err)
	}
	r := &policy.Request{
		Principal: alice,
		Account:   acct,
		Action:    "kms:Encrypt",
		Resource:  keyARN,
		Context: map[string][]string{
			"kms:EncryptionContext:Department": {"IT"},
			"aws:SecureTransport":              {"true"},
			"kms:CallerAccount":                {acct},
		},
	}
	b.ReportAllocs()
	for b.Loop() {
		if p.Evaluate(r) != policy.Allow {
			b.Fatal("not allowed")
		}
	}
}

func BenchmarkParseDefault(b *testing.B) {
	d := policy.Default(acct)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.Parse(d); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHasConditions(t *testing.T) {
	doc := func(stmt string) *policy.Policy {
		p, err := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}` + stmt + `]}`))
		require.NoError(t, err)
		return p
	}
	assert.False(t, doc("").HasConditions())
	assert.True(t, doc(`,{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`).HasConditions())
	assert.False(t, (*policy.Policy)(nil).HasConditions())
}
