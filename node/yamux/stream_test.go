package yamux

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// A Read smaller than a small frame (pubsub and msgio read a length
// prefix a byte at a time) is not handed the frame's first bytes while
// the rest still arrives: the frame is buffered whole and the Read woken
// once, so the Reads that follow find the rest buffered. Handing it the
// first bytes woke the reading goroutine twice per message, and on a
// loaded host each wake waits its turn in the run queue, which added up
// along every hop of a gossip message.
func TestSmallReadWokenOncePerSmallFrame(t *testing.T) {
	st, cb := peerOpenedStream(t)
	waiting := func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.waiter != nil
	}

	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte(i)
	}
	first := make([]byte, 1)
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(st, first)
		done <- err
	}()
	waitUntil(t, "the Read to block", waiting)
	// net.Pipe's Write returns once the session's reader took the bytes:
	// the header and the body's first byte; the rest is late.
	if _, err := cb.Write(frame(header{typ: typeData, stream: 1, length: uint32(len(body))}, body[:1])); err != nil {
		t.Fatal(err)
	}
	if !waiting() {
		t.Fatal("a 1-byte Read was handed part of a 1 KiB frame before the rest arrived")
	}
	if _, err := cb.Write(body[1:]); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	buffered := st.buffered
	st.mu.Unlock()
	if buffered != uint32(len(body)-1) {
		t.Fatalf("after the first byte %d bytes were buffered, want the frame's other %d", buffered, len(body)-1)
	}
	rest := make([]byte, len(body)-1)
	if _, err := io.ReadFull(st, rest); err != nil {
		t.Fatal(err)
	}
	if first[0] != body[0] || !bytes.Equal(rest, body[1:]) {
		t.Fatal("read other bytes than were sent")
	}
}

// On a RecordReader, a Read whose slice takes the whole frame gets the
// body straight into it, without a buffer.
func TestLargeReadFilledDirectly(t *testing.T) {
	st, cb := peerOpenedStreamOver(t, func(c net.Conn) net.Conn { return &recordPipe{Conn: c} })
	body := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB
	p := make([]byte, len(body))
	done := make(chan int, 1)
	go func() {
		n, _ := st.Read(p)
		done <- n
	}()
	waitUntil(t, "the Read to block", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.waiter != nil
	})
	if _, err := cb.Write(frame(header{typ: typeData, stream: 1}, body)); err != nil {
		t.Fatal(err)
	}
	if n := <-done; n != len(body) || !bytes.Equal(p, body) {
		t.Fatalf("the Read got %d bytes, want the frame's %d", n, len(body))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.segs) != 0 {
		t.Fatal("the frame was buffered")
	}
}

// A deadline moved before it fires keeps its channel and timer, so moving
// it allocates nothing; once passed, clearing or moving it gives a fresh,
// open channel, and a moved deadline still fires.
func TestDeadlineReusesItsTimer(t *testing.T) {
	var d deadline
	d.set(time.Now().Add(time.Hour))
	ch := d.ch
	if allocs := testing.AllocsPerRun(100, func() { d.set(time.Now().Add(time.Hour)) }); allocs != 0 {
		t.Fatalf("moving a deadline allocates %v times", allocs)
	}
	if d.ch != ch || isClosed(ch) {
		t.Fatal("a deadline moved later changed or closed its channel")
	}
	d.set(time.Time{})
	if isClosed(d.ch) {
		t.Fatal("a cleared deadline reads as passed")
	}
	d.set(time.Now().Add(-time.Second))
	if !isClosed(d.ch) {
		t.Fatal("a deadline in the past has not passed")
	}
	passed := d.ch
	d.set(time.Time{})
	if isClosed(d.ch) {
		t.Fatal("clearing a passed deadline left it passed")
	}
	d.set(time.Now().Add(time.Hour))
	if d.ch == passed || isClosed(d.ch) {
		t.Fatal("a passed deadline moved into the future still reads as passed")
	}
	d.set(time.Now().Add(time.Millisecond)) // moved earlier: fires
	select {
	case <-d.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("a deadline moved earlier never fired")
	}
	d.set(time.Now().Add(time.Hour))
	if isClosed(d.ch) {
		t.Fatal("a fired deadline moved into the future still reads as passed")
	}
	d.set(time.Time{})
}

