package backend

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/hook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// execChild is a JSON-lines backend: it upper-cases prompts, fails on
// "fail", hangs on "hang", exits on "exit", answers its pid on "pid",
// writes to stderr on "stderr", and answers with the wrong id on
// "wrongid".
func execChild(mode string) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var req ExecMessage
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			fmt.Println(`{"id": 0, "error": "bad line"}`)
			continue
		}
		var in struct{ Prompt string }
		json.Unmarshal(req.Body, &in)
		switch in.Prompt {
		case "fail":
			b, _ := json.Marshal(ExecMessage{ID: req.ID, Error: "cannot do that"})
			fmt.Println(string(b))
		case "hang":
			select {}
		case "exit":
			os.Exit(0)
		case "wrongid":
			b, _ := json.Marshal(ExecMessage{ID: req.ID + 1000, Body: json.RawMessage(`"?"`)})
			fmt.Println(string(b))
		default:
			text := strings.ToUpper(in.Prompt)
			switch in.Prompt {
			case "pid":
				text = fmt.Sprint(os.Getpid())
			case "stderr":
				fmt.Fprintln(os.Stderr, "model loaded, 3 layers on the floor")
			}
			out, _ := json.Marshal(text)
			b, _ := json.Marshal(ExecMessage{ID: req.ID, Body: out})
			fmt.Println(string(b))
		}
	}
}

// syncBuffer is a log sink safe for the hook's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func generate(ctx context.Context, e *Exec, prompt string) (string, error) {
	var got string
	err := e.Generate(ctx, prompt, func(s string) error { got = s; return nil })
	return got, err
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestExecBackend(t *testing.T) {
	os.Setenv(execChildEnv, "1")
	e, err := StartExec(os.Args[0], "-test.run=^$")
	os.Unsetenv(execChildEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if got, err := generate(ctx, e, "hello"); err != nil || got != "HELLO" {
		t.Fatalf("generate %q %v", got, err)
	}
	if _, err := generate(ctx, e, "fail"); err == nil || !strings.Contains(err.Error(), "cannot do that") {
		t.Fatalf("error line: %v", err)
	}
	// Still in step after an error.
	if got, err := generate(ctx, e, "again"); err != nil || got != "AGAIN" {
		t.Fatalf("after error %q %v", got, err)
	}
	e.Close()
	if _, err := generate(ctx, e, "x"); !errors.Is(err, ErrExecClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := StartExec("/nonexistent/model-server"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing program: %v", err)
	}
}

// TestExecBackendSurvivesSlowAnswersAndCrashes: one slow answer times out
// that call only; a crash is followed by a restart; both are logged and
// counted. (Before package hook, the first slow answer killed the backend
// for good: every later call returned ErrExecClosed, and nothing was
// logged.)
func TestExecBackendSurvivesSlowAnswersAndCrashes(t *testing.T) {
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	metrics := hook.NewMetrics(reg)
	cfg := DefaultExecConfig(os.Args[0], "-test.run=^$")
	cfg.Env = append(os.Environ(), execChildEnv+"=1")
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.Metrics = metrics
	cfg.MinBackoff = 20 * time.Millisecond
	e, err := NewExec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	pid, err := generate(ctx, e, "pid")
	if err != nil {
		t.Fatal(err)
	}

	// A slow answer: that call times out (the miner answers TIMEOUT).
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = generate(tctx, e, "hang")
	if !errors.Is(err, ErrUpstreamTimeout) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, hook.ErrTimeout) {
		t.Fatalf("slow answer: %v", err)
	}
	// The next call is served, by a new process.
	got, err := generate(ctx, e, "after")
	if err != nil || got != "AFTER" {
		t.Fatalf("the call after a slow answer: %q %v", got, err)
	}
	if again, _ := generate(ctx, e, "pid"); again == pid {
		t.Fatal("the process that did not answer in time still serves")
	}

	// A crash: that call fails, the process is restarted after a backoff.
	if _, err := generate(ctx, e, "exit"); !errors.Is(err, ErrUpstream) || !errors.Is(err, hook.ErrCrashed) {
		t.Fatalf("crashed backend: %v", err)
	}
	waitFor(t, 10*time.Second, "the backend restarts", func() bool {
		got, err := generate(ctx, e, "back")
		return err == nil && got == "BACK"
	})

	// An answer to another request: refused, the process replaced.
	if _, err := generate(ctx, e, "wrongid"); !errors.Is(err, hook.ErrBadOutput) || !strings.Contains(err.Error(), "expected") {
		t.Fatalf("answer with the wrong id: %v", err)
	}
	waitFor(t, 10*time.Second, "the backend serves after an out-of-step answer", func() bool {
		got, err := generate(ctx, e, "ok")
		return err == nil && got == "OK"
	})

	// Its stderr is logged under the hook's name.
	if _, err := generate(ctx, e, "stderr"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "stderr in the log", func() bool {
		return strings.Contains(logs.String(), `hook=backend`) && strings.Contains(logs.String(), "3 layers on the floor")
	})
	if !strings.Contains(logs.String(), "timed out") && !strings.Contains(logs.String(), "crashed") && !strings.Contains(logs.String(), "exited") {
		t.Errorf("the failures are not logged:\n%s", logs.String())
	}

	// Counted: failures by reason, every call.
	if n, err := testutil.GatherAndCount(reg, "cybertensor_hook_failures_total"); err != nil || n < 3 {
		t.Fatalf("%d failure series exported (%v), want 3 reasons", n, err)
	}
	for reason, want := range map[string]float64{"timeout": 1, "crashed": 1, "bad_output": 1} {
		got := gatherValue(t, reg, "cybertensor_hook_failures_total", map[string]string{"hook": "backend", "reason": reason})
		if got < want {
			t.Errorf("failures_total{reason=%s} = %v, want at least %v", reason, got, want)
		}
	}
	if calls := gatherValue(t, reg, "cybertensor_hook_calls_total", map[string]string{"hook": "backend"}); calls < 8 {
		t.Errorf("calls_total %v, want at least 8", calls)
	}
}

// gatherValue reads one counter series from reg.
func gatherValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
