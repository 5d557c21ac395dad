package yamux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// FrameWriter is a connection that writes frames' headers and bodies,
// given in order, as one batch (one system call) without first copying
// them into one buffer. node's secure connections are; on other
// connections a large frame is two writes.
type FrameWriter interface {
	WriteFrames(parts ...[]byte) error
}

// FrameQueuer is a FrameWriter that also takes frames without writing
// them: QueueFrames takes (seals, on node's record connections) parts in
// order onto a queue of its own and returns at once, with how many bytes
// wait to be written (Unsent); its next WriteFrames, or Flush, writes the
// queue first. A write that a deadline cuts short keeps what it did not
// send at the front of the queue. On such a connection a stream Write
// with a deadline queues its frames there, without a copy of its own, and
// returns without waiting on the socket.
type FrameQueuer interface {
	FrameWriter
	QueueFrames(parts ...[]byte) (unsent int, err error)
	Unsent() int
	Flush() error
}

// framesPerWrite is how many full data frames a stream's Write hands a
// FrameWriter at once.
const framesPerWrite = 4

// smallFrame is the largest body copied next to its header so that the
// frame is one write; larger bodies are written from the caller's slice.
const smallFrame = 4 << 10

// Session is one yamux connection: a network.MuxedConn. One goroutine
// reads frames; writers write their own frames under the write lock.
type Session struct {
	conn net.Conn
	fw   FrameWriter  // conn, if it is one
	fq   FrameQueuer  // conn, if it is one
	rr   RecordReader // conn, if it is one
	// recvChunk is the most of a frame's body buffered in one piece.
	recvChunk int
	cfg       *Config
	client    bool
	scope     network.PeerScope // nil: no accounting

	// wlock is the write lock, held while its value is in the channel:
	// a channel, so that waiting for it ends at a deadline or at close.
	// writeDeadline, whdr, whdrs and wparts belong to its holder.
	wlock         chan struct{}
	writeDeadline time.Time
	whdr          [headerSize]byte
	whdrs         [framesPerWrite][headerSize]byte
	wparts        [][]byte

	mu          sync.Mutex
	streams     map[uint32]*Stream // nil once closed
	nextID      uint32
	numIncoming uint32
	acceptQ     []*Stream
	closeErr    error // why the session ended; set once
	writeErr    error // a write failed: the session is ending
	streamErr   error // what its streams and calls return since

	acceptReady chan struct{} // a token: acceptQ may have grown
	synSlots    chan struct{} // a token per stream opened here and not acknowledged
	closed      chan struct{} // closed when closeErr is set
	readerDone  chan struct{}

	// Small frames (control frames, data up to smallFrame bytes) written
	// while another goroutine writes, or will write, are appended to
	// pending and the writer returns: the goroutine holding the write
	// lock writes them, batched, before it lets go (drain). So a busy
	// session batches small frames into few writes, the reader goroutine
	// never waits for the write lock (its pongs and resets go into
	// pending, written by a short-lived flusher goroutine when nobody
	// else writes), and neither do Reads sending window updates.
	//
	// pending is bounded by maxPending: past it writers wait for the
	// write lock themselves, ping answers are dropped, and the reader
	// waits (drained) to queue a reset, so a peer that sends without
	// reading is held back by TCP rather than queued for. Past
	// freePending its bytes are charged to the peer's resource scope
	// (charged), until the queue is written.
	qmu      sync.Mutex
	pending  []byte
	qparts   [][]byte                         // queueData's parts, under qmu
	qhdrs    [framesPerWrite][headerSize]byte // their headers
	charged  int                              // bytes of pending (and fq's queue) reserved in scope
	writing  bool                             // the write lock's holder will drain pending
	flusher  bool                             // a flusher goroutine was started and will drain
	qclosed  bool                             // the session ended: pending is dropped
	flushers sync.WaitGroup
	drained  chan struct{} // a token: pending was taken to be written
	// pongsDropped counts ping answers dropped because pending was full.
	pongsDropped atomic.Uint64

	// Keepalive and round-trip time.
	pingMu   sync.Mutex
	timer    *time.Timer // nil: stopped
	pingID   uint32
	pingSent time.Time // zero: no ping outstanding
	recvSeen atomic.Bool
	rtt      atomic.Int64 // smoothed, nanoseconds; 0 unknown
}

