package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// execProc is one process of an Exec's pool with the calls in flight on
// it. Calls write their request lines in turn (wmu) and queue themselves
// (mu) in the order they wrote; the process's reader goroutine reads the
// answer lines and hands each to the oldest call waiting, since a program
// answers in order. Up to Limits.Pipeline calls are in flight at once.
type execProc struct {
	*proc
	e *Exec

	// inflight is how many calls hold this process (guarded by Exec.mu);
	// at most Limits.Pipeline.
	inflight int

	wmu  sync.Mutex // one request line written at a time
	wbuf []byte     // under wmu

	mu       sync.Mutex
	queue    []*execCall // written, not yet answered: oldest first
	broken   bool        // no call may queue; the process is being replaced
	answered bool        // it has answered at least once

	// dead is set once the process may take no new call (broken, or its
	// reader stopped); takeProc skips it without locking mu.
	dead atomic.Bool
}

// execCall is one call in flight on an execProc.
type execCall struct {
	line     []byte    // the request (for CheckReply)
	deadline time.Time // Limits.Timeout from when it was written
	timeout  time.Duration
	// answered is set by the reader (under the process's mu) when it
	// takes the call off the queue; done then receives its outcome.
	answered bool
	done     chan execResult
}

type execResult struct {
	reply []byte
	err   error
}

var callPool = sync.Pool{New: func() any { return &execCall{done: make(chan execResult, 1)} }}

func newExecCall(line []byte) *execCall {
	c := callPool.Get().(*execCall)
	c.line, c.answered = line, false
	return c
}

// free returns c to the pool once its outcome has been received.
func (c *execCall) free() {
	c.line = nil
	callPool.Put(c)
}

// startReader starts the goroutine that reads the process's answers,
// counted in wg; it ends when the process's output ends (the process
// exited or was killed, or its files were closed).
func (x *execProc) startReader(wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		x.read()
	}()
}

// send writes c's request line and queues c for its answer. It fails (and
// breaks the process) if the write does not complete by c's deadline or
// by the caller's (writeDeadline), or fails at once if the process is
// already broken.
func (x *execProc) send(ctx context.Context, c *execCall, writeDeadline time.Time) error {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	x.mu.Lock()
	if x.broken {
		x.mu.Unlock()
		return x.e.fail(ErrCrashed, "the process was replaced before the request was written")
	}
	c.timeout = x.e.cfg.Limits.Timeout
	if !x.answered {
		c.timeout *= 2 // it may still be starting
	}
	c.deadline = time.Now().Add(c.timeout)
	// Queued before the write, so the reader finds it when the answer
	// comes; and the read deadline covers it from now on.
	x.queue = append(x.queue, c)
	if len(x.queue) == 1 {
		x.stdout.SetReadDeadline(c.deadline)
	}
	x.mu.Unlock()

	line := c.line
	if len(line) == 0 || line[len(line)-1] != '\n' {
		x.wbuf = append(append(x.wbuf[:0], line...), '\n')
		line = x.wbuf
	}
	if writeDeadline.After(c.deadline) || writeDeadline.IsZero() {
		writeDeadline = c.deadline
	}
	x.stdin.SetWriteDeadline(writeDeadline)
	var err error
	interrupted := false
	if ctx.Done() == nil {
		_, err = x.stdin.Write(line)
	} else {
		// A caller that gives up while the pipe is full ends the write.
		// An interruption too late for this write must not reach the
		// next one: it is waited for before the next writer.
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() { x.stdin.SetWriteDeadline(time.Unix(1, 0)); close(fired) })
		_, err = x.stdin.Write(line)
		if !stop() {
			<-fired
			interrupted = true
		}
	}
	if cap(x.wbuf) > 64<<10 {
		x.wbuf = nil // do not keep one large request's buffer
	}
	if err == nil {
		return nil
	}
	// A line written in part leaves the process out of step.
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && interrupted:
		x.breakDown(c, errAbandoned, "its caller gave up while the request was being written")
	case errors.Is(err, os.ErrDeadlineExceeded):
		x.breakDown(c, ErrTimeout, fmt.Sprintf("the request was not read within %v", writeDeadline.Sub(c.deadline.Add(-c.timeout)).Round(time.Millisecond)))
	default:
		x.breakDown(c, ErrCrashed, "writing the request: "+err.Error())
	}
	return nil // c's outcome is on c.done
}

// abandon takes c, whose caller gave up, out of the process: true if c
// has an outcome already (answered, or failed with the process), which is
// then on c.done; otherwise the process, which would answer c out of step
// with the next call, is replaced (the other calls in flight fail) and
// c.done receives errAbandoned.
func (x *execProc) abandon(c *execCall) {
	x.breakDown(c, errAbandoned, "its caller gave up")
}

// errAbandoned marks the call whose caller gave up (its caller returns
// the context's error, not this).
var errAbandoned = errors.New("abandoned")

