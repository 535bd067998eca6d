package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/kms/kmsapi"
)

const (
	testAKID   = "AKIATRENTTEST0000001"
	testSecret = "trent-test-secret-key-0000000000000000"
)

func kmsClient(url, akid, secret, region string) *kms.Client {
	return kms.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
	}, func(o *kms.Options) {
		o.BaseEndpoint = aws.String(url)
		o.RetryMaxAttempts = 1
	})
}

func apiCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae), "not an API error: %v", err)
	return ae.ErrorCode()
}

// The real aws-sdk-go-v2 KMS client against a host's KMS API.
func TestKMSAPIWithTheAWSSDK(t *testing.T) {
	c := newTestCluster(t, 1, 1)
	srv := httptest.NewServer(&kmsapi.Server{
		Creds: &kmsapi.Credentials{Region: "eu-west-1", Credentials: []kmsapi.Credential{{
			AccessKeyID: testAKID, SecretAccessKey: testSecret, AccountID: "111122223333",
			ARN: "arn:aws:iam::111122223333:user/alice"}}},
		Operations: c.hosts[0].KMSOperations(),
	})
	defer srv.Close()
	ctx := context.Background()
	cl := kmsClient(srv.URL, testAKID, testSecret, "eu-west-1")

	out, err := cl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(64)})
	require.NoError(t, err)
	assert.Len(t, out.Plaintext, 64)
	again, err := cl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(64)})
	require.NoError(t, err)
	assert.NotEqual(t, out.Plaintext, again.Plaintext)

	for _, n := range []int32{0, 1025} {
		_, err = cl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(n)})
		assert.Equal(t, "ValidationException", apiCode(t, err), "%d bytes", n)
	}
	_, err = cl.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab"), PrimaryRegion: aws.String("eu-west-2")})
	assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))

	// Authentication.
	_, err = kmsClient(srv.URL, "AKIAUNKNOWN000000000", testSecret, "eu-west-1").GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	assert.Equal(t, "UnrecognizedClientException", apiCode(t, err))
	_, err = kmsClient(srv.URL, testAKID, "the-wrong-secret-0000000000000000", "eu-west-1").GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	assert.Equal(t, "InvalidSignatureException", apiCode(t, err))
	_, err = kmsClient(srv.URL, testAKID, testSecret, "us-east-1").GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	assert.Equal(t, "InvalidSignatureException", apiCode(t, err), "another region")

	// No signature at all, and a stale one.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader([]byte(`{"NumberOfBytes":8}`)))
	req.Header.Set("X-Amz-Target", "TrentService.GenerateRandom")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var e struct {
		Type string `json:"__type"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "MissingAuthenticationTokenException", e.Type)

	stale := httptest.NewServer(&kmsapi.Server{
		Creds: &kmsapi.Credentials{Region: "eu-west-1", Credentials: []kmsapi.Credential{{
			AccessKeyID: testAKID, SecretAccessKey: testSecret, AccountID: "1", ARN: "arn:aws:iam::1:user/a"}}},
		Operations: c.hosts[0].KMSOperations(),
		Now:        func() time.Time { return time.Now().Add(time.Hour) },
	})
	defer stale.Close()
	_, err = kmsClient(stale.URL, testAKID, testSecret, "eu-west-1").GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	assert.Equal(t, "InvalidSignatureException", apiCode(t, err), "signature expired")
}
