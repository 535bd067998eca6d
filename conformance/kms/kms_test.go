package kms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/conformance/kms"
	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/kms/kmsapi"
)

var update = flag.Bool("update", false, "rewrite docs/conformance-suite.md from the catalogue")

const (
	account   = "000000000000"
	secondARN = "arn:aws:iam::" + account + ":user/conformance-second"
)

// devCluster starts a dev cluster (one HSM, one host) whose credentials
// file holds two identities. It returns the cluster, the two identities
// and the file of the simulated NSM whose root the cluster trusts. Its
// domain requires hybrid key establishment (trent dev --hybrid), so the
// whole KMS suite runs over hybrid ML-KEM-1024 + P-384 sessions only.
func devCluster(t *testing.T) (*dev.Cluster, [2]kmsapi.Credential, string) {
	t.Helper()
	dir := t.TempDir()
	creds := kmsapi.Credentials{Region: dev.DevRegion, Credentials: []kmsapi.Credential{
		{AccessKeyID: "AKIACONFORMANCE00001", SecretAccessKey: "conformance-secret-one-" + randHex(t), AccountID: account, ARN: "arn:aws:iam::" + account + ":user/dev"},
		{AccessKeyID: "AKIACONFORMANCE00002", SecretAccessKey: "conformance-secret-two-" + randHex(t), AccountID: account, ARN: secondARN},
	}}
	data, err := json.Marshal(creds)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "credentials.json"), data, 0o600))
	c, err := dev.Start(dev.Options{Dir: dir, HSMs: 1, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0", RotationInterval: -1, Hybrid: true}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Stop()) })
	t.Cleanup(func() { noClassicalHandshakes(t, c) })
	require.NotEmpty(t, c.KMSURL)

	// trent dev trusts the simulated NSM it keeps in its data dir.
	require.FileExists(t, c.SimNSMFile)
	return c, [2]kmsapi.Credential{creds.Credentials[0], creds.Credentials[1]}, c.SimNSMFile
}

// noClassicalHandshakes checks, from the HSMs' metrics, that the cluster's
// HSMs answered no classical handshake.
func noClassicalHandshakes(t *testing.T, c *dev.Cluster) {
	for _, h := range c.HSMs {
		resp, err := http.Get(h.URL + "/metrics")
		if !assert.NoError(t, err) {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(body), `trent_hsm_handshakes_total{mode="classical"} 0`, "%s answered classical handshakes", h.HSMID)
	}
}

func randHex(t *testing.T) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return fmt.Sprintf("%x", b)
}

func static(c kmsapi.Credential) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")
}

// wrongCheck is deliberately pointed at a wrong expectation: GenerateRandom
// of 16 bytes is expected to return 17.
func wrongCheck(env *kms.Env) conformance.Check {
	return conformance.Check{ID: "KMS-TEST-999", Statement: "deliberately wrong: GenerateRandom of 16 bytes returns 17", Clause: "conformance/kms/kms_test.go",
		Run: func(t *conformance.T) {
			out, err := env.Client.GenerateRandom(t.Context(), &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(16)})
			t.Require("GenerateRandom", err)
			conformance.Equal(t, "length of Plaintext", 17, len(out.Plaintext))
		}}
}

