// Package boundedio reads files from outside Trent (operator files, key
// files, tokens) with a size limit, so that no decoder ever sees, and no
// buffer ever grows to, more than its documented maximum.
package boundedio

import (
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
