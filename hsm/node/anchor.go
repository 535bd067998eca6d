package node

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/internal/wire"
)

// The domain anchor: what a node's token remembers of the domain state the
// node last adopted, so that after a restart (its domain state and keys
// were session objects) it takes only that domain back, from an HSM it
// knew. docs/protocol.md, "Domain anchor", has the encoding.

// TypeAnchor is the object type of an encoded Anchor.
const TypeAnchor byte = 0x23

// The anchor's data object in the token.
const (
	AnchorLabel       = "trent domain anchor"
	AnchorApplication = "trent"
)

// Limits of an encoded anchor.
const (
	MaxAnchorMembers = 255
	// MaxAnchorSize bounds an encoded anchor: a header, a name, a version
	// and 255 members of at most 21 + 2 + 512 bytes fit well within it.
	MaxAnchorSize = 1 << 16
	// maxSPKI bounds a member's signing key field (a P-384 SPKI is 120
	// bytes).
	maxSPKI = 512
)

// Errors of the anchor.
var (
	ErrMalformedAnchor = errors.New("node: malformed domain anchor")
	ErrAnchorVersion   = errors.New("node: domain anchor of an unsupported version")
	// ErrAnchorRefused is wrapped by a stateless Import the token's anchor
	// refuses: another domain, an older version, or an exporter the
	// anchored state did not list with that signing key.
	ErrAnchorRefused = errors.New("node: token refused by this HSM's domain anchor")
	// ErrAnchored refuses CreateDomain on a token that already belongs to
	// a domain (trent hsm reset-anchor clears it).
	ErrAnchored = errors.New("node: this HSM's token is anchored to a domain")
)

// AnchorMember is a member HSM as the anchor records it.
type AnchorMember struct {
	ID      string `json:"hsm_id"`
	Signing []byte `json:"signing_public_key"` // DER SPKI, P-384
}

// Anchor is the domain state a node last adopted: its name, version and
// member HSMs with their signing keys. It is public but integrity-relevant.
type Anchor struct {
	Name    string         `json:"domain"`
	Version uint64         `json:"version"`
	Members []AnchorMember `json:"members"` // sorted by ID, no duplicates
}

// AnchorOf is the anchor of st.
func AnchorOf(st *domain.State) (*Anchor, error) {
	a := &Anchor{Name: st.Name, Version: st.Version}
	for _, m := range st.Members {
		der, err := x509.MarshalPKIXPublicKey(m.Signing)
		if err != nil {
			return nil, fmt.Errorf("node: anchor: %w", err)
		}
		a.Members = append(a.Members, AnchorMember{ID: m.ID, Signing: der})
	}
	return a, nil
}

// Member returns the anchored member id's signing key SPKI.
func (a *Anchor) Member(id string) ([]byte, bool) {
	i, ok := slices.BinarySearchFunc(a.Members, id, func(m AnchorMember, id string) int { return strings.Compare(m.ID, id) })
	if !ok {
		return nil, false
	}
	return a.Members[i].Signing, true
}

// Equal reports whether a and b record the same domain, version and members.
func (a *Anchor) Equal(b *Anchor) bool {
	return a.Name == b.Name && a.Version == b.Version && slices.EqualFunc(a.Members, b.Members, func(x, y AnchorMember) bool {
		return x.ID == y.ID && bytes.Equal(x.Signing, y.Signing)
	})
}

// Marshal encodes a.
func (a *Anchor) Marshal() ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeAnchor)
	wire.AddID(&b, a.Name)
	b.AddUint64(a.Version)
	b.AddUint8(uint8(len(a.Members)))
	for _, m := range a.Members {
		wire.AddID(&b, m.ID)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.Signing) })
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedAnchor, err)
	}
	return out, nil
}

