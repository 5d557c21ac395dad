package backend

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
)

// Exec runs a subprocess that answers requests as JSON lines: each request
// is one line {"id": N, "synapse": "...", "body": <json>} on its stdin, and
// each answer one line {"id": N, "body": <json>} or {"id": N, "error":
// "..."} on its stdout. Calls are serialized.
type Exec struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	mu     sync.Mutex
	nextID uint64
	closed bool
}

// ExecMessage is one line of the exec protocol.
type ExecMessage struct {
	ID      uint64          `json:"id"`
	Synapse string          `json:"synapse,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// maxExecLine bounds one answer line.
const maxExecLine = 16 << 20

// StartExec starts the subprocess.
func StartExec(name string, args ...string) (*Exec, error) {
	cmd := exec.Command(name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("backend: starting %s: %w", name, err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), maxExecLine)
	return &Exec{cmd: cmd, stdin: stdin, out: sc}, nil
}

// ErrExecClosed is returned after Close or after the subprocess died.
var ErrExecClosed = errors.New("backend: exec backend closed")

// Call sends one request and waits for its answer. A context that ends
// kills the subprocess (it cannot be trusted to stay in step after an
// abandoned request).
func (e *Exec) Call(ctx context.Context, synapse string, body json.RawMessage) (json.RawMessage, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrExecClosed
	}
	e.nextID++
	id := e.nextID
	line, err := json.Marshal(ExecMessage{ID: id, Synapse: synapse, Body: body})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { e.cmd.Process.Kill() })
	defer stop()
	if _, err := e.stdin.Write(append(line, '\n')); err != nil {
		e.closeLocked()
		return nil, fmt.Errorf("%w: writing: %v", ErrExecClosed, err)
	}
	if !e.out.Scan() {
		e.closeLocked()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrExecClosed, e.out.Err())
	}
	var msg ExecMessage
	if err := json.Unmarshal(e.out.Bytes(), &msg); err != nil {
		return nil, fmt.Errorf("backend: malformed answer line: %w", err)
	}
	if msg.ID != id {
		e.closeLocked()
		return nil, fmt.Errorf("backend: answer for request %d, expected %d", msg.ID, id)
	}
	if msg.Error != "" {
		return nil, fmt.Errorf("backend: %s", msg.Error)
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

// Close ends the subprocess and waits for it.
func (e *Exec) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closeLocked()
	return nil
}

func (e *Exec) closeLocked() {
	if e.closed {
		return
	}
	e.closed = true
	e.stdin.Close()
	e.cmd.Process.Kill()
	e.cmd.Wait()
}
