package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/wallet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func key(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("node test %d", i)))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	return k
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNodeIdentityAndBootstrap(t *testing.T) {
	ctx := context.Background()
	a, err := New(ctx, DefaultTestConfig(key(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.ID() != key(1).PublicKey().PeerID() {
		t.Fatalf("node ID %s is not the hotkey's %s", a.ID(), key(1).PublicKey().PeerID())
	}
	b, err := New(ctx, DefaultTestConfig(key(2)), WithBootstrap(a.FullAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitFor(t, "b to connect to its bootstrap peer", func() bool { return b.Network().Connectedness(a.ID()) == network.Connected })
	// Standard libp2p protocols between them: ping answers, identify told
	// b who a is and what it speaks.
	pctx, stopPing := context.WithCancel(ctx)
	res := <-ping.Ping(pctx, b, a.ID())
	stopPing()
	if res.Error != nil {
		t.Fatalf("ping: %v", res.Error)
	}
	waitFor(t, "identify", func() bool {
		protos, _ := b.Peerstore().SupportsProtocols(a.ID(), ping.ID, identify.ID)
		return len(protos) == 2
	})
	if agent, _ := b.Peerstore().Get(a.ID(), "AgentVersion"); agent != "cybertensor" {
		t.Fatalf("identify gave agent %v", agent)
	}
	if _, err := New(ctx, DefaultTestConfig(key(3)), WithBootstrap("not-a-multiaddr")); err == nil {
		t.Fatal("bad bootstrap address accepted")
	}
	if _, err := New(ctx, Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal("second Close failed")
	}
}

// A node restarted with the same data directory reconnects to the peers it
// knew, without any bootstrap configuration.
func TestRestartReconnectsFromDataDir(t *testing.T) {
	ctx := context.Background()
	hub, err := New(ctx, DefaultTestConfig(key(10)))
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	dir := t.TempDir()
	cfg := DefaultTestConfig(key(11))
	cfg.DataDir = dir
	n, err := New(ctx, cfg, WithBootstrap(hub.FullAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first connection", func() bool { return n.Network().Connectedness(hub.ID()) == network.Connected })
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "peers.json")); err != nil {
		t.Fatalf("peers not saved: %v", err)
	}
	waitFor(t, "the hub to see the node leave", func() bool { return hub.Network().Connectedness(key(11).PublicKey().PeerID()) != network.Connected })
	again, err := New(ctx, cfg) // no bootstrap this time
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	waitFor(t, "the reconnection from peers.json", func() bool { return again.Network().Connectedness(hub.ID()) == network.Connected })
	// A corrupt peers file is ignored, not fatal.
	os.WriteFile(filepath.Join(dir, "peers.json"), []byte("{broken"), 0o600)
	cfg2 := cfg
	cfg2.Key = key(12)
	third, err := New(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	third.Close()
}

// With a Registerer, libp2p's own collectors (swarm, resource manager,
// identify) report on it; without one nothing is registered anywhere.
func TestMetricsAreAChoice(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultTestConfig(key(20))
	cfg.Registerer = reg
	connectedPair(t, cfg, key(21)) // the second node has no Registerer
	waitFor(t, "libp2p metrics", func() bool {
		got := names(reg)
		return got["swarm"] && got["rcmgr"] && got["identify"]
	})
	// Nothing of libp2p's went to the default registerer.
	if got := names(prometheus.DefaultGatherer); len(got) > 0 {
		t.Fatalf("metrics registered without a Registerer: %v", got)
	}
}

// connectedPair starts a node with cfg and one with bKey that bootstraps
// from it, closes both at the test's end, and returns once connected.
func connectedPair(t *testing.T, cfg Config, bKey *wallet.PrivateKey) (a, b *Node) {
	t.Helper()
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = New(context.Background(), DefaultTestConfig(bKey), WithBootstrap(a.FullAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitFor(t, "the connection", func() bool { return a.Network().Connectedness(b.ID()) == network.Connected })
	return a, b
}

// names lists the libp2p subsystems with metric families in g.
func names(g prometheus.Gatherer) map[string]bool {
	out := map[string]bool{}
	families, _ := g.Gather()
	for _, f := range families {
		if parts := strings.SplitN(f.GetName(), "_", 3); parts[0] == "libp2p" && len(parts) > 1 {
			out[parts[1]] = true
		}
	}
	return out
}

// A listen address that does not parse is a configuration error, not a
// panic, and leaves nothing running (goleak checks at the end).
func TestBadListenAddress(t *testing.T) {
	cfg := DefaultTestConfig(key(22))
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/not-an-ip/tcp/1"}
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "not-an-ip") {
		t.Fatalf("got %v, want an error naming the address", err)
	}
	cfg.ListenAddrs = []string{"/ip4/192.0.2.1/tcp/1"} // not this machine's: listening fails
	if _, err := New(context.Background(), cfg); err == nil {
		t.Fatal("listening on an address of another machine succeeded")
	}
}

// With Relay (for neurons behind NAT) the host also runs the observed
// address manager, hole punching, autonat and the circuit relay transport;
// it still connects, and Close stops all of it (goleak checks at the end).
func TestRelayNodeConnectsAndCloses(t *testing.T) {
	cfg := DefaultTestConfig(key(30))
	cfg.Relay = true
	a, b := connectedPair(t, cfg, key(31))
	// The relay transport accepts relayed connections ("stop" streams).
	waitFor(t, "identify to see relayed connections accepted", func() bool {
		protos, _ := b.Peerstore().SupportsProtocols(a.ID(), "/libp2p/circuit/relay/0.2.0/stop")
		return len(protos) == 1
	})
	a.Close()
	// go-libp2p's UPnP discovery (port mapping) is not stopped by Close; it
	// ends at its own search timeout, which goleak would not wait for.
	waitFor(t, "UPnP discovery to end", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "nat.discoverNATs")
	})
}
