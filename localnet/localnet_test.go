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
	// The timeline says when every honest miner was first paid: no
	// earlier than the first paying epoch, within the run.
	if tl := s.Timeline; tl.MostPaid == 0 || tl.MostPaid < tl.FirstPaid || tl.MostPaidEpoch < 1 || tl.MostPaidEpoch > s.Epochs {
		t.Errorf("timeline %+v after %d epochs, with every honest miner paid", tl, s.Epochs)
	}
	// With commit-reveal the copier only sees weights once revealed, and
	// its own copies count an interval later still: it trails the
	// validator it copies. (Without it, copying converged weights pays
	// as well as computing them: that is why subnets enable it.)
	if copier.WeightSets == 0 || copier.Dividends >= bestHonestDividends {
		t.Errorf("copier: %d weight sets, dividends %v against the best honest validator's %v", copier.WeightSets, copier.Dividends, bestHonestDividends)
	}
	out := progress.String()
	for _, want := range []string{"/ip4/127.0.0.1/tcp/", "/p2p/16Uiu2", "epoch 1 of subnet 1 \"qa\" at block", "INCENTIVE", "goes offline"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
	if t.Failed() {
		t.Logf("progress:\n%s", out)
	}
}

func TestConfigValidation(t *testing.T) {
	base := func(edit func(*Config)) Config {
		c := DefaultConfig()
		c.Validators, c.Miners, c.Tempo, c.BlockTime, c.Logger = 1, 3, 5, time.Second, slog.New(slog.DiscardHandler)
		edit(&c)
		return c
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{base(func(c *Config) { c.Validators = 0 }), "at least 1 validator"},
		{base(func(c *Config) { c.Miners = 1; c.Adversaries = []string{Lazy} }), "so one is honest"},
		{base(func(c *Config) { c.Adversaries = []string{"copycat"} }), `unknown adversary "copycat"`},
		{base(func(c *Config) { c.Tempo = 1 }), "tempo must be at least 2"},
		{base(func(c *Config) { c.Adversaries = []string{Copier} }), "copiers need"},
		{base(func(c *Config) { c.Subnets = nil }), "at least one subnet"},
		{base(func(c *Config) { c.Subnets = []string{"qa", "mining"} }), `unknown subnet "mining"`},
		{base(func(c *Config) { c.Subnets = []string{"qa", "qa"} }), "listed twice"},
		{base(func(c *Config) { c.Miners = 256 }), "at most 256 neurons a subnet"},
		{base(func(c *Config) { c.Epochs = -1 }), "not negative"},
	} {
		if _, err := Run(context.Background(), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
}

// The three built-in subnets side by side: on each, the honest miners earn
// and the lazy one (random answers, random storage proofs, random nonces)
// does not; the storage miners keep the validators' objects.
func TestLocalnetRunsTheBuiltinSubnets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three subnets for several seconds")
	}
	cfg := DefaultConfig()
	cfg.Subnets = []string{"qa", "storage", "compute"}
	cfg.Validators, cfg.Miners, cfg.Adversaries = 1, 3, []string{Lazy}
	cfg.Tempo, cfg.BlockTime, cfg.Epochs = 5, 100*time.Millisecond, 8
	var progress bytes.Buffer
	cfg.Progress, cfg.Logger = &progress, slog.New(slog.DiscardHandler)
	s, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Epochs < 8 {
		t.Fatalf("%d epochs", s.Epochs)
	}
	bySubnet := map[string][]NeuronSummary{}
	for _, n := range s.Neurons {
		bySubnet[n.Subnet] = append(bySubnet[n.Subnet], n)
		if want := map[string]uint16{"qa": 1, "storage": 2, "compute": 3}[n.Subnet]; n.Netuid != want {
			t.Errorf("%s neuron on netuid %d", n.Subnet, n.Netuid)
		}
	}
	for _, name := range cfg.Subnets {
		var lazy NeuronSummary
		var honest []NeuronSummary
		for _, n := range bySubnet[name] {
			switch {
			case n.Adversary == Lazy:
				lazy = n
			case n.Role == "miner":
				honest = append(honest, n)
			case n.Dividends == 0:
				t.Errorf("%s validator earned no dividends", name)
			}
		}
		if len(honest) != 2 || lazy.Hotkey == "" {
			t.Fatalf("%s: %d honest miners, lazy %+v", name, len(honest), lazy)
		}
		for _, h := range honest {
			if h.Incentive == 0 || h.Incentive < 10*lazy.Incentive || h.QueriesServed == 0 {
				t.Errorf("%s: honest miner %d incentive %v (lazy %v), served %d", name, h.UID, h.Incentive, lazy.Incentive, h.QueriesServed)
			}
			if name == "storage" && h.KnowledgeFetched == 0 {
				t.Errorf("storage miner %d keeps none of the validator's objects", h.UID)
			}
		}
	}
	if t.Failed() {
		t.Logf("progress:\n%s", progress.String())
	}
}

// The timeline's paid shares are the smallest of the subnets' at each
// epoch, an epoch a subnet's run skipped taking the share before it, and
// only epochs every subnet has reached.
func TestTimelinePaid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		subnets int
		notes   [][3]float64 // subnet, epoch, share
		want    []float64
	}{
		{name: "one subnet", subnets: 1, notes: [][3]float64{{0, 1, 0}, {0, 2, 0.5}, {0, 3, 1}}, want: []float64{0, 0.5, 1}},
		{name: "a skipped epoch has the share before it", subnets: 1, notes: [][3]float64{{0, 1, 0}, {0, 2, 0.25}, {0, 5, 1}}, want: []float64{0, 0.25, 0.25, 0.25, 1}},
		{name: "the smallest of two subnets, as far as both went", subnets: 2,
			notes: [][3]float64{{0, 1, 0.5}, {1, 1, 0.25}, {0, 2, 0.75}, {0, 3, 1}, {1, 2, 1}}, want: []float64{0.25, 0.75}},
		{name: "nothing until every subnet has an epoch", subnets: 2, notes: [][3]float64{{0, 1, 1}, {0, 2, 1}}, want: []float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tl Timeline
			paid := make([][]float64, tc.subnets)
			for _, n := range tc.notes {
				tl.notePaid(paid, int(n[0]), int(n[1]), n[2])
			}
			if len(tl.Paid) != len(tc.want) {
				t.Fatalf("paid %v, want %v", tl.Paid, tc.want)
			}
			for i := range tc.want {
				if tl.Paid[i] != tc.want[i] {
					t.Fatalf("paid %v, want %v", tl.Paid, tc.want)
				}
			}
		})
	}
}
