package yamuxtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/goleak"
)

// Muxer is a muxer under test.
type Muxer struct {
	Name      string
	Transport network.Multiplexer
	// Original marks the muxer the others replace (go-yamux): it runs
	// first, and the others' heap growth is bounded by its growth in the
	// same case plus the case's allowance.
	Original bool
}

// Suite is what Run runs the cases against.
type Suite struct {
	Muxers []Muxer
	// Pipe connects a victim and an attacker for one case. The suite
	// closes both ends after the case; Pipe may register cleanups too.
	Pipe func(t *testing.T) Conns
}

// Conns are the two ends of a connection.
type Conns struct {
	// Victim is the end a session is made on, as the server (the
	// attacker opens odd stream IDs). Attacker is the end that writes raw
	// frames (on a secure connection, as its plaintext) and reads what
	// the victim sends.
	Victim, Attacker net.Conn
	// VictimSocket and AttackerSocket are the sockets under them (Victim
	// and Attacker themselves on a plain connection), wrapped by Count
	// before anything was sent: the suite counts what crosses them, and
	// plays a peer that stops reading on VictimSocket.
	VictimSocket, AttackerSocket *Counter
}

// Limits of the suite. A deadline must be met within deadlineSlack; other
// conditions (a session closing, a stream accepted) within waitLimit.
// Generous, for a loaded two-core machine and the race detector.
const (
	readDeadline  = 200 * time.Millisecond
	deadlineSlack = 2 * time.Second
	waitLimit     = 10 * time.Second
	// A victim that took in nothing of what was sent for stallLimit
	// stopped reading, and after a flood, one that took in nothing for
	// quiet took in all it will.
	stallLimit = time.Second
	quiet      = 500 * time.Millisecond
	// peerBuffer is what a peer that stopped reading still takes in: the
	// socket buffers between it and the victim.
	peerBuffer = 128 << 10
)

// Bounds on the victim's heap growth (beyond the memory charged to its
// resource manager scope).
const (
	// floodAllowance: a flood of small frames may make the victim hold
	// this much that no scope accounts for, and no more than this beyond
	// the original's growth.
	floodAllowance = 1 << 20
	// floodCap: and never more than this in all, whatever the scope
	// reserved (a SYN flood fills the accept backlog, reserving 256 KiB
	// per stream that holds nothing).
	floodCap = 4 << 20
	// streamsAllowance: many streams filled and never read may hold this
	// much beyond their reserved windows, plus perStream each.
	streamsAllowance = 1 << 20
	perStream        = 8 << 10
	// giantAllocation: what a giant or over-window frame may make the
	// victim allocate in all (not just hold) before closing.
	giantAllocation = 4 << 20
)

type testCase struct {
	name string
	run  func(e *env)
}

func cases() []testCase {
	return []testCase{
		{"ping-flood", pingFlood},
		{"syn-flood", synFlood},
		{"syn-rst-flood", synRSTFlood},
		{"window-update-flood", windowUpdateFlood},
		{"window-violation/one-frame", func(e *env) { windowViolation(e, initialWindow+1) }},
		{"window-violation/two-frames", func(e *env) { windowViolation(e, 192<<10, 128<<10) }},
		{"giant-frame/4GiB-on-syn", func(e *env) { giantFrame(e, true, 0xFFFFFFFF) }},
		{"giant-frame/just-over-window", func(e *env) { giantFrame(e, false, initialWindow+1) }},
		{"stall-mid-frame", stallMidFrame},
		{"write-deadline-no-window", writeDeadlineNoWindow},
		{"write-deadline-not-reading", writeDeadlineNotReading},
		{"truncated/mid-body", func(e *env) { truncated(e, true) }},
		{"truncated/mid-header", func(e *env) { truncated(e, false) }},
		{"many-streams-never-read", manyStreamsNeverRead},
	}
}

// Run runs every case against every muxer of s, as subtests named
// muxer/case, the originals first.
func Run(t *testing.T, s Suite) {
	muxers := slices.Clone(s.Muxers)
	slices.SortStableFunc(muxers, func(a, b Muxer) int {
		switch {
		case a.Original == b.Original:
			return 0
		case a.Original:
			return -1
		}
		return 1
	})
	// The originals' heap growth per case.
	baseline := map[string]int64{}
	for _, m := range muxers {
		t.Run(m.Name, func(t *testing.T) {
			for _, c := range cases() {
				t.Run(c.name, func(t *testing.T) {
					e := newEnv(t, s, m)
					if g, ok := baseline[c.name]; ok && !m.Original {
						e.orig, e.hasOrig = g, true
					}
					c.run(e)
					if m.Original && e.measured {
						baseline[c.name] = max(e.growth, 0)
					}
				})
			}
		})
	}
}

