package neuron

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/backend/openaitest"
	"github.com/cybertensor/cybertensor/judge"
)

var (
	_ judge.Answerer = (*BackendAnswerer)(nil)
	_ judge.Embedder = EmbedderOf{}
)

// A validator's reference backend answers a spec's tasks as a miner with
// that backend would: the custom synapse's prompt to the model, its
// request and answer checked; embeddings as float32.
func TestBackendAnswerer(t *testing.T) {
	spec := parseCustomSpec(t)
	up := openaitest.New(openaitest.Config{Dimensions: 4, Reply: func(r openaitest.ChatRequest) string {
		if strings.HasPrefix(r.Messages[0].Content, "Title of: ") {
			return `{"title": "T"}`
		}
		return "a summary"
	}})
	defer up.Close()
	oa, err := backend.NewOpenAI(backend.OpenAIConfig{BaseURL: up.URL, Model: "m", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer oa.Close()
	a, err := NewBackendAnswerer(spec, oa)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct{ synapse, request, want, err string }{
		{"summarize.v1", `{"text": "a long text"}`, "a summary", ""},
		{"extract.v1", `{"text": "a long text"}`, `{"title":"T"}`, ""},
		{"summarize.v1", `{"text": 3}`, "", "/text"},
		{"text.generate", `{"prompt": "x"}`, "", `does not answer "text.generate"`},
	} {
		got, err := a.Answer(ctx, tc.synapse, []byte(tc.request))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: %q, %v; want an error with %q", tc.synapse, tc.request, got, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%s %s: %q, %v; want %q", tc.synapse, tc.request, got, err, tc.want)
		}
	}
	vecs, err := EmbedderOf{oa}.Embed(ctx, []string{"x", "y"})
	if err != nil || len(vecs) != 2 || len(vecs[0]) != 4 || vecs[1][0] != float32(openaitest.Embedding("y", 4)[0]) {
		t.Fatalf("embeddings %v, %v", vecs, err)
	}
}
