package ceremony

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/internal/strictjson"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
)

// MaxFile bounds a command file: a signed command is at most about 220 KB
// (64 KiB of parameters, 32 ML-DSA-87 signatures), 300 KB in base64.
const MaxFile = 1 << 20

// File is a command file (cmd.json): a signed command while operators
// gather signatures. Its JSON is {"signed_command": base64 of
// quorum.SignedCommand.Marshal, "summary": Summary}; the summary is
// recomputed whenever the file is written and ignored when it is read.
type File struct {
	Signed  *quorum.SignedCommand
	Command *quorum.Command // decoded from Signed.Command
	Change  *Change         // decoded from Command.Params

	// Edited reports, for a file read, that its summary was not what its
	// signed command gives: someone edited it, or it is missing. The
	// summary is ignored either way.
	Edited bool
}

// Summary is the human-readable part of a command file, derived from the
// signed command.
type Summary struct {
	Type         string          `json:"type"`
	Domain       string          `json:"domain"`
	StateVersion uint64          `json:"state_version"`
	Change       string          `json:"change"`
	Fingerprint  string          `json:"fingerprint"`
	IssuedAt     string          `json:"issued_at"`
	ExpiresAt    string          `json:"expires_at"`
	Signers      []SignerSummary `json:"signers"`
}

// SignerSummary is one signature of a command: who, and with what.
type SignerSummary struct {
	ID  string `json:"id"`
	Alg string `json:"alg"`
}

type fileJSON struct {
	SignedCommand string   `json:"signed_command"`
	Summary       *Summary `json:"summary"`
}

// NewFile makes a command file of a signed command, decoding its command
// and parameters strictly.
func NewFile(sc *quorum.SignedCommand) (*File, error) {
	raw, err := sc.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	return fromBytes(raw)
}

func fromBytes(raw []byte) (*File, error) {
	sc, c, err := quorum.ParseSignedCommand(raw)
	if err != nil {
		return nil, fmt.Errorf("ceremony: signed command: %w", err)
	}
	ch, err := DecodeChange(c)
	if err != nil {
		return nil, err
	}
	return &File{Signed: sc, Command: c, Change: ch}, nil
}

// ParseFile decodes a command file strictly: no duplicate keys, no unknown
// fields, signed_command in padded standard base64 holding a signed command
// whose command and parameters decode.
func ParseFile(data []byte) (*File, error) {
	var j fileJSON
	if err := strictjson.Unmarshal(data, MaxFile, &j); err != nil {
		return nil, fmt.Errorf("ceremony: command file: %w", err)
	}
	if j.SignedCommand == "" {
		return nil, errors.New("ceremony: command file: no signed_command")
	}
	// Strict() still skips line breaks; a canonical file has none.
	raw, err := base64.StdEncoding.Strict().DecodeString(j.SignedCommand)
	if err != nil || strings.ContainsAny(j.SignedCommand, "\r\n") {
		return nil, errors.New("ceremony: command file: signed_command is not base64")
	}
	f, err := fromBytes(raw)
	if err != nil {
		return nil, err
	}
	f.Edited = j.Summary == nil || !reflect.DeepEqual(*j.Summary, f.Summary())
	return f, nil
}

