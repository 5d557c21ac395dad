package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cybertensor/cybertensor/backend/openaitest"
)

func newOpenAI(t *testing.T, cfg OpenAIConfig) *OpenAI {
	t.Helper()
	if cfg.Model == "" {
		cfg.Model = "m"
	}
	o, err := NewOpenAI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o
}

func upstream(t *testing.T, cfg openaitest.Config) *openaitest.Server {
	t.Helper()
	s := openaitest.New(cfg)
	t.Cleanup(s.Close)
	return s
}

func chat(o *OpenAI, ctx context.Context, req ChatRequest) ([]string, Usage, error) {
	var chunks []string
	u, err := o.Chat(ctx, req, func(s string) error { chunks = append(chunks, s); return nil })
	return chunks, u, err
}

func user(s string) ChatRequest {
	return ChatRequest{Messages: []ChatMessage{{Role: "user", Content: s}}}
}

func TestOpenAIChatStreamed(t *testing.T) {
	up := upstream(t, openaitest.Config{Answer: "the answer is 42", APIKey: "secret"})
	o := newOpenAI(t, OpenAIConfig{BaseURL: up.URL, APIKey: "secret"})
	temp, topP, seed := 0.5, 0.9, int64(-7)
	req := ChatRequest{
		Messages:  []ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "what is it"}},
		MaxTokens: 3, Temperature: &temp, TopP: &topP, Stop: []string{"zzz"}, Seed: &seed,
	}
	chunks, u, err := chat(o, context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// The fake upstream sends its tokens at once: they come out together.
	if strings.Join(chunks, "") != "the answer is " || len(chunks) > 3 {
		t.Fatalf("streamed %q", chunks)
	}
	if u != (Usage{PromptTokens: 5, CompletionTokens: 3}) {
		t.Fatalf("usage %+v", u)
	}
	got := up.LastChat()
	if !got.Stream || got.StreamOptions == nil || !got.StreamOptions.IncludeUsage || got.Model != "m" || got.MaxTokens != 3 ||
		*got.Temperature != 0.5 || *got.TopP != 0.9 || got.Stop[0] != "zzz" || *got.Seed != -7 || len(got.Messages) != 2 || got.Messages[0].Role != "system" {
		t.Fatalf("passed through %+v", got)
	}
	// Unset parameters are not sent.
	chat(o, context.Background(), user("x"))
	if got := up.LastChat(); got.Temperature != nil || got.TopP != nil || got.Seed != nil || got.MaxTokens != 0 || got.Stop != nil {
		t.Fatalf("unset parameters sent: %+v", got)
	}
	// text.generate goes the same way.
	var text string
	if err := o.Generate(context.Background(), "q", func(s string) error { text += s; return nil }); err != nil || text != "the answer is 42" {
		t.Fatalf("generate %q %v", text, err)
	}
	if o.Failures() != 0 {
		t.Fatalf("%d failures counted", o.Failures())
	}
}

// An upstream that answers JSON though asked to stream, and a backend
// that asks for JSON.
func TestOpenAIChatNotStreamed(t *testing.T) {
	up := upstream(t, openaitest.Config{Answer: "one two three", NoStreaming: true})
	o := newOpenAI(t, OpenAIConfig{BaseURL: up.URL})
	chunks, u, err := chat(o, context.Background(), user("a b"))
	if err != nil || len(chunks) != 1 || chunks[0] != "one two three" || u != (Usage{2, 3}) {
		t.Fatalf("chunks %q usage %+v err %v", chunks, u, err)
	}
	up.SetConfig(openaitest.Config{Answer: "one two three"})
	o2 := newOpenAI(t, OpenAIConfig{BaseURL: up.URL, NoStream: true})
	chunks, u, err = chat(o2, context.Background(), user("a"))
	if err != nil || len(chunks) != 1 || chunks[0] != "one two three" || u != (Usage{1, 3}) || up.LastChat().Stream || up.LastChat().StreamOptions != nil {
		t.Fatalf("asked for JSON: chunks %q usage %+v err %v, request %+v", chunks, u, err, up.LastChat())
	}
}

