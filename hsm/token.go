package hsm

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// Config selects a token and how to use it.
type Config struct {
	Module      ModuleConfig
	TokenLabel  string // the CKA_LABEL given at C_InitToken
	PIN         string // the user PIN
	MaxSessions int    // pooled sessions; 0 means 2×GOMAXPROCS (at least 4)
}

// MaxMessageSize bounds every input this package passes to the token for
// encryption or MAC (1 MiB); larger inputs fail with ErrInputTooLarge.
const MaxMessageSize = 1 << 20

// MaxRandomSize bounds one Random call.
const MaxRandomSize = 1 << 16

const sessionFlags = pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION

// Token is an open, logged-in PKCS#11 token: the crypto boundary of one HSM
// node. It is safe for concurrent use; see the package documentation for the
// session pool.
type Token struct {
	mod   *module
	ctx   *pkcs11.Ctx
	slot  uint
	label string
	pin   string

	// mu guards closed; operations hold it for reading while they run so
	// that Close waits for them.
	mu     sync.RWMutex
	closed bool

	// The owner session creates every session object (volatile keys): in
	// PKCS#11 a session object dies with the session that created it, so
	// this one stays open for the Token's life. Pool sessions can use the
	// objects it creates.
	ownerMu sync.Mutex
	owner   pkcs11.SessionHandle

	idle  chan pkcs11.SessionHandle // open sessions ready for use
	slots chan struct{}             // one element per open pool session
}

// Open loads the module (once per process and path), finds the initialised
// token labelled cfg.TokenLabel, and logs in as the user.
func Open(cfg Config) (*Token, error) {
	if cfg.TokenLabel == "" {
		return nil, fail("open", ErrInvalidInput, "empty token label")
	}
	n := cfg.MaxSessions
	if n <= 0 {
		n = max(2*runtime.GOMAXPROCS(0), 4)
	}
	mod, err := acquireModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	t := &Token{
		mod:   mod,
		ctx:   mod.ctx,
		label: cfg.TokenLabel,
		pin:   cfg.PIN,
		idle:  make(chan pkcs11.SessionHandle, n),
		slots: make(chan struct{}, n),
	}
	if err := t.open(); err != nil {
		_ = mod.release()
		return nil, err
	}
	return t, nil
}

func (t *Token) open() error {
	slot, err := findSlot(t.ctx, t.label)
	if err != nil {
		return err
	}
	t.slot = slot
	owner, err := t.ctx.OpenSession(slot, sessionFlags)
	if err != nil {
		return wrap("open session", err)
	}
	if err := t.login(owner); err != nil {
		_ = t.ctx.CloseSession(owner)
		return err
	}
	t.owner = owner
	return nil
}

// login logs the application in as the user on s, unless it already is (in
// PKCS#11 the login state is shared by all of an application's sessions).
func (t *Token) login(s pkcs11.SessionHandle) error {
	err := t.ctx.Login(s, pkcs11.CKU_USER, t.pin)
	if c, ok := err.(pkcs11.Error); ok && c == pkcs11.CKR_USER_ALREADY_LOGGED_IN {
		return nil
	}
	return wrap("login", err)
}

// findSlot returns the slot holding the one initialised token labelled label.
func findSlot(ctx *pkcs11.Ctx, label string) (uint, error) {
	return findLabelled(ctx, label, pkcs11.CKF_TOKEN_INITIALIZED)
}

// findLabelled returns the slot holding the one token labelled label with
// all of flags set.
func findLabelled(ctx *pkcs11.Ctx, label string, flags uint) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, wrap("list slots", err)
	}
	var found []uint
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err != nil {
			continue // a slot that vanished while we listed
		}
		if strings.TrimRight(ti.Label, " ") == label && ti.Flags&flags == flags {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return 0, fail("find token", ErrTokenNotFound, fmt.Sprintf("%q", label))
	case 1:
		return found[0], nil
	}
	return 0, fail("find token", ErrTokenAmbiguous, fmt.Sprintf("%q", label))
}

// Label is the token's label.
func (t *Token) Label() string { return t.label }

// ModulePath is the resolved path of the module the token is in.
func (t *Token) ModulePath() string { return t.mod.key }

// Close closes every session of the Token (destroying its volatile keys) and
// releases the module, finalising it if this was the last Token on it.
// Close waits for operations in flight and is idempotent.
func (t *Token) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	for {
		select {
		case s := <-t.idle:
			_ = t.ctx.CloseSession(s)
			<-t.slots
			continue
		default:
		}
		break
	}
	t.ownerMu.Lock()
	_ = t.ctx.CloseSession(t.owner)
	t.ownerMu.Unlock()
	return t.mod.release()
}

