package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/trentkms/trent/conformance"
)

func conformanceTags() []types.Tag {
	return []types.Tag{{TagKey: aws.String(TagKey), TagValue: aws.String(TagValue)}}
}

// code is the API error code of err ("" if err is not an API error).
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// describe says what a call answered: success, an API error's code and
// message, or a transport error.
func describe(err error) string {
	if err == nil {
		return "success"
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return "error: " + err.Error()
}

// expectCode ends the check as failed unless err is an API error with one
// of the codes.
func expectCode(t *conformance.T, what string, err error, codes ...string) {
	if err != nil && slices.Contains(codes, code(err)) {
		return
	}
	t.Mismatch(what, strings.Join(codes, " or "), describe(err))
}

// must ends the check as failed if a call the check depends on failed.
func must(t *conformance.T, what string, err error) {
	if err != nil {
		t.Mismatch(what, "success", describe(err))
	}
}

// newKey creates a key for the check, tagged trent-conformance=1 and
// scheduled for deletion (7 days) when the check ends.
func (e *Env) newKey(t *conformance.T, in *awskms.CreateKeyInput) *types.KeyMetadata {
	if in == nil {
		in = &awskms.CreateKeyInput{}
	}
	in.Tags = append(in.Tags, conformanceTags()...)
	if in.Description == nil {
		in.Description = aws.String("trent conformance " + t.ID())
	}
	out, err := e.Client.CreateKey(t.Context(), in)
	must(t, "setup: CreateKey", err)
	if out.KeyMetadata == nil || out.KeyMetadata.KeyId == nil || out.KeyMetadata.Arn == nil {
		t.Mismatch("setup: CreateKey's KeyMetadata", "KeyId and Arn", fmt.Sprintf("%+v", out.KeyMetadata))
	}
	id := out.KeyMetadata.KeyId
	t.Cleanup(func(ctx context.Context) error { return e.deleteKey(ctx, id) })
	return out.KeyMetadata
}

// deleteKey schedules a key's deletion (7 days), unless it is pending
// deletion already.
func (e *Env) deleteKey(ctx context.Context, id *string) error {
	_, err := e.Client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)})
	if code(err) == "KMSInvalidStateException" {
		d, derr := e.Client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: id})
		if derr == nil && d.KeyMetadata.KeyState == types.KeyStatePendingDeletion {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("conformance: ScheduleKeyDeletion %s: %s", aws.ToString(id), describe(err))
	}
	return nil
}

// newAlias creates alias/trent-conformance-RANDOM for the key, deleted
// when the check ends.
func (e *Env) newAlias(t *conformance.T, keyID *string) string {
	name := "alias/trent-conformance-" + strings.ToLower(t.ID()) + "-" + randomHex(6)
	_, err := e.Client.CreateAlias(t.Context(), &awskms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: keyID})
	must(t, "setup: CreateAlias", err)
	t.Cleanup(func(ctx context.Context) error {
		if _, err := e.Client.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String(name)}); err != nil {
			return fmt.Errorf("conformance: DeleteAlias %s: %s", name, describe(err))
		}
		return nil
	})
	return name
}

// encrypt encrypts plaintext under key with ctx, failing the check if the
// target refuses.
func (e *Env) encrypt(t *conformance.T, key *string, plaintext []byte, ec map[string]string) []byte {
	out, err := e.Client.Encrypt(t.Context(), &awskms.EncryptInput{KeyId: key, Plaintext: plaintext, EncryptionContext: ec})
	must(t, "setup: Encrypt", err)
	if len(out.CiphertextBlob) == 0 {
		t.Mismatch("setup: Encrypt's CiphertextBlob", "a ciphertext", "none")
	}
	return out.CiphertextBlob
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// A rawCall is a KMS request sent with net/http, signed with the SDK's
// SigV4 signer, then changed as the check needs.
type rawCall struct {
	Op     string
	Body   []byte
	Creds  aws.Credentials
	Region string            // the credential scope's region
	At     time.Time         // the signing time
	Header map[string]string // more headers, signed
	// Tamper changes the signed request before it is sent.
	Tamper func(*http.Request)
	// Unsigned sends the request without signing it.
	Unsigned bool
}

// rawAnswer is what came back.
type rawAnswer struct {
	Status      int
	ContentType string
	Type        string // the error type: __type (after any '#'), or X-Amzn-ErrorType
	Message     string // the error message (message or Message)
	Body        []byte
}

func (a *rawAnswer) String() string {
	if a.Status == http.StatusOK {
		return "HTTP 200"
	}
	s := fmt.Sprintf("HTTP %d %s", a.Status, a.Type)
	if a.Message != "" {
		s += ": " + a.Message
	}
	if a.Type == "" {
		s += " body " + truncate(string(a.Body), 200)
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// raw sends c to the endpoint.
func (e *Env) raw(ctx context.Context, c rawCall) (*rawAnswer, error) {
	if c.Region == "" {
		c.Region = e.Region
	}
	if c.At.IsZero() {
		c.At = time.Now()
	}
	if c.Creds.AccessKeyID == "" {
		c.Creds = e.Creds
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.Endpoint, bytes.NewReader(c.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService."+c.Op)
	for k, v := range c.Header {
		req.Header.Set(k, v)
	}
	if !c.Unsigned {
		sum := sha256.Sum256(c.Body)
		if err := v4.NewSigner().SignHTTP(ctx, c.Creds, req, hex.EncodeToString(sum[:]), "kms", c.Region, c.At.UTC()); err != nil {
			return nil, fmt.Errorf("conformance: signing: %w", err)
		}
	}
	if c.Tamper != nil {
		c.Tamper(req)
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	a := &rawAnswer{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: body}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Type     string `json:"__type"`
			Code     string `json:"code"`
			Message  string `json:"message"`
			MessageU string `json:"Message"`
		}
		_ = json.Unmarshal(body, &eb)
		a.Type, a.Message = firstNonEmpty(eb.Type, eb.Code, resp.Header.Get("X-Amzn-ErrorType")), firstNonEmpty(eb.Message, eb.MessageU)
		a.Type = errorName(a.Type)
	}
	return a, nil
}

// errorName is an error type without its namespace (com.amazonaws.kms#)
// or the suffix after ':' that X-Amzn-ErrorType may carry.
func errorName(s string) string {
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

// setBody replaces a request's body after signing.
func setBody(r *http.Request, b []byte) {
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}
