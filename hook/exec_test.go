package hook

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func startTest(t *testing.T, cfg ExecConfig) *Exec {
	t.Helper()
	e, err := StartExec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func pidOf(t *testing.T, m map[string]any) int {
	t.Helper()
	pid, ok := m["pid"].(float64)
	if !ok {
		t.Fatalf("answer without a pid: %v", m)
	}
	return int(pid)
}

// written is how many calls have written their request and wait for the
// answer, over e's processes.
func written(e *Exec) int {
	e.mu.Lock()
	procs := append([]*execProc(nil), e.procs...)
	e.mu.Unlock()
	n := 0
	for _, x := range procs {
		x.mu.Lock()
		n += len(x.queue)
		x.mu.Unlock()
	}
	return n
}

func TestExecAnswersInOrder(t *testing.T) {
	e := startTest(t, testConfig(t, nil, "serve"))
	e.mu.Lock()
	started := len(e.live)
	e.mu.Unlock()
	if started != 0 {
		t.Fatalf("%d processes before any call; want them started lazily", started)
	}
	ctx := context.Background()
	for i := range 20 {
		m, err := callJSON(ctx, e, `{"n":`+string(rune('0'+i%10))+`}`)
		if err != nil {
			t.Fatal(err)
		}
		echo := m["echo"].(map[string]any)
		if echo["n"].(float64) != float64(i%10) {
			t.Fatalf("call %d answered %v", i, m)
		}
	}
	// A trailing newline is optional; one inside is refused, not sent.
	if _, err := e.Call(ctx, []byte("{\"a\":1}\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Call(ctx, []byte("{\"a\":\n1}")); err == nil || errors.Is(err, ErrFailed) {
		t.Fatalf("a request with a newline inside: %v", err)
	}
}

func TestStartExecRefusesBadPrograms(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "judge.py")
	if err := os.WriteFile(notExec, []byte("print(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "ok.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		command []string
		dir     string
		want    error
		words   string
	}{
		{"missing file", []string{"/nonexistent/judge"}, "", fs.ErrNotExist, "does not exist"},
		{"missing relative file", []string{"./judge.sh"}, dir, fs.ErrNotExist, "does not exist"},
		{"not executable", []string{"./judge.py"}, dir, fs.ErrPermission, "chmod +x"},
		{"directory", []string{dir}, "", fs.ErrPermission, "not a regular file"},
		{"not in PATH", []string{"no-such-program-anywhere"}, "", fs.ErrNotExist, "not in PATH"},
		{"no command", nil, "", nil, "no command"},
		{"relative to dir", []string{"./ok.sh"}, dir, nil, ""},
		{"in PATH", []string{"cat"}, "", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultExecConfig("bad", c.command...)
			cfg.Dir = c.dir
			e, err := StartExec(cfg)
			if c.words == "" {
				if err != nil {
					t.Fatal(err)
				}
				e.Close()
				return
			}
			if err == nil {
				e.Close()
				t.Fatal("accepted")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %v does not wrap %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.words) || !strings.Contains(err.Error(), "hook bad") {
				t.Errorf("error %q: want the hook's name and %q", err, c.words)
			}
		})
	}
	bad := []func(*ExecConfig){
		func(c *ExecConfig) { c.Name = "" },
		func(c *ExecConfig) { c.Name = "has space" },
		func(c *ExecConfig) { c.Limits.Timeout = 0 },
		func(c *ExecConfig) { c.Limits.MaxOutput = 0 },
		func(c *ExecConfig) { c.Limits.Concurrency = 0 },
		func(c *ExecConfig) { c.Limits.MemoryBytes = 1000 },
		func(c *ExecConfig) { c.MinBackoff = 0 },
		func(c *ExecConfig) { c.MaxBackoff = c.MinBackoff / 2 },
	}
	for i, mutate := range bad {
		cfg := DefaultExecConfig("bad", "cat")
		mutate(&cfg)
		if e, err := StartExec(cfg); err == nil {
			e.Close()
			t.Errorf("bad config %d accepted", i)
		}
	}
}

func TestExecTimeoutReplacesTheProcess(t *testing.T) {
	var logs logBuffer
	cfg := testConfig(t, logs.logger(), "serve")
	cfg.Limits.Timeout = time.Second
	cfg.Limits.Concurrency = 1
	e := startTest(t, cfg)
	ctx := context.Background()
	m, err := callJSON(ctx, e, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	first := pidOf(t, m)
	start := time.Now()
	_, err = e.Call(ctx, []byte(`{"sleep": 60000}`))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "test-hook") {
		t.Fatalf("slow call: %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Fatalf("timed out after %v; want 1 s", d)
	}
	eventually(t, 10*time.Second, "the slow process is killed", func() bool { return gone(first) })
	m, err = callJSON(ctx, e, `{}`)
	if err != nil {
		t.Fatalf("the call after a timeout: %v", err)
	}
	if pidOf(t, m) == first {
		t.Fatal("the timed-out process still serves")
	}
	if !strings.Contains(logs.String(), "timed out") {
		t.Errorf("timeout not logged:\n%s", logs.String())
	}

	// The caller's deadline: ErrTimeout and context.DeadlineExceeded.
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := e.Call(dctx, []byte(`{"sleep": 60000}`)); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller's deadline: %v", err)
	}
	// A caller that gives up: its error, not a hook failure.
	cctx, cancel2 := context.WithCancel(ctx)
	go func() {
		// Cancel once the call holds a process.
		for written(e) != 1 {
			time.Sleep(time.Millisecond)
		}
		cancel2()
	}()
	if _, err := e.Call(cctx, []byte(`{"sleep": 60000}`)); !errors.Is(err, context.Canceled) || errors.Is(err, ErrFailed) {
		t.Fatalf("canceled call: %v", err)
	}
	if _, err := callJSON(ctx, e, `{}`); err != nil {
		t.Fatalf("after an abandoned call: %v", err)
	}
}

func TestExecCrashBacksOff(t *testing.T) {
	cfg := testConfig(t, nil, "serve")
	cfg.Limits.Concurrency = 1
	cfg.MinBackoff = time.Hour // calls during the backoff must fail at once
	cfg.MaxBackoff = time.Hour
	e := startTest(t, cfg)
	ctx := context.Background()
	if _, err := e.Call(ctx, []byte(`{"exit": 3}`)); !errors.Is(err, ErrCrashed) {
		t.Fatalf("exiting program: %v", err)
	}
	start := time.Now()
	_, err := e.Call(ctx, []byte(`{}`))
	if !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), "restarting in") {
		t.Fatalf("during backoff: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a call during the backoff took %v", d)
	}

	// With a short backoff, the program comes back.
	cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, time.Second
	var logs logBuffer
	cfg.Logger = logs.logger()
	e2 := startTest(t, cfg)
	if _, err := e2.Call(ctx, []byte(`{"exit": 0}`)); !errors.Is(err, ErrCrashed) {
		t.Fatalf("exiting program: %v", err)
	}
	eventually(t, 10*time.Second, "the program restarts", func() bool {
		_, err := callJSON(ctx, e2, `{}`)
		return err == nil
	})
	if e2.crashes.Load() != 0 {
		t.Fatal("a good answer did not reset the crash count")
	}
	if !strings.Contains(logs.String(), "crashed") && !strings.Contains(logs.String(), "exited") {
		t.Errorf("crash not logged:\n%s", logs.String())
	}
	// Output that is not JSON: the process is out of step and replaced.
	m, _ := callJSON(ctx, e2, `{}`)
	first := pidOf(t, m)
	if _, err := e2.Call(ctx, []byte(`{"garbage": true}`)); !errors.Is(err, ErrBadOutput) {
		t.Fatalf("garbage: %v", err)
	}
	eventually(t, 10*time.Second, "a new process after bad output", func() bool {
		m, err := callJSON(ctx, e2, `{}`)
		return err == nil && pidOf(t, m) != first
	})
}