var _ network.MuxedConn = (*Session)(nil)

// newSession starts a session on conn; client sessions open odd stream
// IDs, server sessions even ones.
func newSession(conn net.Conn, client bool, cfg *Config, scope network.PeerScope) *Session {
	s := &Session{
		conn:        conn,
		cfg:         cfg,
		client:      client,
		scope:       scope,
		wlock:       make(chan struct{}, 1),
		streams:     make(map[uint32]*Stream),
		nextID:      2,
		acceptReady: make(chan struct{}, 1),
		synSlots:    make(chan struct{}, cfg.AcceptBacklog),
		closed:      make(chan struct{}),
		readerDone:  make(chan struct{}),
		drained:     make(chan struct{}, 1),
	}
	s.fw, _ = conn.(FrameWriter)
	s.fq, _ = conn.(FrameQueuer)
	s.recvChunk = recvChunk
	if rr, ok := conn.(RecordReader); ok && rr.ReadChunk() > 0 {
		s.rr = rr
		s.recvChunk = rr.ReadChunk()
	}
	if client {
		s.nextID = 1
	}
	go s.readLoop()
	if cfg.EnableKeepAlive {
		s.pingMu.Lock()
		s.sendPingLocked()
		s.timer = time.AfterFunc(cfg.ConnectionWriteTimeout, s.tick)
		s.pingMu.Unlock()
	}
	return s
}

// OpenStream opens a stream; its SYN is sent before it returns.
func (s *Session) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	if s.IsClosed() {
		return nil, s.streamErr
	}
	// As go-yamux: at most AcceptBacklog streams opened here wait for the
	// peer's ACK at once, so a burst of opens waits here rather than
	// overflowing the peer's backlog and being reset.
	select {
	case s.synSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closed:
		return nil, s.streamErr
	}
	span, err := s.beginSpan()
	if err != nil {
		<-s.synSlots
		return nil, err
	}
	s.mu.Lock()
	if s.closeErr != nil {
		s.mu.Unlock()
		span.Done()
		<-s.synSlots
		return nil, s.streamErr
	}
	id := s.nextID
	if id >= math.MaxUint32-1 {
		s.mu.Unlock()
		span.Done()
		<-s.synSlots
		return nil, ErrStreamsExhausted
	}
	s.nextID += 2
	st := newStream(s, id, stateInit, span)
	st.holdsSyn = true
	s.streams[id] = st
	s.mu.Unlock()
	if err := st.sendWindowUpdate(ctx.Done()); err != nil {
		st.forceClose(err)
		s.removeStream(st)
		if errors.Is(err, ErrTimeout) && ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, err
	}
	return st, nil
}

// beginSpan begins a stream's memory span and reserves its initial
// window, as go-yamux's memory manager does.
func (s *Session) beginSpan() (network.ResourceScopeSpan, error) {
	if s.scope == nil {
		return &network.NullScope{}, nil
	}
	span, err := s.scope.BeginSpan()
	if err != nil {
		return nil, fmt.Errorf("yamux: stream memory span: %w", err)
	}
	if err := span.ReserveMemory(initialWindow, 255); err != nil {
		span.Done()
		return nil, fmt.Errorf("yamux: stream window memory: %w", err)
	}
	return span, nil
}

// AcceptStream returns the next stream the peer opened, after sending
// its ACK.
func (s *Session) AcceptStream() (network.MuxedStream, error) {
	for {
		s.mu.Lock()
		if len(s.acceptQ) > 0 {
			st := s.acceptQ[0]
			st.inAcceptQ = false
			s.acceptQ[0] = nil
			s.acceptQ = s.acceptQ[1:]
			if len(s.acceptQ) == 0 {
				s.acceptQ = nil
			} else {
				notify(s.acceptReady)
			}
			s.mu.Unlock()
			if err := st.sendWindowUpdate(nil); err != nil {
				continue
			}
			return st, nil
		}
		if s.closeErr != nil {
			s.mu.Unlock()
			return nil, s.streamErr
		}
		s.mu.Unlock()
		select {
		case <-s.acceptReady:
		case <-s.closed:
		}
	}
}

