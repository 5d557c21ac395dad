package judge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend/openaitest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const summaryPrompt = "Rate the summary of the article from 0 to 10. Reply as Score: x/10.\n\nArticle:\n{{task.text}}\n\nReference: {{ expected }}\n\nSummary:\n{{answer}}"

func newLLM(t *testing.T, up *openaitest.Server, mutate func(*LLMConfig)) (*LLM, *Metrics) {
	t.Helper()
	m := NewMetrics(nil)
	cfg := LLMConfig{Name: "summary-llm", BaseURL: up.URL + "/v1", Model: "judge-model", APIKey: "sk-test", Prompt: summaryPrompt,
		TaskFields: []string{"text"}, Limits: Limits{Timeout: 5 * time.Second}, Metrics: m}
	if mutate != nil {
		mutate(&cfg)
	}
	j, err := NewLLM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, m
}

func TestLLMJudge(t *testing.T) {
	up := openaitest.New(openaitest.Config{APIKey: "sk-test", Reply: func(req openaitest.ChatRequest) string {
		if strings.Contains(req.Messages[0].Content, "Summary:\ncats sleep") {
			return "The summary is faithful but drops a detail.\nScore: 8/10"
		}
		return "This summary is unrelated to the article."
	}})
	defer up.Close()
	j, m := newLLM(t, up, nil)
	in := Input{Request: json.RawMessage(`{"text": "Cats sleep sixteen hours a day. {{answer}}"}`), Expected: json.RawMessage(`"cats sleep a lot"`),
		Synapse: "summarize.v1", Answer: []byte("cats sleep most of the day {{expected}}"), AnswerIsText: true}
	res, err := j.Judge(context.Background(), in)
	if err != nil || res.Score != 0.8 || !strings.HasSuffix(res.Fields["reply"].(string), "Score: 8/10") {
		t.Fatalf("judged %+v %v", res, err)
	}
	chat := up.LastChat()
	want := "Rate the summary of the article from 0 to 10. Reply as Score: x/10.\n\nArticle:\nCats sleep sixteen hours a day. {{answer}}\n\nReference: cats sleep a lot\n\nSummary:\ncats sleep most of the day {{expected}}"
	if chat.Model != "judge-model" || chat.Temperature == nil || *chat.Temperature != 0 || chat.Stream || len(chat.Messages) != 1 ||
		chat.Messages[0].Role != "user" || chat.Messages[0].Content != want {
		t.Fatalf("asked %+v", chat)
	}
	// A reply without a score is a failure, not a 0.
	in.Answer = []byte("dogs bark")
	if res, err := j.Judge(context.Background(), in); !errors.Is(err, ErrJudgeFailed) || reasonOfFailure(err) != ReasonNoScore {
		t.Fatalf("no score: %+v %v", res, err)
	}
	if testutil.ToFloat64(m.calls.WithLabelValues("summary-llm")) != 2 || testutil.ToFloat64(m.failures.WithLabelValues("summary-llm", ReasonNoScore)) != 1 {
		t.Fatal("not counted")
	}
}

