package kms

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/nitro"
)

// Store is the replicated key store as the Service sees it: key records,
// aliases, grants and grant indexes by record ID (package keystore names
// them). Reads are local and may lag the leader until Sync; writes are
// proposals that commit only if every record they replace is still as
// read.
//
// # Consistency
//
// The Service calls Sync before every operation that reads the key store
// (every operation but GenerateRandom), so that what it answers is true
// for the cluster, not only for this host: a key another host created, an
// alias it moved, a key it disabled, all acknowledged before the request
// began, are seen (read-after-write from any host; linearizable with the
// writes, which commit through the leader). Until Sync succeeds the
// answer is a retryable one (the error Sync returns), never NotFound.
type Store interface {
	// Sync returns once Get and Records read every write the cluster
	// committed before the call (a read barrier), or a retryable
	// *kmsapi.Error (5xx) if that cannot be established now: no leader,
	// this host cut off, or too far behind.
	Sync(ctx context.Context) error
	// Get returns the current bytes of record id, and whether it exists.
	Get(id string) ([]byte, bool)
	// Records calls f with each record whose ID starts with prefix, in
	// ID order, until f returns false.
	Records(prefix string, f func(id string, raw []byte) bool)
	// Propose commits rs atomically (one compare-and-swap entry: each
	// replacement's Old must be the record's current bytes, nil for an
	// absent record). It returns ErrConflict if any compare-and-swap did
	// not hold (nothing changed), a *kmsapi.Error for a retryable
	// condition such as a leadership change, or another error. Once it
	// returns nil the change is applied where Get reads.
	Propose(ctx context.Context, rs ...domain.Replacement) error
}

// ErrConflict is Store.Propose's answer when a compare-and-swap lost to a
// concurrent write; the Service reads again and retries.
var ErrConflict = errors.New("kms: key store changed concurrently")

// HSM runs the key hierarchy's commands (package hsmcmd's typed
// requests) on one of the domain's HSMs.
type HSM interface {
	// Do sends req (req.Code() and req.Marshal()) and returns the HSM's
	// answer, for the request's Parse…Response. Commands that may be
	// batched (hsmcmd.Code.Batchable) are batched with concurrent ones.
	// An HSM's refusal of the command (a token or ciphertext that does
	// not open, a public key not on the curve) is an error wrapping
	// ErrRefused, reported only after the implementation resynchronised
	// the HSMs (an HSM may lag a domain change) and tried once more; a
	// request that does not marshal (hsmcmd.ErrMalformed: a field over
	// its maximum, which the HSM would refuse) is refused the same way,
	// unsent. Any other error means no HSM answered.
	Do(ctx context.Context, req hsmcmd.Request) ([]byte, error)
}

// ErrRefused is wrapped by HSM.Do's errors for a command an HSM refused.
var ErrRefused = errors.New("kms: the HSM refused the command")

// Config configures a Service.
type Config struct {
	Store Store
	// HSM runs hierarchy commands; nil when the host serves no HSM (the
	// operations that need one answer DependencyTimeoutException).
	HSM HSM
	// Region is the region of key and alias ARNs.
	Region string
	// AttestationRoots returns the DER attestation roots the domain
	// trusts besides AWS Nitro's Root-G1 (nil for none).
	AttestationRoots func() [][]byte
	// AttestationTime, if set, is the time Recipient attestation
	// documents are verified at instead of the clock (conformance runs).
	AttestationTime func() time.Time
	// Clock is the clock of key dates (time.Now if nil).
	Clock func() time.Time
	// KeyStores connects this host to PKCS#11 custom key stores
	// (customstore.go); nil when the host serves none.
	KeyStores KeyStores
	// XKS makes clients of XKS proxies for external key stores (xks.go);
	// nil when the host serves none.
	XKS XKSProxies
	Log *slog.Logger
}

// Service is the AWS KMS API over a Store and an HSM.
type Service struct {
	store  Store
	hsm    HSM
	cfg    Config
	log    *slog.Logger
	chains nitro.ChainCache // verified attestation cabundles
	keys   keyCache
	conns  conns // this host's custom key store connections
	// Derived from the operation table (ops.go).
	ops      map[string]kmsapi.Operation
	grantOps map[string]grantOp // by grant operation name
	usage    map[string]string  // the key usage an operation needs, by name
}

// New makes a Service.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, hsm: cfg.HSM, cfg: cfg, log: cfg.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.derive()
	return s
}

// Operations are the KMS operations the Service serves, for a
// kmsapi.Server; every other operation answers
// UnsupportedOperationException there.
func (s *Service) Operations() map[string]kmsapi.Operation { return s.ops }

// IsWrite reports whether op changes the key store, so that a raft
// follower forwards it to the leader.
func (s *Service) IsWrite(op string) bool { return s.ops[op].Write }

// errNoHSM answers operations that need an HSM on a host without one.
var errNoHSM = &kmsapi.Error{Type: kmsapi.DependencyTimeout, Message: "no HSM is configured", Status: 503}

// call runs req on an HSM and parses the answer with parse (the
// request's Parse…Response): the one way the Service reaches an HSM. An
// answer that does not parse wraps hsmcmd.ErrMalformed.
func call[R any](ctx context.Context, s *Service, req hsmcmd.Request, parse func([]byte) (*R, error)) (*R, error) {
	if s.hsm == nil {
		return nil, errNoHSM
	}
	out, err := s.hsm.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	return parse(out)
}
