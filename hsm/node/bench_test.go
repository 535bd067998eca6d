package node_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// softMember is a member whose keys are in Go memory: it stands for the
// other HSMs of a large domain, whose cost to an exporter is one ECDH each.
func softMember(b *testing.B) session.Member {
	s, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	a, _ := ecdh.P384().GenerateKey(rand.Reader)
	return session.Member{ID: wire.HSMID(&s.PublicKey), Signing: &s.PublicKey, Agreement: a.PublicKey()}
}

// BenchmarkToken measures exporting (RotateDomainKeys: Apply, one ECDH per
// member in the exporter's token, signatures) and importing (parse,
// signatures, Apply, one ECDH in the importer's token, loading the keys) a
// domain token, for 3, 10 and 100 members, and reports its size.
func BenchmarkToken(b *testing.B) {
	for _, n := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			c := newCeremony(b)
			h1, h2 := c.nodes[0], c.nodes[1]
			st := &domain.State{Name: "test", Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention,
				Operators: []quorum.Operator{c.alice.qop, c.bob.qop, c.carol.qop, c.host.qop},
				Members:   []session.Member{member(h1), member(h2)}}
			for len(st.Members) < n {
				st.Members = append(st.Members, softMember(b))
			}
			slices.SortFunc(st.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
			params, err := domain.ParamsGenesis(st)
			if err != nil {
				b.Fatal(err)
			}
			tok, err := h1.CreateDomain(c.command(0, quorum.CreateDomain, params, c.alice, c.bob), c.now)
			if err != nil {
				b.Fatal(err)
			}
			if err := h2.Import(tok, c.now); err != nil {
				b.Fatal(err)
			}
			var exportNs, importNs, size float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cmd := c.command(uint64(i+1), quorum.RotateDomainKeys, nil, c.host)
				b.StartTimer()
				start := nowNs()
				t, err := h1.Export(cmd, c.now)
				if err != nil {
					b.Fatal(err)
				}
				mid := nowNs()
				if err := h2.Import(t, c.now); err != nil {
					b.Fatal(err)
				}
				end := nowNs()
				b.StopTimer()
				if err := h1.Import(t, c.now); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				exportNs += float64(mid - start)
				importNs += float64(end - mid)
				size = float64(len(t))
			}
			b.ReportMetric(exportNs/float64(b.N), "export-ns/op")
			b.ReportMetric(importNs/float64(b.N), "import-ns/op")
			b.ReportMetric(size, "token-bytes")
		})
	}
}

// BenchmarkReencryptEKTs re-encrypts batches of 1000 EKTs from a retained
// domain key to the active one (two token AES-GCM calls each, one RNG call
// per batch).
func BenchmarkReencryptEKTs(b *testing.B) {
	c := newCeremony(b)
	h1, h2 := c.nodes[0], c.nodes[1]
	if err := h2.Import(c.genesis(h1, h2), c.now); err != nil {
		b.Fatal(err)
	}
	s := c.session(b, h1, h2)
	tok, err := h1.Export(c.command(1, quorum.RotateDomainKeys, nil, c.host), c.now)
	if err != nil {
		b.Fatal(err)
	}
	if err := h1.Import(tok, c.now); err != nil {
		b.Fatal(err)
	}
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = s.EKT()
	}
	b.ResetTimer()
	for b.Loop() {
		_, errs, err := h1.ReencryptEKTs(batch)
		if err != nil || errs[0] != nil {
			b.Fatal(err, errs[0])
		}
	}
	b.ReportMetric(float64(len(batch))*float64(b.N)/b.Elapsed().Seconds(), "EKTs/s")
}

var _ = uint16(hsmcmd.Ping)

func nowNs() int64 { return time.Now().UnixNano() }
