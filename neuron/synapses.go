package neuron

import (
	"context"
	"errors"
	"fmt"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
)

// storageProve serves "storage.prove" from the library lib returns (nil
// until it is open): the proof of holding the challenged bytes, from the
// local store only — a miner that does not hold the object answers
// NOT_FOUND rather than fetch it (from the validator that asks, likely).
func storageProve(lib func() *knowledge.Library) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		ch, err := subnet.DecodeStorageChallenge(r.Body)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		l := lib()
		if l == nil {
			return protocol.Errorf(protocol.StatusNotFound, "no knowledge library open yet")
		}
		c, err := knowledge.ParseCID(ch.CID)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		data, err := l.ReadRange(ctx, c, ch.Offset, ch.Length)
		switch {
		case errors.Is(err, knowledge.ErrNotFound):
			return protocol.Errorf(protocol.StatusNotFound, "%v", err)
		case errors.Is(err, knowledge.ErrOutOfRange):
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		case err != nil:
			return err
		}
		return w.Write(ch.Prove(data).Encode())
	})
}

// computeRun serves "compute.run": it does the job until it is done or
// the request's deadline passes.
func computeRun() protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		job, err := subnet.DecodeComputeJob(r.Body)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		res, err := job.Solve(ctx)
		if err != nil {
			return err
		}
		return w.Write(res.Encode())
	})
}

// textChat serves "text.chat" (SPEC §2.6) with c: the answer streamed as
// c emits it, usage on the last frame when c knows it. A body that fails
// subnet's checks is BAD_REQUEST; no answer is NOT_FOUND; the model
// server not answering in time is TIMEOUT; its other failures INTERNAL.
func textChat(c backend.Chatter) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		req, err := subnet.DecodeChatRequest(r.Body)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		breq := backend.ChatRequest{MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, Stop: req.Stop, Seed: req.Seed,
			Messages: make([]backend.ChatMessage, len(req.Messages))}
		for i, m := range req.Messages {
			breq.Messages[i] = backend.ChatMessage{Role: m.Role, Content: m.Content}
		}
		u, err := c.Chat(ctx, breq, func(s string) error { return w.Write([]byte(s)) })
		if u != (backend.Usage{}) {
			protocol.SetUsage(w, u.PromptTokens, u.CompletionTokens)
		}
		return backendStatus(err)
	})
}

// textEmbed serves "text.embed" (SPEC §2.6) with e; an answer of e that
// breaks the rules (count, length, size) is INTERNAL, never sent.
func textEmbed(e backend.Embedder) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		req, err := subnet.DecodeEmbedRequest(r.Body)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		vecs, u, err := e.Embed(ctx, req.Input, int(req.Dimensions))
		if err != nil {
			return backendStatus(err)
		}
		ans := subnet.EmbedAnswer{Embeddings: vecs}
		if err := ans.Check(req); err != nil {
			return fmt.Errorf("neuron: the embedding backend's answer: %w", err)
		}
		b := ans.Encode()
		if len(b) > subnet.MaxEmbedAnswer {
			return fmt.Errorf("neuron: the embedding backend's answer is %d bytes, over %d", len(b), subnet.MaxEmbedAnswer)
		}
		if u != (backend.Usage{}) {
			protocol.SetUsage(w, u.PromptTokens, u.CompletionTokens)
		}
		return w.Write(b)
	})
}

// backendStatus turns a backend's error into the handler's: no answer is
// NOT_FOUND, the model server's timeout TIMEOUT, anything else INTERNAL.
func backendStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, backend.ErrNoAnswer):
		return protocol.Errorf(protocol.StatusNotFound, "%v", err)
	case errors.Is(err, backend.ErrUpstreamTimeout):
		return protocol.Errorf(protocol.StatusTimeout, "%v", err)
	}
	return err
}
