package yamux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// Regression tests for issue #18's findings against this muxer: each
// failed before its fix. The hostile-peer suite (hostile_test.go) runs
// the same attacks against go-yamux too.

// victim is one of our sessions as the server on one end of a net.Pipe,
// with its memory charged to scope; the raw peer is the other end.
func victim(t *testing.T, cfg Config, scope network.PeerScope) (*Session, net.Conn) {
	t.Helper()
	ca, cb := net.Pipe()
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := tr.NewConn(ca, true, scope)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cb.Close(); mc.Close() })
	return mc.(*Session), cb
}

func (s *Session) pendingLen() (queued, charged int) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.pending), s.charged
}

// Finding 1: a peer that pings without reading our answers cannot make
// the session queue them without bound. net.Pipe has no buffer, so no
// answer is ever written: they queue up to maxPending, the rest are
// dropped, and what the queue holds beyond freePending is charged to the
// peer's scope. Before, 1 MiB of pings queued 1 MiB of answers, charged
// nowhere.
func TestPingFloodFromNonReaderIsBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EnableKeepAlive = false
	var scope countingScope
	s, peer := victim(t, cfg, &scope)
	const pings = 1 << 20 / headerSize
	flood := make([]byte, 0, pings*headerSize)
	for i := range pings {
		flood = append(flood, frame(header{typ: typePing, flags: flagSYN, length: uint32(i)}, nil)...)
	}
	peer.SetWriteDeadline(time.Now().Add(time.Minute))
	if _, err := peer.Write(flood); err != nil {
		t.Fatalf("the session stopped reading pings: %v", err)
	}
	queued, charged := s.pendingLen()
	if queued > maxPending+headerSize {
		t.Fatalf("%d bytes of ping answers queued for a peer that does not read (bound %d)", queued, maxPending)
	}
	if _, reserved := scope.counts(); reserved != charged || charged < queued-freePending {
		t.Fatalf("the queue holds %d bytes, %d charged to the scope (scope has %d reserved); want all past %d", queued, charged, reserved, freePending)
	}
	if dropped := s.pongsDropped.Load(); dropped == 0 {
		t.Fatal("no ping answer was dropped")
	}
	s.Close()
	if _, reserved := scope.counts(); reserved != 0 {
		t.Fatalf("%d bytes still reserved after Close", reserved)
	}
}

// Finding 1: resets of streams refused past the accept backlog are not
// dropped (the peer must learn its stream is gone), so when the queue is
// full the reader stops reading until it drains: a peer that opens
// streams without reading is held back instead of queued for.
func TestRefusedStreamResetsBackPressureTheReader(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EnableKeepAlive = false
	cfg.AcceptBacklog = 1
	var scope countingScope
	s, peer := victim(t, cfg, &scope)
	const opens = 200_000 // 2.4 MB of SYNs: far more than maxPending of resets
	id := uint32(1)
	var err error
	written := 0
	for ; written < opens; written++ {
		peer.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err = peer.Write(frame(header{typ: typeWindowUpdate, flags: flagSYN, stream: id}, nil)); err != nil {
			break
		}
		id += 2
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the session read all %d SYNs of a peer that reads nothing (err %v)", written, err)
	}
	queued, charged := s.pendingLen()
	if queued > maxPending+headerSize {
		t.Fatalf("%d bytes of resets queued (bound %d)", queued, maxPending)
	}
	if _, reserved := scope.counts(); reserved < charged || charged < queued-freePending {
		t.Fatalf("the queue holds %d bytes, %d charged; want all past %d", queued, charged, freePending)
	}
	// Once the peer reads, the resets go out and the session reads again.
	go io.Copy(io.Discard, peer)
	peer.SetWriteDeadline(time.Now().Add(time.Minute))
	if _, err := peer.Write(frame(header{typ: typePing, flags: flagSYN, length: 7}, nil)); err != nil {
		t.Fatalf("the session did not resume reading once the peer read: %v", err)
	}
}

// frameReader collects the frames one of our sessions writes to a raw
// peer, so that the peer never blocks our writes.
type frameReader struct {
	mu     sync.Mutex
	frames []header
	done   chan struct{}
}

func readFrames(c net.Conn) *frameReader {
	fr := &frameReader{done: make(chan struct{})}
	go func() {
		defer close(fr.done)
		var b [headerSize]byte
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			h, err := decodeHeader(&b)
			if err != nil {
				return
			}
			if h.typ == typeData {
				if _, err := io.CopyN(io.Discard, c, int64(h.length)); err != nil {
					return
				}
			}
			fr.mu.Lock()
			fr.frames = append(fr.frames, h)
			fr.mu.Unlock()
		}
	}()
	return fr
}

// granted sums the window the session granted a stream with its window
// updates, and reports whether one with ACK was seen.
func (fr *frameReader) granted(id uint32) (total uint64, acked bool) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for _, h := range fr.frames {
		if h.stream == id && h.typ == typeWindowUpdate && h.flags&flagRST == 0 {
			total += uint64(h.length)
			acked = acked || h.flags&flagACK != 0
		}
	}
	return total, acked
}

