package nitro_test

import (
	"bytes"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/nitro"
)

// extend is the measurement of nitro-cli, written out independently:
// SHA-384(48 zero bytes ‖ SHA-384(data)).
func extend(data []byte) []byte {
	d := sha512.Sum384(data)
	out := sha512.Sum384(append(make([]byte, 48), d[:]...))
	return out[:]
}

func TestMeasureImage(t *testing.T) {
	app := []byte("an enclave application")
	eif := nitro.BuildEIF(app)
	pcrs, err := nitro.MeasureImage(app)
	require.NoError(t, err)
	again, err := nitro.MeasureEIF(eif)
	require.NoError(t, err)
	require.Equal(t, pcrs, again, "a file and the EIF built from it measure the same")
	require.Equal(t, extend(app), pcrs[2], "PCR2 covers the application ramdisk alone")

	other, err := nitro.MeasureImage([]byte("another application"))
	require.NoError(t, err)
	require.Equal(t, pcrs[1], other[1], "PCR1 (kernel, cmdline, bootstrap) does not depend on the application")
	require.NotEqual(t, pcrs[0], other[0])
	require.NotEqual(t, pcrs[2], other[2])
}

// An empty application leaves PCR0 = PCR1 and the PCR2 nitro-cli prints
// for images with no application ramdisk (21b9efbc18480766…, the
// published value for such images).
func TestMeasureEIFEmptyApplication(t *testing.T) {
	pcrs, err := nitro.MeasureEIF(nitro.BuildEIF(nil))
	require.NoError(t, err)
	require.Equal(t, "21b9efbc18480766", hex.EncodeToString(pcrs[2])[:16])
	require.Equal(t, pcrs[0], pcrs[1])
}

func TestMeasureEIFRefusesDamage(t *testing.T) {
	eif := nitro.BuildEIF([]byte("app"))
	for name, bad := range map[string][]byte{
		"flipped data byte": func() []byte { b := append([]byte(nil), eif...); b[len(b)-1] ^= 1; return b }(),
		"trailing byte":     append(append([]byte(nil), eif...), 0),
		"truncated":         eif[:len(eif)-1],
		"header only":       eif[:548],
		"short":             eif[:100],
	} {
		_, err := nitro.MeasureEIF(bad)
		require.ErrorIs(t, err, nitro.ErrImage, name)
	}
}

func TestSimCAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nitro", "sim-nsm.pem")
	ca, created, err := nitro.OpenSimCA(path)
	require.NoError(t, err)
	require.True(t, created)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	again, created, err := nitro.OpenSimCA(path)
	require.NoError(t, err)
	require.False(t, created)
	require.True(t, ca.Root.Equal(again.Root))

	// A document from the loaded hierarchy verifies against the first's root.
	now := time.Now()
	doc, err := again.Attest(nitro.AttestRequest{PCRs: map[int][]byte{0: make([]byte, 48)}, Time: now})
	require.NoError(t, err)
	v := &nitro.Verifier{Roots: []*x509.Certificate{ca.Root}}
	_, err = v.Verify(doc)
	require.NoError(t, err)

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for name, bad := range map[string][]byte{
		"trailing":  append(append([]byte(nil), b...), []byte("x")...),
		"truncated": b[:len(b)/2],
		"empty":     nil,
	} {
		_, err := nitro.ParseSimCA(bad, nil)
		require.ErrorIs(t, err, nitro.ErrSimCAFile, name)
	}
	other, err := nitro.NewSimCA(nil, now)
	require.NoError(t, err)
	ob, err := other.Marshal()
	require.NoError(t, err)
	// The first certificate and key of one file with the rest of another:
	// the chain no longer links.
	mixed := append(b[:indexNth(b, "-----BEGIN CERTIFICATE-----", 1)], ob[indexNth(ob, "-----BEGIN CERTIFICATE-----", 1):]...)
	_, err = nitro.ParseSimCA(mixed, nil)
	require.ErrorIs(t, err, nitro.ErrSimCAFile)

	// A file over MaxSimCAFile is refused before it is parsed.
	big := filepath.Join(t.TempDir(), "big.pem")
	require.NoError(t, os.WriteFile(big, append(b, make([]byte, nitro.MaxSimCAFile)...), 0o600))
	_, err = nitro.LoadSimCA(big)
	require.ErrorIs(t, err, nitro.ErrSimCAFile)
}

// indexNth is the offset of the n-th (from 0) occurrence of sep in b.
func indexNth(b []byte, sep string, n int) int {
	off := 0
	for i := 0; ; i++ {
		j := bytes.Index(b[off:], []byte(sep))
		if j < 0 {
			panic("indexNth: not found")
		}
		if i == n {
			return off + j
		}
		off += j + len(sep)
	}
}

func FuzzMeasureEIF(f *testing.F) {
	f.Add(nitro.BuildEIF([]byte("app")))
	f.Add(nitro.BuildEIF(nil))
	f.Add([]byte(".eif"))
	f.Fuzz(func(t *testing.T, in []byte) {
		pcrs, err := nitro.MeasureEIF(in)
		if err != nil {
			return
		}
		if len(pcrs) != 3 || len(pcrs[0]) != 48 {
			t.Fatalf("measured %d PCRs", len(pcrs))
		}
		// A file that measures is one MeasureImage takes as it is.
		again, err := nitro.MeasureImage(in)
		if err != nil || !bytes.Equal(again[0], pcrs[0]) {
			t.Fatal("MeasureImage disagrees with MeasureEIF")
		}
	})
}

func FuzzParseSimCA(f *testing.F) {
	ca, err := nitro.NewSimCA(nil, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	b, err := ca.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ca, err := nitro.ParseSimCA(in, nil)
		if err != nil {
			return
		}
		out, err := ca.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nitro.ParseSimCA(out, nil); err != nil {
			t.Fatalf("a parsed file does not parse once written again: %v", err)
		}
	})
}
