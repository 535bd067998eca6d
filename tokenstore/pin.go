package tokenstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/trentkms/trent/internal/boundedio"
)

// MaxPINFile bounds a PIN file.
const MaxPINFile = 1024

// ReadPINFile reads a PIN from a file (surrounding whitespace removed; an
// empty one is an error).
func ReadPINFile(path string) (string, error) {
	b, err := boundedio.ReadFile(path, MaxPINFile)
	if err != nil {
		return "", fmt.Errorf("tokenstore: %w", err)
	}
	pin := strings.TrimSpace(string(b))
	if pin == "" {
		return "", fmt.Errorf("tokenstore: %s is empty", path)
	}
	return pin, nil
}

// PINFor returns given if it is set, else the PIN in file, else a new
// random PIN (32 hex digits) written to file (mode 0600, never
// overwritten); and the file the PIN is in ("" for given).
func PINFor(given, file string) (pin, from string, err error) {
	if given != "" {
		return given, "", nil
	}
	pin, err = ReadPINFile(file)
	if err == nil {
		return pin, file, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("tokenstore: %w", err)
	}
	pin = hex.EncodeToString(raw)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("tokenstore: %w", err)
	}
	_, werr := f.WriteString(pin + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		return "", "", fmt.Errorf("tokenstore: %w", err)
	}
	return pin, file, nil
}
