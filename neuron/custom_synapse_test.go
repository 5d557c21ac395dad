package neuron

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/backend/openaitest"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// execBackendArg, as the test binary's first argument, makes it the exec
// backend of the custom synapse tests (runExecBackendIfAsked).
const execBackendArg = "neuron-test-exec-backend"

// runExecBackendIfAsked runs the test binary as an exec backend program
// when started with execBackendArg: summarize.v1 answers the request's
// first three words as a JSON string; extract.v1 answers {"title": <the
// first word>}, except for the text "break the schema", which gets an
// answer its schema refuses; the text "oversize" gets 100 bytes.
func runExecBackendIfAsked() {
	if len(os.Args) < 2 || os.Args[1] != execBackendArg {
		return
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var msg backend.ExecMessage
		if err := json.Unmarshal(in.Bytes(), &msg); err != nil {
			os.Exit(2)
		}
		var req struct {
			Text string `json:"text"`
		}
		json.Unmarshal(msg.Body, &req)
		words := strings.Fields(req.Text)
		var answer any
		switch {
		case req.Text == "oversize":
			answer = strings.Repeat("x", 100)
		case msg.Synapse == "summarize.v1":
			answer = strings.Join(words[:min(3, len(words))], " ")
		case req.Text == "break the schema":
			answer = map[string]any{"title": 7}
		default:
			answer = map[string]string{"title": words[0]}
		}
		body, _ := json.Marshal(answer)
		out, _ := json.Marshal(backend.ExecMessage{ID: msg.ID, Body: body})
		fmt.Println(string(out))
	}
	os.Exit(0)
}

// customSpec declares two custom synapses: summarize.v1 (a streamed text
// answer of at most 64 bytes) and extract.v1 (a JSON answer with a
// string title, at most 64 bytes).
const customSpec = `version: 2
name: custom
synapses:
  - name: summarize.v1
    request:
      type: object
      required: [text]
      additionalProperties: false
      properties:
        text: {type: string, minLength: 1, maxLength: 200}
    answer: text
    stream: true
    max_request_bytes: 512
    max_answer_bytes: 64
    prompt: "Summarize: {{text}}"
  - name: extract.v1
    request:
      type: object
      required: [text]
      properties:
        text: {type: string, minLength: 1}
    answer:
      type: object
      required: [title]
      properties:
        title: {type: string}
    max_answer_bytes: 64
    prompt: "Title of: {{text}}"
tasks:
  source: dataset
  synapse: summarize.v1
  path: tasks.jsonl
reward: 'similarity(answer, expected)'
query: {every: 2, sample: 4, timeout: 5s}
alpha: 0.3
weights_every: 5
`

