package hsm_test

import (
	"testing"

	"github.com/trentkms/trent/conformance/conformancetest"
	hsmconf "github.com/trentkms/trent/conformance/hsm"
)

// Every check names its own mutation, and the hsm.* mutants are exactly
// the checks'.
func TestMutationNames(t *testing.T) {
	conformancetest.MutationsClaimed(t, "../..", "hsm.", hsmconf.Catalogue())
}