// peerOpenedStream has a raw peer (the returned end of a pipe, whose
// reads are discarded) open stream 1 on one of our sessions, and returns
// our side of the stream.
func peerOpenedStream(t *testing.T) (*Stream, net.Conn) {
	t.Helper()
	return peerOpenedStreamOver(t, func(c net.Conn) net.Conn { return c })
}

// peerOpenedStreamOver is peerOpenedStream with our end of the pipe
// wrapped.
func peerOpenedStreamOver(t *testing.T, wrap func(net.Conn) net.Conn) (*Stream, net.Conn) {
	t.Helper()
	ca, cb := net.Pipe()
	ca = wrap(ca)
	t.Cleanup(func() { cb.Close() })
	go io.Copy(io.Discard, cb) // our ACK and window updates
	cfg := DefaultConfig()
	cfg.EnableKeepAlive = false
	ours := ourSession(t, ca, false, cfg)
	if _, err := cb.Write(frame(header{typ: typeWindowUpdate, flags: flagSYN, stream: 1}, nil)); err != nil {
		t.Fatal(err)
	}
	ms, err := ours.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	return ms.(*Stream), cb
}

// A large Write on a FrameWriter goes out in batches of up to
// framesPerWrite data frames, each within MaxMessageSize, the stream's
// flags on the first frame only; go-yamux reads them all.
func TestWriteFramesBatches(t *testing.T) {
	ca, cb := framePipe(t)
	ours := ourSession(t, ca, true, DefaultConfig())
	theirs := theirSession(t, cb, false)
	sa, sb := open(t, ours, theirs)
	data := randomBytes(1<<20+5, 9)
	go func() {
		sa.Write(data)
		sa.CloseWrite()
	}()
	got, err := io.ReadAll(sb)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes, %v", len(got), len(data), err)
	}
	fc := ca.(*frameConn)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	full := 0
	for _, parts := range fc.batches {
		frames := 0
		for i := 0; i < len(parts); i++ {
			if len(parts[i]) != headerSize {
				continue // queued small frames, written first
			}
			h, err := decodeHeader((*[headerSize]byte)(parts[i]))
			if err != nil {
				t.Fatal(err)
			}
			if h.typ != typeData {
				continue // a queued control frame (a ping or its answer)
			}
			if i+1 >= len(parts) || len(parts[i+1]) != int(h.length) || h.length > DefaultConfig().MaxMessageSize {
				t.Fatalf("batch %v: frame %+v is not a data frame followed by its body within MaxMessageSize", parts, h)
			}
			if frames > 0 && h.flags != 0 {
				t.Fatalf("flags %x on frame %d of a batch", h.flags, frames)
			}
			frames++
			i++
		}
		if frames > framesPerWrite {
			t.Fatalf("%d frames in one batch, want at most %d", frames, framesPerWrite)
		}
		if frames == framesPerWrite {
			full++
		}
	}
	if full == 0 {
		t.Fatal("no batch carried several frames")
	}
}

// A frame no Read waits for is buffered in 16 KiB pieces, or on a
// RecordReader in pieces of its records; either way it reads back whole.
func TestRecordReaderSizesBuffers(t *testing.T) {
	for _, c := range []struct {
		name string
		wrap func(net.Conn) net.Conn
		segs int
	}{
		{"plain", func(c net.Conn) net.Conn { return c }, 4},
		{"RecordReader", func(c net.Conn) net.Conn { return &recordPipe{Conn: c} }, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, peer := peerOpenedStreamOver(t, c.wrap)
			body := randomBytes(64<<10, 1)
			if _, err := peer.Write(frame(header{typ: typeData, stream: 1}, body)); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the frame buffered", func() bool {
				st.mu.Lock()
				defer st.mu.Unlock()
				return st.buffered == uint32(len(body))
			})
			st.mu.Lock()
			segs := len(st.segs)
			st.mu.Unlock()
			if segs != c.segs {
				t.Errorf("buffered in %d pieces, want %d", segs, c.segs)
			}
			got := make([]byte, len(body))
			if _, err := io.ReadFull(st, got); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("read back: %v", err)
			}
		})
	}
}
