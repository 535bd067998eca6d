// Package dev runs the local development cluster behind `trent dev` and
// `make run`: today it provisions the HSM nodes (SoftHSM tokens with identity
// keys, all in one data dir and one module instance); the service hosts, the
// raft cluster and the KMS API join it as the later issues land.
package dev

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/trentkms/trent/hsm/node"
)

// DefaultHSMs is the number of HSM nodes of a dev cluster.
const DefaultHSMs = 3

// Options configure a dev cluster.
type Options struct {
	Dir  string // data dir; the SoftHSM data dir is Dir/softhsm
	HSMs int    // number of HSM nodes; DefaultHSMs if zero
}

// Cluster is what Provision made.
type Cluster struct {
	Dir  string        `json:"dir"`
	HSMs []node.Result `json:"hsms"`
}

// Provision makes or reuses the HSM nodes of the cluster, calling progress
// (if not nil) before each one.
func Provision(opts Options, progress func(i, n int, label string)) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("dev: no data dir")
	}
	n := opts.HSMs
	if n == 0 {
		n = DefaultHSMs
	}
	if n < 1 || n > 16 {
		return nil, fmt.Errorf("dev: %d HSMs: want 1 to 16", n)
	}
	c := &Cluster{Dir: opts.Dir}
	for i := 1; i <= n; i++ {
		label := fmt.Sprintf("hsm-%d", i)
		if progress != nil {
			progress(i, n, label)
		}
		r, err := node.Init(node.InitOptions{Dir: filepath.Join(opts.Dir, "softhsm"), Label: label})
		if err != nil {
			return nil, fmt.Errorf("dev: %s: %w", label, err)
		}
		c.HSMs = append(c.HSMs, *r)
	}
	return c, nil
}
