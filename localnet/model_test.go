package localnet

import (
	"bytes"
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/model/charlm"
	"github.com/cybertensor/cybertensor/subnet"
)

// The built-in model subnet: three honest miners train charlm models on
// all, a quarter and a sixteenth of the corpus, a lazy one on a line of
// lorem ipsum, and a copier commits the leader's CID once an epoch has
// paid it. The validators rank them by loss: the best model earns the
// most, each honest model more than the next, the lazy and the copier ~0;
// the summary shows each miner's commitment, loss and incentive.
func TestLocalnetModelSubnetRanksModels(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network for several seconds")
	}
	cfg := DefaultConfig()
	cfg.Subnets = []string{"model"}
	cfg.Validators, cfg.Miners = 2, 5
	cfg.Adversaries = []string{Lazy, Copier}
	cfg.Tempo, cfg.BlockTime, cfg.Epochs = 5, 100*time.Millisecond, 10
	var progress bytes.Buffer
	cfg.Progress, cfg.Logger, cfg.Dashboard = &progress, slog.New(slog.DiscardHandler), ""
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	corpus, _ := subnet.BuiltinData("model")
	checkModelRanking(t, s.Models, len(corpus))
	for _, n := range s.Neurons {
		if n.Role == "validator" && (n.Dividends == 0 || n.WeightSets == 0) {
			t.Errorf("validator %d: dividends %v, %d weight sets", n.UID, n.Dividends, n.WeightSets)
		}
	}
	for _, want := range []string{"trained on 81394 bytes of the corpus", "lazy: trained on a line of lorem ipsum", "commits the leader's", "models of subnet 1"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("progress:\n%s", progress.String())
	}
}

// checkModelRanking checks a model subnet's summary of three honest
// miners, a lazy one and a copier: the models in order of incentive, the
// honest ones by how much of the corpus (size bytes) they trained on,
// each earning more and with a lower loss than the next; the lazy one
// evaluated last with ~0; the copier's commit, the leader's CID at a later
// block, refused as a duplicate, ~0.
func checkModelRanking(t *testing.T, models []ModelSummary, size int) {
	t.Helper()
	if len(models) != 5 {
		t.Fatalf("%d models: %+v", len(models), models)
	}
	if !slices.IsSortedFunc(models, func(a, b ModelSummary) int { return -cmp.Compare(a.Incentive, b.Incentive) }) {
		t.Errorf("not ranked by incentive: %+v", models)
	}
	var honest []ModelSummary
	var lazy, copier ModelSummary
	for _, m := range models {
		switch m.Adversary {
		case Lazy:
			lazy = m
		case Copier:
			copier = m
		default:
			honest = append(honest, m)
		}
	}
	if len(honest) != 3 || lazy.Hotkey == "" || copier.Hotkey == "" {
		t.Fatalf("honest %d, lazy %+v, copier %+v", len(honest), lazy, copier)
	}
	for i, h := range honest {
		if want := len(trainingText(make([]byte, size), i)); h.TrainedBytes != int64(want) {
			t.Errorf("honest miner %d trained on %d bytes, want %d", i, h.TrainedBytes, want)
		}
		if h.Loss == nil || h.Status != "EVALUATED" || h.CID == "" {
			t.Fatalf("honest miner %d: %+v", i, h)
		}
		if i > 0 && !(honest[i-1].Incentive > h.Incentive && *honest[i-1].Loss < *h.Loss) {
			t.Errorf("honest miner %d (incentive %v, loss %v) is not behind miner %d (incentive %v, loss %v)",
				i, h.Incentive, *h.Loss, i-1, honest[i-1].Incentive, *honest[i-1].Loss)
		}
	}
	best := honest[0]
	if best.Incentive < 0.5 || !strings.Contains(best.Reason, "the best") {
		t.Errorf("the best model earns %v: %+v", best.Incentive, best)
	}
	if lazy.Loss == nil || *lazy.Loss <= *honest[2].Loss || lazy.Incentive > 0.01 || lazy.Score != 0 {
		t.Errorf("lazy: %+v", lazy)
	}
	// It copies whoever led two epochs in a row: the best model, unless a
	// model committed a block before the others led the first rounds and
	// the run ended before the copier caught up.
	i := slices.IndexFunc(honest, func(h ModelSummary) bool { return copier.CopiedUID != nil && int(h.UID) == *copier.CopiedUID })
	if i < 0 || copier.CID != honest[i].CID || copier.CommitBlock <= honest[i].CommitBlock {
		t.Fatalf("the copier did not commit a leader's CID later: %+v (honest %+v)", copier, honest)
	}
	if i != 0 {
		t.Logf("the copier copied honest miner %d (uid %d), which led for a while, not the best", i, honest[i].UID)
	}
	if copier.Status != "REFUSED" || !strings.Contains(copier.Reason, "duplicate of uid") || copier.Loss != nil || copier.Incentive > 0.01 {
		t.Errorf("copier: %+v", copier)
	}
}

