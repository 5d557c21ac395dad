package node

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

const holdProto protocol.ID = "/test/hold/1.0.0"

// registeredSet answers SetRegistered for the peers of the given keys.
func registeredSet(keys ...int) func(peer.ID) bool {
	set := map[peer.ID]bool{}
	for _, k := range keys {
		set[key(k).PublicKey().PeerID()] = true
	}
	return func(p peer.ID) bool { return set[p] }
}

// holdStreams makes n answer holdProto by holding each stream open until
// its peer closes it, counting the streams it holds.
func holdStreams(n *Node) *atomic.Int64 {
	var held atomic.Int64
	n.SetStreamHandler(holdProto, func(s network.Stream) {
		held.Add(1)
		defer held.Add(-1)
		defer s.Close()
		buf := make([]byte, 1)
		for {
			if _, err := s.Read(buf); err != nil {
				return
			}
		}
	})
	return &held
}

// connectTo dials the victim from a node with key k and reports whether the
// connection was made and is still up once the victim's gate has decided.
func connectTo(t *testing.T, victim *Node, k int) (*Node, bool) {
	t.Helper()
	return connectFrom(t, victim, k, "127.0.0.1")
}

// connectFrom is connectTo from a node listening on ip, and dialling from
// there (with SO_REUSEPORT a TCP dial leaves from a listening address).
func connectFrom(t *testing.T, victim *Node, k int, ip string) (*Node, bool) {
	t.Helper()
	cfg := DefaultTestConfig(key(k))
	cfg.ListenAddrs = []string{"/ip4/" + ip + "/tcp/0"}
	cfg.ReusePort = true
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = n.Connect(ctx, peer.AddrInfo{ID: victim.ID(), Addrs: victim.Addrs()})
	return n, err == nil
}

// openHold opens a holdProto stream from n to the victim and writes a
// byte, reporting whether the victim took it.
func openHold(n *Node, victim peer.ID) (network.Stream, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := n.NewStream(ctx, victim, holdProto)
	if err != nil {
		return nil, false
	}
	if _, err := s.Write([]byte{1}); err != nil {
		s.Reset()
		return nil, false
	}
	return s, true
}

