package openaitest

import (
	"bufio"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func post(t *testing.T, url, key, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestServer(t *testing.T) {
	s := New(Config{Answer: "one two three four", APIKey: "k"})
	defer s.Close()
	defer http.DefaultClient.CloseIdleConnections()
	if resp := post(t, s.URL+"/v1/chat/completions", "wrong", `{}`); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %s", resp.Status)
	}
	// Not streamed, cut by max_tokens.
	resp := post(t, s.URL+"/v1/chat/completions", "k", `{"model":"m","messages":[{"role":"user","content":"a b c"}],"max_tokens":2,"seed":7}`)
	var out struct {
		Choices []struct {
			Message      Message `json:"message"`
			FinishReason string  `json:"finish_reason"`
		} `json:"choices"`
		Usage Usage `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Choices[0].Message.Content != "one two " || out.Choices[0].FinishReason != "length" || out.Usage.PromptTokens != 3 || out.Usage.CompletionTokens != 2 {
		t.Fatalf("answer %+v", out)
	}
	if c := s.LastChat(); c == nil || *c.Seed != 7 || c.MaxTokens != 2 {
		t.Fatalf("last chat %+v", c)
	}
	// Streamed with usage, ending in [DONE].
	resp = post(t, s.URL+"/v1/chat/completions", "k", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}],"stop":["three"]}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, d)
		}
	}
	// two tokens, the finish chunk, usage, [DONE]
	if len(events) != 5 || events[4] != "[DONE]" || !strings.Contains(events[3], `"completion_tokens":2`) || !strings.Contains(events[1], `"two "`) {
		t.Fatalf("events %q", events)
	}
	// Dropped after one token: the body ends without [DONE].
	s.SetConfig(Config{Answer: "one two three", DropAfter: 1})
	resp = post(t, s.URL+"/v1/chat/completions", "", `{"stream":true,"messages":[{"role":"user","content":"x"}]}`)
	body, err := io.ReadAll(resp.Body)
	if err == nil || strings.Contains(string(body), "[DONE]") || !strings.Contains(string(body), `"one "`) {
		t.Fatalf("dropped stream: %q %v", body, err)
	}
	s.SetConfig(Config{FailStatus: 500})
	if resp := post(t, s.URL+"/v1/embeddings", "", `{"input":["a"]}`); resp.StatusCode != 500 {
		t.Fatalf("fail status: %s", resp.Status)
	}
	s.SetConfig(Config{})
	resp = post(t, s.URL+"/v1/embeddings", "", `{"input":["a","b"],"dimensions":5}`)
	var emb struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&emb)
	if len(emb.Data) != 2 || len(emb.Data[1].Embedding) != 5 {
		t.Fatalf("embeddings %+v", emb)
	}
	var norm float64
	for _, x := range emb.Data[0].Embedding {
		norm += x * x
	}
	if math.Abs(norm-1) > 1e-9 || emb.Data[0].Embedding[0] != Embedding("a", 5)[0] {
		t.Fatalf("embedding not deterministic or not unit: %v", emb.Data[0].Embedding)
	}
	resp, err = http.Get(s.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"test-model"`) {
		t.Fatalf("models %s", b)
	}
	if s.Requests("/v1/chat/completions") != 4 || s.Requests("") != 7 {
		t.Fatalf("counts %d %d", s.Requests("/v1/chat/completions"), s.Requests(""))
	}
}

// A stalled request ends when the server closes.
func TestStallEndsOnClose(t *testing.T) {
	s := New(Config{Stall: true})
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(s.URL + "/v1/models")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	// Wait for the request to arrive (it is counted before it stalls).
	for deadline := time.Now().Add(10 * time.Second); s.Requests("") == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never arrived")
		}
	}
	select {
	case err := <-errc:
		t.Fatalf("returned before the server closed: %v", err)
	default:
	}
	s.Close()
	if err := <-errc; err == nil {
		t.Fatal("stalled request answered")
	}
	http.DefaultClient.CloseIdleConnections()
}