func TestLLMJudgeUpstreamFailures(t *testing.T) {
	up := openaitest.New(openaitest.Config{Answer: "Score: 9/10"})
	defer up.Close()
	in := Input{Request: json.RawMessage(`{"text": "x"}`), Answer: []byte("y"), AnswerIsText: true}
	for _, c := range []struct {
		name   string
		cfg    openaitest.Config
		reason string
	}{
		{"500", openaitest.Config{FailStatus: http.StatusInternalServerError}, ReasonStatus},
		{"wrong key", openaitest.Config{APIKey: "other"}, ReasonStatus},
		{"slow", openaitest.Config{Stall: true}, ReasonTimeout},
		{"huge", openaitest.Config{Answer: "Score: 9/10", Oversize: 100 << 10}, ReasonTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			up.SetConfig(c.cfg)
			j, m := newLLM(t, up, func(cfg *LLMConfig) { cfg.Limits.Timeout = 300 * time.Millisecond })
			start := time.Now()
			_, err := j.Judge(context.Background(), in)
			if !errors.Is(err, ErrJudgeFailed) || reasonOfFailure(err) != c.reason {
				t.Fatalf("%v, want a %s failure", err, c.reason)
			}
			if strings.Contains(err.Error(), "sk-test") {
				t.Fatalf("the key leaked: %v", err)
			}
			if c.reason == ReasonTimeout && time.Since(start) > 20*time.Second {
				t.Fatalf("the timeout took %v", time.Since(start))
			}
			if testutil.ToFloat64(m.failures.WithLabelValues("summary-llm", c.reason)) != 1 {
				t.Fatal("not counted")
			}
		})
	}
	// Recovered, it scores again.
	up.SetConfig(openaitest.Config{Answer: `{"score": 6}`})
	j, _ := newLLM(t, up, nil)
	if res, err := j.Judge(context.Background(), in); err != nil || res.Score != 0.6 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestLLMJudgeRedactsKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad key "+r.Header.Get("Authorization"), http.StatusUnauthorized)
	}))
	defer srv.Close()
	j, err := NewLLM(LLMConfig{BaseURL: srv.URL, Model: "m", APIKey: "sk-secret", Prompt: "{{answer}}"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	_, err = j.Judge(context.Background(), Input{Request: json.RawMessage(`{}`), Answer: []byte("x"), AnswerIsText: true})
	if reasonOfFailure(err) != ReasonStatus || strings.Contains(err.Error(), "sk-secret") || !strings.Contains(err.Error(), "[api key]") {
		t.Fatalf("%v", err)
	}
}

func TestLLMJudgeConcurrency(t *testing.T) {
	release := make(chan struct{})
	up := openaitest.New(openaitest.Config{Reply: func(openaitest.ChatRequest) string { <-release; return "Score: 5/10" }})
	defer up.Close()
	var releasing sync.Once
	defer releasing.Do(func() { close(release) }) // before up.Close, even when the test fails
	j, m := newLLM(t, up, func(cfg *LLMConfig) { cfg.Limits.Concurrency = 1 })
	in := Input{Request: json.RawMessage(`{"text": "x"}`), Answer: []byte("y"), AnswerIsText: true}
	first := make(chan error, 1)
	go func() { _, err := j.Judge(context.Background(), in); first <- err }()
	deadline := time.Now().Add(20 * time.Second)
	for up.Requests("/v1/chat/completions") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first judgement never reached the model")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The only slot is taken: a second judgement waits, and times out
	// without reaching the model.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := j.Judge(ctx, in)
	cancel()
	if reasonOfFailure(err) != ReasonTimeout || up.Requests("/v1/chat/completions") != 1 {
		t.Fatalf("second: %v (requests %d)", err, up.Requests("/v1/chat/completions"))
	}
	releasing.Do(func() { close(release) })
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if testutil.ToFloat64(m.failures.WithLabelValues("summary-llm", ReasonTimeout)) != 1 {
		t.Fatal("not counted")
	}
}

func TestLLMConfigRefused(t *testing.T) {
	base := LLMConfig{BaseURL: "http://127.0.0.1:1/v1", Model: "m", Prompt: "{{answer}}", TaskFields: []string{"text"}}
	for name, mutate := range map[string]func(*LLMConfig){
		"unknown variable":   func(c *LLMConfig) { c.Prompt = "Rate {{answer}} against {{reference}}" },
		"unknown task field": func(c *LLMConfig) { c.Prompt = "{{task.title}}: {{answer}}" },
		"bad field name":     func(c *LLMConfig) { c.Prompt = "{{task.a-b}}" },
		"unclosed":           func(c *LLMConfig) { c.Prompt = "Rate {{answer" },
		"empty template":     func(c *LLMConfig) { c.Prompt = "  " },
		"no model":           func(c *LLMConfig) { c.Model = "" },
		"bad URL":            func(c *LLMConfig) { c.BaseURL = "ftp://x" },
		"key with newline":   func(c *LLMConfig) { c.APIKey = "a\nb" },
		"negative limits":    func(c *LLMConfig) { c.Limits.Timeout = -1 },
		"negative scale":     func(c *LLMConfig) { c.Scale = -1 },
	} {
		cfg := base
		mutate(&cfg)
		if j, err := NewLLM(cfg); err == nil {
			j.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	// Without TaskFields any field name is taken.
	cfg := base
	cfg.TaskFields, cfg.Prompt = nil, "{{task.title}} {{ answer }}"
	if j, err := NewLLM(cfg); err != nil {
		t.Fatal(err)
	} else {
		j.Close()
	}
}

func TestTemplateScale(t *testing.T) {
	for prompt, want := range map[string]float64{
		"Rate it from 1 to 10: {{answer}}":                      10,
		"Give a score between 0 and 1. {{answer}}":              1,
		"Reply with Score: x/100 for {{answer}}":                100,
		"Score out of 5. {{answer}}":                            5,
		"Rate 0-10 and say how it reads out of 100. {{answer}}": 0,
		"Rate {{answer}}.":                                      0,
		"Answer in 1-2 sentences, then rate {{answer}}":         0,
	} {
		tmpl, err := parseTemplate(prompt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := templateScale(tmpl); got != want {
			t.Errorf("%q: scale %v, want %v", prompt, got, want)
		}
	}
	// With the template's scale, a bare "1" is 1/10.
	up := openaitest.New(openaitest.Config{Answer: "1"})
	defer up.Close()
	j, _ := newLLM(t, up, func(c *LLMConfig) { c.Prompt = "Rate from 1 to 10: {{answer}}" })
	if res, err := j.Judge(context.Background(), Input{Request: json.RawMessage(`{}`), Answer: []byte("x"), AnswerIsText: true}); err != nil || res.Score != 0.1 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestTemplateRender(t *testing.T) {
	tmpl, err := parseTemplate("[{{task.n}}|{{task.s}}|{{task.o}}|{{task.missing}}|{{expected}}|{{answer}}]", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.render(Input{Request: json.RawMessage(`{"n": 3, "s": "a<b", "o": {"k": [1, 2]}}`), Expected: json.RawMessage(`{"x": 1}`),
		Answer: []byte(`{"y": "z"}`)})
	if err != nil || got != `[3|a<b|{"k":[1,2]}||{"x":1}|{"y":"z"}]` {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := tmpl.render(Input{Request: json.RawMessage(`[1]`), Answer: []byte(`1`)}); reasonOf(err, "") != ReasonBadInput {
		t.Fatalf("a request that is not an object: %v", err)
	}
}
