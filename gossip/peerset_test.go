package gossip

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Config.GossipWith: two connected neurons outside each other's peer set
// hold no gossipsub stream and are not each other's topic peers, and a
// message between them still arrives through a neuron both gossip with.
func TestPeerSetKeepsGossipOffAConnection(t *testing.T) {
	reg := newRegistry()
	ka, kb, kc := key(0), key(1), key(2)
	reg.add(ka, 0)
	reg.add(kb, 1)
	reg.add(kc, 2)
	refuse := func(other peer.ID) func(*Config) {
		return func(c *Config) { c.GossipWith = func(p peer.ID) bool { return p != other } }
	}
	a, b := start(t, ka, reg, refuse(kb.PublicKey().PeerID())), start(t, kb, reg, refuse(ka.PublicKey().PeerID()))
	c := start(t, kc, reg, nil)
	connect(t, a, b)
	connect(t, a, c)
	connect(t, b, c)
	waitFor(t, 30*time.Second, "a and b to gossip with c", func() bool {
		return slices.Contains(a.t.Peers(), c.n.ID()) && slices.Contains(b.t.Peers(), c.n.ID()) && len(c.t.Peers()) == 2
	})
	// A message reaches a peer that joins the mesh after it arrived
	// only if the author sent it there itself: IHAVE goes to peers
	// outside the mesh.
	waitFor(t, 30*time.Second, "c's mesh to hold a and b", func() bool { return c.t.MeshPeers() == 2 })
	if slices.Contains(a.t.Peers(), b.n.ID()) || slices.Contains(b.t.Peers(), a.n.ID()) {
		t.Fatalf("a and b gossip with each other: a's peers %v, b's %v", a.t.Peers(), b.t.Peers())
	}
	if n := meshsubStreams(a.n, b.n.ID()) + meshsubStreams(b.n, a.n.ID()); n > 0 {
		t.Fatalf("a and b hold %d gossipsub streams with each other", n)
	}
	if meshsubStreams(a.n, c.n.ID()) == 0 {
		t.Fatal("a holds no gossipsub stream with c")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	got, atC := &collector{}, &collector{}
	wg.Add(2)
	go got.run(ctx, b.sub, &wg)
	go atC.run(ctx, c.sub, &wg)
	defer func() { cancel(); wg.Wait() }()
	if err := a.t.Publish(ctx, heartbeat(t, 0, 7)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "c to receive a's heartbeat", func() bool { return len(atC.from(a.n.ID())) == 1 })
	waitFor(t, 30*time.Second, "b to receive a's heartbeat through c", func() bool { return len(got.from(a.n.ID())) == 1 })
	if m := got.from(a.n.ID())[0]; m.ReceivedFrom != c.n.ID() {
		t.Fatalf("b received a's heartbeat from %s, want c", m.ReceivedFrom)
	}
}

// meshsubStreams counts h's gossipsub streams with p.
func meshsubStreams(h host.Host, p peer.ID) int {
	n := 0
	for _, c := range h.Network().ConnsToPeer(p) {
		for _, s := range c.GetStreams() {
			if strings.HasPrefix(string(s.Protocol()), "/meshsub/") {
				n++
			}
		}
	}
	return n
}
