package keystore

import (
	"fmt"
	"regexp"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
)

// Last usage (GetKeyLastUsage). The last successful cryptographic
// operation of a key lives under "u/" + key ID (UsageRecordID), apart
// from the key record, so that recording it never races a key's
// management writes: header ‖ u64 time (Unix milliseconds) ‖ v8
// operation ‖ v8 CloudTrail event ID ‖ v8 request ID. Hosts write it in
// batches (package kms, usage.go), never on a request's path. The
// cluster's tracking start lives under UsageSinceID: header ‖ u64 time
// (Unix milliseconds) ‖ v8 "" ‖ v8 "" ‖ v8 "".

// TypeUsage is the object type of usage records.
const TypeUsage byte = 0x4c

// UsageSinceID is where the time the cluster began recording usage
// lives.
const UsageSinceID = "u/since"

// UsageRecordID is where the last usage of key keyID lives.
func UsageRecordID(keyID string) string { return "u/" + keyID }

// Usage is a key's last successful cryptographic operation.
type Usage struct {
	Millis    int64  // when (Unix milliseconds, > 0)
	Operation string // a KMS operation name (validOperationName), "" only in the UsageSinceID record
	EventID   string // its CloudTrail event ID (at most MaxUsageID bytes of [0-9a-f-])
	RequestID string // its KMS request ID (likewise)
}

// MaxUsageID bounds a usage record's event and request IDs.
const MaxUsageID = 64

var usageIDRE = regexp.MustCompile(`^[0-9a-f-]{0,64}$`)

// Newer reports whether u is later than v (by time, then by event ID, so
// that every host merging the same usages picks the same one).
func (u *Usage) Newer(v *Usage) bool {
	if u.Millis != v.Millis {
		return u.Millis > v.Millis
	}
	return u.EventID > v.EventID
}

// Marshal encodes the usage record.
func (u *Usage) Marshal() ([]byte, error) {
	if err := u.check(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeUsage)
	b.AddUint64(uint64(u.Millis))
	for _, f := range []string{u.Operation, u.EventID, u.RequestID} {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(f)) })
	}
	return b.Bytes()
}

func (u *Usage) check() error {
	if u.Millis <= 0 || (u.Operation != "" && !validOperationName.MatchString(u.Operation)) ||
		!usageIDRE.MatchString(u.EventID) || !usageIDRE.MatchString(u.RequestID) {
		return fmt.Errorf("%w: usage record", ErrMalformed)
	}
	return nil
}

// ParseUsage decodes a usage record strictly.
func ParseUsage(in []byte) (*Usage, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeUsage, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	var ms uint64
	var op, ev, rq cryptobyte.String
	if !s.ReadUint64(&ms) || ms > 1<<62 || !s.ReadUint8LengthPrefixed(&op) || !s.ReadUint8LengthPrefixed(&ev) ||
		!s.ReadUint8LengthPrefixed(&rq) || !s.Empty() {
		return nil, fmt.Errorf("%w: usage record", ErrMalformed)
	}
	u := &Usage{Millis: int64(ms), Operation: string(op), EventID: string(ev), RequestID: string(rq)}
	if err := u.check(); err != nil {
		return nil, err
	}
	return u, nil
}
