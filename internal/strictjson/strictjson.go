// Package strictjson decodes JSON from outside Trent strictly: one value,
// no unknown fields, no duplicate object keys (at any depth), no trailing
// data, and a size limit. encoding/json accepts duplicate keys (the last
// wins) and that is what this package adds; everything else is
// encoding/json's own checks, switched on.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrInvalid is wrapped by every error Unmarshal returns.
var ErrInvalid = errors.New("strictjson: invalid document")

// MaxDepth bounds nesting.
const MaxDepth = 64

// Unmarshal decodes data (at most limit bytes) into v.
func Unmarshal(data []byte, limit int, v any) error {
	if len(data) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalid, len(data), limit)
	}
	if err := checkKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the value", ErrInvalid)
	}
	return nil
}

// checkKeys walks the token stream and refuses a repeated key in any
// object, and nesting deeper than MaxDepth.
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		keys   map[string]bool
		isKey  bool // the next token of an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.isKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					stack[len(stack)-1].isKey = stack[len(stack)-1].object
				}
				continue
			}
			k := tok.(string) // the decoder guarantees object keys are strings
			if top.keys[k] {
				return fmt.Errorf("%w: duplicate key %q", ErrInvalid, k)
			}
			top.keys[k] = true
			top.isKey = false
			continue
		}
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{', '[':
				if len(stack) >= MaxDepth {
					return fmt.Errorf("%w: nested deeper than %d", ErrInvalid, MaxDepth)
				}
				stack = append(stack, &frame{object: d == '{', keys: map[string]bool{}, isKey: d == '{'})
				continue
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		}
		// A value ended: in an object, a key comes next.
		if len(stack) > 0 {
			stack[len(stack)-1].isKey = stack[len(stack)-1].object
		}
	}
}
