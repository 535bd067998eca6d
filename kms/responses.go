package kms

import "github.com/trentkms/trent/keystore"

// The operations' responses, as the AWS KMS API reference names their
// fields. Optional fields are omitted when empty.

type encryptResponse struct {
	CiphertextBlob      []byte `json:"CiphertextBlob"`
	KeyId               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

type decryptResponse struct {
	Plaintext              []byte `json:"Plaintext,omitempty"`
	CiphertextForRecipient []byte `json:"CiphertextForRecipient,omitempty"`
	KeyId                  string `json:"KeyId"`
	EncryptionAlgorithm    string `json:"EncryptionAlgorithm,omitempty"`
}

type reEncryptResponse struct {
	CiphertextBlob                 []byte `json:"CiphertextBlob"`
	SourceKeyId                    string `json:"SourceKeyId"`
	KeyId                          string `json:"KeyId"`
	SourceEncryptionAlgorithm      string `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string `json:"DestinationEncryptionAlgorithm"`
}

type generateDataKeyResponse struct {
	CiphertextBlob         []byte `json:"CiphertextBlob"`
	Plaintext              []byte `json:"Plaintext,omitempty"`
	CiphertextForRecipient []byte `json:"CiphertextForRecipient,omitempty"`
	KeyId                  string `json:"KeyId"`
}

type generateDataKeyPairResponse struct {
	KeyId                    string `json:"KeyId"`
	KeyPairSpec              string `json:"KeyPairSpec"`
	PrivateKeyCiphertextBlob []byte `json:"PrivateKeyCiphertextBlob"`
	PrivateKeyPlaintext      []byte `json:"PrivateKeyPlaintext,omitempty"`
	PublicKey                []byte `json:"PublicKey"`
	CiphertextForRecipient   []byte `json:"CiphertextForRecipient,omitempty"`
}

type generateRandomResponse struct {
	Plaintext              []byte `json:"Plaintext,omitempty"`
	CiphertextForRecipient []byte `json:"CiphertextForRecipient,omitempty"`
}

type getPublicKeyResponse struct {
	KeyId                  string   `json:"KeyId"`
	PublicKey              []byte   `json:"PublicKey"`
	KeySpec                string   `json:"KeySpec"`
	CustomerMasterKeySpec  string   `json:"CustomerMasterKeySpec"`
	KeyUsage               string   `json:"KeyUsage"`
	EncryptionAlgorithms   []string `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms      []string `json:"SigningAlgorithms,omitempty"`
	KeyAgreementAlgorithms []string `json:"KeyAgreementAlgorithms,omitempty"`
}

type signResponse struct {
	KeyId            string `json:"KeyId"`
	Signature        []byte `json:"Signature"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

type verifyResponse struct {
	KeyId            string `json:"KeyId"`
	SignatureValid   bool   `json:"SignatureValid"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

type generateMacResponse struct {
	KeyId        string `json:"KeyId"`
	Mac          []byte `json:"Mac"`
	MacAlgorithm string `json:"MacAlgorithm"`
}

type verifyMacResponse struct {
	KeyId        string `json:"KeyId"`
	MacValid     bool   `json:"MacValid"`
	MacAlgorithm string `json:"MacAlgorithm"`
}

type deriveSharedSecretResponse struct {
	KeyId                  string `json:"KeyId"`
	SharedSecret           []byte `json:"SharedSecret,omitempty"`
	CiphertextForRecipient []byte `json:"CiphertextForRecipient,omitempty"`
	KeyAgreementAlgorithm  string `json:"KeyAgreementAlgorithm"`
	KeyOrigin              string `json:"KeyOrigin"`
}

// keyMetadataResponse answers CreateKey and DescribeKey.
type keyMetadataResponse struct {
	KeyMetadata *keyMetadata `json:"KeyMetadata"`
}

// keyIDResponse answers CancelKeyDeletion and RotateKeyOnDemand.
type keyIDResponse struct {
	KeyId string `json:"KeyId"`
}

type scheduleKeyDeletionResponse struct {
	KeyId               string `json:"KeyId"`
	DeletionDate        *epoch `json:"DeletionDate"`
	KeyState            string `json:"KeyState"`
	PendingWindowInDays int    `json:"PendingWindowInDays"`
}

type getKeyPolicyResponse struct {
	Policy     string `json:"Policy"`
	PolicyName string `json:"PolicyName"`
}

type getKeyRotationStatusResponse struct {
	KeyRotationEnabled        bool   `json:"KeyRotationEnabled"`
	KeyId                     string `json:"KeyId"`
	RotationPeriodInDays      *int   `json:"RotationPeriodInDays,omitempty"`
	NextRotationDate          *epoch `json:"NextRotationDate,omitempty"`
	OnDemandRotationStartDate *epoch `json:"OnDemandRotationStartDate,omitempty"`
}

type createGrantResponse struct {
	GrantToken string `json:"GrantToken"`
	GrantId    string `json:"GrantId"`
}

// page is the pagination part of a List* answer.
type page struct {
	Truncated  bool    `json:"Truncated"`
	NextMarker *string `json:"NextMarker,omitempty"`
}

func pageOf(next *string) page { return page{Truncated: next != nil, NextMarker: next} }

// orEmpty is items, or an empty list: a List* answer never has null.
func orEmpty[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}

type listKeysResponse struct {
	Keys []keyListEntry `json:"Keys"`
	page
}

type keyListEntry struct {
	KeyId  string `json:"KeyId"`
	KeyArn string `json:"KeyArn"`
}

type listAliasesResponse struct {
	Aliases []aliasEntry `json:"Aliases"`
	page
}

type listGrantsResponse struct {
	Grants []grantListEntry `json:"Grants"`
	page
}

type listResourceTagsResponse struct {
	Tags []keystore.Tag `json:"Tags"`
	page
}

type listKeyPoliciesResponse struct {
	PolicyNames []string `json:"PolicyNames"`
	page
}

type listKeyRotationsResponse struct {
	Rotations []rotationEntry `json:"Rotations"`
	page
}

type rotationEntry struct {
	KeyId        string `json:"KeyId"`
	RotationDate *epoch `json:"RotationDate"`
	RotationType string `json:"RotationType"`
	seq          string
}