// getSession takes an idle session, or opens one if the pool has room, or
// waits for one to come back. With fresh set it always opens a new one.
func (t *Token) getSession(fresh bool) (pkcs11.SessionHandle, error) {
	idle := t.idle
	if fresh {
		idle = nil // a nil channel is never ready
	} else {
		select {
		case s := <-idle:
			return s, nil
		default:
		}
	}
	select {
	case s := <-idle:
		return s, nil
	case t.slots <- struct{}{}:
		s, err := t.ctx.OpenSession(t.slot, sessionFlags)
		if err != nil {
			<-t.slots
			return 0, err
		}
		return s, nil
	}
}

func (t *Token) putSession(s pkcs11.SessionHandle) { t.idle <- s }

func (t *Token) dropSession(s pkcs11.SessionHandle) {
	_ = t.ctx.CloseSession(s)
	<-t.slots
}

// do runs f on a pooled session. If f fails because the session or the
// device went bad, the session is dropped and f runs once more on a freshly
// opened (and, if need be, freshly logged-in) session; a second such failure
// is reported. If f fails otherwise, do checks that the login has not
// lapsed (restoreLogin): modules answer an operation on a private object
// then with CKR_USER_NOT_LOGGED_IN, CKR_OBJECT_HANDLE_INVALID (SoftHSM) or
// even CKR_HOST_MEMORY (NSS). If it had, f runs once more after the login
// is restored; a login that cannot be restored is reported as
// ErrNotLoggedIn instead of f's error.
func (t *Token) do(op string, f func(s pkcs11.SessionHandle) error) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return fail(op, ErrClosed, "")
	}
	for attempt := 0; ; attempt++ {
		s, err := t.getSession(attempt > 0)
		if err != nil {
			return wrap(op, err)
		}
		if attempt > 0 {
			if err := t.ensureLoggedIn(s); err != nil {
				t.dropSession(s)
				return wrap(op, err)
			}
		}
		err = f(s)
		if err != nil && attempt == 0 && !retriable(err) && !isNotLoggedIn(err) {
			relogged, lerr := t.restoreLogin(s)
			if lerr != nil {
				err = lerr
			} else if relogged {
				t.putSession(s)
				continue
			}
		}
		if err == nil {
			t.putSession(s)
			return nil
		}
		if retriable(err) {
			t.dropSession(s)
			if attempt == 0 {
				continue
			}
			return wrap(op, err)
		}
		t.putSession(s)
		return wrap(op, err)
	}
}

// ensureLoggedIn logs in again when a reopened session shows the login state
// was lost (every session of the application had been closed).
func (t *Token) ensureLoggedIn(s pkcs11.SessionHandle) error {
	_, err := t.restoreLogin(s)
	return err
}

// restoreLogin checks the login state of s (C_GetSessionInfo) and, if the
// application is no longer logged in as the user (the module logged it
// out, or the token was reset or reinitialised under it), logs in again;
// relogged reports whether it had to. A login that fails, or that leaves
// the session still without the user's state, is ErrNotLoggedIn (with the
// module's code, if C_Login gave one): the token's state, not the
// request's, so callers answer a retryable error rather than "not found".
func (t *Token) restoreLogin(s pkcs11.SessionHandle) (relogged bool, err error) {
	const op = "restore login"
	info, err := t.ctx.GetSessionInfo(s)
	if err != nil {
		return false, err
	}
	if userState(info.State) {
		return false, nil
	}
	if err := t.login(s); err != nil {
		e := &Error{Op: op, Err: ErrNotLoggedIn}
		var c pkcs11.Error
		if errors.As(err, &c) {
			e.Code = c
		}
		return false, e
	}
	info, err = t.ctx.GetSessionInfo(s)
	if err != nil {
		return false, err
	}
	if !userState(info.State) {
		return false, fail(op, ErrNotLoggedIn, "the session has no user state after C_Login")
	}
	return true, nil
}

// userState reports whether a session in state is logged in as the user.
func userState(state uint) bool {
	return state == pkcs11.CKS_RW_USER_FUNCTIONS || state == pkcs11.CKS_RO_USER_FUNCTIONS
}

// isNotLoggedIn reports whether err is restoreLogin's ErrNotLoggedIn (a
// login already tried and failed, not to be tried again at once).
func isNotLoggedIn(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Err == ErrNotLoggedIn
}

