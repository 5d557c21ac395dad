package yamux

import (
	"fmt"
	"io"
	"sync"
	"time"

	pool "github.com/libp2p/go-buffer-pool"
	"github.com/libp2p/go-libp2p/core/network"
)

// Stream states, as go-yamux's.
const (
	stateInit        uint8 = iota // opened here, SYN not sent
	stateSYNSent                  // opened here, not acknowledged
	stateSYNReceived              // opened by the peer, ACK not sent
	stateEstablished
	stateFinished // both halves closed, or reset
)

// Half-stream states.
const (
	halfOpen   uint8 = iota
	halfClosed       // FIN sent (write) or received (read)
	halfReset
)

// errReadClosed is a read after CloseRead.
var errReadClosed = fmt.Errorf("%w: stream closed for reading", network.ErrReset)

// Stream is one yamux stream: a network.MuxedStream. It has no goroutine
// of its own; the session's reader delivers its data and writers write
// their own frames.
type Stream struct {
	s    *Session
	id   uint32
	span network.ResourceScopeSpan
	// inAcceptQ: the peer opened it and it waits in the session's accept
	// queue (under the session's mu).
	inAcceptQ bool
	// holdsSyn: opened here and not acknowledged, it holds one of the
	// session's synSlots (under mu).
	holdsSyn bool

	readMu  sync.Mutex // one Read at a time
	writeMu sync.Mutex // one Write at a time: a Write's bytes stay together

	mu                    sync.Mutex
	state                 uint8
	readState, writeState uint8
	readErr, writeErr     error

	sendWindow uint32 // what the peer lets us send

	// Receiving. credit is what the peer may still send, inflight what
	// the data frame being received announced and has not delivered yet,
	// buffered what arrived and was not read; the peer's view of the
	// window is their sum, which window updates bring back to recvWindow.
	// So the stream never holds more than the window it advertised.
	recvWindow uint32
	credit     uint32
	inflight   uint32
	buffered   uint32
	segs       [][]byte  // buffered data: segs[0][off:], segs[1], ...
	segsInline [4][]byte // segs' storage while it holds at most 4
	off        int
	epoch      time.Time // of the last window update, for tuning

	// A Read blocked on an empty stream leaves its slice in waiter; the
	// session's reader then reads the next frame's body straight into it
	// (filling, direct counts the bytes) instead of into a buffer.
	waiter  []byte
	direct  int
	filling bool

	recvNotify, sendNotify chan struct{} // tokens: something changed
	readDeadline           deadline
	writeDeadline          deadline
}

var _ network.MuxedStream = (*Stream)(nil)

func newStream(s *Session, id uint32, state uint8, span network.ResourceScopeSpan) *Stream {
	st := &Stream{
		s: s, id: id, span: span, state: state,
		sendWindow: initialWindow,
		recvWindow: initialWindow, credit: initialWindow,
		epoch:      time.Now(),
		recvNotify: make(chan struct{}, 1),
		sendNotify: make(chan struct{}, 1),
	}
	st.segs = st.segsInline[:0] // most streams buffer a few segments: no slice to grow
	return st
}

// StreamID is the stream's yamux ID.
func (st *Stream) StreamID() uint32 { return st.id }

// Read reads data as it arrives; io.EOF after the peer's CloseWrite.
func (st *Stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	st.readMu.Lock()
	defer st.readMu.Unlock()
	st.mu.Lock()
	for {
		switch {
		case st.readState == halfReset:
			err := st.readErr
			st.mu.Unlock()
			return 0, err
		case st.buffered > 0:
			n := st.copyOut(p)
			return n, st.consumed()
		case st.readState == halfClosed:
			st.mu.Unlock()
			return 0, io.EOF
		}
		dl := st.readDeadline.ch
		if isClosed(dl) {
			st.mu.Unlock()
			return 0, ErrTimeout
		}
		st.waiter = p
		st.mu.Unlock()
		timedOut := false
		select {
		case <-st.recvNotify:
		case <-dl:
			timedOut = true
		}
		st.mu.Lock()
		for st.filling { // the reader is writing into p: wait for it
			st.mu.Unlock()
			<-st.recvNotify
			st.mu.Lock()
		}
		st.waiter = nil
		if n := st.direct; n > 0 {
			st.direct = 0
			return n, st.consumed()
		}
		if timedOut && st.readDeadline.ch == dl {
			st.mu.Unlock()
			return 0, ErrTimeout
		}
	}
}

