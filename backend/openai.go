package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OpenAIConfig points at an OpenAI-compatible server (llama.cpp, vLLM,
// Ollama, …).
type OpenAIConfig struct {
	// BaseURL is the server's root, e.g. http://127.0.0.1:8080 (the /v1
	// paths are appended).
	BaseURL string
	// Model names the model to ask for.
	Model string
	// EmbeddingModel names the embedding model (default: Model).
	EmbeddingModel string
	// APIKey, if set, is sent as a bearer token. It is never logged nor
	// put in an error (a server's error message that echoes it has it
	// replaced).
	APIKey string
	// Timeout bounds one call (default 2 minutes).
	Timeout time.Duration
	// MaxResponse bounds the bytes read from the server for one call
	// (default 16 MiB); a longer answer is refused.
	MaxResponse int64
	// MaxLine bounds one line of a streamed answer (default 1 MiB).
	MaxLine int
	// MaxChunks bounds the events of a streamed answer (default 1<<20).
	MaxChunks int
	// NoStream asks the server for whole answers instead of server-sent
	// events. Either way the backend reads what the server sends, told
	// apart by its Content-Type.
	NoStream bool
}

// LogValue keeps the API key out of logs.
func (c OpenAIConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", c.BaseURL), slog.String("model", c.Model),
		slog.String("embedding_model", c.EmbeddingModel), slog.Bool("api_key", c.APIKey != ""))
}

// String keeps the API key out of formatted output.
func (c OpenAIConfig) String() string {
	return fmt.Sprintf("openai %s@%s (key set: %v)", c.Model, c.BaseURL, c.APIKey != "")
}

// ErrUpstream wraps every failure of the model server: an HTTP error
// status, a broken, malformed or oversized answer, a refused connection.
// ErrUpstreamTimeout (which wraps ErrUpstream) is the server not answering
// within OpenAIConfig.Timeout.
var (
	ErrUpstream        = errors.New("backend: upstream model server failed")
	ErrUpstreamTimeout = fmt.Errorf("%w: timed out", ErrUpstream)
)

// Kinds of upstream failure, as counted.
const (
	failStatus    = "status"    // an HTTP status other than 200
	failTransport = "transport" // connecting, sending or reading failed
	failTimeout   = "timeout"   // Timeout passed
	failMalformed = "malformed" // an answer that does not parse or breaks the rules
	failOversize  = "oversize"  // an answer over MaxResponse, MaxLine or MaxChunks
)

// OpenAI talks to an OpenAI-compatible server. It counts the server's
// failures (Failures, and as a Prometheus collector); the miner logs them,
// rate-limited, as the backend failures they become.
type OpenAI struct {
	cfg      OpenAIConfig
	client   *http.Client
	failed   atomic.Uint64
	failures *prometheus.CounterVec
}

var _ prometheus.Collector = (*OpenAI)(nil)

// NewOpenAI returns a backend for cfg.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	if !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("backend: base URL %q must start with http:// or https://", cfg.BaseURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.MaxResponse <= 0 {
		cfg.MaxResponse = 16 << 20
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = 1 << 20
	}
	if cfg.MaxChunks <= 0 {
		cfg.MaxChunks = 1 << 20
	}
	if cfg.EmbeddingModel == "" {
		cfg.EmbeddingModel = cfg.Model
	}
	if strings.ContainsAny(cfg.APIKey, "\r\n") {
		return nil, errors.New("backend: the API key holds a line break")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	// A miner calls its model server from as many handlers at once as it
	// serves queries: keep that many connections (http.DefaultTransport
	// keeps 2 per host, so most calls would open a new one).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	return &OpenAI{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout, Transport: tr},
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "backend",
			Name: "upstream_failures_total", Help: "Calls to the OpenAI-compatible model server that failed, by endpoint and kind (status, transport, timeout, malformed, oversize)."},
			[]string{"endpoint", "kind"})}, nil
}

// maxIdlePerHost is how many idle connections to the model server are
// kept for the next calls.
const maxIdlePerHost = 64

// Close releases idle connections.
func (o *OpenAI) Close() { o.client.CloseIdleConnections() }

// Failures counts the calls the model server failed.
func (o *OpenAI) Failures() uint64 { return o.failed.Load() }

// Describe implements prometheus.Collector.
func (o *OpenAI) Describe(ch chan<- *prometheus.Desc) { o.failures.Describe(ch) }

