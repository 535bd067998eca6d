package kms

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/trentkms/trent/conformance"
)

var policyClause = devRef + "conditions-kms.html#conditions-kms-encryption-context; " + devRef + "key-policies.html"

// rootPrincipal is the ARN of the key's account's root, from its ARN.
func rootPrincipal(keyARN string) string {
	p := strings.Split(keyARN, ":") // arn:PARTITION:kms:REGION:ACCOUNT:key/ID
	if len(p) < 6 {
		return ""
	}
	return "arn:" + p[1] + ":iam::" + p[4] + ":root"
}

type statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    string                       `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

func policyDocument(st ...statement) string {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": st})
	return string(b)
}

// putPolicy sets the key's policy, failing the check if refused.
func (e *Env) putPolicy(t *conformance.T, id *string, doc string) {
	_, err := e.Client.PutKeyPolicy(t.Context(), &awskms.PutKeyPolicyInput{KeyId: id, PolicyName: aws.String("default"), Policy: aws.String(doc)})
	must(t, "setup: PutKeyPolicy", err)
}

func (e *Env) policyChecks() []conformance.Check {
	const condKey = "kms:EncryptionContext:purpose"
	return []conformance.Check{{
		ID:        "KMS-POL-001",
		Statement: "A key policy denying kms:Decrypt unless kms:EncryptionContext:purpose is X lets Decrypt with purpose=X through and refuses purpose=Y with AccessDeniedException",
		Clause:    policyClause,
		Mutation:  "kms.policy-deny-wildcard-principal-unmatched",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ctX, ctY := e.encrypt(t, k.KeyId, []byte("for X"), map[string]string{"purpose": "X"}), e.encrypt(t, k.KeyId, []byte("for Y"), map[string]string{"purpose": "Y"})
			e.decrypts(t, "Decrypt of purpose=Y under the default policy", ctY, map[string]string{"purpose": "Y"}, "for Y")
			e.putPolicy(t, k.KeyId, policyDocument(
				statement{Sid: "Admin", Effect: "Allow", Principal: map[string]string{"AWS": rootPrincipal(aws.ToString(k.Arn))}, Action: "kms:*", Resource: "*"},
				statement{Sid: "DecryptOnlyForX", Effect: "Deny", Principal: map[string]string{"AWS": "*"}, Action: "kms:Decrypt", Resource: "*",
					Condition: map[string]map[string]string{"StringNotEquals": {condKey: "X"}}}))
			e.decrypts(t, "Decrypt with purpose=X", ctX, map[string]string{"purpose": "X"}, "for X")
			_, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ctY, EncryptionContext: map[string]string{"purpose": "Y"}})
			expectCode(t, "Decrypt with purpose=Y", err, "AccessDeniedException")
		},
	}, {
		ID:        "KMS-POL-002",
		Statement: "A key policy allowing a second principal kms:Decrypt only with kms:EncryptionContext:purpose X lets it decrypt purpose=X and refuses purpose=Y with AccessDeniedException, while the key's owner decrypts both",
		Clause:    policyClause,
		Mutation:  "kms.policy-deny-arn-principal-unmatched",
		Needs:     []conformance.Capability{CapSecondPrincipal},
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ecX, ecY := map[string]string{"purpose": "X"}, map[string]string{"purpose": "Y"}
			ctX, ctY := e.encrypt(t, k.KeyId, []byte("for X"), ecX), e.encrypt(t, k.KeyId, []byte("for Y"), ecY)
			second := map[string]string{"AWS": e.SecondARN}
			cond := func(op string) map[string]map[string]string { return map[string]map[string]string{op: {condKey: "X"}} }
			// The account's root statement would let a second principal of
			// the same account decrypt anything; the Deny keeps it to X.
			e.putPolicy(t, k.KeyId, policyDocument(
				statement{Sid: "Admin", Effect: "Allow", Principal: map[string]string{"AWS": rootPrincipal(aws.ToString(k.Arn))}, Action: "kms:*", Resource: "*"},
				statement{Sid: "SecondDecryptsX", Effect: "Allow", Principal: second, Action: "kms:Decrypt", Resource: "*", Condition: cond("StringEquals")},
				statement{Sid: "SecondOnlyX", Effect: "Deny", Principal: second, Action: "kms:Decrypt", Resource: "*", Condition: cond("StringNotEquals")}))
			out, err := e.Second.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ctX, EncryptionContext: ecX})
			must(t, "the second principal's Decrypt with purpose=X", err)
			equal(t, "the second principal's Decrypt with purpose=X: Plaintext", "for X", string(out.Plaintext))
			_, err = e.Second.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ctY, EncryptionContext: ecY})
			expectCode(t, "the second principal's Decrypt with purpose=Y", err, "AccessDeniedException")
			e.decrypts(t, "the owner's Decrypt with purpose=Y", ctY, ecY, "for Y")
		},
	}, {
		ID: "KMS-POL-003",
		Statement: "The key policy lockout safety check asks the new policy with the caller's request context: a policy that allows kms:PutKeyPolicy " +
			"only with BoolIfExists aws:SecureTransport the other transport than the caller's fails with MalformedPolicyDocumentException in " +
			"PutKeyPolicy and CreateKey (without BypassPolicyLockoutSafetyCheck), while one allowing it on the caller's transport is accepted",
		Clause: apiParam("PutKeyPolicy", "request", "BypassPolicyLockoutSafetyCheck") + "; " + apiParam("PutKeyPolicy", "request", "Policy") + "; " +
			apiParam("CreateKey", "request", "Policy") + "; " + sigvRef + "reference_policies_condition-keys.html#condition-keys-securetransport",
		Mutation: "kms.lockout-check-partial-context",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			transport := strconv.FormatBool(strings.HasPrefix(strings.ToLower(e.Endpoint), "https:"))
			other := strconv.FormatBool(transport == "false")
			// Allow statements only: a Deny would also test what
			// KMS-POL-001 and KMS-POL-002 test.
			onlyOn := func(secure string) string {
				root := rawJSON(rootPrincipal(aws.ToString(k.Arn)))
				return `{"Version":"2012-10-17","Statement":[` +
					`{"Sid":"AllButPolicy","Effect":"Allow","Principal":{"AWS":` + root + `},"NotAction":"kms:PutKeyPolicy","Resource":"*"},` +
					`{"Sid":"PolicyOnOneTransport","Effect":"Allow","Principal":{"AWS":` + root + `},"Action":"kms:PutKeyPolicy","Resource":"*",` +
					`"Condition":{"BoolIfExists":{"aws:SecureTransport":"` + secure + `"}}}]}`
			}
			_, err := e.Client.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: k.KeyId, PolicyName: aws.String("default"), Policy: aws.String(onlyOn(other))})
			expectCode(t, "PutKeyPolicy allowing kms:PutKeyPolicy only when aws:SecureTransport is "+other, err, "MalformedPolicyDocumentException")
			out, err := e.Client.CreateKey(ctx, &awskms.CreateKeyInput{Policy: aws.String(onlyOn(other)), Tags: conformanceTags(),
				Description: aws.String("trent conformance " + t.ID())})
			if err == nil && out.KeyMetadata != nil {
				id := out.KeyMetadata.KeyId
				t.Cleanup(func(ctx context.Context) error { return e.deleteKey(ctx, id) })
			}
			expectCode(t, "CreateKey with a policy allowing kms:PutKeyPolicy only when aws:SecureTransport is "+other, err, "MalformedPolicyDocumentException")
			e.putPolicy(t, k.KeyId, onlyOn(transport))
		},
	}, {
		ID: "KMS-POL-004",
		Statement: "aws:SourceIp is the caller's address: a key policy allowing kms:Encrypt only with IpAddress aws:SourceIp [0.0.0.0/0, ::/0] lets Encrypt " +
			"through, and one allowing it only with NotIpAddress on the same blocks refuses it with AccessDeniedException (outside VPC endpoints)",
		Clause:   sigvRef + "reference_policies_condition-keys.html#condition-keys-sourceip; " + sigvRef + "reference_policies_elements_condition_operators.html#Conditions_IPAddress",
		Mutation: "kms.source-ip-missing",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			e.encrypt(t, k.KeyId, []byte("before"), nil)
			// Allow statements only, as in KMS-POL-003.
			doc := func(op string) string {
				root := rawJSON(rootPrincipal(aws.ToString(k.Arn)))
				return `{"Version":"2012-10-17","Statement":[` +
					`{"Sid":"AllButEncrypt","Effect":"Allow","Principal":{"AWS":` + root + `},"NotAction":"kms:Encrypt","Resource":"*"},` +
					`{"Sid":"EncryptBySourceIp","Effect":"Allow","Principal":{"AWS":` + root + `},"Action":"kms:Encrypt","Resource":"*",` +
					`"Condition":{"` + op + `":{"aws:SourceIp":["0.0.0.0/0","::/0"]}}}]}`
			}
			e.putPolicy(t, k.KeyId, doc("NotIpAddress"))
			_, err := e.Client.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("x")})
			expectCode(t, "Encrypt allowed only from outside every address block (NotIpAddress)", err, "AccessDeniedException")
			e.putPolicy(t, k.KeyId, doc("IpAddress"))
			_, err = e.Client.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("x")})
			must(t, "Encrypt allowed from every address block (IpAddress)", err)
		},
	}}
}
