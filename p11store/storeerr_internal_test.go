package p11store

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/kms"
)

// A token login that lapsed and could not be restored is the store's
// state: unavailable (retryable), not a key that is not there.
func TestLapsedLoginIsUnavailable(t *testing.T) {
	err := storeErr(&hsm.Error{Op: "find persistent key", Err: hsm.ErrNotLoggedIn})
	assert.ErrorIs(t, err, kms.ErrStoreUnavailable)
	assert.NotErrorIs(t, err, kms.ErrStoreKeyNotFound)
}
