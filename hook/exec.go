package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ExecConfig configures a program hook (Exec, and Run's run-to-exit
// programs).
type ExecConfig struct {
	// Name names the hook in logs, errors and metrics (1..64 bytes
	// without spaces or control characters), e.g. "summarize/judge".
	Name string
	// Command is the program and its arguments. A first element with a
	// "/" is a file, relative to Dir unless absolute; any other is looked
	// up in the PATH of Env.
	Command []string
	// Dir is the program's working directory ("" = this process's).
	Dir string
	// Env is the program's whole environment: nil or empty gives it none
	// (never this process's by accident; API keys stay here).
	// DefaultExecConfig sets BaseEnv().
	Env []string
	// Limits bound each call and each process.
	Limits Limits
	// MinBackoff and MaxBackoff bound the wait before a crashed program
	// is started again: MinBackoff after a crash, doubling with each
	// crash that follows without a good answer in between, at most
	// MaxBackoff. Calls during the wait fail at once with ErrCrashed.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the program's stderr and its lifecycle (nil:
	// slog.Default()), with the attribute hook=Name.
	Logger *slog.Logger
	// Metrics counts calls (nil: not counted).
	Metrics *Metrics
	// CheckReply, if set, is asked about each reply (already known to be
	// one JSON value) with the request it answers; a refusal makes the
	// call ErrBadOutput and the process is replaced, as for a reply that
	// is not JSON (the program is out of step with its requests).
	CheckReply func(request, reply []byte) error
}

// DefaultExecConfig is a hook named name running command with
// DefaultLimits, BaseEnv, backoff from 100 ms to 30 s, logging to
// slog.Default().
func DefaultExecConfig(name string, command ...string) ExecConfig {
	return ExecConfig{
		Name:       name,
		Command:    command,
		Env:        BaseEnv(),
		Limits:     DefaultLimits(),
		MinBackoff: 100 * time.Millisecond,
		MaxBackoff: 30 * time.Second,
		Logger:     slog.Default(),
	}
}

// BaseEnv is the environment a hook program gets by default: this
// process's PATH, HOME, LANG, LC_ALL, TZ and TMPDIR, nothing else.
func BaseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func validName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("hook name %q: want 1 to 64 bytes", name)
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' }); i >= 0 {
		return fmt.Errorf("hook name %q: no spaces, quotes or control characters", name)
	}
	return nil
}

func (c *ExecConfig) validate(pool bool) error {
	if err := validName(c.Name); err != nil {
		return err
	}
	if len(c.Command) == 0 {
		return fmt.Errorf("hook %s: no command", c.Name)
	}
	if err := c.Limits.validate(); err != nil {
		return fmt.Errorf("hook %s: %w", c.Name, err)
	}
	if pool && (c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff) {
		return fmt.Errorf("hook %s: backoff %v to %v: want 0 < min <= max", c.Name, c.MinBackoff, c.MaxBackoff)
	}
	return nil
}

// prepare validates cfg (for a pool: its backoff too) and returns the argv
// to run and the logger.
func (c *ExecConfig) prepare(pool bool) ([]string, *slog.Logger, error) {
	if err := c.validate(pool); err != nil {
		return nil, nil, err
	}
	program, err := resolveProgram(c.Command[0], c.Dir, c.Env)
	if err != nil {
		return nil, nil, fmt.Errorf("hook %s: %w", c.Name, err)
	}
	return sandboxArgv(c.Limits, program, c.Command[1:]), c.logger(), nil
}

// logger is Logger (or slog.Default()) with the hook's name.
func (c *ExecConfig) logger() *slog.Logger {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	return log.With("hook", c.Name)
}

// Exec is a long-lived program that answers one JSON line on its stdin
// with one JSON line on its stdout, in order. It keeps a pool of up to
// Limits.Concurrency processes, started when calls need them, each with up
// to Limits.Pipeline calls in flight: requests are written as they come
// and answers matched to them first in, first out. A call goes to an idle
// process, else to a new one while the pool is not full, else behind the
// calls of the least busy process. A process that times out, answers too
// much or answers out of step is killed and replaced, and every call in
// flight on it fails; one that crashes is replaced after a backoff. Safe
// for concurrent use.
type Exec struct {
	cfg     ExecConfig
	spec    procSpec
	log     *slog.Logger
	metrics hookMetrics
	warn    *rateLimiter // lifecycle warnings

	sem  chan struct{} // one token per call in progress, Concurrency × Pipeline in all
	done chan struct{}
	wg   sync.WaitGroup // process waiters, stderr and answer readers

	crashes atomic.Int64 // crashes since the last good answer
	// Moving averages of how long a process takes to answer a call sent
	// to it with no other in flight (aloneTime), and a call sent behind
	// others once it answered the one before (queuedTime); in ns, 0 until
	// measured.
	aloneTime, queuedTime atomic.Int64

	mu        sync.Mutex
	closed    bool
	live      map[*proc]*execProc
	procs     []*execProc // processes that take calls, in the order started
	uses      uint64      // calls given to processes
	retryAt   time.Time
	lastCrash string
}

