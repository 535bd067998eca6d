package kms_test

import (
	"testing"

	"github.com/trentkms/trent/conformance/conformancetest"
	kmsconf "github.com/trentkms/trent/conformance/kms"
)

// Every check names its own mutation, and the kms.* mutants are exactly
// the checks'.
func TestMutationNames(t *testing.T) {
	conformancetest.MutationsClaimed(t, "../..", "kms.", kmsconf.Catalogue())
}