// Close closes the session and its connection without a go away, as
// go-yamux does; every stream is reset. It waits for the session's
// goroutines and is safe to call more than once.
func (s *Session) Close() error {
	s.shutdown(&network.ConnError{ErrorCode: network.ConnNoError}, false, 0)
	s.wait()
	return nil
}

// CloseWithError closes the session, first sending a go away with code
// unless code is 0 (as go-yamux).
func (s *Session) CloseWithError(code network.ConnErrorCode) error {
	s.shutdown(&network.ConnError{ErrorCode: code}, code != 0, uint32(code))
	s.wait()
	return nil
}

func (s *Session) wait() {
	<-s.readerDone
	s.flushers.Wait()
}

// IsClosed reports whether the session ended.
func (s *Session) IsClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// CloseChan is closed when the session ends.
func (s *Session) CloseChan() <-chan struct{} { return s.closed }

// Err is why the session ended, nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

// As sets *target to s if target is a **Session.
func (s *Session) As(target any) bool {
	if t, ok := target.(**Session); ok {
		*t = s
		return true
	}
	return false
}

// NumStreams is the number of open streams.
func (s *Session) NumStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// RTT is the smoothed round-trip time the keepalive pings measured, 0
// before the first answer.
func (s *Session) RTT() time.Duration { return time.Duration(s.rtt.Load()) }

// shutdown ends the session once: why is the reason, streams are reset
// with the matching error, a go away with code is sent first if asked
// (at most goAwayWait), and the connection is closed. It does not wait
// for the session's goroutines, so any of them may call it.
func (s *Session) shutdown(why error, goAway bool, code uint32) {
	s.mu.Lock()
	if s.closeErr != nil {
		s.mu.Unlock()
		return
	}
	s.closeErr = why
	var ce *network.ConnError
	if errors.As(why, &ce) {
		s.streamErr = ce
	} else {
		s.streamErr = fmt.Errorf("%w: connection closed: %w", network.ErrReset, why)
	}
	streams := s.streams
	s.streams, s.acceptQ = nil, nil
	s.mu.Unlock()
	close(s.closed)

	s.qmu.Lock()
	s.qclosed = true
	s.pending = nil
	s.releaseChargeLocked()
	s.qmu.Unlock()
	s.pingMu.Lock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.pingMu.Unlock()

	if goAway {
		t := time.NewTimer(goAwayWait)
		select {
		case s.wlock <- struct{}{}:
			if s.conn.SetWriteDeadline(time.Now().Add(goAwayWait)) == nil {
				header{typ: typeGoAway, length: code}.encode(&s.whdr)
				s.conn.Write(s.whdr[:]) // best effort: the session ends anyway
			}
			<-s.wlock
		case <-t.C:
		}
		t.Stop()
	}
	s.conn.Close()
	for _, st := range streams {
		st.forceClose(s.streamErr)
		st.span.Done()
	}
}

// removeStream forgets a finished stream and releases its memory.
func (s *Session) removeStream(st *Stream) {
	s.mu.Lock()
	if s.streams == nil || s.streams[st.id] != st {
		s.mu.Unlock()
		return
	}
	delete(s.streams, st.id)
	if s.client == (st.id%2 == 0) {
		s.numIncoming--
	}
	if st.inAcceptQ {
		// Reset before it was accepted: it leaves the backlog, so streams
		// opened and reset at once neither pile up nor take honest
		// streams' places.
		st.inAcceptQ = false
		s.acceptQ = slices.DeleteFunc(s.acceptQ, func(q *Stream) bool { return q == st })
		if len(s.acceptQ) == 0 {
			s.acceptQ = nil
		}
	}
	s.mu.Unlock()
	st.span.Done()
}

