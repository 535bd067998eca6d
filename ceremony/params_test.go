package ceremony_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/quorum"
)

func TestParseRule(t *testing.T) {
	for in, want := range map[string]quorum.Rule{
		"2 kms-operator":                  {{Role: "kms-operator", N: 2}},
		"1 kms-operator + 1 service-host": {{Role: "kms-operator", N: 1}, {Role: "service-host", N: 1}},
		"  1 a+2 b ":                      {{Role: "a", N: 1}, {Role: "b", N: 2}},
		"32 a":                            {{Role: "a", N: 32}},
	} {
		got, err := ceremony.ParseRule(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		again, err := ceremony.ParseRule(got.String())
		require.NoError(t, err)
		assert.Equal(t, got, again, "String and ParseRule are inverses")
	}
	for _, in := range []string{"", "kms-operator", "0 a", "33 a", "-1 a", "a 2", "2 a b", "2 a +", "+ 2 a", "two a",
		"1 a\x00", strings.Repeat("1 a + ", domain.MaxRequirements) + "1 a"} {
		_, err := ceremony.ParseRule(in)
		require.Error(t, err, "%q", in)
		assert.True(t, strings.HasPrefix(err.Error(), "ceremony: rule "), err.Error())
	}
	assert.Equal(t, "2 kms-operator | 1 service-host", ceremony.FormatRules(quorum.DefaultRules()[quorum.RotateDomainKeys]))
	assert.True(t, ceremony.RulesEqual(quorum.DefaultRules(), quorum.DefaultRules()))
	other := quorum.DefaultRules()
	other[quorum.AddMember] = []quorum.Rule{{{Role: "kms-operator", N: 3}}}
	assert.False(t, ceremony.RulesEqual(quorum.DefaultRules(), other))
}

func TestDecodeChangeIsStrict(t *testing.T) {
	s := newCeremonyState(t)
	member, err := domain.ParamsMember(s.st.Members[0])
	require.NoError(t, err)
	rule, err := domain.ParamsRule(quorum.AddMember, []quorum.Rule{{{Role: "a", N: 1}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		typ    quorum.CommandType
		params []byte
		want   error
	}{
		{"trailing byte", quorum.AddMember, append(member, 0), domain.ErrMalformed},
		{"truncated member", quorum.AddMember, member[:len(member)-1], domain.ErrMalformed},
		{"rotate with parameters", quorum.RotateDomainKeys, []byte{0}, domain.ErrMalformed},
		{"retention out of range", quorum.SetRetention, []byte{200}, domain.ErrMalformed},
		{"rule for unknown type", quorum.SetRule, append([]byte{0, 99}, rule[2:]...), domain.ErrCommand},
		{"rule with no alternative", quorum.SetRule, []byte{0, 2, 0}, domain.ErrMalformed},
		{"bad ID", quorum.RemoveOperator, []byte{3, 'a', ' ', 'b'}, domain.ErrMalformed},
		{"unknown type", quorum.CommandType(99), nil, domain.ErrCommand},
		{"empty genesis", quorum.CreateDomain, nil, domain.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ceremony.DecodeChange(&quorum.Command{Domain: "test", Type: tc.typ, Params: tc.params})
			require.ErrorIs(t, err, tc.want)
		})
	}
	ch, err := ceremony.DecodeChange(&quorum.Command{Domain: "test", Type: quorum.AddMember, Params: member})
	require.NoError(t, err)
	assert.Equal(t, "add member HSM "+s.st.Members[0].ID, ceremony.Describe(ch))
}
