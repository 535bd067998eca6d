package kms

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/conformance"
)

// Custom key store checks that need no store: refusals and shapes any
// endpoint can be asked about without a CloudHSM cluster, a PKCS#11 token
// or an XKS proxy, and without making anything.

// unknownStoreID is a custom key store ID of KMS's form that no endpoint
// has made ("cks-" and 17 hex digits).
func unknownStoreID() *string { return aws.String("cks-" + randomHex(9)[:17]) }

func (e *Env) customStoreChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "KMS-CKS-001",
		Statement: "DescribeCustomKeyStores, ConnectCustomKeyStore, DisconnectCustomKeyStore, UpdateCustomKeyStore and DeleteCustomKeyStore naming a custom key store ID that does not exist fail with CustomKeyStoreNotFoundException",
		Clause:    apiErr("DescribeCustomKeyStores", "CustomKeyStoreNotFoundException") + "; " + apiErr("DeleteCustomKeyStore", "CustomKeyStoreNotFoundException"),
		Mutation:  "kms.store-unknown-id-empty-list",
		Run: func(t *conformance.T) {
			ctx, id := t.Context(), unknownStoreID()
			_, err := e.Client.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{CustomKeyStoreId: id})
			expectCode(t, "DescribeCustomKeyStores of an unknown ID", err, "CustomKeyStoreNotFoundException")
			_, err = e.Client.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: id})
			expectCode(t, "ConnectCustomKeyStore of an unknown ID", err, "CustomKeyStoreNotFoundException")
			_, err = e.Client.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: id})
			expectCode(t, "DisconnectCustomKeyStore of an unknown ID", err, "CustomKeyStoreNotFoundException")
			_, err = e.Client.UpdateCustomKeyStore(ctx, &awskms.UpdateCustomKeyStoreInput{CustomKeyStoreId: id, NewCustomKeyStoreName: aws.String("n")})
			expectCode(t, "UpdateCustomKeyStore of an unknown ID", err, "CustomKeyStoreNotFoundException")
			_, err = e.Client.DeleteCustomKeyStore(ctx, &awskms.DeleteCustomKeyStoreInput{CustomKeyStoreId: id})
			expectCode(t, "DeleteCustomKeyStore of an unknown ID", err, "CustomKeyStoreNotFoundException")
		},
	}, {
		ID:        "KMS-CKS-002",
		Statement: "DescribeCustomKeyStores with Limit 0 or 1001 fails with ValidationException, and with Limit 1000 is served",
		Clause:    apiParam("DescribeCustomKeyStores", "request", "Limit"),
		Mutation:  "kms.store-limit-unchecked",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			_, err := e.Client.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{Limit: aws.Int32(1000)})
			must(t, "DescribeCustomKeyStores Limit 1000", err)
			for _, n := range []int32{0, 1001} {
				_, err = e.Client.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{Limit: aws.Int32(n)})
				expectCode(t, fmt.Sprintf("DescribeCustomKeyStores Limit %d", n), err, "ValidationException")
			}
		},
	}, {
		ID:        "KMS-CKS-003",
		Statement: "GenerateRandom naming a CustomKeyStoreId that does not exist fails with CustomKeyStoreNotFoundException (it does not draw from another source)",
		Clause:    apiErr("GenerateRandom", "CustomKeyStoreNotFoundException"),
		Mutation:  "kms.random-store-ignored",
		Run: func(t *conformance.T) {
			_, err := e.Client.GenerateRandom(t.Context(), &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(16), CustomKeyStoreId: unknownStoreID()})
			expectCode(t, "GenerateRandom from an unknown custom key store", err, "CustomKeyStoreNotFoundException")
		},
	}, {
		ID:        "KMS-CKS-004",
		Statement: "CreateKey with Origin AWS_CLOUDHSM naming a CustomKeyStoreId that does not exist fails with CustomKeyStoreNotFoundException",
		Clause:    apiErr("CreateKey", "CustomKeyStoreNotFoundException"),
		Mutation:  "kms.cloudhsm-key-unknown-store-state",
		Run: func(t *conformance.T) {
			_, err := e.Client.CreateKey(t.Context(), &awskms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm, CustomKeyStoreId: unknownStoreID()})
			expectCode(t, "CreateKey in an unknown custom key store", err, "CustomKeyStoreNotFoundException")
		},
	}, {
		ID:        "KMS-CKS-005",
		Statement: "CreateCustomKeyStore of type AWS_CLOUDHSM with a KeyStorePassword of 6 characters fails with ValidationException",
		Clause:    apiParam("CreateCustomKeyStore", "request", "KeyStorePassword"),
		Mutation:  "kms.store-password-unchecked",
		Run: func(t *conformance.T) {
			_, err := e.Client.CreateCustomKeyStore(t.Context(), &awskms.CreateCustomKeyStoreInput{
				CustomKeyStoreName: aws.String("trent-conformance-" + randomHex(6)), CustomKeyStoreType: types.CustomKeyStoreTypeAwsCloudhsm,
				CloudHsmClusterId: aws.String("cluster-234567abcdef"), TrustAnchorCertificate: aws.String("-----BEGIN CERTIFICATE-----"),
				KeyStorePassword: aws.String("123456")})
			expectCode(t, "CreateCustomKeyStore with a 6-character password", err, "ValidationException")
		},
	}, {
		ID:        "KMS-CKS-006",
		Statement: "CreateCustomKeyStore of type EXTERNAL_KEY_STORE with an XksProxyUriPath that does not end in /kms/xks/v1 fails with ValidationException",
		Clause:    apiParam("CreateCustomKeyStore", "request", "XksProxyUriPath"),
		Mutation:  "kms.xks-uri-path-unchecked",
		Run: func(t *conformance.T) {
			_, err := e.Client.CreateCustomKeyStore(t.Context(), &awskms.CreateCustomKeyStoreInput{
				CustomKeyStoreName: aws.String("trent-conformance-" + randomHex(6)), CustomKeyStoreType: types.CustomKeyStoreTypeExternalKeyStore,
				XksProxyUriEndpoint: aws.String("https://xks.invalid"), XksProxyUriPath: aws.String("/example/kms/xks"),
				XksProxyConnectivity: types.XksProxyConnectivityTypePublicEndpoint,
				XksProxyAuthenticationCredential: &types.XksProxyAuthenticationCredentialType{AccessKeyId: aws.String("ABCDEFGHIJKLMNOPQRST"),
					RawSecretAccessKey: aws.String("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")}})
			expectCode(t, "CreateCustomKeyStore with an XksProxyUriPath without /kms/xks/v1", err, "ValidationException")
		},
	}}
}