// writeFrame writes one frame: a small one into pending if a writer
// will drain it, otherwise under the write lock, waiting for the lock
// until deadline (nil: no deadline) or the session's end. A large body
// is written from the caller's slice. A failed write ends the session.
func (s *Session) writeFrame(h header, body []byte, deadline <-chan struct{}) error {
	small := len(body) <= smallFrame
	if small {
		s.qmu.Lock()
		if (s.writing || s.flusher) && !s.qclosed && s.roomLocked(headerSize+len(body), maxPending) {
			s.pending = appendFrame(s.pending, h, body)
			s.qmu.Unlock()
			return nil
		}
		s.qmu.Unlock()
	}
	select {
	case s.wlock <- struct{}{}:
	case <-s.closed:
		return s.streamErr
	case <-deadline:
		return ErrTimeout
	}
	select {
	case <-s.closed:
		<-s.wlock
		return s.streamErr
	default:
	}
	buf, err := s.takePending()
	if err == nil {
		err = s.extendWriteDeadline()
	}
	if err == nil {
		if small {
			buf = appendFrame(buf, h, body)
			err = s.writeQueued(buf)
		} else if s.fw != nil {
			err = s.fw.WriteFrames(s.frameParts(buf, h, body)...)
		} else {
			if len(buf) > 0 {
				err = s.writeQueued(buf)
			}
			if err == nil {
				h.encode(&s.whdr)
				if _, err = s.conn.Write(s.whdr[:]); err == nil {
					_, err = s.conn.Write(body)
				}
			}
		}
	}
	putPending(buf)
	notify(s.drained)
	err = s.drain(err)
	<-s.wlock
	if err != nil {
		return s.writeFailed(err)
	}
	return nil
}

// queueData queues a data frame (a body of up to framesPerWrite ×
// MaxMessageSize bytes, in as many frames as it takes) for a writer to
// send, and returns: a stream Write with a deadline returns at it even
// while the connection does not take bytes, as with go-yamux, which
// queues every frame. On a FrameQueuer the frames go onto its queue
// (after what pending holds, to keep the order), elsewhere a copy into
// pending. It waits, until deadline or the session's end, while maxQueued
// bytes are queued.
func (s *Session) queueData(h header, body []byte, deadline <-chan struct{}, at time.Time) error {
	frames := (len(body) + int(s.cfg.MaxMessageSize) - 1) / int(s.cfg.MaxMessageSize)
	n := frames*headerSize + len(body)
	for {
		s.qmu.Lock()
		if s.qclosed {
			s.qmu.Unlock()
			return s.streamErr
		}
		queued := len(s.pending)
		if s.fq != nil {
			queued += s.fq.Unsent()
		}
		// When nobody writes, this Write writes the connection's queue
		// itself (flushUntil): what it queues is held only while it
		// writes, as an unqueued Write holds its slice, and is charged
		// only if its deadline leaves some of it queued.
		owner := false
		if s.fq != nil && !s.writing && !s.flusher {
			select {
			case s.wlock <- struct{}{}:
				owner, s.writing = true, true
			default:
			}
		}
		// Otherwise charged to the scope; one batch on an empty queue goes
		// even if the scope refuses, so that a Write makes progress.
		ok := owner || queued < maxQueued && s.chargeLocked(queued+n) || queued == 0
		var err error
		if ok && s.fq != nil {
			_, err = s.takePendingLocked()
			parts := s.qparts[:0]
			for i := 0; err == nil && len(body) > 0; i++ {
				c := min(len(body), int(s.cfg.MaxMessageSize))
				h.length = uint32(c)
				h.encode(&s.qhdrs[i])
				parts = append(parts, s.qhdrs[i][:], body[:c])
				body = body[c:]
				h.flags = 0
			}
			if err == nil {
				_, err = s.fq.QueueFrames(parts...)
			}
			clear(parts)
			s.qparts = parts[:0]
		} else if ok {
			for len(body) > 0 {
				c := min(len(body), int(s.cfg.MaxMessageSize))
				h.length = uint32(c)
				s.pending = appendFrame(s.pending, h, body[:c])
				body = body[c:]
				h.flags = 0
			}
		}
		if owner {
			s.qmu.Unlock()
			if err != nil {
				s.qmu.Lock()
				s.writing = false
				s.qmu.Unlock()
				<-s.wlock
				return s.writeFailed(err)
			}
			return s.flushUntil(at)
		}
		if ok && !s.writing && !s.flusher {
			s.flusher = true
			s.flushers.Add(1)
			go s.flush()
		}
		s.qmu.Unlock()
		if err != nil {
			return s.writeFailed(err)
		}
		if ok {
			return nil
		}
		select {
		case <-s.drained:
		case <-s.closed:
			return s.streamErr
		case <-deadline:
			return ErrTimeout
		}
	}
}

