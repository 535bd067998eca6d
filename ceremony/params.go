package ceremony

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
)

// Change is a command's parameters, decoded (domain.Change).
type Change = domain.Change

// DecodeChange decodes a command's parameters strictly (domain.DecodeChange).
func DecodeChange(c *quorum.Command) (*Change, error) { return domain.DecodeChange(c) }

// Describe describes the change in one line, for signers to read.
func Describe(ch *Change) string {
	switch ch.Type {
	case quorum.CreateDomain:
		g := ch.Genesis
		var ms, ops []string
		for _, m := range g.Members {
			ms = append(ms, m.ID)
		}
		for _, o := range g.Operators {
			ops = append(ops, describeOperator(o))
		}
		rules := "the default rules"
		if !RulesEqual(g.Rules, quorum.DefaultRules()) {
			rules = "custom rules"
		}
		out := fmt.Sprintf("create domain %q: members %s; operators %s; %s; retention %d; %d attestation roots",
			g.Name, strings.Join(ms, ", "), strings.Join(ops, ", "), rules, g.Retention, len(g.Roots))
		if g.HybridRequired {
			out += "; hybrid ML-KEM-1024 + P-384 key establishment required"
		}
		return out
	case quorum.AddMember:
		if ch.Member.KEM != nil {
			sum := sha256.Sum256(ch.Member.KEM)
			return "add member HSM " + ch.Member.ID + " with ML-KEM key sha256:" + hex.EncodeToString(sum[:16])
		}
		return "add member HSM " + ch.Member.ID
	case quorum.RemoveMember:
		return "remove member HSM " + ch.ID
	case quorum.AddOperator:
		return "add operator " + describeOperator(ch.Operator)
	case quorum.RemoveOperator:
		return "remove operator " + ch.ID
	case quorum.SetRule:
		return fmt.Sprintf("set the rule for %v to %s", ch.RuleFor, FormatRules(ch.Rules))
	case quorum.RotateDomainKeys:
		return "rotate the domain keys"
	case quorum.SetRetention:
		return fmt.Sprintf("keep %d deactivated domain keys", ch.Retention)
	case quorum.SetTrustedAttestationRoots:
		if len(ch.Roots) == 0 {
			return "trust no attestation root"
		}
		var rs []string
		for _, r := range ch.Roots {
			rs = append(rs, describeRoot(r))
		}
		return "trust attestation roots " + strings.Join(rs, ", ")
	case quorum.SetSessionPolicy:
		policy := "allow classical sessions"
		if ch.HybridRequired {
			policy = "require hybrid ML-KEM-1024 + P-384 key establishment"
		}
		var ks []string
		for _, k := range ch.KEMs {
			sum := sha256.Sum256(k.EK)
			ks = append(ks, k.ID+" sha256:"+hex.EncodeToString(sum[:16]))
		}
		if len(ks) == 0 {
			return policy + "; no member ML-KEM keys"
		}
		return policy + "; member ML-KEM keys " + strings.Join(ks, ", ")
	case quorum.SetPeerRegion:
		if len(ch.Peer.Members) == 0 {
			return fmt.Sprintf("forget peer region %s (domain %q)", ch.Peer.Region, ch.Peer.Domain)
		}
		var ms []string
		for _, m := range ch.Peer.Members {
			ms = append(ms, m.ID)
		}
		return fmt.Sprintf("trust peer region %s (domain %q) for multi-Region key material from and to its HSMs %s",
			ch.Peer.Region, ch.Peer.Domain, strings.Join(ms, ", "))
	}
	return ch.Type.String()
}

func describeOperator(o quorum.Operator) string {
	return fmt.Sprintf("%s as %s (%v %s)", o.ID, o.Role, o.Key.Alg(), KeyFingerprint(o.Key))
}

func describeRoot(der []byte) string {
	sum := sha256.Sum256(der)
	fp := "sha256:" + hex.EncodeToString(sum[:16])
	if c, err := x509.ParseCertificate(der); err == nil {
		return fmt.Sprintf("%q %s", c.Subject.String(), fp)
	}
	return fp
}

// KeyFingerprint is "sha256:" and the first 16 bytes, in hex, of SHA-256
// over the key's encoding: what an operator reads aloud so that signers can
// check the key a command adds.
func KeyFingerprint(k quorum.PublicKey) string {
	b, err := k.Marshal()
	if err != nil {
		return "sha256:?"
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// ParseRule parses one rule: requirements "N role" joined by "+", as in
// "2 kms-operator" or "1 kms-operator + 1 service-host".
func ParseRule(s string) (quorum.Rule, error) {
	var rule quorum.Rule
	for part := range strings.SplitSeq(s, "+") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return nil, fmt.Errorf("ceremony: rule %q: each requirement is \"N role\", joined by \"+\"", s)
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 1 || n > quorum.MaxSignatures {
			return nil, fmt.Errorf("ceremony: rule %q: count %q is not 1 to %d", s, f[0], quorum.MaxSignatures)
		}
		if !wire.ValidID(f[1]) {
			return nil, fmt.Errorf("ceremony: rule %q: invalid role %q", s, f[1])
		}
		rule = append(rule, quorum.Requirement{Role: f[1], N: n})
	}
	if len(rule) > domain.MaxRequirements {
		return nil, fmt.Errorf("ceremony: rule %q: more than %d requirements", s, domain.MaxRequirements)
	}
	return rule, nil
}

// FormatRules writes alternatives as "2 kms-operator | 1 service-host".
func FormatRules(alts []quorum.Rule) string {
	var s []string
	for _, r := range alts {
		s = append(s, r.String())
	}
	return strings.Join(s, " | ")
}

// RulesEqual reports whether two rule sets are the same, alternative for
// alternative.
func RulesEqual(a, b quorum.Rules) bool {
	if len(a) != len(b) {
		return false
	}
	for t, alts := range a {
		if !slices.EqualFunc(alts, b[t], func(x, y quorum.Rule) bool { return slices.Equal(x, y) }) {
			return false
		}
	}
	return true
}
