// Package boundedio reads files and bodies from outside Trent (operator
// files, key files, tokens, HTTP bodies) with a size limit, so that no
// decoder ever sees, and no buffer ever grows to, more than its
// documented maximum.
package boundedio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is wrapped when a file exceeds its limit.
var ErrTooLarge = errors.New("file too large")

// ReadFile reads path, failing with ErrTooLarge if it holds more than limit
// bytes (without reading more than limit+1 of them).
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		clear(data)
		return nil, fmt.Errorf("%s: %w (over %d bytes)", path, ErrTooLarge, limit)
	}
	return data, nil
}

// ReadAll reads r to its end, failing with ErrTooLarge if it holds more
// than limit bytes (without reading more than limit+1 of them). size is
// what r says it holds (an HTTP Content-Length, -1 if unknown): a size
// within the limit sizes the buffer once, where io.ReadAll would grow it
// by doubling, copying each time (a request of 8 KiB made five buffers).
// A wrong size costs a regrowth, never a wrong answer.
func ReadAll(r io.Reader, size, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if size >= 0 && size <= limit {
		buf.Grow(int(size) + bytes.MinRead) // ReadFrom wants MinRead free to read the EOF
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		clear(buf.Bytes())
		return nil, fmt.Errorf("%w (over %d bytes)", ErrTooLarge, limit)
	}
	return buf.Bytes(), nil
}