// Issue #19, finding 3: peers with fresh keys that are not registered
// cannot lock registered neurons or newcomers out. Seventy of them connect
// (more than the 64 inbound connections the test node's resource manager
// allows); registered peers still connect and open streams, unregistered
// peers hold at most their share of inbound connections, a newcomer gets
// in by taking the place of an idle one, and one unregistered peer holds
// at most its 16 inbound streams. Before, the seventy filled every
// inbound slot and registered peers were refused.
func TestUnregisteredPeersCannotLockOthersOut(t *testing.T) {
	cfg := DefaultTestConfig(key(100))
	cfg.Admission.IdleAfter = 50 * time.Millisecond
	cfg.Admission.PerAddress = 1000 // all dial from 127.0.0.1; TestUnregisteredPerAddress tests that bound
	victim, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	held := holdStreams(victim)
	registered := []int{101, 102, 103}
	victim.SetRegistered(registeredSet(registered...))

	var wg sync.WaitGroup
	var connected atomic.Int64
	for i := range 70 {
		wg.Go(func() {
			if _, ok := connectTo(t, victim, 200+i); ok {
				connected.Add(1)
			}
		})
	}
	wg.Wait()
	unregistered := func() int {
		n := 0
		for _, c := range victim.Network().Conns() {
			if c.Stat().Direction == network.DirInbound && !victim.adm.isRegistered(c.RemotePeer()) && !c.IsClosed() {
				n++
			}
		}
		return n
	}
	if got, limit := unregistered(), victim.adm.inboundCap; got > limit {
		t.Fatalf("%d unregistered inbound connections, more than their share of %d", got, limit)
	}
	t.Logf("70 unregistered peers dialled, %d connected at the time; the victim holds %d of them (share %d)", connected.Load(), unregistered(), victim.adm.inboundCap)

	for _, k := range registered {
		n, ok := connectTo(t, victim, k)
		if !ok {
			t.Fatalf("registered peer %d could not connect", k)
		}
		if s, ok := openHold(n, victim.ID()); !ok {
			t.Fatalf("registered peer %d could not open a stream", k)
		} else {
			defer s.Reset()
		}
	}

	// Newcomers take the places of idle unregistered connections: once
	// four of them have been open IdleAfter without streams (on a fast
	// machine the newcomers could otherwise come before any is idle).
	waitFor(t, "four unregistered connections to be idle", func() bool {
		victim.adm.mu.Lock()
		defer victim.adm.mu.Unlock()
		idle := 0
		for c := range victim.adm.unregistered {
			if st := c.Stat(); st.NumStreams == 0 && time.Since(st.Opened) >= cfg.Admission.IdleAfter {
				idle++
			}
		}
		return idle >= 4
	})
	admitted := 0
	var newcomer *Node
	for i := range 4 {
		n, ok := connectTo(t, victim, 300+i)
		if !ok {
			continue
		}
		if s, ok := openHold(n, victim.ID()); ok {
			admitted++
			newcomer = n
			defer s.Reset()
		}
	}
	if admitted < 2 {
		t.Fatalf("%d of 4 unregistered newcomers got a stream through, want at least half", admitted)
	}

	// One unregistered peer holds at most its 16 inbound streams: the
	// victim takes 15 more of the 40 it opens, and resets the rest.
	before := held.Load()
	for range 40 {
		if s, ok := openHold(newcomer, victim.ID()); ok {
			defer s.Reset()
		}
	}
	waitFor(t, "the victim to take the streams", func() bool { return held.Load()-before >= int64(cfg.Admission.Peer.StreamsInbound-1) })
	inbound := func() (n int) {
		victim.Network().ResourceManager().ViewPeer(newcomer.ID(), func(s network.PeerScope) error {
			n = s.Stat().NumStreamsInbound
			return nil
		})
		return n
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if n := inbound(); n > cfg.Admission.Peer.StreamsInbound {
			t.Fatalf("an unregistered peer holds %d inbound streams, more than its %d", n, cfg.Admission.Peer.StreamsInbound)
		}
	}
	t.Logf("an unregistered peer opened 40 streams; it holds %d inbound (limit %d)", inbound(), cfg.Admission.Peer.StreamsInbound)
}

// Keys are free, addresses are not (#19, finding 3): unregistered peers
// hold at most PerAddress inbound connections from one address, loopback
// included, so one machine making keys cannot take the unregistered share;
// another address and registered peers still get in, and a slot freed is
// taken again.
func TestUnregisteredPerAddress(t *testing.T) {
	cfg := DefaultTestConfig(key(120))
	victim, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	victim.SetRegistered(registeredSet(121))
	per := cfg.Admission.PerAddress
	fromAddr := func(ip string) (n int) {
		for _, c := range victim.Network().Conns() {
			if got, _ := c.RemoteMultiaddr().ValueForProtocol(ma.P_IP4); got == ip && !victim.adm.isRegistered(c.RemotePeer()) && !c.IsClosed() {
				n++
			}
		}
		return n
	}
	var admitted []*Node
	for i := range per + 4 {
		if n, ok := connectTo(t, victim, 130+i); ok {
			admitted = append(admitted, n)
		}
	}
	waitFor(t, "the gate to decide", func() bool { return fromAddr("127.0.0.1") <= per })
	if got := fromAddr("127.0.0.1"); got != per {
		t.Fatalf("%d peers dialled from 127.0.0.1; the victim holds %d of them, want %d", per+4, got, per)
	}
	if _, ok := connectFrom(t, victim, 150, "127.0.0.2"); !ok {
		t.Fatal("a peer from another address was refused")
	}
	if _, ok := connectTo(t, victim, 121); !ok {
		t.Fatal("a registered peer from the full address was refused")
	}
	// A slot freed is taken again.
	for _, n := range admitted {
		if victim.Network().Connectedness(n.ID()) == network.Connected {
			n.Close()
			waitFor(t, "the victim to see the peer leave", func() bool { return fromAddr("127.0.0.1") < per })
			break
		}
	}
	if _, ok := connectTo(t, victim, 160); !ok {
		t.Fatal("a newcomer from 127.0.0.1 was refused after a slot was freed")
	}
	if got := fromAddr("127.0.0.1"); got != per {
		t.Fatalf("after one left and one came, the victim holds %d from 127.0.0.1, want %d", got, per)
	}
}

