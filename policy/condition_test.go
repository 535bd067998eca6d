package policy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/policy"
)

// ctx is a request context; one makes one with a single key.
type ctx = map[string][]string

func one(k string, v ...string) ctx { return ctx{k: v} }

func TestConditions(t *testing.T) {
	const (
		dept    = "kms:EncryptionContext:Department"
		keys    = "kms:EncryptionContextKeys"
		when    = "aws:CurrentTime"
		ip      = "aws:SourceIp"
		parn    = "aws:PrincipalArn"
		secure  = "aws:SecureTransport"
		num     = "kms:X"
		bin     = "kms:B"
		jan1    = "2024-01-01T00:00:00Z"
		jan1Sec = "1704067200"
		later   = "2024-01-02T00:00:00Z"
		earlier = "2023-12-31T00:00:00Z"
	)
	tests := []struct {
		name string
		cond string
		ctx  ctx
		want bool
	}{
		// StringEquals and friends.
		{"StringEquals match", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "IT"), true},
		{"StringEquals is case-sensitive", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "it"), false},
		{"StringEquals mismatch", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "HR"), false},
		{"StringEquals absent", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, nil, false},
		{"StringEquals absent: other key", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, one("kms:EncryptionContext:Project", "IT"), false},
		{"StringEquals empty values is absent", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, one(dept), false},
		{"StringEquals any policy value", `{"StringEquals":{"kms:EncryptionContext:Department":["HR","IT"]}}`, one(dept, "IT"), true},
		{"StringEquals none of the policy values", `{"StringEquals":{"kms:EncryptionContext:Department":["HR","IT"]}}`, one(dept, "Ops"), false},
		{"StringEquals any request value", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "HR", "IT"), true},
		{"key name case: context upper", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, one("KMS:ENCRYPTIONCONTEXT:DEPARTMENT", "IT"), true},
		{"key name case: context lower", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, one("kms:encryptioncontext:department", "IT"), true},
		{"key name case: policy upper", `{"StringEquals":{"KMS:ENCRYPTIONCONTEXT:DEPARTMENT":"IT"}}`, one(dept, "IT"), true},
		{"key name case: exact spelling wins", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, ctx{dept: {"IT"}, "kms:encryptioncontext:department": {"HR"}}, true},
		{"key name case: lower spelling next", `{"StringEquals":{"Kms:EncryptionContext:Department":"IT"}}`, ctx{"KMS:ENCRYPTIONCONTEXT:DEPARTMENT": {"HR"}, "kms:encryptioncontext:department": {"IT"}}, true},
		{"key name case: smallest spelling last", `{"StringEquals":{"Kms:EncryptionContext:Department":"IT"}}`, ctx{"KMS:ENCRYPTIONCONTEXT:DEPARTMENT": {"IT"}, "kms:EncryptionContext:DEPARTMENT": {"HR"}}, true},
		{"number value as text", `{"StringEquals":{"kms:X":10}}`, one(num, "10"), true},
		{"boolean value as text", `{"StringEquals":{"kms:X":true}}`, one(num, "true"), true},
		{"StringNotEquals match", `{"StringNotEquals":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "HR"), true},
		{"StringNotEquals mismatch", `{"StringNotEquals":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "IT"), false},
		{"StringNotEquals absent is true", `{"StringNotEquals":{"kms:EncryptionContext:Department":"IT"}}`, nil, true},
		{"StringNotEquals is none of the values", `{"StringNotEquals":{"kms:EncryptionContext:Department":["HR","IT"]}}`, one(dept, "IT"), false},
		{"StringNotEquals none of the values", `{"StringNotEquals":{"kms:EncryptionContext:Department":["HR","IT"]}}`, one(dept, "Ops"), true},
		{"StringNotEquals any request value equal", `{"StringNotEquals":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "Ops", "IT"), false},
		{"StringNotEquals no request value equal", `{"StringNotEquals":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "Ops", "HR"), true},
		{"StringEqualsIgnoreCase match", `{"StringEqualsIgnoreCase":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "it"), true},
		{"StringEqualsIgnoreCase mismatch", `{"StringEqualsIgnoreCase":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "ops"), false},
		{"StringNotEqualsIgnoreCase match", `{"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "ops"), true},
		{"StringNotEqualsIgnoreCase mismatch", `{"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "it"), false},
		{"StringLike match", `{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin-?"}}`, one(parn, "arn:aws:iam::111122223333:role/admin-1"), true},
		{"StringLike mismatch", `{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin-?"}}`, one(parn, "arn:aws:iam::111122223333:role/admin-10"), false},
		{"StringLike is case-sensitive", `{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin-?"}}`, one(parn, "arn:aws:iam::111122223333:role/Admin-1"), false},
		{"StringLike without wildcards is equality", `{"StringLike":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "IT2"), false},
		{"StringNotLike match", `{"StringNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin-*"}}`, one(parn, "arn:aws:iam::111122223333:user/alice"), true},
		{"StringNotLike mismatch", `{"StringNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin-*"}}`, one(parn, "arn:aws:iam::111122223333:role/admin-x"), false},
		{"StringNotLike absent is true", `{"StringNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin-*"}}`, nil, true},

		// Numeric.
		{"NumericEquals match", `{"NumericEquals":{"kms:X":10}}`, one(num, "10"), true},
		{"NumericEquals compares numbers", `{"NumericEquals":{"kms:X":"10"}}`, one(num, "10.0"), true},
		{"NumericEquals mismatch", `{"NumericEquals":{"kms:X":10}}`, one(num, "11"), false},
		{"NumericEquals non-numeric request", `{"NumericEquals":{"kms:X":10}}`, one(num, "ten"), false},
		{"NumericEquals absent", `{"NumericEquals":{"kms:X":10}}`, nil, false},
		{"NumericNotEquals match", `{"NumericNotEquals":{"kms:X":10}}`, one(num, "11"), true},
		{"NumericNotEquals mismatch", `{"NumericNotEquals":{"kms:X":10}}`, one(num, "10"), false},
		{"NumericNotEquals non-numeric request never matches", `{"NumericNotEquals":{"kms:X":10}}`, one(num, "ten"), false},
		{"NumericNotEquals absent is true", `{"NumericNotEquals":{"kms:X":10}}`, nil, true},
		{"NumericLessThan match", `{"NumericLessThan":{"kms:X":10}}`, one(num, "9.5"), true},
		{"NumericLessThan mismatch", `{"NumericLessThan":{"kms:X":10}}`, one(num, "10"), false},
		{"NumericLessThan negative", `{"NumericLessThan":{"kms:X":"-1e1"}}`, one(num, "-11"), true},
		{"NumericLessThanEquals match", `{"NumericLessThanEquals":{"kms:X":10}}`, one(num, "10"), true},
		{"NumericLessThanEquals mismatch", `{"NumericLessThanEquals":{"kms:X":10}}`, one(num, "11"), false},
		{"NumericGreaterThan match", `{"NumericGreaterThan":{"kms:X":10}}`, one(num, "11"), true},
		{"NumericGreaterThan mismatch", `{"NumericGreaterThan":{"kms:X":10}}`, one(num, "10"), false},
		{"NumericGreaterThanEquals match", `{"NumericGreaterThanEquals":{"kms:X":10}}`, one(num, "10"), true},
		{"NumericGreaterThanEquals mismatch", `{"NumericGreaterThanEquals":{"kms:X":10}}`, one(num, "9"), false},
		{"NumericGreaterThanEquals hex request", `{"NumericGreaterThanEquals":{"kms:X":10}}`, one(num, "0x20"), false},

		// Date.
		{"DateEquals match", `{"DateEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, jan1), true},
		{"DateEquals epoch request", `{"DateEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, jan1Sec), true},
		{"DateEquals epoch policy", `{"DateEquals":{"aws:CurrentTime":1704067200}}`, one(when, jan1), true},
		{"DateEquals other zone", `{"DateEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, "2024-01-01T01:00:00+01:00"), true},
		{"DateEquals mismatch", `{"DateEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, later), false},
		{"DateEquals unreadable request", `{"DateEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, "tomorrow"), false},
		{"DateNotEquals match", `{"DateNotEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, later), true},
		{"DateNotEquals mismatch", `{"DateNotEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, jan1Sec), false},
		{"DateNotEquals absent is true", `{"DateNotEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, nil, true},
		{"DateLessThan match", `{"DateLessThan":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, earlier), true},
		{"DateLessThan mismatch", `{"DateLessThan":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, jan1), false},
		{"DateLessThanEquals match", `{"DateLessThanEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, jan1), true},
		{"DateLessThanEquals mismatch", `{"DateLessThanEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, later), false},
		{"DateGreaterThan match", `{"DateGreaterThan":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, later), true},
		{"DateGreaterThan mismatch", `{"DateGreaterThan":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, jan1), false},
		{"DateGreaterThanEquals match", `{"DateGreaterThanEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, jan1), true},
		{"DateGreaterThanEquals mismatch", `{"DateGreaterThanEquals":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, earlier), false},
		{"Date fractional seconds", `{"DateGreaterThan":{"aws:CurrentTime":"` + jan1 + `"}}`, one(when, "2024-01-01T00:00:00.001Z"), true},

		// Bool.
		{"Bool match", `{"Bool":{"aws:SecureTransport":"true"}}`, one(secure, "true"), true},
		{"Bool is case-insensitive", `{"Bool":{"aws:SecureTransport":"true"}}`, one(secure, "TRUE"), true},
		{"Bool JSON boolean", `{"Bool":{"aws:SecureTransport":false}}`, one(secure, "False"), true},
		{"Bool mismatch", `{"Bool":{"aws:SecureTransport":"true"}}`, one(secure, "false"), false},
		{"Bool unreadable request", `{"Bool":{"aws:SecureTransport":"true"}}`, one(secure, "yes"), false},
		{"Bool absent", `{"Bool":{"aws:SecureTransport":"false"}}`, nil, false},

		// Binary.
		{"BinaryEquals match", `{"BinaryEquals":{"kms:B":"QmluYXJ5"}}`, one(bin, "QmluYXJ5"), true},
		{"BinaryEquals mismatch", `{"BinaryEquals":{"kms:B":"QmluYXJ5"}}`, one(bin, "T3RoZXI="), false},
		{"BinaryEquals unreadable request", `{"BinaryEquals":{"kms:B":"QmluYXJ5"}}`, one(bin, "!!!!"), false},
		{"BinaryEquals long value", `{"BinaryEquals":{"kms:B":"` + long64 + `"}}`, one(bin, long64), true},

		// IP.
		{"IpAddress match", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, one(ip, "10.1.2.3"), true},
		{"IpAddress mismatch", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, one(ip, "11.0.0.1"), false},
		{"IpAddress mapped IPv4", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, one(ip, "::ffff:10.0.0.1"), true},
		{"IpAddress unmasked block", `{"IpAddress":{"aws:SourceIp":"10.9.9.9/8"}}`, one(ip, "10.1.2.3"), true},
		{"IpAddress IPv6", `{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, one(ip, "2001:db8::1"), true},
		{"IpAddress IPv6 mismatch", `{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, one(ip, "2001:db9::1"), false},
		{"IpAddress single address", `{"IpAddress":{"aws:SourceIp":"192.0.2.1"}}`, one(ip, "192.0.2.1"), true},
		{"IpAddress single address mismatch", `{"IpAddress":{"aws:SourceIp":"192.0.2.1"}}`, one(ip, "192.0.2.2"), false},
		{"IpAddress unreadable request", `{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`, one(ip, "localhost"), false},
		{"NotIpAddress match", `{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, one(ip, "11.0.0.1"), true},
		{"NotIpAddress mismatch", `{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, one(ip, "10.0.0.1"), false},
		{"NotIpAddress unreadable request", `{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, one(ip, "localhost"), false},
		{"NotIpAddress absent is true", `{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, nil, true},

		// ARN.
		{"ArnEquals match", `{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}}`, one(parn, "arn:aws:iam::111122223333:role/r"), true},
		{"ArnEquals mismatch", `{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}}`, one(parn, "arn:aws:iam::444455556666:role/r"), false},
		{"ArnLike match", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:root"}}`, one(parn, "arn:aws:iam::111122223333:root"), true},
		{"ArnLike mismatch", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:root"}}`, one(parn, "arn:aws:iam::111122223333:user/root"), false},
		{"ArnLike wildcard stays in its part", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:kms:*:111122223333:key/*"}}`, one(parn, "arn:aws:kms:us-east-1:x:111122223333:key/k"), false},
		{"ArnLike resource part keeps colons", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:logs:us-east-1:111122223333:log-group:*"}}`, one(parn, "arn:aws:logs:us-east-1:111122223333:log-group:g:stream"), true},
		{"ArnLike is case-sensitive", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:root"}}`, one(parn, "arn:aws:IAM::111122223333:root"), false},
		{"ArnLike not an ARN", `{"ArnLike":{"aws:PrincipalArn":"arn:*:*:*:*:*"}}`, one(parn, "alice"), false},
		{"ArnNotEquals match", `{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/admin"}}`, one(parn, "arn:aws:iam::111122223333:role/other"), true},
		{"ArnNotEquals mismatch", `{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/admin"}}`, one(parn, "arn:aws:iam::111122223333:role/admin"), false},
		{"ArnNotLike match", `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin*"}}`, one(parn, "arn:aws:iam::111122223333:user/alice"), true},
		{"ArnNotLike mismatch", `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin*"}}`, one(parn, "arn:aws:iam::111122223333:role/admin2"), false},
		{"ArnNotLike not an ARN never matches", `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin*"}}`, one(parn, "alice"), false},
		{"ArnNotLike absent is true", `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin*"}}`, nil, true},

		// Null.
		{"Null true, absent", `{"Null":{"kms:EncryptionContext:Department":"true"}}`, nil, true},
		{"Null true, present", `{"Null":{"kms:EncryptionContext:Department":"true"}}`, one(dept, "IT"), false},
		{"Null true, no values", `{"Null":{"kms:EncryptionContext:Department":true}}`, one(dept), true},
		{"Null false, present", `{"Null":{"kms:EncryptionContext:Department":"false"}}`, one(dept, "IT"), true},
		{"Null false, absent", `{"Null":{"kms:EncryptionContext:Department":"false"}}`, nil, false},
		{"Null false, present in another case", `{"Null":{"kms:EncryptionContext:Department":"false"}}`, one("KMS:ENCRYPTIONCONTEXT:DEPARTMENT", "IT"), true},

		// IfExists.
		{"StringEqualsIfExists absent", `{"StringEqualsIfExists":{"kms:EncryptionContext:Department":"IT"}}`, nil, true},
		{"StringEqualsIfExists match", `{"StringEqualsIfExists":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "IT"), true},
		{"StringEqualsIfExists mismatch", `{"StringEqualsIfExists":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "HR"), false},
		{"StringNotEqualsIfExists absent", `{"StringNotEqualsIfExists":{"kms:EncryptionContext:Department":"IT"}}`, nil, true},
		{"StringNotEqualsIfExists mismatch", `{"StringNotEqualsIfExists":{"kms:EncryptionContext:Department":"IT"}}`, one(dept, "IT"), false},
		{"NumericLessThanIfExists absent", `{"NumericLessThanIfExists":{"kms:X":10}}`, nil, true},
		{"NumericLessThanIfExists mismatch", `{"NumericLessThanIfExists":{"kms:X":10}}`, one(num, "11"), false},
		{"BoolIfExists absent", `{"BoolIfExists":{"aws:SecureTransport":"true"}}`, nil, true},
		{"BoolIfExists mismatch", `{"BoolIfExists":{"aws:SecureTransport":"true"}}`, one(secure, "false"), false},
		{"DateLessThanIfExists absent", `{"DateLessThanIfExists":{"aws:CurrentTime":"` + jan1 + `"}}`, nil, true},
		{"IpAddressIfExists absent", `{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}`, nil, true},
		{"IpAddressIfExists mismatch", `{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}`, one(ip, "11.0.0.1"), false},
		{"ArnLikeIfExists absent", `{"ArnLikeIfExists":{"aws:PrincipalArn":"arn:aws:iam::*:root"}}`, nil, true},
		{"BinaryEqualsIfExists absent", `{"BinaryEqualsIfExists":{"kms:B":"QmluYXJ5"}}`, nil, true},

		// Set operators.
		{"ForAnyValue one matches", `{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys, "c", "a"), true},
		{"ForAnyValue none matches", `{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys, "c"), false},
		{"ForAnyValue absent", `{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, nil, false},
		{"ForAnyValue empty", `{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys), false},
		{"ForAnyValue negated absent", `{"ForAnyValue:StringNotEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, nil, false},
		{"ForAnyValue:StringNotEquals one outside", `{"ForAnyValue:StringNotEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys, "a", "c"), true},
		{"ForAnyValue:StringNotEquals all inside", `{"ForAnyValue:StringNotEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys, "a", "b"), false},
		{"ForAnyValue IfExists absent", `{"ForAnyValue:StringLikeIfExists":{"kms:EncryptionContextKeys":"a*"}}`, nil, true},
		{"ForAnyValue:StringLike", `{"ForAnyValue:StringLike":{"kms:EncryptionContextKeys":"a*"}}`, one(keys, "x", "ab"), true},
		{"ForAnyValue:NumericGreaterThan", `{"ForAnyValue:NumericGreaterThan":{"kms:X":5}}`, one(num, "1", "x", "6"), true},
		{"ForAllValues all match", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys, "b", "a"), true},
		{"ForAllValues one value", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys, "a"), true},
		{"ForAllValues one outside", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys, "a", "c"), false},
		{"ForAllValues absent", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, nil, true},
		{"ForAllValues empty", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys), true},
		{"ForAllValues:StringNotEquals none inside", `{"ForAllValues:StringNotEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys, "c", "d"), true},
		{"ForAllValues:StringNotEquals one inside", `{"ForAllValues:StringNotEquals":{"kms:EncryptionContextKeys":["a","b"]}}`, one(keys, "c", "a"), false},
		{"ForAllValues:NumericLessThan unreadable", `{"ForAllValues:NumericLessThan":{"kms:X":5}}`, one(num, "1", "x"), false},
		{"ForAllValues IfExists present mismatch", `{"ForAllValues:StringEqualsIfExists":{"kms:EncryptionContextKeys":"a"}}`, one(keys, "b"), false},

		// AND over operators and keys.
		{"two keys both hold", `{"StringEquals":{"kms:EncryptionContext:Department":"IT","kms:X":"1"}}`, ctx{dept: {"IT"}, num: {"1"}}, true},
		{"two keys one fails", `{"StringEquals":{"kms:EncryptionContext:Department":"IT","kms:X":"1"}}`, ctx{dept: {"IT"}, num: {"2"}}, false},
		{"two operators both hold", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"},"Bool":{"aws:SecureTransport":"true"}}`, ctx{dept: {"IT"}, secure: {"true"}}, true},
		{"two operators one fails", `{"StringEquals":{"kms:EncryptionContext:Department":"IT"},"Bool":{"aws:SecureTransport":"true"}}`, ctx{dept: {"IT"}, secure: {"false"}}, false},
		{"empty Condition", `{}`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":`+tc.cond+`}`))
			r := req(alice, acct, "kms:Encrypt")
			r.Context = tc.ctx
			want := policy.ImplicitDeny
			if tc.want {
				want = policy.Allow
			}
			require.Equal(t, want, p.Evaluate(r))

			// The same condition on a Deny statement denies exactly when it holds.
			q := mustParse(t, doc(
				`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
				`{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":`+tc.cond+`}`,
			))
			want = policy.Allow
			if tc.want {
				want = policy.ExplicitDeny
			}
			require.Equal(t, want, q.Evaluate(r))
		})
	}
}

// long64 is the base64 of 300 bytes, beyond Evaluate's stack buffer.
var long64 = func() string {
	const chunk = "QUJD" // "ABC"
	s := ""
	for range 100 {
		s += chunk
	}
	return s
}()
