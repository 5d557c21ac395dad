package subnet

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// The synapses an OpenAI-compatible gateway serves (protocol/SPEC.md §2.6).
const (
	// SynapseChat answers a conversation: request ChatRequest, answer
	// UTF-8 text streamed in chunks as it is produced.
	SynapseChat = "text.chat"
	// SynapseEmbed embeds texts: request EmbedRequest, answer EmbedAnswer.
	SynapseEmbed = "text.embed"
)

// Bounds of text.chat and text.embed bodies.
const (
	MaxChatBody        = 1 << 20 // the query protocol's request limit
	MaxChatMessages    = 256
	MaxChatMaxTokens   = 1 << 20
	MaxChatStops       = 4
	MaxChatStopLen     = 256
	MaxEmbedInputs     = 256
	MaxEmbedInputLen   = 64 << 10
	MaxEmbedDimensions = 8192
	// MaxEmbedAnswer bounds an embedding answer: 256 vectors of 8,192
	// numbers written in JSON fit.
	MaxEmbedAnswer = 32 << 20
)

// ChatRoles are the roles a chat message may have.
var ChatRoles = []string{"system", "user", "assistant"}

// ChatMessage is one message of a conversation.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is a text.chat request body: OpenAI's chat completion
// parameters that a model server honours. Optional numbers are pointers so
// "not given" differs from 0.
type ChatRequest struct {
	Messages    []ChatMessage `json:"messages"`
	MaxTokens   uint32        `json:"max_tokens,omitempty"`
	Temperature *float64      `json:"temperature,omitempty"`
	TopP        *float64      `json:"top_p,omitempty"`
	Stop        []string      `json:"stop,omitempty"`
	Seed        *int64        `json:"seed,omitempty"`
}

// DecodeChatRequest decodes and checks a text.chat request body: at most
// MaxChatBody bytes of JSON with no unknown members; 1 to MaxChatMessages
// messages, each with a role of ChatRoles and UTF-8 content; max_tokens
// at most MaxChatMaxTokens (0: the miner's default); temperature in
// [0, 2]; top_p in [0, 1]; at most MaxChatStops stop sequences of 1 to
// MaxChatStopLen bytes. Errors wrap ErrBadBody.
func DecodeChatRequest(b []byte) (ChatRequest, error) {
	var r ChatRequest
	if err := decodeBody(b, MaxChatBody, &r); err != nil {
		return ChatRequest{}, err
	}
	if err := r.Check(); err != nil {
		return ChatRequest{}, err
	}
	return r, nil
}

// Check reports the first bound r breaks, wrapping ErrBadBody.
func (r ChatRequest) Check() error {
	if len(r.Messages) == 0 || len(r.Messages) > MaxChatMessages {
		return fmt.Errorf("%w: %d messages, want 1 to %d", ErrBadBody, len(r.Messages), MaxChatMessages)
	}
	for i, m := range r.Messages {
		known := false
		for _, role := range ChatRoles {
			known = known || m.Role == role
		}
		if !known {
			return fmt.Errorf("%w: messages[%d].role %q, want system, user or assistant", ErrBadBody, i, m.Role)
		}
		if !utf8.ValidString(m.Content) {
			return fmt.Errorf("%w: messages[%d].content is not UTF-8", ErrBadBody, i)
		}
	}
	if r.MaxTokens > MaxChatMaxTokens {
		return fmt.Errorf("%w: max_tokens %d, at most %d", ErrBadBody, r.MaxTokens, MaxChatMaxTokens)
	}
	if t := r.Temperature; t != nil && !(*t >= 0 && *t <= 2) {
		return fmt.Errorf("%w: temperature %v, want 0 to 2", ErrBadBody, *t)
	}
	if p := r.TopP; p != nil && !(*p >= 0 && *p <= 1) {
		return fmt.Errorf("%w: top_p %v, want 0 to 1", ErrBadBody, *p)
	}
	if len(r.Stop) > MaxChatStops {
		return fmt.Errorf("%w: %d stop sequences, at most %d", ErrBadBody, len(r.Stop), MaxChatStops)
	}
	for i, s := range r.Stop {
		if len(s) == 0 || len(s) > MaxChatStopLen || !utf8.ValidString(s) {
			return fmt.Errorf("%w: stop[%d] must be 1 to %d bytes of UTF-8", ErrBadBody, i, MaxChatStopLen)
		}
	}
	return nil
}

