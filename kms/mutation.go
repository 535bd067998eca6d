package kms

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/internal/mutation"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Helpers of the kms.* mutations (package internal/mutation) that take
// more than an if. Only code behind mutation.On reaches them, and On is a
// constant false in product builds: there they are dead code.

// mutationMemory is what the stateful mutations remember of earlier
// requests.
var mutationMemory sync.Map

func isNotFound(err error) bool {
	var ke *kmsapi.Error
	return errors.As(err, &ke) && ke.Type == "NotFoundException"
}

// foldedValues is kms.ec-values-case-folded's context: values lower-cased.
func foldedValues(ec map[string]string) map[string]string {
	out := make(map[string]string, len(ec))
	for k, v := range ec {
		out[k] = strings.ToLower(v)
	}
	return out
}

// concatenated is kms.ec-naive-concatenation's context: the sorted pairs
// joined as k=v,k=v, so that contexts with the same joined text collide.
func concatenated(ec map[string]string) map[string]string {
	if len(ec) == 0 {
		return ec
	}
	pairs := make([]string, 0, len(ec))
	for k, v := range ec {
		pairs = append(pairs, k+"="+v)
	}
	slices.Sort(pairs)
	return map[string]string{"context": strings.Join(pairs, ",")}
}

func contextMemoryKey(blob []byte) string {
	sum := sha256.Sum256(blob)
	return "context " + string(sum[:])
}

// rememberContext notes the context a ciphertext was made with, for
// kms.ec-missing-pair-accepted and kms.ec-extra-pair-accepted.
func rememberContext(blob []byte, ec map[string]string) {
	mutationMemory.Store(contextMemoryKey(blob), maps.Clone(ec))
}

// rememberedContext is the context a ciphertext was made with, when the
// active mutation accepts the one asked instead: kms.ec-missing-pair-
// accepted a non-empty part of it, kms.ec-extra-pair-accepted more.
func rememberedContext(blob []byte, asked map[string]string) (map[string]string, bool) {
	v, ok := mutationMemory.Load(contextMemoryKey(blob))
	if !ok {
		return nil, false
	}
	bound := v.(map[string]string)
	within := func(a, b map[string]string) bool {
		for k, v := range a {
			if w, ok := b[k]; !ok || w != v {
				return false
			}
		}
		return true
	}
	switch {
	case mutation.On("kms.ec-missing-pair-accepted") && len(asked) > 0 && len(asked) < len(bound) && within(asked, bound):
		return bound, true
	case mutation.On("kms.ec-extra-pair-accepted") && len(asked) > len(bound) && within(bound, asked):
		return bound, true
	}
	return nil, false
}

// listedOrder is kms.ec-order-bound's context: a host that expects the
// pairs listed sorted by key, either way up, and puts a list that starts
// above where it ends the right way up; any other order it binds as
// listed (a pair records it).
func listedOrder(body []byte, ec map[string]string) map[string]string {
	var raw struct{ EncryptionContext json.RawMessage }
	if json.Unmarshal(body, &raw) != nil || len(raw.EncryptionContext) == 0 {
		return ec
	}
	dec := json.NewDecoder(bytes.NewReader(raw.EncryptionContext))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ec
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if _, verr := dec.Token(); err != nil || verr != nil {
			return ec
		}
		s, _ := k.(string)
		keys = append(keys, s)
	}
	if len(keys) > 1 && keys[0] > keys[len(keys)-1] {
		slices.Reverse(keys)
	}
	if slices.IsSorted(keys) {
		return ec
	}
	out := maps.Clone(ec)
	out["listed-order"] = strings.Join(keys, ",")
	return out
}

// untaggedKey names a Decrypt by its ciphertext without the GCM tag and
// its encoded context, for kms.ciphertext-tag-unchecked.
func untaggedKey(blob, ec []byte) string {
	h := sha256.New()
	h.Write(blob[:max(0, len(blob)-hbk.TagSize)])
	h.Write([]byte{0})
	h.Write(ec)
	return "untagged " + string(h.Sum(nil))
}
