package enclave

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/trentkms/trent/nitro"
)

// The kmstool commands, as kmstool_enclave_cli has them.
const (
	CmdDecrypt   = "decrypt"
	CmdGenKey    = "genkey"
	CmdGenRandom = "genrandom"
)

// DefaultRegion is kmstool_enclave_cli's default region.
const DefaultRegion = "us-east-1"

// MaxRandom is GenerateRandom's NumberOfBytes limit.
const MaxRandom = 1024

// Command is a parsed kmstool_enclave_cli command line.
type Command struct {
	Name string
	// Region is --region ("" if not given).
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken are the --aws-*
	// flags; empty when not given.
	AccessKeyID, SecretAccessKey, SessionToken string
	// ProxyPort is --proxy-port: accepted for compatibility and unused,
	// the proxy being the enclave's --proxy address.
	ProxyPort uint
	// decrypt
	Ciphertext          []byte
	KeyID               string
	EncryptionAlgorithm string
	// genkey
	KeySpec types.DataKeySpec
	// genrandom
	Length int
}

// ParseCommand reads a kmstool_enclave_cli command line: decrypt,
// genkey or genrandom and their flags (either - or -- before a name).
func ParseCommand(args []string) (*Command, error) {
	if len(args) == 0 {
		return nil, errors.New("enclave: no kmstool command (decrypt, genkey or genrandom)")
	}
	c := &Command{Name: args[0]}
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Region, "region", "", "AWS region to use for KMS")
	fs.UintVar(&c.ProxyPort, "proxy-port", 8000, "vsock port of the proxy (unused: the enclave's --proxy)")
	fs.StringVar(&c.AccessKeyID, "aws-access-key-id", "", "AWS access key ID")
	fs.StringVar(&c.SecretAccessKey, "aws-secret-access-key", "", "AWS secret access key")
	fs.StringVar(&c.SessionToken, "aws-session-token", "", "session token of the access key ID")
	var ciphertext, keySpec string
	switch c.Name {
	case CmdDecrypt:
		fs.StringVar(&ciphertext, "ciphertext", "", "base64 ciphertext to decrypt")
		fs.StringVar(&c.KeyID, "key-id", "", "the KMS key (optional for symmetric keys)")
		fs.StringVar(&c.EncryptionAlgorithm, "encryption-algorithm", "", "required with --key-id")
	case CmdGenKey:
		fs.StringVar(&c.KeyID, "key-id", "", "the KMS key")
		fs.StringVar(&keySpec, "key-spec", "", "AES-256 or AES-128")
	case CmdGenRandom:
		fs.IntVar(&c.Length, "length", 0, "number of random bytes")
	default:
		return nil, fmt.Errorf("enclave: unknown kmstool command %q (decrypt, genkey or genrandom)", c.Name)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return nil, fmt.Errorf("enclave: %s: %w", c.Name, err)
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("enclave: %s: unexpected argument %q", c.Name, fs.Arg(0))
	}
	switch c.Name {
	case CmdDecrypt:
		if ciphertext == "" {
			return nil, errors.New("enclave: decrypt: --ciphertext must be set")
		}
		b, err := base64.StdEncoding.DecodeString(ciphertext)
		if err != nil || len(b) == 0 {
			return nil, errors.New("enclave: decrypt: --ciphertext is not base64")
		}
		c.Ciphertext = b
		if c.KeyID != "" && c.EncryptionAlgorithm == "" {
			return nil, errors.New("enclave: decrypt: --encryption-algorithm must be set with --key-id")
		}
	case CmdGenKey:
		if c.KeyID == "" {
			return nil, errors.New("enclave: genkey: --key-id must be set")
		}
		switch keySpec {
		case "AES-256":
			c.KeySpec = types.DataKeySpecAes256
		case "AES-128":
			c.KeySpec = types.DataKeySpecAes128
		default:
			return nil, errors.New("enclave: genkey: --key-spec must be AES-256 or AES-128")
		}
	case CmdGenRandom:
		if c.Length < 1 || c.Length > MaxRandom {
			return nil, fmt.Errorf("enclave: genrandom: --length must be 1 to %d", MaxRandom)
		}
	}
	return c, nil
}

// ResolveCredentials fills the credentials the command does not give
// from getenv (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN), all three from one source: the flags if
// --aws-access-key-id is given, else the environment.
func (c *Command) ResolveCredentials(getenv func(string) string) error {
	if c.AccessKeyID == "" {
		c.AccessKeyID, c.SecretAccessKey, c.SessionToken = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN")
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return fmt.Errorf("enclave: %s: no credentials: give --aws-access-key-id and --aws-secret-access-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", c.Name)
	}
	return nil
}