func parseCustomSpec(t *testing.T) *subnet.Spec {
	t.Helper()
	spec, err := subnet.Parse([]byte(customSpec))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// Two miners serve a v2 spec's custom synapses over loopback: one with the
// exec backend (a real subprocess), one with the OpenAI backend in front
// of a fake model server. Requests that fail their schema or size are
// BAD_REQUEST naming the failing path, and reach no backend; answers the
// backend makes that fail the answer schema or size are INTERNAL, counted
// as the miner's failures and never sent.
func TestMinerServesCustomSynapses(t *testing.T) {
	spec := parseCustomSpec(t)
	colds := testColds(t, "custom cold", 3)
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	exe, err := backend.StartExec(os.Args[0], execBackendArg)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	up := openaitest.New(openaitest.Config{Reply: func(r openaitest.ChatRequest) string {
		msg := r.Messages[len(r.Messages)-1].Content
		switch {
		case strings.HasPrefix(msg, "Title of: long"):
			return strings.Repeat("word ", 40) // 200 bytes, over the 64
		case strings.HasPrefix(msg, "Title of: prose"):
			return "The title is Yuma." // not JSON
		case strings.HasPrefix(msg, "Title of: "):
			return "```json\n{\"title\": \"Yuma\"}\n```"
		case strings.HasPrefix(msg, "Summarize: long"):
			return strings.Repeat("word ", 40)
		}
		return "yuma pays miners by consensus"
	}})
	defer up.Close()
	oa, err := backend.NewOpenAI(backend.OpenAIConfig{BaseURL: up.URL, Model: "m", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer oa.Close()
	start := func(i int, g backend.Generator) *Miner {
		cfg := SpecMinerConfig(1, spec, g)
		cfg.Logger, cfg.Swarm.Disabled = slog.New(slog.DiscardHandler), true
		m, err := StartMiner(ctx, c, colds[i], testKey(t, "custom hot", i), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	execMiner := start(0, exe)
	openaiMiner := start(1, oa)
	client := testCaller(t, ctx, c, colds[2], testKey(t, "custom hot", 2), execMiner, openaiMiner)
	ask := func(m *Miner, synapse, body string, onChunk func([]byte) error) protocol.Result {
		return client.Stream(ctx, m.ID(), &pb.Request{Netuid: 1, Synapse: synapse, Body: []byte(body), TimeoutMs: 10_000}, onChunk)
	}
	article := `{"text": "yuma consensus pays miners by the stake weighted median"}`

	// Exec: the answer as the program gives it.
	if res := ask(execMiner, "summarize.v1", article, nil); res.Status != protocol.StatusOK || string(res.Body) != "yuma consensus pays" {
		t.Fatalf("exec summarize: %v %q %q", res.Status, res.Message, res.Body)
	}
	if res := ask(execMiner, "extract.v1", article, nil); res.Status != protocol.StatusOK || string(res.Body) != `{"title":"yuma"}` {
		t.Fatalf("exec extract: %v %q %q", res.Status, res.Message, res.Body)
	}
	// OpenAI: the prompt rendered from the request is the user message;
	// summarize.v1 streams; extract.v1's fenced JSON is taken out.
	var chunks []string
	res := ask(openaiMiner, "summarize.v1", article, func(b []byte) error { chunks = append(chunks, string(b)); return nil })
	if res.Status != protocol.StatusOK || strings.Join(chunks, "") != "yuma pays miners by consensus" {
		t.Fatalf("openai summarize: %v %q %q", res.Status, res.Message, chunks)
	}
	if got := up.LastChat(); len(got.Messages) != 1 || got.Messages[0].Role != "user" ||
		got.Messages[0].Content != "Summarize: yuma consensus pays miners by the stake weighted median" {
		t.Fatalf("the upstream got %+v", got.Messages)
	}
	if res.Usage.GetCompletionTokens() == 0 {
		t.Fatalf("no usage from the upstream: %v", res.Usage)
	}
	if res := ask(openaiMiner, "extract.v1", article, nil); res.Status != protocol.StatusOK || string(res.Body) != `{"title":"Yuma"}` {
		t.Fatalf("openai extract: %v %q %q", res.Status, res.Message, res.Body)
	}

	// Bad requests: refused naming the failing path, before any backend.
	before := up.Requests("")
	for _, bad := range []struct{ synapse, body, want string }{
		{"summarize.v1", `{"text": 7}`, "/text"},
		{"summarize.v1", `{"text": ""}`, "/text"},
		{"summarize.v1", `{"text": "x", "extra": 1}`, "extra"},
		{"summarize.v1", `{}`, "text"},
		{"summarize.v1", `not json`, "not JSON"},
		{"summarize.v1", `{"text": "` + strings.Repeat("a", 600) + `"}`, "at most 512"},
		{"extract.v1", `[1]`, "object"},
	} {
		for _, m := range []*Miner{execMiner, openaiMiner} {
			res := ask(m, bad.synapse, bad.body, nil)
			if res.Status != protocol.StatusBadRequest || !strings.Contains(res.Message, bad.want) {
				t.Errorf("%s %.40s: %v %q, want BAD_REQUEST naming %q", bad.synapse, bad.body, res.Status, res.Message, bad.want)
			}
		}
	}
	if up.Requests("") != before || execMiner.QueriesRefused() != 7 || openaiMiner.QueriesRefused() != 7 {
		t.Fatalf("bad requests: upstream asked %d times, refused %d and %d", up.Requests("")-before, execMiner.QueriesRefused(), openaiMiner.QueriesRefused())
	}

	// The backends' bad answers: INTERNAL, not sent, counted.
	for _, bad := range []struct {
		m                  *Miner
		synapse, body, why string
	}{
		{execMiner, "extract.v1", `{"text": "break the schema"}`, "/title"},
		{execMiner, "summarize.v1", `{"text": "oversize"}`, "at most 64"},
		{openaiMiner, "extract.v1", `{"text": "prose please"}`, "not JSON"},
		{openaiMiner, "extract.v1", `{"text": "long please"}`, "max_answer_bytes 64"},
		{openaiMiner, "summarize.v1", `{"text": "long please"}`, "max_answer_bytes 64"},
	} {
		var got []byte
		res := ask(bad.m, bad.synapse, bad.body, func(b []byte) error { got = append(got, b...); return nil })
		if res.Status != protocol.StatusInternal || !strings.Contains(res.Message, bad.why) || len(got) > 64 {
			t.Errorf("%s %s: %v %q, %d bytes sent; want INTERNAL naming %q", bad.synapse, bad.body, res.Status, res.Message, len(got), bad.why)
		}
	}
	if execMiner.BackendFailures() != 2 || openaiMiner.BackendFailures() != 3 {
		t.Fatalf("backend failures %d and %d", execMiner.BackendFailures(), openaiMiner.BackendFailures())
	}
	if execMiner.QueriesServed() != 2 || openaiMiner.QueriesServed() != 2 {
		t.Fatalf("served %d and %d", execMiner.QueriesServed(), openaiMiner.QueriesServed())
	}
}

// A miner refuses to start serving a custom synapse it has no backend
// for: one without a prompt needs an exec backend.
func TestMinerCustomSynapseNeedsABackend(t *testing.T) {
	spec := parseCustomSpec(t)
	spec.Synapses[1].Prompt = ""
	for _, tc := range []struct {
		g    backend.Generator
		want string
	}{
		{nil, `custom synapse "summarize.v1" needs a backend`},
		{backend.NewRetrieval(), `custom synapse "extract.v1" has no prompt, so only an exec backend`},
	} {
		cfg := SpecMinerConfig(1, spec, tc.g)
		cfg.Logger, cfg.Swarm.Disabled = slog.New(slog.DiscardHandler), true
		_, err := StartMiner(context.Background(), nil, nil, testKey(t, "custom hot", 9), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("generator %T: %v, want %q", tc.g, err, tc.want)
		}
	}
}

func testColds(t *testing.T, label string, n int) []*wallet.PrivateKey {
	out := make([]*wallet.PrivateKey, n)
	for i := range out {
		out[i] = testKey(t, label, i)
	}
	return out
}

// testCaller registers hot on subnet 1 and returns a query client that
// knows the miners' addresses.
func testCaller(t *testing.T, ctx context.Context, c chainlink.Chain, cold, hot *wallet.PrivateKey, miners ...*Miner) *protocol.Client {
	t.Helper()
	if _, err := ensureRegistered(ctx, c, cold, hot, 1); err != nil {
		t.Fatal(err)
	}
	h, err := newHost(hot, HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, SwarmConfig{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	client, err := protocol.NewClient(h, protocol.DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	for _, m := range miners {
		h.Peerstore().AddAddrs(m.ID(), m.h.Addrs(), time.Hour)
	}
	return client
}

func TestUnfence(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1}`, `{"a":1}`},
		{"  {\"a\":1}\n", `{"a":1}`},
		{"```json\n{\"a\":1}\n```", `{"a":1}`},
		{"```\n[1,2]\n```", `[1,2]`},
		{"```{\"a\":1}```", `{"a":1}`},
		{"```", "```"},
		{"text ```x```", "text ```x```"},
	} {
		if got := string(unfence([]byte(tc.in))); got != tc.want {
			t.Errorf("unfence(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