// check enforces what the decoder enforces, so that Marshal never writes
// an anchor ParseAnchor would refuse.
func (a *Anchor) check() error {
	if !wire.ValidID(a.Name) {
		return fmt.Errorf("%w: invalid domain name", ErrMalformedAnchor)
	}
	if len(a.Members) < 1 || len(a.Members) > MaxAnchorMembers {
		return fmt.Errorf("%w: %d members", ErrMalformedAnchor, len(a.Members))
	}
	for i, m := range a.Members {
		if !wire.ValidID(m.ID) {
			return fmt.Errorf("%w: invalid member ID", ErrMalformedAnchor)
		}
		if i > 0 && m.ID <= a.Members[i-1].ID {
			return fmt.Errorf("%w: members not sorted by ID or repeated", ErrMalformedAnchor)
		}
		if err := checkSigningKey(m); err != nil {
			return err
		}
	}
	return nil
}

// checkSigningKey: a canonical DER SPKI of a P-384 ECDSA key whose HSM ID
// is m.ID.
func checkSigningKey(m AnchorMember) error {
	if len(m.Signing) == 0 || len(m.Signing) > maxSPKI {
		return fmt.Errorf("%w: signing key of %s: %d bytes", ErrMalformedAnchor, m.ID, len(m.Signing))
	}
	k, err := x509.ParsePKIXPublicKey(m.Signing)
	if err != nil {
		return fmt.Errorf("%w: signing key of %s: not an SPKI", ErrMalformedAnchor, m.ID)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return fmt.Errorf("%w: signing key of %s: not ECDSA P-384", ErrMalformedAnchor, m.ID)
	}
	if der, err := x509.MarshalPKIXPublicKey(pub); err != nil || !bytes.Equal(der, m.Signing) {
		return fmt.Errorf("%w: signing key of %s: not canonical", ErrMalformedAnchor, m.ID)
	}
	if wire.HSMID(pub) != m.ID {
		return fmt.Errorf("%w: %s is not the ID of its signing key", ErrMalformedAnchor, m.ID)
	}
	return nil
}

// ParseAnchor decodes an anchor, rejecting anything Marshal would not
// write: at most MaxAnchorSize bytes, 1 to 255 members sorted by ID without
// duplicates, each signing key a canonical P-384 SPKI whose HSM ID is the
// member's, no trailing bytes.
func ParseAnchor(in []byte) (*Anchor, error) {
	if len(in) > MaxAnchorSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformedAnchor, len(in))
	}
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeAnchor, ErrMalformedAnchor, ErrAnchorVersion); err != nil {
		return nil, err
	}
	a := &Anchor{}
	var n uint8
	if !wire.ReadID(&s, &a.Name) || !s.ReadUint64(&a.Version) || !s.ReadUint8(&n) {
		return nil, fmt.Errorf("%w: truncated", ErrMalformedAnchor)
	}
	for range n {
		var m AnchorMember
		var spki cryptobyte.String
		if !wire.ReadID(&s, &m.ID) || !s.ReadUint16LengthPrefixed(&spki) {
			return nil, fmt.Errorf("%w: truncated member", ErrMalformedAnchor)
		}
		m.Signing = bytes.Clone(spki)
		a.Members = append(a.Members, m)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing bytes", ErrMalformedAnchor)
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	return a, nil
}

// admits applies the anchor to a token offered to an HSM that holds no
// state: the token must be of the anchored domain, at its version or
// later (at its version, with the same members), and its exporter must be
// an anchored member with the same signing key.
func (a *Anchor) admits(p *domain.Parsed) error {
	st := p.State
	if st.Name != a.Name {
		return fmt.Errorf("%w: domain %q, anchored to %q", ErrAnchorRefused, st.Name, a.Name)
	}
	if st.Version < a.Version {
		return fmt.Errorf("%w: version %d is older than the anchored version %d", ErrAnchorRefused, st.Version, a.Version)
	}
	if st.Version == a.Version {
		same, err := AnchorOf(st)
		if err != nil {
			return err
		}
		if !same.Equal(a) {
			return fmt.Errorf("%w: version %d with other members than the anchored state", ErrAnchorRefused, st.Version)
		}
	}
	want, ok := a.Member(p.Token.Exporter)
	if !ok {
		return fmt.Errorf("%w: exporter %s is not a member of the anchored state (version %d)", ErrAnchorRefused, p.Token.Exporter, a.Version)
	}
	m, ok := st.Member(p.Token.Exporter)
	if !ok {
		return fmt.Errorf("%w: exporter %s is not a member of the token's state", ErrAnchorRefused, p.Token.Exporter)
	}
	got, err := x509.MarshalPKIXPublicKey(m.Signing)
	if err != nil || !bytes.Equal(got, want) {
		return fmt.Errorf("%w: exporter %s has another signing key than the anchored one", ErrAnchorRefused, p.Token.Exporter)
	}
	return nil
}

