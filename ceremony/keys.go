package ceremony

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/internal/strictjson"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/tokenstore"
)

// PEM block types of operator key files.
const (
	PEMTypeECDSA = "PRIVATE KEY"           // PKCS#8, ECDSA P-384
	PEMTypeMLDSA = "ML-DSA-87 PRIVATE KEY" // the 32-byte FIPS 204 seed
)

// PKCS11Prefix starts a key spec naming a key in a PKCS#11 token:
// "pkcs11:DIR:LABEL".
const PKCS11Prefix = "pkcs11:"

// Limits on the files read here.
const (
	maxKeyFile   = 64 << 10
	maxEntryFile = 16 << 10
	maxLabelLen  = 32 // PKCS#11 token labels
)

// ParseAlg is the inverse of quorum.Alg.String.
func ParseAlg(name string) (quorum.Alg, error) {
	for _, a := range []quorum.Alg{quorum.ECDSAP384, quorum.MLDSA87} {
		if a.String() == name {
			return a, nil
		}
	}
	return 0, fmt.Errorf("ceremony: unknown algorithm %q (want %q or %q)", name, quorum.ECDSAP384, quorum.MLDSA87)
}

// Entry is an operator's public entry: its ID and public key. It is what
// keygen prints and what a proposal reads to add an operator. Its JSON is
// {"id", "alg", "public_key"}, the key in base64 (quorum.PublicKey.Marshal:
// DER SubjectPublicKeyInfo for ECDSA P-384, the 2592-byte FIPS 204 encoding
// for ML-DSA-87). A role is given when the operator joins a domain.
type Entry struct {
	ID  string
	Key quorum.PublicKey
}

type entryJSON struct {
	ID        string `json:"id"`
	Alg       string `json:"alg"`
	PublicKey []byte `json:"public_key"`
}

// NewEntry checks id and makes an entry.
func NewEntry(id string, k quorum.PublicKey) (Entry, error) {
	if !wire.ValidID(id) {
		return Entry{}, fmt.Errorf("ceremony: invalid operator ID %q (1 to %d printable characters, no space)", id, wire.MaxIDLen)
	}
	return Entry{ID: id, Key: k}, nil
}

// MarshalJSON encodes the entry.
func (e Entry) MarshalJSON() ([]byte, error) {
	if !wire.ValidID(e.ID) {
		return nil, fmt.Errorf("ceremony: invalid operator ID %q", e.ID)
	}
	k, err := e.Key.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	return json.Marshal(entryJSON{ID: e.ID, Alg: e.Key.Alg().String(), PublicKey: k})
}

// ParseEntry decodes an entry strictly.
func ParseEntry(data []byte) (Entry, error) {
	var j entryJSON
	if err := strictjson.Unmarshal(data, maxEntryFile, &j); err != nil {
		return Entry{}, fmt.Errorf("ceremony: operator entry: %w", err)
	}
	if !wire.ValidID(j.ID) {
		return Entry{}, fmt.Errorf("ceremony: operator entry: invalid id %q", j.ID)
	}
	alg, err := ParseAlg(j.Alg)
	if err != nil {
		return Entry{}, fmt.Errorf("ceremony: operator entry %q: %w", j.ID, err)
	}
	k, err := quorum.ParsePublicKey(alg, j.PublicKey)
	if err != nil {
		return Entry{}, fmt.Errorf("ceremony: operator entry %q: %w", j.ID, err)
	}
	if again, err := k.Marshal(); err != nil || !bytes.Equal(again, j.PublicKey) {
		return Entry{}, fmt.Errorf("ceremony: operator entry %q: public key not in canonical encoding", j.ID)
	}
	return Entry{ID: j.ID, Key: k}, nil
}

// ReadEntry reads an entry from a file.
func ReadEntry(path string) (Entry, error) {
	data, err := readFile(path, maxEntryFile)
	if err != nil {
		return Entry{}, err
	}
	e, err := ParseEntry(data)
	if err != nil {
		return Entry{}, fmt.Errorf("%w (%s)", err, path)
	}
	return e, nil
}

// Operator gives the entry a role.
func (e Entry) Operator(role string) (quorum.Operator, error) {
	if !wire.ValidID(role) {
		return quorum.Operator{}, fmt.Errorf("ceremony: invalid role %q", role)
	}
	if role == quorum.RoleServiceHost && e.Key.ECDSA() == nil {
		return quorum.Operator{}, fmt.Errorf("ceremony: %q: a %s needs an ECDSA P-384 key (sessions are ECDSA)", e.ID, role)
	}
	return quorum.Operator{ID: e.ID, Role: role, Key: e.Key}, nil
}

