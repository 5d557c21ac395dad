package hook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// pipelineConfig is one process taking up to depth calls in flight.
func pipelineConfig(t *testing.T, depth int) ExecConfig {
	cfg := testConfig(t, nil, "serve")
	cfg.Limits.Concurrency = 1
	cfg.Limits.Pipeline = depth
	cfg.Limits.Timeout = pipelineTimeout
	return cfg
}

// pipelineTimeout is pipelineConfig's per-call timeout.
const pipelineTimeout = time.Second

type callOutcome struct {
	reply map[string]any
	err   error
	took  time.Duration
}

// startCalls makes the calls reqs[i] one after another, each once the
// one before it is written to the process (so they queue in order on a
// one-process pool), and returns their outcomes as they end.
func startCalls(t *testing.T, ctx context.Context, e *Exec, reqs ...string) []chan callOutcome {
	t.Helper()
	out := make([]chan callOutcome, len(reqs))
	before := written(e)
	for i, req := range reqs {
		out[i] = make(chan callOutcome, 1)
		go func() {
			start := time.Now()
			m, err := callJSON(ctx, e, req)
			out[i] <- callOutcome{m, err, time.Since(start)}
		}()
		eventually(t, 10*time.Second, fmt.Sprintf("call %d written", i), func() bool { return written(e) == before+i+1 })
	}
	return out
}

// outcome waits (bounded) for a call's outcome: none may hang.
func outcome(t *testing.T, c chan callOutcome, what string) callOutcome {
	t.Helper()
	select {
	case o := <-c:
		return o
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still waiting after 20 s", what)
		return callOutcome{}
	}
}

