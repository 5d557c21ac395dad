package neuron

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/backend/openaitest"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// Two miners serve text.chat and text.embed over loopback: one with the
// OpenAI backend in front of a fake model server, one with the built-in
// retrieval backend. A registered caller streams chat answers with usage
// and gets embeddings; bad bodies are BAD_REQUEST, upstream failures
// INTERNAL and counted, an upstream too slow TIMEOUT.
func TestMinerServesChatAndEmbed(t *testing.T) {
	colds := []*wallet.PrivateKey{testKey(t, "chat cold", 0), testKey(t, "chat cold", 1), testKey(t, "chat cold", 2)}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	up := openaitest.New(openaitest.Config{Answer: "the answer is 42", APIKey: "secret", Dimensions: 3})
	defer up.Close()
	oa, err := backend.NewOpenAI(backend.OpenAIConfig{BaseURL: up.URL, Model: "m", APIKey: "secret", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer oa.Close()
	spec := &subnet.Spec{Synapses: []subnet.Synapse{{Name: subnet.SynapseChat}, {Name: subnet.SynapseEmbed}}}
	start := func(i int, g backend.Generator) *Miner {
		cfg := SpecMinerConfig(1, spec, g)
		reg := prometheus.NewRegistry()
		cfg.Logger, cfg.Swarm.Disabled, cfg.Host.Registerer = slog.New(slog.DiscardHandler), true, reg
		m, err := StartMiner(ctx, c, colds[i], testKey(t, "chat hot", i), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	openaiMiner := start(0, oa)
	retrievalMiner := start(1, backend.NewRetrieval(backend.Document{ID: "yuma", Text: "Yuma consensus computes a stake-weighted median of validator weights."}))

	caller := testKey(t, "chat hot", 2)
	if _, err := ensureRegistered(ctx, c, colds[2], caller, 1); err != nil {
		t.Fatal(err)
	}
	h, err := newHost(caller, HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, SwarmConfig{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	client, err := protocol.NewClient(h, protocol.DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for _, m := range []*Miner{openaiMiner, retrievalMiner} {
		h.Peerstore().AddAddrs(m.ID(), m.h.Addrs(), time.Hour)
	}
	ask := func(m *Miner, synapse string, body []byte, timeout time.Duration, onChunk func([]byte) error) protocol.Result {
		return client.Stream(ctx, m.ID(), &pb.Request{Netuid: 1, Synapse: synapse, Body: body, TimeoutMs: uint32(timeout / time.Millisecond)}, onChunk)
	}
	temp := 0.2
	chat := subnet.ChatRequest{Messages: []subnet.ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "what does yuma consensus compute"}},
		MaxTokens: 10, Temperature: &temp}

	// OpenAI: streamed (the deltas that arrived together in one chunk or
	// more; backend.TestOpenAIChatStreamCoalesces covers the pacing), with
	// the upstream's usage.
	var chunks []string
	res := ask(openaiMiner, subnet.SynapseChat, chat.Encode(), 10*time.Second, func(b []byte) error { chunks = append(chunks, string(b)); return nil })
	if res.Status != protocol.StatusOK || strings.Join(chunks, "") != "the answer is 42" || len(chunks) == 0 || len(chunks) > 4 {
		t.Fatalf("openai chat: %v %q %q", res.Status, res.Message, chunks)
	}
	if res.Usage.GetPromptTokens() != 7 || res.Usage.GetCompletionTokens() != 4 {
		t.Fatalf("openai chat usage %v", res.Usage)
	}
	if got := up.LastChat(); got.MaxTokens != 10 || *got.Temperature != 0.2 || len(got.Messages) != 2 {
		t.Fatalf("upstream got %+v", got)
	}
	// An upstream that does not stream.
	up.SetConfig(openaitest.Config{Answer: "the answer is 42", APIKey: "secret", Dimensions: 3, NoStreaming: true})
	if res := ask(openaiMiner, subnet.SynapseChat, chat.Encode(), 10*time.Second, nil); res.Status != protocol.StatusOK || string(res.Body) != "the answer is 42" || res.Usage.GetCompletionTokens() != 4 {
		t.Fatalf("openai chat, JSON upstream: %v %q %v", res.Status, res.Body, res.Usage)
	}
	// Embeddings through the upstream.
	emb := subnet.EmbedRequest{Input: []string{"a b", "c"}}
	res = ask(openaiMiner, subnet.SynapseEmbed, emb.Encode(), 10*time.Second, nil)
	ans, err := subnet.DecodeEmbedAnswer(res.Body, emb)
	if res.Status != protocol.StatusOK || err != nil || len(ans.Embeddings[0]) != 3 || ans.Embeddings[1][0] != openaitest.Embedding("c", 3)[0] || res.Usage.GetPromptTokens() != 3 {
		t.Fatalf("openai embed: %v %q %v %v", res.Status, res.Message, err, res.Usage)
	}

	// Retrieval: the passage for the last user message; hashed embeddings.
	res = ask(retrievalMiner, subnet.SynapseChat, chat.Encode(), 10*time.Second, nil)
	if res.Status != protocol.StatusOK || !strings.Contains(string(res.Body), "stake-weighted median") || res.Usage.GetPromptTokens() != 7 {
		t.Fatalf("retrieval chat: %v %q %v", res.Status, res.Body, res.Usage)
	}
	noAnswer := subnet.ChatRequest{Messages: []subnet.ChatMessage{{Role: "user", Content: "zebra giraffe"}}}
	if res := ask(retrievalMiner, subnet.SynapseChat, noAnswer.Encode(), 10*time.Second, nil); res.Status != protocol.StatusNotFound {
		t.Fatalf("retrieval without an answer: %v", res.Status)
	}
	emb = subnet.EmbedRequest{Input: []string{"yuma consensus", "weights"}, Dimensions: 64}
	res = ask(retrievalMiner, subnet.SynapseEmbed, emb.Encode(), 10*time.Second, nil)
	ans, err = subnet.DecodeEmbedAnswer(res.Body, emb)
	if res.Status != protocol.StatusOK || err != nil {
		t.Fatalf("retrieval embed: %v %q %v", res.Status, res.Message, err)
	}
	var norm float64
	for i, x := range ans.Embeddings[0] {
		norm += x * x
		if x != backend.HashEmbedding("yuma consensus", 64)[i] {
			t.Fatal("retrieval embedding is not the hashed bag of words")
		}
	}
	if math.Abs(norm-1) > 1e-9 {
		t.Fatalf("retrieval embedding norm² %v", norm)
	}

	// Bad bodies are refused before any backend work.
	before := up.Requests("")
	for _, bad := range []struct{ synapse, body string }{
		{subnet.SynapseChat, `{"messages": []}`},
		{subnet.SynapseChat, `{"messages": [{"role": "user", "content": "x"}], "temperature": 3}`},
		{subnet.SynapseChat, `{"prompt": "x"}`},
		{subnet.SynapseEmbed, `{"input": []}`},
		{subnet.SynapseEmbed, `{"texts": ["x"]}`},
		{subnet.SynapseEmbed, `{"input": ["x"], "dimensions": 9000}`},
	} {
		if res := ask(openaiMiner, bad.synapse, []byte(bad.body), 10*time.Second, nil); res.Status != protocol.StatusBadRequest {
			t.Errorf("%s %s: %v", bad.synapse, bad.body, res.Status)
		}
	}
	if up.Requests("") != before {
		t.Fatal("a bad body reached the upstream")
	}
	if openaiMiner.QueriesRefused() != 6 || openaiMiner.BackendFailures() != 0 {
		t.Fatalf("refused %d, failures %d", openaiMiner.QueriesRefused(), openaiMiner.BackendFailures())
	}

	// Upstream failures: INTERNAL and counted, by the backend and the miner.
	up.SetConfig(openaitest.Config{FailStatus: 500})
	if res := ask(openaiMiner, subnet.SynapseChat, chat.Encode(), 10*time.Second, nil); res.Status != protocol.StatusInternal || !strings.Contains(res.Message, "500") {
		t.Fatalf("upstream 500: %v %q", res.Status, res.Message)
	}
	if res := ask(openaiMiner, subnet.SynapseEmbed, emb.Encode(), 10*time.Second, nil); res.Status != protocol.StatusInternal {
		t.Fatalf("upstream 500 on embed: %v %q", res.Status, res.Message)
	}
	// A stalled upstream passes the backend's 2 s timeout: TIMEOUT.
	up.SetConfig(openaitest.Config{Stall: true})
	if res := ask(openaiMiner, subnet.SynapseChat, chat.Encode(), 10*time.Second, nil); res.Status != protocol.StatusTimeout {
		t.Fatalf("stalled upstream: %v %q", res.Status, res.Message)
	}
	if oa.Failures() != 3 || openaiMiner.BackendFailures() != 3 {
		t.Fatalf("backend counted %d, miner %d", oa.Failures(), openaiMiner.BackendFailures())
	}
	if n := testutil.ToFloat64(openaiMiner.metrics.failures.WithLabelValues(subnet.SynapseChat)); n != 2 {
		t.Fatalf("miner metric: %v chat failures", n)
	}
}
