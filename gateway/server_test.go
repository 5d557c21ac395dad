package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const answer = "the quick brown fox jumps over the lazy dog "

func chatParams() openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: "sn1/text.chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("say the pangram")}}
}

func TestChat(t *testing.T) {
	r := newRig(t, 1, DefaultTestConfig())
	ctx := context.Background()
	res, err := r.client.Chat.Completions.New(ctx, chatParams())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 || res.Choices[0].Message.Content != answer || res.Choices[0].FinishReason != "stop" {
		t.Fatalf("answer %+v", res.Choices)
	}
	if res.Usage.CompletionTokens != 9 || res.Usage.PromptTokens != 5 || res.Usage.TotalTokens != 14 {
		t.Fatalf("usage %+v, want 5 prompt and 9 completion words", res.Usage)
	}
	rows := r.rec.waitRecords(t, 1)
	u := rows[0]
	m := r.miners[0]
	if u.KeyID != "key1" || u.Model != "sn1/text.chat" || u.Netuid != 1 || u.Synapse != "text.chat" || u.HTTPStatus != 200 ||
		u.Status != "OK" || u.Attempts != 1 || u.MinerPeer != m.h.ID().String() || u.CompletionTokens != 9 || u.FirstByte <= 0 || u.Latency < u.FirstByte {
		t.Fatalf("usage row %+v", u)
	}
	// The receipt is the miner's, signed over exactly what it answered.
	var rc pb.Receipt
	if err := proto.Unmarshal(u.Receipt, &rc); err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyReceipt(&rc); err != nil || rc.Server != m.h.ID().String() {
		t.Fatalf("receipt: %v (server %s)", err, rc.Server)
	}
	if r.lim.tokens != 14 {
		t.Fatalf("limiter charged %d tokens, want 14", r.lim.tokens)
	}
}

func TestChatStream(t *testing.T) {
	r := newRig(t, 1, DefaultTestConfig())
	p := chatParams()
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	st := r.client.Chat.Completions.NewStreaming(context.Background(), p)
	var acc openai.ChatCompletionAccumulator
	var deltas []string
	for st.Next() {
		c := st.Current()
		acc.AddChunk(c)
		if len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			deltas = append(deltas, c.Choices[0].Delta.Content)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(deltas, ""); got != answer || len(deltas) != 9 {
		t.Fatalf("deltas %q", deltas)
	}
	if acc.Choices[0].Message.Content != answer || acc.Choices[0].FinishReason != "stop" || acc.Usage.CompletionTokens != 9 {
		t.Fatalf("accumulated %+v usage %+v", acc.Choices, acc.Usage)
	}
	u := r.rec.waitRecords(t, 1)[0]
	if u.HTTPStatus != 200 || u.Status != "OK" || len(u.Receipt) == 0 || u.ResponseBytes == 0 {
		t.Fatalf("usage row %+v", u)
	}
}

func TestCompletions(t *testing.T) {
	r := newRig(t, 1, DefaultTestConfig())
	res, err := r.client.Completions.New(context.Background(), openai.CompletionNewParams{
		Model: "sn1/text.chat", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("say it")}, MaxTokens: openai.Int(20)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 || res.Choices[0].Text != answer || res.Usage.PromptTokens != 2 {
		t.Fatalf("completion %+v usage %+v", res.Choices, res.Usage)
	}
	st := r.client.Completions.NewStreaming(context.Background(), openai.CompletionNewParams{
		Model: "sn1/text.chat", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("say it")}})
	var got strings.Builder
	for st.Next() {
		for _, c := range st.Current().Choices {
			got.WriteString(c.Text)
		}
	}
	if err := st.Err(); err != nil || got.String() != answer {
		t.Fatalf("streamed %q, err %v", got.String(), err)
	}
}

func TestEmbeddings(t *testing.T) {
	r := newRig(t, 1, DefaultTestConfig())
	res, err := r.client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "sn1/text.embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "bb c"}}, Dimensions: openai.Int(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || res.Data[1].Index != 1 || len(res.Data[1].Embedding) != 3 || res.Data[1].Embedding[2] != 5.2 || res.Usage.PromptTokens != 3 {
		t.Fatalf("embeddings %+v usage %+v", res.Data, res.Usage)
	}
	// base64: little-endian float32s, as OpenAI encodes them.
	b64, err := r.client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "sn1/text.embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}, EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64})
	if err != nil {
		t.Fatal(err)
	}
	var enc string
	if err := json.Unmarshal([]byte(b64.Data[0].JSON.Embedding.Raw()), &enc); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(raw) != 16 {
		t.Fatalf("base64 embedding %q: %v", enc, err)
	}
	for i, want := range []float32{1, 1.1, 1.2, 1.3} {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != want {
			t.Fatalf("base64 embedding [%d] = %v, want %v", i, got, want)
		}
	}
}

