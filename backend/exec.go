package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cybertensor/cybertensor/hook"
)

// Exec runs a subprocess that answers requests as JSON lines: each request
// is one line {"id": N, "synapse": "...", "body": <json>} on its stdin, and
// each answer one line {"id": N, "body": <json>} or {"id": N, "error":
// "..."} on its stdout. The process is supervised by package hook: a call
// that outlasts its context (or ExecConfig's Limits.Timeout) fails alone —
// the process, which cannot be trusted to stay in step, is killed and a
// new one serves the next call; a process that crashes is restarted after
// a backoff; an answer with another id is refused and the process
// replaced; its stderr goes to the log under the hook's name. With the
// default configuration one process serves one call at a time (a model
// server loaded once).
type Exec struct {
	h      *hook.Exec
	nextID atomic.Uint64
}

// ExecMessage is one line of the exec protocol.
type ExecMessage struct {
	ID      uint64          `json:"id"`
	Synapse string          `json:"synapse,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// maxExecLine bounds one answer line; maxExecError the text of an error
// answer passed on.
const (
	maxExecLine  = 16 << 20
	maxExecError = 1024
)

// DefaultExecConfig is the supervision of StartExec's subprocess: hook
// name "backend", this process's whole environment (the miner's own
// program may need its keys), no CPU or memory limit (a model server may
// need all of both), 16 MiB per answer line, 2 minutes per call at most
// (the query's deadline is usually shorter), one process, restarts after
// 100 ms to 30 s, logging to slog.Default().
func DefaultExecConfig(command ...string) hook.ExecConfig {
	cfg := hook.DefaultExecConfig("backend", command...)
	cfg.Env = os.Environ()
	cfg.Limits = hook.Limits{Timeout: 2 * time.Minute, MaxOutput: maxExecLine, Concurrency: 1}
	return cfg
}

// StartExec checks the program (it must exist and be executable) and
// returns the backend with DefaultExecConfig; the subprocess starts with
// the first call.
func StartExec(name string, args ...string) (*Exec, error) {
	return NewExec(DefaultExecConfig(append([]string{name}, args...)...))
}

// NewExec returns the backend with cfg (its CheckReply is set to the
// protocol's id check).
func NewExec(cfg hook.ExecConfig) (*Exec, error) {
	cfg.CheckReply = checkExecReply
	h, err := hook.StartExec(cfg)
	if err != nil {
		return nil, fmt.Errorf("backend: exec: %w", err)
	}
	return &Exec{h: h}, nil
}

// checkExecReply refuses an answer line that is not an ExecMessage for
// the request's id.
func checkExecReply(request, reply []byte) error {
	var req, ans struct {
		ID *uint64 `json:"id"`
	}
	if err := json.Unmarshal(request, &req); err != nil || req.ID == nil {
		return fmt.Errorf("request without an id")
	}
	if err := json.Unmarshal(reply, &ans); err != nil {
		return fmt.Errorf("the answer is not an exec message: %w", err)
	}
	if ans.ID == nil {
		return fmt.Errorf("the answer has no id")
	}
	if *ans.ID != *req.ID {
		return fmt.Errorf("answer for request %d, expected %d", *ans.ID, *req.ID)
	}
	return nil
}

// ErrExecClosed is returned after Close.
var ErrExecClosed = errors.New("backend: exec backend closed")

// Call sends one request and waits for its answer. Failures of the
// subprocess wrap ErrUpstream and the hook's error (hook.ErrFailed and its
// kind); one that does not answer in time wraps ErrUpstreamTimeout; after
// Close, ErrExecClosed. An answer with an error is returned as an error
// with its text.
func (e *Exec) Call(ctx context.Context, synapse string, body json.RawMessage) (json.RawMessage, error) {
	id := e.nextID.Add(1)
	line, err := json.Marshal(ExecMessage{ID: id, Synapse: synapse, Body: body})
	if err != nil {
		return nil, fmt.Errorf("backend: exec request: %w", err)
	}
	reply, err := e.h.Call(ctx, line)
	switch {
	case err == nil:
	case errors.Is(err, hook.ErrClosed):
		return nil, fmt.Errorf("%w: %w", ErrExecClosed, err)
	case errors.Is(err, hook.ErrTimeout):
		return nil, fmt.Errorf("%w: %w", ErrUpstreamTimeout, err)
	case errors.Is(err, hook.ErrFailed):
		return nil, fmt.Errorf("%w: %w", ErrUpstream, err)
	default:
		return nil, fmt.Errorf("backend: exec: %w", err)
	}
	var msg ExecMessage
	if err := json.Unmarshal(reply, &msg); err != nil {
		return nil, fmt.Errorf("%w: malformed answer line: %w", ErrUpstream, err)
	}
	if msg.Error != "" {
		text := msg.Error
		if len(text) > maxExecError {
			text = strings.ToValidUTF8(text[:maxExecError], "") + "…"
		}
		return nil, fmt.Errorf("backend: %s", text)
	}
	return msg.Body, nil
}

// Generate implements Generator: it sends {"prompt": prompt} and expects a
// JSON string back.
func (e *Exec) Generate(ctx context.Context, prompt string, emit func(string) error) error {
	body, _ := json.Marshal(map[string]string{"prompt": prompt})
	out, err := e.Call(ctx, "text.generate", body)
	if err != nil {
		return err
	}
	var text string
	if err := json.Unmarshal(out, &text); err != nil {
		return fmt.Errorf("backend: text.generate answer is not a JSON string: %w", err)
	}
	return emit(text)
}

// Close ends the subprocess (its whole process group) and waits for it.
func (e *Exec) Close() error {
	return e.h.Close()
}
