package hsm

/*
#cgo linux LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

// The few PKCS#11 types this file needs, as the standard defines them on
// the platforms Trent builds for (CK_ULONG is unsigned long; no structure
// packing outside Windows).
typedef unsigned long trent_ck_ulong;
typedef trent_ck_ulong (*trent_get_function_list)(void **list);
typedef trent_ck_ulong (*trent_encrypt_fn)(trent_ck_ulong session, unsigned char *data,
	trent_ck_ulong data_len, unsigned char *out, trent_ck_ulong *out_len);

// CK_FUNCTION_LIST up to C_Encrypt: the version, then the functions in the
// standard's order (C_Initialize is 0, C_EncryptInit 29, C_Encrypt 30).
struct trent_function_list {
	unsigned char major, minor;
	void *fn[31];
};

// trent_function_list loads the module at path (the process already has it
// loaded through miekg/pkcs11, so this takes one more reference to the same
// instance) and returns its function list, or NULL.
static void *trent_function_list(const char *path) {
	void *h = dlopen(path, RTLD_LAZY);
	if (h == NULL) {
		return NULL;
	}
	trent_get_function_list get = (trent_get_function_list)dlsym(h, "C_GetFunctionList");
	void *list = NULL;
	if (get == NULL || get(&list) != 0) {
		return NULL;
	}
	return list;
}

static trent_ck_ulong trent_encrypt(void *list, trent_ck_ulong session, unsigned char *data,
	trent_ck_ulong data_len, unsigned char *out, trent_ck_ulong *out_len) {
	trent_encrypt_fn f = (trent_encrypt_fn)((struct trent_function_list *)list)->fn[30];
	return f(session, data, data_len, out, out_len);
}
*/
import "C"

import (
	"unsafe"

	"github.com/miekg/pkcs11"
)

// Direct calls into the module, for the one call miekg/pkcs11 makes in a way
// some modules answer wrongly: C_Encrypt. miekg/pkcs11 first asks for the
// output length (a NULL buffer), then encrypts into a buffer of that length;
// NSS's softoken (3.87) answers the length query of CKM_AES_GCM with the
// plaintext's length, leaving no room for the tag, and the second call then
// fails with CKR_BUFFER_TOO_SMALL and ends the operation. The length of a
// GCM ciphertext is known (plaintext ‖ tag), so Seal passes a buffer of that
// size in one call, on every module.

// functionList returns the module's CK_FUNCTION_LIST, or nil.
func functionList(path string) unsafe.Pointer {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return unsafe.Pointer(C.trent_function_list(cpath))
}

func cString(s string) unsafe.Pointer { return unsafe.Pointer(C.CString(s)) }

func cFree(p unsafe.Pointer) { C.free(p) }

// encryptInto runs C_Encrypt on s (after C_EncryptInit) with an output
// buffer of outLen bytes and returns the output. The module reads in and
// writes the output in Go memory during the call (cgo allows that for
// memory without Go pointers), so no copy of either is left in C's heap.
func (m *module) encryptInto(s pkcs11.SessionHandle, in []byte, outLen int) ([]byte, error) {
	if m.fns == nil {
		return nil, pkcs11.Error(pkcs11.CKR_FUNCTION_NOT_SUPPORTED)
	}
	var one [1]byte
	inp := &one[0]
	if len(in) > 0 {
		inp = &in[0]
	}
	out := make([]byte, max(outLen, 1))
	n := C.trent_ck_ulong(outLen)
	rv := C.trent_encrypt(m.fns, C.trent_ck_ulong(s), (*C.uchar)(unsafe.Pointer(inp)), C.trent_ck_ulong(len(in)),
		(*C.uchar)(unsafe.Pointer(&out[0])), &n)
	if rv != 0 {
		clear(out)
		return nil, pkcs11.Error(rv)
	}
	if int(n) > outLen {
		clear(out)
		return nil, pkcs11.Error(pkcs11.CKR_GENERAL_ERROR)
	}
	return out[:n], nil
}
