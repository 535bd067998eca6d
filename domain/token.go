package domain

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// Context labels of the domain token.
const (
	labelToken     = "trent/v1 domain token"
	labelTokenKeys = "trent/v1 domain token keys"
	labelTokenDKEK = "trent/v1 domain token dkek"
)

// DKSize is the size of a domain key.
const DKSize = 32

// Errors of tokens.
var (
	ErrTokenSignature = errors.New("domain: token signature does not verify")
	ErrTokenExporter  = errors.New("domain: token exporter is not a member")
	ErrTokenKeys      = errors.New("domain: token's domain keys do not open")
)

// Token is an exported domain token: the public state, the domain keys
// under a fresh DKEK, the DKEK wrapped for every member by one-pass C(1,2),
// the signed command that produced this version, and the exporting member
// HSM's signature over all of it.
type Token struct {
	State    []byte // an encoded State
	KeyNonce [12]byte
	Keys     []byte // AES-256-GCM(DKEK, id ‖ key for each of State.Keys)
	DKEK     []byte // a one-pass message
	Command  []byte // an encoded SignedCommand
	Exporter string
	Sig      []byte
}

func (t *Token) addUnsigned(b *cryptobyte.Builder) {
	wire.AddHeader(b, TypeToken)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.State) })
	b.AddBytes(t.KeyNonce[:])
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.Keys) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.DKEK) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.Command) })
	wire.AddID(b, t.Exporter)
}

// Marshal encodes the token.
func (t *Token) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	t.addUnsigned(&b)
	if len(t.Sig) < 8 || len(t.Sig) > 104 {
		b.SetError(errors.New("domain: token signature length out of range"))
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.Sig) })
	return b.Bytes()
}

func (t *Token) unsigned() ([]byte, error) {
	var b cryptobyte.Builder
	t.addUnsigned(&b)
	return b.Bytes()
}

// Parsed is a decoded token with its parts decoded too.
type Parsed struct {
	Token   *Token
	State   *State
	Command *quorum.SignedCommand
}

// ParseToken decodes a token strictly, with its state and signed command.
// It checks encodings only; Verify checks the exporter's signature.
func ParseToken(in []byte) (*Parsed, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeToken, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	t := &Token{}
	var state, keys, dkek, cmd, sig cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&state) || !s.CopyBytes(t.KeyNonce[:]) ||
		!s.ReadUint16LengthPrefixed(&keys) || !s.ReadUint24LengthPrefixed(&dkek) ||
		!s.ReadUint24LengthPrefixed(&cmd) || !wire.ReadID(&s, &t.Exporter) ||
		!s.ReadUint8LengthPrefixed(&sig) || len(sig) < 8 || len(sig) > 104 || !s.Empty() {
		return nil, malformed("token")
	}
	t.State, t.Keys, t.DKEK = append([]byte(nil), state...), append([]byte(nil), keys...), append([]byte(nil), dkek...)
	t.Command, t.Sig = append([]byte(nil), cmd...), append([]byte(nil), sig...)
	st, err := ParseState(t.State)
	if err != nil {
		return nil, err
	}
	if len(t.Keys) != len(st.Keys)*(len(KeyInfo{}.ID)+DKSize)+16 {
		return nil, malformed("token key set length")
	}
	if _, err := session.ParseOnePass(t.DKEK); err != nil {
		return nil, err
	}
	sc, _, err := quorum.ParseSignedCommand(t.Command)
	if err != nil {
		return nil, err
	}
	return &Parsed{Token: t, State: st, Command: sc}, nil
}

// Verify checks that the exporter is a member of signer's state (the state
// the exporter acted on: the previous version for a change, the token's own
// for genesis) and that its signature covers the token.
func (p *Parsed) Verify(signers *State) error {
	m, ok := signers.Member(p.Token.Exporter)
	if !ok {
		return fmt.Errorf("%w: %q", ErrTokenExporter, p.Token.Exporter)
	}
	unsigned, err := p.Token.unsigned()
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(m.Signing, labelledHash(labelToken, unsigned), p.Token.Sig) {
		return ErrTokenSignature
	}
	return nil
}

func labelledHash(label string, parts ...[]byte) []byte { return wire.LabelledHash(label, parts...) }

func keysAAD(state []byte) []byte {
	return append(append([]byte(labelTokenKeys), 0), labelledHash(labelTokenKeys, state)...)
}

func dkekContext(state []byte) []byte {
	return append(append([]byte(labelTokenDKEK), 0), labelledHash(labelTokenDKEK, state)...)
}

// Exporter is what an HSM lends SealToken: its ID, its token-held signing
// key, a maker of ephemeral keys in its token, and its token RNG.
type Exporter struct {
	ID           string
	Signer       crypto.Signer
	NewEphemeral func() (session.EphemeralKey, error)
	Rand         io.Reader
}

