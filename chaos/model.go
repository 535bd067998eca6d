package chaos

import (
	"fmt"
	"math"
	"sort"

	"github.com/anishathalye/porcupine"
)

// keyState is the model's state of one key: the partition of the key's
// operations.
type keyState struct {
	Exists  bool
	Enabled bool
	Policy  string
}

// aliasState is the model's state of one alias: the key it names ("" for
// none).
type aliasState struct {
	Target string
}

// partitionOf names the model partition an operation belongs to: "key:ID"
// or "alias:NAME".
func partitionOf(op *Op) string {
	switch op.Kind {
	case CreateAlias, UpdateAlias, DescribeAlias:
		return "alias:" + op.Alias
	}
	return "key:" + op.Key
}

// Model is the porcupine model of the KMS API that the workload uses,
// partitioned by key and by alias. An operation's input is its *Op; its
// output is the same *Op, or nil for a write whose outcome is unknown (it
// failed with a retryable error), which may or may not take effect.
var Model = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		parts := map[string][]porcupine.Operation{}
		for _, o := range history {
			p := partitionOf(o.Input.(*Op))
			parts[p] = append(parts[p], o)
		}
		names := make([]string, 0, len(parts))
		for n := range parts {
			names = append(names, n)
		}
		sort.Strings(names)
		out := make([][]porcupine.Operation, 0, len(parts))
		for _, n := range names {
			out = append(out, parts[n])
		}
		return out
	},
	Init: func() []any { return []any{nil} },
	Step: func(state, input, output any) []any {
		op := input.(*Op)
		var out *Op
		if output != nil {
			out = output.(*Op)
		}
		switch op.Kind {
		case CreateAlias, UpdateAlias, DescribeAlias:
			s, _ := state.(aliasState)
			return stepAlias(s, op, out)
		}
		s, _ := state.(keyState)
		return stepKey(s, op, out)
	},
	DescribeOperation: func(input, output any) string {
		op := input.(*Op)
		if output == nil {
			return fmt.Sprintf("%s %s: unknown", op.Kind, describeArgs(op))
		}
		return fmt.Sprintf("%s %s → %s", op.Kind, describeArgs(op), describeResult(output.(*Op)))
	},
	DescribeState: func(state any) string {
		switch s := state.(type) {
		case keyState:
			if !s.Exists {
				return "no key"
			}
			return fmt.Sprintf("enabled=%v policy=%s", s.Enabled, s.Policy)
		case aliasState:
			if s.Target == "" {
				return "no alias"
			}
			return "→ " + s.Target
		}
		return "initial"
	},
}

func describeArgs(op *Op) string {
	switch op.Kind {
	case CreateAlias, UpdateAlias:
		return op.Alias + "→" + op.Target
	case DescribeAlias:
		return op.Alias
	case PutKeyPolicy:
		return op.Key + " " + op.Policy
	}
	return op.Key
}

func describeResult(op *Op) string {
	if op.Outcome != OK {
		return op.Outcome
	}
	switch op.Kind {
	case DescribeKey:
		return fmt.Sprintf("enabled=%v", op.Enabled)
	case DescribeAlias:
		return op.Target
	case GetKeyPolicy:
		return op.Policy
	case Decrypt:
		if op.Wrong {
			return "wrong plaintext"
		}
	}
	return OK
}

// maybe returns the states of a write that may or may not have happened.
func maybe[S comparable](s S, applied []any) []any {
	out := []any{s}
	for _, a := range applied {
		if a.(S) != s {
			out = append(out, a)
		}
	}
	return out
}

func stepKey(s keyState, op, out *Op) []any {
	if out == nil { // a write of unknown outcome
		return maybe(s, stepKey(s, op, &Op{Kind: op.Kind, Outcome: OK, Policy: op.Policy}))
	}
	same := []any{s}
	switch out.Outcome {
	case OK:
	case "NotFoundException":
		if op.Kind != CreateKey && !s.Exists {
			return same
		}
		return nil
	case "DisabledException", "KMSInvalidStateException":
		switch op.Kind {
		case Encrypt, Decrypt, GenerateDataKey:
			if s.Exists && !s.Enabled {
				return same
			}
		}
		return nil
	default:
		return nil // InvalidCiphertextException for an acknowledged ciphertext, or unexpected
	}
	if op.Kind == CreateKey {
		if s.Exists {
			return nil
		}
		return []any{keyState{Exists: true, Enabled: true, Policy: "default"}}
	}
	if !s.Exists {
		return nil
	}
	switch op.Kind {
	case DescribeKey:
		if out.Enabled == s.Enabled {
			return same
		}
	case EnableKey, DisableKey:
		n := s
		n.Enabled = op.Kind == EnableKey
		return []any{n}
	case PutKeyPolicy:
		n := s
		n.Policy = op.Policy
		return []any{n}
	case GetKeyPolicy:
		if out.Policy == s.Policy {
			return same
		}
	case Encrypt, GenerateDataKey:
		if s.Enabled {
			return same
		}
	case Decrypt:
		if s.Enabled && !out.Wrong {
			return same
		}
	}
	return nil
}

func stepAlias(s aliasState, op, out *Op) []any {
	if out == nil {
		return maybe(s, stepAlias(s, op, &Op{Kind: op.Kind, Outcome: OK, Target: op.Target}))
	}
	same := []any{s}
	switch op.Kind {
	case CreateAlias:
		switch out.Outcome {
		case OK:
			if s.Target == "" {
				return []any{aliasState{Target: op.Target}}
			}
		case "AlreadyExistsException":
			if s.Target != "" {
				return same
			}
		}
	case UpdateAlias:
		switch out.Outcome {
		case OK:
			if s.Target != "" {
				return []any{aliasState{Target: op.Target}}
			}
		case "NotFoundException":
			if s.Target == "" {
				return same
			}
		}
	case DescribeAlias:
		switch out.Outcome {
		case OK:
			if s.Target != "" && s.Target == out.Target {
				return same
			}
		case "NotFoundException":
			if s.Target == "" {
				return same
			}
		}
	}
	return nil
}

// isWrite reports whether an operation of kind k changes the model's
// state.
func isWrite(k Kind) bool {
	switch k {
	case CreateKey, CreateAlias, UpdateAlias, PutKeyPolicy, EnableKey, DisableKey:
		return true
	}
	return false
}

// operations turns a history into porcupine's operations: reads that
// failed retryably are left out, and so is a CreateKey that did (it named
// no key); a write that failed retryably never returns.
func operations(ops []Op) []porcupine.Operation {
	var out []porcupine.Operation
	for i := range ops {
		op := &ops[i]
		o := porcupine.Operation{ClientId: op.Client, Input: op, Call: int64(op.Call), Output: op, Return: int64(op.Return), Metadata: op.Host}
		if op.Outcome == Retryable {
			if !isWrite(op.Kind) || op.Kind == CreateKey {
				continue
			}
			o.Output, o.Return = nil, math.MaxInt64/2
		}
		out = append(out, o)
	}
	return out
}
