package neuron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// A second miner for a hotkey that is already running is refused before
// it touches the chain: the running miner's axon stays on chain (#20 bug
// 2: the second one served its own, soon dead, port as the hotkey's axon
// and only then failed on its library lock).
func TestSecondMinerForAHotkeyChangesNothing(t *testing.T) {
	cold, hot := testKey(t, "again cold", 0), testKey(t, "again hot", 0)
	c := testChain(t, []*wallet.PrivateKey{cold})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := DefaultMinerConfig(1, backend.NewRetrieval())
	cfg.Swarm, cfg.Logger, cfg.Host.DataDir, cfg.KnowledgeDir = fastSwarm(), slog.New(slog.DiscardHandler), dir, filepath.Join(dir, "knowledge")
	m, err := StartMiner(ctx, c, cold, hot, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	axon := func() chainlinkAxon {
		n, err := c.Neuron(ctx, 1, hot.PublicKey().Address())
		if err != nil || n.Axon == nil {
			t.Fatalf("the hotkey's axon: %+v %v", n.Axon, err)
		}
		return chainlinkAxon{n.Axon.PeerID, slices.Clone(n.Axon.Multiaddrs)}
	}
	before := axon()

	_, err = StartMiner(ctx, c, cold, hot, cfg)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), fmt.Sprintf("in use by another process (pid %d)", os.Getpid())) {
		t.Fatalf("a second miner for the hotkey: %v", err)
	}
	if after := axon(); after.peer != before.peer || !slices.Equal(after.addrs, before.addrs) {
		t.Fatalf("the failed second miner changed the hotkey's axon from %v to %v", before, after)
	}
	// The running miner still answers.
	if got := m.Addrs(); len(got) == 0 {
		t.Fatal("the running miner lost its addresses")
	}
}

type chainlinkAxon struct {
	peer  string
	addrs []string
}

// A second validator on the same state is refused before it stakes or
// writes the state (#20 bugs 1 and 2: nothing kept two validators from
// sharing, and overwriting, one state file).
func TestSecondValidatorOnAStateChangesNothing(t *testing.T) {
	cold, hot := testKey(t, "again cold", 1), testKey(t, "again hot", 1)
	c := testChain(t, []*wallet.PrivateKey{cold})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := DefaultValidatorConfig(1, []Task{{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}})
	cfg.Swarm.Disabled, cfg.Logger, cfg.StateDir = true, slog.New(slog.DiscardHandler), t.TempDir()
	v, err := StartValidator(ctx, c, cold, hot, 1e12, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	stake := func() uint64 {
		n, err := c.Neuron(ctx, 1, hot.PublicKey().Address())
		if err != nil {
			t.Fatal(err)
		}
		return n.Stake
	}
	before := stake()
	v2, err := StartValidator(ctx, c, cold, hot, 1e12, cfg)
	if err == nil {
		v2.Close()
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), cfg.StateDir) {
		t.Fatalf("a second validator on the state: %v", err)
	}
	if after := stake(); after != before {
		t.Fatalf("the refused validator staked: %d before, %d after", before, after)
	}
}

// A miner whose listen address is taken fails before it registers: the
// hotkey burns nothing (#20 bug 2: bind every listener first, touch the
// chain last).
func TestMinerListenFailureRegistersNothing(t *testing.T) {
	cold, hot := testKey(t, "again cold", 2), testKey(t, "again hot", 2)
	c := testChain(t, []*wallet.PrivateKey{cold})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := DefaultMinerConfig(1, backend.NewRetrieval())
	cfg.Swarm.Disabled, cfg.Logger = true, slog.New(slog.DiscardHandler)
	cfg.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", taken.Addr().(*net.TCPAddr).Port)}
	m, err := StartMiner(ctx, c, cold, hot, cfg)
	if err == nil {
		m.Close()
		t.Fatal("a miner started on a taken port")
	}
	if _, err := c.Neuron(ctx, 1, hot.PublicKey().Address()); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("the hotkey registered although the miner could not listen: %v", err)
	}
}

// A server that holds only the hotkey (no coldkey: cold nil) runs a miner
// or validator for a hotkey registered already; an unregistered one is
// ErrNotRegistered and changes nothing, and staking is refused before
// anything starts.
func TestHotkeyOnlyNeurons(t *testing.T) {
	cold := testKey(t, "hotkey-only cold", 0)
	hot, stranger := testKey(t, "hotkey-only hot", 0), testKey(t, "hotkey-only stranger", 0)
	c := testChain(t, []*wallet.PrivateKey{cold})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Registered from the machine with the coldkey.
	if _, err := ensureRegistered(ctx, c, cold, hot, 1); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultMinerConfig(1, backend.NewRetrieval())
	cfg.Swarm.Disabled, cfg.Logger = true, slog.New(slog.DiscardHandler)
	m, err := StartMiner(ctx, c, nil, hot, cfg)
	if err != nil {
		t.Fatalf("a miner for a registered hotkey, without the coldkey: %v", err)
	}
	m.Close()

	_, err = StartMiner(ctx, c, nil, stranger, cfg)
	if !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("a miner for an unregistered hotkey without the coldkey: %v, want ErrNotRegistered", err)
	}
	if _, err := c.Neuron(ctx, 1, stranger.PublicKey().Address()); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("the unregistered hotkey is on chain: %v", err)
	}

	vcfg := DefaultValidatorConfig(1, []Task{{Prompt: "q", Answer: "a"}})
	vcfg.Swarm.Disabled, vcfg.Logger = true, slog.New(slog.DiscardHandler)
	if v, err := StartValidator(ctx, c, nil, hot, 5, vcfg); err == nil {
		v.Close()
		t.Fatal("a validator staked without the coldkey")
	}
	v, err := StartValidator(ctx, c, nil, hot, 0, vcfg)
	if err != nil {
		t.Fatalf("a validator for a registered hotkey, without the coldkey: %v", err)
	}
	v.Close()
}
