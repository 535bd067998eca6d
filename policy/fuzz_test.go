package policy_test

import (
	"errors"
	"testing"

	"github.com/trentkms/trent/policy"
)

// FuzzParse: Parse never panics, a parsed policy evaluates requests without
// panicking, and any error wraps ErrMalformed.
func FuzzParse(f *testing.F) {
	f.Add(policy.Default(acct))
	f.Add([]byte(doc(`{"Effect":"Deny","NotPrincipal":{"AWS":["111122223333","arn:aws:iam::111122223333:role/admin"]},"NotAction":"kms:Describe*","NotResource":"arn:aws:kms:*:111122223333:key/*"}`)))
	f.Add([]byte(doc(`{"Sid":"c","Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":["kms:Encrypt","kms:?ecrypt"],"Resource":"*","Condition":{` +
		`"ForAnyValue:StringLikeIfExists":{"kms:EncryptionContextKeys":["a*","b?"]},` +
		`"NumericLessThan":{"kms:X":[1,"2.5"]},"DateGreaterThan":{"aws:CurrentTime":1700000000},` +
		`"Bool":{"aws:SecureTransport":true},"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},` +
		`"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/x*"},"BinaryEquals":{"kms:B":"QmluYXJ5"},` +
		`"Null":{"kms:GrantIsForAWSResource":"true"},"ForAllValues:StringNotEqualsIgnoreCase":{"kms:K":"a"}}}`)))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Alow"}}`))
	f.Add([]byte(`{"Version":"2012-10-17","Version":"2012-10-17"}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte("\xff"))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))

	reqs := []*policy.Request{
		req(alice, acct, "kms:Encrypt"),
		req(mallory, "", "kms:DescribeKey"),
		{Principal: "logs.amazonaws.com", Action: "KMS:DECRYPT", Resource: "arn:aws:kms:us-east-1:111122223333:key/k", Context: map[string][]string{
			"KMS:EncryptionContextKeys": {"a1", "bb", ""},
			"kms:x":                     {"1", "nope", "1e400"},
			"aws:CurrentTime":           {"1800000000", "2024-01-01T00:00:00+05:30", "x"},
			"aws:securetransport":       {"TRUE"},
			"aws:SourceIp":              {"10.0.0.1", "fe80::1%eth0", "zz"},
			"aws:PrincipalArn":          {"arn:aws:iam::111122223333:role/xy", "short"},
			"kms:B":                     {"QmluYXJ5", "@@"},
			"kms:K":                     {},
		}},
		{},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("a policy with an error")
			}
			if !errors.Is(err, policy.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		for _, r := range reqs {
			_ = p.Evaluate(r).String()
		}
	})
}
