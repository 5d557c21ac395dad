package backend

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const execChildEnv = "CYBERTENSOR_EXEC_BACKEND_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(execChildEnv); mode != "" {
		execChild(mode)
		return
	}
	goleak.VerifyTestMain(m)
}

// execChild is a JSON-lines backend: it upper-cases prompts, fails on
// "fail", hangs on "hang", and exits on "exit".
func execChild(mode string) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var req ExecMessage
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			fmt.Println(`{"id": 0, "error": "bad line"}`)
			continue
		}
		var in struct{ Prompt string }
		json.Unmarshal(req.Body, &in)
		switch in.Prompt {
		case "fail":
			b, _ := json.Marshal(ExecMessage{ID: req.ID, Error: "cannot do that"})
			fmt.Println(string(b))
		case "hang":
			select {}
		case "exit":
			os.Exit(0)
		default:
			out, _ := json.Marshal(strings.ToUpper(in.Prompt))
			b, _ := json.Marshal(ExecMessage{ID: req.ID, Body: out})
			fmt.Println(string(b))
		}
	}
}

var library = []Document{
	{ID: "yuma", Text: "Yuma consensus computes a stake-weighted median of validator weights.\n\nWeights above the consensus are clipped before ranks are computed."},
	{ID: "bonds", Text: "Bonds are an exponential moving average of the weights a validator sets, so early and honest validators earn dividends."},
	{ID: "chain", Text: "The chain runs under CometBFT with a deterministic application hash."},
}

func TestRetrievalAnswersFromTheLibrary(t *testing.T) {
	r := NewRetrieval(library...)
	cases := map[string]string{
		"What does Yuma consensus compute?":           "stake-weighted median",
		"which weights are clipped?":                  "clipped",
		"How do validators earn dividends with bonds": "exponential moving average",
		"what consensus engine runs the chain":        "CometBFT",
	}
	for q, want := range cases {
		var got strings.Builder
		if err := r.Generate(context.Background(), q, func(s string) error { got.WriteString(s); return nil }); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		if !strings.Contains(got.String(), want) {
			t.Errorf("%q: answered %q, want a passage with %q", q, got.String(), want)
		}
	}
	// Deterministic ranking.
	a, b := r.Search("consensus weights", 3), r.Search("consensus weights", 3)
	if fmt.Sprint(a) != fmt.Sprint(b) || len(a) == 0 {
		t.Fatal("search is not deterministic")
	}
	if err := r.Generate(context.Background(), "zebra giraffe", func(string) error { return nil }); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("no match: %v", err)
	}
}

// fakeOpenAI is an OpenAI-compatible server on loopback.
func fakeOpenAI(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" {
			http.Error(w, `{"error": "unauthorized"}`, http.StatusUnauthorized)
			return
		}
		var req map[string]any
		json.NewDecoder(r.Body).Decode(&req)
		switch r.URL.Path {
		case "/v1/chat/completions":
			msgs := req["messages"].([]any)
			prompt := msgs[0].(map[string]any)["content"].(string)
			w.Header().Set("Content-Type", "text/event-stream")
			if prompt == "broken" {
				fmt.Fprint(w, "data: {not json\n\n")
				return
			}
			for _, tok := range strings.Fields("the answer is " + prompt) {
				fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", tok+" ")
				w.(http.Flusher).Flush()
			}
			if prompt != "truncated" {
				fmt.Fprint(w, "data: [DONE]\n\n")
			}
		case "/v1/embeddings":
			inputs := req["input"].([]any)
			var data []map[string]any
			for i, in := range inputs {
				data = append(data, map[string]any{"index": i, "embedding": []float64{float64(len(in.(string))), 1}})
			}
			json.NewEncoder(w).Encode(map[string]any{"data": data})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOpenAIBackend(t *testing.T) {
	srv := fakeOpenAI(t)
	o, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Model: "m", APIKey: "secret", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	var toks []string
	if err := o.Generate(ctx, "42", func(s string) error { toks = append(toks, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(toks, "") != "the answer is 42 " || len(toks) != 4 {
		t.Fatalf("streamed %q", toks)
	}
	vecs, err := o.Embed(ctx, []string{"ab", "abcd"})
	if err != nil || len(vecs) != 2 || vecs[1][0] != 4 {
		t.Fatalf("embed %v %v", vecs, err)
	}
	if err := o.Generate(ctx, "broken", func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("malformed stream: %v", err)
	}
	if err := o.Generate(ctx, "truncated", func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "[DONE]") {
		t.Errorf("truncated stream: %v", err)
	}
	bad, _ := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Model: "m", APIKey: "wrong"})
	defer bad.Close()
	if err := bad.Generate(ctx, "x", func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("unauthorized: %v", err)
	}
	if _, err := NewOpenAI(OpenAIConfig{BaseURL: "ftp://x"}); err == nil {
		t.Error("non-http base URL accepted")
	}
}

func TestExecBackend(t *testing.T) {
	start := func(t *testing.T) *Exec {
		t.Helper()
		os.Setenv(execChildEnv, "1")
		defer os.Unsetenv(execChildEnv)
		e, err := StartExec(os.Args[0], "-test.run=^$")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	e := start(t)
	ctx := context.Background()
	var got string
	if err := e.Generate(ctx, "hello", func(s string) error { got = s; return nil }); err != nil || got != "HELLO" {
		t.Fatalf("generate %q %v", got, err)
	}
	if err := e.Generate(ctx, "fail", func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "cannot do that") {
		t.Fatalf("error line: %v", err)
	}
	// Still in step after an error.
	if err := e.Generate(ctx, "again", func(s string) error { got = s; return nil }); err != nil || got != "AGAIN" {
		t.Fatalf("after error %q %v", got, err)
	}
	// A hanging child is killed at the deadline.
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := e.Generate(tctx, "hang", func(string) error { return nil }); err == nil {
		t.Fatal("hanging call returned no error")
	}
	if err := e.Generate(ctx, "x", func(string) error { return nil }); !errors.Is(err, ErrExecClosed) {
		t.Fatalf("after kill: %v", err)
	}
	// A child that exits is reported.
	e2 := start(t)
	if err := e2.Generate(ctx, "exit", func(string) error { return nil }); !errors.Is(err, ErrExecClosed) {
		t.Fatalf("exited child: %v", err)
	}
}
