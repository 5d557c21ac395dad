package neuron

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/wallet"
)

// records keeps warnings with their err attribute.
type records struct {
	mu    sync.Mutex
	warns []string
}

func (r *records) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			line += ": " + a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warns = append(r.warns, line)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) find(sub string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.warns {
		if strings.Contains(w, sub) {
			return w
		}
	}
	return ""
}

// A subnet whose weights_version_key is above the validator's
// WeightsVersion refuses its weights, and the validator says why in a
// warning (the key it needs, the version it sends, upgrade); a validator
// at the key sets its weights.
func TestValidatorBelowTheWeightsVersionKey(t *testing.T) {
	const key = WeightsVersion + 1
	cold := testKey(t, "version cold", 0)
	cfg := local.DefaultConfig(testGenesis(t, []*wallet.PrivateKey{cold}, func(p *chain.Hyperparams) { p.WeightsVersionKey = key }), chain.YumaEpoch)
	cfg.BlockTime, cfg.Logger = 50*time.Millisecond, slog.New(slog.DiscardHandler)
	c, err := local.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A neuron to weight (it serves nothing, so no round rescores it).
	other := testKey(t, "version other", 0)
	otherUID, err := ensureRegistered(ctx, c, cold, other, 1)
	if err != nil {
		t.Fatal(err)
	}

	start := func(i int, version uint64) (*Validator, *records) {
		t.Helper()
		logs := &records{}
		vcfg := DefaultValidatorConfig(1, []Task{{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}})
		vcfg.Swarm.Disabled, vcfg.Logger, vcfg.WeightsEvery, vcfg.WeightsVersion = true, slog.New(logs), 2, version
		v, err := StartValidator(ctx, c, cold, testKey(t, "version hot", i), 1e12, vcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		v.mu.Lock()
		v.scores.Update(otherUID, other.PublicKey().Address().String(), 1)
		v.mu.Unlock()
		return v, logs
	}
	if DefaultValidatorConfig(1, nil).WeightsVersion != WeightsVersion {
		t.Fatal("the default config does not send this release's WeightsVersion")
	}

	old, oldLogs := start(0, key-1)
	waitUntil(t, 30*time.Second, "the refusal logged", func() bool { return oldLogs.find("incorrect_version_key") != "" })
	msg := oldLogs.find("incorrect_version_key")
	for _, want := range []string{"setting weights failed", "subnet 1 requires weights version 2 or later and this validator sends 1", "upgrade"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("warning %q does not say %q", msg, want)
		}
	}
	if _, sets := old.Stats(); sets != 0 {
		t.Fatalf("the old validator set weights %d times", sets)
	}

	current, currentLogs := start(1, key)
	waitUntil(t, 30*time.Second, "weights set at the key", func() bool { _, sets := current.Stats(); return sets > 0 })
	if w := currentLogs.find("incorrect_version_key"); w != "" {
		t.Fatalf("the current validator was refused: %s", w)
	}
	n, err := c.Neuron(ctx, 1, testKey(t, "version hot", 1).PublicKey().Address())
	if err != nil || len(n.Weights) != 1 || n.Weights[0].UID != otherUID {
		t.Fatalf("weights on chain %+v %v", n.Weights, err)
	}
}
