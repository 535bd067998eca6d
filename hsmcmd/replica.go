package hsmcmd

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/internal/wire"
)

// The commands of multi-Region keys (docs/protocol.md, "Multi-Region
// keys"): the HBKs of a key move from an HSM of one region's domain to
// the HSMs of another's, wrapped by a one-pass C(1,2) message
// (session.SealOnePass) to the member HSMs that the sending domain's
// state records for the destination region (domain.PeerRegion), and
// re-sealed there under the destination's domain key:
//
//	ExportReplica  v8 region ‖ v8 key ID ‖ u16 n ‖ n × v16 HBK token
//	               → v24 transport
//	ImportReplica  v8 region ‖ v8 key ID ‖ v24 transport
//	               → u16 n ‖ n × v16 HBK token
//
// ExportReplica's region is the destination, ImportReplica's the source,
// each a peer region of the HSM's own domain state. The transport is a
// one-pass message whose context is ReplicaContext and whose payload is
// EncodeReplicaPayload's; only HSMs make and open it.

// Limits.
const (
	// MaxReplicaVersions bounds the HBKs of one transport (the key
	// store's MaxVersions).
	MaxReplicaVersions = 1024
	// MaxReplicaTransport bounds a transport: an answer less room for
	// its length prefix.
	MaxReplicaTransport = MaxMessage - 16
	// MaxRegionName bounds a region's name (a wire identifier).
	MaxRegionName = wire.MaxIDLen
)

// labelReplica begins the context of a replica transport.
const labelReplica = "trent/v1 replica"

// ReplicaContext is the context of a transport of key keyID's HBKs from
// domain src to domain dst: "trent/v1 replica" ‖ 0x00 ‖ v8 key ID ‖ v8
// src ‖ v8 dst. The one-pass message binds it to every recipient's entry
// and signs it; the receiving HSM requires the exact bytes it expects.
func ReplicaContext(keyID, src, dst string) []byte {
	b := cryptobyte.NewBuilder(append([]byte(labelReplica), 0))
	for _, f := range []string{keyID, src, dst} {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(f)) })
	}
	return b.BytesOrPanic()
}

// ReplicaHBK is one version of a key in a transport: its HBK ID and HBK.
type ReplicaHBK struct {
	ID  [hbk.IDSize]byte
	HBK []byte // hbk.Size bytes; secret
}

// EncodeReplicaPayload is a transport's payload: u16 n ‖ n × (HBK ID ‖
// HBK), oldest version first, 1 to MaxReplicaVersions of them, HBK IDs
// distinct. The caller clears the result.
func EncodeReplicaPayload(vs []ReplicaHBK) ([]byte, error) {
	w := newWriter(ImportReplica)
	w.check(len(vs) >= 1 && len(vs) <= MaxReplicaVersions, "version count")
	w.u16(uint16(len(vs)))
	seen := map[[hbk.IDSize]byte]bool{}
	for _, v := range vs {
		w.check(len(v.HBK) == hbk.Size && !seen[v.ID], "HBK")
		seen[v.ID] = true
		w.rest(v.ID[:], hbk.IDSize, hbk.IDSize, "HBK ID")
		w.rest(v.HBK, hbk.Size, hbk.Size, "HBK")
	}
	return w.bytes()
}

