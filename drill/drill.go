// Package drill runs `trent drill`: a scripted ceremony against a running
// cluster described by DIR/cluster.json (trent dev writes it), using the dev
// operators' keys. Each step proposes a quorum command, signs it as a
// ceremony would, submits it to a service host and checks the outcome the
// step expects; the timeline records each step's outcome and latency. A
// drill ends with the domain as it found it but for its version and domain
// keys: what it adds it removes again.
package drill

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/tokenstore"
)

// Step is one line of the timeline.
type Step struct {
	Name     string        `json:"name"`
	Expected string        `json:"expected"`
	Outcome  string        `json:"outcome"`
	OK       bool          `json:"ok"`
	Latency  time.Duration `json:"latency_ns"`
	Version  uint64        `json:"state_version"`
}

// Report is a drill's timeline.
type Report struct {
	Domain string `json:"domain"`
	Steps  []Step `json:"steps"`
	OK     bool   `json:"ok"`
}

// ErrFailed means a step did not end as expected.
var ErrFailed = errors.New("drill: a step did not end as expected")

type runner struct {
	c       *dev.Cluster
	dir     string
	hostAPI string
	ops     map[string]crypto.Signer
	report  *Report
	log     func(Step)
}

// Run runs the drill against the cluster of dir, calling progress (if not
// nil) after each step. It returns ErrFailed if any step did not end as
// expected.
func Run(ctx context.Context, dir string, progress func(Step)) (*Report, error) {
	data, err := boundedio.ReadFile(filepath.Join(dir, "cluster.json"), 1<<20)
	if err != nil {
		return nil, fmt.Errorf("drill: %w (is trent dev running in %s?)", err, dir)
	}
	var c dev.Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("drill: cluster.json: %w", err)
	}
	if len(c.Hosts) == 0 {
		return nil, errors.New("drill: the cluster has no service host (trent dev --hosts 1 or more)")
	}
	r := &runner{c: &c, dir: dir, hostAPI: c.Hosts[0].API, ops: map[string]crypto.Signer{},
		report: &Report{Domain: c.Domain, OK: true}, log: progress}
	for _, o := range c.Operators {
		k, err := ceremony.OpenKey(o.KeyFile, "")
		if err != nil {
			return nil, err
		}
		if r.ops[o.ID] = k.ECDSASigner(); r.ops[o.ID] == nil {
			return nil, fmt.Errorf("drill: %s: not an ECDSA key", o.KeyFile)
		}
	}
	r.run(ctx)
	if !r.report.OK {
		return r.report, ErrFailed
	}
	return r.report, nil
}

// state fetches the replicated state through a snapshot of the leader's.
func (r *runner) state(ctx context.Context) (*domain.State, []byte, error) {
	snap, err := host.FetchSnapshot(ctx, r.hostAPI)
	if err != nil {
		return nil, nil, err
	}
	f := domain.NewFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		return nil, nil, err
	}
	st, tok := f.State()
	if st == nil {
		return nil, nil, errors.New("drill: the cluster holds no domain")
	}
	return st, tok, nil
}

// submit proposes typ with params for the current version, signed by
// signers, and submits it.
func (r *runner) submit(ctx context.Context, typ quorum.CommandType, params []byte, signers ...string) (uint64, error) {
	st, _, err := r.state(ctx)
	if err != nil {
		return 0, err
	}
	c, err := quorum.NewCommand(st.Name, st.Version, typ, params, time.Now(), 0,
		func(b []byte) error { _, err := rand.Read(b); return err })
	if err != nil {
		return 0, err
	}
	raw, err := c.Marshal()
	if err != nil {
		return 0, err
	}
	sc := &quorum.SignedCommand{Command: raw}
	for _, id := range signers {
		sig, err := quorum.SignECDSA(id, r.ops[id], raw)
		if err != nil {
			return 0, err
		}
		if err := sc.Add(sig); err != nil {
			return 0, err
		}
	}
	signed, err := sc.Marshal()
	if err != nil {
		return 0, err
	}
	return host.SubmitTo(ctx, r.hostAPI, signed)
}

// step runs f, expecting success (refusal == "") or an error containing
// refusal, and records the outcome.
func (r *runner) step(name, refusal string, f func() (uint64, error)) {
	start := time.Now()
	v, err := f()
	s := Step{Name: name, Latency: time.Since(start), Version: v, Expected: "done"}
	if refusal != "" {
		s.Expected = "refused: " + refusal
	}
	switch {
	case refusal == "" && err == nil:
		s.OK, s.Outcome = true, fmt.Sprintf("done, state version %d", v)
	case refusal != "" && err != nil && strings.Contains(err.Error(), refusal):
		s.OK, s.Outcome = true, "refused: "+refusal
	case err != nil:
		s.Outcome = "error: " + err.Error()
	default:
		s.Outcome = fmt.Sprintf("done (state version %d), but it should have been refused", v)
	}
	if !s.OK {
		r.report.OK = false
	}
	r.report.Steps = append(r.report.Steps, s)
	if r.log != nil {
		r.log(s)
	}
}