// copyOut moves buffered data into p; st.mu is held.
func (st *Stream) copyOut(p []byte) int {
	n := 0
	for n < len(p) && len(st.segs) > 0 {
		seg := st.segs[0]
		c := copy(p[n:], seg[st.off:])
		n += c
		st.off += c
		if st.off == len(seg) {
			pool.Put(seg[:cap(seg)])
			st.segs[0] = nil
			st.segs = st.segs[1:]
			st.off = 0
		}
	}
	if len(st.segs) == 0 {
		st.segs = st.segsInline[:0]
	}
	st.buffered -= uint32(n)
	return n
}

// consumed sends a window update after a Read if one is due; it is
// called with st.mu held and releases it. A failed update ends the
// session, so the Read itself still succeeds.
func (st *Stream) consumed() error {
	h, ok := st.windowUpdateLocked()
	st.mu.Unlock()
	if ok {
		st.s.writeFrame(h, nil, nil)
	}
	return nil
}

// sendWindowUpdate sends the SYN or ACK of a new stream.
func (st *Stream) sendWindowUpdate(deadline <-chan struct{}) error {
	st.mu.Lock()
	h, ok := st.windowUpdateLocked()
	st.mu.Unlock()
	if !ok {
		return nil
	}
	if err := st.s.writeFrame(h, nil, deadline); err != nil {
		st.mu.Lock()
		st.untakeFlags(h.flags)
		st.credit -= h.length
		st.mu.Unlock()
		return err
	}
	return nil
}

// windowUpdateLocked decides the window update to send, if any: when a
// SYN or ACK is due, or when the peer's view of the window fell to half
// of it. Like go-yamux it doubles the window (up to the maximum, if the
// resource manager grants the memory) when the previous update was less
// than four round trips ago: the window, not the reader, limits the
// stream then. st.mu is held.
func (st *Stream) windowUpdateLocked() (header, bool) {
	if st.readState != halfOpen && st.state != stateInit && st.state != stateSYNReceived {
		return header{}, false
	}
	flags := st.takeFlags()
	cur := st.credit + st.inflight + st.buffered
	var delta uint32
	if cur < st.recvWindow {
		delta = st.recvWindow - cur
	}
	if flags == 0 && delta < st.recvWindow/2 {
		return header{}, false
	}
	now := time.Now()
	if rtt := st.s.RTT(); flags == 0 && rtt > 0 && now.Sub(st.epoch) < 4*rtt && st.recvWindow < st.s.cfg.MaxStreamWindowSize {
		grown := min(uint64(st.recvWindow)*2, uint64(st.s.cfg.MaxStreamWindowSize))
		if st.span.ReserveMemory(int(grown-uint64(st.recvWindow)), 128) == nil {
			st.recvWindow = uint32(grown)
			delta = st.recvWindow - cur
		}
	}
	st.epoch = now
	st.credit += delta
	return header{typ: typeWindowUpdate, flags: flags, stream: st.id, length: delta}, true
}

// takeFlags returns the SYN or ACK the next frame carries; st.mu is held.
func (st *Stream) takeFlags() uint16 {
	switch st.state {
	case stateInit:
		st.state = stateSYNSent
		return flagSYN
	case stateSYNReceived:
		st.state = stateEstablished
		return flagACK
	}
	return 0
}

// untakeFlags undoes takeFlags after a frame was not sent.
func (st *Stream) untakeFlags(flags uint16) {
	switch {
	case flags&flagSYN != 0 && st.state == stateSYNSent:
		st.state = stateInit
	case flags&flagACK != 0 && st.state == stateEstablished:
		st.state = stateSYNReceived
	}
}