// withOwner runs f on the owner session, the one that creates session
// objects. If the owner session was lost, every volatile key went with it; a
// new owner session is opened and f retried once. If f failed otherwise
// because the login lapsed (as in do), the owner session and its objects
// stay: the login is restored on it and f retried once.
func (t *Token) withOwner(op string, f func(s pkcs11.SessionHandle) error) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return fail(op, ErrClosed, "")
	}
	t.ownerMu.Lock()
	defer t.ownerMu.Unlock()
	err := f(t.owner)
	if err != nil && !retriable(err) && !isNotLoggedIn(err) {
		relogged, lerr := t.restoreLogin(t.owner)
		if lerr != nil {
			err = lerr
		} else if relogged {
			err = f(t.owner)
		}
	}
	if err == nil || !retriable(err) {
		return wrap(op, err)
	}
	_ = t.ctx.CloseSession(t.owner)
	s, oerr := t.ctx.OpenSession(t.slot, sessionFlags)
	if oerr != nil {
		return wrap(op, oerr)
	}
	t.owner = s
	if err := t.login(s); err != nil {
		return wrap(op, err)
	}
	return wrap(op, f(s))
}

// InitToken initialises a token labelled label in the first slot whose token
// is not yet initialised (C_InitToken with soPIN), then sets the user PIN
// (C_InitPIN as the security officer). It fails with ErrTokenExists if an
// initialised token already has the label, and ErrNoFreeSlot if no slot is
// free. Provisioning tools (package softhsm) call it.
func InitToken(mod ModuleConfig, label, soPIN, userPIN string) error {
	const op = "init token"
	if label == "" || len(label) > 32 {
		return fail(op, ErrInvalidInput, "token label must be 1 to 32 bytes")
	}
	m, err := acquireModule(mod)
	if err != nil {
		return err
	}
	defer m.release()
	if _, err := findSlot(m.ctx, label); err == nil {
		return fail(op, ErrTokenExists, fmt.Sprintf("%q", label))
	}
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return wrap(op, err)
	}
	free, found := uint(0), false
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err == nil && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			free, found = s, true
			break
		}
	}
	if !found {
		return fail(op, ErrNoFreeSlot, "")
	}
	if err := m.ctx.InitToken(free, soPIN, label); err != nil {
		return wrap(op, err)
	}
	// Some modules (SoftHSM among them) move a token to a new slot ID once
	// it is initialised: look it up again by label.
	slot, err := findSlot(m.ctx, label)
	if err != nil {
		return err
	}
	return initPIN(m.ctx, slot, soPIN, userPIN)
}

// InitUserPIN sets the user PIN of a token that exists without C_InitToken:
// the token labelled label whose user PIN is not set yet is found, the
// security officer logs in with soPIN and C_InitPIN sets userPIN. NSS's
// softoken provisions this way: it makes a token for each database
// directory it is given at C_Initialize (package nss), whose SO PIN is
// empty until a user PIN is set. It fails with ErrTokenExists if the
// token's user PIN is set already and ErrTokenNotFound if no token has the
// label.
func InitUserPIN(mod ModuleConfig, label, soPIN, userPIN string) error {
	const op = "init user PIN"
	if label == "" || len(label) > 32 {
		return fail(op, ErrInvalidInput, "token label must be 1 to 32 bytes")
	}
	m, err := acquireModule(mod)
	if err != nil {
		return err
	}
	defer m.release()
	slot, err := findLabelled(m.ctx, label, 0)
	if err != nil {
		return err
	}
	ti, err := m.ctx.GetTokenInfo(slot)
	if err != nil {
		return wrap(op, err)
	}
	if ti.Flags&pkcs11.CKF_USER_PIN_INITIALIZED != 0 {
		return fail(op, ErrTokenExists, fmt.Sprintf("%q", label))
	}
	return initPIN(m.ctx, slot, soPIN, userPIN)
}

// initPIN sets the user PIN of the token in slot (C_InitPIN), the security
// officer logged in with soPIN.
func initPIN(ctx *pkcs11.Ctx, slot uint, soPIN, userPIN string) error {
	const op = "init user PIN"
	s, err := ctx.OpenSession(slot, sessionFlags)
	if err != nil {
		return wrap(op, err)
	}
	defer ctx.CloseSession(s)
	if err := ctx.Login(s, pkcs11.CKU_SO, soPIN); err != nil {
		return wrap("login as security officer", err)
	}
	defer ctx.Logout(s)
	return wrap(op, ctx.InitPIN(s, userPIN))
}
