package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cybertensor/cybertensor/subnet"
)

// This file holds OpenAI's wire types, as much of them as the gateway
// serves, and the decoders of API requests (untrusted bytes).

// apiError is an error answered in OpenAI's error JSON.
type apiError struct {
	status  int
	typ     string
	code    string
	param   string
	message string
	// retryAfter, if set, is sent as Retry-After (429).
	retryAfter time.Duration
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

// errorBody is OpenAI's error JSON.
type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) body() errorBody {
	b := errorBody{Error: errorObject{Message: e.message, Type: e.typ}}
	if e.param != "" {
		b.Error.Param = &e.param
	}
	if e.code != "" {
		b.Error.Code = &e.code
	}
	return b
}

func badRequest(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "invalid_request", param: param, message: fmt.Sprintf(format, args...)}
}

var (
	errUnauthorized = &apiError{status: http.StatusUnauthorized, typ: "authentication_error", code: "invalid_api_key",
		message: "missing or invalid API key: send it as \"Authorization: Bearer KEY\""}
	errMethod = &apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error", code: "method_not_allowed", message: "method not allowed"}
	errRoute  = &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "not_found", message: "no such endpoint"}
)

func tooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", code: "request_too_large",
		message: fmt.Sprintf("request body larger than %d bytes", limit)}
}

func unknownModel(model string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found", param: "model",
		message: fmt.Sprintf("the model %q does not exist here; GET /v1/models lists the models served", model)}
}

func overQuota(retry time.Duration) *apiError {
	return &apiError{status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "rate_limit_exceeded", retryAfter: retry,
		message: fmt.Sprintf("rate limit or quota of this API key reached; retry after %s", retryAfterValue(retry)+"s")}
}

func unavailable(format string, args ...any) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "no_miner_available", message: fmt.Sprintf(format, args...)}
}

func deadlinePassed(d time.Duration) *apiError {
	return &apiError{status: http.StatusGatewayTimeout, typ: "server_error", code: "timeout", message: fmt.Sprintf("no answer within the gateway's deadline of %v", d)}
}

// retryAfterValue is a Retry-After in whole seconds, at least 1.
func retryAfterValue(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// decodeJSON decodes exactly one JSON object from b into v (unknown
// members are ignored, as OpenAI-compatible servers do, so clients may
// send parameters a miner does not use).
func decodeJSON(b []byte, v any) *apiError {
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return badRequest("", "malformed JSON body: want one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return badRequest("", "malformed JSON body: %v", err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return badRequest("", "malformed JSON body: data after the object")
	}
	return nil
}

// streamOptions are OpenAI's stream_options.
type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatCompletionRequest is the part of OpenAI's chat completion request
// the gateway honours or refuses.
type chatCompletionRequest struct {
	Model               string           `json:"model"`
	Messages            []chatMessageIn  `json:"messages"`
	MaxTokens           *int64           `json:"max_tokens"`
	MaxCompletionTokens *int64           `json:"max_completion_tokens"`
	Temperature         *float64         `json:"temperature"`
	TopP                *float64         `json:"top_p"`
	Stop                json.RawMessage  `json:"stop"`
	Seed                *int64           `json:"seed"`
	Stream              bool             `json:"stream"`
	StreamOptions       *streamOptions   `json:"stream_options"`
	N                   *int64           `json:"n"`
	Tools               json.RawMessage  `json:"tools"`
	Logprobs            *bool            `json:"logprobs"`
	ResponseFormat      *json.RawMessage `json:"response_format"`
}

type chatMessageIn struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// contentPart is one part of a message's content given as an array.
type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// textParams is a text.chat request as the gateway forwards it.
type textParams struct {
	model         string
	req           subnet.ChatRequest
	stream        bool
	includeUsage  bool
	promptWords   int64
	completionAPI bool // /v1/completions rather than /v1/chat/completions
}

// decodeChatCompletion decodes and checks a chat completion request.
func decodeChatCompletion(b []byte) (textParams, *apiError) {
	var in chatCompletionRequest
	if e := decodeJSON(b, &in); e != nil {
		return textParams{}, e
	}
	if in.N != nil && *in.N != 1 {
		return textParams{}, badRequest("n", "n must be 1: one miner gives one answer")
	}
	if isSet(in.Tools) {
		return textParams{}, badRequest("tools", "tools are not supported")
	}
	if in.Logprobs != nil && *in.Logprobs {
		return textParams{}, badRequest("logprobs", "logprobs are not supported")
	}
	p := textParams{model: in.Model, stream: in.Stream, includeUsage: in.StreamOptions != nil && in.StreamOptions.IncludeUsage}
	if len(in.Messages) == 0 {
		return textParams{}, badRequest("messages", "messages must hold at least one message")
	}
	if len(in.Messages) > subnet.MaxChatMessages {
		return textParams{}, badRequest("messages", "at most %d messages", subnet.MaxChatMessages)
	}
	for i, m := range in.Messages {
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		text, e := messageText(m.Content, i)
		if e != nil {
			return textParams{}, e
		}
		p.req.Messages = append(p.req.Messages, subnet.ChatMessage{Role: role, Content: text})
		p.promptWords += countWords(text)
	}
	maxTokens := in.MaxCompletionTokens
	if maxTokens == nil {
		maxTokens = in.MaxTokens
	}
	if e := p.sampling(maxTokens, in.Temperature, in.TopP, in.Stop, in.Seed); e != nil {
		return textParams{}, e
	}
	return p, nil
}

// completionRequest is the part of OpenAI's legacy completion request
// the gateway honours or refuses.
type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	MaxTokens     *int64          `json:"max_tokens"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	Stop          json.RawMessage `json:"stop"`
	Seed          *int64          `json:"seed"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	N             *int64          `json:"n"`
	BestOf        *int64          `json:"best_of"`
	Echo          bool            `json:"echo"`
	Suffix        *string         `json:"suffix"`
	Logprobs      *int64          `json:"logprobs"`
}