// env is one case's victim and attacker.
type env struct {
	t        *testing.T
	victim   network.MuxedConn
	attacker net.Conn
	conns    Conns
	v0, a0   int64 // the sockets' counts when the session started
	scope    *scope
	written  int64  // bytes the attacker wrote (plaintext)
	buf      []byte // the attacker's frames, made before the heap is measured

	heap0    int64
	orig     int64 // the original's growth in this case
	hasOrig  bool
	growth   int64 // this muxer's, once measured
	measured bool
}

func newEnv(t *testing.T, s Suite, m Muxer) *env {
	// Registered first, so checked after every other cleanup.
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	c := s.Pipe(t)
	closeAll := func() {
		c.Victim.Close()
		c.Attacker.Close()
		c.VictimSocket.Close()
		c.AttackerSocket.Close()
	}
	sc := newScope(t)
	v0, a0 := c.VictimSocket.read.Load(), c.AttackerSocket.written.Load()
	mc, err := m.Transport.NewConn(c.Victim, true, sc.peer)
	if err != nil {
		closeAll()
		sc.close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mc.Close()
		closeAll()
		sc.close()
	})
	return &env{t: t, victim: mc, attacker: c.Attacker, conns: c, v0: v0, a0: a0, scope: sc, buf: make([]byte, 0, 64<<10)}
}

// taken is how much of what the attacker's socket was given the
// victim's socket has taken, and that amount.
func (e *env) taken() (taken, given int64) {
	return e.conns.VictimSocket.read.Load() - e.v0, e.conns.AttackerSocket.written.Load() - e.a0
}

// floodBytes is how much a flood writes: enough that a victim queueing
// an answer to every frame holds several times the bounds.
func (e *env) floodBytes() int64 {
	if testing.Short() {
		return 6 << 20
	}
	return 24 << 20
}

// peerStopsReading makes the attacker a peer that reads no more: the
// victim's socket takes peerBuffer more bytes, then its writes block (see
// Counter). The attacker's own socket is drained, so that nothing else
// holds up what it sends, below any secure connection: a peer that stops
// reading opens nothing, and the heap the suite measures is the whole
// process's, where the attacker's read buffers (256 KiB on a record
// connection) would count as the victim's.
func (e *env) peerStopsReading() {
	e.conns.VictimSocket.stopPeerReading(peerBuffer)
	go drain(e.conns.AttackerSocket)
}

// startHeap records the heap a later growth is measured from.
func (e *env) startHeap() { e.heap0 = heapInUse() }

// write writes b for the attacker, failing the test if it cannot.
func (e *env) write(b []byte) {
	e.t.Helper()
	e.attacker.SetWriteDeadline(time.Now().Add(waitLimit))
	n, err := e.attacker.Write(b)
	e.written += int64(n)
	if err != nil {
		e.t.Fatalf("attacker's write of %d bytes: %v", len(b), err)
	}
}

// flood writes the frames next appends to an empty buffer, again and
// again, until limit bytes are written, or the victim stopped taking in
// what was sent (for stallLimit: its session no longer reads, or holds the
// attacker back), or a write failed (the session ended). It says which.
func (e *env) flood(limit int64, next func(b []byte) []byte) string {
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for written.Load() < limit {
			n, err := e.attacker.Write(next(e.buf[:0]))
			written.Add(int64(n))
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	stalled := false
	last, since := int64(-1), time.Now()
	for {
		select {
		case err := <-done:
			e.written += written.Load()
			switch {
			case stalled:
				return fmt.Sprintf("the victim took in nothing for %v after %s were written", stallLimit, mib(e.written))
			case err != nil:
				return fmt.Sprintf("its writes failed after %s: %v", mib(e.written), err)
			}
			return fmt.Sprintf("it wrote all %s", mib(e.written))
		case <-tick.C:
			n, sent := e.taken()
			switch {
			case n != last || n >= sent:
				last, since = n, time.Now()
			case !stalled && time.Since(since) > stallLimit:
				stalled = true
				e.attacker.SetWriteDeadline(time.Now()) // ends the blocked write
			}
		}
	}
}

// intake says how much of what the attacker sent the victim took in.
func (e *env) intake() string {
	n, sent := e.taken()
	return fmt.Sprintf("the victim's socket took in %s of the %s sent", mib(n), mib(sent))
}

// settle waits until the victim has taken in all the attacker sent and
// handled it (its reader waits on the socket for more: what its heap holds
// then is what the flood left, not frames still being worked through,
// which on a loaded machine under the race detector lasted long enough to
// be measured), or its session ended, or it has taken nothing for quiet
// (it stopped reading), or, having taken it all, its reader has not come
// back for more for stallLimit (it is blocked on a frame).
func (e *env) settle() {
	last, since := int64(-1), time.Now()
	for end := time.Now().Add(waitLimit); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		n, sent := e.taken()
		all := n >= sent
		switch {
		case all && (e.conns.VictimSocket.waiting(e.v0+n) || e.victim.IsClosed()):
			return
		case n != last:
			last, since = n, time.Now()
		case !all && time.Since(since) > quiet, all && time.Since(since) > stallLimit:
			return
		}
	}
}

