// Package kms is the AWS KMS conformance suite: black-box checks of an
// endpoint that claims to speak the AWS KMS JSON API (Trent, AWS itself,
// moto, LocalStack), made with the real aws-sdk-go-v2 KMS client and, for
// the SigV4 checks, raw net/http requests signed with the SDK's v4 signer
// and then tampered with. `trent conformance kms` runs it;
// docs/conformance-suite.md lists its checks.
//
// # The contract
//
// Each check states one behaviour of AWS KMS, cites the API reference or
// developer guide section that specifies it, and fails with the expected
// and observed values when the endpoint differs. Checks needing something
// the target may lack declare it: CapAsymmetric (probed with a CreateKey),
// CapSecondPrincipal (a second identity and its ARN, configured) and
// CapRecipient (a simulated Nitro Secure Module root the endpoint trusts,
// configured); without it they are skipped with the reason, never passed.
//
// Every key a check creates is tagged trent-conformance=1 and scheduled for
// deletion (7 days, the shortest window) when the check ends; aliases are
// deleted. Nothing else is changed on the target. The checks run one after
// another; each is independent of the others.
//
// Credentials come from the usual AWS environment for static credentials:
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else the
// shared credentials and config files' profile (AWS_PROFILE or default);
// the region from the flag, AWS_REGION, AWS_DEFAULT_REGION or the profile.
package kms
