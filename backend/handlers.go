package backend

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/cybertensor/cybertensor/protocol"
)

// Generator produces text for a prompt, emitting it in chunks.
type Generator interface {
	Generate(ctx context.Context, prompt string, emit func(string) error) error
}

// maxPrompt bounds a prompt.
const maxPrompt = 256 << 10

// TextGenerate serves the "text.generate" synapse: the body is
// {"prompt": "..."}; the answer is UTF-8 text streamed as it is produced.
func TextGenerate(g Generator) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		var in struct {
			Prompt string `json:"prompt"`
		}
		if err := json.Unmarshal(r.Body, &in); err != nil || in.Prompt == "" || len(in.Prompt) > maxPrompt {
			return protocol.Errorf(protocol.StatusBadRequest, `body must be {"prompt": "..."} with a prompt of 1 to %d bytes`, maxPrompt)
		}
		err := g.Generate(ctx, in.Prompt, func(s string) error { return w.Write([]byte(s)) })
		if errors.Is(err, ErrNoAnswer) {
			return protocol.Errorf(protocol.StatusNotFound, "%v", err)
		}
		return err
	})
}