// Key is an operator's private key: in a file (ECDSA P-384 or ML-DSA-87)
// or in a PKCS#11 token (ECDSA P-384). Close releases the token.
type Key struct {
	pub quorum.PublicKey
	ec  crypto.Signer
	ml  *mldsa87.PrivateKey
	tok *hsm.Token
}

// Public is the key's public half.
func (k *Key) Public() quorum.PublicKey { return k.pub }

// Sign signs an encoded command as signer.
func (k *Key) Sign(signer string, command []byte) (quorum.Signature, error) {
	switch {
	case k.ml != nil:
		return quorum.SignMLDSA(signer, k.ml, command, false)
	case k.ec != nil:
		return quorum.SignECDSA(signer, k.ec, command)
	}
	return quorum.Signature{}, errors.New("ceremony: key is closed")
}

// ECDSASigner returns the key as a crypto.Signer if it is an ECDSA P-384
// key (a service host's identity key must be); nil for ML-DSA-87.
func (k *Key) ECDSASigner() crypto.Signer { return k.ec }

// Close forgets the key and closes its token, if any.
func (k *Key) Close() error {
	k.ec, k.ml = nil, nil
	if k.tok != nil {
		t := k.tok
		k.tok = nil
		return t.Close()
	}
	return nil
}

// OpenKey opens the key named by spec: a PEM file, or "pkcs11:DIR:LABEL"
// for the signing key of the token labelled LABEL in the SoftHSM data dir
// DIR. pin is the token's user PIN; if empty, DIR/user.pin is read.
func OpenKey(spec, pin string) (*Key, error) {
	if rest, ok := strings.CutPrefix(spec, PKCS11Prefix); ok {
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 || i == len(rest)-1 {
			return nil, fmt.Errorf("ceremony: key %q: want %sDIR:LABEL", spec, PKCS11Prefix)
		}
		return openTokenKey(rest[:i], rest[i+1:], pin)
	}
	fi, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("ceremony: key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("ceremony: key file %s has mode %#o: others may read it; chmod 600 it", spec, fi.Mode().Perm())
	}
	data, err := readFile(spec, maxKeyFile)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, spec)
	}
	return k, nil
}

// ParsePrivateKey decodes a key file: exactly one PEM block without
// headers, of type PEMTypeECDSA (PKCS#8, P-384) or PEMTypeMLDSA (a 32-byte
// seed), and nothing else but white space.
func ParsePrivateKey(data []byte) (*Key, error) {
	trimmed := bytes.TrimSpace(data)
	block, rest := pem.Decode(trimmed)
	if block == nil || !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return nil, errors.New("ceremony: key file is not a PEM block")
	}
	defer clear(block.Bytes)
	if len(rest) != 0 {
		return nil, errors.New("ceremony: key file has data after its PEM block")
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("ceremony: key file has PEM headers (encrypted keys are not supported)")
	}
	switch block.Type {
	case PEMTypeECDSA:
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("ceremony: key file: not a PKCS#8 private key")
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("ceremony: key file: a %s key, operator keys are ECDSA P-384 or ML-DSA-87", keyKind(k))
		}
		if ek.Curve != elliptic.P384() {
			return nil, fmt.Errorf("ceremony: key file: ECDSA on %s, operator keys are P-384", ek.Curve.Params().Name)
		}
		pub, err := quorum.NewECDSAKey(&ek.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("ceremony: %w", err)
		}
		return &Key{pub: pub, ec: ek}, nil
	case PEMTypeMLDSA:
		if len(block.Bytes) != mldsa87.SeedSize {
			return nil, fmt.Errorf("ceremony: key file: an ML-DSA-87 seed is %d bytes", mldsa87.SeedSize)
		}
		var seed [mldsa87.SeedSize]byte
		copy(seed[:], block.Bytes)
		defer clear(seed[:])
		pub, priv := mldsa87.NewKeyFromSeed(&seed)
		pk, err := quorum.NewMLDSAKey(pub)
		if err != nil {
			return nil, fmt.Errorf("ceremony: %w", err)
		}
		return &Key{pub: pk, ml: priv}, nil
	}
	return nil, fmt.Errorf("ceremony: key file: PEM type %q, want %q or %q", block.Type, PEMTypeECDSA, PEMTypeMLDSA)
}

// keyKind names a parsed key's type ("rsa.PrivateKey"), never its value.
func keyKind(k any) string { return strings.TrimPrefix(fmt.Sprintf("%T", k), "*") }

// GenerateKeyFile makes a key of algorithm alg for operator id and writes
// it to path with mode 0600, failing if path exists. It returns the
// operator's public entry.
func GenerateKeyFile(path, id string, alg quorum.Alg) (Entry, error) {
	if _, err := NewEntry(id, quorum.PublicKey{}); err != nil {
		return Entry{}, err
	}
	pub, err := generateKeyFile(path, alg)
	if err != nil {
		return Entry{}, err
	}
	return Entry{ID: id, Key: pub}, nil
}