// The whole suite against a dev cluster: every check passes, none is
// skipped (the cluster has a second identity and trusts the simulated
// NSM); a deliberately wrong check fails the run; the reports are
// well-formed.
func TestSuiteAgainstTrent(t *testing.T) {
	c, ids, simFile := devCluster(t)
	ctx := context.Background()
	env, err := kms.NewEnv(ctx, kms.Config{Endpoint: c.KMSURL, Region: dev.DevRegion,
		Credentials: static(ids[0]), SecondCredentials: static(ids[1]), SecondARN: secondARN, AttestationRoot: simFile})
	require.NoError(t, err)
	checks := env.Checks()
	missing := env.Missing(ctx, checks)
	assert.Empty(t, missing, "Trent has every capability")
	checks = append(checks, wrongCheck(env))
	rep := conformance.Run(ctx, checks, conformance.Options{Suite: kms.Suite, Target: c.KMSURL, Missing: missing})

	var table bytes.Buffer
	require.NoError(t, conformance.WriteTable(&table, rep))
	t.Logf("\n%s", table.String())
	for _, r := range rep.Results {
		if r.ID == "KMS-TEST-999" {
			assert.Equal(t, conformance.Fail, r.Status)
			assert.Equal(t, "17", r.Expected)
			assert.Equal(t, "16", r.Observed)
			continue
		}
		assert.Equal(t, conformance.Pass, r.Status, "%s: %s (expected %s, observed %s)", r.ID, r.Reason, r.Expected, r.Observed)
		assert.Empty(t, r.Cleanup, r.ID)
	}
	assert.Equal(t, len(checks)-1, rep.Passed)
	assert.Equal(t, 1, rep.Failed)
	assert.Equal(t, 0, rep.Skipped)
	err = rep.Err()
	require.Error(t, err, "a failing check makes the run fail (trent exits non-zero)")
	assert.True(t, errors.Is(err, conformance.ErrFailed))

	// Every key the suite made is tagged and pending deletion.
	keys, err := env.Client.ListKeys(ctx, &awskms.ListKeysInput{Limit: aws.Int32(1000)})
	require.NoError(t, err)
	require.NotEmpty(t, keys.Keys)
	for _, k := range keys.Keys {
		d, err := env.Client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: k.KeyId})
		require.NoError(t, err)
		assert.Equal(t, "PendingDeletion", string(d.KeyMetadata.KeyState), aws.ToString(k.KeyId))
		tags, err := env.Client.ListResourceTags(ctx, &awskms.ListResourceTagsInput{KeyId: k.KeyId})
		require.NoError(t, err)
		require.Len(t, tags.Tags, 1)
		assert.Equal(t, kms.TagKey, aws.ToString(tags.Tags[0].TagKey))
	}
	aliases, err := env.Client.ListAliases(ctx, &awskms.ListAliasesInput{})
	require.NoError(t, err)
	for _, a := range aliases.Aliases {
		assert.False(t, strings.HasPrefix(aws.ToString(a.AliasName), "alias/trent-conformance"), "alias %s left behind", aws.ToString(a.AliasName))
	}

	// The reports of a real run are well-formed.
	var js bytes.Buffer
	require.NoError(t, conformance.WriteJSON(&js, rep))
	var back conformance.Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, rep.Failed, back.Failed)
	assert.Len(t, back.Results, len(checks))
	var ju bytes.Buffer
	require.NoError(t, conformance.WriteJUnit(&ju, rep))
	var doc struct {
		Tests int `xml:"tests,attr"`
		Fail  int `xml:"failures,attr"`
	}
	require.NoError(t, xml.Unmarshal(ju.Bytes(), &doc))
	assert.Equal(t, len(checks), doc.Tests)
	assert.Equal(t, 1, doc.Fail)
}

// Without a second identity or an attestation root, the checks that need
// them are skipped with the reason, never run or passed.
func TestSkipsWithoutCapabilities(t *testing.T) {
	for _, v := range []string{kms.EnvSecondProfile, kms.EnvSecondAccessKey, kms.EnvSecondARN} {
		t.Setenv(v, "")
	}
	ctx := context.Background()
	env, err := kms.NewEnv(ctx, kms.Config{Endpoint: "http://127.0.0.1:1", Region: "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", "")})
	require.NoError(t, err)
	checks := conformance.Select(env.Checks(), regexp.MustCompile(`^KMS-(RCP-\d+|POL-002)$`))
	require.Len(t, checks, 7)
	missing := env.Missing(ctx, checks)
	assert.Contains(t, missing[kms.CapRecipient], "--attestation-root")
	assert.Contains(t, missing[kms.CapSecondPrincipal], "--second-principal-profile")
	rep := conformance.Run(ctx, checks, conformance.Options{Missing: missing})
	assert.Equal(t, 7, rep.Skipped)
	assert.NoError(t, rep.Err())
	for _, r := range rep.Results {
		assert.Equal(t, conformance.Skip, r.Status)
		assert.True(t, strings.HasPrefix(r.Reason, "needs "), r.Reason)
	}

	// A second identity without its ARN is not enough.
	env, err = kms.NewEnv(ctx, kms.Config{Endpoint: "http://127.0.0.1:1", Region: "eu-west-1",
		Credentials:       credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", ""),
		SecondCredentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE2", "secret", "")})
	require.NoError(t, err)
	assert.Contains(t, env.Missing(ctx, checks)[kms.CapSecondPrincipal], "--second-principal-arn")
}

// Credentials and region come from the AWS environment and shared files.
func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	credFile, confFile := filepath.Join(dir, "credentials"), filepath.Join(dir, "config")
	require.NoError(t, os.WriteFile(credFile, []byte("[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s3cret\n\n[other]\naws_access_key_id=AKIAOTHER\naws_secret_access_key=other\naws_session_token=tok\n"), 0o600))
	require.NoError(t, os.WriteFile(confFile, []byte("[default]\nregion = ap-south-1\n[profile other]\nregion = eu-north-1\n[sso-session x]\nregion = nowhere\n"), 0o600))
	for k, v := range map[string]string{"AWS_SHARED_CREDENTIALS_FILE": credFile, "AWS_CONFIG_FILE": confFile, "AWS_ACCESS_KEY_ID": "",
		"AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		kms.EnvSecondProfile: "", kms.EnvSecondAccessKey: "", kms.EnvSecondARN: ""} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	env, err := kms.NewEnv(ctx, kms.Config{})
	require.NoError(t, err)
	assert.Equal(t, "ap-south-1", env.Region)
	assert.Equal(t, "AKIADEFAULT", env.Creds.AccessKeyID)
	assert.Equal(t, "https://kms.ap-south-1.amazonaws.com/", env.Endpoint)

	env, err = kms.NewEnv(ctx, kms.Config{Profile: "other", Endpoint: "http://localhost:4599", SecondProfile: "default", SecondARN: "arn:aws:iam::1:user/x"})
	require.NoError(t, err)
	assert.Equal(t, "eu-north-1", env.Region, "the profile's region")
	assert.Equal(t, "AKIAOTHER", env.Creds.AccessKeyID)
	assert.Equal(t, "tok", env.Creds.SessionToken)
	assert.Equal(t, "http://localhost:4599/", env.Endpoint)
	assert.NotNil(t, env.Second)

	t.Setenv("AWS_PROFILE", "other")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env")
	env, err = kms.NewEnv(ctx, kms.Config{Region: "us-east-2"})
	require.NoError(t, err)
	assert.Equal(t, "us-east-2", env.Region)
	assert.Equal(t, "AKIAENV", env.Creds.AccessKeyID, "the environment's keys before the profile's")

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	_, err = kms.NewEnv(ctx, kms.Config{Profile: "missing", Region: "x"})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "conformance: "))
	_, err = kms.NewEnv(ctx, kms.Config{Region: "x", AttestationRoot: filepath.Join(dir, "absent.pem")})
	require.Error(t, err)
}