// SealToken builds the token for st: keys holds the value of each of
// st.Keys, in order; sc is the signed command that produced st. The DKEK is
// drawn from the exporter's RNG, used, wrapped for every member of st and
// cleared.
func SealToken(st *State, sc *quorum.SignedCommand, keys [][]byte, ex Exporter) ([]byte, error) {
	if len(keys) != len(st.Keys) {
		return nil, errors.New("domain: one key value per domain key record")
	}
	state, err := st.Marshal()
	if err != nil {
		return nil, err
	}
	cmd, err := sc.Marshal()
	if err != nil {
		return nil, err
	}
	rnd := make([]byte, DKSize+12)
	defer clear(rnd)
	if _, err := io.ReadFull(ex.Rand, rnd); err != nil {
		return nil, fmt.Errorf("domain: random: %w", err)
	}
	dkek, nonce := rnd[:DKSize], rnd[DKSize:]
	var set []byte
	defer func() { clear(set) }()
	for i, k := range st.Keys {
		if len(keys[i]) != DKSize {
			return nil, errors.New("domain: domain key of the wrong size")
		}
		set = append(set, k.ID[:]...)
		set = append(set, keys[i]...)
	}
	t := &Token{State: state, Command: cmd, Exporter: ex.ID}
	copy(t.KeyNonce[:], nonce)
	t.Keys = aead(dkek).Seal(nil, nonce, set, keysAAD(state))

	// The DKEK travels in the hybrid one-pass (ML-KEM-1024 + P-384)
	// whenever every member has published an ML-KEM key, which a domain
	// requiring hybrid key establishment guarantees; else classically.
	var rs []session.Recipient
	hybrid := true
	for _, m := range st.Members {
		rs = append(rs, session.Recipient{ID: m.ID, Agreement: m.Agreement, KEM: m.KEM})
		hybrid = hybrid && m.KEM != nil
	}
	eph, err := ex.NewEphemeral()
	if err != nil {
		return nil, fmt.Errorf("domain: ephemeral key: %w", err)
	}
	defer eph.Destroy()
	if hybrid {
		t.DKEK, err = session.SealOnePassHybrid(ex.ID, ex.Signer, eph, ex.Rand, dkekContext(state), dkek, rs)
	} else {
		t.DKEK, err = session.SealOnePass(ex.ID, ex.Signer, eph, dkekContext(state), dkek, rs)
	}
	if err != nil {
		return nil, err
	}
	if err := t.Sign(ex.Signer); err != nil {
		return nil, err
	}
	return t.Marshal()
}

// Sign (re)signs the token with an exporter's signing key.
func (t *Token) Sign(signer crypto.Signer) error {
	unsigned, err := t.unsigned()
	if err != nil {
		return err
	}
	if t.Sig, err = signer.Sign(nil, labelledHash(labelToken, unsigned), crypto.SHA384); err != nil {
		return fmt.Errorf("domain: sign token: %w", err)
	}
	return nil
}

// OpenKeys unwraps the token's DKEK with a member's token-held agreement
// key (the sender must be a member of senders) and returns the domain key
// values in the order of the token state's Keys. The caller imports and
// clears them.
func (p *Parsed) OpenKeys(senders *State, memberID string, key session.AgreementKey) ([][]byte, error) {
	return p.OpenKeysHybrid(senders, memberID, key, nil)
}

// OpenKeysHybrid is OpenKeys with the member's ML-KEM-1024 key too, which
// a hybrid DKEK message needs. A token whose state requires hybrid key
// establishment must carry its DKEK in the hybrid form
// (session.ErrHybridRequired otherwise).
func (p *Parsed) OpenKeysHybrid(senders *State, memberID string, key session.AgreementKey, dk *mlkem1024.PrivateKey) ([][]byte, error) {
	dir, err := senders.Directory()
	if err != nil {
		return nil, err
	}
	dkek, ctx, hybrid, err := session.OpenOnePassHybrid(p.Token.DKEK, dir, memberID, key, dk)
	if err != nil {
		return nil, err
	}
	if p.State.HybridRequired && !hybrid {
		clear(dkek)
		return nil, fmt.Errorf("%w: the token's DKEK travels classically", session.ErrHybridRequired)
	}
	defer clear(dkek)
	if string(ctx) != string(dkekContext(p.Token.State)) || len(dkek) != DKSize {
		return nil, ErrTokenKeys
	}
	set, err := aead(dkek).Open(nil, p.Token.KeyNonce[:], p.Token.Keys, keysAAD(p.Token.State))
	if err != nil {
		return nil, ErrTokenKeys
	}
	defer clear(set)
	var out [][]byte
	for i, k := range p.State.Keys {
		rec := set[i*(len(k.ID)+DKSize):]
		if string(rec[:len(k.ID)]) != string(k.ID[:]) {
			return nil, ErrTokenKeys
		}
		out = append(out, append([]byte(nil), rec[len(k.ID):len(k.ID)+DKSize]...))
	}
	return out, nil
}

func aead(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic("domain: " + err.Error())
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic("domain: " + err.Error())
	}
	return a
}