// decodeCompletion decodes a completion request: its prompt becomes one
// user message.
func decodeCompletion(b []byte) (textParams, *apiError) {
	var in completionRequest
	if e := decodeJSON(b, &in); e != nil {
		return textParams{}, e
	}
	switch {
	case in.N != nil && *in.N != 1, in.BestOf != nil && *in.BestOf != 1:
		return textParams{}, badRequest("n", "n and best_of must be 1: one miner gives one answer")
	case in.Echo:
		return textParams{}, badRequest("echo", "echo is not supported")
	case in.Suffix != nil && *in.Suffix != "":
		return textParams{}, badRequest("suffix", "suffix is not supported")
	case in.Logprobs != nil:
		return textParams{}, badRequest("logprobs", "logprobs are not supported")
	}
	prompts, e := stringOrStrings(in.Prompt, "prompt")
	if e != nil {
		return textParams{}, e
	}
	if len(prompts) != 1 {
		return textParams{}, badRequest("prompt", "prompt must be one string (a batch of prompts is not supported)")
	}
	p := textParams{model: in.Model, stream: in.Stream, completionAPI: true,
		includeUsage: in.StreamOptions != nil && in.StreamOptions.IncludeUsage,
		promptWords:  countWords(prompts[0])}
	p.req.Messages = []subnet.ChatMessage{{Role: "user", Content: prompts[0]}}
	if e := p.sampling(in.MaxTokens, in.Temperature, in.TopP, in.Stop, in.Seed); e != nil {
		return textParams{}, e
	}
	return p, nil
}

// sampling sets and checks the sampling parameters.
func (p *textParams) sampling(maxTokens *int64, temperature, topP *float64, stop json.RawMessage, seed *int64) *apiError {
	if maxTokens != nil {
		if *maxTokens < 1 || *maxTokens > subnet.MaxChatMaxTokens {
			return badRequest("max_tokens", "max_tokens %d, want 1 to %d", *maxTokens, subnet.MaxChatMaxTokens)
		}
		p.req.MaxTokens = uint32(*maxTokens)
	}
	p.req.Temperature, p.req.TopP, p.req.Seed = temperature, topP, seed
	if isSet(stop) {
		s, e := stringOrStrings(stop, "stop")
		if e != nil {
			return e
		}
		p.req.Stop = s
	}
	if err := p.req.Check(); err != nil {
		return badRequest("", "%s", strings.TrimPrefix(err.Error(), subnet.ErrBadBody.Error()+": "))
	}
	return nil
}

// messageText is a message's content: a string, or an array of text
// parts (joined), or null.
func messageText(raw json.RawMessage, i int) (string, *apiError) {
	param := fmt.Sprintf("messages[%d].content", i)
	if !isSet(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", badRequest(param, "content must be a string or an array of text parts")
	}
	var b strings.Builder
	for j, pt := range parts {
		if pt.Type != "text" {
			return "", badRequest(param, "content part %d has type %q; only text is supported", j, pt.Type)
		}
		b.WriteString(pt.Text)
	}
	return b.String(), nil
}

