package xks_test

import (
	"testing"

	"github.com/trentkms/trent/conformance/conformancetest"
	xksconf "github.com/trentkms/trent/conformance/xks"
)

// Every check names its own mutation, and the xks.* mutants are exactly
// the checks'.
func TestMutationNames(t *testing.T) {
	conformancetest.MutationsClaimed(t, "../..", "xks.", xksconf.Catalogue())
}