// flushUntil writes what the FrameQueuer holds, and then what was queued
// meanwhile, as the write lock's holder, until at (a stream's write
// deadline): a write that at cuts short leaves the rest on the
// connection's queue for a flusher to write, and returns nil, since the
// frames are the connection's now. The write lock is held (and given
// back).
func (s *Session) flushUntil(at time.Time) error {
	limit := time.Now().Add(s.cfg.ConnectionWriteTimeout)
	cut := at.Before(limit)
	if !cut {
		at = limit
	}
	s.writeDeadline = at
	err := s.conn.SetWriteDeadline(at)
	if err == nil {
		err = s.fq.Flush()
	}
	notify(s.drained)
	if err != nil && cut && errors.Is(err, os.ErrDeadlineExceeded) {
		s.qmu.Lock()
		s.chargeLocked(len(s.pending) + s.fq.Unsent()) // what stays queued
		s.writing = false
		if !s.flusher && !s.qclosed {
			s.flusher = true
			s.flushers.Add(1)
			go s.flush()
		}
		s.qmu.Unlock()
		<-s.wlock
		return nil
	}
	err = s.drain(err)
	<-s.wlock
	if err != nil {
		return s.writeFailed(err)
	}
	return nil
}

// frameParts lists, for a FrameWriter, the queued small frames (if any)
// then the data frames that carry body: as many as MaxMessageSize needs,
// h's flags on the first. Stream.write hands over at most framesPerWrite
// frames' worth of body. The write lock is held.
func (s *Session) frameParts(pending []byte, h header, body []byte) [][]byte {
	parts := s.wparts[:0]
	if len(pending) > 0 {
		parts = append(parts, pending)
	}
	for i := 0; len(body) > 0; i++ {
		n := min(len(body), int(s.cfg.MaxMessageSize))
		h.length = uint32(n)
		h.encode(&s.whdrs[i])
		parts = append(parts, s.whdrs[i][:], body[:n])
		body = body[n:]
		h.flags = 0
	}
	s.wparts = parts
	return parts
}

// maxPending bounds the bytes of small frames queued for the write
// lock's holder; beyond it writers wait for the lock themselves, ping
// answers are dropped and the reader waits to queue a reset.
const maxPending = 64 << 10

// maxQueued bounds the bytes queued with data frames of Writes that have
// a deadline (queueData): beyond it they wait for the queue to drain.
const maxQueued = 512 << 10

// freePending is how much of pending is not charged to the resource
// scope: what any busy session queues, and room for a reset however
// short of memory the scope is.
const freePending = 4 << 10

// chargeStep is the granularity pending's charge grows by.
const chargeStep = 16 << 10

// roomLocked reports whether n more bytes may be queued while at most
// bound are, charging the scope for them past freePending; qmu is held.
func (s *Session) roomLocked(n, bound int) bool {
	if len(s.pending) >= bound {
		return false
	}
	size := len(s.pending) + n
	if s.fq != nil && size > freePending+s.charged {
		size += s.fq.Unsent() // what pending handed to the connection
	}
	return s.chargeLocked(size)
}

// chargeLocked makes sure size queued bytes are charged to the scope past
// freePending, and reports whether they are; qmu is held.
func (s *Session) chargeLocked(size int) bool {
	if size <= freePending+s.charged || s.scope == nil {
		return true
	}
	step := (size - freePending - s.charged + chargeStep - 1) / chargeStep * chargeStep
	if s.scope.ReserveMemory(step, network.ReservationPriorityAlways) != nil {
		return false
	}
	s.charged += step
	return true
}

// releaseChargeLocked gives back what pending had charged, once nothing
// it held is queued or being written; qmu is held.
func (s *Session) releaseChargeLocked() {
	if s.charged > 0 {
		s.scope.ReleaseMemory(s.charged)
		s.charged = 0
	}
}

