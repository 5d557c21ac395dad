package localnet

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/backend/openaitest"
)

// headlineUpstream is a fake model server for the headline specs: a
// headline is the text's first four words (the dataset's expected), tags
// its words; the judge's prompt gets 10/10 when the answer is the
// expected headline, 0/10 otherwise (counted in judged).
func headlineUpstream(judged *atomic.Int64) *openaitest.Server {
	return openaitest.New(openaitest.Config{Reply: func(r openaitest.ChatRequest) string {
		msg := r.Messages[len(r.Messages)-1].Content
		switch {
		case strings.HasPrefix(msg, "Write a headline for: "):
			words := strings.Fields(strings.TrimPrefix(msg, "Write a headline for: "))
			return strings.Join(words[:min(4, len(words))], " ")
		case strings.HasPrefix(msg, "Tag: "):
			b, _ := json.Marshal(map[string]any{"tags": strings.Fields(strings.TrimPrefix(msg, "Tag: "))})
			return string(b)
		case strings.HasPrefix(msg, "JUDGE."):
			judged.Add(1)
			answer, expected, _ := strings.Cut(msg, "\nEXPECTED: ")
			_, answer, _ = strings.Cut(answer, "\nANSWER: ")
			if strings.TrimSpace(answer) == strings.Trim(strings.TrimSpace(expected), `"`) {
				return "10/10"
			}
			return "0/10"
		}
		return "?"
	}})
}

// runSpec runs a localnet of one spec file with two validators, two
// honest miners and a lazy one, for five epochs, against up; it returns
// the honest miners and the lazy one.
func runSpec(t *testing.T, file string, up *openaitest.Server, progress *bytes.Buffer) (honest []NeuronSummary, lazy NeuronSummary) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Subnets, cfg.Specs = nil, []string{file}
	cfg.Validators, cfg.Miners, cfg.Adversaries = 2, 3, []string{Lazy}
	cfg.Tempo, cfg.BlockTime, cfg.Epochs = 5, 100*time.Millisecond, 5
	// The judges ask the upstream too: --judge-url's default.
	cfg.Upstream = backend.OpenAIConfig{BaseURL: up.URL, Model: "m", Timeout: 5 * time.Second}
	cfg.Progress, cfg.Logger, cfg.Dashboard = progress, slog.New(slog.DiscardHandler), ""
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Epochs < 5 || len(s.Specs) != 1 || len(s.Specs[0].Files) != 1 {
		t.Fatalf("%d epochs, specs %+v:\n%s", s.Epochs, s.Specs, progress.String())
	}
	for _, n := range s.Neurons {
		switch {
		case n.Role == "validator":
		case n.Adversary == Lazy:
			lazy = n
		default:
			honest = append(honest, n)
		}
	}
	if len(honest) != 2 || lazy.QueriesServed == 0 {
		t.Fatalf("%d honest miners, the lazy one served %d:\n%s", len(honest), lazy.QueriesServed, progress.String())
	}
	for _, h := range honest {
		if h.Incentive == 0 || h.Incentive < 10*lazy.Incentive || h.QueriesServed == 0 {
			t.Errorf("honest miner %d: incentive %v (lazy %v), served %d", h.UID, h.Incentive, lazy.Incentive, h.QueriesServed)
		}
	}
	return honest, lazy
}

// A subnet from a spec file: its honest miners answer the custom synapse
// from its prompt with the upstream model, the lazy one with junk its
// schema accepts, and the spec's LLM judge (asked at the upstream, not at
// the spec's url) pays the honest miners at least ten times the lazy one.
func TestLocalnetSpecPaysHonestMiners(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network for several seconds")
	}
	var judged atomic.Int64
	up := headlineUpstream(&judged)
	defer up.Close()
	var progress bytes.Buffer
	runSpec(t, headlineSpec, up, &progress)
	if judged.Load() == 0 {
		t.Error("the LLM judge was never asked")
	}
	if !strings.Contains(progress.String(), `subnet 1 "headline" from testdata/headline/spec.yaml: spec hash`) {
		t.Error("the spec was not published")
	}
	if t.Failed() {
		t.Log(progress.String())
	}
}

// A spec with two mechanisms: localnet gives the subnet their shares on
// chain, the validators set weights for each, and each pays the honest
// miners and not the lazy one.
func TestLocalnetSpecMechanisms(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network for several seconds")
	}
	var judged atomic.Int64
	up := headlineUpstream(&judged)
	defer up.Close()
	var progress bytes.Buffer
	honest, lazy := runSpec(t, "testdata/twomech/spec.yaml", up, &progress)
	if !strings.Contains(progress.String(), `subnet 1 "twomech" has 2 mechanisms, shares [700000 300000]`) {
		t.Error("no mechanisms set")
	}
	for _, h := range honest {
		if len(h.MechanismIncentive) != 2 || h.MechanismIncentive[0] == 0 || h.MechanismIncentive[1] == 0 {
			t.Errorf("honest miner %d: incentive by mechanism %v", h.UID, h.MechanismIncentive)
		}
	}
	if len(lazy.MechanismIncentive) != 2 || lazy.MechanismIncentive[0] != 0 || lazy.MechanismIncentive[1] != 0 {
		t.Errorf("lazy miner: incentive by mechanism %v", lazy.MechanismIncentive)
	}
	if t.Failed() {
		t.Log(progress.String())
	}
}
