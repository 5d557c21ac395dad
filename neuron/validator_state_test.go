package neuron

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/scoring"
	"github.com/cybertensor/cybertensor/wallet"
)

// manualChain is an embedded chain whose blocks the test produces: a
// background producer while neurons start, then the test itself, block by
// block, so it decides exactly when the reveal window opens.
type manualChain struct {
	*local.Local
	mu      sync.Mutex // held while producing a block
	running atomic.Bool
	stop    chan struct{}
	done    chan struct{}
}

func newManualChain(t *testing.T, colds []*wallet.PrivateKey, tune func(*chain.Hyperparams)) *manualChain {
	t.Helper()
	cfg := local.DefaultTestConfig(testGenesis(t, colds, tune), chain.YumaEpoch)
	cfg.Logger = slog.New(slog.DiscardHandler)
	l, err := local.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &manualChain{Local: l, stop: make(chan struct{}), done: make(chan struct{})}
	m.running.Store(true)
	go func() {
		defer close(m.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
				if m.running.Load() {
					m.step(t, 1)
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(m.stop)
		<-m.done
		l.Close()
	})
	return m
}

// pause stops the background producer; from then on the test steps.
func (m *manualChain) pause() {
	m.running.Store(false)
	m.mu.Lock() // waits out a block in production
	m.mu.Unlock()
}

func (m *manualChain) step(t *testing.T, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.Advance(n); err != nil {
		t.Error(err)
	}
}

func (m *manualChain) height(t *testing.T) uint64 {
	h, err := m.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Height
}

// stepUntil produces a block at a time until cond holds, giving the
// neurons time to react between blocks.
func (m *manualChain) stepUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v (block %d) waiting for %s", d, m.height(t), what)
		}
		m.step(t, 1)
		// Let the neurons see the block before judging it.
		poll := time.Now().Add(30 * time.Millisecond)
		for !cond() && time.Now().Before(poll) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// A validator on a commit-reveal subnet commits its weights (which stay
