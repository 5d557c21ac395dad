package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	gonet "net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/multiformats/go-multiaddr"

	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/protocol/pb"
)

// holdingProxy forwards TCP connections to a host, each only once the
// test releases it: a server whose handshakes are slow. It counts the
// connections it accepted and the most held at once.
type holdingProxy struct {
	ln       gonet.Listener
	to       string
	release  chan struct{}
	accepted atomic.Int64
	held     atomic.Int64
	mostHeld atomic.Int64
	quit     chan struct{}
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []gonet.Conn
}

func (p *holdingProxy) track(c gonet.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func newHoldingProxy(t *testing.T, to string, release chan struct{}) *holdingProxy {
	t.Helper()
	ln, err := gonet.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingProxy{ln: ln, to: to, release: release, quit: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		close(p.quit)
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *holdingProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.track(c)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			n := p.held.Add(1)
			for m := p.mostHeld.Load(); n > m && !p.mostHeld.CompareAndSwap(m, n); m = p.mostHeld.Load() {
			}
			select {
			case <-p.release:
			case <-p.quit:
				return
			}
			p.held.Add(-1)
			up, err := gonet.Dial("tcp4", p.to)
			if err != nil {
				return
			}
			p.track(up)
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(up, c); up.Close(); done <- struct{}{} }()
			go func() { io.Copy(c, up); c.Close(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

// addr is the proxy's address as a libp2p multiaddr.
func (p *holdingProxy) addr(t *testing.T) multiaddr.Multiaddr {
	a, err := multiaddr.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.ln.Addr().(*gonet.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tcpPort is h's TCP listen address (host:port).
func tcpPort(t *testing.T, h host.Host) string {
	t.Helper()
	for _, a := range h.Addrs() {
		if port, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
			return "127.0.0.1:" + port
		}
	}
	t.Fatalf("no TCP address in %v", h.Addrs())
	return ""
}

// dialRig is a client node and servers (echo on text.echo) it reaches
// only through holding proxies.
func dialRig(t *testing.T, servers int, cfg ClientConfig) (*Client, []host.Host, []*holdingProxy, chan struct{}) {
	t.Helper()
	newNode := func(i int) *node.Node {
		n, err := node.New(context.Background(), node.DefaultTestConfig(key(500+i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	ch := newNode(0)
	reg := &callerTable{m: map[peer.ID]Caller{ch.ID(): {Registered: true, Stake: 1000}}}
	release := make(chan struct{})
	var hosts []host.Host
	var proxies []*holdingProxy
	for i := range servers {
		sh := newNode(1 + i)
		scfg := DefaultServerConfig()
		scfg.Logger = slog.New(slog.DiscardHandler)
		s, err := NewServer(sh, key(501+i), reg, map[string]Handler{"text.echo": echo}, scfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		p := newHoldingProxy(t, tcpPort(t, sh), release)
		ch.Peerstore().AddAddrs(sh.ID(), []multiaddr.Multiaddr{p.addr(t)}, peerstore.PermanentAddrTTL)
		hosts, proxies = append(hosts, sh), append(proxies, p)
	}
	c, err := NewClient(ch, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, hosts, proxies, release
}

func echoRequest(timeout time.Duration) *pb.Request {
	return &pb.Request{RequestId: "d", Netuid: 1, Synapse: "text.echo", Body: []byte("hi"), TimeoutMs: uint32(timeout / time.Millisecond)}
}

// A query whose deadline passes while the client connects fails as
// TIMEOUT, saying it never reached the server (ErrNotConnected), and the
// dial goes on: once the server's side of the handshake comes through,
// the connection is up, and the next query uses it with no second dial. A
// query that fails on the connection is not ErrNotConnected.
func TestDialOutlivesTheQueryThatStartedIt(t *testing.T) {
	c, hosts, proxies, release := dialRig(t, 1, DefaultClientConfig())
	res := c.Stream(context.Background(), hosts[0].ID(), echoRequest(100*time.Millisecond), nil)
	if res.Status != StatusTimeout || !errors.Is(res.Err, ErrNotConnected) {
		t.Fatalf("query while connecting: %v %v, want TIMEOUT and ErrNotConnected", res.Status, res.Err)
	}
	close(release)
	waitFor(t, 20*time.Second, "the connection the timed-out query started to come up", func() bool {
		return c.h.Network().Connectedness(hosts[0].ID()) == network.Connected
	})
	res = c.Stream(context.Background(), hosts[0].ID(), echoRequest(5*time.Second), nil)
	if res.Status != StatusOK || string(res.Body) != "echo:hi" {
		t.Fatalf("query on the connection: %v %v %q", res.Status, res.Err, res.Body)
	}
	if n := proxies[0].accepted.Load(); n != 1 {
		t.Fatalf("the server was dialed %d times", n)
	}
	// Cancelled before its stream opened, on the connection.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	res = c.Stream(cancelled, hosts[0].ID(), echoRequest(5*time.Second), nil)
	if res.Status == StatusOK || errors.Is(res.Err, ErrNotConnected) {
		t.Fatalf("a cancelled query on the connection: %v %v, want a failure that is not ErrNotConnected", res.Status, res.Err)
	}
}

// A query to a server the client cannot reach fails as UNAVAILABLE with
// ErrNotConnected.
func TestUnreachableServerIsNotConnected(t *testing.T) {
	n, err := node.New(context.Background(), node.DefaultTestConfig(key(520)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ln, err := gonet.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ln.Addr().(*gonet.TCPAddr).Port)
	ln.Close() // nobody listens there now: the dial is refused
	target := key(521).PublicKey().PeerID()
	n.Peerstore().AddAddrs(target, []multiaddr.Multiaddr{multiaddr.StringCast(closed)}, peerstore.PermanentAddrTTL)
	c, err := NewClient(n, DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	res := c.Stream(context.Background(), target, echoRequest(10*time.Second), nil)
	if res.Status != StatusUnavailable || !errors.Is(res.Err, ErrNotConnected) {
		t.Fatalf("query to an unreachable server: %v %v, want UNAVAILABLE and ErrNotConnected", res.Status, res.Err)
	}
}

// Queries to one server share its dial, and the client dials at most
// MaxDials servers at once: the others wait their turn (within
// DialTimeout) and connect once it comes.
func TestDialsAreSharedAndBounded(t *testing.T) {
	cfg := DefaultClientConfig()
	cfg.MaxDials = 2
	c, hosts, proxies, release := dialRig(t, 4, cfg)
	if n := c.SpareDials(); n != 2 {
		t.Fatalf("%d dials spare before any, want 2", n)
	}
	var wg sync.WaitGroup
	for range 3 {
		for _, h := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Stream(context.Background(), h.ID(), echoRequest(300*time.Millisecond), nil)
			}()
		}
	}
	wg.Wait()
	held, accepted := int64(0), int64(0)
	for _, p := range proxies {
		held += p.held.Load()
		accepted += p.accepted.Load()
	}
	if held != 2 || accepted != 2 {
		t.Fatalf("%d dials held and %d accepted with MaxDials 2 (12 queries to 4 servers)", held, accepted)
	}
	if n := c.SpareDials(); n != 0 {
		t.Fatalf("%d dials spare while 2 are held and 2 wait, want 0", n)
	}
	close(release)
	waitFor(t, 30*time.Second, "every server connected, and both dial slots spare", func() bool {
		for _, h := range hosts {
			if c.h.Network().Connectedness(h.ID()) != network.Connected {
				return false
			}
		}
		return c.SpareDials() == 2
	})
	for i, p := range proxies {
		if n := p.accepted.Load(); n != 1 {
			t.Fatalf("server %d dialed %d times", i, n)
		}
	}
}

// Close stops the client's dials in flight (goleak checks none is left).
func TestCloseStopsDials(t *testing.T) {
	c, hosts, _, _ := dialRig(t, 1, DefaultClientConfig())
	res := c.Stream(context.Background(), hosts[0].ID(), echoRequest(50*time.Millisecond), nil)
	if res.Status != StatusTimeout {
		t.Fatalf("query while connecting: %v %v, want TIMEOUT", res.Status, res.Err)
	}
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a dial was held")
	}
	res = c.Stream(context.Background(), hosts[0].ID(), echoRequest(time.Second), nil)
	if res.Status != StatusUnavailable || !errors.Is(res.Err, errClientClosed) {
		t.Fatalf("query on a closed client: %v %v", res.Status, res.Err)
	}
}