func TestOpenAIEmbed(t *testing.T) {
	up := upstream(t, openaitest.Config{APIKey: "k", Dimensions: 4})
	o := newOpenAI(t, OpenAIConfig{BaseURL: up.URL, APIKey: "k", EmbeddingModel: "e"})
	vecs, u, err := o.Embed(context.Background(), []string{"a b", "c"}, 0)
	if err != nil || len(vecs) != 2 || len(vecs[0]) != 4 || vecs[1][2] != openaitest.Embedding("c", 4)[2] || u.PromptTokens != 3 {
		t.Fatalf("embed %v %+v %v", vecs, u, err)
	}
	vecs, _, err = o.Embed(context.Background(), []string{"a"}, 16)
	if err != nil || len(vecs[0]) != 16 {
		t.Fatalf("dimensions 16: %d numbers, %v", len(vecs[0]), err)
	}
}

// The API key is sent, and kept out of errors even when a server echoes
// it; a wrong one is a counted upstream failure.
func TestOpenAIKey(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"Incorrect API key provided: `+r.Header.Get("Authorization")+`"}}`, http.StatusUnauthorized)
	}))
	defer echo.Close()
	o := newOpenAI(t, OpenAIConfig{BaseURL: echo.URL, APIKey: "sk-very-secret"})
	_, _, err := chat(o, context.Background(), user("x"))
	if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "sk-very-secret") || !strings.Contains(err.Error(), "Bearer [api key]") {
		t.Fatalf("error %v", err)
	}
	if o.Failures() != 1 {
		t.Fatalf("failures %d", o.Failures())
	}
	cfg := OpenAIConfig{BaseURL: "http://x", APIKey: "sk-very-secret"}
	if s := fmt.Sprint(cfg) + fmt.Sprintf("%+v", cfg.LogValue()); strings.Contains(s, "sk-very-secret") {
		t.Fatalf("key formatted: %s", s)
	}
	if _, err := NewOpenAI(OpenAIConfig{BaseURL: "ftp://x"}); err == nil {
		t.Error("non-http base URL accepted")
	}
	if _, err := NewOpenAI(OpenAIConfig{BaseURL: "http://x", APIKey: "a\nb"}); err == nil {
		t.Error("key with a line break accepted")
	}
}

// Every way the upstream can fail is an ErrUpstream error, counted by
// kind.
func TestOpenAIUpstreamFailures(t *testing.T) {
	up := upstream(t, openaitest.Config{Answer: "a b c d e f"})
	o := newOpenAI(t, OpenAIConfig{BaseURL: up.URL, MaxResponse: 4 << 10, Timeout: 10 * time.Second})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(o); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  openaitest.Config
		ctx  time.Duration
		kind string
		want string
	}{
		{"500", openaitest.Config{FailStatus: 500}, 0, failStatus, "500"},
		{"dropped stream", openaitest.Config{Answer: "a b c d e f", DropAfter: 2}, 0, failTransport, "reading the stream"},
		{"oversize stream", openaitest.Config{Answer: "a b c d e f", Oversize: 2 << 10}, 0, failOversize, "too large"},
		{"oversize JSON", openaitest.Config{Answer: "a", NoStreaming: true, Oversize: 8 << 10}, 0, failOversize, "too large"},
		{"stalled", openaitest.Config{Stall: true}, 200 * time.Millisecond, failTimeout, "deadline"},
	}
	for i, c := range cases {
		up.SetConfig(c.cfg)
		ctx := context.Background()
		if c.ctx > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.ctx)
			defer cancel()
		}
		counter := o.failures.WithLabelValues("/v1/chat/completions", c.kind)
		before := testutil.ToFloat64(counter)
		var got []string
		_, err := o.Chat(ctx, user("x"), func(s string) error { got = append(got, s); return nil })
		if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
		if c.kind == failTimeout && !errors.Is(err, ErrUpstreamTimeout) {
			t.Errorf("%s: not a timeout: %v", c.name, err)
		}
		if n := testutil.ToFloat64(counter) - before; n != 1 {
			t.Errorf("%s: counted %v more as %s", c.name, n, c.kind)
		}
		if o.Failures() != uint64(i+1) {
			t.Errorf("%s: %d failures in all", c.name, o.Failures())
		}
	}
	if n, err := testutil.GatherAndCount(reg, "cybertensor_backend_upstream_failures_total"); err != nil || n != len(cases)-1 { // two oversize cases
		t.Errorf("gathered %d series, %v", n, err)
	}
	// Embeddings too: an oversized answer, and a wrong count.
	up.SetConfig(openaitest.Config{Oversize: 8 << 10})
	if _, _, err := o.Embed(context.Background(), []string{"a"}, 0); !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "too large") {
		t.Errorf("oversize embeddings: %v", err)
	}
	// A caller that goes away is not the upstream's failure.
	up.SetConfig(openaitest.Config{Stall: true})
	ctx, cancel := context.WithCancel(context.Background())
	before := o.Failures()
	done := make(chan error, 1)
	go func() { _, err := o.Chat(ctx, user("x"), func(string) error { return nil }); done <- err }()
	for deadline := time.Now().Add(10 * time.Second); up.Requests("/v1/chat/completions") < int64(len(cases)+1); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the upstream")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || o.Failures() != before {
		t.Errorf("canceled call: %v, failures %d → %d", err, before, o.Failures())
	}
	// An emit error (the caller's stream broke) is returned, not counted.
	up.SetConfig(openaitest.Config{Answer: "a b"})
	broken := errors.New("stream closed")
	if _, err := o.Chat(context.Background(), user("x"), func(string) error { return broken }); !errors.Is(err, broken) || o.Failures() != before {
		t.Errorf("emit error: %v, failures %d", err, o.Failures())
	}
}

func TestReadSSE(t *testing.T) {
	cases := []struct {
		name, in string
		out      string
		usage    Usage
		err      string
	}{
		{"done", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n", "a", Usage{}, ""},
		{"usage, CRLF, comments", ": ping\r\n\r\nevent: x\r\ndata:{\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\r\n\r\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]", "b", Usage{3, 1}, ""},
		{"finish without DONE", "data: {\"choices\":[{\"delta\":{\"content\":\"c\"},\"finish_reason\":\"stop\"}]}\n\n", "c", Usage{}, ""},
		{"truncated", "data: {\"choices\":[{\"delta\":{\"content\":\"c\"}}]}\n\n", "c", Usage{}, "without [DONE]"},
		{"malformed", "data: {not json\n\n", "", Usage{}, "malformed"},
		{"error event", "data: {\"error\":{\"message\":\"overloaded\"}}\n\n", "", Usage{}, "overloaded"},
		{"usage overflow", "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4294967296}}\n\n", "", Usage{}, "malformed"},
		{"long line", "data: \"" + strings.Repeat("x", 200) + "\"\n\n", "", Usage{}, "over 100 bytes"},
		{"too many events", strings.Repeat("data: {}\n\n", 11), "", Usage{}, "more than 10 events"},
	}
	for _, c := range cases {
		var out strings.Builder
		u, err := readSSE(strings.NewReader(c.in), 100, 10, func(s string) error { out.WriteString(s); return nil })
		if c.err == "" && (err != nil || out.String() != c.out || u != c.usage) {
			t.Errorf("%s: %q %+v %v", c.name, out.String(), u, err)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		}
	}
}

func TestDecodeEmbeddings(t *testing.T) {
	good := `{"data":[{"index":1,"embedding":[3,4]},{"index":0,"embedding":[1,2]}],"usage":{"prompt_tokens":5,"total_tokens":5}}`
	vecs, u, err := decodeEmbeddings([]byte(good), 2, 2)
	if err != nil || vecs[0][1] != 2 || vecs[1][0] != 3 || u.PromptTokens != 5 {
		t.Fatalf("%v %+v %v", vecs, u, err)
	}
	for name, in := range map[string]string{
		"count":      `{"data":[{"index":0,"embedding":[1]}]}`,
		"repeated":   `{"data":[{"index":0,"embedding":[1,2]},{"index":0,"embedding":[1,2]}]}`,
		"range":      `{"data":[{"index":0,"embedding":[1,2]},{"index":2,"embedding":[1,2]}]}`,
		"lengths":    `{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1]}]}`,
		"empty":      `{"data":[{"index":0,"embedding":[]},{"index":1,"embedding":[]}]}`,
		"not finite": `{"data":[{"index":0,"embedding":[1e999,1]},{"index":1,"embedding":[1,2]}]}`,
		"error":      `{"error":{"message":"no"}}`,
	} {
		if _, _, err := decodeEmbeddings([]byte(in), 2, 0); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, _, err := decodeEmbeddings([]byte(good), 2, 3); err == nil {
		t.Error("wrong dimensions accepted")
	}
}

func TestRetrievalChatAndEmbed(t *testing.T) {
	r := NewRetrieval(library...)
	var got string
	req := ChatRequest{Messages: []ChatMessage{
		{Role: "user", Content: "what consensus engine runs the chain"},
		{Role: "assistant", Content: "CometBFT"},
		{Role: "user", Content: "and what does Yuma consensus compute?"},
	}}
	u, err := r.Chat(context.Background(), req, func(s string) error { got += s; return nil })
	if err != nil || !strings.Contains(got, "stake-weighted median") || u.PromptTokens != 13 || u.CompletionTokens != countWords(got) {
		t.Fatalf("chat %q %+v %v", got, u, err)
	}
	if _, err := r.Chat(context.Background(), ChatRequest{Messages: []ChatMessage{{Role: "system", Content: "yuma"}}}, func(string) error { return nil }); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("no user message: %v", err)
	}
	texts := []string{"Yuma consensus clips weights", "yuma CONSENSUS clips weights!", "bonds and dividends", ""}
	a, u, err := r.Embed(context.Background(), texts, 0)
	if err != nil || len(a) != 4 || len(a[0]) != DefaultEmbedDimensions || u.PromptTokens != 11 {
		t.Fatalf("embed %d vectors of %d, %+v %v", len(a), len(a[0]), u, err)
	}
	b, _, _ := r.Embed(context.Background(), texts, 0)
	dot := func(x, y []float64) (s float64) {
		for i := range x {
			s += x[i] * y[i]
		}
		return s
	}
	for i := range a {
		if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
			t.Fatalf("embedding %d not deterministic", i)
		}
	}
	if math.Abs(dot(a[0], a[0])-1) > 1e-12 || math.Abs(dot(a[2], a[2])-1) > 1e-12 {
		t.Fatalf("not unit vectors: %v %v", dot(a[0], a[0]), dot(a[2], a[2]))
	}
	if math.Abs(dot(a[0], a[1])-1) > 1e-12 {
		t.Fatalf("same words, different vectors: %v", dot(a[0], a[1]))
	}
	if dot(a[0], a[2]) > 0.5 || dot(a[3], a[3]) != 0 {
		t.Fatalf("unrelated texts %v, empty text %v", dot(a[0], a[2]), dot(a[3], a[3]))
	}
	for _, d := range []int{1, 7, 8192} {
		v, _, _ := r.Embed(context.Background(), []string{"yuma consensus"}, d)
		if len(v[0]) != d || math.Abs(dot(v[0], v[0])-1) > 1e-12 {
			t.Fatalf("dimensions %d: %d numbers, norm² %v", d, len(v[0]), dot(v[0], v[0]))
		}
	}
}

// A streamed answer's deltas are passed on together when they have all
// arrived (an in-memory stream), and one by one when each arrives after
// the last was passed on (an upstream that sends token i+1 only once emit
// has had token i).
func TestOpenAIChatStreamCoalesces(t *testing.T) {
	tokens := []string{"one ", "two ", "three ", "four"}
	event := func(tok string) string {
		return fmt.Sprintf("data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", tok)
	}
	var all strings.Builder
	for _, tok := range tokens {
		all.WriteString(event(tok))
	}
	all.WriteString("data: [DONE]\n\n")
	var together []string
	if _, err := readSSE(strings.NewReader(all.String()), 1<<20, 100, func(s string) error { together = append(together, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(together) != 1 || together[0] != strings.Join(tokens, "") {
		t.Fatalf("all arrived: chunks %q, want one", together)
	}

	emitted := make(chan struct{}, len(tokens))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, tok := range tokens {
			fmt.Fprint(w, event(tok))
			w.(http.Flusher).Flush()
			select {
			case <-emitted:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	o := newOpenAI(t, OpenAIConfig{BaseURL: srv.URL})
	var chunks []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := o.Chat(ctx, user("count"), func(s string) error {
		chunks = append(chunks, s)
		emitted <- struct{}{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(chunks, "|") != strings.Join(tokens, "|") {
		t.Fatalf("paced: chunks %q, want one per token", chunks)
	}
}

// Lines longer than the reader's 64 KiB buffer are read whole, up to
// maxLine bytes (with "\n", "\r\n" or the stream's end after them), and
// refused one byte past it.
func TestReadSSELongLines(t *testing.T) {
	const maxLine = 200_000
	// line is a data line of exactly n bytes delivering a delta of x's.
	line := func(n int) (string, string) {
		head, tail := `data: {"choices":[{"delta":{"content":"`, `"},"finish_reason":"stop"}]}`
		x := strings.Repeat("x", n-len(head)-len(tail))
		return head + x + tail, x
	}
	for _, c := range []struct {
		name string
		n    int
		end  string
		ok   bool
		max  int // maxLine if 0
	}{
		{"70 KiB, LF", 70 << 10, "\n\n", true, 0},
		{"130 KiB, CRLF", 130 << 10, "\r\n\r\n", true, 0},
		{"the buffer's size", 64 << 10, "\n\n", true, 0},
		{"one past the buffer, CRLF", 64<<10 + 1, "\r\n\r\n", true, 0},
		{"maxLine, LF", maxLine, "\n\n", true, 0},
		{"maxLine, CRLF", maxLine, "\r\n\r\n", true, 0},
		{"maxLine at the end", maxLine, "", true, 0},
		{"maxLine at the end, CR", maxLine, "\r", true, 0},
		{"past maxLine, LF", maxLine + 1, "\n\n", false, 0},
		{"past maxLine, CRLF", maxLine + 1, "\r\n\r\n", false, 0},
		{"past maxLine at the end", maxLine + 1, "", false, 0},
		// The CR of a CRLF as the last byte of a full buffer, its LF read next.
		{"maxLine, its CR ending the buffer", 64<<10 - 1, "\r\n\r\n", true, 64<<10 - 1},
		{"maxLine, its CR ending the second buffer", 128<<10 - 1, "\r\n\r\n", true, 128<<10 - 1},
		{"past maxLine, its CR ending the second buffer", 128<<10 - 1, "\r\n\r\n", false, 128<<10 - 2},
	} {
		max := cmp.Or(c.max, maxLine)
		l, x := line(c.n)
		var got strings.Builder
		_, err := readSSE(strings.NewReader(l+c.end), max, 10, func(s string) error { got.WriteString(s); return nil })
		switch {
		case c.ok && (err != nil || got.String() != x):
			t.Errorf("%s: %d bytes read, error %v", c.name, got.Len(), err)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("over %d bytes", max))):
			t.Errorf("%s: error %v, want the line refused", c.name, err)
		}
	}
}
