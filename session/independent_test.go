package session_test

// A second reading of the vectors: this file checks session/testdata/ from
// docs/protocol.md alone, with the Go standard library and byte offsets. It
// calls nothing in package session, so a disagreement between the code and
// the document fails here.

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func loadVector(t *testing.T, name string) map[string][]byte {
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	out := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 || strings.HasSuffix(f[0], ":") {
			continue
		}
		switch f[1] {
		case "hex":
			b, err := hex.DecodeString(f[2])
			require.NoError(t, err)
			out[f[0]] = b
		case "str":
			out[f[0]] = []byte(f[2])
		case "u64":
			n, err := strconv.ParseUint(f[2], 10, 64)
			require.NoError(t, err)
			out[f[0]] = binary.BigEndian.AppendUint64(nil, n)
		}
	}
	return out
}

// reader walks a message by the field table of docs/protocol.md.
type reader struct {
	t   *testing.T
	b   []byte
	off int
}

func (r *reader) take(n int) []byte {
	require.LessOrEqual(r.t, r.off+n, len(r.b), "message too short")
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}
func (r *reader) v8() []byte  { return r.take(int(r.take(1)[0])) }
func (r *reader) v16() []byte { return r.take(int(binary.BigEndian.Uint16(r.take(2)))) }
func (r *reader) v24() []byte {
	l := r.take(3)
	return r.take(int(l[0])<<16 | int(l[1])<<8 | int(l[2]))
}
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
func (r *reader) header(typ byte) {
	require.Equal(r.t, append([]byte("TRNT\x01"), typ), r.take(6))
}
func (r *reader) end() { require.Equal(r.t, len(r.b), r.off, "trailing bytes") }

func h384(parts ...[]byte) []byte {
	h := sha512.New384()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func lab(label string) []byte { return append([]byte(label), 0) }

func kdf(z, fixedInfo []byte) []byte { return h384([]byte{0, 0, 0, 1}, z, fixedInfo)[:32] }

func v8(b []byte) []byte { return append([]byte{byte(len(b))}, b...) }

func aesGCM(t *testing.T, key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	require.NoError(t, err)
	a, err := cipher.NewGCM(b)
	require.NoError(t, err)
	return a
}

func ecdsaPub(t *testing.T, scalar []byte) *ecdsa.PublicKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), scalar)
	require.NoError(t, err)
	return &k.PublicKey
}

func ecdhKey(t *testing.T, scalar []byte) *ecdh.PrivateKey {
	k, err := ecdh.P384().NewPrivateKey(scalar)
	require.NoError(t, err)
	return k
}