func TestModels(t *testing.T) {
	r := newRig(t, 0, DefaultTestConfig())
	page, err := r.client.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "sn1/text.chat,sn1/text.embed" {
		t.Fatalf("models %v", ids)
	}
}

// apiErr returns the SDK's error for err, failing if it is not one.
func apiErr(t *testing.T, err error, status int, code string) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v, want an API error %d", err, status)
	}
	if e.StatusCode != status || e.Code != code {
		t.Fatalf("error %d %q (%s), want %d %q", e.StatusCode, e.Code, e.Message, status, code)
	}
	return e
}

func TestFailoverBeforeFirstByte(t *testing.T) {
	cfg := DefaultTestConfig()
	r := newRig(t, 2, cfg)
	r.miners[0].setMode(modeFailBefore)
	r.miners[1].setMode(modeFailBefore)
	// Both fail: 503 after trying both.
	_, err := r.client.Chat.Completions.New(context.Background(), chatParams())
	apiErr(t, err, 503, "no_miner_available")
	if u := r.rec.waitRecords(t, 1)[0]; u.Attempts != 2 || u.HTTPStatus != 503 {
		t.Fatalf("usage %+v", u)
	}
	// A fresh gateway whose picker tries miner 0 first while it may: the
	// first request fails on it and is answered by miner 1; then miner 0
	// backs off and the rest go to miner 1 straight away.
	cfg.Routing.BackoffBase = time.Hour
	cfg.Routing.BackoffMax = time.Hour
	r = newRig(t, 2, cfg, firstPick)
	r.miners[0].setMode(modeFailBefore)
	for i := range 6 {
		p := chatParams()
		if i%2 == 1 {
			st := r.client.Chat.Completions.NewStreaming(context.Background(), p)
			var b strings.Builder
			for st.Next() {
				if c := st.Current(); len(c.Choices) > 0 {
					b.WriteString(c.Choices[0].Delta.Content)
				}
			}
			if err := st.Err(); err != nil || b.String() != answer {
				t.Fatalf("stream %d: %q, %v", i, b.String(), err)
			}
			continue
		}
		res, err := r.client.Chat.Completions.New(context.Background(), p)
		if err != nil || res.Choices[0].Message.Content != answer {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if r.miners[0].callCount() != 1 {
		t.Fatalf("the failing miner was asked %d times, want once (then it backs off)", r.miners[0].callCount())
	}
	rows := r.rec.waitRecords(t, 6)
	retried := 0
	for _, u := range rows {
		if u.HTTPStatus != 200 || u.MinerPeer != r.miners[1].h.ID().String() {
			t.Fatalf("usage %+v", u)
		}
		if u.Attempts == 2 {
			retried++
		}
	}
	if retried != 1 || rows[0].Attempts != 2 {
		t.Fatalf("%d requests retried (the first with %d attempts), want the first only", retried, rows[0].Attempts)
	}
}

func TestErrorEventAfterFirstByte(t *testing.T) {
	r := newRig(t, 2, DefaultTestConfig())
	for _, m := range r.miners {
		m.setMode(modeFailAfter)
	}
	st := r.client.Chat.Completions.NewStreaming(context.Background(), chatParams())
	var b strings.Builder
	for st.Next() {
		if c := st.Current(); len(c.Choices) > 0 {
			b.WriteString(c.Choices[0].Delta.Content)
		}
	}
	// The two chunks sent, once, then the error: no retry spliced in.
	if b.String() != "the quick " {
		t.Fatalf("text before the error %q", b.String())
	}
	if err := st.Err(); err == nil || !strings.Contains(err.Error(), "miner_failed") {
		t.Fatalf("stream error %v, want the miner_failed event", err)
	}
	calls := r.miners[0].callCount() + r.miners[1].callCount()
	if calls != 1 {
		t.Fatalf("%d miners asked, want 1", calls)
	}
	if u := r.rec.waitRecords(t, 1)[0]; u.Status != "INTERNAL" || u.Attempts != 1 {
		t.Fatalf("usage %+v", u)
	}
	// Raw bytes: the error event is the last, with no [DONE] after it.
	r.miners[0].setMode(modeFailAfter)
	r.miners[1].setMode(modeFailAfter)
	body := postRaw(t, r, "/v1/chat/completions", `{"model":"sn1/text.chat","stream":true,"messages":[{"role":"user","content":"x"}]}`, testSecret)
	events := strings.Split(strings.TrimSpace(body.text), "\n\n")
	if last := events[len(events)-1]; !strings.HasPrefix(last, `data: {"error":`) || strings.Contains(body.text, "[DONE]") {
		t.Fatalf("stream ends %q", body.text)
	}
}

func TestSlowMinerTimesOut(t *testing.T) {
	cfg := DefaultTestConfig()
	cfg.Deadline = 300 * time.Millisecond
	r := newRig(t, 1, cfg)
	r.miners[0].setMode(modeSlow)
	start := time.Now()
	_, err := r.client.Chat.Completions.New(context.Background(), chatParams())
	apiErr(t, err, 504, "timeout")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("504 after %v", d)
	}
	if u := r.rec.waitRecords(t, 1)[0]; u.HTTPStatus != 504 {
		t.Fatalf("usage %+v", u)
	}
}

func TestLimiterRefusal(t *testing.T) {
	r := newRig(t, 1, DefaultTestConfig())
	r.lim.refuse, r.lim.retry = true, 2500*time.Millisecond
	_, err := r.client.Chat.Completions.New(context.Background(), chatParams())
	e := apiErr(t, err, 429, "rate_limit_exceeded")
	if ra := e.Response.Header.Get("Retry-After"); ra != "3" {
		t.Fatalf("Retry-After %q, want 3", ra)
	}
	if r.miners[0].callCount() != 0 {
		t.Fatal("a refused request reached a miner")
	}
}

func TestBadRequests(t *testing.T) {
	cfg := DefaultTestConfig()
	cfg.MaxBody = 4096
	r := newRig(t, 1, cfg)
	// Through the SDK: bad key, unknown model.
	bad := openai.NewClient(optionsFor(r, "wrong")...)
	_, err := bad.Chat.Completions.New(context.Background(), chatParams())
	apiErr(t, err, 401, "invalid_api_key")
	p := chatParams()
	p.Model = "sn9/text.chat"
	_, err = r.client.Chat.Completions.New(context.Background(), p)
	apiErr(t, err, 404, "model_not_found")
	for _, tc := range []struct {
		name, path, body, key string
		status                int
		code                  string
	}{
		{"malformed JSON", "/v1/chat/completions", `{"model":`, testSecret, 400, "invalid_request"},
		{"trailing data", "/v1/chat/completions", `{"model":"sn1/text.chat","messages":[{"role":"user","content":"x"}]} {}`, testSecret, 400, "invalid_request"},
		{"no messages", "/v1/chat/completions", `{"model":"sn1/text.chat","messages":[]}`, testSecret, 400, "invalid_request"},
		{"bad role", "/v1/chat/completions", `{"model":"sn1/text.chat","messages":[{"role":"robot","content":"x"}]}`, testSecret, 400, "invalid_request"},
		{"n > 1", "/v1/chat/completions", `{"model":"sn1/text.chat","n":2,"messages":[{"role":"user","content":"x"}]}`, testSecret, 400, "invalid_request"},
		{"temperature", "/v1/chat/completions", `{"model":"sn1/text.chat","temperature":3,"messages":[{"role":"user","content":"x"}]}`, testSecret, 400, "invalid_request"},
		{"embed model on chat", "/v1/chat/completions", `{"model":"sn1/text.embed","messages":[{"role":"user","content":"x"}]}`, testSecret, 400, "invalid_request"},
		{"token input", "/v1/embeddings", `{"model":"sn1/text.embed","input":[1,2]}`, testSecret, 400, "invalid_request"},
		{"oversized", "/v1/chat/completions", `{"model":"sn1/text.chat","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, testSecret, 413, "request_too_large"},
		{"no key", "/v1/embeddings", `{}`, "", 401, "invalid_api_key"},
		{"unknown model on embeddings", "/v1/embeddings", `{"model":"gpt-4","input":"x"}`, testSecret, 404, "model_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := postRaw(t, r, tc.path, tc.body, tc.key)
			var e errorBody
			if err := json.Unmarshal([]byte(got.text), &e); err != nil || got.status != tc.status || e.Error.Code == nil || *e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("%d %s, want %d %s", got.status, got.text, tc.status, tc.code)
			}
		})
	}
	if r.miners[0].callCount() != 0 {
		t.Fatal("a bad request reached a miner")
	}
}

func optionsFor(r *rig, key string) []option.RequestOption {
	return []option.RequestOption{option.WithBaseURL(r.url + "/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0)}
}

type rawAnswer struct {
	status int
	header http.Header
	text   string
}

func postRaw(t *testing.T, r *rig, path, body, key string) rawAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	cl := &http.Client{Transport: &http.Transport{}}
	defer cl.CloseIdleConnections()
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawAnswer{resp.StatusCode, resp.Header, string(b)}
}

func TestClientDisconnectCancelsMiner(t *testing.T) {
	r := newRig(t, 1, DefaultTestConfig())
	m := r.miners[0]
	m.setMode(modeEndless)
	ctx, cancel := context.WithCancel(context.Background())
	st := r.client.Chat.Completions.NewStreaming(ctx, chatParams())
	if !st.Next() {
		t.Fatalf("no first chunk: %v", st.Err())
	}
	cancel()
	st.Close()
	select {
	case err := <-m.ended:
		if err == nil {
			t.Fatal("the miner's handler ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the miner's handler still runs after the client left")
	}
	u := r.rec.waitRecords(t, 1)[0]
	if u.HTTPStatus != 200 || u.Attempts != 1 {
		t.Fatalf("usage %+v", u)
	}
}

// A miner waiting on its upstream (writing nothing) when the API client
// disconnects has its handler's context cancelled: the gateway's query
// ends with the HTTP request, its stream is reset, and the miner's server
// cancels the handler on the reset (protocol.ErrCallerGone), not at the
// deadline.
func TestClientDisconnectCancelsWaitingMiner(t *testing.T) {
	cfg := DefaultTestConfig()
	cfg.Deadline = time.Minute
	r := newRig(t, 1, cfg)
	causes := make(chan error, 1)
	r.miners[0].setHandler(func(ctx context.Context, _ *protocol.Request, w protocol.ResponseWriter) error {
		if err := w.Write([]byte("first ")); err != nil {
			return err
		}
		<-ctx.Done() // the upstream model has not answered yet
		causes <- context.Cause(ctx)
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	st := r.client.Chat.Completions.NewStreaming(ctx, chatParams())
	if !st.Next() {
		t.Fatalf("no first chunk: %v", st.Err())
	}
	left := time.Now()
	cancel()
	st.Close()
	select {
	case cause := <-causes:
		if !errors.Is(cause, protocol.ErrCallerGone) {
			t.Fatalf("the miner's handler context ended with %v, want protocol.ErrCallerGone", cause)
		}
		t.Logf("the miner's handler was cancelled %v after the client left", time.Since(left))
	case <-time.After(10 * time.Second):
		t.Fatal("the miner's handler still waits after the client left")
	}
	if u := r.rec.waitRecords(t, 1)[0]; u.HTTPStatus != 200 || u.Attempts != 1 {
		t.Fatalf("usage %+v", u)
	}
}

func TestHealthz(t *testing.T) {
	r := newRig(t, 1, DefaultTestConfig())
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(r.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	http.DefaultClient.CloseIdleConnections()
}

// A miner that reports its token usage on its last frame is believed for
// the API's usage, the charge to the key and the usage record, streamed
// or not; one that reports none is counted in words (TestChat).
func TestMinerReportedUsage(t *testing.T) {
	r := newRig(t, 1, DefaultTestConfig())
	r.miners[0].setHandler(func(_ context.Context, _ *protocol.Request, w protocol.ResponseWriter) error {
		if err := w.Write([]byte(answer)); err != nil {
			return err
		}
		protocol.SetUsage(w, 42, 17)
		return nil
	})
	ctx := context.Background()
	res, err := r.client.Chat.Completions.New(ctx, chatParams())
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage.PromptTokens != 42 || res.Usage.CompletionTokens != 17 || res.Usage.TotalTokens != 59 {
		t.Fatalf("usage %+v, want the miner's 42 + 17", res.Usage)
	}
	params := chatParams()
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := r.client.Chat.Completions.NewStreaming(ctx, params)
	var streamed openai.CompletionUsage
	for stream.Next() {
		if c := stream.Current(); c.Usage.TotalTokens != 0 {
			streamed = c.Usage
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if streamed.PromptTokens != 42 || streamed.CompletionTokens != 17 {
		t.Fatalf("streamed usage %+v, want the miner's 42 + 17", streamed)
	}
	for _, u := range r.rec.waitRecords(t, 2) {
		if u.PromptTokens != 42 || u.CompletionTokens != 17 {
			t.Fatalf("usage row %+v", u)
		}
	}
}