// stringOrStrings decodes a member that is a string or an array of
// strings.
func stringOrStrings(raw json.RawMessage, param string) ([]string, *apiError) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badRequest(param, "%s must be a string or an array of strings", param)
	}
	return list, nil
}

// isSet reports whether a raw member was given and is not null.
func isSet(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// embeddingRequest is OpenAI's embedding request.
type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     *int64          `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

// embedParams is a text.embed request as the gateway forwards it.
type embedParams struct {
	model       string
	req         subnet.EmbedRequest
	base64      bool
	promptWords int64
}

// decodeEmbedding decodes and checks an embedding request.
func decodeEmbedding(b []byte) (embedParams, *apiError) {
	var in embeddingRequest
	if e := decodeJSON(b, &in); e != nil {
		return embedParams{}, e
	}
	p := embedParams{model: in.Model}
	switch in.EncodingFormat {
	case "", "float":
	case "base64":
		p.base64 = true
	default:
		return embedParams{}, badRequest("encoding_format", "encoding_format %q, want float or base64", in.EncodingFormat)
	}
	inputs, e := stringOrStrings(in.Input, "input")
	if e != nil {
		return embedParams{}, badRequest("input", "input must be a string or an array of strings (token arrays are not supported)")
	}
	p.req.Input = inputs
	if in.Dimensions != nil {
		if *in.Dimensions < 1 || *in.Dimensions > subnet.MaxEmbedDimensions {
			return embedParams{}, badRequest("dimensions", "dimensions %d, want 1 to %d", *in.Dimensions, subnet.MaxEmbedDimensions)
		}
		p.req.Dimensions = uint32(*in.Dimensions)
	}
	if err := p.req.Check(); err != nil {
		return embedParams{}, badRequest("input", "%s", strings.TrimPrefix(err.Error(), subnet.ErrBadBody.Error()+": "))
	}
	for _, s := range inputs {
		p.promptWords += countWords(s)
	}
	return p, nil
}

// countWords counts whitespace-separated words: the gateway's token
// count where a miner reports none.
func countWords(s string) int64 {
	var w wordCounter
	w.feed(s)
	return w.n
}

// wordCounter counts words across chunks of text.
type wordCounter struct {
	n      int64
	inWord bool
}

func (w *wordCounter) feed(s string) {
	for _, r := range s {
		space := r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0xA0 ||
			(r > 0xff && strings.ContainsRune("\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000", r))
		if !space && !w.inWord {
			w.n++
		}
		w.inWord = !space
	}
}

// utf8Joiner passes on text chunks cut at rune boundaries: a rune split
// between two chunks of a miner's answer is held until it is whole.
type utf8Joiner struct {
	held []byte
}

var errInvalidUTF8 = errors.New("the miner's answer is not UTF-8")

// push returns the text of b (with what was held) up to its last whole
// rune, holding the rest.
func (j *utf8Joiner) push(b []byte) (string, error) {
	buf := append(j.held, b...)
	cut := len(buf)
	// At most utf8.UTFMax-1 bytes of an incomplete rune at the end.
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(buf[:cut]) {
		return "", errInvalidUTF8
	}
	s := string(buf[:cut])
	j.held = append(j.held[:0], buf[cut:]...)
	return s, nil
}

// end reports an error if an incomplete rune is held.
func (j *utf8Joiner) end() error {
	if len(j.held) > 0 {
		return errInvalidUTF8
	}
	return nil
}

// Responses.

type usageOut struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   usageOut     `json:"usage"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      chatMessageOut  `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

type chatMessageOut struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usageOut     `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int             `json:"index"`
	Delta        *chunkDelta     `json:"delta,omitempty"`
	Text         *string         `json:"text,omitempty"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

type chunkDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type textCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []textChoice `json:"choices"`
	Usage   usageOut     `json:"usage"`
}

type textChoice struct {
	Index        int             `json:"index"`
	Text         string          `json:"text"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

type embeddingList struct {
	Object string          `json:"object"`
	Data   []embeddingItem `json:"data"`
	Model  string          `json:"model"`
	Usage  embedUsage      `json:"usage"`
}

type embeddingItem struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float64, or a base64 string
}

type embedUsage struct {
	PromptTokens int64 `json:"prompt_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

type modelList struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

var jsonNull = json.RawMessage("null")