func TestVectorsAgainstTheDocument(t *testing.T) {
	v := loadVector(t, "handshake.txt")
	hello := v["hello"]

	// Hello.
	r := &reader{t: t, b: hello}
	r.header(0x01)
	require.Equal(t, "example-domain", string(r.v8()))
	require.Equal(t, uint64(7), r.u64())
	hostID := r.v8()
	q1 := r.take(97)
	hostNonce := r.take(32)
	require.Equal(t, v["time"], binary.BigEndian.AppendUint64(nil, r.u64()))
	helloUnsigned := hello[:r.off]
	sig1 := r.v8()
	r.end()
	d1 := ecdhKey(t, v["d1_scalar"])
	require.Equal(t, d1.PublicKey().Bytes(), q1)
	require.Equal(t, v["host_nonce"], hostNonce)
	require.True(t, ecdsa.VerifyASN1(ecdsaPub(t, v["host_signing_scalar"]), h384(lab("trent/v1 session hello"), helloUnsigned), sig1), "sig1")

	// Reply.
	reply := v["reply"]
	rnd := v["hsm_random"]
	r = &reader{t: t, b: reply}
	r.header(0x02)
	hsmID := r.v8()
	q2 := r.take(97)
	hsmNonce := r.take(32)
	sessionID := r.take(16)
	notBefore, notAfter := r.u64(), r.u64()
	eskOff := r.off
	esk := r.take(48)
	ekt := r.v16()
	replyUnsigned := reply[:r.off]
	sig2 := r.v8()
	r.end()
	require.Equal(t, "hsm-1", string(hsmID))
	require.Equal(t, ecdhKey(t, v["d2_scalar"]).PublicKey().Bytes(), q2)
	require.Equal(t, rnd[:32], hsmNonce)
	require.Equal(t, binary.BigEndian.Uint64(v["time"]), notBefore)
	require.Equal(t, notBefore+binary.BigEndian.Uint64(v["validity_seconds"]), notAfter)
	require.Equal(t, v["esk"], esk)
	require.Equal(t, v["ekt"], ekt)

	helloHash := h384(hello)
	require.True(t, ecdsa.VerifyASN1(ecdsaPub(t, v["hsm_signing_scalar"]), h384(lab("trent/v1 session reply"), helloHash, replyUnsigned), sig2), "sig2")
	require.Equal(t, h384(lab("trent/v1 session id"), helloHash, q2, hsmNonce)[:16], sessionID)
	require.Equal(t, v["session_id"], sessionID)

	q2Key, err := ecdh.P384().NewPublicKey(q2)
	require.NoError(t, err)
	z, err := d1.ECDH(q2Key)
	require.NoError(t, err)
	require.Equal(t, v["z"], z)
	fixedInfo := bytes.Join([][]byte{lab("trent/v1 session nk"), v8(hostID), v8(hsmID), q1, q2, hostNonce, hsmNonce}, nil)
	nk := kdf(z, fixedInfo)
	require.Equal(t, v["nk"], nk)
	th := h384(lab("trent/v1 session transcript"), helloHash, reply[:eskOff])
	require.Equal(t, v["transcript_hash"], th)
	sk, err := aesGCM(t, nk).Open(nil, make([]byte, 12), esk, th)
	require.NoError(t, err, "ESK")
	require.Equal(t, rnd[32:64], sk)
	require.Equal(t, v["sk"], sk)

	// EKT.
	r = &reader{t: t, b: ekt}
	r.header(0x03)
	keyID := r.take(16)
	nonce := r.take(12)
	ct := r.v16()
	r.end()
	require.Equal(t, v["dk_id"], keyID)
	require.Equal(t, rnd[64:76], nonce)
	aad := bytes.Join([][]byte{lab("trent/v1 ekt"), []byte("TRNT\x01\x03"), keyID}, nil)
	pt, err := aesGCM(t, v["dk"]).Open(nil, nonce, ct, aad)
	require.NoError(t, err, "EKT")
	r = &reader{t: t, b: pt}
	require.Equal(t, sk, r.take(32))
	require.Equal(t, hostID, r.v8())
	require.Equal(t, sessionID, r.take(16))
	require.Equal(t, notBefore, r.u64())
	require.Equal(t, notAfter, r.u64())
	r.end()

	// Envelope and Response.
	e := loadVector(t, "envelope.txt")
	env := e["envelope"]
	r = &reader{t: t, b: env}
	r.header(0x04)
	require.Equal(t, ekt, r.v16())
	require.Equal(t, sessionID, r.take(16))
	require.Equal(t, hostID, r.v8())
	seq := r.u64()
	typ := r.take(2)
	ct = r.v24()
	r.end()
	require.Equal(t, uint64(1), seq)
	nonce = append([]byte{0, 0, 0, 0}, binary.BigEndian.AppendUint64(nil, seq)...)
	aad = bytes.Join([][]byte{lab("trent/v1 envelope"), h384(ekt), sessionID, v8(hostID), binary.BigEndian.AppendUint64(nil, seq), typ}, nil)
	cmd, err := aesGCM(t, sk).Open(nil, nonce, ct, aad)
	require.NoError(t, err, "envelope")
	require.Equal(t, []byte("ping"), cmd)

	resp := e["response"]
	r = &reader{t: t, b: resp}
	r.header(0x05)
	require.Equal(t, sessionID, r.take(16))
	require.Equal(t, seq, r.u64())
	ct = r.v24()
	r.end()
	nonce = append([]byte{1, 0, 0, 0}, binary.BigEndian.AppendUint64(nil, seq)...)
	aad = bytes.Join([][]byte{lab("trent/v1 response"), h384(env), sessionID, binary.BigEndian.AppendUint64(nil, seq)}, nil)
	out, err := aesGCM(t, sk).Open(nil, nonce, ct, aad)
	require.NoError(t, err, "response")
	require.Equal(t, []byte("pong"), out)
}

func TestOnePassVectorAgainstTheDocument(t *testing.T) {
	v := loadVector(t, "onepass.txt")
	msg := v["message"]
	r := &reader{t: t, b: msg}
	r.header(0x06)
	sender := r.v8()
	qe := r.take(97)
	context := r.v16()
	n := int(r.take(1)[0])
	require.Equal(t, 2, n)
	entries := map[string][]byte{}
	var prev string
	for range n {
		id := string(r.v8())
		require.Greater(t, id, prev, "strictly increasing recipient IDs")
		prev = id
		entries[id] = r.v24()
	}
	unsigned := msg[:r.off]
	sig := r.v8()
	r.end()
	require.Equal(t, "hsm-1", string(sender))
	require.Equal(t, v["context"], context)
	require.Equal(t, ecdhKey(t, v["de_scalar"]).PublicKey().Bytes(), qe)
	require.True(t, ecdsa.VerifyASN1(ecdsaPub(t, v["sender_signing_scalar"]), h384(lab("trent/v1 onepass sig"), unsigned), sig))

	qeKey, err := ecdh.P384().NewPublicKey(qe)
	require.NoError(t, err)
	for id, scalar := range map[string][]byte{"hsm-1": v["hsm1_agreement_scalar"], "hsm-2": v["hsm2_agreement_scalar"]} {
		z, err := ecdhKey(t, scalar).ECDH(qeKey)
		require.NoError(t, err)
		kek := kdf(z, bytes.Join([][]byte{lab("trent/v1 onepass kek"), v8(sender), v8([]byte(id)), qe}, nil))
		require.Equal(t, v["kek_"+id], kek, id)
		aad := bytes.Join([][]byte{lab("trent/v1 onepass wrap"), v8(sender), v8([]byte(id)), qe, h384(context)}, nil)
		payload, err := aesGCM(t, kek).Open(nil, make([]byte, 12), entries[id], aad)
		require.NoError(t, err, id)
		require.Equal(t, v["payload"], payload, id)
	}
}