// Write writes b in data frames as the peer's window allows, each frame
// written by this goroutine straight from b.
func (st *Stream) Write(b []byte) (int, error) {
	st.writeMu.Lock()
	defer st.writeMu.Unlock()
	total := 0
	for total < len(b) {
		n, err := st.write(b[total:])
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (st *Stream) write(b []byte) (int, error) {
	st.mu.Lock()
	for {
		switch st.writeState {
		case halfClosed:
			st.mu.Unlock()
			return 0, ErrStreamClosed
		case halfReset:
			err := st.writeErr
			st.mu.Unlock()
			return 0, err
		}
		dl := st.writeDeadline.ch
		if isClosed(dl) {
			st.mu.Unlock()
			return 0, ErrTimeout
		}
		if st.sendWindow > 0 {
			break
		}
		st.mu.Unlock()
		timedOut := false
		select {
		case <-st.sendNotify:
		case <-dl:
			timedOut = true
		}
		st.mu.Lock()
		if timedOut && st.writeDeadline.ch == dl {
			st.mu.Unlock()
			return 0, ErrTimeout
		}
	}
	n := min(st.sendWindow, st.s.cfg.MaxMessageSize, uint32(min(len(b), 1<<31)))
	if st.s.fw != nil {
		// Several frames, written as one batch (Session.frameParts).
		n = min(st.sendWindow, framesPerWrite*st.s.cfg.MaxMessageSize, uint32(min(len(b), 1<<31)))
	}
	st.sendWindow -= n
	flags := st.takeFlags()
	dl, guarded, at := st.writeDeadline.ch, st.writeDeadline.armed, st.writeDeadline.at
	st.mu.Unlock()
	h := header{typ: typeData, flags: flags, stream: st.id, length: n}
	var err error
	if guarded {
		// With a deadline: queued, so the Write never waits on a
		// connection write it cannot interrupt.
		err = st.s.queueData(h, b[:n], dl, at)
	} else {
		err = st.s.writeFrame(h, b[:n], dl)
	}
	if err != nil {
		st.mu.Lock()
		st.sendWindow += n
		st.untakeFlags(flags)
		st.mu.Unlock()
		return 0, err
	}
	return int(n), nil
}

// gotWindowUpdate handles a window update frame from the peer.
func (st *Stream) gotWindowUpdate(h header) {
	st.mu.Lock()
	st.gotFlagsLocked(h, true)
	if h.flags&flagRST == 0 {
		st.sendWindow += h.length
	}
	finished := st.gotFlagsLocked(h, false)
	st.mu.Unlock()
	notify(st.sendNotify)
	if h.flags&(flagFIN|flagRST) != 0 {
		notify(st.recvNotify)
	}
	if finished {
		st.cleanup()
	}
}

// gotData reads a data frame's body from r, in pieces: into pooled
// buffers of at most the session's recvChunk bytes, each readable as soon
// as it arrived; or, on a RecordReader, whenever a Read is blocked on the
// empty stream with a slice that takes the rest of the frame or at least
// recvChunk bytes, straight into its slice. It fills a Read's slice only
// with a record that has arrived whole (Readable), so a peer that stalls
// mid-frame never holds a Read past its deadline. A smaller Read (a
// length prefix read a byte at a time) is woken once, with the frame
// buffered, instead of once for its few bytes and again for the rest. It
// runs on the session's reader goroutine.
func (st *Stream) gotData(h header, r io.Reader) error {
	st.mu.Lock()
	st.gotFlagsLocked(h, true)
	n := h.length
	if credit := st.credit; n > credit {
		st.mu.Unlock()
		return fmt.Errorf("%w: stream %d sent %d bytes with %d left in its window", ErrProtocol, st.id, n, credit)
	}
	st.credit -= n
	st.inflight = n
	st.mu.Unlock()

	rr := st.s.rr
	var err error
	for left := int(n); left > 0 && err == nil; {
		piece := min(left, st.s.recvChunk)
		if rr != nil {
			var ready int
			if ready, err = rr.Readable(); err != nil {
				break
			}
			piece = min(left, ready)
		}
		st.mu.Lock()
		if st.readState != halfOpen {
			st.inflight = 0
			st.mu.Unlock()
			_, err = io.CopyN(io.Discard, r, int64(left))
			break
		}
		if w := len(st.waiter); rr != nil && w > 0 && st.buffered == 0 && (w >= left || w >= st.s.recvChunk) {
			// The record has arrived: reading it into the slice does not
			// block, so the Read waits for this copy only.
			direct := st.waiter[:min(w, piece)]
			st.waiter, st.filling = nil, true
			st.mu.Unlock()
			var got int
			got, err = io.ReadFull(r, direct)
			st.mu.Lock()
			st.direct += got
			st.inflight -= uint32(got)
			st.filling = false
			st.mu.Unlock()
			left -= got
		} else {
			st.mu.Unlock()
			buf := pool.Get(piece)
			if _, err = io.ReadFull(r, buf); err != nil {
				pool.Put(buf)
				break
			}
			st.mu.Lock()
			st.inflight -= uint32(len(buf))
			if st.readState == halfReset {
				pool.Put(buf)
			} else {
				st.segs = append(st.segs, buf)
				st.buffered += uint32(len(buf))
			}
			st.mu.Unlock()
			left -= len(buf)
		}
		notify(st.recvNotify)
	}

	st.mu.Lock()
	finished := st.gotFlagsLocked(h, false)
	st.mu.Unlock()
	if h.flags&(flagFIN|flagRST) != 0 {
		st.notifyAll()
	}
	if finished {
		st.cleanup()
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// recvChunk is the most of a frame's body buffered in one piece, unless
// the connection is a RecordReader: a TLS record's worth, so a Read can
// start on a frame still arriving.
const recvChunk = 16 << 10

// RecordReader is a connection whose bytes arrive in records, each
// received whole before any of its bytes can be read (node's record
// connections). The session buffers frames in pieces of a record's size
// and, only on such a connection, reads a frame's body straight into a
// blocked Read's slice: on any other connection a Read given to the
// connection could be held there by a peer that stalls mid-record, past
// the Read's deadline.
type RecordReader interface {
	// ReadChunk is the most plaintext a record carries.
	ReadChunk() int
	// Readable waits until a record has arrived whole and returns how
	// many bytes Reads can now take without blocking (at least 1), or
	// the error a Read would return. Only the session's reader calls it.
	Readable() (int, error)
}

// gotFlagsLocked applies a frame's flags: ACK before its data (first),
// FIN and RST after it. It reports whether the stream finished. st.mu is
// held.
func (st *Stream) gotFlagsLocked(h header, first bool) bool {
	if first {
		if h.flags&flagACK != 0 && st.state == stateSYNSent {
			st.state = stateEstablished
			st.releaseSynLocked()
		}
		return false
	}
	if st.state == stateFinished {
		return false
	}
	if h.flags&flagRST != 0 {
		var code uint32
		if h.typ == typeWindowUpdate {
			code = h.length
		}
		st.resetLocked(&network.StreamError{ErrorCode: network.StreamErrorCode(code), Remote: true})
		return true
	}
	if h.flags&flagFIN != 0 && st.readState == halfOpen {
		st.readState = halfClosed
		if st.writeState != halfOpen {
			st.state = stateFinished
			return true
		}
	}
	return false
}

// resetLocked fails both open halves with err, drops the buffered data
// and finishes the stream; st.mu is held.
func (st *Stream) resetLocked(err error) {
	if st.readState == halfOpen {
		st.readState, st.readErr = halfReset, err
	}
	if st.writeState == halfOpen {
		st.writeState, st.writeErr = halfReset, err
	}
	st.dropBufferLocked()
	st.state = stateFinished
	st.releaseSynLocked()
}

// releaseSynLocked gives back the session's slot for a stream waiting for
// its ACK, once it has it or has ended; st.mu is held.
func (st *Stream) releaseSynLocked() {
	if st.holdsSyn {
		st.holdsSyn = false
		<-st.s.synSlots
	}
}

func (st *Stream) dropBufferLocked() {
	for i, seg := range st.segs {
		pool.Put(seg[:cap(seg)])
		st.segs[i] = nil
	}
	st.segs, st.off, st.buffered = st.segsInline[:0], 0, 0
}

func (st *Stream) notifyAll() {
	notify(st.recvNotify)
	notify(st.sendNotify)
}

// cleanup forgets a finished stream.
func (st *Stream) cleanup() {
	st.mu.Lock()
	st.releaseSynLocked()
	st.readDeadline.set(time.Time{})
	st.writeDeadline.set(time.Time{})
	st.mu.Unlock()
	st.s.removeStream(st)
}

// CloseWrite sends FIN: the peer reads EOF after the data sent so far.
func (st *Stream) CloseWrite() error {
	st.mu.Lock()
	switch st.writeState {
	case halfClosed:
		st.mu.Unlock()
		return nil
	case halfReset:
		err := st.writeErr
		st.mu.Unlock()
		return err
	}
	st.writeState = halfClosed
	finished := st.readState != halfOpen
	if finished {
		st.state = stateFinished
	}
	flags := st.takeFlags() | flagFIN
	st.mu.Unlock()
	notify(st.sendNotify)
	err := st.s.writeFrame(header{typ: typeWindowUpdate, flags: flags, stream: st.id}, nil, nil)
	if finished {
		st.cleanup()
	}
	return err
}

// CloseRead stops reading: Reads fail, and data arriving from now on is
// dropped (the peer is not told; its writes stall when the window runs
// out, as with go-yamux).
func (st *Stream) CloseRead() error {
	st.mu.Lock()
	if st.readState != halfOpen {
		st.mu.Unlock()
		return nil
	}
	st.readState, st.readErr = halfReset, errReadClosed
	st.dropBufferLocked()
	finished := st.writeState != halfOpen
	if finished {
		st.state = stateFinished
	}
	st.mu.Unlock()
	notify(st.recvNotify)
	if finished {
		st.cleanup()
	}
	return nil
}

// Close is CloseRead and CloseWrite: it does not wait for the peer.
func (st *Stream) Close() error {
	st.CloseRead()
	return st.CloseWrite()
}

// Reset is ResetWithError(0).
func (st *Stream) Reset() error { return st.ResetWithError(0) }

// ResetWithError aborts both halves and sends RST carrying code in the
// window update's length, which the peer's Read and Write return as a
// *network.StreamError.
func (st *Stream) ResetWithError(code network.StreamErrorCode) error {
	st.mu.Lock()
	if st.state == stateFinished {
		st.mu.Unlock()
		return nil
	}
	send := st.state != stateInit
	st.resetLocked(&network.StreamError{ErrorCode: code})
	st.mu.Unlock()
	st.notifyAll()
	if send {
		st.s.writeFrame(header{typ: typeWindowUpdate, flags: flagRST, stream: st.id, length: uint32(code)}, nil, nil)
	}
	st.cleanup()
	return nil
}

// forceClose fails the stream with the session's end.
func (st *Stream) forceClose(err error) {
	st.mu.Lock()
	st.resetLocked(err)
	st.readDeadline.set(time.Time{})
	st.writeDeadline.set(time.Time{})
	st.mu.Unlock()
	st.notifyAll()
}

// SetDeadline sets both deadlines.
func (st *Stream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

// SetReadDeadline bounds Reads, including one already blocked: past it
// they return ErrTimeout. A Read whose slice the session is filling with
// a frame's body returns that data first.
func (st *Stream) SetReadDeadline(t time.Time) error {
	st.mu.Lock()
	if st.readState == halfOpen {
		st.readDeadline.set(t)
	}
	st.mu.Unlock()
	notify(st.recvNotify)
	return nil
}

// SetWriteDeadline bounds Writes waiting for the peer's window or for the
// connection; a frame already being written is finished.
func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.mu.Lock()
	if st.writeState == halfOpen {
		st.writeDeadline.set(t)
	}
	st.mu.Unlock()
	notify(st.sendNotify)
	return nil
}

// deadline is a stream deadline: ch is closed once it passed, and nil or
// never closed without one. Waiters recheck which channel is current when
// they wake, so a moved deadline is never missed. The channel and its timer
// are reused while the timer has not fired, so a stream whose deadline is
// moved for every message (as protocols do) allocates nothing for it.
type deadline struct {
	timer *time.Timer   // closes ch when it fires
	ch    chan struct{} // the timer's channel
	armed bool          // the timer is running
	at    time.Time     // when, while armed
}

func (d *deadline) set(t time.Time) {
	if d.armed {
		d.armed = false
		if !d.timer.Stop() { // it fired: ch is closed or about to be
			d.timer, d.ch = nil, nil
		}
	}
	if isClosed(d.ch) { // passed: a new deadline needs a new channel
		d.timer, d.ch = nil, nil
	}
	d.at = t
	if t.IsZero() {
		return // an open channel with a stopped timer never closes
	}
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		return
	}
	if d.timer == nil {
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
	} else {
		d.timer.Reset(dur)
	}
	d.armed = true
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