// Collect implements prometheus.Collector.
func (o *OpenAI) Collect(ch chan<- prometheus.Metric) { o.failures.Collect(ch) }

// upstreamError is a counted failure of the model server.
type upstreamError struct {
	kind string
	msg  string
}

func (e *upstreamError) Error() string { return "backend: upstream " + e.msg }

func (e *upstreamError) Unwrap() error {
	if e.kind == failTimeout {
		return ErrUpstreamTimeout
	}
	return ErrUpstream
}

// fail counts a failure of the call to path and returns it as an error. A
// failure while the caller's context is canceled is the caller's doing:
// its error is returned, uncounted; one past the caller's deadline counts
// as a timeout.
func (o *OpenAI) fail(ctx context.Context, path, kind, format string, args ...any) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	if ctx.Err() != nil {
		kind = failTimeout
	}
	msg := path + ": " + fmt.Sprintf(format, args...)
	if o.cfg.APIKey != "" {
		msg = strings.ReplaceAll(msg, o.cfg.APIKey, "[api key]")
	}
	o.failed.Add(1)
	o.failures.WithLabelValues(path, kind).Inc()
	return &upstreamError{kind: kind, msg: msg}
}

// transportKind tells a timeout from other transport failures.
func transportKind(err error) string {
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return failTimeout
	}
	return failTransport
}