// waitTaken waits until the victim has taken in all the attacker sent.
func (e *env) waitTaken() {
	e.t.Helper()
	for end := time.Now().Add(waitLimit); ; time.Sleep(time.Millisecond) {
		n, sent := e.taken()
		if n >= sent {
			return
		}
		if time.Now().After(end) {
			e.t.Fatalf("the victim took %d of the %d bytes sent in %v", n, sent, waitLimit)
		}
	}
}

// checkHeld measures the victim's heap growth since startHeap and fails
// unless it is at most the memory its scope reserved plus allowance, at
// most the original's growth plus allowance (when the original ran this
// case), and at most limit (0: no such bound). what describes the case's
// figures for the message.
func (e *env) checkHeld(allowance, limit int64, what string) {
	e.t.Helper()
	growth := heapInUse() - e.heap0
	reserved := e.scope.memory()
	e.growth, e.measured = growth, true
	orig := "the original did not run"
	if e.hasOrig {
		orig = "the original's growth " + mib(e.orig)
	}
	e.t.Logf("heap +%s, scope reserved %s, session closed %v; %s; %s", mib(growth), mib(reserved), e.victim.IsClosed(), what, orig)
	if growth > reserved+allowance {
		e.t.Errorf("the victim's heap grew by %s, more than the %s its scope reserved + %s: %s is held that the resource manager does not know of (%s)",
			mib(growth), mib(reserved), mib(allowance), mib(growth-reserved), what)
	}
	if e.hasOrig && growth > e.orig+allowance {
		e.t.Errorf("the victim's heap grew by %s, more than the original's %s + %s (%s)", mib(growth), mib(e.orig), mib(allowance), what)
	}
	if limit > 0 && growth > limit {
		e.t.Errorf("the victim's heap grew by %s, more than %s (%s)", mib(growth), mib(limit), what)
	}
}

// accept accepts the next stream on the victim.
func (e *env) accept() network.MuxedStream {
	e.t.Helper()
	type result struct {
		st  network.MuxedStream
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := e.victim.AcceptStream()
		ch <- result{st, err}
	}()
	t := time.NewTimer(waitLimit)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			e.t.Fatalf("accept: %v", r.err)
		}
		return r.st
	case <-t.C:
		e.t.Fatalf("no stream accepted in %v", waitLimit)
		return nil
	}
}

// openStream opens stream id from the attacker with a window update
// carrying SYN and grant (added to the victim's send window), and
// accepts it on the victim.
func (e *env) openStream(id, grant uint32) network.MuxedStream {
	e.t.Helper()
	e.write(header{typ: typeWindowUpdate, flags: flagSYN, stream: id, length: grant}.appendTo(nil))
	return e.accept()
}

// waitClosed waits for the victim's session to end.
func (e *env) waitClosed(why string) {
	e.t.Helper()
	for end := time.Now().Add(waitLimit); !e.victim.IsClosed(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			e.t.Fatalf("the victim's session is still open %v after %s", waitLimit, why)
		}
	}
}

// ioResult is what one Read or Write returned, and when.
type ioResult struct {
	n   int
	err error
	at  time.Time
}

// readOnce reads once into buf; waitParked finds it by name.
func readOnce(st network.MuxedStream, buf []byte, out chan<- ioResult) {
	n, err := st.Read(buf)
	out <- ioResult{n, err, time.Now()}
}

// writeOnce writes b once.
func writeOnce(st network.MuxedStream, b []byte, out chan<- ioResult) {
	n, err := st.Write(b)
	out <- ioResult{n, err, time.Now()}
}

// drain reads and drops what the victim sends until the connection ends.
func drain(c net.Conn) {
	c.SetReadDeadline(time.Time{})
	io.Copy(io.Discard, c)
}

// waitParked waits until a goroutine running this package's function fn
// is blocked (in a select, on a channel or a condition variable) rather
// than running: a Read it called is waiting for data.
func (e *env) waitParked(fn string) {
	e.t.Helper()
	buf := make([]byte, 1<<20)
	for end := time.Now().Add(waitLimit); ; time.Sleep(time.Millisecond) {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if !strings.Contains(g, "yamuxtest."+fn+"(") {
				continue
			}
			state, _, _ := strings.Cut(g, "\n")
			for _, s := range []string{"[select", "[chan receive", "[sync.Cond.Wait"} {
				if strings.Contains(state, s) {
					return
				}
			}
		}
		if time.Now().After(end) {
			e.t.Fatalf("no goroutine in %s blocked within %v", fn, waitLimit)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// pattern is n bytes of a repeating non-trivial sequence.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}