// read hands each answer line to the oldest call in flight until the
// process's output ends or the process breaks.
func (x *execProc) read() {
	e := x.e
	for {
		reply, err := readLine(x.out, e.cfg.Limits.MaxOutput)
		switch {
		case err == nil:
		case errors.Is(err, errLineTooLong):
			x.breakDown(x.head(), ErrTooLarge, fmt.Sprintf("an answer over %d bytes", e.cfg.Limits.MaxOutput))
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			if x.timedOut() {
				return
			}
			continue // a deadline moved back by a new call after the read began
		case errors.Is(err, io.EOF):
			x.breakDown(x.head(), ErrCrashed, "it closed its output")
			return
		case errors.Is(err, os.ErrClosed):
			x.breakDown(x.head(), ErrCrashed, "it exited")
			return
		default:
			x.breakDown(x.head(), ErrCrashed, "reading the answer: "+err.Error())
			return
		}
		c := x.head()
		if c == nil {
			x.breakDown(nil, ErrBadOutput, fmt.Sprintf("an answer nobody asked for: %q", clip(reply)))
			return
		}
		if !json.Valid(reply) {
			x.breakDown(c, ErrBadOutput, fmt.Sprintf("the answer is not one JSON value: %q", clip(reply)))
			return
		}
		if e.cfg.CheckReply != nil {
			if err := e.cfg.CheckReply(c.line, reply); err != nil {
				x.breakDown(c, ErrBadOutput, "the answer was refused: "+err.Error())
				return
			}
		}
		if !x.pop(c) {
			return // broken meanwhile: c has its outcome
		}
		if e.crashes.Load() != 0 {
			e.crashes.Store(0)
		}
		c.done <- execResult{reply: reply}
	}
}

// head is the oldest call in flight (nil: none).
func (x *execProc) head() *execCall {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.queue) == 0 {
		return nil
	}
	return x.queue[0]
}

// pop takes c, answered, off the head of the queue and moves the read
// deadline to the next call's. False if the process broke meanwhile.
func (x *execProc) pop(c *execCall) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.broken || len(x.queue) == 0 || x.queue[0] != c {
		return false
	}
	c.answered = true
	x.answered = true
	copy(x.queue, x.queue[1:])
	x.queue[len(x.queue)-1] = nil
	x.queue = x.queue[:len(x.queue)-1]
	if len(x.queue) > 0 {
		x.stdout.SetReadDeadline(x.queue[0].deadline)
	} else {
		x.stdout.SetReadDeadline(time.Time{})
	}
	return true
}

// timedOut handles a read that passed its deadline: if a call in flight
// is past its own, the process is replaced (true); otherwise the deadline
// was stale and reading goes on (false).
func (x *execProc) timedOut() bool {
	x.mu.Lock()
	var late *execCall
	now := time.Now()
	for _, c := range x.queue {
		if !now.Before(c.deadline) {
			late = c
			break
		}
	}
	if late == nil && !x.broken {
		if len(x.queue) > 0 {
			x.stdout.SetReadDeadline(x.queue[0].deadline)
		}
		x.mu.Unlock()
		return false
	}
	x.mu.Unlock()
	if late == nil {
		return true // broken by someone else
	}
	x.e.warnf(x.log, "hook call timed out; process replaced", "timeout", late.timeout)
	x.breakDown(late, ErrTimeout, fmt.Sprintf("no answer within %v", late.timeout))
	return true
}

// breakDown replaces the process after a failure of call cause (nil:
// none in flight): cause gets kind and detail, every other call in flight
// on the process fails as crashed, naming what happened; none is left
// waiting. Only the first breakDown of a process counts; it kills the
// process (and its group), and a crash, a bad answer or an answer nobody
// asked for starts the backoff.
func (x *execProc) breakDown(cause *execCall, kind error, detail string) {
	e := x.e
	x.mu.Lock()
	if x.broken || (kind == errAbandoned && cause.answered) {
		x.mu.Unlock()
		return
	}
	x.broken = true
	x.dead.Store(true)
	queue := x.queue
	x.queue = nil
	x.mu.Unlock()

	closed := e.isClosed()
	switch {
	case closed:
	case errors.Is(kind, ErrCrashed):
		if x.ended.CompareAndSwap(false, true) {
			e.recordCrash(detail)
			e.warnf(x.log, "hook process crashed", "what", detail)
		}
	case errors.Is(kind, ErrBadOutput):
		if x.ended.CompareAndSwap(false, true) {
			x.log.Debug("hook process replaced", "why", detail)
		}
		e.recordCrash("bad output")
	default:
		if x.ended.CompareAndSwap(false, true) {
			x.log.Debug("hook process replaced", "why", detail)
		}
	}
	x.kill()
	for _, c := range queue {
		var err error
		switch {
		case closed:
			err = e.fail(ErrClosed, "")
		case c == cause && kind == errAbandoned:
			err = errAbandoned
		case c == cause:
			err = e.fail(kind, detail)
		case cause == nil || errors.Is(kind, ErrCrashed):
			err = e.fail(ErrCrashed, detail)
		case kind == errAbandoned:
			err = e.fail(ErrCrashed, "the process was replaced while this call was in flight: the caller of another call on it gave up")
		default:
			err = e.fail(ErrCrashed, "the process was replaced while this call was in flight: another call on it failed ("+detail+")")
		}
		c.done <- execResult{err: err}
	}
}
