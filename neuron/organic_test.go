package neuron

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// organicSpec is a chat subnet judged by a program that scores an answer
// 1 if it says 42, needing no expected answer; its own tasks are asked
// only every 100,000 blocks, so in a test every score is organic.
func organicSpec(t *testing.T) (*subnet.Spec, string) {
	t.Helper()
	text := fmt.Sprintf(`version: 2
name: organic-test
synapses:
  - text.chat
tasks: {source: dataset, path: tasks.jsonl}
judge: {kind: exec, command: %s, limits: %s}
reward: 'judge.score'
query: {every: 100000, sample: 0, timeout: 2s}
alpha: 0.5
weights_every: 100000
`, testHookCommand(t, "judge-contains", "42"), hookLimitsYAML)
	spec, err := subnet.Parse([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	dir := t.TempDir()
	tasks := `{"request": {"messages": [{"role": "user", "content": "what is six times seven"}]}}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "tasks.jsonl"), []byte(tasks), 0o644); err != nil {
		t.Fatal(err)
	}
	return spec, dir
}

// Gateway test doubles: one key, no limits, usage kept nowhere.
type (
	oneKey       struct{}
	noLimits     struct{}
	usageDropped struct{}
)

func (oneKey) Authenticate(secret string) (string, bool)              { return "k", secret == "sk-organic" }
func (noLimits) Allow(string, int64, time.Time) (bool, time.Duration) { return true, 0 }
func (usageDropped) Record(gateway.Usage) error                       { return nil }

// A validator running the gateway scores the organic answers it samples
// with its spec's judge and reward, into the same moving averages as its
// own tasks: the miner whose chat answers say 42 gains a score, the one
// whose answers do not stays at 0, and "validator scores" shows the
// answers as organic. Requests no mechanism scores are not sampled.
func TestOrganicScoring(t *testing.T) {
	spec, dir := organicSpec(t)
	colds := []*wallet.PrivateKey{testKey(t, "organic cold", 0), testKey(t, "organic cold", 1), testKey(t, "organic cold", 2)}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	vcfg := SpecValidatorConfig(1, spec, nil)
	vcfg.Logger, vcfg.SpecDir, vcfg.Swarm.Disabled, vcfg.Host.Registerer = slog.New(slog.DiscardHandler), dir, true, reg
	vcfg.OrganicFraction = 1
	v, err := StartValidator(ctx, c, colds[0], testKey(t, "organic hot", 0), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	miners := map[string]*Miner{}
	for i, says := range []string{"the answer is 42", "no idea"} {
		mcfg := SpecMinerConfig(1, spec, nil)
		mcfg.Logger, mcfg.Swarm.Disabled = slog.New(slog.DiscardHandler), true
		mcfg.Handlers = map[string]protocol.Handler{subnet.SynapseChat: protocol.HandlerFunc(func(_ context.Context, _ *protocol.Request, w protocol.ResponseWriter) error {
			return w.Write([]byte(says))
		})}
		m, err := StartMiner(ctx, c, colds[i+1], testKey(t, "organic hot", i+1), mcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		miners[says] = m
	}
	honest, liar := miners["the answer is 42"], miners["no idea"]

	if v.WantOrganic(2, subnet.SynapseChat) || v.WantOrganic(1, subnet.SynapseEmbed) {
		t.Fatal("sampled a request of another subnet, or of a synapse no mechanism scores")
	}
	if !v.WantOrganic(1, subnet.SynapseChat) {
		t.Fatal("with OrganicFraction 1, a chat request was not sampled")
	}

	gcfg := gateway.DefaultTestConfig()
	gcfg.Subnets = []uint16{1}
	gw, err := gateway.New(gcfg, gateway.Deps{
		Metagraph: gateway.ChainMetagraph{Chain: c, Self: v.ID()},
		Querier:   gateway.ProtocolQuerier{Host: v.Host(), Client: v.Client()},
		Auth:      oneKey{}, Limiter: noLimits{}, Recorder: usageDropped{}, Organic: v,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx) }()
	t.Cleanup(func() {
		gw.Close()
		<-served
	})
	organicAnswers := func(uid uint16) (n int) {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, a := range v.answers[uid] {
			if a.Organic && !a.Dropped {
				n++
			}
		}
		return n
	}
	ask := func() {
		body := `{"model": "sn1/text.chat", "messages": [{"role": "user", "content": "what is six times seven"}]}`
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+gw.Addr().String()+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer sk-organic")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 503 { // 503 until the gateway has read the miners
			t.Fatalf("the gateway answered %s", resp.Status)
		}
	}
	waitUntil(t, time.Minute, "organic answers of both miners scored", func() bool {
		ask()
		return organicAnswers(honest.UID()) > 0 && organicAnswers(liar.UID()) > 0
	})
	if s := scoreOf(v, honest.UID()); s < 0.5 {
		t.Errorf("the miner whose answers say 42 scores %v, want at least 0.5 (alpha 0.5)", s)
	}
	if s := scoreOf(v, liar.UID()); s != 0 {
		t.Errorf("the miner whose answers do not say 42 scores %v, want 0", s)
	}
	if q, _ := v.Stats(); q != 0 {
		t.Errorf("the validator asked %d tasks of its own; the scores were to be organic only", q)
	}
	if n := testutil.ToFloat64(v.organic.outcome.WithLabelValues("1", subnet.MainMechanism, organicScored)); n < 2 {
		t.Errorf("organic_total{outcome=scored} %v, want at least 2", n)
	}

	// A uid that changed hands since the gateway read it is not scored;
	// an answer the gateway refused scores 0 with its reason. (The
	// gateway stops first, and what it handed over is scored.)
	gw.Close()
	waitUntil(t, time.Minute, "the organic answers handed over to be scored", func() bool { return v.organic.pending.Load() == 0 })
	before := scoreOf(v, honest.UID())
	hk := testKey(t, "organic hot", 1).PublicKey().Address().String()
	chat := []byte(`{"messages": [{"role": "user", "content": "hi"}]}`)
	v.scoreOrganic(ctx, gateway.OrganicAnswer{Netuid: 1, Synapse: subnet.SynapseChat, UID: honest.UID(), Hotkey: "5Fsomeoneelse",
		Request: chat, Status: protocol.StatusOK, Answer: []byte("42"), Timeout: time.Second})
	if n := testutil.ToFloat64(v.organic.outcome.WithLabelValues("1", subnet.MainMechanism, organicStale)); n != 1 || scoreOf(v, honest.UID()) != before {
		t.Errorf("an answer of a uid's former hotkey: stale %v, score %v → %v", n, before, scoreOf(v, honest.UID()))
	}
	v.scoreOrganic(ctx, gateway.OrganicAnswer{Netuid: 1, Synapse: subnet.SynapseChat, UID: honest.UID(), Hotkey: hk,
		Request: chat, Status: protocol.StatusOK, Invalid: "the answer is not UTF-8", Timeout: time.Second})
	if got := scoreOf(v, honest.UID()); got != before/2 {
		t.Errorf("after a refused answer the score is %v, want %v (alpha 0.5 of 0)", got, before/2)
	}
	v.mu.Lock()
	last := v.answers[honest.UID()][len(v.answers[honest.UID()])-1]
	v.mu.Unlock()
	if !last.Organic || last.Score != 0 || last.Reason != "invalid answer: the answer is not UTF-8" {
		t.Errorf("the refused answer is recorded as %+v", last)
	}
}
