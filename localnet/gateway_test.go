package localnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/backend/openaitest"
	"github.com/cybertensor/cybertensor/dashboard"
	"github.com/cybertensor/cybertensor/gateway/metering"
	"github.com/cybertensor/cybertensor/subnet"
)

// waitUntil polls cond every 50 ms until it holds, failing the test at
// the deadline.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJSON(url string, v any) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return errors.New(res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

// An application written for OpenAI's API (here OpenAI's Go SDK) works
// against `localnet --gateway` by changing only its base URL and key:
// chat, streamed chat, completions, embeddings and the models list,
// answered by the localnet's qa miners from their upstream model server.
// The ledger holds every request with a miner receipt that verifies, the
// run's summary sums it, and the dashboard shows each miner's organic
// requests and tokens.
func TestGatewayOpenAISDK(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	up := openaitest.New(openaitest.Config{})
	defer up.Close()

	gwc, dashc := make(chan endpoint, 1), make(chan string, 1)
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Validators, cfg.Miners = 1, 2
	cfg.Tempo, cfg.BlockTime = 5, 100*time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Dashboard, cfg.OnDashboard = "127.0.0.1:0", func(url string) { dashc <- url }
	cfg.Gateway, cfg.GatewayDir = "127.0.0.1:0", dir
	cfg.OnGateway = func(url, key string) { gwc <- endpoint{url, key} }
	cfg.Upstream = backend.OpenAIConfig{BaseURL: up.URL, Model: "test-model"}
	var progress strings.Builder
	cfg.Progress = &progress // read once Run has returned

	gw, stop := runGateway(t, cfg, gwc)
	defer stop()
	dashURL := <-dashc
	if !strings.HasPrefix(gw.key, metering.SecretPrefix) || !strings.HasSuffix(gw.url, "/v1") {
		t.Fatalf("gateway %q key %q", gw.url, gw.key)
	}
	root := strings.TrimSuffix(gw.url, "/v1")
	waitUntil(t, "the gateway healthy (it has read the miners)", 20*time.Second, func() bool {
		res, err := http.Get(root + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	// The application: only the base URL and the key are the gateway's.
	client := openai.NewClient(option.WithBaseURL(gw.url+"/"), option.WithAPIKey(gw.key), option.WithMaxRetries(0))
	bg := context.Background()
	chat, err := client.Chat.Completions.New(bg, openai.ChatCompletionNewParams{Model: "sn1/text.chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("say the pangram")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(chat.Choices) != 1 || chat.Choices[0].Message.Content != openaitest.DefaultAnswer || chat.Usage.CompletionTokens == 0 {
		t.Fatalf("chat %+v usage %+v", chat.Choices, chat.Usage)
	}

	stream := client.Chat.Completions.NewStreaming(bg, openai.ChatCompletionNewParams{Model: "sn1/text.chat",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("say it again")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}})
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != openaitest.DefaultAnswer || chunks < 2 || acc.Usage.CompletionTokens == 0 {
		t.Fatalf("streamed %d chunks: %+v usage %+v", chunks, acc.Choices, acc.Usage)
	}

	comp, err := client.Completions.New(bg, openai.CompletionNewParams{Model: "sn1/text.chat",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("the pangram is")}, MaxTokens: openai.Int(20)})
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Choices) != 1 || comp.Choices[0].Text != openaitest.DefaultAnswer {
		t.Fatalf("completion %+v", comp.Choices)
	}

	emb, err := client.Embeddings.New(bg, openai.EmbeddingNewParams{Model: "sn1/text.embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"yuma", "consensus"}}, Dimensions: openai.Int(4)})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Data) != 2 || emb.Data[1].Index != 1 {
		t.Fatalf("embeddings %+v", emb.Data)
	}
	for i, text := range []string{"yuma", "consensus"} {
		want := openaitest.Embedding(text, 4)
		got := emb.Data[i].Embedding
		if len(got) != len(want) {
			t.Fatalf("embedding %d: %v, want %v", i, got, want)
		}
		for j := range want {
			if d := got[j] - want[j]; d > 1e-6 || d < -1e-6 {
				t.Fatalf("embedding %d: %v, want the upstream's %v", i, got, want)
			}
		}
	}

	models, err := client.Models.List(bg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"sn1/text.chat", "sn1/text.embed"}) {
		t.Fatalf("models %v", ids)
	}
	if n := up.Requests("/v1/chat/completions"); n < 3 {
		t.Fatalf("the upstream had %d chat requests, want the 3 the gateway sent on", n)
	}

	// A failing upstream: every miner tried fails, the application gets
	// OpenAI's error, and the failure is metered against a miner.
	up.SetConfig(openaitest.Config{FailStatus: http.StatusInternalServerError})
	_, err = client.Chat.Completions.New(bg, openai.ChatCompletionNewParams{Model: "sn1/text.chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("fail")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || apiErr.Code != "no_miner_available" {
		t.Fatalf("with the upstream failing: %v", err)
	}
	const requests, failed = 5, 1 // chat, stream, completion, embeddings; the failure

	// The dashboard shows the miners' organic traffic.
	waitUntil(t, "the dashboard's organic requests", 20*time.Second, func() bool {
		var st dashboard.State
		if err := getJSON(dashURL+"/api/state", &st); err != nil || len(st.Subnets) == 0 {
			return false
		}
		var reqs, tokens, failures int64
		for _, n := range st.Subnets[0].Neurons {
			reqs, tokens, failures = reqs+n.OrganicRequests, tokens+n.OrganicTokens, failures+n.OrganicFailures
		}
		return reqs == requests && tokens > 0 && failures == failed
	})

	sum := stop()
	g := sum.Gateway
	if g == nil || g.URL != gw.url || g.Netuid != 1 {
		t.Fatalf("summary's gateway %+v", g)
	}
	if g.Usage.Requests != requests || g.Usage.Failures != failed || g.Usage.Receipts < requests-failed || g.Usage.CompletionTokens == 0 {
		t.Fatalf("summary's usage %+v", g.Usage)
	}
	if !strings.Contains(progress.String(), "gateway: "+gw.url+" key "+gw.key+"\n") {
		t.Fatalf("progress does not print the gateway's URL and key:\n%s", progress.String())
	}

	// The ledger outlives the run in GatewayDir; every receipt verifies.
	lcfg := metering.DefaultLedgerConfig()
	lcfg.ReadOnly, lcfg.Logger = true, cfg.Logger
	ledger, err := metering.OpenLedger(filepath.Join(dir, "usage.db"), lcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	entries, err := ledger.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != requests {
		t.Fatalf("%d ledger entries, want %d", len(entries), requests)
	}
	miners := map[string]bool{}
	for _, n := range sum.Neurons {
		if n.Role == "miner" {
			miners[n.Hotkey] = true
		}
	}
	var fails int
	for _, e := range entries {
		if !miners[e.Miner] {
			t.Errorf("entry %d: miner %q is not one of the localnet's", e.Seq, e.Miner)
		}
		if metering.Failed(e.Usage) {
			fails++
			if e.HTTPStatus != http.StatusServiceUnavailable || e.Attempts < 2 {
				t.Errorf("failed entry %d: status %s/%d after %d attempts", e.Seq, e.Status, e.HTTPStatus, e.Attempts)
			}
			if len(e.Receipt) == 0 {
				continue // a miner need not sign a failure
			}
		} else if e.Status != "OK" || e.HTTPStatus != http.StatusOK {
			t.Errorf("entry %d: status %s/%d", e.Seq, e.Status, e.HTTPStatus)
		}
		if _, err := metering.VerifyReceipt(e.Usage); err != nil {
			t.Errorf("entry %d (%s, %s): %v", e.Seq, e.Model, e.Status, err)
		}
	}
	if fails != failed {
		t.Errorf("%d failed entries, want %d", fails, failed)
	}
}

// A localnet with two subnets whose miners serve text.chat (qa and a
// spec file of the same kind): its gateway serves both, lists and prints
// both subnets' models, asks each subnet's miners as that subnet's first
// validator, and a request naming sn<N>/… is answered by, and recorded
// against, a miner of subnet N only.
func TestGatewayServesEveryChatSubnet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	up := openaitest.New(openaitest.Config{})
	defer up.Close()
	qa, err := subnet.Builtin("qa")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(qa.Text()), "\nname: qa\n", "\nname: qa2\n", 1)
	if text == string(qa.Text()) {
		t.Fatal("qa's spec has no name line to change")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "qa2.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	gwc := make(chan endpoint, 1)
	cfg := DefaultConfig()
	cfg.Subnets, cfg.Specs = []string{"qa"}, []string{file}
	cfg.Validators, cfg.Miners = 1, 2
	cfg.Tempo, cfg.BlockTime = 5, 100*time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Gateway, cfg.GatewayDir = "127.0.0.1:0", filepath.Join(dir, "gw")
	cfg.OnGateway = func(url, key string) { gwc <- endpoint{url, key} }
	cfg.Upstream = backend.OpenAIConfig{BaseURL: up.URL, Model: "test-model"}
	var progress strings.Builder
	cfg.Progress = &progress // read once Run has returned

	gw, stop := runGateway(t, cfg, gwc)
	defer stop()
	root := strings.TrimSuffix(gw.url, "/v1")
	waitUntil(t, "the gateway has read both subnets' miners", 20*time.Second, func() bool {
		var h struct {
			Miners map[string]int `json:"miners"`
		}
		return getJSON(root+"/healthz", &h) == nil && h.Miners["1"] == 2 && h.Miners["2"] == 2
	})
	client := openai.NewClient(option.WithBaseURL(gw.url+"/"), option.WithAPIKey(gw.key), option.WithMaxRetries(0))
	bg := context.Background()
	models, err := client.Models.List(bg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
	}
	want := []string{"sn1/text.chat", "sn1/text.embed", "sn2/text.chat", "sn2/text.embed"}
	if !slices.Equal(ids, want) {
		t.Fatalf("models %v, want %v", ids, want)
	}
	const each = 4
	for range each {
		for _, model := range []string{"sn1/text.chat", "sn2/text.chat"} {
			chat, err := client.Chat.Completions.New(bg, openai.ChatCompletionNewParams{Model: model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("say the pangram")}})
			if err != nil {
				t.Fatalf("%s: %v", model, err)
			}
			if len(chat.Choices) != 1 || chat.Choices[0].Message.Content != openaitest.DefaultAnswer {
				t.Fatalf("%s: %+v", model, chat.Choices)
			}
		}
	}

	sum := stop()
	subnetOf, firstValidator := map[string]uint16{}, map[uint16]string{}
	for _, n := range sum.Neurons {
		if n.Role == "miner" {
			subnetOf[n.Hotkey] = n.Netuid
		} else if _, ok := firstValidator[n.Netuid]; !ok {
			firstValidator[n.Netuid] = n.Hotkey
		}
	}
	g := sum.Gateway
	if g == nil || !slices.Equal(g.Models, want) || len(g.Subnets) != 2 || g.Usage.Requests != 2*each || g.Usage.Failures != 0 {
		t.Fatalf("summary's gateway %+v", g)
	}
	for _, sn := range g.Subnets {
		if sn.Hotkey != firstValidator[sn.Netuid] {
			t.Fatalf("subnet %d served as %s, want its first validator %s", sn.Netuid, sn.Hotkey, firstValidator[sn.Netuid])
		}
	}
	if g.Subnets[0].Hotkey == g.Subnets[1].Hotkey {
		t.Fatalf("both subnets served as one hotkey %s", g.Subnets[0].Hotkey)
	}
	out := progress.String()
	if !strings.Contains(out, "  models "+strings.Join(want, ", ")+"\n") || !strings.Contains(out, "  subnet 2 as its validator "+firstValidator[2]) {
		t.Fatalf("progress does not print the models and subnets:\n%s", out)
	}
	lcfg := metering.DefaultLedgerConfig()
	lcfg.ReadOnly, lcfg.Logger = true, cfg.Logger
	ledger, err := metering.OpenLedger(filepath.Join(cfg.GatewayDir, "usage.db"), lcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	entries, err := ledger.All()
	if err != nil {
		t.Fatal(err)
	}
	per := map[uint16]int{}
	for _, e := range entries {
		if subnetOf[e.Miner] != e.Netuid || e.Model != fmt.Sprintf("sn%d/text.chat", e.Netuid) || e.Status != "OK" {
			t.Fatalf("entry %d of %s (subnet %d) answered by a miner of subnet %d: %+v", e.Seq, e.Model, e.Netuid, subnetOf[e.Miner], e.Usage)
		}
		if _, err := metering.VerifyReceipt(e.Usage); err != nil {
			t.Errorf("entry %d: %v", e.Seq, err)
		}
		per[e.Netuid]++
	}
	if per[1] != each || per[2] != each {
		t.Fatalf("entries per subnet %v", per)
	}
}

// endpoint is a localnet gateway's base URL and API key.
type endpoint struct{ url, key string }

// runGateway runs a localnet of cfg (whose OnGateway sends to gwc) until
// its gateway serves, and returns the gateway and stop, which ends the
// run and returns its summary (once; later calls return nil).
func runGateway(t *testing.T, cfg Config, gwc <-chan endpoint) (endpoint, func() *Summary) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		s   *Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Run(ctx, cfg)
		done <- result{s, err}
	}()
	var stopped bool
	stop := func() *Summary {
		t.Helper()
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.s
		case <-time.After(30 * time.Second):
			t.Fatal("localnet did not stop within 30 s")
			return nil
		}
	}
	select {
	case gw := <-gwc:
		return gw, stop
	case r := <-done:
		cancel()
		stopped = true
		t.Fatalf("localnet ended before its gateway served: %v", r.err)
	case <-time.After(60 * time.Second):
		stop()
		t.Fatal("no gateway within 60 s")
	}
	return endpoint{}, stop
}
