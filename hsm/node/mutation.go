package node

// The helpers of the quorum mutations (package internal/mutation): an HSM
// whose quorum check is broken in one named way. Product builds never call
// them, since mutation.On is false there.

import (
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/quorum"
)

// mutantExport is what an HSM with a broken quorum check exports for a
// command its check should have refused: a token of its own state at the
// next version, carrying the command. n.dom.mu is held.
func (n *Node) mutantExport(cur *domain.State, sc *quorum.SignedCommand) ([]byte, error) {
	next := cur.Clone()
	next.Version++
	var values [][]byte
	defer func() {
		for _, v := range values {
			clear(v)
		}
	}()
	for _, k := range cur.Keys {
		v, err := n.dom.keys[k.ID].ExportValue()
		if err != nil {
			return nil, err
		}
		values = append(values, v)
	}
	return domain.SealToken(next, sc, values, n.exporter())
}

// satisfiedWith reports whether sc is satisfied under cur with rules in
// place of cur's.
func satisfiedWith(cur *domain.State, sc *quorum.SignedCommand, now time.Time, rules quorum.Rules) bool {
	q := cur.Quorum()
	q.Rules = rules
	return quorum.Evaluate(q, sc.Command, sc.Signatures, now).Outcome == quorum.Satisfied
}

// undercount is rules with every requirement of two or more signers
// lowered by one (hsm.quorum-undercount).
func undercount(rules quorum.Rules) quorum.Rules {
	out := quorum.Rules{}
	for t, alts := range rules {
		for _, r := range alts {
			var low quorum.Rule
			for _, q := range r {
				if q.N >= 2 {
					q.N--
				}
				low = append(low, q)
			}
			out[t] = append(out[t], low)
		}
	}
	return out
}

// satisfiedByAnyRule reports whether sc's signers meet the rule of any
// command type of cur, its own or not (hsm.quorum-any-rule).
func satisfiedByAnyRule(cur *domain.State, sc *quorum.SignedCommand, now time.Time) bool {
	c, err := quorum.ParseCommand(sc.Command)
	if err != nil {
		return false
	}
	for _, alts := range cur.Rules {
		if satisfiedWith(cur, sc, now, quorum.Rules{c.Type: alts}) {
			return true
		}
	}
	return false
}

// extraSigners reports whether sc carries more signatures than the rule it
// satisfies asks for (hsm.quorum-extra-signer-refused refuses those).
func extraSigners(cur *domain.State, sc *quorum.SignedCommand, now time.Time) bool {
	res := quorum.Evaluate(cur.Quorum(), sc.Command, sc.Signatures, now)
	if res.Outcome != quorum.Satisfied {
		return false
	}
	need := 0
	for _, q := range res.Rule {
		need += q.N
	}
	return len(sc.Signatures) > need
}
