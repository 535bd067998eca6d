package kmsload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Client kinds Config.Client may name.
const (
	// ClientSDK: each worker is an aws-sdk-go-v2 kms.Client (the default),
	// as an application's requests would be.
	ClientSDK = "sdk"
	// ClientSigner: each worker builds the JSON 1.1 request itself and
	// signs it with aws-sdk-go-v2's SigV4 signer (aws/signer/v4), without
	// the SDK's middleware stack: the same requests on the wire, about half
	// the client CPU, so that a load generator sharing the server's cores
	// takes less of them.
	ClientSigner = "signer"
)

// api is the three requests a worker makes.
type api interface {
	encrypt(ctx context.Context, key string, pt []byte, ec map[string]string) ([]byte, error)
	generateDataKey(ctx context.Context, key string, ec map[string]string) (pt, blob []byte, err error)
	decrypt(ctx context.Context, blob []byte, ec map[string]string) ([]byte, error)
}

type sdkAPI struct{ c *kms.Client }

func (a sdkAPI) encrypt(ctx context.Context, key string, pt []byte, ec map[string]string) ([]byte, error) {
	out, err := a.c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: pt, EncryptionContext: ec})
	if err != nil {
		return nil, err
	}
	return out.CiphertextBlob, nil
}

func (a sdkAPI) generateDataKey(ctx context.Context, key string, ec map[string]string) ([]byte, []byte, error) {
	out, err := a.c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(key),
		KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
	if err != nil {
		return nil, nil, err
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

func (a sdkAPI) decrypt(ctx context.Context, blob []byte, ec map[string]string) ([]byte, error) {
	out, err := a.c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	if err != nil {
		return nil, err
	}
	return out.Plaintext, nil
}

// signerAPI speaks AWS JSON 1.1 over net/http, signing with the SDK's
// SigV4 signer.
type signerAPI struct {
	hc       *http.Client
	endpoint string
	region   string
	creds    aws.Credentials
	signer   *v4.Signer
}

func newSignerAPI(cfg *Config, hc *http.Client) *signerAPI {
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	return &signerAPI{hc: hc, endpoint: cfg.Endpoint, region: region, signer: v4.NewSigner(),
		creds: aws.Credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey}}
}

// APIError is a KMS error answer to a ClientSigner request.
type APIError struct {
	Type, Message string
	Status        int
}

func (e *APIError) Error() string {
	return fmt.Sprintf("kmsload: HTTP %d %s: %s", e.Status, e.Type, e.Message)
}

func (a *signerAPI) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	sum := sha256.Sum256(body)
	if err := a.signer.SignHTTP(ctx, a.creds, req, hex.EncodeToString(sum[:]), "kms", a.region, time.Now()); err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("kmsload: %s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("kmsload: %s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		json.Unmarshal(data, &e)
		return &APIError{Type: e.Type, Message: e.Message, Status: resp.StatusCode}
	}
	return json.Unmarshal(data, out)
}

func (a *signerAPI) encrypt(ctx context.Context, key string, pt []byte, ec map[string]string) ([]byte, error) {
	var out struct{ CiphertextBlob []byte }
	err := a.call(ctx, "Encrypt", withContext(map[string]any{"KeyId": key, "Plaintext": pt}, ec), &out)
	return out.CiphertextBlob, err
}

func (a *signerAPI) generateDataKey(ctx context.Context, key string, ec map[string]string) ([]byte, []byte, error) {
	var out struct{ Plaintext, CiphertextBlob []byte }
	err := a.call(ctx, "GenerateDataKey", withContext(map[string]any{"KeyId": key, "KeySpec": "AES_256"}, ec), &out)
	return out.Plaintext, out.CiphertextBlob, err
}

func (a *signerAPI) decrypt(ctx context.Context, blob []byte, ec map[string]string) ([]byte, error) {
	var out struct{ Plaintext []byte }
	err := a.call(ctx, "Decrypt", withContext(map[string]any{"CiphertextBlob": blob}, ec), &out)
	return out.Plaintext, err
}

// withContext adds the encryption context to a request, leaving the field
// out when there is none (as the SDK does: moto answers a null with 500).
func withContext(req map[string]any, ec map[string]string) map[string]any {
	if len(ec) > 0 {
		req["EncryptionContext"] = ec
	}
	return req
}
