package dev

import (
	"net"
	"slices"
	"testing"
)

// fakeListener is a listener that only has an address.
type fakeListener struct {
	net.Listener
	port   int
	closed *[]int
}

func (l fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: l.port} }
func (l fakeListener) Close() error   { *l.closed = append(*l.closed, l.port); return nil }

// TestPickPortsAvoidsTaken: a port the kernel hands out again that was
// already given to a server (a region's address, chosen first) is
// skipped, and every listener is held until all are picked.
func TestPickPortsAvoidsTaken(t *testing.T) {
	kernel := []int{40001, 40002, 40003, 40004}
	var closed []int
	listen := func() (net.Listener, error) {
		p := kernel[0]
		kernel = kernel[1:]
		if len(closed) > 0 {
			t.Errorf("listened again after closing %v: a port could come back twice", closed)
		}
		return fakeListener{port: p, closed: &closed}, nil
	}
	got, err := pickPorts(listen, 2, []int{40001, 40003})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{40002, 40004}) {
		t.Errorf("picked %v, want [40002 40004] (40001 and 40003 taken)", got)
	}
	slices.Sort(closed)
	if !slices.Equal(closed, []int{40001, 40002, 40003, 40004}) {
		t.Errorf("closed %v, want every listener", closed)
	}
}

func TestRegionPorts(t *testing.T) {
	opts := Options{
		RegionListen: []string{"127.0.0.1:41001", "127.0.0.1:41002"},
		PeerRegions:  map[string][]string{"us-west-2": {"https://127.0.0.1:42001", "https://127.0.0.1:42002"}},
	}
	got := regionPorts(opts)
	slices.Sort(got)
	if want := []int{41001, 41002, 42001, 42002}; !slices.Equal(got, want) {
		t.Errorf("regionPorts = %v, want %v", got, want)
	}
	if got := regionPorts(Options{}); len(got) != 0 {
		t.Errorf("regionPorts of a cluster without regions = %v", got)
	}
}

// TestFreePortsDistinct: real ports, none taken, none twice.
func TestFreePortsDistinct(t *testing.T) {
	first, err := freePorts("127.0.0.1", 8)
	if err != nil {
		t.Fatal(err)
	}
	second, err := freePorts("127.0.0.1", 8, first...)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range second {
		if slices.Contains(first, p) || slices.Contains(second[:i], p) {
			t.Errorf("port %d given twice: %v then %v", p, first, second)
		}
	}
}
