package openaitest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets how the server answers.
type Config struct {
	// Answer is every chat and completion answer (default
	// DefaultAnswer), unless Reply is set.
	Answer string
	// Reply, if set, computes the answer to a chat request (for
	// /v1/completions it gets one user message holding the prompt).
	Reply func(ChatRequest) string
	// TokenDelay is waited before each streamed token.
	TokenDelay time.Duration
	// Models are listed by /v1/models (default: ["test-model"]).
	Models []string
	// Dimensions is the length of embeddings when the request names none
	// (default 8).
	Dimensions int
	// APIKey, if set, is required as a bearer token.
	APIKey string
	// NoStreaming answers JSON even when the request asks to stream.
	NoStreaming bool
	// FailStatus, if set, answers every request with this HTTP status.
	FailStatus int
	// DropAfter, if above 0, aborts a streamed answer's connection after
	// that many tokens.
	DropAfter int
	// Stall makes every request hang until its client gives up or the
	// server closes.
	Stall bool
	// Oversize pads every answer (and every stream chunk's content) with
	// this many spaces.
	Oversize int
}

// DefaultAnswer is the answer when Config.Answer is empty.
const DefaultAnswer = "The quick brown fox jumps over the lazy dog."

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is the part of a chat completion request the server reads.
type ChatRequest struct {
	Model         string    `json:"model"`
	Messages      []Message `json:"messages"`
	Stream        bool      `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	Stop        []string `json:"stop,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
}

// Server is a running fake upstream.
type Server struct {
	// URL is the server's root, e.g. http://127.0.0.1:41234.
	URL string

	srv  *httptest.Server
	done chan struct{} // closed by Close: stalled handlers return

	mu       sync.Mutex
	cfg      Config
	lastChat *ChatRequest
	counts   map[string]int64
	total    atomic.Int64
	closing  sync.Once
}

// New starts a server on 127.0.0.1.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, done: make(chan struct{}), counts: map[string]int64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("POST /v1/completions", s.completions)
	mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	mux.HandleFunc("GET /v1/models", s.models)
	s.srv = httptest.NewServer(s.gate(mux))
	s.URL = s.srv.URL
	return s
}