// takePending marks the write lock's holder as the drainer and takes the
// queued frames; the write lock is held.
func (s *Session) takePending() ([]byte, error) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	s.writing = true
	return s.takePendingLocked()
}

// takePendingLocked takes the queued frames; on a FrameQueuer it hands
// them to its queue instead, before anything queued later, and returns
// none. qmu is held.
func (s *Session) takePendingLocked() ([]byte, error) {
	buf := s.pending
	s.pending = nil
	if buf == nil {
		return nil, nil
	}
	notify(s.drained)
	if s.fq == nil {
		return buf, nil
	}
	parts := queuedParts(s.qparts[:0], buf)
	_, err := s.fq.QueueFrames(parts...)
	clear(parts)
	s.qparts = parts[:0]
	putPending(buf)
	return nil, err
}

// drain writes what was queued meanwhile (in pending, or on a
// FrameQueuer's own queue) until nothing is, then stops draining; the
// write lock is held. After an error it only stops.
func (s *Session) drain(err error) error {
	for {
		s.qmu.Lock()
		empty := len(s.pending) == 0 && (s.fq == nil || s.fq.Unsent() == 0)
		if err != nil || empty {
			s.writing = false
			if empty {
				s.releaseChargeLocked()
			}
			s.qmu.Unlock()
			return err
		}
		var buf []byte
		buf, err = s.takePendingLocked()
		s.qmu.Unlock()
		if err != nil {
			continue
		}
		if err = s.extendWriteDeadline(); err == nil {
			if len(buf) > 0 {
				err = s.writeQueued(buf)
			} else {
				err = s.fq.Flush()
			}
		}
		putPending(buf)
		notify(s.drained)
	}
}

// pendingBufs recycles pending's buffers.
var pendingBufs sync.Pool

// appendFrame appends a frame to a pending buffer, taking a recycled one
// when buf is nil.
func appendFrame(buf []byte, h header, body []byte) []byte {
	if buf == nil {
		if p, ok := pendingBufs.Get().(*[]byte); ok {
			buf = (*p)[:0]
		} else {
			buf = make([]byte, 0, 4<<10)
		}
	}
	var b [headerSize]byte
	h.encode(&b)
	buf = append(buf, b[:]...)
	return append(buf, body...)
}

func putPending(buf []byte) {
	if buf != nil && cap(buf) <= 2*(maxQueued+maxPending) {
		buf = buf[:0]
		pendingBufs.Put(&buf)
	}
}

// extendWriteDeadline moves the connection's write deadline to
// ConnectionWriteTimeout from now once half of it passed; the write lock
// is held.
func (s *Session) extendWriteDeadline() error {
	now := time.Now()
	if now.Add(s.cfg.ConnectionWriteTimeout / 2).After(s.writeDeadline) {
		s.writeDeadline = now.Add(s.cfg.ConnectionWriteTimeout)
		return s.conn.SetWriteDeadline(s.writeDeadline)
	}
	return nil
}

// writeFailed ends the session after a failed write and returns what the
// writer should. A peer that sent a go away and closed makes our next
// write fail, while its go away may still wait to be read: so the reader
// gets goAwayWait to find it, and the session ends with the go away if
// it does, with the write's error if not.
func (s *Session) writeFailed(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = ErrConnectionWriteTimeout
	}
	err = fmt.Errorf("yamux: writing: %w", err)
	s.mu.Lock()
	if s.writeErr == nil {
		s.writeErr = err
	}
	s.mu.Unlock()
	// The reader may not be reading (it can wait for pending to drain),
	// so the session ends after goAwayWait whatever the reader does.
	s.conn.SetReadDeadline(time.Now().Add(goAwayWait))
	t := time.NewTimer(2 * goAwayWait)
	select {
	case <-s.closed:
	case <-t.C:
		s.shutdown(err, false, 0)
	}
	t.Stop()
	return s.streamErr
}

