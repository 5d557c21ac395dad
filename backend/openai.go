package backend

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
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
	// APIKey, if set, is sent as a bearer token.
	APIKey string
	// Timeout bounds one call.
	Timeout time.Duration
	// MaxResponse bounds what is read from the server.
	MaxResponse int64
}

// OpenAI talks to an OpenAI-compatible server.
type OpenAI struct {
	cfg    OpenAIConfig
	client *http.Client
}

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
	if cfg.EmbeddingModel == "" {
		cfg.EmbeddingModel = cfg.Model
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &OpenAI{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}}, nil
}

// Close releases idle connections.
func (o *OpenAI) Close() { o.client.CloseIdleConnections() }

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
	if o.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("backend: %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("backend: %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// Generate asks /v1/chat/completions with streaming and passes each token
// (content delta) to emit as it arrives.
func (o *OpenAI) Generate(ctx context.Context, prompt string, emit func(string) error) error {
	resp, err := o.post(ctx, "/v1/chat/completions", map[string]any{
		"model": o.cfg.Model, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": prompt}},
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, o.cfg.MaxResponse))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue // SSE comments, event names, keep-alives
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			return nil
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return fmt.Errorf("backend: malformed stream chunk: %w", err)
		}
		if chunk.Error != nil {
			return fmt.Errorf("backend: server error: %s", chunk.Error.Message)
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != "" {
				if err := emit(c.Delta.Content); err != nil {
					return err
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("backend: reading the stream: %w", err)
	}
	return errors.New("backend: stream ended without [DONE]")
}

// Embed asks /v1/embeddings for one vector per text.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float64, error) {
	resp, err := o.post(ctx, "/v1/embeddings", map[string]any{"model": o.cfg.EmbeddingModel, "input": texts})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, o.cfg.MaxResponse)).Decode(&out); err != nil {
		return nil, fmt.Errorf("backend: embeddings: %w", err)
	}
	vecs := make([][]float64, len(texts))
	for _, d := range out.Data {
		if d.Index < 0 || d.Index >= len(texts) {
			return nil, fmt.Errorf("backend: embeddings: index %d out of range", d.Index)
		}
		vecs[d.Index] = d.Embedding
	}
	for i, v := range vecs {
		if v == nil {
			return nil, fmt.Errorf("backend: embeddings: none for input %d", i)
		}
	}
	return vecs, nil
}