// ReadFile reads a command file.
func ReadFile(path string) (*File, error) {
	data, err := readFile(path, MaxFile)
	if err != nil {
		return nil, err
	}
	f, err := ParseFile(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return f, nil
}

// Marshal encodes the file, with its summary recomputed.
func (f *File) Marshal() ([]byte, error) {
	raw, err := f.Signed.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	s := f.Summary()
	out, err := json.MarshalIndent(fileJSON{SignedCommand: base64.StdEncoding.EncodeToString(raw), Summary: &s}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	return append(out, '\n'), nil
}

// Fingerprint identifies the encoded command (the bytes operators sign):
// "sha256:" and the first 16 bytes of its SHA-256, in hex. Operators
// compare it out of band before signing.
func (f *File) Fingerprint() string {
	sum := sha256.Sum256(f.Signed.Command)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// Summary describes the command.
func (f *File) Summary() Summary {
	c := f.Command
	s := Summary{
		Type: c.Type.String(), Domain: c.Domain, StateVersion: c.StateVersion,
		Change: Describe(f.Change), Fingerprint: f.Fingerprint(),
		IssuedAt: stamp(c.IssuedAt), ExpiresAt: stamp(c.ExpiresAt),
		Signers: []SignerSummary{},
	}
	for _, sig := range f.Signed.Signatures {
		s.Signers = append(s.Signers, SignerSummary{ID: sig.Signer, Alg: sig.Alg.String()})
	}
	return s
}

func stamp(unix uint64) string {
	if unix > 1<<62 {
		return fmt.Sprintf("@%d", unix)
	}
	return time.Unix(int64(unix), 0).UTC().Format(time.RFC3339)
}

// Text is the summary for people, one field per line.
func (s Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on domain %q at state version %d\n", s.Type, s.Domain, s.StateVersion)
	fmt.Fprintf(&b, "  change:      %s\n", s.Change)
	fmt.Fprintf(&b, "  command:     %s\n", s.Fingerprint)
	fmt.Fprintf(&b, "  issued:      %s\n", s.IssuedAt)
	fmt.Fprintf(&b, "  expires:     %s\n", s.ExpiresAt)
	var sigs []string
	for _, x := range s.Signers {
		sigs = append(sigs, fmt.Sprintf("%s (%s)", x.ID, x.Alg))
	}
	if len(sigs) == 0 {
		sigs = []string{"none"}
	}
	fmt.Fprintf(&b, "  signatures:  %s\n", strings.Join(sigs, ", "))
	return b.String()
}

// quorumState returns the operators and rules a command is checked against:
// those of the state it creates for CreateDomain (cur must be nil), else
// those of cur (which must be given), as a quorum.State.
func (f *File) quorumState(cur *domain.State) (*quorum.State, error) {
	if f.Command.Type == quorum.CreateDomain {
		if cur != nil {
			return nil, errors.New("ceremony: CreateDomain is checked against the state it creates; give no domain status")
		}
		g := f.Change.Genesis
		return &quorum.State{Domain: f.Command.Domain, Version: 0, Operators: g.Operators, Rules: g.Rules}, nil
	}
	if cur == nil {
		return nil, fmt.Errorf("ceremony: %v needs the domain's current status (its latest token)", f.Command.Type)
	}
	return cur.Quorum(), nil
}

// Sign adds signer's signature made with k, replacing any earlier one of
// signer's. It refuses an expired command, and a signer that is not an
// operator holding k's public key: for CreateDomain, in the state it
// creates; otherwise in cur, if given (nil skips that check). The new
// signature is verified before it is added.
func (f *File) Sign(signer string, k *Key, cur *domain.State, now time.Time) error {
	c := f.Command
	if !wire.ValidID(signer) {
		return fmt.Errorf("ceremony: invalid signer ID %q", signer)
	}
	if now.Unix() >= int64(c.ExpiresAt) {
		return fmt.Errorf("ceremony: the command expired at %s; propose it again", stamp(c.ExpiresAt))
	}
	if c.Type == quorum.CreateDomain || cur != nil {
		st, err := f.quorumState(cur)
		if err != nil {
			return err
		}
		if st.Domain != c.Domain || st.Version != c.StateVersion {
			return fmt.Errorf("ceremony: the command is for domain %q at version %d, the status is %q at version %d",
				c.Domain, c.StateVersion, st.Domain, st.Version)
		}
		i := slices.IndexFunc(st.Operators, func(o quorum.Operator) bool { return o.ID == signer })
		if i < 0 {
			return fmt.Errorf("ceremony: %q is not an operator of domain %q", signer, c.Domain)
		}
		if !st.Operators[i].Key.Equal(k.Public()) {
			return fmt.Errorf("ceremony: the key is not the one domain %q lists for operator %q (%s)",
				c.Domain, signer, KeyFingerprint(st.Operators[i].Key))
		}
	}
	sig, err := k.Sign(signer, f.Signed.Command)
	if err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	// Check the signature as an HSM will: quorum.Evaluate with the signer
	// as the only operator of a one-signature rule.
	one := &quorum.State{Domain: c.Domain, Version: c.StateVersion,
		Operators: []quorum.Operator{{ID: signer, Role: "signer", Key: k.Public()}},
		Rules:     quorum.Rules{c.Type: {{{Role: "signer", N: 1}}}}}
	if res := quorum.Evaluate(one, f.Signed.Command, []quorum.Signature{sig}, now); res.Outcome != quorum.Satisfied {
		return fmt.Errorf("ceremony: the new signature does not check: %v", res)
	}
	if err := f.Signed.Add(sig); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	return nil
}

// Unsign removes signer's signature: a signature that does not verify, or
// from someone who is not an operator, rejects the whole command, and
// removing it lets the ceremony go on.
func (f *File) Unsign(signer string) error {
	n := len(f.Signed.Signatures)
	f.Signed.Signatures = slices.DeleteFunc(f.Signed.Signatures, func(s quorum.Signature) bool { return s.Signer == signer })
	if len(f.Signed.Signatures) == n {
		return fmt.Errorf("ceremony: the command has no signature of %q", signer)
	}
	return nil
}
