package hsm

import "github.com/trentkms/trent/conformance"

// Suite is the suite's name in reports.
const Suite = "hsm"

// Catalogue is the suite's checks, for listing: their run functions must
// not be called (they need an Env's).
func Catalogue() []conformance.Check { return (&Env{}).Checks() }

// Checks is the suite's checks against e, in catalogue order. The checks
// that move the HSM's state (HSM-TOK-002) come before those that use an
// older token (HSM-TOK-003).
func (e *Env) Checks() []conformance.Check {
	var cs []conformance.Check
	for _, part := range [][]conformance.Check{
		e.handshakeChecks(), e.helloChecks(), e.malformedChecks(),
		e.envelopeChecks(), e.ektChecks(), e.replayChecks(), e.frameChecks(),
		e.tokenChecks(), e.quorumChecks(), e.hybridChecks(),
		e.hijackChecks(), // last: under its mutant the HSM takes a stranger's domain
	} {
		cs = append(cs, part...)
	}
	return cs
}

// Clauses: sections of docs/protocol.md.
const (
	spec          = "docs/protocol.md"
	clauseConv    = spec + "#conventions"
	clauseHello   = spec + "#hello-host--hsm-type-0x01"
	clauseReply   = spec + "#reply-hsm--host-type-0x02"
	clauseEKT     = spec + "#ekt-type-0x03"
	clauseEnv     = spec + "#envelope-host--any-hsm-of-the-domain-type-0x04"
	clauseReplay  = spec + "#replay"
	clauseAlert   = spec + "#alert-type-0x07"
	clauseErrors  = spec + "#errors"
	clauseImport  = spec + "#importing-the-trust-rule"
	clauseWire    = spec + "#domain-operations-on-the-wire"
	clauseRules   = spec + "#the-rule-check"
	clauseCommand = spec + "#command-type-0x10"
)