// A copier copies weights as a validator, except on a model subnet, where
// it is a miner; each role keeps an honest neuron.
func TestAdversaryPlaces(t *testing.T) {
	qa, _ := subnet.Builtin("qa")
	model, _ := subnet.Builtin("model")
	all := []string{Lazy, Offline, Copier}
	if m, v := adversaryPlaces(all, qa); !slices.Equal(m, []string{Lazy, Offline}) || !slices.Equal(v, []string{Copier}) {
		t.Errorf("qa: miners %v, validators %v", m, v)
	}
	if m, v := adversaryPlaces(all, model); !slices.Equal(m, all) || len(v) != 0 {
		t.Errorf("model: miners %v, validators %v", m, v)
	}
	cfg := DefaultConfig()
	cfg.Validators, cfg.Miners, cfg.Adversaries = 1, 3, all
	if err := cfg.checkAdversaries(model); err == nil || !strings.Contains(err.Error(), "3 miner adversaries need at least 4 miners") {
		t.Errorf("model with 3 miners: %v", err)
	}
	cfg.Miners = 4
	if err := cfg.checkAdversaries(model); err != nil {
		t.Errorf("model with 1 validator: %v", err)
	}
	if err := cfg.checkAdversaries(qa); err == nil || !strings.Contains(err.Error(), "copiers need") {
		t.Errorf("qa with 1 validator: %v", err)
	}
}

// The honest miners' shares: a quarter of the previous one's, in chunks
// spread over the whole corpus, at least minModelTraining bytes.
func TestTrainingText(t *testing.T) {
	corpus := make([]byte, 81394)
	for i := range corpus {
		corpus[i] = byte(i / modelChunk)
	}
	for _, c := range []struct{ size, rank, want int }{
		{81394, 0, 81394}, {81394, 1, 20480}, {81394, 2, 5120}, {81394, 3, 1280}, {81394, 4, 1024}, {81394, 40, 1024}, {500, 0, 500}, {500, 3, 500},
	} {
		got := trainingText(corpus[:c.size], c.rank)
		if len(got) != c.want {
			t.Errorf("trainingText(%d bytes, rank %d): %d bytes, want %d", c.size, c.rank, len(got), c.want)
		}
		if c.rank == 2 && c.size == 81394 {
			// Chunks 0, 16, 32, …, 304: from the start to the end of the
			// corpus (chunk i's bytes are i mod 256).
			if got[0] != 0 || got[modelChunk] != 16 || got[len(got)-1] != byte(304%256) {
				t.Errorf("rank 2's chunks: first %d, second %d, last %d", got[0], got[modelChunk], got[len(got)-1])
			}
		}
	}
}

// Wherever the round's evaluation sample falls in the built-in corpus,
// the honest miners' models rank by the text they trained on: the whole
// corpus, then a quarter, then a sixteenth.
func TestTrainingSharesRankEverywhere(t *testing.T) {
	corpus, ok := subnet.BuiltinData("model")
	if !ok {
		t.Fatal("no built-in model corpus")
	}
	spec, _ := subnet.Builtin("model")
	sample := int(modelEvaluate(spec).SampleBytes)
	var models []*charlm.Model
	for r := range 3 {
		cfg := charlm.DefaultTrainConfig()
		cfg.Order = modelOrder
		m, err := charlm.Train(context.Background(), bytes.NewReader(trainingText(corpus, r)), cfg)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	for off := 0; off+sample <= len(corpus); off += 4093 {
		var losses []float64
		for _, m := range models {
			l, err := m.Loss(context.Background(), corpus[off:off+sample])
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, l)
		}
		if !(losses[0] < losses[1] && losses[1] < losses[2]) {
			t.Errorf("sample at %d: losses %.3f, %.3f, %.3f: not ranked by training text", off, losses[0], losses[1], losses[2])
		}
	}
}
