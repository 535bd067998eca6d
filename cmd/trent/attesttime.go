package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// attestationTime is the --attestation-time flag: an RFC 3339 time at
// which attestation documents are verified instead of the clock, for
// conformance runs with recorded documents. Never on by default.
type attestationTime struct{ t *time.Time }

func (a *attestationTime) String() string {
	if a.t == nil {
		return ""
	}
	return a.t.Format(time.RFC3339)
}

func (a *attestationTime) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time: %w", err)
	}
	a.t = &t
	return nil
}

func (a *attestationTime) Type() string { return "time" }

// clock is the verification clock the flag sets (nil: the real clock).
func (a *attestationTime) clock() func() time.Time {
	if a.t == nil {
		return nil
	}
	t := *a.t
	return func() time.Time { return t }
}

func addAttestationTime(f *pflag.FlagSet, a *attestationTime) {
	f.Var(a, "attestation-time", "verify Nitro attestation documents as of this RFC 3339 time instead of now (conformance runs only)")
}
