package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
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
	// Ping works between them (standard libp2p protocols only).
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
