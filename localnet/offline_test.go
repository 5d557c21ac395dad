package localnet

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// In a run bounded by epochs alone the offline miner leaves a third of
// the way through (after epoch 3 of 9) and its incentive fades below the
// honest miners' (#20 bug 7: without --for it never left, and earned like
// them).
func TestOfflineMinerLeavesInAnEpochsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network for several seconds")
	}
	var progress bytes.Buffer
	cfg := DefaultConfig()
	cfg.Validators, cfg.Miners, cfg.Adversaries = 2, 3, []string{Offline}
	cfg.Tempo, cfg.BlockTime, cfg.Epochs = 5, 100*time.Millisecond, 9
	cfg.Progress, cfg.Logger, cfg.Dashboard = &progress, slog.New(slog.DiscardHandler), ""
	s, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("progress:\n%s", progress.String())
		}
	}()
	if !strings.Contains(progress.String(), "after epoch 3: the offline miner") {
		t.Fatal("the offline miner did not leave after epoch 3 of 9")
	}
	var offline NeuronSummary
	var honest []NeuronSummary
	for _, n := range s.Neurons {
		switch {
		case n.Adversary == Offline:
			offline = n
		case n.Role == "miner":
			honest = append(honest, n)
		}
	}
	if len(honest) != 2 || offline.Hotkey == "" {
		t.Fatalf("%d honest miners, offline %+v", len(honest), offline)
	}
	for _, h := range honest {
		t.Logf("honest miner %d incentive %.4f served %d; offline miner incentive %.4f served %d", h.UID, h.Incentive, h.QueriesServed, offline.Incentive, offline.QueriesServed)
		if h.Incentive == 0 || offline.Incentive > h.Incentive/4 || offline.QueriesServed >= h.QueriesServed {
			t.Errorf("honest miner %d: incentive %v, served %d; the offline miner's: %v, served %d", h.UID, h.Incentive, h.QueriesServed, offline.Incentive, offline.QueriesServed)
		}
	}
}

func TestOfflineDue(t *testing.T) {
	for _, c := range []struct {
		forRun  time.Duration
		epochs  int // Config.Epochs
		elapsed time.Duration
		done    int // epochs complete
		want    bool
	}{
		// By time: a third of For.
		{forRun: 30 * time.Second, elapsed: 9 * time.Second, want: false},
		{forRun: 30 * time.Second, elapsed: 10 * time.Second, want: true},
		{forRun: 30 * time.Second, elapsed: 9 * time.Second, done: 100, want: false},
		// By epochs: a third of Epochs, at least one.
		{epochs: 8, done: 1, want: false},
		{epochs: 8, done: 2, want: true},
		{epochs: 9, done: 2, elapsed: time.Hour, want: false},
		{epochs: 9, done: 3, want: true},
		{epochs: 2, done: 0, want: false},
		{epochs: 2, done: 1, want: true},
		{epochs: 1, done: 1, want: true},
		// Both: whichever comes first.
		{forRun: 30 * time.Second, epochs: 9, elapsed: 10 * time.Second, done: 0, want: true},
		{forRun: 30 * time.Second, epochs: 9, elapsed: time.Second, done: 3, want: true},
		{forRun: 30 * time.Second, epochs: 9, elapsed: time.Second, done: 2, want: false},
		// Neither: after offlineAfterEpochs.
		{done: offlineAfterEpochs - 1, elapsed: time.Hour, want: false},
		{done: offlineAfterEpochs, want: true},
	} {
		cfg := Config{For: c.forRun, Epochs: c.epochs}
		if got := offlineDue(cfg, c.elapsed, c.done); got != c.want {
			t.Errorf("For %v, Epochs %d, %v in with %d epochs done: %v, want %v", c.forRun, c.epochs, c.elapsed, c.done, got, c.want)
		}
	}
}
