package hook

import (
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
// it. A call queues itself and its request line (mu); the process's
// writer goroutine writes the lines queued since its last write in one
// write, and its reader goroutine reads the answer lines and hands each
// to the oldest call waiting, since a program answers in order. Up to
// Limits.Pipeline calls are in flight at once.
type execProc struct {
	*proc
	e *Exec

	// inflight is how many calls hold this process, at most
	// Limits.Pipeline; used is Exec.uses when it was last given one
	// (both guarded by Exec.mu).
	inflight int
	used     uint64

	wake chan struct{} // a call queued a line for the writer (capacity 1)
	stop chan struct{} // closed when the process breaks

	mu       sync.Mutex
	queue    []*execCall // sent, not yet answered: oldest first
	broken   bool        // no call may queue; the process is being replaced
	answered bool        // it has answered at least once
	// unwritten holds the request lines of the calls the writer has not
	// written yet, firstUnwritten the oldest of those calls.
	unwritten      []byte
	firstUnwritten *execCall

	// dead is set once the process may take no new call (broken, or its
	// reader stopped); takeProc skips it without locking mu.
	dead atomic.Bool
}

// execCall is one call in flight on an execProc.
type execCall struct {
	line     []byte    // the request (for CheckReply)
	sent     time.Time // when it was queued for writing
	alone    bool      // no other call was in flight on the process then
	deadline time.Time // Limits.Timeout from sent
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

// newExecProc wraps a started process and starts its writer and reader
// goroutines, counted in wg: the writer ends when the process breaks, the
// reader when its output ends (the process exited or was killed, or its
// files were closed).
func newExecProc(e *Exec, p *proc, wg *sync.WaitGroup) *execProc {
	x := &execProc{proc: p, e: e, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	wg.Add(2)
	go func() {
		defer wg.Done()
		x.write()
	}()
	go func() {
		defer wg.Done()
		x.read()
	}()
	return x
}

// send queues c for its answer and its request line for the writer,
// which writes the lines queued meanwhile together. It fails at once if
// the process is already broken; otherwise c's outcome comes on c.done.
func (x *execProc) send(c *execCall) error {
	x.mu.Lock()
	if x.broken {
		x.mu.Unlock()
		return x.e.fail(ErrCrashed, "the process was replaced before the request was written")
	}
	c.timeout = x.e.cfg.Limits.Timeout
	if !x.answered {
		c.timeout *= 2 // it may still be starting
	}
	c.sent = time.Now()
	c.deadline = c.sent.Add(c.timeout)
	// Queued before it is written, so the reader finds it when the
	// answer comes; and the read deadline covers it from now on.
	x.queue = append(x.queue, c)
	c.alone = len(x.queue) == 1
	if c.alone {
		x.stdout.SetReadDeadline(c.deadline)
	}
	if len(x.unwritten) == 0 {
		x.firstUnwritten = c
	}
	x.unwritten = append(x.unwritten, c.line...)
	if len(c.line) == 0 || c.line[len(c.line)-1] != '\n' {
		x.unwritten = append(x.unwritten, '\n')
	}
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default: // the writer is awake already
	}
	return nil
}

// write writes the request lines as calls queue them, those queued
// while a write is in progress together in the next, until the process
// breaks. A write gets until the deadline of the oldest call in it: a
// process that stops reading its input holds up only its own calls (and
// is replaced once the oldest times out).
func (x *execProc) write() {
	var buf []byte
	for {
		select {
		case <-x.wake:
		case <-x.stop:
			return
		}
		x.mu.Lock()
		if x.broken {
			x.mu.Unlock()
			return
		}
		buf, x.unwritten = x.unwritten, buf[:0]
		// first may be failed, freed and reused once the process
		// breaks: only its identity is used after the lock.
		first := x.firstUnwritten
		x.firstUnwritten = nil
		var deadline time.Time
		var timeout time.Duration
		if first != nil {
			deadline, timeout = first.deadline, first.timeout
		}
		x.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		x.stdin.SetWriteDeadline(deadline)
		_, err := x.stdin.Write(buf)
		if cap(buf) > 64<<10 {
			buf = nil // do not keep one large request's buffer
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			// A line written in part leaves the process out of step.
			x.breakDown(first, ErrTimeout, fmt.Sprintf("the request was not read within %v", timeout))
		default:
			x.breakDown(first, ErrCrashed, "writing the request: "+err.Error())
		}
		return
	}
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
	var lastAnswer time.Time
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
		// The time it took on this call: since it was sent, or since the
		// answer before it if it waited behind that one.
		// Its first answer also waited for it to start: not counted.
		now := time.Now()
		switch {
		case lastAnswer.IsZero():
		case c.alone:
			noteTime(&e.aloneTime, now.Sub(c.sent))
		default:
			noteTime(&e.queuedTime, now.Sub(later(c.sent, lastAnswer)))
		}
		lastAnswer = now
		c.done <- execResult{reply: reply}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// noteTime folds one answer's time into a moving average (weight 1/8).
func noteTime(avg *atomic.Int64, d time.Duration) {
	for {
		old := avg.Load()
		next := int64(d)
		if old != 0 {
			next = old + (int64(d)-old)/8
		}
		if avg.CompareAndSwap(old, max(next, 1)) {
			return
		}
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
	close(x.stop)
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
	now := time.Now()
	for _, c := range queue {
		var err error
		switch {
		case closed:
			err = e.fail(ErrClosed, "")
		case c == cause && kind == errAbandoned:
			err = errAbandoned
		case c == cause && kind == ErrTimeout:
			x.e.warnf(x.log, "hook call timed out; process replaced", "timeout", c.timeout)
			err = e.fail(kind, detail)
		case c == cause:
			err = e.fail(kind, detail)
		case !c.deadline.IsZero() && !now.Before(c.deadline):
			// Its own deadline passed first, whichever failure the
			// goroutines noticed first (on a busy machine, another
			// call's write deadline could be handled before this one's
			// read deadline).
			err = e.fail(ErrTimeout, fmt.Sprintf("no answer within %v", c.timeout))
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
