package kms

import "github.com/trentkms/trent/conformance"

// Suite is the suite's name in reports.
const Suite = "kms"

// Catalogue is the suite's checks, for listing: their run functions must
// not be called (they need an Env's).
func Catalogue() []conformance.Check { return (&Env{}).Checks() }

// Checks is the suite's checks against e, in catalogue order.
func (e *Env) Checks() []conformance.Check {
	var cs []conformance.Check
	for _, part := range [][]conformance.Check{
		e.errorChecks(), e.inputChecks(), e.sigv4Checks(), e.contextChecks(), e.stateChecks(),
		e.roundTripChecks(), e.policyChecks(), e.recipientChecks(),
		e.customStoreChecks(),
	} {
		cs = append(cs, part...)
	}
	return cs
}

// Clause sources.
const (
	apiRef  = "https://docs.aws.amazon.com/kms/latest/APIReference/"
	devRef  = "https://docs.aws.amazon.com/kms/latest/developerguide/"
	sigvRef = "https://docs.aws.amazon.com/IAM/latest/UserGuide/"
)

// apiErr is the clause of an operation's error in the API reference.
func apiErr(op, exception string) string {
	return apiRef + "API_" + op + ".html#API_" + op + "_Errors (" + exception + ")"
}

// apiParam is the clause of an operation's request or response member.
func apiParam(op, dir, member string) string {
	return apiRef + "API_" + op + ".html#KMS-" + op + "-" + dir + "-" + member
}