// hidden on chain), stops, and — restarted from its state dir with its
// scores intact — reveals exactly what it committed once the window opens.
func TestValidatorCommitRevealSurvivesRestart(t *testing.T) {
	const interval = 200
	var colds []*wallet.PrivateKey
	for i := range 3 {
		colds = append(colds, testKey(t, "cr-cold", i))
	}
	c := newManualChain(t, colds, func(p *chain.Hyperparams) {
		p.CommitRevealWeights, p.CommitRevealInterval = 1, interval
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	off := DefaultSwarmConfig()
	off.Disabled = true
	doc := backend.Document{ID: "sky", Text: "The sky is blue because of Rayleigh scattering."}
	for i := range 2 {
		mcfg := DefaultMinerConfig(1, backend.NewRetrieval(doc))
		mcfg.Swarm, mcfg.Logger = off, log
		m, err := StartMiner(ctx, c, colds[i], testKey(t, "cr-hot", i), mcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
	}
	hot := testKey(t, "cr-hot", 2)
	vcfg := DefaultValidatorConfig(1, []Task{{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}})
	vcfg.Swarm, vcfg.Logger, vcfg.StateDir = off, log, t.TempDir()
	vcfg.QueryEvery, vcfg.WeightsEvery = 1, 2
	v, err := StartValidator(ctx, c, colds[2], hot, 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	uid := v.UID()
	neuronOf := func() chain.NeuronInfo {
		n, err := c.Neuron(ctx, 1, hot.PublicKey().Address())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	c.pause()
	c.stepUntil(t, time.Minute, "a weight commit", func() bool { return neuronOf().Commit != nil })
	commit := neuronOf().Commit
	first, _ := chain.RevealWindow(commit.Block, interval)
	if n := neuronOf(); len(n.Weights) != 0 {
		t.Fatalf("weights visible before the reveal: %v", n.Weights)
	}
	if c.height(t)+1 >= first {
		t.Fatalf("commit at block %d leaves no room before the window opens at %d", commit.Block, first)
	}
	waitUntil(t, 10*time.Second, "the validator to count its commit", func() bool { return v.Commits() == 1 })
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	before := v.scoresEntries()

	// The state file holds the commit the chain holds, and the scores.
	data, err := os.ReadFile(filepath.Join(vcfg.StateDir, ValidatorStateFile))
	if err != nil {
		t.Fatal(err)
	}
	var saved validatorState
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	if saved.Pending == nil || !bytes.Equal(saved.Pending.Hash, commit.Hash[:]) || saved.Pending.Block != commit.Block {
		t.Fatalf("saved pending commit %+v, chain holds %x at %d", saved.Pending, commit.Hash, commit.Block)
	}
	if len(before) < 2 || !slices.Equal(saved.Scores, before) {
		t.Fatalf("saved scores %v, validator had %v", saved.Scores, before)
	}

	// Restarted (no new stake), it resumes the scores and reveals.
	c.running.Store(true)
	v2, err := StartValidator(ctx, c, colds[2], hot, 0, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	c.pause()
	if got := v2.scoresEntries(); !slices.Equal(got, before) {
		t.Fatalf("restored scores %v, want %v", got, before)
	}
	if h := c.height(t); h+2 < first {
		c.step(t, int(first-2-h))
	}
	c.stepUntil(t, time.Minute, "the reveal", func() bool { return len(neuronOf().Weights) > 0 })
	n := neuronOf()
	if n.Commit != nil || n.UID != uid {
		t.Fatalf("after the reveal: commit %+v, uid %d", n.Commit, n.UID)
	}
	var gotUIDs, gotValues []uint16
	for _, e := range n.Weights {
		gotUIDs, gotValues = append(gotUIDs, e.UID), append(gotValues, e.Value)
	}
	if !slices.Equal(gotUIDs, saved.Pending.UIDs) || !slices.Equal(gotValues, saved.Pending.Values) {
		t.Fatalf("revealed %v=%v, committed %v=%v", gotUIDs, gotValues, saved.Pending.UIDs, saved.Pending.Values)
	}
	waitUntil(t, 10*time.Second, "the restarted validator to count its reveal", func() bool {
		_, sets := v2.Stats()
		return sets == 1
	})
}

func (v *Validator) scoresEntries() []scoring.ScoreEntry {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.scores.Entries()
}

// A state file that is corrupt, or another validator's, stops the start
// with a clear error and stays as it was.
func TestValidatorStateRejectsBadFiles(t *testing.T) {
	hot := testKey(t, "state", 0)
	other := testKey(t, "state", 1)
	addr := hot.PublicKey().Address()
	hash := chain.CommitHash(addr, 1, []uint16{1}, []uint16{9}, []byte("salt"), 0)
	good := validatorState{Version: 1, Netuid: 1, Hotkey: addr.String(),
		Scores:  []scoring.ScoreEntry{{UID: 1, Holder: "h", Value: 0.5}},
		Pending: &pendingCommit{UIDs: []uint16{1}, Values: []uint16{9}, Salt: []byte("salt"), Hash: hash[:], Block: 7}}
	enc := func(s validatorState) string {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if _, err := decodeValidatorState([]byte(enc(good)), 1, addr); err != nil {
		t.Fatalf("good state refused: %v", err)
	}
	mut := func(f func(*validatorState)) string {
		s := good
		p := *good.Pending
		s.Pending = &p
		f(&s)
		return enc(s)
	}
	for name, tc := range map[string]struct{ data, want string }{
		"not json":      {"{", "unexpected EOF"},
		"trailing":      {enc(good) + "{}", "trailing"},
		"unknown field": {`{"version":1,"netuid":1,"hotkey":"` + addr.String() + `","extra":1}`, "unknown field"},
		"version":       {mut(func(s *validatorState) { s.Version = 2 }), "version 2"},
		"netuid":        {mut(func(s *validatorState) { s.Netuid = 2 }), "netuid 2"},
		"other hotkey":  {mut(func(s *validatorState) { s.Hotkey = other.PublicKey().Address().String() }), "state of hotkey"},
		"tampered":      {mut(func(s *validatorState) { s.Pending.Values = []uint16{10} }), "hash does not match"},
		"uneven":        {mut(func(s *validatorState) { s.Pending.UIDs = []uint16{1, 2} }), "as many uids"},
		"long salt":     {mut(func(s *validatorState) { s.Pending.Salt = make([]byte, 65) }), "salt"},
		"uid twice":     {mut(func(s *validatorState) { s.Scores = append(s.Scores, s.Scores[0]) }), "listed twice"},
	} {
		_, err := decodeValidatorState([]byte(tc.data), 1, addr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}

	// Through StartValidator: the error names the file; the file is kept.
	dir := t.TempDir()
	path := filepath.Join(dir, ValidatorStateFile)
	bad := []byte(`{"version":1,"netuid":1,"hotkey":"` + addr.String() + `","scores":[{"uid":1,"holder":"","value":1}]}`)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	colds := []*wallet.PrivateKey{testKey(t, "state-cold", 0)}
	c := testChain(t, colds)
	cfg := DefaultValidatorConfig(1, []Task{{Prompt: "p", Answer: "a"}})
	cfg.Swarm.Disabled, cfg.Logger, cfg.StateDir = true, slog.New(slog.DiscardHandler), dir
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if v, err := StartValidator(ctx, c, colds[0], hot, 0, cfg); err == nil {
		v.Close()
		t.Fatal("a validator started from a state file with an empty holder")
	} else if !strings.Contains(err.Error(), "no holder") {
		t.Fatalf("error %v does not say what is wrong", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
		t.Fatal("the bad state file was changed")
	}
}

// Saving replaces the file whole and leaves no temporary files behind.
func TestSaveValidatorStateIsAtomic(t *testing.T) {
	dir := t.TempDir()
	hot := testKey(t, "state", 0)
	s := &validatorState{Version: 1, Netuid: 1, Hotkey: hot.PublicKey().Address().String(), LastSet: 3}
	for i := range 3 {
		s.Scores = append(s.Scores, scoring.ScoreEntry{UID: uint16(i), Holder: "h", Value: float64(i) / 4})
		if err := saveValidatorState(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := loadValidatorState(dir, 1, hot.PublicKey().Address())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Scores) != 3 || got.LastSet != 3 {
		t.Fatalf("loaded %+v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d files, want only the state", len(entries))
	}
}

func FuzzDecodeValidatorState(f *testing.F) {
	k, err := wallet.PrivateKeyFromBytes(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	addr := k.PublicKey().Address()
	f.Add([]byte(`{"version":1,"netuid":1,"hotkey":"` + addr.String() + `","scores":[{"uid":3,"holder":"x","value":0.5}],"last_set":9}`))
	f.Add([]byte(`{"version":1,"netuid":1,"hotkey":"` + addr.String() + `","pending_commit":{"uids":[1],"values":[2],"salt":"c2FsdA==","hash":"AA==","block":1}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"version":2,"netuid":1,"hotkey":"` + addr.String() + `","scores":null,"last_set":0,"mechanisms":[{"name":"a","id":0,"scores":[{"uid":3,"holder":"x","value":0.5}],"last_set":4},{"name":"b","id":1,"scores":[]}],"dropped":[{"mechanism":"a","reason":"judge_timeout","count":2}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeValidatorState(data, 1, addr)
		if err != nil {
			return
		}
		// What it accepts restores, and round-trips.
		if _, err := scoring.RestoreScores(0.5, s.Scores); err != nil {
			t.Fatalf("accepted scores do not restore: %v", err)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeValidatorState(b, 1, addr); err != nil {
			t.Fatalf("re-encoded state refused: %v", err)
		}
	})
}
