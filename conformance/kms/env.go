package kms

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/nitro"
)

// The capabilities the suite's checks may need.
const (
	// CapAsymmetric: the target creates asymmetric (SIGN_VERIFY) keys.
	// Probed: CreateKey ECC_NIST_P256 SIGN_VERIFY.
	CapAsymmetric conformance.Capability = "asymmetric"
	// CapSecondPrincipal: a second identity, with its principal ARN, is
	// configured (--second-principal-profile or the environment).
	CapSecondPrincipal conformance.Capability = "second-principal"
	// CapRecipient: a simulated NSM root the target trusts is given
	// (--attestation-root), so attestation documents can be made.
	CapRecipient conformance.Capability = "recipient"
)

// Environment variables read for the second identity, when the flags do
// not name it.
const (
	EnvSecondProfile   = "TRENT_CONFORMANCE_SECOND_PROFILE"
	EnvSecondAccessKey = "TRENT_CONFORMANCE_SECOND_ACCESS_KEY_ID"
	EnvSecondSecret    = "TRENT_CONFORMANCE_SECOND_SECRET_ACCESS_KEY"
	EnvSecondToken     = "TRENT_CONFORMANCE_SECOND_SESSION_TOKEN"
	EnvSecondARN       = "TRENT_CONFORMANCE_SECOND_PRINCIPAL_ARN"
)

// TagKey and TagValue tag every key the suite creates.
const (
	TagKey   = "trent-conformance"
	TagValue = "1"
)

// Config says which endpoint to test and as whom.
type Config struct {
	Endpoint string // base URL of the KMS API; empty: https://kms.REGION.amazonaws.com
	Region   string // empty: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region
	Profile  string // shared-config profile of the first identity (empty: the usual AWS environment)

	// The second identity, for the checks that need another principal: a
	// profile, else EnvSecond* variables; SecondARN is its principal ARN
	// (else EnvSecondARN).
	SecondProfile string
	SecondARN     string

	// AttestationRoot is a simulated NSM file (nitro.LoadSimCA) whose root
	// the target trusts; empty: the Recipient checks are skipped.
	AttestationRoot string

	// Credentials and SecondCredentials, if set, are used instead of the
	// environment (tests).
	Credentials       aws.CredentialsProvider
	SecondCredentials aws.CredentialsProvider

	HTTPClient *http.Client // nil: a client with a 30 s timeout
}

// Env is a configured target: the checks' clients and what they need.
type Env struct {
	Endpoint string // the URL raw requests go to
	Region   string
	Client   *awskms.Client
	Creds    aws.Credentials // the first identity's, for raw signed requests
	HTTP     *http.Client

	Second    *awskms.Client // nil without a second identity
	SecondARN string
	secondWhy string // why there is no second identity

	SimCA        *nitro.SimCA // nil without an attestation root
	enclaveOnce  sync.Once
	enclave      *rsa.PrivateKey
	enclaveSPKI  []byte
	enclaveError error
}

