package judge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// LLMConfig configures a judge that asks an OpenAI-compatible model.
type LLMConfig struct {
	// Name names the judge in logs and metrics (default "llm").
	Name string
	// BaseURL is the API's base, with its version: the judge POSTs to
	// BaseURL + "/chat/completions" (e.g. http://127.0.0.1:8080/v1).
	BaseURL string
	// Model is the model asked for.
	Model string
	// APIKey, if set, is sent as a bearer token; it is kept out of logs
	// and errors.
	APIKey string
	// Prompt is the template of the user message (see parseTemplate's
	// variables: {{answer}}, {{expected}}, {{task.FIELD}}).
	Prompt string
	// TaskFields, if not nil, are the request's top-level fields: a
	// {{task.X}} naming another is refused.
	TaskFields []string
	// Scale is what a bare number in the reply is out of (e.g. 10). 0
	// takes it from the template when it names exactly one of 0-1, 0-5,
	// 0-10 or 0-100 ("from 1 to 10", "out of 10", "/10"), else detects it
	// per number as ParseScore does.
	Scale float64
	// Limits bound a call: its time, the reply's bytes, the calls at once.
	Limits Limits
	// Metrics counts the calls (nil: not counted).
	Metrics *Metrics
	// Logger gets failures (nil: discarded).
	Logger *slog.Logger
}

// LLM is a judge that asks a model for a score. A reply without a score
// (see ParseScore) is a failure, never a 0.
type LLM struct {
	cfg    LLMConfig
	url    string
	tmpl   *template
	client *http.Client
	slots  chan struct{}
	obs    observer
	close  sync.Once
}

// NewLLM checks cfg (the URL, the template's variables, the limits) and
// returns the judge.
func NewLLM(cfg LLMConfig) (*LLM, error) {
	if !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("judge: llm base URL %q must start with http:// or https://", cfg.BaseURL)
	}
	if cfg.Model == "" {
		return nil, errors.New("judge: llm: no model named")
	}
	if strings.ContainsAny(cfg.APIKey, "\r\n") {
		return nil, errors.New("judge: llm: the API key holds a line break")
	}
	if cfg.Scale < 0 {
		return nil, fmt.Errorf("judge: llm: negative scale %v", cfg.Scale)
	}
	limits, err := cfg.Limits.orDefault()
	if err != nil {
		return nil, err
	}
	cfg.Limits = limits
	tmpl, err := parseTemplate(cfg.Prompt, cfg.TaskFields)
	if err != nil {
		return nil, err
	}
	if cfg.Scale == 0 {
		cfg.Scale = templateScale(tmpl)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.Limits.Concurrency
	return &LLM{
		cfg:    cfg,
		url:    strings.TrimRight(cfg.BaseURL, "/") + "/chat/completions",
		tmpl:   tmpl,
		client: &http.Client{Transport: transport},
		slots:  make(chan struct{}, cfg.Limits.Concurrency),
		obs:    newObserver(cfg.Name, "llm", cfg.Metrics, cfg.Logger),
	}, nil
}

var _ Judge = (*LLM)(nil)

// Scale is what bare numbers in replies are read out of (0: per number).
func (l *LLM) Scale() float64 { return l.cfg.Scale }

var scaleNames = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\b[01](?:\.0)?\s*(?:-|–|to|and)\s*(1|5|10|100)(?:\.0)?\b`),
	regexp.MustCompile(`(?i)\bout\s+of\s+(1|5|10|100)\b`),
	regexp.MustCompile(`/\s*(1|5|10|100)\b`),
}

// templateScale is the one scale the template's text names, or 0.
func templateScale(t *template) float64 {
	var text strings.Builder
	for _, p := range t.parts {
		text.WriteString(p.text)
		text.WriteString("\n")
	}
	found := map[string]bool{}
	for _, re := range scaleNames {
		for _, m := range re.FindAllStringSubmatch(text.String(), -1) {
			found[m[1]] = true
		}
	}
	if len(found) != 1 {
		return 0
	}
	for s := range found {
		v, _ := strconv.ParseFloat(s, 64)
		return v
	}
	return 0
}

// Judge renders the prompt for in, asks the model (temperature 0, not
// streamed) and reads the score from its reply. Result.Fields holds
// "reply": the reply's first 2 KiB.
func (l *LLM) Judge(ctx context.Context, in Input) (Result, error) {
	start := time.Now()
	res, err := l.judge(ctx, in)
	return res, l.obs.finish(ctx, start, err)
}

func (l *LLM) judge(ctx context.Context, in Input) (Result, error) {
	if in.AnswerIsText && !utf8.Valid(in.Answer) {
		return Result{}, fail(ReasonBadInput, "the answer is not UTF-8 text")
	}
	prompt, err := l.tmpl.render(in)
	if err != nil {
		return Result{}, err
	}
	select {
	case l.slots <- struct{}{}:
		defer func() { <-l.slots }()
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Limits.Timeout)
	defer cancel()
	reply, err := l.ask(ctx, prompt)
	if err != nil {
		return Result{}, l.redact(err)
	}
	score, err := parseScore(reply, l.cfg.Scale)
	if err != nil {
		return Result{}, fail(ReasonNoScore, "reply %q: %v", truncate(reply, 200), err)
	}
	return Result{Score: score, Fields: map[string]any{"reply": truncate(reply, 2048)}}, nil
}

// ask posts one chat completion and returns the reply's text.
func (l *LLM) ask(ctx context.Context, prompt string) (string, error) {
	body, err := json.Marshal(map[string]any{
		"model":       l.cfg.Model,
		"messages":    []map[string]string{{"role": "user", "content": prompt}},
		"temperature": 0,
		"stream":      false,
	})
	if err != nil {
		return "", fail(ReasonBadInput, "encoding the request: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return "", fail(ReasonCall, "%v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if l.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+l.cfg.APIKey)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", l.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fail(ReasonStatus, "POST %s: %s: %s", l.url, resp.Status, strings.ToValidUTF8(strings.TrimSpace(string(msg)), "?"))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(l.cfg.Limits.MaxOutput)+1))
	if err != nil {
		return "", fmt.Errorf("reading the reply: %w", err)
	}
	if len(b) > l.cfg.Limits.MaxOutput {
		return "", fail(ReasonTooLarge, "the reply is over %d bytes", l.cfg.Limits.MaxOutput)
	}
	var out struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fail(ReasonBadReply, "not a chat completion: %v", err)
	}
	if out.Error != nil {
		return "", fail(ReasonBadReply, "the server answered an error: %s", truncate(out.Error.Message, 200))
	}
	if len(out.Choices) == 0 || out.Choices[0].Message.Content == nil {
		return "", fail(ReasonBadReply, "a chat completion without a message")
	}
	return *out.Choices[0].Message.Content, nil
}

// redact keeps the API key out of an error (a server may echo it).
func (l *LLM) redact(err error) error {
	if l.cfg.APIKey == "" || !strings.Contains(err.Error(), l.cfg.APIKey) {
		return err
	}
	return &failed{reason: reasonOf(err, ReasonCall), err: errors.New(strings.ReplaceAll(err.Error(), l.cfg.APIKey, "[api key]"))}
}

// Close releases idle connections; it is safe to call twice.
func (l *LLM) Close() error {
	l.close.Do(l.client.CloseIdleConnections)
	return nil
}