// queueControl queues a control frame (no body) for the write lock's
// holder, or for a flusher goroutine started here. When pending is full
// it drops the frame and reports false unless must is set; then it waits
// until pending is written (the peer reads) or the session ends.
func (s *Session) queueControl(h header, must bool) bool {
	for {
		s.qmu.Lock()
		if s.qclosed {
			s.qmu.Unlock()
			return false
		}
		queued := s.roomLocked(headerSize, maxPending)
		if queued {
			s.pending = appendFrame(s.pending, h, nil)
		}
		if len(s.pending) > 0 && !s.writing && !s.flusher {
			s.flusher = true
			s.flushers.Add(1)
			go s.flush()
		}
		s.qmu.Unlock()
		if queued || !must {
			return queued
		}
		select {
		case <-s.drained:
		case <-s.closed:
			return false
		}
	}
}

// flush takes the write lock, drains pending, and ends.
func (s *Session) flush() {
	defer s.flushers.Done()
	select {
	case s.wlock <- struct{}{}:
	case <-s.closed:
		return
	}
	buf, err := s.takePending()
	s.qmu.Lock()
	s.flusher = false
	s.qmu.Unlock()
	if err == nil {
		err = s.extendWriteDeadline()
	}
	if err == nil && len(buf) > 0 {
		err = s.writeQueued(buf)
	} else if err == nil && s.fq != nil {
		err = s.fq.Flush()
	}
	putPending(buf)
	notify(s.drained)
	err = s.drain(err)
	<-s.wlock
	if err != nil {
		s.writeFailed(err)
	}
}

// writeQueued writes queued frames. On a FrameWriter each large body is
// a part of its own (a record of its own on node's record connections,
// which the peer opens straight into a Read's slice); the write lock is
// held.
func (s *Session) writeQueued(buf []byte) error {
	if s.fw == nil {
		_, err := s.conn.Write(buf)
		return err
	}
	parts := queuedParts(s.wparts[:0], buf)
	s.wparts = parts
	err := s.fw.WriteFrames(parts...)
	clear(parts)
	return err
}

// queuedParts appends to parts the frames in buf, each body larger than
// smallFrame a part of its own and the bytes between them parts too.
func queuedParts(parts [][]byte, buf []byte) [][]byte {
	start := 0
	for off := 0; off+headerSize <= len(buf); {
		h, _ := decodeHeader((*[headerSize]byte)(buf[off : off+headerSize]))
		off += headerSize
		if h.typ != typeData {
			continue
		}
		if h.length > smallFrame {
			parts = append(parts, buf[start:off], buf[off:off+int(h.length)])
			start = off + int(h.length)
		}
		off += int(h.length)
	}
	if start < len(buf) {
		parts = append(parts, buf[start:])
	}
	return parts
}

// readLoop reads frames until the connection fails or the peer breaks
// the protocol, then ends the session.
func (s *Session) readLoop() {
	defer close(s.readerDone)
	err := s.readFrames()
	if errors.Is(err, ErrProtocol) {
		s.shutdown(err, true, goAwayProtoErr)
		return
	}
	var ce *network.ConnError
	if !errors.As(err, &ce) {
		s.mu.Lock()
		if s.writeErr != nil {
			err = s.writeErr
		}
		s.mu.Unlock()
	}
	s.shutdown(err, false, 0)
}

func (s *Session) readFrames() error {
	hb := new([headerSize]byte)
	for {
		if _, err := io.ReadFull(s.conn, hb[:]); err != nil {
			return err
		}
		if !s.recvSeen.Load() {
			s.recvSeen.Store(true)
		}
		h, err := decodeHeader(hb)
		if err != nil {
			return err
		}
		switch h.typ {
		case typeData, typeWindowUpdate:
			err = s.handleStream(h)
		case typePing:
			s.handlePing(h)
		case typeGoAway:
			return &network.ConnError{Remote: true, ErrorCode: network.ConnErrorCode(h.length)}
		}
		if err != nil {
			return err
		}
	}
}