// Encode is the request body.
func (r ChatRequest) Encode() []byte { return encodeBody(r) }

// EmbedRequest is a text.embed request body.
type EmbedRequest struct {
	Input []string `json:"input"`
	// Dimensions asks for vectors of this length (0: the model's own).
	Dimensions uint32 `json:"dimensions,omitempty"`
}

// DecodeEmbedRequest decodes and checks a text.embed request body: 1 to
// MaxEmbedInputs inputs of at most MaxEmbedInputLen bytes of UTF-8 each,
// dimensions at most MaxEmbedDimensions. Errors wrap ErrBadBody.
func DecodeEmbedRequest(b []byte) (EmbedRequest, error) {
	var r EmbedRequest
	if err := decodeBody(b, MaxChatBody, &r); err != nil {
		return EmbedRequest{}, err
	}
	if err := r.Check(); err != nil {
		return EmbedRequest{}, err
	}
	return r, nil
}

// Check reports the first bound r breaks, wrapping ErrBadBody.
func (r EmbedRequest) Check() error {
	if len(r.Input) == 0 || len(r.Input) > MaxEmbedInputs {
		return fmt.Errorf("%w: %d inputs, want 1 to %d", ErrBadBody, len(r.Input), MaxEmbedInputs)
	}
	for i, in := range r.Input {
		if len(in) > MaxEmbedInputLen || !utf8.ValidString(in) {
			return fmt.Errorf("%w: input[%d] must be at most %d bytes of UTF-8", ErrBadBody, i, MaxEmbedInputLen)
		}
	}
	if r.Dimensions > MaxEmbedDimensions {
		return fmt.Errorf("%w: dimensions %d, at most %d", ErrBadBody, r.Dimensions, MaxEmbedDimensions)
	}
	return nil
}

// Encode is the request body.
func (r EmbedRequest) Encode() []byte { return encodeBody(r) }

// EmbedAnswer is a text.embed answer: one vector per input, in order.
type EmbedAnswer struct {
	Embeddings [][]float64 `json:"embeddings"`
}

// DecodeEmbedAnswer decodes and checks a text.embed answer to req: at
// most MaxEmbedAnswer bytes, one vector per input, all of one length of 1
// to MaxEmbedDimensions (req.Dimensions if it asked), finite numbers.
// Errors wrap ErrBadBody.
func DecodeEmbedAnswer(b []byte, req EmbedRequest) (EmbedAnswer, error) {
	var a EmbedAnswer
	if err := decodeBody(b, MaxEmbedAnswer, &a); err != nil {
		return EmbedAnswer{}, err
	}
	if err := a.Check(req); err != nil {
		return EmbedAnswer{}, err
	}
	return a, nil
}

// Check reports the first rule a breaks as an answer to req (one vector
// per input, all of one length of 1 to MaxEmbedDimensions, req.Dimensions
// if it asked, finite numbers), wrapping ErrBadBody.
func (a EmbedAnswer) Check(req EmbedRequest) error {
	if len(a.Embeddings) != len(req.Input) {
		return fmt.Errorf("%w: %d embeddings for %d inputs", ErrBadBody, len(a.Embeddings), len(req.Input))
	}
	for i, v := range a.Embeddings {
		if len(v) == 0 || len(v) > MaxEmbedDimensions || len(v) != len(a.Embeddings[0]) {
			return fmt.Errorf("%w: embedding %d has %d numbers; all must have the same 1 to %d", ErrBadBody, i, len(v), MaxEmbedDimensions)
		}
		if req.Dimensions != 0 && len(v) != int(req.Dimensions) {
			return fmt.Errorf("%w: embedding %d has %d numbers, %d asked", ErrBadBody, i, len(v), req.Dimensions)
		}
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%w: embedding %d holds a number that is not finite", ErrBadBody, i)
			}
		}
	}
	return nil
}

// Encode is the answer body.
func (a EmbedAnswer) Encode() []byte { return encodeBody(a) }