// Until SetRegistered is called every peer counts as registered, and a
// peer registered later is valued above outsiders in the connection
// manager; one dropped from the set is not.
func TestAdmissionOffUntilSetRegistered(t *testing.T) {
	n, err := New(context.Background(), DefaultTestConfig(key(110)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	p, q := key(111).PublicKey().PeerID(), key(112).PublicKey().PeerID()
	if !n.adm.isRegistered(p) {
		t.Fatal("before SetRegistered a peer counts as unregistered")
	}
	pn, _ := connectTo(t, n, 111)
	qn, _ := connectTo(t, n, 112)
	waitFor(t, "both peers connected", func() bool { return len(n.Network().Peers()) == 2 })
	n.SetRegistered(registeredSet(111))
	if !n.adm.isRegistered(pn.ID()) || n.adm.isRegistered(qn.ID()) {
		t.Fatal("SetRegistered(p): want p registered and q not")
	}
	valued := func(p peer.ID) bool {
		info := n.ConnManager().GetTagInfo(p)
		return info != nil && info.Tags[registeredTag] == registeredValue
	}
	if !valued(p) || valued(q) {
		t.Fatal("a registered peer is not valued as one, or an unregistered one is")
	}
	if n.ConnManager().IsProtected(p, "") {
		t.Fatal("a registered peer is protected: a neuron of a large subnet could trim no member")
	}
	n.SetRegistered(registeredSet(112))
	if valued(p) || !valued(q) {
		t.Fatal("after SetRegistered(q): want q valued and p not")
	}
	// A registered peer that connects later is valued as it connects.
	rn, _ := connectTo(t, n, 113)
	n.SetRegistered(registeredSet(112, 113))
	waitFor(t, "the late peer valued", func() bool { return valued(rn.ID()) })
}

// Only 127.0.0.1 and ::1 are exempt from go-libp2p's per-address limits:
// from 127.0.0.2, as from any remote address, a node holds at most 8
// connections at once whoever the peers are, while from 127.0.0.1 it
// holds them all (go-libp2p exempts all of 127.0.0.0/8).
func TestOnlyLocalhostIsExempt(t *testing.T) {
	victim, err := New(context.Background(), DefaultTestConfig(key(170)))
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	from := func(ip string) (n int) {
		for _, c := range victim.Network().Conns() {
			if got, _ := c.RemoteMultiaddr().ValueForProtocol(ma.P_IP4); got == ip && !c.IsClosed() {
				n++
			}
		}
		return n
	}
	const dials = 12
	for i := range dials {
		connectFrom(t, victim, 171+i, "127.0.0.2")
		connectFrom(t, victim, 191+i, "127.0.0.1")
	}
	waitFor(t, "the connections from 127.0.0.1", func() bool { return from("127.0.0.1") == dials })
	if got := from("127.0.0.2"); got > 8 {
		t.Fatalf("%d connections from 127.0.0.2 held at once, want at most 8", got)
	}
	t.Logf("%d peers dialled from each address: the node holds %d from 127.0.0.1, %d from 127.0.0.2", dials, from("127.0.0.1"), from("127.0.0.2"))
}
