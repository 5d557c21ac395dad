package neuron

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/chainlink/comet/comettest"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/wallet"
)

// dialNode connects a client of its own to node (as a neuron's process
// does), waiting for the node to answer.
func dialNode(t *testing.T, node *comettest.Node) *comet.Client {
	t.Helper()
	cfg := comet.DefaultConfig()
	cfg.URL, cfg.PollInterval, cfg.Logger = node.URL, 20*time.Millisecond, slog.New(slog.DiscardHandler)
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := comet.Dial(ctx, cfg)
		cancel()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", node.URL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A miner and a validator, each with a client of its own, keep working
// while their CometBFT node is killed (with the validator's weights waiting
// for a block) and started again: the miner answers the callers it knows
// while the node is away, the validator's weights reach the chain once it
// is back, and both go on (#20 "chain client that survives its node").
func TestNeuronsKeepWorkingAcrossTheirChainNodeRestarting(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a CometBFT node")
	}
	colds := []*wallet.PrivateKey{testKey(t, "cold", 0), testKey(t, "cold", 1)}
	// One-second blocks: the validator's weights wait long enough in the
	// mempool to kill the node under them.
	node := comettest.Init(t, testGenesis(t, colds, nil), comettest.Options{BlockTime: time.Second})
	node.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)

	mcfg := DefaultMinerConfig(1, backend.NewRetrieval(backend.Document{ID: "sky", Text: "The sky is blue because of Rayleigh scattering."}))
	mcfg.Swarm.Disabled, mcfg.Logger = true, log
	miner, err := StartMiner(ctx, dialNode(t, node), colds[0], testKey(t, "hot", 0), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer miner.Close()
	vcfg := DefaultValidatorConfig(1, []Task{{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}})
	vcfg.Swarm.Disabled, vcfg.Logger, vcfg.QueryEvery, vcfg.WeightsEvery = true, log, 1, 2
	v, err := StartValidator(ctx, dialNode(t, node), colds[1], testKey(t, "hot", 1), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	// A registered prober that has queried the miner before.
	pc := dialNode(t, node)
	ask := registeredProber(t, ctx, pc, colds[0], testKey(t, "hot", 2), miner)
	probe := func() protocol.Result { return ask(5 * time.Second) }
	if r := probe(); r.Status != protocol.StatusOK {
		t.Fatalf("probe with the node up: %v %s", r.Status, r.Message)
	}
	waitUntil(t, time.Minute, "the validator's first weights", func() bool { _, sets := v.Stats(); return sets > 0 })

	// Kill the node while the validator's next weights wait for a block.
	_, setsBefore := v.Stats()
	killedAt := node.WaitMempool(ctx, t)
	node.Kill(t)
	if r := probe(); r.Status != protocol.StatusOK {
		t.Fatalf("probe with the node away: %v %s", r.Status, r.Message)
	}
	servedAway := miner.QueriesServed()
	node.Start(t)
	restarted := time.Now()
	waitUntil(t, time.Minute, "the validator's waiting weights", func() bool { _, sets := v.Stats(); return sets >= setsBefore+1 })
	t.Logf("the weights waiting at the kill reached a block %v after the restart", time.Since(restarted).Round(time.Millisecond))
	waitUntil(t, time.Minute, "the validator to set weights again", func() bool { _, sets := v.Stats(); return sets >= setsBefore+2 })
	m, err := pc.Metagraph(ctx, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if m.LastUpdate[v.UID()] <= killedAt {
		t.Fatalf("the validator's weights last set at block %d; the node was killed at %d", m.LastUpdate[v.UID()], killedAt)
	}
	waitUntil(t, time.Minute, "the validator to query the miner again", func() bool { return miner.QueriesServed() > servedAway })
}
