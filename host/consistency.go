package host

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
)

// Reads that must be true for the cluster (a key that is not found, a
// ciphertext that does not open, a key that is disabled) are served from
// this host's FSM only after a read barrier: the FSM has applied at least
// the leader's commit index as of some moment after the read began (the
// read index of the raft paper, §6.4). A write acknowledged by any host
// before the read began is then visible to it.
//
// Cost: one confirmation of leadership by a quorum on the leader (a
// heartbeat round), plus, on a follower, one request to the leader. Reads
// that arrive while a round is in flight share the next round, so the cost
// is per round, not per read.

// ErrNotReady is wrapped by the errors of a read barrier or a readiness
// check: the condition is transient (no leader yet, this host behind),
// and the caller's answer is a retryable one.
var ErrNotReady = errors.New("host: not ready")

// MaxReadWait bounds a read barrier: a host that cannot reach the leader,
// or whose FSM does not catch up, answers ErrNotReady rather than wait.
const MaxReadWait = 5 * time.Second

const pathReadIndex = "/trent/v1/host/readindex"

// ReadBarrier returns once this host's FSM holds every write the cluster
// committed before the call (ErrNotReady if it cannot within MaxReadWait
// or ctx).
func (h *Host) ReadBarrier(ctx context.Context) error {
	if idx, ok := h.soleReadIndex(); ok && h.appliedThrough(idx) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, MaxReadWait)
	defer cancel()
	idx, err := h.reads.index(ctx)
	if err != nil {
		return fmt.Errorf("%w: read index: %w", ErrNotReady, err)
	}
	return h.waitApplied(ctx, idx)
}

// appliedThrough reports, without waiting, whether the FSM already holds
// every entry up to idx: raft has handed it everything, and the FSM has
// applied the last entry it handed (or nothing after idx reached it).
func (h *Host) appliedThrough(idx uint64) bool {
	return h.raft.AppliedIndex() >= idx && (h.fsmIndex.applied.Load() >= idx || h.readsThrough.Load() >= idx)
}

// waitApplied waits until the FSM holds every entry up to index idx.
// Raft's applied index counts an entry once it is handed to the FSM, not
// once the FSM has applied it, and some entries (no-ops, barriers) never
// reach the FSM; so the wait is in two steps: until raft has handed over
// everything up to idx, then until the FSM has applied the last entry up
// to idx that reaches it (a command or a configuration), as it records
// itself (indexedFSM).
func (h *Host) waitApplied(ctx context.Context, idx uint64) error {
	pause := 100 * time.Microsecond
	wait := func(done func() bool) error {
		for !done() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w: applied %d (FSM %d) of %d", ErrNotReady, h.raft.AppliedIndex(), h.fsmIndex.applied.Load(), idx)
			case <-time.After(pause):
			}
			pause = min(2*pause, 5*time.Millisecond)
		}
		return nil
	}
	if err := wait(func() bool { return h.raft.AppliedIndex() >= idx }); err != nil {
		return err
	}
	target := uint64(0)
	for i := idx; i > h.fsmIndex.applied.Load(); i-- {
		var l raft.Log
		if err := h.store.GetLog(i, &l); err != nil {
			break // compacted into a snapshot the FSM restored
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			target = i
			break
		}
	}
	if err := wait(func() bool { return h.fsmIndex.applied.Load() >= target }); err != nil {
		return err
	}
	// Entries after target up to idx never reach the FSM (barriers,
	// no-ops): later reads at idx need not look for them again.
	for {
		cur := h.readsThrough.Load()
		if cur >= idx || h.readsThrough.CompareAndSwap(cur, idx) {
			return nil
		}
	}
}

// indexedFSM is the domain FSM that records the index of the last entry
// it applied (commands, and configurations through raft's
// ConfigurationStore), for read barriers.
type indexedFSM struct {
	*domain.FSM
	snaps   raft.SnapshotStore
	applied atomic.Uint64
}

func (f *indexedFSM) Apply(l *raft.Log) any {
	r := f.FSM.Apply(l)
	f.applied.Store(l.Index)
	return r
}

// StoreConfiguration implements raft.ConfigurationStore: configuration
// entries reach the FSM in log order, so their indexes count too.
func (f *indexedFSM) StoreConfiguration(index uint64, _ raft.Configuration) {
	f.applied.Store(index)
}

// Restore restores a snapshot: the newest in the store, at start (raft
// restores the newest that opens) and when the leader installs one.
func (f *indexedFSM) Restore(rc io.ReadCloser) error {
	if err := f.FSM.Restore(rc); err != nil {
		return err
	}
	if list, err := f.snaps.List(); err == nil && len(list) > 0 {
		f.applied.Store(max(f.applied.Load(), list[0].Index))
	}
	return nil
}

