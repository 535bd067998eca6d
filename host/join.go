package host

import (
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
)

// A join request: v8 host ID ‖ v8 raft address ‖ v8 API URL ‖ u64 time
// (Unix seconds) ‖ v8 signature, the signature by the host's identity key
// over SHA-384("trent/v1 host join" ‖ 0x00 ‖ everything before it). The
// leader adds the host only if the replicated domain lists it as a
// service-host operator with that key, and the time is within MaxJoinSkew.
const labelJoin = "trent/v1 host join"

// MaxJoinSkew bounds the age of a join request.
const MaxJoinSkew = 5 * time.Minute

// ErrJoin is wrapped by every refusal of a join request.
var ErrJoin = errors.New("host: join refused")

type join struct {
	id, raftAddr, apiURL string
	at                   uint64
	sig                  []byte
	unsigned             []byte
}

func addStr(b *cryptobyte.Builder, s string) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}

func (h *Host) joinRequest(now time.Time) ([]byte, error) {
	var b cryptobyte.Builder
	wire.AddID(&b, h.cfg.ID)
	addStr(&b, h.RaftAddr())
	addStr(&b, h.APIURL())
	b.AddUint64(uint64(now.Unix()))
	unsigned, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	sig, err := h.cfg.Signer.Sign(nil, wire.LabelledHash(labelJoin, unsigned), crypto.SHA384)
	if err != nil {
		return nil, fmt.Errorf("host: sign join: %w", err)
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	return b.Bytes()
}

func parseJoin(in []byte) (*join, error) {
	s := cryptobyte.String(in)
	j := &join{}
	var ra, api, sig cryptobyte.String
	if !wire.ReadID(&s, &j.id) || !s.ReadUint8LengthPrefixed(&ra) || len(ra) == 0 ||
		!s.ReadUint8LengthPrefixed(&api) || len(api) == 0 || !s.ReadUint64(&j.at) {
		return nil, fmt.Errorf("%w: malformed request", ErrJoin)
	}
	j.unsigned = in[:len(in)-len(s)]
	if !s.ReadUint8LengthPrefixed(&sig) || len(sig) < 8 || len(sig) > 104 || !s.Empty() {
		return nil, fmt.Errorf("%w: malformed signature", ErrJoin)
	}
	j.raftAddr, j.apiURL, j.sig = string(ra), string(api), []byte(sig)
	return j, nil
}

// check verifies the request against the domain state at time now.
func (j *join) check(st *domain.State, now time.Time) error {
	var key *ecdsa.PublicKey
	for _, o := range st.Operators {
		if o.ID == j.id && o.Role == quorum.RoleServiceHost {
			key = o.Key.ECDSA()
		}
	}
	if key == nil {
		return fmt.Errorf("%w: %w: %q", ErrJoin, ErrNotServiceHost, j.id)
	}
	if d := time.Duration(int64(j.at)-now.Unix()) * time.Second; d > MaxJoinSkew || -d > MaxJoinSkew {
		return fmt.Errorf("%w: request time outside %v", ErrJoin, MaxJoinSkew)
	}
	if !ecdsa.VerifyASN1(key, wire.LabelledHash(labelJoin, j.unsigned), j.sig) {
		return fmt.Errorf("%w: signature does not verify", ErrJoin)
	}
	return nil
}

// HasState reports whether this host's data dir holds raft state from an
// earlier start: such a host is a member already (or was removed) and
// rejoins the cluster through raft alone, so it must not ask to join
// again, and its start must not depend on the host it first joined.
func (h *Host) HasState() (bool, error) {
	ok, err := raft.HasExistingState(h.store, h.store, h.snaps)
	if err != nil {
		return false, fmt.Errorf("host: raft state: %w", err)
	}
	return ok, nil
}