// everyHSMAt waits until every HSM the host reports is at version v.
func (r *runner) everyHSMAt(ctx context.Context, v uint64) (uint64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := host.GetStatus(ctx, r.hostAPI)
		if err == nil {
			all := len(s.HSMs) > 0
			for _, h := range s.HSMs {
				all = all && h.StateVersion == v
			}
			if all {
				return v, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("drill: not every HSM reached version %d", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *runner) run(ctx context.Context) {
	ops := []string{}
	for _, o := range r.c.Operators {
		if o.Role == quorum.RoleKMSOperator {
			ops = append(ops, o.ID)
		}
	}
	if len(ops) < 2 {
		r.step("find two kms-operators", "", func() (uint64, error) { return 0, errors.New("drill: fewer than two kms-operators") })
		return
	}
	a, b, hostID := ops[0], ops[1], r.c.Hosts[0].ID

	// An operator of the drill's own, added, given a role in a rule, and
	// removed again.
	drillKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		r.step("make the drill operator's key", "", func() (uint64, error) { return 0, err })
		return
	}
	pk, _ := quorum.NewECDSAKey(&drillKey.PublicKey)
	drillOp := quorum.Operator{ID: "drill-operator", Role: "drill-auditor", Key: pk}
	addOp, _ := domain.ParamsOperator(drillOp)
	r.step("a single operator adds an operator", "need 1 more kms-operator", func() (uint64, error) {
		return r.submit(ctx, quorum.AddOperator, addOp, a)
	})
	r.step("two operators add an operator", "", func() (uint64, error) {
		return r.submit(ctx, quorum.AddOperator, addOp, a, b)
	})
	rule, _ := domain.ParamsRule(quorum.SetTrustedAttestationRoots, []quorum.Rule{
		{{Role: quorum.RoleKMSOperator, N: 2}}, {{Role: quorum.RoleKMSOperator, N: 1}, {Role: "drill-auditor", N: 1}}})
	r.step("change a rule (roots: 2 kms-operators, or 1 and the auditor)", "", func() (uint64, error) {
		return r.submit(ctx, quorum.SetRule, rule, a, b)
	})
	rm, _ := domain.ParamsID("drill-operator")
	r.step("remove the operator again", "", func() (uint64, error) {
		return r.submit(ctx, quorum.RemoveOperator, rm, a, b)
	})

	// Domain keys.
	var rotated uint64
	r.step("a service host rotates the domain keys", "", func() (uint64, error) {
		v, err := r.submit(ctx, quorum.RotateDomainKeys, nil, hostID)
		rotated = v
		return v, err
	})
	r.step("every HSM reaches the new version", "", func() (uint64, error) { return r.everyHSMAt(ctx, rotated) })

	// An HSM of the drill's own: added, restarted, removed.
	r.drillHSM(ctx, a, b)
}

// drillHSM provisions an HSM in the cluster's HSM data dir (SoftHSM2's, or
// NSS's with trent dev --hsm-module nss), adds it to the domain, restarts
// it (it resyncs from the latest token), and removes it.
func (r *runner) drillHSM(ctx context.Context, a, b string) {
	softDir := filepath.Join(r.dir, string(tokenstore.SoftHSM))
	for _, k := range tokenstore.Kinds {
		if _, err := os.Stat(filepath.Join(r.dir, string(k))); err == nil {
			softDir = filepath.Join(r.dir, string(k))
			break
		}
	}
	info, err := node.Init(node.InitOptions{Dir: softDir, Label: "drill-hsm"})
	if err != nil {
		r.step("provision an HSM", "", func() (uint64, error) { return 0, err })
		return
	}
	member, err := domain.ParseMember(info.HSMID, info.SigningPublicKey, info.AgreementPublicKey)
	if err != nil {
		r.step("provision an HSM", "", func() (uint64, error) { return 0, err })
		return
	}
	serve := func() (*node.Node, string, func(), error) {
		n, err := node.Open(node.Options{Dir: softDir, Label: "drill-hsm"})
		if err != nil {
			return nil, "", nil, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			n.Close()
			return nil, "", nil, err
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { n.Serve(sctx, l); close(done) }()
		return n, "http://" + l.Addr().String(), func() { cancel(); <-done; n.Close() }, nil
	}
	n, url, stop, err := serve()
	if err != nil {
		r.step("start an HSM", "", func() (uint64, error) { return 0, err })
		return
	}
	add, _ := domain.ParamsMember(member)
	r.step("add an HSM to the domain", "", func() (uint64, error) { return r.submit(ctx, quorum.AddMember, add, a, b) })
	deliver := func() (uint64, error) {
		// The drill carries the token to its HSM, as a host serving it would.
		_, tok, err := r.state(ctx)
		if err != nil {
			return 0, err
		}
		cl, err := session.NewClient(session.ClientConfig{Host: &session.Host{ID: "drill"}, URLs: []string{url}})
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		if _, err := cl.Post(ctx, 0, hsmcmd.PathToken, tok, 16); err != nil && !errors.Is(err, session.ErrRefused) {
			return 0, err
		}
		st, _ := n.DomainState()
		if st == nil {
			return 0, errors.New("drill: the HSM holds no domain")
		}
		return st.Version, nil
	}
	r.step("the new HSM imports the latest token", "", deliver)
	stop()
	n, url, stop, err = serve()
	if err != nil {
		r.step("restart the HSM", "", func() (uint64, error) { return 0, err })
		return
	}
	r.step("the restarted HSM (no domain keys) resyncs from the latest token", "", deliver)
	stop()
	rm, _ := domain.ParamsID(member.ID)
	r.step("remove the HSM from the domain", "", func() (uint64, error) { return r.submit(ctx, quorum.RemoveMember, rm, a, b) })
}