func generateKeyFile(path string, alg quorum.Alg) (quorum.PublicKey, error) {
	var block pem.Block
	var pub quorum.PublicKey
	var err error
	switch alg {
	case quorum.ECDSAP384:
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			return pub, fmt.Errorf("ceremony: %w", err)
		}
		if block.Bytes, err = x509.MarshalPKCS8PrivateKey(k); err != nil {
			return pub, fmt.Errorf("ceremony: %w", err)
		}
		block.Type = PEMTypeECDSA
		pub, err = quorum.NewECDSAKey(&k.PublicKey)
	case quorum.MLDSA87:
		var seed [mldsa87.SeedSize]byte
		defer clear(seed[:])
		if _, err = io.ReadFull(rand.Reader, seed[:]); err != nil {
			return pub, fmt.Errorf("ceremony: %w", err)
		}
		p, _ := mldsa87.NewKeyFromSeed(&seed)
		block.Type, block.Bytes = PEMTypeMLDSA, bytes.Clone(seed[:])
		pub, err = quorum.NewMLDSAKey(p)
	default:
		return pub, fmt.Errorf("ceremony: unknown algorithm %v", alg)
	}
	defer clear(block.Bytes)
	if err != nil {
		return pub, fmt.Errorf("ceremony: %w", err)
	}
	out := pem.EncodeToMemory(&block)
	defer clear(out)
	if err := WriteNewFile(path, out, 0o600); err != nil {
		return quorum.PublicKey{}, err
	}
	return pub, nil
}

// GenerateTokenKey provisions a token labelled id in the data dir dir
// (node.Init: the token, if absent, and its ECDSA P-384 signing key; a
// SoftHSM2 data dir, or NSS's softoken in a data dir of trent hsm init
// --module nss)
// and returns operator id's public entry; created is false when the token
// already held a key, which is then reused, never replaced. pin is the
// user PIN; if empty, dir/user.pin is read, or generated.
func GenerateTokenKey(dir, id, pin string) (e Entry, created bool, err error) {
	if err := checkLabel(id); err != nil {
		return e, false, err
	}
	res, err := node.Init(node.InitOptions{Dir: dir, Label: id, PIN: pin})
	if err != nil {
		return e, false, fmt.Errorf("ceremony: token: %w", err)
	}
	k, err := quorum.ParsePublicKey(quorum.ECDSAP384, res.SigningPublicKey)
	if err != nil {
		return e, false, fmt.Errorf("ceremony: token: %w", err)
	}
	return Entry{ID: id, Key: k}, res.IdentityCreated, nil
}

func checkLabel(label string) error {
	if !wire.ValidID(label) || len(label) > maxLabelLen || strings.ContainsRune(label, ':') {
		return fmt.Errorf("ceremony: token label %q: 1 to %d printable characters, no space or ':'", label, maxLabelLen)
	}
	return nil
}

func openTokenKey(dir, label, pin string) (*Key, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	// The data dir's module (SoftHSM2, or NSS's softoken), from its files.
	store, err := tokenstore.Open("", dir, "")
	if err != nil {
		return nil, fmt.Errorf("ceremony: %s is not a token data dir (run trent operator keygen --pkcs11-dir first): %w", dir, err)
	}
	if pin == "" {
		var err error
		if pin, err = tokenstore.ReadPINFile(filepath.Join(dir, node.UserPINFile)); err != nil {
			return nil, fmt.Errorf("ceremony: no PIN given: %w", err)
		}
	}
	cfg, err := store.TokenConfig(label, pin)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	tok, err := hsm.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("ceremony: token %q: %w", label, err)
	}
	id, err := tok.Identity()
	if err != nil {
		tok.Close()
		return nil, fmt.Errorf("ceremony: token %q: %w", label, err)
	}
	pub, err := quorum.NewECDSAKey(id.Signing.PublicKey())
	if err != nil {
		tok.Close()
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	return &Key{pub: pub, ec: id.Signing, tok: tok}, nil
}

// readFile reads a file of at most limit bytes.
func readFile(path string, limit int64) ([]byte, error) {
	data, err := boundedio.ReadFile(path, limit)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	return data, nil
}

// WriteNewFile creates path with perm and writes data, failing if path exists.
func WriteNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("ceremony: %s exists; refusing to overwrite it", path)
		}
		return fmt.Errorf("ceremony: %w", err)
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return fmt.Errorf("ceremony: %w", err)
	}
	return nil
}

// WriteFileAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over path. An existing file's mode is
// kept; a new file gets perm.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Chmod(perm), f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ceremony: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ceremony: %w", err)
	}
	return nil
}