func TestCatalogue(t *testing.T) {
	checks := kms.Catalogue()
	require.NoError(t, conformance.Validate(checks))
	areas := map[string]int{}
	for _, c := range checks {
		assert.True(t, strings.HasPrefix(c.ID, "KMS-"), c.ID)
		areas[strings.Split(c.ID, "-")[1]]++
		assert.True(t, strings.Contains(c.Clause, "https://docs.aws.amazon.com/") || strings.Contains(c.Clause, "docs/"), c.ID)
	}
	for _, a := range []string{"ERR", "SIG", "EC", "STATE", "RT", "POL", "RCP"} {
		assert.NotZero(t, areas[a], a)
	}
}

const docFile = "../../docs/conformance-suite.md"

func catalogueDoc() []byte {
	var b bytes.Buffer
	b.WriteString(`# The KMS conformance suite

<!-- Generated from the catalogue in conformance/kms by
     go test ./conformance/kms -run TestCatalogueDoc -update; do not edit. -->

` + "`trent conformance kms --endpoint URL`" + ` runs these checks against any endpoint that
claims to speak the AWS KMS JSON API, with the aws-sdk-go-v2 KMS client and,
for the SigV4 checks, raw requests signed with the SDK's v4 signer and then
tampered with. Each check passes, fails (with what was expected and what was
observed) or is skipped (with the reason). A check that needs a capability
the target lacks is skipped, never passed:

| capability | what it takes |
| --- | --- |
| ` + "`asymmetric`" + ` | probed: CreateKey ECC_NIST_P256 SIGN_VERIFY succeeds |
| ` + "`second-principal`" + ` | ` + "`--second-principal-profile`" + ` (or the ` + "`TRENT_CONFORMANCE_SECOND_*`" + ` variables) and ` + "`--second-principal-arn`" + ` |
| ` + "`recipient`" + ` | ` + "`--attestation-root FILE`" + `: a simulated NSM (root and keys, ` + "`nitro.LoadSimCA`" + `) whose root the endpoint trusts |

Keys the suite creates are tagged ` + "`trent-conformance=1`" + ` and scheduled for deletion
(7 days) when their check ends. ` + "`--run REGEXP`" + ` selects checks by ID, ` + "`--list`" + `
prints this catalogue, ` + "`--json`" + ` and ` + "`--junit FILE`" + ` give machine-readable reports,
and the exit status is non-zero when a check fails.

The last column names each check's mutation: a mutant of Trent's KMS service, policy or key-store code
(package ` + "`internal/mutation`" + `; a patch applied only to a test build, with
` + "`-tags trentmutation`" + ` and the overlay ` + "`internal/mutation/cmd/mkoverlay`" + ` writes)
that breaks exactly the behaviour the check tests. The mutation test,
` + "`go test -tags trentmutation -overlay DIR/overlay.json ./conformance/kms/`" + `,
runs the whole suite once per mutation against one dev cluster and requires
that exactly that check fails and every other passes.

## Checks

`)
	b.Write(conformance.Markdown(kms.Catalogue()))
	return b.Bytes()
}

// docs/conformance-suite.md is the catalogue; -update rewrites it.
func TestCatalogueDoc(t *testing.T) {
	want := catalogueDoc()
	if *update {
		require.NoError(t, os.WriteFile(docFile, want, 0o644))
	}
	got, err := os.ReadFile(docFile)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "docs/conformance-suite.md is stale: go test ./conformance/kms -run TestCatalogueDoc -update")
}
