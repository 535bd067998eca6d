// Command gokmswrapping drives Vault's and OpenBao's auto-unseal library,
// github.com/hashicorp/go-kms-wrapping/wrappers/awskms/v2, against a KMS
// endpoint the way a seal does: SetConfig (which calls DescribeKey and keeps
// the key's ARN), then Encrypt and Decrypt of a seal blob (the root key
// sealed under a data key that KMS encrypts), a new wrapper opening the
// stored blob, a wrapper configured from the environment alone opening it,
// and a tampered blob refused. It lives in a module of its own so that Trent's module does not
// take the dependency; scripts/interop/run.sh builds and runs it.
//
// It prints one line per case, "case NAME pass|fail DETAIL", and exits
// non-zero if a case failed.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"strings"

	wrapping "github.com/hashicorp/go-kms-wrapping/v2"
	"github.com/hashicorp/go-kms-wrapping/wrappers/awskms/v2"
	"google.golang.org/protobuf/proto"
)

func main() {
	keyID := flag.String("key-id", "", "the seal key: key ID, key ARN, alias name or alias ARN")
	flag.Parse()
	failed := false
	report := func(name string, err error, detail string) {
		if err != nil {
			failed = true
			fmt.Printf("case %s fail %v\n", name, oneLine(err))
			return
		}
		fmt.Printf("case %s pass %s\n", name, detail)
	}
	ctx := context.Background()
	// The configuration of a Vault "awskms" seal stanza: the endpoint, region
	// and key, with the credentials given explicitly (disallow_env_vars keeps
	// the library from reading AWS_KMS_ENDPOINT and the key ID from the
	// environment).
	cfg := func(key string) map[string]string {
		return map[string]string{
			"region":            os.Getenv("AWS_REGION"),
			"endpoint":          os.Getenv("AWS_ENDPOINT_URL"),
			"access_key":        os.Getenv("AWS_ACCESS_KEY_ID"),
			"secret_key":        os.Getenv("AWS_SECRET_ACCESS_KEY"),
			"kms_key_id":        key,
			"disallow_env_vars": "true",
		}
	}

	w := awskms.NewWrapper()
	_, err := w.SetConfig(ctx, wrapping.WithConfigMap(cfg(*keyID)))
	var current string
	if err == nil {
		// The wrapper keeps DescribeKey's KeyMetadata.KeyId: the bare key ID.
		current, _ = w.KeyId(ctx)
		if current == "" || strings.Contains(current, "/") {
			err = fmt.Errorf("SetConfig: DescribeKey gave key ID %q", current)
		}
	}
	report("setconfig-describekey", err, "key "+current)
	if err != nil {
		os.Exit(1)
	}

	// The seal blob: what Vault stores for its root key, serialized as
	// Vault does (a protobuf BlobInfo), then read back and decrypted.
	rootKey := make([]byte, 32)
	rand.Read(rootKey)
	var stored []byte
	blob, err := w.Encrypt(ctx, rootKey)
	// The blob names the key Encrypt answered with: its ARN.
	if err == nil && (blob.KeyInfo == nil || !strings.HasPrefix(blob.KeyInfo.KeyId, "arn:aws:kms:") ||
		!strings.HasSuffix(blob.KeyInfo.KeyId, ":key/"+current)) {
		err = fmt.Errorf("Encrypt: the blob names key %v, want the ARN of %s", blob.KeyInfo, current)
	}
	if err == nil {
		stored, err = proto.Marshal(blob)
	}
	report("encrypt-seal-blob", err, fmt.Sprintf("%d-byte blob", len(stored)))

	var back wrapping.BlobInfo
	if err == nil {
		err = proto.Unmarshal(stored, &back)
	}
	var pt []byte
	if err == nil {
		pt, err = w.Decrypt(ctx, &back)
	}
	if err == nil && !bytes.Equal(pt, rootKey) {
		err = fmt.Errorf("Decrypt: got other bytes than the root key")
	}
	report("decrypt-seal-blob", err, "root key recovered")

	// A seal restarted from its configuration alone (a new process) opens
	// the stored blob too.
	w2 := awskms.NewWrapper()
	_, err = w2.SetConfig(ctx, wrapping.WithConfigMap(cfg(*keyID)))
	if err == nil {
		pt, err = w2.Decrypt(ctx, &back)
	}
	if err == nil && !bytes.Equal(pt, rootKey) {
		err = fmt.Errorf("Decrypt after restart: got other bytes than the root key")
	}
	report("decrypt-after-restart", err, "a new wrapper opened the stored blob")

	// A seal configured as Vault's documentation also allows, from the
	// environment alone: VAULT_AWSKMS_SEAL_KEY_ID, AWS_KMS_ENDPOINT, the
	// region and the credentials from the usual variables.
	os.Setenv("VAULT_AWSKMS_SEAL_KEY_ID", *keyID)
	os.Setenv("AWS_KMS_ENDPOINT", os.Getenv("AWS_ENDPOINT_URL"))
	w3 := awskms.NewWrapper()
	_, err = w3.SetConfig(ctx)
	if err == nil {
		pt, err = w3.Decrypt(ctx, &back)
	}
	if err == nil && !bytes.Equal(pt, rootKey) {
		err = fmt.Errorf("Decrypt configured from the environment: got other bytes than the root key")
	}
	report("setconfig-from-env", err, "VAULT_AWSKMS_SEAL_KEY_ID, AWS_KMS_ENDPOINT")
	os.Unsetenv("VAULT_AWSKMS_SEAL_KEY_ID")
	os.Unsetenv("AWS_KMS_ENDPOINT")

	// A tampered wrapped key is refused by KMS (InvalidCiphertextException).
	bad := proto.Clone(&back).(*wrapping.BlobInfo)
	if bad.KeyInfo != nil && len(bad.KeyInfo.WrappedKey) > 0 {
		bad.KeyInfo.WrappedKey[len(bad.KeyInfo.WrappedKey)/2] ^= 1
	}
	_, err = w.Decrypt(ctx, bad)
	switch {
	case err == nil:
		report("decrypt-tampered-refused", fmt.Errorf("a tampered blob decrypted"), "")
	case !strings.Contains(err.Error(), "InvalidCiphertextException"):
		report("decrypt-tampered-refused", fmt.Errorf("want InvalidCiphertextException, got %v", err), "")
	default:
		report("decrypt-tampered-refused", nil, "InvalidCiphertextException")
	}
	if failed {
		os.Exit(1)
	}
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
