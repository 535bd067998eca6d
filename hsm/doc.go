// Package hsm is the crypto boundary of a Trent HSM node: the only code in
// Trent that calls PKCS#11 (through github.com/miekg/pkcs11). Every secret an
// HSM node holds is created and used through it.
//
// # Tokens and modules
//
// Open finds an initialised token by label in a PKCS#11 module (SoftHSM2 by
// default, NSS's softoken, or any module by path) and logs in as the user. A
// process holds one initialised instance of each module path, shared by
// every Token opened on it and finalised when the last one closes; the
// module's environment (for SoftHSM, SOFTHSM2_CONF) is set just before
// C_Initialize, its initialisation string (for NSS, its databases) passed in
// C_Initialize's pReserved, and opening the same module with a different
// environment or string while it is in use fails with ErrModuleConflict.
// Many tokens in one module instance is how one process runs several HSM
// nodes (trent dev, tests); one token per process is the production shape.
// InitToken provisions a token (C_InitToken, C_InitPIN); InitUserPIN sets
// the user PIN of a token that exists without C_InitToken (NSS).
//
// # Modules
//
// The backend runs the same operations on every module and works around
// what a module lacks, as docs/hsm-boundary.md ("PKCS#11 modules") lists:
// AES-GCM encryption is one C_Encrypt into a buffer of known size (NSS
// answers miekg/pkcs11's length query wrongly); data objects become token
// keys on a module that keeps no private token data objects (NSS), read
// back by wrapping; secp256k1 runs in the HSM process on a module that does
// not know the curve (NSS).
//
// # Sessions
//
// A Token is safe for concurrent use. Operations borrow a session from a
// pool of at most Config.MaxSessions read/write sessions, opened on demand
// and kept open. If an operation fails with CKR_SESSION_HANDLE_INVALID,
// CKR_SESSION_CLOSED, CKR_DEVICE_ERROR or CKR_TOKEN_NOT_PRESENT, its session
// is closed and the operation runs once more on a freshly opened session
// (logging in again if the token lost the login state); a second failure is
// returned. A lapsed login (the module logged the application out, or the
// token was reset under it) is restored rather than reported: a lookup
// that finds nothing, and an operation that fails otherwise, check the
// session's login state and, if it lapsed, log in again and run once
// more; a login that cannot be restored is ErrNotLoggedIn, never
// ErrKeyNotFound or ErrObjectNotFound (a private object is invisible to a
// session that is not logged in). One further session, the owner session,
// creates every session object: PKCS#11 destroys a session object with the
// session that created it, so the owner stays open for the Token's life
// and pooled sessions use the objects it made. Close waits for operations in flight, closes every
// session (destroying the volatile keys) and is idempotent.
//
// # Keys
//
// Identity keys (EnsureIdentity, Identity) are token objects: an ECDSA P-384
// signing pair and an ECDH P-384 agreement pair, private halves sensitive and
// never extractable, found again by label after a restart. Volatile keys
// (GenerateSecretKey, ImportSecretKey, GenerateEphemeralAgreementKey) are
// session objects, sensitive and not extractable: domain keys and ephemeral
// ECDH keys live there and are gone when the process exits.
// Persistent AES keys (GeneratePersistentAESKey, PersistentAESKey,
// PersistentAESKeys) are token objects found by label, sensitive and never
// extractable, whose CKA_ENCRYPT and CKA_DECRYPT are chosen when they are
// made: the XKS proxy's external keys (package xks/p11).
//
// # Data objects
//
// WriteData, ReadData and DestroyData keep small public records as token
// objects of class CKO_DATA (CKA_TOKEN and CKA_PRIVATE true, so that only a
// logged-in user finds them; on modules without such objects, a token
// generic-secret key standing in for one), one per CKA_LABEL, at most
// MaxDataSize bytes. WriteData replaces an existing object's value in place
// (C_SetAttributeValue), so that a label never names two objects; a read
// that finds two fails with ErrObjectAmbiguous. The HSM node keeps its
// domain anchor there: not secret, but what it trusts after a restart.
//
// # What runs inside the token and what does not
//
// Inside: key generation, ECDSA signing of a SHA-384 digest (CKM_ECDSA), ECDH
// (CKM_ECDH1_DERIVE), AES-256-GCM (CKM_AES_GCM), HMAC-SHA256
// (CKM_SHA256_HMAC), secp256k1 ECDSA where the module has the curve, and
// random bytes (C_GenerateRandom, the HSM's only RNG).
// Outside, in the HSM process: the SHA-384 digest before signing, the
// conversion of the r ‖ s signature to DER, and every KDF. SoftHSM has no
// usable SP 800-56C or SP 800-108 KDF, so AgreementKey.ECDH returns the shared
// secret Z to the caller, which runs the KDF and clears Z; the derived object
// it was read from is destroyed at once. docs/hsm-boundary.md lists each such
// step.
//
// # Limits and errors
//
// Inputs to Seal, Open and MAC are at most MaxMessageSize bytes; Random
// returns at most MaxRandomSize. Every error is an *Error that unwraps to one
// sentinel (ErrPINIncorrect, ErrAuthentication, …) and, when the module
// produced it, to its pkcs11.Error code. Errors never contain PINs, key
// material or plaintext.
package hsm
