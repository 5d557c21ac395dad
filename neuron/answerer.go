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

// BackendAnswerer answers a spec's tasks in process, as a miner with the
// same backends would: with the very handlers a miner serves the spec's
// synapses with (request checked against its schema, answer bounded and
// checked). It is the validator's own backend for reference judges
// (ValidatorConfig.Reference).
type BackendAnswerer struct {
	handlers map[string]protocol.Handler
}

// NewBackendAnswerer answers spec's text synapses (text.generate,
// text.chat, text.embed) and custom synapses with g, as SpecMinerConfig's
// miner would; the other built-ins (storage.prove, compute.run) have no
// reference answer and are left out.
func NewBackendAnswerer(spec *subnet.Spec, g backend.Generator) (*BackendAnswerer, error) {
	cfg := SpecMinerConfig(0, spec, g)
	cfg.Synapses = nil
	for _, name := range spec.SynapseNames() {
		if name != "storage.prove" && name != "compute.run" {
			cfg.Synapses = append(cfg.Synapses, name)
		}
	}
	if len(cfg.Synapses) == 0 {
		return nil, errors.New("neuron: the spec has no synapse a backend answers")
	}
	h, _, err := synapseHandlers(cfg, func() *knowledge.Library { return nil })
	if err != nil {
		return nil, err
	}
	return &BackendAnswerer{handlers: h}, nil
}

// maxReferenceAnswer bounds a reference answer (a synapse's own bound is
// checked by its handler).
const maxReferenceAnswer = subnet.MaxSynapseAnswerBytes

// Answer answers one request of synapse: the answer a miner would send
// (text, or JSON), or the error it would answer with.
func (a *BackendAnswerer) Answer(ctx context.Context, synapse string, request []byte) ([]byte, error) {
	h, ok := a.handlers[synapse]
	if !ok {
		return nil, fmt.Errorf("neuron: the reference backend does not answer %q", synapse)
	}
	w := &boundedAnswer{max: maxReferenceAnswer}
	if err := h.Serve(ctx, &protocol.Request{Synapse: synapse, Body: request}, w); err != nil {
		return nil, fmt.Errorf("neuron: the reference backend's answer to %s: %w", synapse, err)
	}
	return w.b, nil
}

// boundedAnswer collects an answer's chunks, up to max bytes.
type boundedAnswer struct {
	b   []byte
	max int
}

func (w *boundedAnswer) Write(chunk []byte) error {
	if len(w.b)+len(chunk) > w.max {
		return fmt.Errorf("an answer over %d bytes", w.max)
	}
	w.b = append(w.b, chunk...)
	return nil
}

// EmbedderOf adapts a backend's embeddings to what reference judges that
// compare embeddings take (ValidatorConfig.ReferenceEmbedder): the
// model's own dimensions, as float32.
type EmbedderOf struct{ backend.Embedder }

// Embed embeds texts, one vector per text in order.
func (e EmbedderOf) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	vecs, _, err := e.Embedder.Embed(ctx, texts, 0)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(vecs))
	for i, v := range vecs {
		out[i] = make([]float32, len(v))
		for j, x := range v {
			out[i][j] = float32(x)
		}
	}
	return out, nil
}
