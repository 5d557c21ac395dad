package localnet

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A short localnet: honest miners earn, the lazy miner does not, the
// offline miner's incentive falls to zero, honest validators earn
// dividends and the weight copier earns less.
func TestLocalnetRewardsHonestWork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network for several seconds")
	}
	var progress bytes.Buffer
	cfg := DefaultConfig()
	cfg.Validators, cfg.Miners = 3, 5
	cfg.Adversaries = []string{Lazy, Offline, Copier}
	cfg.Tempo, cfg.BlockTime, cfg.For = 5, 100*time.Millisecond, 15*time.Second
	cfg.CommitReveal = true
	cfg.Progress = &progress
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Epochs < 5 {
		t.Fatalf("only %d epochs", s.Epochs)
	}
	var honest []NeuronSummary
	var lazy, offline, copier NeuronSummary
	var bestHonestDividends float64
	for _, n := range s.Neurons {
		switch {
		case n.Adversary == Copier:
			copier = n
		case n.Role == "validator":
			bestHonestDividends = max(bestHonestDividends, n.Dividends)
			if n.Dividends == 0 || n.WeightSets == 0 || n.QueriesSent == 0 {
				t.Errorf("validator %d: dividends %v, weight sets %d, queries %d", n.UID, n.Dividends, n.WeightSets, n.QueriesSent)
			}
		case n.Adversary == Lazy:
			lazy = n
		case n.Adversary == Offline:
			offline = n
		default:
			honest = append(honest, n)
		}
	}
	// Every neuron heard every other's heartbeat over gossip (the offline
	// miner only until it left, so at least the others').
	for _, n := range s.Neurons {
		if n.Heard < len(s.Neurons)-2 {
			t.Errorf("uid %d heard %d of the other %d neurons over gossip", n.UID, n.Heard, len(s.Neurons)-1)
		}
	}
	// Knowledge the validators published was fetched by the miners.
	shared := 0
	for _, n := range s.Neurons {
		shared += n.KnowledgeShared
	}
	if shared == 0 {
		t.Error("no neuron shared knowledge")
	}
	for _, h := range honest {
		if h.KnowledgeFetched == 0 {
			t.Errorf("honest miner %d fetched no knowledge (%d objects shared)", h.UID, shared)
		}
	}
	for _, h := range honest {
		if h.Incentive == 0 || h.Incentive < 10*lazy.Incentive || h.QueriesServed == 0 {
			t.Errorf("honest miner %d incentive %v (lazy %v), served %d", h.UID, h.Incentive, lazy.Incentive, h.QueriesServed)
		}
	}
	if offline.Incentive != 0 {
		t.Errorf("offline miner still has incentive %v", offline.Incentive)
	}
	// With commit-reveal the copier only sees weights once revealed, and
	// its own copies count an interval later still: it trails the
	// validator it copies. (Without it, copying converged weights pays
	// as well as computing them: that is why subnets enable it.)
	if copier.WeightSets == 0 || copier.Dividends >= bestHonestDividends {
		t.Errorf("copier: %d weight sets, dividends %v against the best honest validator's %v", copier.WeightSets, copier.Dividends, bestHonestDividends)
	}
	out := progress.String()
	for _, want := range []string{"/ip4/127.0.0.1/tcp/", "/p2p/16Uiu2", "epoch 1 at block", "INCENTIVE", "goes offline"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	if t.Failed() {
		t.Logf("progress:\n%s", out)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{Validators: 0, Miners: 2, Tempo: 5, BlockTime: time.Second, Logger: slog.Default()},
		{Validators: 1, Miners: 1, Tempo: 5, BlockTime: time.Second, Logger: slog.Default(), Adversaries: []string{Lazy}},
		{Validators: 1, Miners: 3, Tempo: 5, BlockTime: time.Second, Logger: slog.Default(), Adversaries: []string{"copycat"}},
		{Validators: 1, Miners: 3, Tempo: 1, BlockTime: time.Second, Logger: slog.Default()},
		{Validators: 1, Miners: 3, Tempo: 5, BlockTime: time.Second, Logger: slog.Default(), Adversaries: []string{Copier}},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
