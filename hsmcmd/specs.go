package hsmcmd

import "crypto"

// Key spec codes (in key tokens and commands; docs/protocol.md, "Customer
// asymmetric and HMAC keys").
const (
	SpecRSA2048   uint8 = 1
	SpecRSA3072   uint8 = 2
	SpecRSA4096   uint8 = 3
	SpecECCP256   uint8 = 4
	SpecECCP384   uint8 = 5
	SpecECCP521   uint8 = 6
	SpecSECP256K1 uint8 = 7
	SpecHMAC224   uint8 = 8
	SpecHMAC256   uint8 = 9
	SpecHMAC384   uint8 = 10
	SpecHMAC512   uint8 = 11
	SpecMLDSA44   uint8 = 12
	SpecMLDSA65   uint8 = 13
	SpecMLDSA87   uint8 = 14
)

// SpecNames are the KMS key spec names of the codes.
var SpecNames = map[uint8]string{
	SpecRSA2048: "RSA_2048", SpecRSA3072: "RSA_3072", SpecRSA4096: "RSA_4096",
	SpecECCP256: "ECC_NIST_P256", SpecECCP384: "ECC_NIST_P384", SpecECCP521: "ECC_NIST_P521",
	SpecSECP256K1: "ECC_SECG_P256K1",
	SpecHMAC224:   "HMAC_224", SpecHMAC256: "HMAC_256", SpecHMAC384: "HMAC_384", SpecHMAC512: "HMAC_512",
	SpecMLDSA44: "ML_DSA_44", SpecMLDSA65: "ML_DSA_65", SpecMLDSA87: "ML_DSA_87",
}

// SpecCode returns the code of a KMS key spec name (0 if unknown here).
func SpecCode(name string) uint8 {
	for c, n := range SpecNames {
		if n == name {
			return c
		}
	}
	return 0
}

// Algorithm codes of the commands.
const (
	AlgRSAPSSSHA256 uint8 = iota + 1
	AlgRSAPSSSHA384
	AlgRSAPSSSHA512
	AlgRSAPKCS1SHA256
	AlgRSAPKCS1SHA384
	AlgRSAPKCS1SHA512
	AlgECDSASHA256
	AlgECDSASHA384
	AlgECDSASHA512
	AlgOAEPSHA1
	AlgOAEPSHA256
	AlgHMACSHA224
	AlgHMACSHA256
	AlgHMACSHA384
	AlgHMACSHA512
	AlgMLDSA // ML_DSA_SHAKE_256
)

// AlgNames are the KMS algorithm names of the codes.
var AlgNames = map[uint8]string{
	AlgRSAPSSSHA256: "RSASSA_PSS_SHA_256", AlgRSAPSSSHA384: "RSASSA_PSS_SHA_384", AlgRSAPSSSHA512: "RSASSA_PSS_SHA_512",
	AlgRSAPKCS1SHA256: "RSASSA_PKCS1_V1_5_SHA_256", AlgRSAPKCS1SHA384: "RSASSA_PKCS1_V1_5_SHA_384", AlgRSAPKCS1SHA512: "RSASSA_PKCS1_V1_5_SHA_512",
	AlgECDSASHA256: "ECDSA_SHA_256", AlgECDSASHA384: "ECDSA_SHA_384", AlgECDSASHA512: "ECDSA_SHA_512",
	AlgOAEPSHA1: "RSAES_OAEP_SHA_1", AlgOAEPSHA256: "RSAES_OAEP_SHA_256",
	AlgHMACSHA224: "HMAC_SHA_224", AlgHMACSHA256: "HMAC_SHA_256", AlgHMACSHA384: "HMAC_SHA_384", AlgHMACSHA512: "HMAC_SHA_512",
	AlgMLDSA: "ML_DSA_SHAKE_256",
}

// AlgCode returns the code of a KMS algorithm name (0 if unknown here).
func AlgCode(name string) uint8 {
	for c, n := range AlgNames {
		if n == name {
			return c
		}
	}
	return 0
}

// AlgHash is the hash an algorithm signs, encrypts or MACs with (0 for
// ML-DSA and unknown codes).
func AlgHash(alg uint8) crypto.Hash {
	switch alg {
	case AlgRSAPSSSHA256, AlgRSAPKCS1SHA256, AlgECDSASHA256, AlgOAEPSHA256, AlgHMACSHA256:
		return crypto.SHA256
	case AlgRSAPSSSHA384, AlgRSAPKCS1SHA384, AlgECDSASHA384, AlgHMACSHA384:
		return crypto.SHA384
	case AlgRSAPSSSHA512, AlgRSAPKCS1SHA512, AlgECDSASHA512, AlgHMACSHA512:
		return crypto.SHA512
	case AlgHMACSHA224:
		return crypto.SHA224
	case AlgOAEPSHA1:
		return crypto.SHA1
	}
	return 0
}
