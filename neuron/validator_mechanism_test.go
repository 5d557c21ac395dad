package neuron

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// A validator with ValidatorConfig.Mechanism 1, on a commit-reveal subnet
// running two mechanisms, commits and reveals on mechanism 1: the commit
// and then the weights are mechanism 1's, and mechanism 0 stays empty.
func TestValidatorWeightsOnItsMechanism(t *testing.T) {
	const interval = 20
	var colds []*wallet.PrivateKey
	for i := range 3 {
		colds = append(colds, testKey(t, "mech-cold", i))
	}
	c := newManualChain(t, colds, func(p *chain.Hyperparams) {
		p.CommitRevealWeights, p.CommitRevealInterval = 1, interval
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := testKey(t, "root", 0)
	if _, err := chainlink.NewSender(c, root).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_SetMechanisms{SetMechanisms: &chainpb.SetMechanisms{Netuid: 1, Shares: []uint32{1, 1}}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "two mechanisms", func() bool {
		info, err := c.Mechanisms(ctx, 1)
		return err == nil && info.Count() == 2
	})
	log := slog.New(slog.DiscardHandler)
	off := DefaultSwarmConfig()
	off.Disabled = true
	doc := backend.Document{ID: "sky", Text: "The sky is blue because of Rayleigh scattering."}
	for i := range 2 {
		mcfg := DefaultMinerConfig(1, backend.NewRetrieval(doc))
		mcfg.Swarm, mcfg.Logger = off, log
		m, err := StartMiner(ctx, c, colds[i], testKey(t, "mech-hot", i), mcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
	}
	hot := testKey(t, "mech-hot", 2)
	vcfg := DefaultValidatorConfig(1, []Task{{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}})
	vcfg.Swarm, vcfg.Logger, vcfg.Mechanism = off, log, 1
	vcfg.QueryEvery, vcfg.WeightsEvery = 1, 2
	v, err := StartValidator(ctx, c, colds[2], hot, 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	neuronOf := func() chain.NeuronInfo {
		n, err := c.Neuron(ctx, 1, hot.PublicKey().Address())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	c.pause()
	c.stepUntil(t, time.Minute, "a commit on mechanism 1", func() bool {
		m, ok := neuronOf().Mechanism(1)
		return ok && m.Commit != nil
	})
	if n := neuronOf(); n.Commit != nil {
		t.Fatalf("a commit on mechanism 0: %+v", n.Commit)
	}
	c.stepUntil(t, time.Minute, "the reveal on mechanism 1", func() bool {
		m, _ := neuronOf().Mechanism(1)
		return len(m.Weights) > 0
	})
	n := neuronOf()
	if m, _ := n.Mechanism(1); m.Commit != nil || len(n.Weights) != 0 || n.Commit != nil {
		t.Fatalf("after the reveal: mechanism 1 %+v, mechanism 0 weights %v commit %+v", m, n.Weights, n.Commit)
	}
	waitUntil(t, 10*time.Second, "the validator to count its reveal", func() bool {
		_, sets := v.Stats()
		return sets >= 1
	})
}
