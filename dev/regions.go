package dev

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// Two regions (trent dev --regions 2; docs/operations.md, "Running two
// regions"): one dev cluster per region, each in DIR/REGION with its own
// SoftHSM tokens, domain (dev-REGION), dev operators and service hosts,
// its KMS API answering in its own region with the same dev credentials.
// Each region has a peer-region TLS identity of its own (DIR/regions/
// REGION/: a CA, and a certificate naming the region) and trusts the
// others' CAs; its hosts serve the peer regions over mutual TLS. Once all
// run, each domain records every other region as a peer region, by a
// SetPeerRegion command its two dev operators sign, so that multi-Region
// keys can be replicated between them.

// RegionNames are the regions StartRegions runs, in order.
var RegionNames = []string{"us-east-1", "us-west-2"}

// Region i's ports: the HSMs from Listen's port + 1000×i (hosts and their
// peer-region listeners at +100, +200 and +400 from there), the KMS API
// on KMSListen's port + i.
const (
	regionPortStep   = 1000
	regionListenBase = 400
)

// StartRegions starts n regions' clusters (2 to len(RegionNames)) under
// opts.Dir, each from opts (Exec, with at least one host), and makes
// their domains trust each other.
func StartRegions(opts Options, n int, progress func(step string)) (out []*Cluster, err error) {
	say := func(format string, a ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, a...))
		}
	}
	switch {
	case n < 2 || n > len(RegionNames):
		return nil, fmt.Errorf("dev: %d regions: want 2 to %d", n, len(RegionNames))
	case opts.Exec == "":
		return nil, errors.New("dev: regions run as processes (not --in-process): one SoftHSM configuration per process")
	case opts.Hosts < 1:
		return nil, errors.New("dev: regions need service hosts")
	case opts.Dir == "":
		return nil, errors.New("dev: no data dir")
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.KMSListen == "" {
		opts.KMSListen = DefaultKMSListen
	}
	ip, port0, err := splitListen(opts.Listen)
	if err != nil {
		return nil, err
	}
	kmsIP, kmsPort, err := splitListen(opts.KMSListen)
	if err != nil {
		return nil, err
	}
	regions := RegionNames[:n]
	base := opts.Dir
	files := map[string]RegionFiles{}
	listen := map[string][]string{}
	var free []int
	if port0 == 0 {
		// Every region's ports at once: one released early could come
		// back twice. Each cluster's own pool then avoids them all
		// (regionPorts).
		if free, err = freePorts(ip, n*opts.Hosts); err != nil {
			return nil, err
		}
	}
	for i, r := range regions {
		f, err := regionIdentity(filepath.Join(base, "regions", r), r)
		if err != nil {
			return nil, err
		}
		files[r] = f
		for j := range opts.Hosts {
			port := port0 + regionPortStep*i + regionListenBase + j
			if port0 == 0 {
				port = free[i*opts.Hosts+j]
			}
			listen[r] = append(listen[r], net.JoinHostPort(ip, strconv.Itoa(port)))
		}
	}
	// Every region trusts the others' CAs.
	for _, r := range regions {
		var cas []byte
		for _, o := range regions {
			if o != r {
				b, err := os.ReadFile(filepath.Join(base, "regions", o, "ca.pem"))
				if err != nil {
					return nil, fmt.Errorf("dev: %w", err)
				}
				cas = append(cas, b...)
			}
		}
		f := files[r]
		f.CA = filepath.Join(base, "regions", r, "peers-ca.pem")
		if err := os.WriteFile(f.CA, cas, 0o644); err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		files[r] = f
	}
	if err := shareCredentials(base, regions); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, c := range out {
				c.Stop()
			}
			out = nil
		}
	}()
	for i, r := range regions {
		o := opts
		o.Dir, o.Region, o.Domain = filepath.Join(base, r), r, "dev-"+r
		o.Listen = net.JoinHostPort(ip, strconv.Itoa(port0+regionPortStep*i))
		if port0 == 0 {
			o.Listen = net.JoinHostPort(ip, "0")
		}
		o.KMSListen = net.JoinHostPort(kmsIP, strconv.Itoa(kmsPort+i))
		if kmsPort == 0 {
			o.KMSListen = net.JoinHostPort(kmsIP, "0")
		}
		o.PeerRegions = map[string][]string{}
		for _, p := range regions {
			if p != r {
				for _, a := range listen[p] {
					o.PeerRegions[p] = append(o.PeerRegions[p], "https://"+a)
				}
			}
		}
		o.RegionTLS, o.RegionListen = files[r], listen[r]
		say("region %s: a cluster of its own in %s", r, o.Dir)
		c, err := Start(o, func(step string) { say("  %s: %s", r, step) })
		if err != nil {
			return out, fmt.Errorf("dev: region %s: %w", r, err)
		}
		out = append(out, c)
	}
	for i, c := range out {
		for j, peer := range out {
			if i != j {
				if err := trustRegion(c, peer, say); err != nil {
					return out, err
				}
			}
		}
	}
	for _, c := range out {
		if err := c.refresh(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// refresh waits until every HSM of c holds the domain's latest state and
// takes that state for Check and DomainState.
func (c *Cluster) refresh() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api := c.Hosts[0].API
	for {
		st, err := host.GetStatus(ctx, api)
		if err == nil && len(st.HSMs) == len(c.HSMs) && allAt(st) {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("dev: region %s: the HSMs did not all reach the domain's state version (last: %v, %v)", c.Region, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	raw, _, err := host.FetchToken(ctx, api)
	if err != nil {
		return err
	}
	key, err := loadOrMakeKey(c.HostKeyFile)
	if err != nil {
		return err
	}
	return c.useState("", raw, key)
}

// regionIdentity makes (or reuses) a region's peer-region TLS identity in
// dir: ca.pem, cert.pem, key.pem (mode 0600).
func regionIdentity(dir, region string) (RegionFiles, error) {
	f := RegionFiles{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	if fileExists(f.Cert) && fileExists(f.Key) && fileExists(filepath.Join(dir, "ca.pem")) {
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, fmt.Errorf("dev: %w", err)
	}
	ca, cert, key, err := host.NewRegionIdentity(region)
	if err != nil {
		return f, err
	}
	for name, b := range map[string][]byte{"ca.pem": ca, "cert.pem": cert, "key.pem": key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return f, fmt.Errorf("dev: %w", err)
		}
	}
	return f, nil
}

// shareCredentials gives every region the first region's dev credentials
// (one account, one access key), each file naming its own region.
func shareCredentials(base string, regions []string) error {
	first := filepath.Join(base, regions[0])
	if err := os.MkdirAll(first, 0o700); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	c, err := devCredentials(filepath.Join(first, "credentials.json"), regions[0])
	if err != nil {
		return err
	}
	for _, r := range regions[1:] {
		path := filepath.Join(base, r, "credentials.json")
		if fileExists(path) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		cp := &kmsapi.Credentials{Region: r, Credentials: c.Credentials}
		data, err := json.MarshalIndent(cp, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
	}
	return nil
}

// trustRegion records peer as a peer region of c's domain (SetPeerRegion
// signed by c's dev operators), unless it is recorded already with the
// same members.
func trustRegion(c, peer *Cluster, say func(string, ...any)) error {
	want := domain.PeerRegion{Region: peer.Region, Domain: peer.Domain}
	for _, h := range peer.HSMs {
		m, err := domain.ParseMember(h.HSMID, h.SigningPublicKey, h.AgreementPublicKey)
		if err != nil {
			return err
		}
		want.Members = append(want.Members, m)
	}
	slices.SortFunc(want.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api := c.Hosts[0].API
	_, p, err := host.FetchToken(ctx, api)
	if err != nil {
		return fmt.Errorf("dev: region %s: %w", c.Region, err)
	}
	if have, ok := p.State.PeerRegion(peer.Region); ok && sameMembers(have.Members, want.Members) && have.Domain == want.Domain {
		return nil
	}
	params, err := domain.ParamsPeerRegion(want)
	if err != nil {
		return err
	}
	var keys []*ecdsa.PrivateKey
	for _, id := range devOperators {
		k, err := loadOrMakeKey(filepath.Join(c.Dir, "operators", id+".pem"))
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	cmd, err := quorum.NewCommand(p.State.Name, p.State.Version, quorum.SetPeerRegion, params, time.Now(), 0,
		func(b []byte) error { _, err := rand.Read(b); return err })
	if err != nil {
		return err
	}
	raw, err := cmd.Marshal()
	if err != nil {
		return err
	}
	sc := &quorum.SignedCommand{Command: raw}
	for i, id := range devOperators {
		sig, err := quorum.SignECDSA(id, keys[i], raw)
		if err != nil {
			return err
		}
		if err := sc.Add(sig); err != nil {
			return err
		}
	}
	signed, err := sc.Marshal()
	if err != nil {
		return err
	}
	v, err := host.SubmitTo(ctx, api, signed)
	if err != nil {
		return fmt.Errorf("dev: region %s: SetPeerRegion %s: %w", c.Region, peer.Region, err)
	}
	say("region %s: domain %s records %s (domain %s, %d HSMs) as a peer region: SetPeerRegion signed by %s, state version %d",
		c.Region, c.Domain, peer.Region, peer.Domain, len(want.Members), strings.Join(devOperators, " and "), v)
	return nil
}

func sameMembers(a, b []session.Member) bool {
	return slices.EqualFunc(a, b, func(x, y session.Member) bool {
		return x.ID == y.ID && x.Signing.Equal(y.Signing) && x.Agreement.Equal(y.Agreement)
	})
}
