package domain_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/session"
)

func testView(t *testing.T) *domain.View {
	op, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sig, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	agr, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ak, err := agr.PublicKey.ECDH()
	require.NoError(t, err)
	return &domain.View{
		Name: "dev", Version: 1,
		Operators: []session.Operator{{ID: "host-1", Key: &op.PublicKey, Roles: []string{session.RoleServiceHost}}},
		Members:   []session.Member{{ID: wire.HSMID(&sig.PublicKey), Signing: &sig.PublicKey, Agreement: ak}},
	}
}

func TestViewRoundTrip(t *testing.T) {
	v := testView(t)
	data, err := v.Marshal()
	require.NoError(t, err)
	got, err := domain.ParseView(data)
	require.NoError(t, err)
	assert.Equal(t, v.Name, got.Name)
	assert.True(t, v.Operators[0].Key.Equal(got.Operators[0].Key))
	assert.True(t, v.Members[0].Agreement.Equal(got.Members[0].Agreement))
	dir, err := got.Directory()
	require.NoError(t, err)
	_, err = dir.HostKey("host-1")
	require.NoError(t, err)
}

func TestViewRefusals(t *testing.T) {
	v := testView(t)
	data, err := v.Marshal()
	require.NoError(t, err)
	s := string(data)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wrongID := *v
	wrongID.Members = []session.Member{v.Members[0]}
	wrongID.Members[0].ID = "hsm-0000000000000000"
	wrongIDData, err := wrongID.Marshal()
	require.NoError(t, err)
	dup := *v
	dup.Operators = append(dup.Operators, dup.Operators[0])
	dupData, err := dup.Marshal()
	require.NoError(t, err)
	p256View := *v
	p256View.Operators = []session.Operator{{ID: "host-1", Key: &p256.PublicKey}}
	p256Data, err := p256View.Marshal()
	require.NoError(t, err)

	for name, in := range map[string]string{
		"duplicate key":      strings.Replace(s, `"name": "dev",`, `"name": "dev", "name": "other",`, 1),
		"unknown field":      strings.Replace(s, `"name": "dev",`, `"name": "dev", "colour": 1,`, 1),
		"trailing data":      s + "{}",
		"member ID mismatch": string(wrongIDData),
		"duplicate operator": string(dupData),
		"P-256 key":          string(p256Data),
		"bad domain name":    strings.Replace(s, `"name": "dev"`, `"name": "has space"`, 1),
	} {
		_, err := domain.ParseView([]byte(in))
		assert.ErrorIs(t, err, domain.ErrInvalidView, name)
	}
}

func FuzzParseView(f *testing.F) {
	f.Add([]byte(`{"name":"dev","version":1,"operators":[],"members":[]}`))
	f.Add([]byte(`{"name":"dev","version":1,"operators":[{"id":"h","public_key":"AAAA","roles":["service-host"]}],"members":[]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := domain.ParseView(in)
		if err != nil {
			return
		}
		out, err := v.Marshal()
		require.NoError(t, err)
		again, err := domain.ParseView(out)
		require.NoError(t, err)
		assert.Equal(t, v.Name, again.Name)
	})
}
