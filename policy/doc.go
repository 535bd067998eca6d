// Package policy is the AWS KMS key-policy engine: Parse checks a key policy
// document strictly and compiles it once; Policy.Evaluate answers, per
// request, whether a principal may do an action on a key (Allow,
// ExplicitDeny or ImplicitDeny), with the IAM evaluation logic for a single
// resource policy: an applicable Deny statement wins, else an applicable
// Allow statement allows, else the request is implicitly denied. Default is
// the policy CreateKey uses when none is given, in the layout GetKeyPolicy
// returns.
//
// # Documents
//
// A document is valid UTF-8 JSON of at most MaxDocument bytes, one object,
// no duplicate object keys at any depth, nothing after it. Element and
// operator names are case-sensitive, as AWS spells them; an unknown element
// is an error. The top level holds Version ("2012-10-17" or "2008-10-17",
// required), an optional Id (a string) and Statement: one statement object
// or a non-empty array of them. A statement holds Effect (Allow or Deny),
// exactly one of Principal and NotPrincipal, exactly one of Action and
// NotAction, exactly one of Resource and NotResource, an optional Sid (a
// string; a non-empty Sid is unique in the policy) and an optional
// Condition.
//
//   - Principal is "*" or an object of AWS, Service and Federated, each a
//     string or a non-empty array of strings. An AWS principal is "*", a
//     12-digit account ID, or an iam or sts ARN of a 12-digit account;
//     principals take no wildcards other than the whole "*".
//   - Action is "*" or kms:NAME, where NAME is letters and digits with the
//     wildcards * and ?; the service prefix is case-insensitive.
//   - Resource is "*" or an ARN pattern beginning "arn:".
//   - Condition is {Operator: {Key: Values}}, Values a string, boolean or
//     number or a non-empty array of them. Operator values are checked at
//     Parse: numbers, dates (RFC 3339, or epoch seconds as an integer),
//     booleans, base64 (standard alphabet, padded), IP addresses or CIDR
//     blocks, and ARNs (six colon-separated parts, wildcards allowed) must
//     be what the operator compares, so that a condition that can never be
//     met is reported rather than kept. A boolean or number given to a
//     string operator is compared as its JSON text. Policy variables
//     (${aws:username}) are not expanded: they are literal text.
//
// Every Parse error wraps ErrMalformed and says what is wrong; statements
// are numbered from 1 in the order of the document, e.g.
//
//	policy: malformed policy document: statement 2: Effect "Alow" is not Allow or Deny
//
// # Principals
//
// "*" and {"AWS": "*"} match every caller. An account, written as its root
// ARN (arn:aws:iam::ACCOUNT:root) or as the bare 12-digit ID, matches every
// principal of that account. In AWS such a statement delegates to the
// account's IAM policies; Trent has no IAM policies, so in Trent it grants
// (or denies) to every principal of the account directly. The caller's
// account is Request.Account, or when that is empty the account field of
// Request.Principal's ARN. Any other AWS principal matches one ARN exactly
// and case-sensitively (a role ARN does not match the role's sts
// assumed-role sessions: the host passes the principal ARN it
// authenticated). Service and Federated principals match a
// Request.Principal equal to the service or provider name. NotPrincipal
// makes a statement apply to every caller it does not match.
//
// # Actions and resources
//
// Action and NotAction patterns match Request.Action case-insensitively,
// Resource and NotResource patterns match Request.Resource
// case-sensitively; both with * (any run of characters, including none and
// including colons) and ? (one character).
//
// # Conditions
//
// A statement's conditions all hold (AND over operators, and over the keys
// of an operator); a key with several policy values holds when any value
// matches (OR), except that a negated operator (StringNotEquals,
// StringNotEqualsIgnoreCase, StringNotLike, NumericNotEquals,
// DateNotEquals, NotIpAddress, ArnNotEquals, ArnNotLike) holds when the
// request value matches none of them, as IAM documents. Condition key names
// are case-insensitive. ArnEquals and ArnLike are the same test, as in IAM:
// the six colon-separated parts compared one by one, case-sensitively,
// with wildcards within a part. Bool compares "true" and "false"
// case-insensitively. A request value the operator cannot read (a
// non-numeric value for a Numeric operator, a malformed date, IP address,
// ARN, base64 or boolean) matches neither the operator nor its negation.
//
// A key absent from Request.Context, or present with no values, is absent.
// For an absent key:
//
//   - Null "true" holds and Null "false" does not (Null has no IfExists and
//     no set form);
//   - any operator with the IfExists suffix holds;
//   - ForAllValues holds and ForAnyValue does not;
//   - otherwise a positive operator does not hold and a negated operator
//     holds, as the IAM documentation says ("If the key that you specify in
//     a policy condition is not present in the request context ... the
//     condition is false. If the policy condition requires that the key is
//     not matched, such as StringNotLike or ArnNotLike, and the right key is
//     not present, the condition is true").
//
// For a present key with several request values: ForAnyValue:Op holds when
// at least one request value satisfies Op against the policy values,
// ForAllValues:Op when every request value does. Without a set prefix a
// positive operator holds when any request value matches, and a negated
// operator holds when no request value matches its positive form (so
// StringNotEquals holds when none of the request values equals any policy
// value).
//
// Request.Context should hold each key once. If it holds one name in
// several spellings, the exact spelling of the policy wins, then the
// all-lower-case spelling, then the byte-wise smallest spelling.
//
// # Concurrency and cost
//
// A Policy is immutable after Parse and safe for concurrent use. Evaluate
// does not allocate, except that reading a request's Date value with a
// numeric zone offset, a zoned IPv6 address or a long BinaryEquals value
// may; the default policy evaluates in tens of nanoseconds
// (BenchmarkEvaluateDefault).
package policy
