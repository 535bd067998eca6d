package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// Kind is an operation of the workload.
type Kind string

// The workload's operations. DescribeAlias is DescribeKey by alias name.
const (
	CreateKey       Kind = "CreateKey"
	DescribeKey     Kind = "DescribeKey"
	DescribeAlias   Kind = "DescribeAlias"
	CreateAlias     Kind = "CreateAlias"
	UpdateAlias     Kind = "UpdateAlias"
	PutKeyPolicy    Kind = "PutKeyPolicy"
	GetKeyPolicy    Kind = "GetKeyPolicy"
	EnableKey       Kind = "EnableKey"
	DisableKey      Kind = "DisableKey"
	Encrypt         Kind = "Encrypt"
	Decrypt         Kind = "Decrypt"
	GenerateDataKey Kind = "GenerateDataKey"
)

// Outcomes other than an error code.
const (
	OK        = "ok"
	Retryable = "retryable" // may or may not have happened
)

// Op is one recorded operation. Outcome is OK, Retryable, or the error
// code of a permanent error ("NotFoundException").
type Op struct {
	ID     int    `json:"id"`
	Client int    `json:"client"`
	Host   string `json:"host"`
	Kind   Kind   `json:"kind"`
	// Key is the key operated on (CreateKey: the key made; Decrypt: the
	// ciphertext's key).
	Key   string `json:"key,omitempty"`
	Alias string `json:"alias,omitempty"`
	// Target is the key an alias is set to (Create/UpdateAlias) or was
	// read to name (DescribeAlias).
	Target string `json:"target,omitempty"`
	// Policy is the policy's tag put or read (its Id; "default").
	Policy string `json:"policy,omitempty"`
	// Enabled is the state DescribeKey read.
	Enabled bool `json:"enabled,omitempty"`
	// CT is the ciphertext made (Encrypt, GenerateDataKey) or decrypted:
	// an index of History.Ciphertexts; -1 for none.
	CT int `json:"ct"`
	// Wrong: Decrypt answered another plaintext than the one encrypted.
	Wrong   bool          `json:"wrong,omitempty"`
	Call    time.Duration `json:"call"`   // since the history began
	Return  time.Duration `json:"return"` // since the history began
	Outcome string        `json:"outcome"`
	Message string        `json:"message,omitempty"`
	// Final: made by the verification after healing.
	Final bool `json:"final,omitempty"`
}

// Failed reports whether the operation did not succeed.
func (o *Op) Failed() bool { return o.Outcome != OK }

// Ciphertext is an acknowledged ciphertext and what it must decrypt to.
type Ciphertext struct {
	Key       string `json:"key"`
	Blob      []byte `json:"blob"`
	Plaintext []byte `json:"plaintext"`
}

// History records operations from concurrent clients. Its methods are safe
// for concurrent use.
type History struct {
	start time.Time

	mu          sync.Mutex
	ops         []Op
	ciphertexts []Ciphertext
}

// NewHistory begins a history now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the time since the history began.
func (h *History) Now() time.Duration { return time.Since(h.start) }

// Add records op (its ID is assigned) and returns its ID.
func (h *History) Add(op Op) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.ID = len(h.ops)
	h.ops = append(h.ops, op)
	return op.ID
}

// AddCiphertext records an acknowledged ciphertext and returns its index.
func (h *History) AddCiphertext(ct Ciphertext) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ciphertexts = append(h.ciphertexts, ct)
	return len(h.ciphertexts) - 1
}

// Ciphertext returns the ciphertext of index i.
func (h *History) Ciphertext(i int) Ciphertext {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ciphertexts[i]
}

// Ops returns a copy of the operations, sorted by invoke time.
func (h *History) Ops() []Op {
	h.mu.Lock()
	ops := append([]Op(nil), h.ops...)
	h.mu.Unlock()
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	return ops
}

// Ciphertexts returns a copy of the acknowledged ciphertexts.
func (h *History) Ciphertexts() []Ciphertext {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Ciphertext(nil), h.ciphertexts...)
}

// WriteFile writes the history as JSON (operations and ciphertexts).
func (h *History) WriteFile(path string) error {
	data, err := json.MarshalIndent(struct {
		Ops         []Op         `json:"ops"`
		Ciphertexts []Ciphertext `json:"ciphertexts"`
	}{h.Ops(), h.Ciphertexts()}, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// ReadHistoryFile reads a history that WriteFile wrote (to check it
// again: Check(ops, timeout)).
func ReadHistoryFile(path string) ([]Op, []Ciphertext, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var h struct {
		Ops         []Op         `json:"ops"`
		Ciphertexts []Ciphertext `json:"ciphertexts"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, nil, fmt.Errorf("chaos: %s: %w", path, err)
	}
	sort.SliceStable(h.Ops, func(i, j int) bool { return h.Ops[i].Call < h.Ops[j].Call })
	return h.Ops, h.Ciphertexts, nil
}
