// Package conformance is the framework of Trent's black-box conformance
// suites: catalogues of checks run against any endpoint that claims to
// speak an API (package conformance/kms holds the AWS KMS suite), and the
// reports they produce.
//
// # The contract
//
// A Check has a stable ID (SUITE-AREA-NNN, e.g. KMS-ERR-001) that is never
// reused for another statement, a one-line Statement of what a conforming
// endpoint does, the Clause of the specification it tests (an AWS API
// reference page and section, or a docs/ anchor), the Capabilities it
// needs, and a Run function.
//
// Run gives every selected check exactly one Result:
//
//   - pass: the check ran to its end without a failure;
//   - fail: the endpoint did something other than the statement says; the
//     result carries what was expected and what was observed;
//   - skip: the check needs a capability the target lacks, or the check
//     itself found at run time that it cannot run there; the result carries
//     the reason. A skipped check is never counted as passed.
//
// A check that panics fails. Each check gets its own deadline; the cleanups
// it registers (T.Cleanup) run after it, last first, whatever its outcome,
// and their errors are reported with the result without changing it.
//
// A Report is printed as a human table (WriteTable), as JSON with the
// stable field names of Report and Result (WriteJSON), or as JUnit XML
// (WriteJUnit: a skipped check is a <skipped message=…>, a failed one a
// <failure>). Report.Err is ErrFailed when any check failed: commands
// return it so that their exit status is non-zero.
package conformance
