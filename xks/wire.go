package xks

// The specification's names and constants.
const (
	// SigV4ServiceName is the SigV4 service of every XKS request.
	SigV4ServiceName = "kms-xks-proxy"
	// PathSuffix ends every proxy's URI path (AWS's XksProxyUriPath).
	PathSuffix = "/kms/xks/v1"
	// MaxURIPathLen bounds the URI path (prefix and suffix).
	MaxURIPathLen = 128

	// AlgorithmAESGCM is the only encryptionAlgorithm of version 1.
	AlgorithmAESGCM = "AES_GCM"
	// CDIVSHA256 is the only ciphertextDataIntegrityValueAlgorithm.
	CDIVSHA256 = "SHA_256"

	// KeySpecAES256 is the keySpec of a 256-bit AES key.
	KeySpecAES256 = "AES_256"
	// Key usages and statuses of GetKeyMetadata.
	UsageEncrypt   = "ENCRYPT"
	UsageDecrypt   = "DECRYPT"
	StatusEnabled  = "ENABLED"
	StatusDisabled = "DISABLED"
	// Health statuses of an external key manager.
	HealthActive      = "ACTIVE"
	HealthDegraded    = "DEGRADED"
	HealthUnavailable = "UNAVAILABLE"
)

// Sizes the specification fixes.
const (
	MaxKeyIDLen          = 128  // externalKeyId
	MaxMetadataStringLen = 2048 // ARNs and the other requestMetadata strings
	MaxCiphertextMeta    = 20   // ciphertextMetadata, decoded
	TagSize              = 16   // authenticationTag
	MaxKeyUsages         = 10   // keyUsage entries in a GetKeyMetadata answer
	MaxFleetDetails      = 10   // ekmFleetDetails entries in a health answer
	MaxErrorMessageLen   = 511  // errorMessage: fewer than 512 printable ASCII characters
	SpecMinData          = 4300 // plaintext and ciphertext a proxy must accept
	SpecMinAAD           = 8192 // additional authenticated data a proxy must accept
)

// This implementation's limits (at least the specification's minimums).
const (
	MaxDataSize = 8192     // plaintext, ciphertext
	MaxAADSize  = 16384    // additionalAuthenticatedData
	MaxBodySize = 64 << 10 // a request body
)

// Error names of the specification's error table.
const (
	ErrNameValidation         = "ValidationException"
	ErrNameInvalidState       = "InvalidStateException"
	ErrNameInvalidCiphertext  = "InvalidCiphertextException"
	ErrNameInvalidKeyUsage    = "InvalidKeyUsageException"
	ErrNameAuthenticationFail = "AuthenticationFailedException"
	ErrNameAccessDenied       = "AccessDeniedException"
	ErrNameKeyNotFound        = "KeyNotFoundException"
	ErrNameInvalidURIPath     = "InvalidUriPathException"
	ErrNameThrottling         = "ThrottlingException"
	ErrNameUnsupported        = "UnsupportedOperationException"
	ErrNameDependencyTimeout  = "DependencyTimeoutException"
	ErrNameInternal           = "InternalException"
)

// errorStatus is each error name's HTTP status.
var errorStatus = map[string]int{
	ErrNameValidation:         400,
	ErrNameInvalidState:       400,
	ErrNameInvalidCiphertext:  400,
	ErrNameInvalidKeyUsage:    400,
	ErrNameAuthenticationFail: 401,
	ErrNameAccessDenied:       403,
	ErrNameKeyNotFound:        404,
	ErrNameInvalidURIPath:     404,
	ErrNameThrottling:         429,
	ErrNameUnsupported:        501,
	ErrNameDependencyTimeout:  503,
	ErrNameInternal:           500,
}

// ErrorStatus is the HTTP status the specification gives an error name,
// and false for a name it does not list.
func ErrorStatus(name string) (int, bool) {
	s, ok := errorStatus[name]
	return s, ok
}