// NewEnv resolves the configuration: region and credentials as the AWS
// SDKs find them (github.com/aws/aws-sdk-go-v2/config: the environment,
// the shared files, SSO, roles), the clients and the attestation root.
func NewEnv(ctx context.Context, cfg Config) (*Env, error) {
	load := func(profile string) (aws.Config, error) {
		var opts []func(*config.LoadOptions) error
		if profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(profile))
		}
		if cfg.Region != "" {
			opts = append(opts, config.WithRegion(cfg.Region))
		}
		c, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return c, fmt.Errorf("conformance: AWS configuration: %w", err)
		}
		return c, nil
	}
	first, err := load(cfg.Profile)
	if err != nil {
		return nil, err
	}
	if first.Region == "" {
		return nil, errors.New("conformance: no region: give --region or set AWS_REGION")
	}
	e := &Env{Region: first.Region, HTTP: cfg.HTTPClient, Endpoint: cfg.Endpoint}
	if e.HTTP == nil {
		e.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if e.Endpoint == "" {
		e.Endpoint = "https://kms." + e.Region + ".amazonaws.com"
	}
	e.Endpoint = strings.TrimRight(e.Endpoint, "/") + "/"
	prov := cfg.Credentials
	if prov == nil {
		if first.Credentials == nil {
			return nil, errors.New("conformance: no AWS credentials found")
		}
		prov = first.Credentials
	}
	creds, err := prov.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("conformance: credentials: %w", err)
	}
	e.Creds = creds
	e.Client = e.client(prov)

	second := cfg.SecondCredentials
	secondProfile := firstNonEmpty(cfg.SecondProfile, os.Getenv(EnvSecondProfile))
	switch {
	case second != nil:
	case secondProfile != "":
		c, err := load(secondProfile)
		if err != nil {
			return nil, err
		}
		second = c.Credentials
	case os.Getenv(EnvSecondAccessKey) != "":
		second = credentials.NewStaticCredentialsProvider(os.Getenv(EnvSecondAccessKey), os.Getenv(EnvSecondSecret), os.Getenv(EnvSecondToken))
	}
	e.SecondARN = firstNonEmpty(cfg.SecondARN, os.Getenv(EnvSecondARN))
	switch {
	case second == nil:
		e.secondWhy = "no second identity: give --second-principal-profile (or " + EnvSecondProfile + ", or " + EnvSecondAccessKey + " and " + EnvSecondSecret + ")"
	case e.SecondARN == "":
		e.secondWhy = "no principal ARN for the second identity: give --second-principal-arn (or " + EnvSecondARN + ")"
	default:
		if _, err := second.Retrieve(ctx); err != nil {
			return nil, fmt.Errorf("conformance: second identity: %w", err)
		}
		e.Second = e.client(second)
	}

	if cfg.AttestationRoot != "" {
		ca, err := nitro.LoadSimCA(cfg.AttestationRoot)
		if err != nil {
			return nil, fmt.Errorf("conformance: attestation root: %w", err)
		}
		e.SimCA = ca
	}
	return e, nil
}

func (e *Env) client(prov aws.CredentialsProvider) *awskms.Client {
	return awskms.New(awskms.Options{
		Region:      e.Region,
		Credentials: aws.NewCredentialsCache(prov),
		HTTPClient:  e.HTTP,
		BaseEndpoint: func() *string {
			if strings.HasPrefix(e.Endpoint, "https://kms."+e.Region+".amazonaws.com") {
				return nil
			}
			return aws.String(strings.TrimRight(e.Endpoint, "/"))
		}(),
		RetryMaxAttempts: 3,
	})
}

// Missing probes the target for the capabilities the checks need and
// returns those it lacks, each with the reason.
func (e *Env) Missing(ctx context.Context, checks []conformance.Check) map[conformance.Capability]string {
	need := map[conformance.Capability]bool{}
	for _, c := range checks {
		for _, n := range c.Needs {
			need[n] = true
		}
	}
	out := map[conformance.Capability]string{}
	if need[CapSecondPrincipal] && e.Second == nil {
		out[CapSecondPrincipal] = e.secondWhy
	}
	if need[CapRecipient] && e.SimCA == nil {
		out[CapRecipient] = "no --attestation-root: the Recipient checks need a simulated NSM CA the endpoint trusts, to make attestation documents"
	}
	if need[CapAsymmetric] {
		if why := e.probeAsymmetric(ctx); why != "" {
			out[CapAsymmetric] = why
		}
	}
	return out
}

// probeAsymmetric creates an ECC_NIST_P256 SIGN_VERIFY key (deleting it
// again) and returns why the target lacks asymmetric keys, or "".
func (e *Env) probeAsymmetric(ctx context.Context) string {
	out, err := e.Client.CreateKey(ctx, &awskms.CreateKeyInput{
		KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify,
		Description: aws.String("trent conformance: asymmetric probe"), Tags: conformanceTags()})
	if err != nil {
		return "CreateKey ECC_NIST_P256 SIGN_VERIFY answered " + describe(err)
	}
	_, _ = e.Client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: out.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)})
	return ""
}

// enclaveKey is the simulated enclave's RSA key and its DER public key.
func (e *Env) enclaveKey() (*rsa.PrivateKey, []byte, error) {
	e.enclaveOnce.Do(func() {
		e.enclave, e.enclaveError = rsa.GenerateKey(rand.Reader, 2048)
		if e.enclaveError == nil {
			e.enclaveSPKI, e.enclaveError = x509.MarshalPKIXPublicKey(&e.enclave.PublicKey)
		}
	})
	return e.enclave, e.enclaveSPKI, e.enclaveError
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