func TestExecPipelineAnswersEachCallItsOwnAnswer(t *testing.T) {
	e := startTest(t, pipelineConfig(t, 4))
	ctx := context.Background()
	// The first call holds the process while three more are written.
	calls := startCalls(t, ctx, e, `{"sleep": 300, "n": 0}`, `{"n": 1}`, `{"n": 2}`, `{"n": 3}`)
	pid := 0
	for i, c := range calls {
		o := outcome(t, c, fmt.Sprint("call ", i))
		if o.err != nil {
			t.Fatalf("call %d: %v", i, o.err)
		}
		echo := o.reply["echo"].(map[string]any)
		if echo["n"] != float64(i) {
			t.Fatalf("call %d got the answer to %v", i, echo)
		}
		if i == 0 {
			pid = pidOf(t, o.reply)
		} else if pidOf(t, o.reply) != pid {
			t.Fatalf("call %d went to another process (Concurrency 1)", i)
		}
	}

	// Many callers at once, more than fit: each gets its own answer.
	errs := make(chan error, 64)
	for i := range 64 {
		go func() {
			m, err := callJSON(ctx, e, fmt.Sprintf(`{"n": %d}`, i))
			if err == nil && m["echo"].(map[string]any)["n"] != float64(i) {
				err = fmt.Errorf("call %d got the answer to %v", i, m["echo"])
			}
			errs <- err
		}()
	}
	for range 64 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestExecPipelineTimeoutFailsTheCallsInFlight: a call that times out
// replaces its process; the calls behind it fail at once, as crashed
// (their process was killed under them), and the next call is served by
// a new process.
func TestExecPipelineTimeoutFailsTheCallsInFlight(t *testing.T) {
	e := startTest(t, pipelineConfig(t, 4))
	ctx := context.Background()
	m, err := callJSON(ctx, e, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	first := pidOf(t, m)
	calls := startCalls(t, ctx, e, `{"sleep": 60000}`)
	// The calls behind it are sent half a timeout later, so that their
	// own deadlines are still half a second away when the slow call's
	// timeout replaces the process: a call whose own deadline has passed
	// by then fails as timed out instead (breakDown), and sent at once,
	// theirs passed within a millisecond of the slow call's, which a busy
	// machine's scheduling could exceed (CI failed once that way).
	time.Sleep(pipelineTimeout / 2)
	calls = append(calls, startCalls(t, ctx, e, `{"n": 1}`, `{"n": 2}`)...)
	slow := outcome(t, calls[0], "the slow call")
	if !errors.Is(slow.err, ErrTimeout) || slow.took < time.Second {
		t.Fatalf("slow call: %v after %v; want ErrTimeout after 1 s", slow.err, slow.took)
	}
	for i, c := range calls[1:] {
		o := outcome(t, c, "a call behind it")
		if !errors.Is(o.err, ErrCrashed) || errors.Is(o.err, ErrTimeout) || !strings.Contains(o.err.Error(), "another call") {
			t.Fatalf("call %d behind the slow one: %v", i+1, o.err)
		}
	}
	eventually(t, 10*time.Second, "the slow process is killed", func() bool { return gone(first) })
	m, err = callJSON(ctx, e, `{}`)
	if err != nil || pidOf(t, m) == first {
		t.Fatalf("after the timeout: %v %v (first pid %d)", m, err, first)
	}
}

// TestExecPipelineBadAnswer: calls answered before a bad answer keep
// their answers; the bad one is ErrBadOutput, the ones behind it crashed.
func TestExecPipelineBadAnswer(t *testing.T) {
	e := startTest(t, pipelineConfig(t, 4))
	ctx := context.Background()
	calls := startCalls(t, ctx, e, `{"sleep": 300, "n": 0}`, `{"garbage": true}`, `{"n": 2}`)
	if o := outcome(t, calls[0], "call 0"); o.err != nil {
		t.Fatalf("the call before the bad answer: %v", o.err)
	}
	if o := outcome(t, calls[1], "call 1"); !errors.Is(o.err, ErrBadOutput) {
		t.Fatalf("the bad answer: %v", o.err)
	}
	if o := outcome(t, calls[2], "call 2"); !errors.Is(o.err, ErrCrashed) {
		t.Fatalf("the call behind the bad answer: %v", o.err)
	}
	if _, err := callAfterBackoff(t, e, `{}`); err != nil {
		t.Fatalf("after the bad answer: %v", err)
	}
}

// callAfterBackoff calls e once a crash's backoff (ErrCrashed "restarting
// in") is over.
func callAfterBackoff(t *testing.T, e *Exec, req string) (map[string]any, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := callJSON(context.Background(), e, req)
		if err == nil || !strings.Contains(err.Error(), "restarting in") || time.Now().After(deadline) {
			return m, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestExecPipelineCheckReply: the reply check sees each answer with its
// own request, and an extra answer line puts the process out of step:
// the call it lands on is refused (ErrBadOutput), and a line nobody asked
// for replaces the process.
func TestExecPipelineCheckReply(t *testing.T) {
	cfg := pipelineConfig(t, 4)
	cfg.CheckReply = func(request, reply []byte) error {
		if !strings.Contains(string(reply), strings.TrimSpace(string(request))) {
			return fmt.Errorf("answer %s is not to request %s", reply, request)
		}
		return nil
	}
	e := startTest(t, cfg)
	ctx := context.Background()
	calls := startCalls(t, ctx, e, `{"sleep": 300, "n": 0}`, `{"n": 1}`, `{"n": 2}`)
	for i, c := range calls {
		if o := outcome(t, c, "call"); o.err != nil {
			t.Fatalf("call %d: %v", i, o.err)
		}
	}
	calls = startCalls(t, ctx, e, `{"sleep": 300, "twice": true}`, `{"n": 1}`)
	if o := outcome(t, calls[0], "call 0"); o.err != nil {
		t.Fatalf("call answered twice: %v", o.err)
	}
	if o := outcome(t, calls[1], "call 1"); !errors.Is(o.err, ErrBadOutput) || !strings.Contains(o.err.Error(), "extra") {
		t.Fatalf("the call the extra line lands on: %v", o.err)
	}

	// Alone, the extra line comes when no call waits.
	m, err := callAfterBackoff(t, e, `{"twice": true}`)
	if err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, m)
	eventually(t, 10*time.Second, "the process that answered twice is replaced", func() bool { return gone(pid) })
	m, err = callAfterBackoff(t, e, `{}`)
	if err != nil || pidOf(t, m) == pid {
		t.Fatalf("after an answer nobody asked for: %v %v", m, err)
	}
}

// TestExecPipelineCanceledCall: a caller that gives up returns its
// context's error; the process is replaced and the calls behind it fail
// rather than wait.
func TestExecPipelineCanceledCall(t *testing.T) {
	e := startTest(t, pipelineConfig(t, 4))
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := startCalls(t, cctx, e, `{"sleep": 60000}`)
	behind := startCalls(t, context.Background(), e, `{"n": 1}`)
	cancel()
	if o := outcome(t, slow[0], "the canceled call"); !errors.Is(o.err, context.Canceled) || errors.Is(o.err, ErrFailed) {
		t.Fatalf("canceled call: %v", o.err)
	}
	if o := outcome(t, behind[0], "the call behind"); !errors.Is(o.err, ErrCrashed) {
		t.Fatalf("the call behind a canceled one: %v", o.err)
	}
	if _, err := callJSON(context.Background(), e, `{}`); err != nil {
		t.Fatal(err)
	}
}

// TestExecPipelineDeafProcess: a process that stops reading blocks the
// writes to it, never the pool: its calls fail by their deadline, the
// pool's and the queue's locks stay free meanwhile, and Close ends it all.
func TestExecPipelineDeafProcess(t *testing.T) {
	e := startTest(t, pipelineConfig(t, 4))
	ctx := context.Background()
	big := fmt.Sprintf(`{"pad": %q}`, strings.Repeat("x", 256<<10)) // more than a pipe holds
	calls := startCalls(t, ctx, e, `{"deaf": true}`, big)
	third := make(chan callOutcome, 1)
	go func() {
		_, err := callJSON(ctx, e, `{"n": 3}`)
		third <- callOutcome{err: err}
	}()
	// The big request's write is blocked; the locks are not (the third
	// call may have queued its line too).
	locked := make(chan int, 1)
	go func() { locked <- written(e) }()
	select {
	case n := <-locked:
		if n < 2 {
			t.Fatalf("%d calls in flight; want 2 or 3", n)
		}
	case <-time.After(500 * time.Millisecond):
		t.Fatal("a blocked write holds the pool's or the queue's lock")
	}
	if o := outcome(t, calls[0], "the deaf call"); !errors.Is(o.err, ErrTimeout) {
		t.Fatalf("the call to a deaf process: %v", o.err)
	}
	if o := outcome(t, calls[1], "the blocked write"); !errors.Is(o.err, ErrFailed) || o.took > 10*time.Second {
		t.Fatalf("the call whose write was blocked: %v after %v", o.err, o.took)
	}
	if o := outcome(t, third, "the call waiting to write"); !errors.Is(o.err, ErrFailed) {
		t.Fatalf("the call waiting to write: %v", o.err)
	}

	// Close ends calls blocked on a deaf process at once.
	calls = startCalls(t, ctx, e, `{"deaf": true}`, big)
	start := time.Now()
	e.Close()
	for i, c := range calls {
		if o := outcome(t, c, "a call at Close"); !errors.Is(o.err, ErrClosed) {
			t.Fatalf("call %d at Close: %v", i, o.err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

func TestExecPipelineLimits(t *testing.T) {
	for _, c := range []struct {
		pipeline int
		ok       bool
	}{{-1, false}, {0, true}, {1, true}, {64, true}, {65, false}} {
		l := DefaultLimits()
		l.Pipeline = c.pipeline
		if err := l.validate(); (err == nil) != c.ok {
			t.Errorf("pipeline %d: %v", c.pipeline, err)
		}
	}
}

// TestExecPipelineChoosesProcesses: a slow program's calls spread over
// the pool (each waits for no other); a fast program's calls queue on
// few processes, which then read several requests at once.
func TestExecPipelineChoosesProcesses(t *testing.T) {
	burst := func(e *Exec, n int, req string) map[int]bool {
		t.Helper()
		pids := make(chan int, n)
		errs := make(chan error, n)
		for range n {
			go func() {
				m, err := callJSON(context.Background(), e, req)
				if err != nil {
					errs <- err
					return
				}
				pids <- pidOf(t, m)
			}()
		}
		seen := map[int]bool{}
		for range n {
			select {
			case err := <-errs:
				t.Fatal(err)
			case pid := <-pids:
				seen[pid] = true
			}
		}
		return seen
	}

	cfg := testConfig(t, nil, "serve")
	cfg.Limits.Concurrency, cfg.Limits.Pipeline = 3, 8
	slow := startTest(t, cfg)
	for range 2 { // the first call's answer (the program starting) is not timed
		if _, err := callJSON(context.Background(), slow, `{"sleep": 100}`); err != nil {
			t.Fatal(err)
		}
	}
	if slow.aloneTime.Load() < int64(100*time.Millisecond) || slow.queuedTime.Load() != 0 {
		t.Fatalf("answer times alone %v, queued %v", time.Duration(slow.aloneTime.Load()), time.Duration(slow.queuedTime.Load()))
	}
	if pids := burst(slow, 3, `{"sleep": 300}`); len(pids) != 3 {
		t.Fatalf("3 calls to a program that takes 100 ms went to %d processes; want 3", len(pids))
	}

	cfg.Limits.Concurrency = 4
	fast := startTest(t, cfg)
	for range 20 {
		if _, err := callJSON(context.Background(), fast, `{}`); err != nil {
			t.Fatal(err)
		}
	}
	// The first bursts fill the pool (nothing is known about calls that
	// wait behind others yet); then they queue.
	for range 5 {
		burst(fast, 8, `{}`)
	}
	spread := 0
	for range 10 {
		spread += len(burst(fast, 8, `{}`))
	}
	t.Logf("alone %v, queued %v, processes per burst %.1f", time.Duration(fast.aloneTime.Load()), time.Duration(fast.queuedTime.Load()), float64(spread)/10)
	if spread > 30 {
		t.Fatalf("bursts of 8 calls to a program that answers at once went to %.1f processes each; want them queued on fewer", float64(spread)/10)
	}
}
