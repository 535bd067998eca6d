package policy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		p, s string
		fold bool
		want bool
	}{
		{"", "", false, true},
		{"", "a", false, false},
		{"a", "", false, false},
		{"*", "", false, true},
		{"*", "anything:at/all", false, true},
		{"**", "x", false, true},
		{"a*", "a", false, true},
		{"a*", "ba", false, false},
		{"*a", "bba", false, true},
		{"*a", "bab", false, false},
		{"a*b*c", "aXbYc", false, true},
		{"a*b*c", "aXbYcZ", false, false},
		{"a*b*c", "abcbc", false, true},
		{"?", "", false, false},
		{"?", "é", false, true}, // one character, two bytes
		{"??", "é", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"*?", "", false, false},
		{"*?", "x", false, true},
		{"kms:encrypt", "KMS:Encrypt", true, true},
		{"kms:encrypt", "KMS:Encrypt", false, false},
		{"kms:é*", "KMS:É1", true, true},
		{"kms:é*", "KMS:É1", false, false},
		{"key/*", "key/", false, true},
		{"a*a*a*a*b", strings.Repeat("a", 200), false, false},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, glob(tc.p, tc.s, tc.fold), "glob(%q, %q, %v)", tc.p, tc.s, tc.fold)
	}
}

func TestSplitARN(t *testing.T) {
	var parts [6]string
	require.True(t, splitARN("arn:aws:logs:us-east-1:111122223333:log-group:g:s", &parts))
	require.Equal(t, [6]string{"arn", "aws", "logs", "us-east-1", "111122223333", "log-group:g:s"}, parts)
	require.True(t, splitARN("arn:aws:iam::111122223333:root", &parts))
	require.Equal(t, [6]string{"arn", "aws", "iam", "", "111122223333", "root"}, parts)
	require.False(t, splitARN("arn:aws:iam::111122223333", &parts))
}

func TestParseNumber(t *testing.T) {
	for s, want := range map[string]float64{"10": 10, "-1.5": -1.5, "+2": 2, "1e3": 1000, ".5": 0.5, "5.": 5, "1E-2": 0.01} {
		n, ok := parseNumber(s)
		require.True(t, ok, s)
		require.Equal(t, want, n, s)
	}
	for _, s := range []string{"", "-", ".", "1e", "1e+", "0x10", "1_000", "Inf", "NaN", "1e999", " 1", "1 ", "1.2.3"} {
		_, ok := parseNumber(s)
		require.False(t, ok, s)
	}
}