// StartExec checks cfg and its program (a missing or non-executable
// program is refused here, with an error that wraps fs.ErrNotExist or
// fs.ErrPermission) and returns the hook. Processes start with the calls
// that need them.
func StartExec(cfg ExecConfig) (*Exec, error) {
	argv, log, err := cfg.prepare(true)
	if err != nil {
		return nil, err
	}
	e := &Exec{
		cfg:     cfg,
		log:     log,
		metrics: cfg.Metrics.forHook(cfg.Name),
		warn:    newRateLimiter(1, 10),
		sem:     make(chan struct{}, cfg.Limits.Concurrency*cfg.Limits.pipeline()),
		done:    make(chan struct{}),
		live:    make(map[*proc]*execProc),
	}
	e.spec = procSpec{argv: argv, dir: cfg.Dir, env: cfg.Env, log: log,
		stderr: newRateLimiter(stderrRate, stderrBurst), onExit: e.exited}
	return e, nil
}

// Call sends line (one JSON value on one line; a trailing "\n" is
// optional) to a process and returns its answer line (one JSON value,
// without the "\n"), which the caller owns. Failures wrap ErrFailed; a
// caller's context that ends first gives its error (and, for a deadline,
// ErrTimeout too). A line with a newline inside is refused without a call.
func (e *Exec) Call(ctx context.Context, line []byte) ([]byte, error) {
	if i := bytes.IndexByte(line, '\n'); i >= 0 && i != len(line)-1 {
		return nil, fmt.Errorf("hook %s: the request has a newline inside (one JSON value per line)", e.cfg.Name)
	}
	start := time.Now()
	select {
	case e.sem <- struct{}{}:
	case <-e.done:
		err := e.fail(ErrClosed, "")
		e.metrics.observe(start, err)
		return nil, err
	case <-ctx.Done():
		err := e.ctxErr(ctx, false)
		e.metrics.observe(start, err)
		return nil, err
	}
	reply, err := e.callOn(ctx, line)
	<-e.sem
	e.metrics.observe(start, err)
	return reply, err
}

// callOn makes one call on the process takeProc chooses.
func (e *Exec) callOn(ctx context.Context, line []byte) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, e.ctxErr(ctx, false) // before it can cost a process
	}
	x, err := e.takeProc()
	if err != nil {
		return nil, err
	}
	defer e.releaseProc(x)
	if x.hasExited() {
		x.breakDown(nil, ErrCrashed, "it had exited")
		return nil, e.fail(ErrCrashed, "it had exited")
	}
	c := newExecCall(line)
	if err := x.send(c); err != nil {
		c.free()
		return nil, err
	}
	var r execResult
	select {
	case r = <-c.done:
	case <-ctx.Done():
		x.abandon(c)
		r = <-c.done
	}
	c.free()
	if errors.Is(r.err, errAbandoned) {
		callerDeadline, ok := ctx.Deadline()
		return nil, e.ctxErr(ctx, ok && !time.Now().Before(callerDeadline))
	}
	return r.reply, r.err
}

// exploreBelow: a hook whose process answers a call alone sooner than this
// has a few calls queued behind others before the time they take queued
// is measured (a wait of at most a few of these, far within any timeout).
const exploreBelow = time.Millisecond

