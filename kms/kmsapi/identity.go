package kmsapi

// IdentityType is the audit event's userIdentity.type of a principal ARN
// (IAMUser, AssumedRole, Root, …), as the API's own events have it: for
// events another component records (a peer region's replica request).
func IdentityType(arn string) string { return identityType(arn) }

// RequestID is a random UUID-shaped ID, as the API's request and event
// IDs are.
func RequestID() string { return requestID() }