// Close stops the server; requests it is stalling end.
func (s *Server) Close() {
	s.closing.Do(func() {
		close(s.done)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// SetConfig replaces the configuration for the requests that follow.
func (s *Server) SetConfig(cfg Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
}

// Config returns the current configuration.
func (s *Server) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Requests counts the requests to path (e.g. "/v1/chat/completions"),
// refused ones included; "" counts all.
func (s *Server) Requests(path string) int64 {
	if path == "" {
		return s.total.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[path]
}

// LastChat is the last chat completion request decoded, or nil.
func (s *Server) LastChat() *ChatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastChat
}

// maxRequest bounds a request body.
const maxRequest = 8 << 20

// gate counts requests and applies the key, failure and stall settings.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.total.Add(1)
		s.mu.Lock()
		s.counts[r.URL.Path]++
		cfg := s.cfg
		s.mu.Unlock()
		if cfg.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+cfg.APIKey {
			writeError(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided.")
			return
		}
		if cfg.Stall {
			select {
			case <-r.Context().Done():
				return
			case <-s.done:
				panic(http.ErrAbortHandler) // drop the connection: no answer
			}
		}
		if cfg.FailStatus != 0 {
			writeError(w, cfg.FailStatus, "server_error", "the test server was told to fail")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequest)
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": code, "code": code}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Usage is the usage object of an answer.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func words(texts ...string) int {
	n := 0
	for _, t := range texts {
		n += len(strings.Fields(t))
	}
	return n
}

// Tokens splits an answer as the server streams it: after each space.
func Tokens(answer string) []string {
	var out []string
	for _, t := range strings.SplitAfter(answer, " ") {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// answer is the tokens of the answer to req and its finish reason.
func (cfg Config) answer(req ChatRequest) ([]string, string) {
	text := cfg.Answer
	if text == "" {
		text = DefaultAnswer
	}
	if cfg.Reply != nil {
		text = cfg.Reply(req)
	}
	for _, stop := range req.Stop {
		if i := strings.Index(text, stop); stop != "" && i >= 0 {
			text = text[:i]
		}
	}
	toks := Tokens(text)
	if req.MaxTokens > 0 && len(toks) > req.MaxTokens {
		return toks[:req.MaxTokens], "length"
	}
	return toks, "stop"
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req ChatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("want a chat completion request with messages: %v", err))
		return
	}
	s.mu.Lock()
	s.lastChat = &req
	cfg := s.cfg
	s.mu.Unlock()
	toks, finish := cfg.answer(req)
	var prompt []string
	for _, m := range req.Messages {
		prompt = append(prompt, m.Content)
	}
	usage := Usage{PromptTokens: words(prompt...), CompletionTokens: len(toks)}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	if req.Stream && !cfg.NoStreaming {
		s.stream(w, r, cfg, toks, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, usage,
			func(tok string) any { return chunk(map[string]any{"content": tok}, nil) },
			chunk(map[string]any{}, finish),
			map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": req.Model, "choices": []any{}, "usage": usage})
		return
	}
	writeJSON(w, map[string]any{"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": strings.Join(toks, "") + strings.Repeat(" ", cfg.Oversize)},
			"finish_reason": finish}},
		"usage": usage})
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model         string `json:"model"`
		Prompt        string `json:"prompt"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options,omitempty"`
		MaxTokens int      `json:"max_tokens,omitempty"`
		Stop      []string `json:"stop,omitempty"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("want a completion request: %v", err))
		return
	}
	cfg := s.Config()
	toks, finish := cfg.answer(ChatRequest{Model: req.Model, Messages: []Message{{Role: "user", Content: req.Prompt}}, MaxTokens: req.MaxTokens, Stop: req.Stop})
	usage := Usage{PromptTokens: words(req.Prompt), CompletionTokens: len(toks)}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	choice := func(text string, finish any) map[string]any {
		return map[string]any{"id": "cmpl-test", "object": "text_completion", "created": 0, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "text": text, "finish_reason": finish}}}
	}
	if req.Stream && !cfg.NoStreaming {
		s.stream(w, r, cfg, toks, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, usage,
			func(tok string) any { return choice(tok, nil) }, choice("", finish),
			map[string]any{"id": "cmpl-test", "object": "text_completion", "created": 0, "model": req.Model, "choices": []any{}, "usage": usage})
		return
	}
	out := choice(strings.Join(toks, "")+strings.Repeat(" ", cfg.Oversize), finish)
	out["usage"] = usage
	writeJSON(w, out)
}

// stream sends toks as server-sent events.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, cfg Config, toks []string, withUsage bool, usage Usage, chunk func(string) any, last, usageChunk any) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	pad := strings.Repeat(" ", cfg.Oversize)
	for i, tok := range toks {
		if cfg.DropAfter > 0 && i >= cfg.DropAfter {
			panic(http.ErrAbortHandler) // net/http drops the connection mid-body
		}
		if cfg.TokenDelay > 0 {
			t := time.NewTimer(cfg.TokenDelay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.done:
				t.Stop()
				return
			}
		}
		send(chunk(tok + pad))
	}
	if cfg.DropAfter > 0 && len(toks) >= cfg.DropAfter {
		panic(http.ErrAbortHandler)
	}
	send(last)
	if withUsage {
		send(usageChunk)
	}
	io.WriteString(w, "data: [DONE]\n\n")
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model      string          `json:"model"`
		Input      json.RawMessage `json:"input"`
		Dimensions int             `json:"dimensions,omitempty"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("want an embeddings request: %v", err))
		return
	}
	var inputs []string
	if err := json.Unmarshal(req.Input, &inputs); err != nil {
		var one string
		if err := json.Unmarshal(req.Input, &one); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "input must be a string or an array of strings")
			return
		}
		inputs = []string{one}
	}
	cfg := s.Config()
	dims := req.Dimensions
	if dims <= 0 {
		dims = cfg.Dimensions
	}
	if dims <= 0 {
		dims = 8
	}
	if dims > 1<<16 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "dimensions too large")
		return
	}
	data := make([]any, len(inputs))
	for i, in := range inputs {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": Embedding(in, dims)}
	}
	n := words(inputs...)
	writeJSON(w, map[string]any{"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": n, "total_tokens": n}, "padding": strings.Repeat(" ", cfg.Oversize)})
}

// Embedding is the vector the server answers for text: dims numbers from
// SHA-256(text ‖ index), scaled to Euclidean norm 1.
func Embedding(text string, dims int) []float64 {
	v := make([]float64, dims)
	var norm float64
	for i := range v {
		var idx [4]byte
		binary.BigEndian.PutUint32(idx[:], uint32(i))
		h := sha256.Sum256(append([]byte(text), idx[:]...))
		v[i] = float64(int32(binary.BigEndian.Uint32(h[:4]))) / (1 << 31)
		norm += v[i] * v[i]
	}
	if norm = math.Sqrt(norm); norm > 0 {
		for i := range v {
			v[i] /= norm
		}
	}
	return v
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	names := s.Config().Models
	if len(names) == 0 {
		names = []string{"test-model"}
	}
	data := make([]any, len(names))
	for i, n := range names {
		data[i] = map[string]any{"id": n, "object": "model", "created": 0, "owned_by": "openaitest"}
	}
	writeJSON(w, map[string]any{"object": "list", "data": data})
}