// readIndex is the read index as this host can learn it: its own, if it
// leads; the leader's, asked over the host API, otherwise.
func (h *Host) readIndex(ctx context.Context) (uint64, error) {
	if h.IsLeader() {
		return h.leaderReadIndex()
	}
	u, err := h.leaderURL(ctx)
	if err != nil {
		return 0, err
	}
	if u == h.APIURL() {
		return h.leaderReadIndex()
	}
	data, err := get(ctx, u+pathReadIndex, 8)
	if err != nil {
		return 0, err
	}
	if len(data) != 8 {
		return 0, fmt.Errorf("host: %s: read index of %d bytes", u, len(data))
	}
	return binary.BigEndian.Uint64(data), nil
}

// leaderReadIndex is the leader's commit index once a quorum has confirmed
// that this host still leads. A new leader's commit index may trail the
// entries of earlier terms until an entry of its own term commits, so the
// first read of each term waits for a barrier (an entry of this term,
// committed and applied).
func (h *Host) leaderReadIndex() (uint64, error) {
	term := h.raft.CurrentTerm()
	h.readMu.Lock()
	fresh := h.readTerm != term
	h.readMu.Unlock()
	if fresh {
		if err := h.raft.Barrier(MaxReadWait).Error(); err != nil {
			return 0, leadershipErr(err)
		}
		h.readMu.Lock()
		h.readTerm = term
		h.readMu.Unlock()
	}
	h.noteSoleVoter(term)
	if err := h.raft.VerifyLeader().Error(); err != nil {
		return 0, leadershipErr(err)
	}
	return h.raft.CommitIndex(), nil
}

// A sole voter needs no confirmation of its leadership: raft elects a
// leader by a majority of the voters in its latest configuration, and
// while that configuration is this host alone no other host can be
// elected, nor can the configuration change but through this host. So, as
// etcd's raft answers a single-voter leader's ReadIndex at once, a leader
// that is the only voter of raft's latest configuration reads at its
// commit index without a round (once its term's barrier has committed).
// The judgement is made once per term, from raft's latest configuration,
// and only while this host has no configuration change of its own in
// flight: beginMembership withdraws it before any change, so a read that
// overlaps a change takes the full path.

// soleTerm records that this host was, in term, the only voter.
type soleTerm struct{ term uint64 }

// soleReadIndex is the read index without a round: the commit index, if
// this host leads, is the sole voter of its term, and that term's first
// read has had its barrier.
func (h *Host) soleReadIndex() (uint64, bool) {
	st := h.sole.Load()
	if st == nil || !h.IsLeader() {
		return 0, false
	}
	term := h.raft.CurrentTerm()
	if st.term != term {
		return 0, false
	}
	idx := h.raft.CommitIndex()
	if h.raft.CurrentTerm() != term || !h.IsLeader() {
		return 0, false
	}
	return idx, true
}

// noteSoleVoter records, after term's barrier, whether this host is the
// only voter of raft's latest configuration.
func (h *Host) noteSoleVoter(term uint64) {
	if st := h.sole.Load(); st != nil && st.term == term {
		return
	}
	h.readMu.Lock()
	defer h.readMu.Unlock()
	if h.membership > 0 {
		return
	}
	f := h.raft.GetConfiguration()
	if f.Error() != nil || !soleVoter(f.Configuration(), raft.ServerID(h.cfg.ID)) {
		return
	}
	h.sole.Store(&soleTerm{term: term})
}

// soleVoter reports whether id is the only voter of c.
func soleVoter(c raft.Configuration, id raft.ServerID) bool {
	voters := 0
	self := false
	for _, s := range c.Servers {
		if s.Suffrage == raft.Voter {
			voters++
			self = self || s.ID == id
		}
	}
	return voters == 1 && self
}

// beginMembership withdraws the sole-voter read path before a
// configuration change; after endMembership the next read that takes the
// full path judges again.
func (h *Host) beginMembership() {
	h.readMu.Lock()
	h.membership++
	h.sole.Store(nil)
	h.readMu.Unlock()
}

func (h *Host) endMembership() {
	h.readMu.Lock()
	h.membership--
	h.readMu.Unlock()
}

func leadershipErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("host: leadership changed: %w", err)
	}
	return fmt.Errorf("host: raft: %w", err)
}

