package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/localnet"
)

// runOnLocalnet runs an example's spec on a localnet — the embedded chain,
// two validators, two honest miners and a lazy one as real libp2p hosts on
// loopback — whose honest miners answer from a fake model server that does
// the work well (and whose LLM judge, if the spec has one, is the same
// server), for epochs epochs of five blocks of blockTime; every honest
// miner must earn at least ten times the lazy miner's incentive. opts
// change the localnet's configuration first.
func runOnLocalnet(t *testing.T, dir string, model *fakeModel, epochs int, blockTime time.Duration, opts ...func(*localnet.Config)) *localnet.Summary {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a network for several seconds")
	}
	python3(t) // the examples' task programs and judges
	var progress bytes.Buffer
	cfg := localnet.DefaultConfig()
	cfg.Subnets, cfg.Specs = nil, []string{filepath.Join(dir, "spec.yaml")}
	cfg.Validators, cfg.Miners, cfg.Adversaries = 2, 3, []string{localnet.Lazy}
	cfg.Tempo, cfg.BlockTime, cfg.Epochs = 5, blockTime, epochs
	cfg.Upstream = backend.OpenAIConfig{BaseURL: model.URL, Model: "test-model", Timeout: 10 * time.Second}
	cfg.JudgeURL = model.URL + "/v1"
	cfg.Progress, cfg.Logger, cfg.Dashboard = &progress, slog.New(slog.DiscardHandler), ""
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	s, err := localnet.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Epochs < cfg.Epochs {
		t.Fatalf("only %d epochs:\n%s", s.Epochs, progress.String())
	}
	var honest []localnet.NeuronSummary
	var lazy localnet.NeuronSummary
	for _, n := range s.Neurons {
		switch {
		case n.Role == "validator":
			if n.QueriesSent == 0 || n.WeightSets == 0 {
				t.Errorf("validator %d: %d queries sent, %d weight sets", n.UID, n.QueriesSent, n.WeightSets)
			}
		case n.Adversary == localnet.Lazy:
			lazy = n
		default:
			honest = append(honest, n)
		}
	}
	if len(honest) != 2 || lazy.QueriesServed == 0 {
		t.Fatalf("%d honest miners, the lazy one served %d queries:\n%s", len(honest), lazy.QueriesServed, progress.String())
	}
	for _, h := range honest {
		if h.Incentive == 0 || h.Incentive < 10*lazy.Incentive || h.QueriesServed == 0 {
			t.Errorf("honest miner %d: incentive %.4f (lazy %.4f), served %d", h.UID, h.Incentive, lazy.Incentive, h.QueriesServed)
		}
	}
	t.Logf("%s: %d epochs in %v; honest incentive %.4f and %.4f, lazy %.4f; model asked %d times",
		dir, s.Epochs, time.Since(began).Round(time.Millisecond), honest[0].Incentive, honest[1].Incentive, lazy.Incentive,
		model.Requests("/v1/chat/completions"))
	if t.Failed() {
		t.Log(progress.String())
	}
	return s
}

// The summarize example end to end: tasks from tasks.py, summaries from
// the miners' model, scores from the LLM judge parsing "Score: N/10".
func TestSummarizeOnLocalnet(t *testing.T) {
	ex := loadExample(t, "summarize")
	runOnLocalnet(t, "summarize", newFakeModel(t, summarizeAnswers(t, ex.taskLines(t))), 5, 100*time.Millisecond)
}

// The translate example end to end: tasks from the locked dataset,
// scored by the reward against the references.
func TestTranslateOnLocalnet(t *testing.T) {
	ex := loadExample(t, "translate")
	runOnLocalnet(t, "translate", newFakeModel(t, translateAnswers(t, ex.taskLines(t))), 5, 100*time.Millisecond)
}

// The code example end to end: JSON answers checked against code.v1's
// schema, run against their unit tests by judge.py. Each judgement starts
// a Python process (and the judge's first, two), so blocks are slower
// here: a round's answers are judged before the weights it leads to.
func TestCodeOnLocalnet(t *testing.T) {
	ex := loadExample(t, "code")
	runOnLocalnet(t, "code", newFakeModel(t, codeAnswers(t, ex.taskLines(t))), 8, 250*time.Millisecond)
}

// The chat example end to end, with organic traffic: conversations from
// the dataset, answers from the miners' model (the lazy miner's random
// words), grades from the LLM judge; meanwhile an application asks through
// the gateway, and the validator serving it scores every answer it gets
// (organic fraction 1) into the same scores.
func TestChatOnLocalnet(t *testing.T) {
	tasks := readTaskLines(t, filepath.Join("chat", "conversations.jsonl"))
	model := newFakeModel(t, chatAnswers(t, tasks))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var answered atomic.Int64
	s := runOnLocalnet(t, "chat", model, 5, 100*time.Millisecond, func(c *localnet.Config) {
		c.Gateway, c.OrganicFraction = "127.0.0.1:0", 1
		c.OnGateway = func(url, key string) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				organicTraffic(ctx, url, key, tasks, &answered)
			}()
		}
	})
	cancel()
	wg.Wait()
	if s.Gateway == nil || answered.Load() == 0 {
		t.Fatalf("the application got %d answers through the gateway (%+v)", answered.Load(), s.Gateway)
	}
	var scored int64
	for _, n := range s.Neurons {
		if n.Role == "validator" && n.Hotkey == s.Gateway.Hotkey {
			scored = n.OrganicScored
		}
	}
	if scored == 0 {
		t.Fatalf("the gateway's validator scored no organic answer of %d", answered.Load())
	}
	t.Logf("organic: %d answers through the gateway, %d scored by its validator", answered.Load(), scored)
}

// organicTraffic asks the gateway at baseURL the tasks' conversations, one
// after another, until ctx ends, counting the answers.
func organicTraffic(ctx context.Context, baseURL, key string, tasks []taskLine, answered *atomic.Int64) {
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for i := 0; ; i++ {
		body, _ := json.Marshal(map[string]any{"model": "sn1/text.chat", "messages": tasks[i%len(tasks)].Request["messages"]})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				answered.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
	}
}
