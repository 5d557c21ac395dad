package subnet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Task is one query a validator sends to miners and what it needs to score
// the answers: a question whose answer it knows (text.generate), a storage
// challenge whose proof it computed from its own copy (storage.prove), or a
// compute job whose result it checks cheaply (compute.run). Tasks are made
// by TextTask, StorageTask and Generator, as pure functions of their
// inputs and a random source.
type Task struct {
	// Synapse the task goes to, and the request body.
	Synapse string
	Body    []byte
	// Expected is the answer the validator knows, if any: the reward's
	// expected.
	Expected string
	// Work is the task's size: the reward's work.
	Work float64
	// Request is the request as a map (v2 tasks from task lines): the
	// reward's task.
	Request map[string]any
	// ExpectedJSON is the expected value as JSON (v2 tasks), the
	// reward's expected_json; Expected is its text (a JSON string's text,
	// else the compact JSON).
	ExpectedJSON json.RawMessage
	// Meta is the task line's meta, passed to judges untouched.
	Meta json.RawMessage
	// Check, if set, checks an OK answer (a proof, a computed result):
	// the reward's valid is whether it returned nil. Without it every OK
	// answer is valid. It must not panic on any answer.
	Check func(answer []byte) error
}

// Response is what the reward sees of a miner's answer to t, given the
// response status by name ("ok", "timeout", …; see protocol.Status).
func (t Task) Response(status string, answer []byte, latency, timeout time.Duration) Response {
	return Response{
		Answer: string(answer), Expected: t.Expected, Status: status,
		LatencyMS: float64(latency) / float64(time.Millisecond), TimeoutMS: float64(timeout) / float64(time.Millisecond),
		Valid: status == "ok" && (t.Check == nil || t.Check(answer) == nil),
		Work:  t.Work,
		Task:  t.Request, ExpectedJSON: answerJSON(t.ExpectedJSON),
	}
}

// decodeJSONValue decodes exactly one JSON value (numbers as float64).
func decodeJSONValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// TextTask is a question for text.generate whose answer is known: the body
// is {"prompt": prompt}; the answer is the reward's expected.
func TextTask(prompt, answer string) Task {
	body, _ := json.Marshal(struct {
		Prompt string `json:"prompt"`
	}{prompt})
	return Task{Synapse: "text.generate", Body: body, Expected: answer}
}

// Hex is bytes written in JSON as a lower-case hex string.
type Hex []byte

// MarshalText implements encoding.TextMarshaler.
func (h Hex) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h)
	return out, nil
}

// String is the hex text.
func (h Hex) String() string { return hex.EncodeToString(h) }

// UnmarshalText implements encoding.TextUnmarshaler (either case).
func (h *Hex) UnmarshalText(b []byte) error {
	out := make([]byte, hex.DecodedLen(len(b)))
	if _, err := hex.Decode(out, b); err != nil {
		return fmt.Errorf("not hex: %w", err)
	}
	*h = out
	return nil
}

// ErrBadBody is wrapped by every error decoding a synapse body.
var ErrBadBody = errors.New("subnet: invalid body")

// decodeBody strictly decodes one JSON object of at most max bytes into v:
// unknown fields and trailing data are errors.
func decodeBody(b []byte, max int, v any) error {
	if len(b) > max {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadBody, len(b), max)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadBody, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrBadBody)
	}
	return nil
}

// encodeBody is json.Marshal for bodies that always encode.
func encodeBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("subnet: encoding %T: %v", v, err)) // only our own fixed types reach here
	}
	return b
}