// takeProc returns the process a call goes to: the busiest process that
// will likely answer its calls in flight and this one sooner than an idle
// process answers one call (by the hook's recent answer times: a fast
// program answers a queue of calls, read at once, in less time than it
// takes to wake; a slow one's calls never wait for each other while a
// process is free), else an idle process (the one used last), else a new
// one while fewer than Concurrency take calls, else the one with the
// fewest calls in flight. It fails if the hook is closed or
// is waiting out a crash's backoff. The caller holds a token of sem, so
// some process has room.
func (e *Exec) takeProc() (*execProc, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, e.fail(ErrClosed, "")
	}
	depth := e.cfg.Limits.pipeline()
	alone, queued := e.aloneTime.Load(), e.queuedTime.Load() // ns, 0: not known yet
	if queued == 0 {
		// Not measured yet: a program that answers alone within
		// exploreBelow lets a few calls queue to show what it is; a
		// slower one's calls queue only once the pool is full.
		queued = alone
		if alone < int64(exploreBelow) {
			queued = alone / 4
		}
	}
	var busiest, idle, least *execProc
	kept := e.procs[:0]
	for _, x := range e.procs {
		if x.dead.Load() {
			continue
		}
		kept = append(kept, x)
		switch {
		case x.inflight == 0:
			if idle == nil || x.used > idle.used {
				idle = x
			}
		case x.inflight < depth && int64(x.inflight+1)*queued < alone:
			if busiest == nil || x.inflight > busiest.inflight {
				busiest = x
			}
		}
		if x.inflight < depth && (least == nil || x.inflight < least.inflight) {
			least = x
		}
	}
	clear(e.procs[len(kept):])
	e.procs = kept
	x := busiest
	if x == nil {
		x = idle
	}
	if x == nil && len(e.procs) < e.cfg.Limits.Concurrency {
		if wait := time.Until(e.retryAt); wait <= 0 {
			p, err := e.spec.start(nil, &e.wg)
			if err != nil {
				e.recordCrashLocked("start: " + err.Error())
				return nil, e.fail(ErrCrashed, "starting the program: "+err.Error())
			}
			x = newExecProc(e, p, &e.wg)
			e.live[p] = x
			e.procs = append(e.procs, x)
			p.log.Debug("hook process started")
		} else if least == nil {
			return nil, e.fail(ErrCrashed, fmt.Sprintf("restarting in %v after %d crashes (last: %s)",
				wait.Round(time.Millisecond), e.crashes.Load(), e.lastCrash))
		}
	}
	if x == nil {
		x = least
	}
	if x == nil {
		// Cannot happen while sem bounds the calls; refuse rather than
		// queue past the bound.
		return nil, e.fail(ErrCrashed, "every process is busy")
	}
	x.inflight++
	e.uses++
	x.used = e.uses
	return x, nil
}

// releaseProc ends a call's hold on x.
func (e *Exec) releaseProc(x *execProc) {
	e.mu.Lock()
	x.inflight--
	e.mu.Unlock()
}

// exited is called by a process's waiter once it has been reaped.
func (e *Exec) exited(p *proc) {
	e.mu.Lock()
	x := e.live[p]
	delete(e.live, p)
	e.mu.Unlock()
	if x != nil {
		x.dead.Store(true)
	}
	if p.ended.CompareAndSwap(false, true) {
		// Nobody killed it: it died on its own, maybe between calls.
		e.recordCrash(p.status)
		e.warnf(p.log, "hook process exited", "status", p.status)
		return
	}
	p.log.Debug("hook process ended", "status", p.status)
}

func (e *Exec) recordCrash(what string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recordCrashLocked(what)
}

func (e *Exec) recordCrashLocked(what string) {
	n := e.crashes.Add(1)
	e.retryAt = time.Now().Add(backoffAfter(n, e.cfg.MinBackoff, e.cfg.MaxBackoff))
	e.lastCrash = what
}

// backoffAfter is the wait before a restart after n crashes in a row:
// lo, doubled for each crash after the first, at most hi.
func backoffAfter(n int64, lo, hi time.Duration) time.Duration {
	d := lo
	for i := int64(1); i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func (e *Exec) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// ctxErr is the error of a call whose caller's context ended (or whose
// caller's deadline passed).
func (e *Exec) ctxErr(ctx context.Context, callerDeadline bool) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("hook %s: call abandoned: %w", e.cfg.Name, ctx.Err())
	}
	if callerDeadline || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("hook %s: %w: no answer by the caller's deadline (%w)", e.cfg.Name, ErrTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("hook %s: %w", e.cfg.Name, ctx.Err())
}

func (e *Exec) fail(kind error, detail string) error {
	if detail == "" {
		return fmt.Errorf("hook %s: %w", e.cfg.Name, kind)
	}
	return fmt.Errorf("hook %s: %w: %s", e.cfg.Name, kind, detail)
}

// warnf logs a lifecycle warning, at most about once a second per hook.
func (e *Exec) warnf(log *slog.Logger, msg string, args ...any) {
	ok, dropped := e.warn.allow(time.Now())
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args, "suppressed", dropped)
	}
	log.Warn(msg, args...)
}

// Close kills every process (with its process group) and waits until
// they are reaped. Calls in progress fail with ErrClosed, and so do later
// ones. Safe to call more than once.
func (e *Exec) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.done)
	e.procs = nil
	procs := make([]*execProc, 0, len(e.live))
	for _, x := range e.live {
		procs = append(procs, x)
	}
	e.mu.Unlock()
	for _, x := range procs {
		x.ended.Store(true)
		x.breakDown(nil, ErrClosed, "")
	}
	e.wg.Wait()
	return nil
}

// clip shortens an answer for an error message.
func clip(b []byte) string {
	const n = 120
	if len(b) > n {
		return strings.ToValidUTF8(string(b[:n]), "\uFFFD") + "…"
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