// HasCredentialFlags reports whether a kmstool command line gives its
// own access key (then the enclave gets no AWS_* variables).
func HasCredentialFlags(args []string) bool {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "aws-access-key-id" {
			return true
		}
	}
	return false
}

// execute runs c with the enclave's client and key and writes kmstool's
// output lines to w.
func (e *Enclave) execute(ctx context.Context, c *Command, w io.Writer) error {
	rcpt := &types.RecipientInfo{AttestationDocument: e.doc, KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256}
	switch c.Name {
	case CmdDecrypt:
		in := &kms.DecryptInput{CiphertextBlob: c.Ciphertext, Recipient: rcpt}
		if c.KeyID != "" {
			in.KeyId = aws.String(c.KeyID)
			in.EncryptionAlgorithm = types.EncryptionAlgorithmSpec(c.EncryptionAlgorithm)
		}
		out, err := e.client.Decrypt(ctx, in)
		if err != nil {
			return apiError(c.Name, err)
		}
		pt, err := e.open(out.Plaintext, out.CiphertextForRecipient)
		if err != nil {
			return fmt.Errorf("enclave: decrypt: %w", err)
		}
		defer clear(pt)
		return printLine(w, "PLAINTEXT", pt)
	case CmdGenKey:
		out, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(c.KeyID), KeySpec: c.KeySpec, Recipient: rcpt})
		if err != nil {
			return apiError(c.Name, err)
		}
		pt, err := e.open(out.Plaintext, out.CiphertextForRecipient)
		if err != nil {
			return fmt.Errorf("enclave: genkey: %w", err)
		}
		defer clear(pt)
		if want := map[types.DataKeySpec]int{types.DataKeySpecAes256: 32, types.DataKeySpecAes128: 16}[c.KeySpec]; len(pt) != want || len(out.CiphertextBlob) == 0 {
			return fmt.Errorf("enclave: genkey: KMS returned a %d-byte key for %s", len(pt), c.KeySpec)
		}
		if err := printLine(w, "CIPHERTEXT", out.CiphertextBlob); err != nil {
			return err
		}
		return printLine(w, "PLAINTEXT", pt)
	case CmdGenRandom:
		out, err := e.client.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(int32(c.Length)), Recipient: rcpt})
		if err != nil {
			return apiError(c.Name, err)
		}
		pt, err := e.open(out.Plaintext, out.CiphertextForRecipient)
		if err != nil {
			return fmt.Errorf("enclave: genrandom: %w", err)
		}
		defer clear(pt)
		if len(pt) != c.Length {
			return fmt.Errorf("enclave: genrandom: KMS returned %d bytes, not %d", len(pt), c.Length)
		}
		return printLine(w, "PLAINTEXT", pt)
	}
	return fmt.Errorf("enclave: unknown kmstool command %q", c.Name)
}

// open reads a CiphertextForRecipient with the enclave's key, after
// checking that KMS sent no plaintext beside it and sealed it to this
// enclave's key.
func (e *Enclave) open(plaintext, cms []byte) ([]byte, error) {
	if len(plaintext) != 0 {
		return nil, errors.New("KMS answered a Recipient request with a plaintext")
	}
	if len(cms) == 0 {
		return nil, errors.New("KMS answered without a CiphertextForRecipient")
	}
	env, err := nitro.ParseEnvelope(cms)
	if err != nil {
		return nil, err
	}
	if string(env.SubjectKeyID) != string(nitro.SubjectKeyID(e.spki)) {
		return nil, errors.New("the CiphertextForRecipient is for another key")
	}
	return env.Open(e.key)
}

func printLine(w io.Writer, label string, b []byte) error {
	_, err := fmt.Fprintf(w, "%s: %s\n", label, base64.StdEncoding.EncodeToString(b))
	return err
}

// KMSError is a KMS exception a kmstool command got.
type KMSError struct {
	Op, Code, Message string
	Err               error
}

func (e *KMSError) Error() string { return fmt.Sprintf("enclave: %s: %s: %s", e.Op, e.Code, e.Message) }
func (e *KMSError) Unwrap() error { return e.Err }

// apiError shortens an SDK error to a KMSError ("enclave: OP: Code:
// message"), or prefixes it.
func apiError(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return &KMSError{Op: op, Code: ae.ErrorCode(), Message: ae.ErrorMessage(), Err: err}
	}
	return fmt.Errorf("enclave: %s: %w", op, err)
}
