package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// listenPort is the TCP or UDP port of a node's only listen address.
func listenPort(t *testing.T, n *Node) int {
	t.Helper()
	addrs := n.Network().ListenAddresses()
	if len(addrs) != 1 {
		t.Fatalf("listen addresses %v", addrs)
	}
	for _, proto := range []int{ma.P_TCP, ma.P_UDP} {
		if v, err := addrs[0].ValueForProtocol(proto); err == nil {
			p, err := strconv.Atoi(v)
			if err != nil || p == 0 {
				t.Fatalf("port of %s: %q", addrs[0], v)
			}
			return p
		}
	}
	t.Fatalf("no port in %s", addrs[0])
	return 0
}

// A TCP port another node (or process) listens on is refused with
// ErrAddrInUse naming it, unless both ask to share it with ReusePort
// (#20 bug 3: go-libp2p's TCP transport set SO_REUSEPORT, so a second
// process on a miner's port silently shared it). QUIC ports are never
// shared, and every listen address must be bound: a QUIC port in use is
// an error even when TCP listens.
func TestListenOnAPortInUse(t *testing.T) {
	ctx := context.Background()
	start := func(i int, reuse bool, addrs ...string) (*Node, error) {
		cfg := DefaultTestConfig(key(i))
		cfg.ListenAddrs, cfg.ReusePort = addrs, reuse
		n, err := New(ctx, cfg)
		if err == nil {
			t.Cleanup(func() { n.Close() })
		}
		return n, err
	}
	a, err := start(1, false, "/ip4/127.0.0.1/tcp/0")
	if err != nil {
		t.Fatal(err)
	}
	taken := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", listenPort(t, a))
	for _, reuse := range []bool{false, true} {
		_, err := start(2, reuse, taken)
		if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), taken) {
			t.Fatalf("listening on %s, which a node listens on (ReusePort %v): %v", taken, reuse, err)
		}
	}

	// Shared when both ask.
	s1, err := start(3, true, "/ip4/127.0.0.1/tcp/0")
	if err != nil {
		t.Fatal(err)
	}
	shared := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", listenPort(t, s1))
	if _, err := start(4, true, shared); err != nil {
		t.Fatalf("sharing %s with ReusePort on both: %v", shared, err)
	}

	q, err := start(5, false, "/ip4/127.0.0.1/udp/0/quic-v1")
	if err != nil {
		t.Fatal(err)
	}
	quic := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", listenPort(t, q))
	for _, reuse := range []bool{false, true} {
		_, err := start(6, reuse, "/ip4/127.0.0.1/tcp/0", quic)
		if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), quic) {
			t.Fatalf("listening on %s, which a node listens on (ReusePort %v), and a free TCP port: %v", quic, reuse, err)
		}
	}
}
