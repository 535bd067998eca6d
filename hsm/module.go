package hsm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// ModuleConfig names a PKCS#11 module and what it reads at C_Initialize:
// the environment (SoftHSM2 reads SOFTHSM2_CONF; other vendors have their
// own variables) and the initialisation string some modules take in
// CK_C_INITIALIZE_ARGS.pReserved (NSS's softoken reads its database
// directories and token names there; package nss writes it). One process
// holds one initialised instance per module path: every Token opened on the
// same path shares it, and it is finalised when the last of them closes.
type ModuleConfig struct {
	Path     string   // path to the shared library
	Env      []string // "NAME=value" pairs set in the process environment before C_Initialize
	InitArgs string   // passed as pReserved of C_Initialize when not empty (a NUL-terminated copy); at most MaxInitArgs bytes
}

// MaxInitArgs bounds ModuleConfig.InitArgs.
const MaxInitArgs = 1 << 16

type module struct {
	key      string // the resolved path
	env      []string
	initArgs string
	ctx      *pkcs11.Ctx
	fns      unsafe.Pointer // the module's CK_FUNCTION_LIST, for direct calls (direct.go)
	cArgs    unsafe.Pointer // the C copy of initArgs while the module is initialised
	noK1     atomic.Bool    // the module does not know secp256k1 (ecraw.go)
	refs     int
}

var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: map[string]*module{}}

// acquireModule returns the process's instance of the module, initialising
// it if no Token holds it. It fails with ErrModuleConflict if the module is in
// use with a different environment, because the module reads its
// environment only at C_Initialize.
func acquireModule(cfg ModuleConfig) (*module, error) {
	const op = "load module"
	if cfg.Path == "" {
		return nil, fail(op, ErrModuleNotFound, "no module path given")
	}
	for _, kv := range cfg.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fail(op, ErrInvalidInput, "environment entry is not NAME=value")
		}
	}
	if len(cfg.InitArgs) > MaxInitArgs || strings.IndexByte(cfg.InitArgs, 0) >= 0 {
		return nil, fail(op, ErrInvalidInput, "initialisation string too long or containing NUL")
	}
	resolved, err := filepath.EvalSymlinks(cfg.Path)
	if err != nil {
		return nil, fail(op, ErrModuleNotFound, cfg.Path)
	}
	if fi, err := os.Stat(resolved); err != nil || !fi.Mode().IsRegular() {
		return nil, fail(op, ErrModuleNotFound, cfg.Path)
	}
	env := slices.Clone(cfg.Env)
	slices.Sort(env)

	modules.Lock()
	defer modules.Unlock()
	m := modules.m[resolved]
	if m == nil {
		ctx := pkcs11.New(resolved)
		if ctx == nil {
			return nil, fail(op, ErrModuleNotFound, cfg.Path+" is not a loadable PKCS#11 module")
		}
		m = &module{key: resolved, ctx: ctx, fns: functionList(resolved)}
		modules.m[resolved] = m
	}
	if m.refs > 0 {
		if !slices.Equal(m.env, env) || m.initArgs != cfg.InitArgs {
			return nil, fail(op, ErrModuleConflict, cfg.Path)
		}
		m.refs++
		return m, nil
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return nil, fail(op, ErrInvalidInput, "cannot set "+k)
		}
	}
	if err := m.initialize(cfg.InitArgs); err != nil {
		return nil, wrap("initialize module", err)
	}
	m.env = env
	m.initArgs = cfg.InitArgs
	m.refs = 1
	return m, nil
}

// initialize runs C_Initialize, with args as pReserved if it is not empty:
// a NUL-terminated copy in C memory, kept until C_Finalize in case the
// module holds on to it.
func (m *module) initialize(args string) error {
	if args == "" {
		return m.ctx.Initialize()
	}
	m.cArgs = cString(args)
	err := m.ctx.Initialize(pkcs11.InitializeWithReserved(m.cArgs))
	if err != nil {
		cFree(m.cArgs)
		m.cArgs = nil
	}
	return err
}

// release drops one reference and finalises the module with the last one.
// Session objects (volatile keys) of the process are gone after that.
func (m *module) release() error {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs > 0 {
		return nil
	}
	m.env, m.initArgs = nil, ""
	err := m.ctx.Finalize()
	if m.cArgs != nil {
		cFree(m.cArgs)
		m.cArgs = nil
	}
	return wrap("finalize module", err)
}
