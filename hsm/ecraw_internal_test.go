package hsm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A scalar the module gives in its shortest form comes back at the
// curve's size; one longer than the curve's, or none, is refused.
func TestFixedScalar(t *testing.T) {
	d, err := fixedScalar([]byte{1, 2, 3}, 5)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 1, 2, 3}, d)
	d, err = fixedScalar([]byte{9, 8, 7, 6, 5}, 5)
	require.NoError(t, err)
	require.Equal(t, []byte{9, 8, 7, 6, 5}, d)
	_, err = fixedScalar(make([]byte, 6), 5)
	require.ErrorIs(t, err, ErrPKCS11)
	_, err = fixedScalar(nil, 5)
	require.ErrorIs(t, err, ErrPKCS11)
}