// readAnchor returns the token's anchor, or nil if it has none.
func readAnchor(tok *hsm.Token) (*Anchor, error) {
	raw, err := tok.ReadData(AnchorLabel)
	if errors.Is(err, hsm.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: reading the domain anchor: %w", err)
	}
	return ParseAnchor(raw)
}

// Anchor returns the domain anchor in the node's token, or nil if it has
// none.
func (n *Node) Anchor() (*Anchor, error) { return readAnchor(n.tok) }

// AnchorReset is what ResetAnchor removed; `trent hsm reset-anchor` prints
// it.
type AnchorReset struct {
	HSMID   string  `json:"hsm_id"`
	Removed bool    `json:"removed"`
	Anchor  *Anchor `json:"anchor,omitempty"` // the removed anchor, if it parsed
	// Malformed says why the removed object did not parse as an anchor;
	// SHA256 is its value's digest (hex), set whenever one was removed.
	Malformed string `json:"malformed,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
}

// ResetAnchor removes the domain anchor from the token of opts (Dir,
// Label, PIN): the node then takes the first domain token that lists it
// (as a freshly provisioned one does) and may create a new domain. It
// works on a malformed anchor too, which Open refuses. The node must not
// be serving meanwhile.
func ResetAnchor(opts Options) (*AnchorReset, error) {
	tok, err := openToken(&opts)
	if err != nil {
		return nil, err
	}
	defer tok.Close()
	id, err := tok.Identity()
	if err != nil {
		return nil, fmt.Errorf("node: %w (run trent hsm init first)", err)
	}
	res := &AnchorReset{HSMID: id.ID()}
	raw, err := tok.ReadData(AnchorLabel)
	switch {
	case errors.Is(err, hsm.ErrObjectNotFound):
		return res, nil
	case errors.Is(err, hsm.ErrObjectAmbiguous):
		res.Malformed = "several anchor objects"
	case err != nil:
		return nil, fmt.Errorf("node: reading the domain anchor: %w", err)
	default:
		sum := sha256.Sum256(raw)
		res.SHA256 = hex.EncodeToString(sum[:])
		if res.Anchor, err = ParseAnchor(raw); err != nil {
			res.Malformed = err.Error()
		}
	}
	if res.Removed, err = tok.DestroyData(AnchorLabel); err != nil {
		return nil, fmt.Errorf("node: removing the domain anchor: %w", err)
	}
	return res, nil
}

// Text is the human-readable form of r.
func (r *AnchorReset) Text() string {
	switch {
	case !r.Removed:
		return fmt.Sprintf("HSM %s: no domain anchor in the token; nothing removed\n", r.HSMID)
	case r.Anchor != nil:
		ids := make([]string, len(r.Anchor.Members))
		for i, m := range r.Anchor.Members {
			ids[i] = m.ID
		}
		return fmt.Sprintf("HSM %s: removed the domain anchor: domain %q, version %d, members %s\n",
			r.HSMID, r.Anchor.Name, r.Anchor.Version, strings.Join(ids, ", "))
	}
	return fmt.Sprintf("HSM %s: removed a malformed domain anchor (%s; sha256 %s)\n", r.HSMID, r.Malformed, r.SHA256)
}