func (s *Session) handleStream(h header) error {
	var st *Stream
	if h.flags&flagSYN != 0 {
		var err error
		if st, err = s.incomingStream(h.stream); err != nil {
			return err
		}
	} else {
		s.mu.Lock()
		st = s.streams[h.stream]
		s.mu.Unlock()
	}
	if st == nil {
		// A stream we reset or refused: its data is dropped. No window
		// ever let the peer send more than MaxStreamWindowSize to a stream,
		// or more than the initial window to one it opens with this frame.
		if h.typ == typeData && h.length > 0 {
			limit := s.cfg.MaxStreamWindowSize
			if h.flags&flagSYN != 0 {
				limit = initialWindow
			}
			if h.length > limit {
				return fmt.Errorf("%w: %d bytes sent to closed stream %d, more than any window", ErrProtocol, h.length, h.stream)
			}
			if _, err := io.CopyN(io.Discard, s.conn, int64(h.length)); err != nil {
				return err
			}
		}
		return nil
	}
	if h.typ == typeWindowUpdate {
		st.gotWindowUpdate(h)
		return nil
	}
	return st.gotData(h, s.conn)
}

// incomingStream registers a stream the peer opens and returns it (its
// first frame goes to it, even if it is accepted and reset meanwhile), or
// resets it and returns nil when the accept queue or the stream limit is
// full or the resource manager refuses its memory.
func (s *Session) incomingStream(id uint32) (*Stream, error) {
	if s.client != (id%2 == 0) {
		return nil, fmt.Errorf("%w: stream %d opened with the wrong parity (both ends are clients or servers)", ErrProtocol, id)
	}
	s.mu.Lock()
	if s.streams == nil {
		s.mu.Unlock()
		return nil, nil
	}
	if _, dup := s.streams[id]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: stream %d opened twice", ErrProtocol, id)
	}
	full := s.numIncoming >= s.cfg.MaxIncomingStreams || len(s.acceptQ) >= s.cfg.AcceptBacklog
	s.mu.Unlock()
	if full {
		s.queueControl(header{typ: typeWindowUpdate, flags: flagRST, stream: id}, true)
		return nil, nil
	}
	span, err := s.beginSpan()
	if err != nil {
		s.queueControl(header{typ: typeWindowUpdate, flags: flagRST, stream: id, length: uint32(network.StreamResourceLimitExceeded)}, true)
		return nil, nil
	}
	st := newStream(s, id, stateSYNReceived, span)
	s.mu.Lock()
	if s.streams == nil {
		s.mu.Unlock()
		span.Done()
		return nil, nil
	}
	s.streams[id] = st
	s.numIncoming++
	s.acceptQ = append(s.acceptQ, st)
	st.inAcceptQ = true
	s.mu.Unlock()
	notify(s.acceptReady)
	return st, nil
}

func (s *Session) handlePing(h header) {
	if h.flags&flagSYN != 0 {
		if !s.queueControl(header{typ: typePing, flags: flagACK, length: h.length}, false) {
			s.pongsDropped.Add(1)
		}
		return
	}
	if h.flags&flagACK == 0 {
		return
	}
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	if s.pingSent.IsZero() || h.length != s.pingID {
		return
	}
	rtt := time.Since(s.pingSent)
	s.pingSent = time.Time{}
	if prev := s.rtt.Load(); prev == 0 {
		s.rtt.Store(int64(rtt))
	} else {
		s.rtt.Store(prev/2 + int64(rtt)/2)
	}
	if s.timer != nil {
		s.timer.Reset(s.cfg.KeepAliveInterval)
	}
}

// sendPingLocked sends a new ping; pingMu is held.
func (s *Session) sendPingLocked() {
	s.pingID++
	s.pingSent = time.Now()
	s.queueControl(header{typ: typePing, flags: flagSYN, length: s.pingID}, false)
}

// tick runs every KeepAliveInterval, and ConnectionWriteTimeout after a
// ping: a ping unanswered with nothing else received since it was sent
// ends the session; otherwise a new ping goes out (which also measures
// the round trip time).
func (s *Session) tick() {
	s.pingMu.Lock()
	if s.timer == nil {
		s.pingMu.Unlock()
		return
	}
	seen := s.recvSeen.Swap(false)
	if !s.pingSent.IsZero() && !seen && time.Since(s.pingSent) >= s.cfg.ConnectionWriteTimeout {
		s.pingMu.Unlock()
		s.shutdown(ErrKeepAliveTimeout, false, 0)
		return
	}
	s.sendPingLocked()
	s.timer.Reset(s.cfg.ConnectionWriteTimeout)
	s.pingMu.Unlock()
}

// notify leaves a token in ch unless one is there.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