func TestBackoffAfter(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		n        int64
		min, max time.Duration
		want     time.Duration
	}{
		{1, 100 * ms, 30 * time.Second, 100 * ms},
		{2, 100 * ms, 30 * time.Second, 200 * ms},
		{5, 100 * ms, 30 * time.Second, 1600 * ms},
		{9, 100 * ms, 30 * time.Second, 25600 * ms},
		{10, 100 * ms, 30 * time.Second, 30 * time.Second},
		{1000, 100 * ms, 30 * time.Second, 30 * time.Second},
		{3, 50 * ms, 50 * ms, 50 * ms},
	}
	for _, c := range cases {
		if got := backoffAfter(c.n, c.min, c.max); got != c.want {
			t.Errorf("backoffAfter(%d, %v, %v) = %v, want %v", c.n, c.min, c.max, got, c.want)
		}
	}
}

func TestExecTooLargeAnswer(t *testing.T) {
	cfg := testConfig(t, nil, "serve")
	cfg.Limits.MaxOutput = 1000
	cfg.Limits.Concurrency = 1
	e := startTest(t, cfg)
	ctx := context.Background()
	m, err := callJSON(ctx, e, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	first := pidOf(t, m)
	if _, err := e.Call(ctx, []byte(`{"big": 990}`)); err != nil {
		t.Fatalf("an answer within the limit: %v", err)
	}
	if _, err := e.Call(ctx, []byte(`{"big": 100000}`)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized answer: %v", err)
	}
	m, err = callJSON(ctx, e, `{}`)
	if err != nil || pidOf(t, m) == first {
		t.Fatalf("after an oversized answer: %v %v (first pid %d)", m, err, first)
	}
}

func TestExecPoolIsBounded(t *testing.T) {
	cfg := testConfig(t, nil, "serve")
	cfg.Limits.Concurrency = 3
	e := startTest(t, cfg)
	var mu sync.Mutex
	pids := map[int]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := callJSON(context.Background(), e, `{"sleep": 100}`)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			pids[int(m["pid"].(float64))] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(pids) < 2 || len(pids) > 3 {
		t.Fatalf("9 concurrent calls were served by %d processes; want 2 or 3 (Concurrency 3)", len(pids))
	}
}

func TestExecStderrIsLogged(t *testing.T) {
	var logs logBuffer
	e := startTest(t, testConfig(t, logs.logger(), "serve"))
	ctx := context.Background()
	if _, err := e.Call(ctx, []byte(`{"stderr": "judge says hello"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the stderr line in the log", func() bool {
		return strings.Contains(logs.String(), `line="judge says hello"`)
	})
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "judge says hello") && !strings.Contains(l, "hook=test-hook") {
			t.Fatalf("stderr logged without the hook's name: %s", l)
		}
	}
	// A long line is cut.
	long := strings.Repeat("y", 10000)
	if _, err := e.Call(ctx, []byte(`{"stderr": "`+long+`"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the long line, truncated", func() bool {
		return strings.Contains(logs.String(), "truncated=true")
	})
	if strings.Contains(logs.String(), strings.Repeat("y", stderrMaxLine+1)) {
		t.Fatal("a stderr line longer than the bound was logged")
	}
	// A flood is rate-limited and the drop counted.
	if _, err := e.Call(ctx, []byte(`{"flood": 2000}`)); err != nil {
		t.Fatal(err)
	}
	e.Close() // the end of its stderr logs the count of dropped lines
	out := logs.String()
	logged := strings.Count(out, "flood line")
	if logged < 10 || logged > stderrBurst+50 {
		t.Fatalf("%d of 2000 flood lines logged; want the burst (%d) and not much more", logged, stderrBurst)
	}
	if !strings.Contains(out, "dropped") {
		t.Fatal("dropped stderr lines are not reported")
	}
}

func TestExecCloseLeavesNoOrphans(t *testing.T) {
	cfg := testConfig(t, nil, "serve")
	cfg.Limits.Concurrency = 2
	e := startTest(t, cfg)
	ctx := context.Background()
	m, err := callJSON(ctx, e, `{"spawn": true}`)
	if err != nil {
		t.Fatal(err)
	}
	grandchild := int(m["grandchild"].(float64))
	m, err = callJSON(ctx, e, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	child := pidOf(t, m) // the same process: an idle one serves before a new one starts
	e.mu.Lock()
	started := len(e.live)
	e.mu.Unlock()
	if started != 1 {
		t.Fatalf("two calls in a row started %d processes", started)
	}
	if gone(grandchild) || gone(child) {
		t.Fatal("test processes not running")
	}
	// A call in flight when Close comes fails with ErrClosed.
	inflight := make(chan error, 1)
	go func() {
		_, err := e.Call(ctx, []byte(`{"sleep": 60000}`))
		inflight <- err
	}()
	eventually(t, 10*time.Second, "the slow call has a process", func() bool { return written(e) == 1 })
	e.Close()
	if err := <-inflight; !errors.Is(err, ErrClosed) {
		t.Fatalf("call in flight at Close: %v", err)
	}
	if !gone(child) {
		t.Fatal("Close returned with its process running")
	}
	eventually(t, 10*time.Second, "the grandchild is killed", func() bool { return gone(grandchild) })
	if _, err := e.Call(ctx, []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// A program that crashes takes its descendants with it.
	var logs logBuffer
	e2 := startTest(t, testConfig(t, logs.logger(), "serve"))
	m, err = callJSON(ctx, e2, `{"spawn": true}`)
	if err != nil {
		t.Fatal(err, logs.String())
	}
	grandchild = int(m["grandchild"].(float64))
	if _, err := e2.Call(ctx, []byte(`{"exit": 1}`)); !errors.Is(err, ErrCrashed) {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the crashed program's grandchild is killed", func() bool { return gone(grandchild) })
}

func TestExecMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if again := NewMetrics(reg); again.calls != m.calls {
		t.Fatal("a second NewMetrics on one registry does not share its collectors")
	}
	cfg := testConfig(t, nil, "serve")
	cfg.Metrics = m
	cfg.Limits.Timeout = time.Second
	e := startTest(t, cfg)
	ctx := context.Background()
	for range 3 {
		if _, err := e.Call(ctx, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Call(ctx, []byte(`{"sleep": 60000}`)); !errors.Is(err, ErrTimeout) {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.calls.WithLabelValues("test-hook")); got != 4 {
		t.Errorf("calls_total %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.failures.WithLabelValues("test-hook", "timeout")); got != 1 {
		t.Errorf("failures_total{reason=timeout} %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.seconds); n != 1 {
		t.Errorf("call_seconds series %d, want 1", n)
	}
	names := []string{"cybertensor_hook_calls_total", "cybertensor_hook_failures_total", "cybertensor_hook_call_seconds"}
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 3 {
		t.Errorf("registry exports %d series (%v), want 3", n, err)
	}
}

// TestExecCancelAfterTheAnswerKeepsTheProcess: a caller's context that
// ends before or just after its call must not cost a healthy process (an
// interruption arriving late must not hit the next call).
func TestExecCancelAfterTheAnswerKeepsTheProcess(t *testing.T) {
	cfg := testConfig(t, nil, "serve")
	cfg.Limits.Concurrency = 1
	e := startTest(t, cfg)
	m, err := callJSON(context.Background(), e, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, m)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		if _, err := e.Call(canceled, []byte(`{}`)); !errors.Is(err, context.Canceled) {
			t.Fatalf("call with a canceled context: %v", err)
		}
	}
	for i := range 300 {
		ctx, cancel := context.WithCancel(context.Background())
		m, err := callJSON(ctx, e, `{}`)
		cancel()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got := pidOf(t, m); got != pid {
			t.Fatalf("call %d was served by process %d, not %d: a healthy process was replaced", i, got, pid)
		}
	}
}
