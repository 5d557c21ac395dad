package neuron

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

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

// SynapseCaller answers a custom synapse's request body with its answer
// body: for a text answer a JSON string, otherwise the JSON answer. The
// exec backend (backend.Exec) is one: the program gets {synapse, body}.
type SynapseCaller interface {
	Call(ctx context.Context, synapse string, body json.RawMessage) (json.RawMessage, error)
}

// customBackend is what answers a spec's custom synapses: the caller, if
// set, every one of them; otherwise the chatter (or, lacking one, the
// generator) those with a prompt, which it renders from the request and
// sends as the user message.
type customBackend struct {
	caller SynapseCaller
	chat   backend.Chatter
	gen    backend.Generator
}

// check says whether b can answer syn.
func (b customBackend) check(syn *subnet.Synapse) error {
	switch {
	case b.caller != nil:
		return nil
	case syn.Prompt == "":
		return fmt.Errorf("neuron: miner config: custom synapse %q has no prompt, so only an exec backend (a SynapseCaller) can answer it", syn.Name)
	case b.chat == nil && b.gen == nil:
		return fmt.Errorf("neuron: miner config: custom synapse %q needs a backend: an exec backend, or a Generator (an OpenAI-compatible model) for its prompt", syn.Name)
	}
	return nil
}

// errAnswerTooLarge stops a backend whose answer passes the synapse's
// MaxAnswerBytes.
var errAnswerTooLarge = errors.New("answer too large")

// customSynapse serves a spec's custom synapse syn with b. The request is
// bounded by syn.MaxRequestBytes and checked against its schema: a failure
// is BAD_REQUEST naming the failing path. The answer is bounded by
// syn.MaxAnswerBytes and checked against the answer schema (or as UTF-8
// text) before it is sent; one that fails is the miner's own failure,
// INTERNAL (counted and logged by the miner), never sent. A streamed
// synapse's text answer goes out as the model emits it, each chunk checked
// and counted against the bound (passing it ends the answer INTERNAL).
func customSynapse(syn *subnet.Synapse, b customBackend) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		if err := syn.ValidateRequest(r.Body); err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%s request %v", syn.Name, err)
		}
		if b.caller != nil {
			return answerFromCaller(ctx, syn, b.caller, r.Body, w)
		}
		return answerFromPrompt(ctx, syn, b, r.Body, w)
	})
}

// answerFromCaller asks the exec backend and sends its checked answer.
func answerFromCaller(ctx context.Context, syn *subnet.Synapse, c SynapseCaller, body []byte, w protocol.ResponseWriter) error {
	out, err := c.Call(ctx, syn.Name, body)
	if err != nil {
		return backendStatus(err)
	}
	answer := []byte(out)
	if syn.AnswerIsText() {
		var text string
		if err := json.Unmarshal(out, &text); err != nil {
			return fmt.Errorf("neuron: the backend's answer to %s is not a JSON string (a text answer): %w", syn.Name, err)
		}
		answer = []byte(text)
	} else {
		var compact bytes.Buffer
		if err := json.Compact(&compact, out); err != nil {
			return fmt.Errorf("neuron: the backend's answer to %s is not JSON: %w", syn.Name, err)
		}
		answer = compact.Bytes()
	}
	if err := syn.ValidateAnswer(answer); err != nil {
		return fmt.Errorf("neuron: the backend's answer to %s fails the synapse's answer: %w", syn.Name, err)
	}
	return w.Write(answer)
}

// answerFromPrompt renders the synapse's prompt from the request, asks the
// model and sends its reply: streamed as it comes if the synapse streams,
// else whole once checked. A JSON answer may come wrapped in a Markdown
// code fence, which is taken off.
func answerFromPrompt(ctx context.Context, syn *subnet.Synapse, b customBackend, body []byte, w protocol.ResponseWriter) error {
	prompt, err := syn.RenderPrompt(body)
	if err != nil {
		return protocol.Errorf(protocol.StatusBadRequest, "%s request %v", syn.Name, err)
	}
	max := syn.MaxAnswerBytes
	if max <= 0 {
		max = subnet.DefaultMaxAnswerBytes
	}
	stream := syn.Stream && syn.AnswerIsText()
	var buf []byte
	sent := 0
	emit := func(s string) error {
		if sent+len(buf)+len(s) > max {
			return errAnswerTooLarge
		}
		if !stream {
			buf = append(buf, s...)
			return nil
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("neuron: the model's answer to %s is not UTF-8 text", syn.Name)
		}
		sent += len(s)
		return w.Write([]byte(s))
	}
	var u backend.Usage
	if b.chat != nil {
		u, err = b.chat.Chat(ctx, backend.ChatRequest{Messages: []backend.ChatMessage{{Role: "user", Content: prompt}}}, emit)
	} else {
		err = b.gen.Generate(ctx, prompt, emit)
	}
	if u != (backend.Usage{}) {
		protocol.SetUsage(w, u.PromptTokens, u.CompletionTokens)
	}
	if errors.Is(err, errAnswerTooLarge) {
		return fmt.Errorf("neuron: the model's answer to %s passed max_answer_bytes %d", syn.Name, max)
	}
	if err != nil || stream {
		return backendStatus(err)
	}
	answer := buf
	if !syn.AnswerIsText() {
		answer = unfence(answer)
	}
	if err := syn.ValidateAnswer(answer); err != nil {
		return fmt.Errorf("neuron: the model's answer to %s fails the synapse's answer: %w", syn.Name, err)
	}
	if !syn.AnswerIsText() {
		var compact bytes.Buffer
		if json.Compact(&compact, answer) == nil {
			answer = compact.Bytes()
		}
	}
	return w.Write(answer)
}

// unfence takes a model's JSON reply out of a Markdown code fence
// ("```json … ```") and surrounding space.
func unfence(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if !bytes.HasPrefix(b, []byte("```")) || !bytes.HasSuffix(b, []byte("```")) || len(b) < 6 {
		return b
	}
	inner := b[3 : len(b)-3]
	if i := bytes.IndexByte(inner, '\n'); i >= 0 && !bytes.ContainsAny(inner[:i], "{[\"") {
		inner = inner[i+1:] // the fence's language tag
	}
	return bytes.TrimSpace(inner)
}
