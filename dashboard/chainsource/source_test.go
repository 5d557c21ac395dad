package chainsource

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/dashboard"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func key(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("chainsource test %d", i)))
	k, err := wallet.PrivateKeyFromBytes(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

func addr(k *wallet.PrivateKey) wallet.Address { return k.PublicKey().Address() }

// testChain is an embedded chain whose root (key 0) opens subnet 1 "qa"
// with tempo 2 and registers hotkey key 1 on it.
func testChain(t *testing.T) *local.Local {
	t.Helper()
	root := key(0)
	gen := chain.LocalnetGenesis("chainsource-test", addr(root), []chain.GenesisBalance{{Address: addr(root), Amount: 1e12}})
	l, err := local.New(local.DefaultTestConfig(gen, chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	hot := addr(key(1))
	for seq, msg := range []*chainpb.Msg{
		{Sum: &chainpb.Msg_RegisterNetwork{RegisterNetwork: &chainpb.RegisterNetwork{Name: "qa"}}},
		{Sum: &chainpb.Msg_SudoSetHyperparam{SudoSetHyperparam: &chainpb.SudoSetHyperparam{Netuid: 1, Name: "tempo", Value: 2}}},
		{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hot[:]}}},
	} {
		raw, err := chain.SignTx(root, l.ChainID(), uint64(seq), msg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Broadcast(raw); err != nil {
			t.Fatalf("transaction %d: %v", seq, err)
		}
		advance(t, l, 1)
	}
	return l
}

func advance(t *testing.T, l *local.Local, n int) {
	t.Helper()
	if err := l.Advance(n); err != nil {
		t.Fatal(err)
	}
}

// untilEpoch advances l until subnet netuid's epoch runs, and returns its
// block.
func untilEpoch(t *testing.T, l *local.Local, netuid uint16) uint64 {
	t.Helper()
	before, err := l.Subnet(context.Background(), netuid)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		advance(t, l, 1)
		info, _ := l.Subnet(context.Background(), netuid)
		if info.LastEpochBlock != before.LastEpochBlock {
			return info.LastEpochBlock
		}
	}
	t.Fatalf("no epoch of subnet %d in 100 blocks", netuid)
	return 0
}

func subnetOf(t *testing.T, st dashboard.State, netuid uint16) dashboard.Subnet {
	t.Helper()
	for _, s := range st.Subnets {
		if s.Netuid == netuid {
			return s
		}
	}
	t.Fatalf("no subnet %d in %+v", netuid, st)
	return dashboard.Subnet{}
}

// A Source shows the chain's subnets with their metagraphs as the chain
// has them, adds a history point per epoch it sees (at the epoch's
// block), caps the history, never changes a published snapshot, and says
// it knows nothing of the neurons' own counters.
func TestPollFollowsSubnetsAndEpochs(t *testing.T) {
	ctx := context.Background()
	l := testChain(t)
	cfg := DefaultTestConfig()
	cfg.HistoryLimit = 2
	s, err := newSource(l, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.State()
	head, _ := l.Head(ctx)
	qa := subnetOf(t, st, 1)
	if st.ChainID != "chainsource-test" || !st.ChainOnly || st.Block != head.Height || st.Decimals != 9 || st.Epochs != 0 {
		t.Errorf("state %+v", st)
	}
	if qa.Name != "qa" || qa.Tempo != 2 || len(qa.Neurons) != 1 || qa.Neurons[0].Hotkey != addr(key(1)).String() || len(qa.History) != 0 {
		t.Errorf("subnet 1 before an epoch: %+v", qa)
	}
	if n := qa.Neurons[0]; n.Role != "" || n.Online || n.QueriesServed != 0 {
		t.Errorf("a chain-only row claims to know the neuron's counters: %+v", n)
	}

	block := untilEpoch(t, l, 1)
	if err := s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	first := s.State()
	qa = subnetOf(t, first, 1)
	if qa.Epochs != 1 || len(qa.History) != 1 || qa.History[0].Epoch != 1 || qa.History[0].Block != block ||
		len(qa.History[0].Incentive) != 1 || first.Epochs < 1 {
		t.Fatalf("after an epoch at block %d: %+v (state epochs %d)", block, qa, first.Epochs)
	}
	// A poll without an epoch adds nothing.
	if err := s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if h := subnetOf(t, s.State(), 1).History; len(h) != 1 {
		t.Fatalf("a poll without an epoch added a point: %+v", h)
	}
	var last uint64
	for range 2 {
		last = untilEpoch(t, l, 1)
		if err := s.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	qa = subnetOf(t, s.State(), 1)
	if qa.Epochs != 3 || len(qa.History) != 2 || qa.History[0].Epoch != 2 || qa.History[1].Epoch != 3 || qa.History[1].Block != last {
		t.Errorf("history after three epochs, capped at two: %+v", qa.History)
	}
	if h := subnetOf(t, first, 1).History; len(h) != 1 || h[0].Epoch != 1 || h[0].Block != block {
		t.Errorf("a published snapshot changed: %+v", h)
	}
}

// New runs a goroutine that follows the chain until Close (twice is
// fine).
func TestNewFollowsUntilClose(t *testing.T) {
	l := testChain(t)
	s, err := New(context.Background(), l, DefaultTestConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	block := untilEpoch(t, l, 1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.State()
		if h := subnetOf(t, st, 1).History; len(h) > 0 && h[len(h)-1].Block == block {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the epoch at block %d not shown after 30s: %+v", block, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	s.Close()
}

// unreachable is a chain that never answers.
type unreachable struct{}

func (unreachable) ChainID() string { return "gone" }
func (unreachable) Head(context.Context) (chainlink.Head, error) {
	return chainlink.Head{}, chainlink.ErrUnreachable
}
func (unreachable) Subnets(context.Context) ([]chain.SubnetInfo, error) {
	return nil, chainlink.ErrUnreachable
}
func (unreachable) Metagraph(context.Context, uint16, bool) (*chain.Metagraph, error) {
	return nil, chainlink.ErrUnreachable
}

// A chain that cannot be read at the start is an error, not an empty
// dashboard.
func TestNewNeedsTheChain(t *testing.T) {
	if _, err := New(context.Background(), unreachable{}, DefaultTestConfig()); !errors.Is(err, chainlink.ErrUnreachable) {
		t.Fatalf("New on an unreachable chain: %v", err)
	}
	if _, err := New(context.Background(), nil, DefaultTestConfig()); err == nil {
		t.Fatal("New without a chain")
	}
	cfg := DefaultTestConfig()
	cfg.HistoryLimit = 0
	if _, err := New(context.Background(), unreachable{}, cfg); err == nil {
		t.Fatal("New with HistoryLimit 0")
	}
}
