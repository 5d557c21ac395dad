package backend

import (
	"context"
	"strings"
)

// The text.chat and text.embed bodies are decoded and checked by package
// subnet (protocol/SPEC.md §2.6), which uses this package's tokenizer, so
// the backends take these plain mirrors of them; the miner's handlers
// (package neuron) convert.

// ChatMessage is one message of a conversation.
type ChatMessage struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// ChatRequest is a conversation to answer with its sampling parameters.
// Optional numbers are nil when not given; MaxTokens 0 is the backend's
// default.
type ChatRequest struct {
	Messages    []ChatMessage
	MaxTokens   uint32
	Temperature *float64
	TopP        *float64
	Stop        []string
	Seed        *int64
}

// LastUser is the content of the last user message ("" if none).
func (r ChatRequest) LastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// Usage is what answering cost, in the model's tokens: the backend's own
// count, reported to the caller unsigned (SPEC §2.6). Zero values mean
// "not known".
type Usage struct {
	PromptTokens     uint32
	CompletionTokens uint32
}

// Chatter answers conversations, emitting the answer in chunks as it is
// produced.
type Chatter interface {
	Chat(ctx context.Context, req ChatRequest, emit func(string) error) (Usage, error)
}

// Embedder turns texts into vectors, one per text in order, each of
// dimensions numbers (0: the model's own length).
type Embedder interface {
	Embed(ctx context.Context, texts []string, dimensions int) ([][]float64, Usage, error)
}

// countWords counts runs of non-space characters, capped at the largest
// uint32: the retrieval backend's stand-in for a tokenizer.
func countWords(texts ...string) uint32 {
	var n uint64
	for _, t := range texts {
		n += uint64(len(strings.Fields(t)))
	}
	return uint32(min(n, 1<<32-1))
}