func (o *OpenAI) post(ctx context.Context, path string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.cfg.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if o.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, o.fail(ctx, path, transportKind(err), "%v", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, o.fail(ctx, path, failStatus, "%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// errOversize is an answer past a bound.
var errOversize = errors.New("answer too large")

// capReader reads at most n bytes and then fails with errOversize, so a
// cut answer is never taken for a whole one.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		// Past the bound: one more byte means the answer is too long.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, errOversize
		}
		return 0, err
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// readKind classifies an error reading an answer.
func readKind(err error) string {
	var se *sseError
	switch {
	case errors.Is(err, errOversize):
		return failOversize
	case errors.As(err, &se):
		return se.kind
	}
	return transportKind(err)
}

// chatRequestBody is a chat completion request as sent: a struct, not a
// map, so it encodes without sorting keys or boxing values (the request of
// every query a miner answers).
type chatRequestBody struct {
	Model         string             `json:"model"`
	Messages      []chatMessageBody  `json:"messages"`
	Stream        bool               `json:"stream"`
	StreamOptions *chatStreamOptions `json:"stream_options,omitempty"`
	MaxTokens     uint32             `json:"max_tokens,omitempty"`
	Temperature   *float64           `json:"temperature,omitempty"`
	TopP          *float64           `json:"top_p,omitempty"`
	Stop          []string           `json:"stop,omitempty"`
	Seed          *int64             `json:"seed,omitempty"`
}

type chatMessageBody struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatBody is a chat completion request.
func (o *OpenAI) chatBody(req ChatRequest) *chatRequestBody {
	body := &chatRequestBody{Model: o.cfg.Model, Messages: make([]chatMessageBody, len(req.Messages)), Stream: !o.cfg.NoStream,
		MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, Stop: req.Stop, Seed: req.Seed}
	for i, m := range req.Messages {
		body.Messages[i] = chatMessageBody{Role: m.Role, Content: m.Content}
	}
	if !o.cfg.NoStream {
		body.StreamOptions = &chatStreamOptions{IncludeUsage: true}
	}
	return body
}

// Chat asks /v1/chat/completions and passes the answer to emit: each
// content delta as it arrives when the server streams server-sent events,
// the whole answer at once when it answers JSON. Usage is the server's, if
// it sent one.
func (o *OpenAI) Chat(ctx context.Context, req ChatRequest, emit func(string) error) (Usage, error) {
	const path = "/v1/chat/completions"
	resp, err := o.post(ctx, path, o.chatBody(req))
	if err != nil {
		return Usage{}, err
	}
	defer resp.Body.Close()
	body := &capReader{r: resp.Body, n: o.cfg.MaxResponse}
	// emit's errors are the caller's (its stream broke), not the server's.
	var emitErr error
	emitting := func(s string) error {
		if err := emit(s); err != nil {
			emitErr = err
			return err
		}
		return nil
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); mt == "text/event-stream" {
		u, err := readSSE(body, o.cfg.MaxLine, o.cfg.MaxChunks, emitting)
		switch {
		case emitErr != nil:
			return u, emitErr
		case err != nil:
			return u, o.fail(ctx, path, readKind(err), "reading the stream: %v", err)
		}
		return u, nil
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return Usage{}, o.fail(ctx, path, readKind(err), "reading the answer: %v", err)
	}
	text, u, err := decodeChatJSON(b)
	if err != nil {
		return Usage{}, o.fail(ctx, path, failMalformed, "answer of type %q: %v", ct, err)
	}
	if text != "" {
		if err := emit(text); err != nil {
			return u, err
		}
	}
	return u, nil
}

// Generate implements Generator: the prompt as one user message.
func (o *OpenAI) Generate(ctx context.Context, prompt string, emit func(string) error) error {
	_, err := o.Chat(ctx, ChatRequest{Messages: []ChatMessage{{Role: "user", Content: prompt}}}, emit)
	return err
}

// apiError is the error member OpenAI-compatible servers send.
type apiError struct {
	Message string `json:"message"`
}

// apiUsage is the usage member of an answer.
type apiUsage struct {
	PromptTokens     uint32 `json:"prompt_tokens"`
	CompletionTokens uint32 `json:"completion_tokens"`
}

func (u *apiUsage) usage() Usage {
	if u == nil {
		return Usage{}
	}
	return Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
}

// decodeChatJSON reads a whole chat completion: the first choice's
// message content and the usage. The common answer is read by
// fastChatJSON; anything else by encoding/json.
func decodeChatJSON(b []byte) (string, Usage, error) {
	if text, u, ok := fastChatJSON(b); ok {
		return text, u, nil
	}
	return readChatJSON(b)
}

// readChatJSON reads a whole chat completion with encoding/json.
func readChatJSON(b []byte) (string, Usage, error) {
	var out struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Usage *apiUsage `json:"usage"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", Usage{}, fmt.Errorf("not a chat completion: %w", err)
	}
	if out.Error != nil {
		return "", Usage{}, fmt.Errorf("server error: %s", out.Error.Message)
	}
	if len(out.Choices) == 0 || out.Choices[0].Message.Content == nil {
		return "", Usage{}, errors.New("a chat completion without a message")
	}
	return *out.Choices[0].Message.Content, out.Usage.usage(), nil
}

// Embed asks /v1/embeddings for one vector per text.
func (o *OpenAI) Embed(ctx context.Context, texts []string, dimensions int) ([][]float64, Usage, error) {
	const path = "/v1/embeddings"
	body := map[string]any{"model": o.cfg.EmbeddingModel, "input": texts, "encoding_format": "float"}
	if dimensions > 0 {
		body["dimensions"] = dimensions
	}
	resp, err := o.post(ctx, path, body)
	if err != nil {
		return nil, Usage{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(&capReader{r: resp.Body, n: o.cfg.MaxResponse})
	if err != nil {
		return nil, Usage{}, o.fail(ctx, path, readKind(err), "reading the answer: %v", err)
	}
	vecs, u, err := decodeEmbeddings(b, len(texts), dimensions)
	if err != nil {
		return nil, Usage{}, o.fail(ctx, path, failMalformed, "%v", err)
	}
	return vecs, u, nil
}

// decodeEmbeddings reads an embeddings answer for n inputs: one vector per
// index 0..n-1, all of one length (dimensions, if not 0).
func decodeEmbeddings(b []byte, n, dimensions int) ([][]float64, Usage, error) {
	var out struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
		Usage *apiUsage `json:"usage"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, Usage{}, fmt.Errorf("not an embeddings answer: %w", err)
	}
	if out.Error != nil {
		return nil, Usage{}, fmt.Errorf("server error: %s", out.Error.Message)
	}
	if len(out.Data) != n {
		return nil, Usage{}, fmt.Errorf("%d embeddings for %d inputs", len(out.Data), n)
	}
	vecs := make([][]float64, n)
	for _, d := range out.Data {
		if d.Index < 0 || d.Index >= n || vecs[d.Index] != nil {
			return nil, Usage{}, fmt.Errorf("index %d out of range or repeated", d.Index)
		}
		if len(d.Embedding) == 0 || len(d.Embedding) != len(out.Data[0].Embedding) || (dimensions > 0 && len(d.Embedding) != dimensions) {
			return nil, Usage{}, fmt.Errorf("embedding %d has %d numbers (first: %d, asked: %d)", d.Index, len(d.Embedding), len(out.Data[0].Embedding), dimensions)
		}
		vecs[d.Index] = d.Embedding
	}
	u := out.Usage.usage()
	u.CompletionTokens = 0
	return vecs, u, nil
}