func (h *Host) readIndexHandler(w http.ResponseWriter, r *http.Request) {
	if !h.IsLeader() {
		http.Error(w, "host: not the leader", http.StatusServiceUnavailable)
		return
	}
	// Through the shared rounds, as local readers: N followers asking at
	// once cost one confirmation of leadership, not N.
	idx, err := h.reads.index(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write(binary.BigEndian.AppendUint64(nil, idx))
}

// rounds shares read-index requests among concurrent readers: a reader
// waits for the next round to begin after it arrived (a round already in
// flight may have read its index before the reader's write was
// acknowledged elsewhere), and one round is in flight at a time.
type rounds struct {
	fetch func(context.Context) (uint64, error)

	mu      sync.Mutex
	next    *round // collecting readers, not begun
	running bool
}

type round struct {
	done chan struct{}
	idx  uint64
	err  error
}

// roundTimeout bounds one round's fetch (its readers give up at their own
// deadlines).
const roundTimeout = MaxReadWait

func (r *rounds) index(ctx context.Context) (uint64, error) {
	r.mu.Lock()
	if r.next == nil {
		r.next = &round{done: make(chan struct{})}
	}
	rd := r.next
	if !r.running {
		r.running = true
		go r.run()
	}
	r.mu.Unlock()
	select {
	case <-rd.done:
		return rd.idx, rd.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (r *rounds) run() {
	for {
		r.mu.Lock()
		rd := r.next
		r.next = nil
		if rd == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
		rd.idx, rd.err = r.fetch(ctx)
		cancel()
		close(rd.done)
	}
}

const (
	pathReady  = "/trent/v1/host/ready"
	pathHealth = "/trent/v1/host/health"
)

// Readiness is what a host reports at /trent/v1/host/ready and Ready
// checks: it serves KMS requests truthfully only when all hold.
type Readiness struct {
	Ready bool   `json:"ready"`
	ID    string `json:"id"`
	// Domain is the domain state version this host has applied (0: none
	// yet: it has not replayed its log, or no genesis).
	StateVersion uint64 `json:"state_version"`
	// CaughtUp: the FSM holds every write committed before the check.
	CaughtUp bool `json:"caught_up"`
	// HSM: an HSM at the domain's state version served a command in a
	// session made under it.
	HSM    bool   `json:"hsm"`
	Reason string `json:"reason,omitempty"`
}

// Ready reports whether this host can answer KMS requests truthfully now:
// it holds a domain, its FSM has caught up with the cluster (a read
// barrier), and an HSM at the domain's state version answers in a session.
// The answer is cached for readyTTL, so that polling it costs little, and
// concurrent callers share one check in flight.
func (h *Host) Ready(ctx context.Context) Readiness { return h.ready.get(ctx) }

// readyTTL is how long a readiness answer is reused.
const readyTTL = 500 * time.Millisecond

// readyCache runs a readiness check (checkReady) at most once at a time
// and reuses its answer for readyTTL: a caller that finds a check in
// flight waits for that one's answer rather than starting its own (a
// check may take seconds while there is no leader, and /ready is polled
// by every orchestrator and load balancer).
type readyCache struct {
	check func(context.Context) Readiness

	mu       sync.Mutex
	last     Readiness
	at       time.Time     // when last was checked; zero if never
	inflight chan struct{} // closed when the check in flight ends; nil if none
}

func (c *readyCache) get(ctx context.Context) Readiness {
	c.mu.Lock()
	if !c.at.IsZero() && time.Since(c.at) < readyTTL {
		r := c.last
		c.mu.Unlock()
		return r
	}
	if wait := c.inflight; wait != nil {
		c.mu.Unlock()
		<-wait // the check bounds itself
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last
	}
	done := make(chan struct{})
	c.inflight = done
	c.mu.Unlock()
	// Not the caller's cancellation: the answer is shared (with the
	// callers waiting and for readyTTL), and the check bounds itself.
	r := c.check(context.WithoutCancel(ctx))
	c.mu.Lock()
	c.last, c.at, c.inflight = r, time.Now(), nil
	c.mu.Unlock()
	close(done)
	return r
}

// known is the last answer, never a new check; ok is false if there has
// been none.
func (c *readyCache) known() (r Readiness, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, !c.at.IsZero()
}

func (h *Host) checkReady(ctx context.Context) Readiness {
	r := Readiness{ID: h.cfg.ID}
	if err := h.ReadBarrier(ctx); err != nil {
		r.Reason = err.Error()
		return r
	}
	r.CaughtUp = true
	st, _ := h.fsm.State()
	if st == nil {
		r.Reason = "no domain yet"
		return r
	}
	r.StateVersion = st.Version
	if h.hsms == nil {
		r.Reason = "no HSM is configured"
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, MaxReadWait)
	defer cancel()
	if _, err := hsmcmd.Call(ctx, h.hsms.Do, hsmcmd.PingRequest{Payload: []byte("ready")}, hsmcmd.ParsePingResponse); err != nil {
		r.Reason = "no HSM at the domain's state version answers: " + err.Error()
		return r
	}
	r.HSM, r.Ready = true, true
	return r
}

func (h *Host) consistencyHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET "+pathReadIndex, h.readIndexHandler)
	// ready: 200 when the host serves truthfully, 503 otherwise (for
	// orchestrators, like Vault's sys/health); health: 200 while the
	// process serves its API at all, with the last readiness known.
	mux.HandleFunc("GET "+pathReady, func(w http.ResponseWriter, r *http.Request) {
		rd := h.Ready(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rd)
	})
	mux.HandleFunc("GET "+pathHealth, func(w http.ResponseWriter, r *http.Request) {
		// Liveness: the last readiness known, never a new check (which
		// may take seconds while there is no leader).
		rd, ok := h.ready.known()
		if !ok {
			rd = Readiness{ID: h.cfg.ID, Reason: "not checked yet"}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rd)
	})
}

// GetReady fetches the readiness the host at apiURL last determined (its
// health endpoint: at most readyTTL old while anyone asks /ready or the
// status, else as old as the last such request).
func GetReady(ctx context.Context, apiURL string) (*Readiness, error) {
	var r Readiness
	if err := getJSON(ctx, apiURL+pathHealth, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
