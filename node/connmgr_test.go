package node

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
)

// fakeConn is the part of a connection the manager looks at.
type fakeConn struct {
	network.Conn
	remote  peer.ID
	addr    ma.Multiaddr
	streams int
	closed  atomic.Bool
}

func (c *fakeConn) RemotePeer() peer.ID                        { return c.remote }
func (c *fakeConn) RemoteMultiaddr() ma.Multiaddr              { return c.addr }
func (c *fakeConn) Stat() network.ConnStats                    { return network.ConnStats{NumStreams: c.streams} }
func (c *fakeConn) CloseWithError(network.ConnErrorCode) error { c.closed.Store(true); return nil }

func fakePeer(i int) peer.ID { return key(100 + i).PublicKey().PeerID() }

func newFakeConn(i, streams int) *fakeConn {
	return &fakeConn{remote: fakePeer(i), addr: ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", i)), streams: streams}
}

func TestConnManagerTagsAndProtection(t *testing.T) {
	m := newConnManager(2, 4, time.Minute)
	defer m.Close()
	p := fakePeer(1)
	if m.GetTagInfo(p) != nil {
		t.Fatal("an unknown peer has tag info")
	}
	m.TagPeer(p, "kad", 5)
	m.TagPeer(p, "mesh", 20)
	m.UpsertTag(p, "mesh", func(v int) int { return v + 1 })
	m.UntagPeer(p, "missing")
	info := m.GetTagInfo(p)
	if info == nil || info.Value != 26 || info.Tags["kad"] != 5 || info.Tags["mesh"] != 21 {
		t.Fatalf("tag info %+v, want value 26 (kad 5, mesh 21)", info)
	}
	info.Tags["kad"] = 1000 // a copy: changes nothing inside
	m.UntagPeer(p, "kad")
	if info := m.GetTagInfo(p); info.Value != 21 || len(info.Tags) != 1 {
		t.Fatalf("after untag: %+v", info)
	}

	m.Protect(p, "a")
	m.Protect(p, "b")
	m.Protect(p, "b")
	if !m.IsProtected(p, "") || !m.IsProtected(p, "a") || m.IsProtected(p, "c") {
		t.Fatal("protection not recorded")
	}
	if !m.Unprotect(p, "a") {
		t.Fatal("Unprotect says unprotected while tag b remains")
	}
	if m.Unprotect(p, "b") || m.IsProtected(p, "") {
		t.Fatal("still protected after removing every tag")
	}

	// kad-dht's protection of its widest buckets and pubsub's of its mesh
	// peers are values, not protections, and go with Unprotect as their
	// libraries remove them.
	for _, tc := range []struct {
		tag   string
		value int
	}{{"kbucket", 10}, {"pubsub:/cybertensor/x/1/heartbeat/1", 50}} {
		m.Protect(p, tc.tag)
		if m.IsProtected(p, "") || m.IsProtected(p, tc.tag) {
			t.Fatalf("Protect(%s) protects: a neuron would keep those peers connected for good", tc.tag)
		}
		if info := m.GetTagInfo(p); info.Tags[tc.tag] != tc.value || info.Value != 21+tc.value {
			t.Fatalf("after Protect(%s): %+v, want the tag valued %d", tc.tag, info, tc.value)
		}
		m.Protect(p, "a")
		if !m.Unprotect(p, tc.tag) {
			t.Fatalf("Unprotect(%s) says unprotected while tag a remains", tc.tag)
		}
		if info := m.GetTagInfo(p); info.Value != 21 || !m.IsProtected(p, "a") {
			t.Fatalf("after Unprotect(%s): %+v, protected %v", tc.tag, info, m.IsProtected(p, "a"))
		}
		m.Unprotect(p, "a")
	}
}

type connLimit int

func (l connLimit) GetConnLimit() int { return int(l) }

func TestConnManagerCheckLimit(t *testing.T) {
	m := newConnManager(2, 100, time.Minute)
	defer m.Close()
	if err := m.CheckLimit(connLimit(100)); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckLimit(connLimit(99)); err == nil {
		t.Fatal("a high water above the resource manager's limit passed")
	}
}

// Trimming closes the least valuable peers' connections (fewer streams
// first among equals) down to LowWater, never a protected peer's or one in
// its grace period, and forgets tagged peers that never connected.
func TestConnManagerTrimOrder(t *testing.T) {
	// HighWater is out of reach, so no background trim runs (and starts a
	// silence period) while the connections are being added: every trim
	// here is an explicit TrimOpenConns.
	m := newConnManager(3, 100, time.Hour)
	defer m.Close()
	conns := []*fakeConn{
		newFakeConn(0, 0), // value 0, no streams: first to go
		newFakeConn(1, 5), // value 0, busy: second
		newFakeConn(2, 0), // value 10
		newFakeConn(3, 0), // value 50
		newFakeConn(4, 0), // protected
		newFakeConn(5, 0), // young (grace period)
	}
	m.TagPeer(conns[2].remote, "t", 10)
	m.TagPeer(conns[3].remote, "t", 50)
	m.Protect(conns[4].remote, "keep")
	m.TagPeer(fakePeer(9), "t", 1) // never connects
	n := m.Notifee()
	for _, c := range conns[:5] {
		n.Connected(nil, c)
	}
	// Age every peer but the last past the grace period.
	m.mu.Lock()
	for _, e := range m.peers {
		e.firstSeen = e.firstSeen.Add(-2 * time.Hour)
	}
	m.mu.Unlock()
	n.Connected(nil, conns[5])
	n.Connected(nil, conns[5]) // told twice: counted once

	m.TrimOpenConns(context.Background())
	// 4 candidates (0..3), LowWater 3: close one, the least valuable.
	got := closedOf(conns)
	if !slices.Equal(got, []int{0}) {
		t.Fatalf("closed %v, want [0]", got)
	}
	if m.GetTagInfo(fakePeer(9)) != nil {
		t.Fatal("a tagged peer that never connected was kept past its grace period")
	}
	// Within the silence period nothing more is trimmed.
	m.mu.Lock()
	m.low = 1
	m.mu.Unlock()
	m.TrimOpenConns(context.Background())
	if got := closedOf(conns); len(got) != 1 {
		t.Fatalf("trimmed again within the silence period: %v", got)
	}
	m.mu.Lock()
	m.lastTrim = time.Time{}
	m.mu.Unlock()
	m.TrimOpenConns(context.Background())
	// Still open until the swarm reports them closed, so candidates are
	// 0..3 again (0 counted, already closed): LowWater 1 closes 0, 1, 2.
	if got := closedOf(conns); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("closed %v, want [0 1 2]", got)
	}
	for _, c := range conns {
		n.Disconnected(nil, c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conns != 0 || len(m.peers) != 0 {
		t.Fatalf("after every disconnect: %d conns, %d peers kept", m.conns, len(m.peers))
	}
}

// Connections above HighWater spared because they were young are trimmed
// once their grace period ends, with no new connection to ask for a trim
// (as BasicConnMgr's background loop does): a neuron whose peers all
// connected at start-up would otherwise keep every one of them.
func TestConnManagerTrimsWhenGraceEnds(t *testing.T) {
	m := newConnManagerTicking(1, 2, time.Hour, 10*time.Millisecond)
	defer m.Close()
	conns := []*fakeConn{newFakeConn(0, 0), newFakeConn(1, 0), newFakeConn(2, 0)}
	m.TagPeer(conns[2].remote, "t", 10)
	n := m.Notifee()
	for _, c := range conns {
		n.Connected(nil, c)
	}
	// The trim the third connection asked for found every peer in its
	// grace period.
	waitFor(t, "the trim the connection asked for", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return !m.lastTrim.IsZero()
	})
	if got := closedOf(conns); len(got) != 0 {
		t.Fatalf("closed %v within the grace period", got)
	}
	// The grace period and the silence period end.
	m.mu.Lock()
	for _, e := range m.peers {
		e.firstSeen = e.firstSeen.Add(-2 * time.Hour)
	}
	m.lastTrim = m.lastTrim.Add(-time.Hour)
	m.mu.Unlock()
	waitFor(t, "a trim down to LowWater without a new connection", func() bool { return len(closedOf(conns)) == 2 })
	if conns[2].closed.Load() {
		t.Fatalf("closed %v: the most valuable peer was trimmed", closedOf(conns))
	}
}

func closedOf(conns []*fakeConn) []int {
	var out []int
	for i, c := range conns {
		if c.closed.Load() {
			out = append(out, i)
		}
	}
	return out
}

// With real hosts: the fourth connection takes a node above HighWater 3
// and the node trims back to LowWater 2 of its unprotected peers, keeping
// the protected one and the valuable one.
func TestConnManagerTrimsRealConnections(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultTestConfig(key(40))
	cfg.LowWater, cfg.HighWater, cfg.GracePeriod = 2, 3, 0
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var peers []*Node
	for i := range 4 {
		b, err := New(ctx, DefaultTestConfig(key(41+i)))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		peers = append(peers, b)
	}
	a.ConnManager().Protect(peers[0].ID(), "test")
	a.ConnManager().TagPeer(peers[1].ID(), "test", 100)
	for _, b := range peers {
		if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the trim", func() bool { return len(a.Network().Peers()) == 3 })
	for _, b := range peers[:2] {
		if a.Network().Connectedness(b.ID()) != network.Connected {
			t.Fatalf("trimmed peer %s (protected or valuable)", b.ID())
		}
	}
	if a.Network().Connectedness(peers[2].ID()) == network.Connected && a.Network().Connectedness(peers[3].ID()) == network.Connected {
		t.Fatal("neither of the worthless peers was trimmed")
	}
}

// MaxConns raises the scaled connection and descriptor limits, never
// lowers them.
func TestRaiseConns(t *testing.T) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	base := scaling.Scale(1<<30, 1024)
	sys := func(l rcmgr.ConcreteLimitConfig) (conns, in, out, fd int) {
		s := rcmgr.NewFixedLimiter(l).GetSystemLimits()
		return s.GetConnTotalLimit(), s.GetConnLimit(network.DirInbound), s.GetConnLimit(network.DirOutbound), s.GetFDLimit()
	}
	c0, in0, out0, fd0 := sys(base)
	for _, tc := range []struct {
		n                   int
		conns, in, out, fds int
	}{
		{0, c0, in0, out0, fd0},
		{c0 / 2, c0, in0, out0, fd0},
		{1024, 1024, max(in0, 512), 1024, max(fd0, 1024)},
		{4096, 4096, 2048, 4096, 4096},
	} {
		conns, in, out, fd := sys(raiseConns(base, tc.n))
		if conns != tc.conns || in != tc.in || out != tc.out || fd != tc.fds {
			t.Errorf("MaxConns %d: conns %d, inbound %d, outbound %d, FDs %d; want %d, %d, %d, %d", tc.n, conns, in, out, fd, tc.conns, tc.in, tc.out, tc.fds)
		}
	}
}