// Finding 2: a stream never grants more window than was read. The peer
// opens a stream and sends a full window in one frame; while its body is
// still arriving (part buffered, the rest in flight) the stream is
// accepted: its ACK must grant nothing, since nothing was read. Before,
// the ACK granted the bytes in flight a second time, and a stream nobody
// read buffered about twice the window its span reserved.
func TestWindowNotGrantedTwiceWhileAFrameArrives(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EnableKeepAlive = false
	var scope countingScope
	s, peer := victim(t, cfg, &scope)
	fr := readFrames(peer)
	body := randomBytes(initialWindow, 3)
	// SYN, then the header of a whole-window frame and 20 KiB of it: the
	// session buffers a 16 KiB piece and waits for the next.
	if _, err := peer.Write(frame(header{typ: typeWindowUpdate, flags: flagSYN, stream: 1}, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Write(frame(header{typ: typeData, stream: 1, length: initialWindow}, body[:20<<10])); err != nil {
		t.Fatal(err)
	}
	ms, err := s.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	st := ms.(*Stream)
	waitUntil(t, "the ACK", func() bool { _, acked := fr.granted(1); return acked })
	if total, _ := fr.granted(1); total != 0 {
		t.Fatalf("the stream granted %d bytes of window with nothing read", total)
	}
	if _, err := peer.Write(body[20<<10:]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the window buffered", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.buffered == initialWindow
	})
	// One more byte is past the window: a protocol error.
	peer.Write(frame(header{typ: typeData, stream: 1, length: 1}, []byte{0}))
	waitUntil(t, "the session to close on the window violation", s.IsClosed)
	if !errors.Is(s.Err(), ErrProtocol) {
		t.Fatalf("closed with %v, want a protocol error", s.Err())
	}
}

// recordPipe is a RecordReader over a connection: whatever one Read of
// the connection returns is a record, and Readable waits for one without
// handing the connection a caller's slice.
type recordPipe struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (c *recordPipe) ReadChunk() int { return 64 << 10 }

func (c *recordPipe) Readable() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.buf) > 0 {
		return len(c.buf), nil
	}
	b := make([]byte, 64<<10)
	n, err := c.Conn.Read(b)
	c.buf = b[:n]
	if n > 0 {
		return n, nil
	}
	return 0, err
}

func (c *recordPipe) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Finding 3: a Read's deadline holds while a frame is arriving. The peer
// sends a data header and part of the body, then stalls; a Read with a
// slice large enough to be filled directly returns at its deadline, and
// the frame is read whole once the rest arrives. Before, the session's
// reader was blocked reading into the Read's slice, and the Read waited
// for it past its deadline (go-yamux returns at the deadline).
func TestReadDeadlineHoldsWhileAFrameArrives(t *testing.T) {
	for _, c := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"plain", func(c net.Conn) net.Conn { return c }},
		{"RecordReader", func(c net.Conn) net.Conn { return &recordPipe{Conn: c} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, peer := peerOpenedStreamOver(t, c.wrap)
			body := randomBytes(64<<10, 5)
			// Reads take what has arrived (on a RecordReader, the first
			// 1000 bytes are a record) until the deadline.
			p := make([]byte, 1<<20)
			got := 0
			const wait = 300 * time.Millisecond
			start := time.Now()
			st.SetReadDeadline(start.Add(wait))
			done := make(chan error, 1)
			go func() {
				for {
					n, err := st.Read(p[got:])
					got += n
					if err != nil {
						done <- err
						return
					}
				}
			}()
			// The frame starts arriving once the Read waits for it.
			waitUntil(t, "the Read to block", func() bool {
				st.mu.Lock()
				defer st.mu.Unlock()
				return st.waiter != nil
			})
			if _, err := peer.Write(frame(header{typ: typeData, stream: 1, length: uint32(len(body))}, body[:1000])); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("the Read returned %v, want its deadline", err)
				}
				if took := time.Since(start); took < wait {
					t.Fatalf("the Read returned after %v, before its %v deadline", took, wait)
				}
				if got > 1000 || !bytes.Equal(p[:got], body[:got]) {
					t.Fatalf("read %d bytes before the deadline, not a prefix of the 1000 sent", got)
				}
			case <-time.After(wait + 10*time.Second):
				peer.Write(body[1000:]) // lets the Read end
				<-done
				t.Fatalf("a Read with a %v deadline still blocked after %v while the peer stalled mid-frame", wait, wait+10*time.Second)
			}
			if _, err := peer.Write(body[1000:]); err != nil {
				t.Fatal(err)
			}
			st.SetReadDeadline(time.Time{})
			if _, err := io.ReadFull(st, p[got:len(body)]); err != nil || !bytes.Equal(p[:len(body)], body) {
				t.Fatalf("after the stall the frame read back wrong: %v", err)
			}
		})
	}
}

// A data frame for a stream we refused or reset is dropped, but never one
// larger than any window could have let the peer send: such a header is a
// protocol error, not 4 GiB to read and discard while the session hangs.
// (Found by the hostile-peer suite: a SYN with a giant length whose stream
// was accepted and reset before its frame was handled was discarded.)
func TestGiantFrameForRefusedStreamIsProtocolError(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EnableKeepAlive = false
	cfg.AcceptBacklog = 1
	s, peer := victim(t, cfg, nil)
	go io.Copy(io.Discard, peer)
	peer.Write(frame(header{typ: typeWindowUpdate, flags: flagSYN, stream: 1}, nil))
	// Stream 3 is refused (the backlog holds stream 1) and announces 4 GiB.
	peer.Write(frame(header{typ: typeData, flags: flagSYN, stream: 3, length: 0xFFFFFFFF}, nil))
	waitUntil(t, "the session to close", s.IsClosed)
	if !errors.Is(s.Err(), ErrProtocol) {
		t.Fatalf("closed with %v, want a protocol error", s.Err())
	}
}