// ParseReplicaPayload decodes EncodeReplicaPayload's output strictly. The
// HBKs alias in, which the caller clears.
func ParseReplicaPayload(in []byte) ([]ReplicaHBK, error) {
	r := newReader(ImportReplica, in)
	n := int(r.u16("version count"))
	if r.err == nil && (n < 1 || n > MaxReplicaVersions) {
		r.fail("version count")
	}
	var out []ReplicaHBK
	seen := map[[hbk.IDSize]byte]bool{}
	for i := 0; i < n && r.err == nil; i++ {
		var v ReplicaHBK
		var id []byte
		if !r.s.ReadBytes(&id, hbk.IDSize) || !r.s.ReadBytes(&v.HBK, hbk.Size) {
			r.fail("HBK")
			break
		}
		copy(v.ID[:], id)
		if seen[v.ID] {
			r.fail("HBK ID twice")
			break
		}
		seen[v.ID] = true
		out = append(out, v)
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return out, nil
}

// ExportReplicaRequest asks an HSM to wrap key KeyID's HBKs (Tokens, its
// HBK tokens, oldest first) for the member HSMs of peer region Region.
type ExportReplicaRequest struct {
	Region string   // v8, 1 to MaxRegionName bytes
	KeyID  string   // v8, at most hbk.MaxKeyID bytes
	Tokens [][]byte // 1 to MaxReplicaVersions, each 1 to MaxHBKToken bytes
}

func (ExportReplicaRequest) Code() Code { return ExportReplica }

func (m ExportReplicaRequest) Marshal() ([]byte, error) {
	w := newWriter(ExportReplica)
	w.v8([]byte(m.Region), 1, MaxRegionName, "region")
	w.v8([]byte(m.KeyID), 0, hbk.MaxKeyID, "key ID")
	w.check(len(m.Tokens) >= 1 && len(m.Tokens) <= MaxReplicaVersions, "token count")
	w.u16(uint16(len(m.Tokens)))
	for _, t := range m.Tokens {
		w.v16(t, 1, MaxHBKToken, "token")
	}
	return w.bytes()
}

// ParseExportReplicaRequest decodes an ExportReplica.
func ParseExportReplicaRequest(in []byte) (*ExportReplicaRequest, error) {
	r := newReader(ExportReplica, in)
	m := &ExportReplicaRequest{Region: string(r.v8(1, MaxRegionName, "region")), KeyID: string(r.v8(0, hbk.MaxKeyID, "key ID"))}
	m.Tokens = readTokens(r)
	return result(m, r)
}

// readTokens reads u16 n ‖ n × v16 token, 1 to MaxReplicaVersions.
func readTokens(r *reader) [][]byte {
	n := int(r.u16("token count"))
	if r.err == nil && (n < 1 || n > MaxReplicaVersions) {
		r.fail("token count")
	}
	var out [][]byte
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.v16(1, MaxHBKToken, "token"))
	}
	return out
}

// ExportReplicaResponse is the transport.
type ExportReplicaResponse struct {
	Transport []byte // 1 to MaxReplicaTransport bytes
}

func (m ExportReplicaResponse) Marshal() ([]byte, error) {
	w := newWriter(ExportReplica)
	w.v24(m.Transport, 1, MaxReplicaTransport, "transport")
	return w.bytes()
}

// ParseExportReplicaResponse decodes an ExportReplica's answer.
func ParseExportReplicaResponse(in []byte) (*ExportReplicaResponse, error) {
	r := newReader(ExportReplica, in)
	m := &ExportReplicaResponse{Transport: r.v24(1, MaxReplicaTransport, "transport")}
	return result(m, r)
}

// ImportReplicaRequest asks an HSM to open a transport of key KeyID's HBKs
// from peer region Region and seal them as HBK tokens under its active
// domain key.
type ImportReplicaRequest struct {
	Region    string // v8, 1 to MaxRegionName bytes
	KeyID     string // v8, at most hbk.MaxKeyID bytes
	Transport []byte // 1 to MaxReplicaTransport bytes
}

func (ImportReplicaRequest) Code() Code { return ImportReplica }

func (m ImportReplicaRequest) Marshal() ([]byte, error) {
	w := newWriter(ImportReplica)
	w.v8([]byte(m.Region), 1, MaxRegionName, "region")
	w.v8([]byte(m.KeyID), 0, hbk.MaxKeyID, "key ID")
	w.v24(m.Transport, 1, MaxReplicaTransport, "transport")
	return w.bytes()
}

// ParseImportReplicaRequest decodes an ImportReplica.
func ParseImportReplicaRequest(in []byte) (*ImportReplicaRequest, error) {
	r := newReader(ImportReplica, in)
	m := &ImportReplicaRequest{Region: string(r.v8(1, MaxRegionName, "region")), KeyID: string(r.v8(0, hbk.MaxKeyID, "key ID"))}
	m.Transport = r.v24(1, MaxReplicaTransport, "transport")
	return result(m, r)
}

// ImportReplicaResponse is the key's HBK tokens under the destination's
// active domain key, in the transport's order, each with the HBK ID it
// had.
type ImportReplicaResponse struct {
	Tokens [][]byte // 1 to MaxReplicaVersions, each 1 to MaxHBKToken bytes
}

func (m ImportReplicaResponse) Marshal() ([]byte, error) {
	w := newWriter(ImportReplica)
	w.check(len(m.Tokens) >= 1 && len(m.Tokens) <= MaxReplicaVersions, "token count")
	w.u16(uint16(len(m.Tokens)))
	for _, t := range m.Tokens {
		w.v16(t, 1, MaxHBKToken, "token")
	}
	return w.bytes()
}

// ParseImportReplicaResponse decodes an ImportReplica's answer.
func ParseImportReplicaResponse(in []byte) (*ImportReplicaResponse, error) {
	r := newReader(ImportReplica, in)
	m := &ImportReplicaResponse{Tokens: readTokens(r)}
	return result(m, r)
}
