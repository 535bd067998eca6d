package hsm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// ModuleConfig names a PKCS#11 module and the environment it reads at
// C_Initialize (SoftHSM2 reads SOFTHSM2_CONF; other vendors have their own
// variables). One process holds one initialised instance per module path:
// every Token opened on the same path shares it, and it is finalised when the
// last of them closes.
type ModuleConfig struct {
	Path string   // path to the shared library
	Env  []string // "NAME=value" pairs set in the process environment before C_Initialize
}

type module struct {
	key  string // the resolved path
	env  []string
	ctx  *pkcs11.Ctx
	refs int
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
		m = &module{key: resolved, ctx: ctx}
		modules.m[resolved] = m
	}
	if m.refs > 0 {
		if !slices.Equal(m.env, env) {
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
	if err := m.ctx.Initialize(); err != nil {
		return nil, wrap("initialize module", err)
	}
	m.env = env
	m.refs = 1
	return m, nil
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
	m.env = nil
	return wrap("finalize module", m.ctx.Finalize())
}