// RequestMetadata is every request's requestMetadata. GetHealthStatus
// carries only KMSRequestID and KMSOperation; the key operations also
// AWSPrincipalARN, and Encrypt and Decrypt KMSKeyARN.
type RequestMetadata struct {
	AWSPrincipalARN string `json:"awsPrincipalArn,omitempty"`
	AWSSourceVPC    string `json:"awsSourceVpc,omitempty"`
	AWSSourceVPCE   string `json:"awsSourceVpce,omitempty"`
	KMSKeyARN       string `json:"kmsKeyArn,omitempty"`
	KMSOperation    string `json:"kmsOperation"`
	KMSRequestID    string `json:"kmsRequestId"`
	KMSViaService   string `json:"kmsViaService,omitempty"`
}

// HealthResponse is GetHealthStatus's answer.
type HealthResponse struct {
	XksProxyFleetSize int              `json:"xksProxyFleetSize"`
	XksProxyVendor    string           `json:"xksProxyVendor"`
	XksProxyModel     string           `json:"xksProxyModel"`
	EkmVendor         string           `json:"ekmVendor"`
	EkmFleetDetails   []EkmFleetDetail `json:"ekmFleetDetails"`
}

// EkmFleetDetail is one external key manager of a health answer.
type EkmFleetDetail struct {
	ID           string `json:"id"`
	Model        string `json:"model"`
	HealthStatus string `json:"healthStatus"` // ACTIVE, DEGRADED or UNAVAILABLE
}

// KeyMetadata is GetKeyMetadata's answer.
type KeyMetadata struct {
	KeySpec   string   `json:"keySpec"`   // AES_256 for a key KMS can use
	KeyUsage  []string `json:"keyUsage"`  // ENCRYPT, DECRYPT, and others
	KeyStatus string   `json:"keyStatus"` // ENABLED or DISABLED
}

// Allows reports whether the metadata lists usage u.
func (m *KeyMetadata) Allows(u string) bool {
	for _, x := range m.KeyUsage {
		if x == u {
			return true
		}
	}
	return false
}

// EncryptRequest is an Encrypt request's body. A nil
// AdditionalAuthenticatedData is absent; an empty
// EncryptionAlgorithm is sent as AES_GCM; a non-empty
// CiphertextDataIntegrityValueAlgorithm (SHA_256) asks for the CDIV.
type EncryptRequest struct {
	RequestMetadata                       RequestMetadata `json:"requestMetadata"`
	Plaintext                             []byte          `json:"plaintext"`
	EncryptionAlgorithm                   string          `json:"encryptionAlgorithm"`
	AdditionalAuthenticatedData           []byte          `json:"additionalAuthenticatedData,omitempty"`
	CiphertextDataIntegrityValueAlgorithm string          `json:"ciphertextDataIntegrityValueAlgorithm,omitempty"`
}

// EncryptResponse is Encrypt's answer. CiphertextMetadata and
// CiphertextDataIntegrityValue may be nil (absent).
type EncryptResponse struct {
	Ciphertext                   []byte `json:"ciphertext"`
	CiphertextMetadata           []byte `json:"ciphertextMetadata,omitempty"`
	InitializationVector         []byte `json:"initializationVector"`
	AuthenticationTag            []byte `json:"authenticationTag"`
	CiphertextDataIntegrityValue []byte `json:"ciphertextDataIntegrityValue,omitempty"`
}

// DecryptRequest is a Decrypt request's body. Nil optional fields are
// absent; an empty EncryptionAlgorithm is sent as AES_GCM.
type DecryptRequest struct {
	RequestMetadata             RequestMetadata `json:"requestMetadata"`
	Ciphertext                  []byte          `json:"ciphertext"`
	CiphertextMetadata          []byte          `json:"ciphertextMetadata,omitempty"`
	EncryptionAlgorithm         string          `json:"encryptionAlgorithm"`
	AdditionalAuthenticatedData []byte          `json:"additionalAuthenticatedData,omitempty"`
	InitializationVector        []byte          `json:"initializationVector"`
	AuthenticationTag           []byte          `json:"authenticationTag"`
}

// DecryptResponse is Decrypt's answer.
type DecryptResponse struct {
	Plaintext []byte `json:"plaintext"`
}

// ErrorBody is the JSON body of an error answer.
type ErrorBody struct {
	ErrorName    string `json:"errorName"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}
