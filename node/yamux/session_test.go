package yamux

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// countingScope is a PeerScope that counts open spans and reserved
// memory, and refuses memory beyond limit.
type countingScope struct {
	mu       sync.Mutex
	spans    int
	reserved int
	limit    int
}

func (c *countingScope) ReserveMemory(size int, _ uint8) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limit > 0 && c.reserved+size > c.limit {
		return network.ErrResourceLimitExceeded
	}
	c.reserved += size
	return nil
}

func (c *countingScope) ReleaseMemory(size int) {
	c.mu.Lock()
	c.reserved -= size
	c.mu.Unlock()
}

func (c *countingScope) Stat() network.ScopeStat { return network.ScopeStat{} }
func (c *countingScope) Peer() peer.ID           { return "" }

func (c *countingScope) BeginSpan() (network.ResourceScopeSpan, error) {
	c.mu.Lock()
	c.spans++
	c.mu.Unlock()
	return &countingSpan{parent: c}, nil
}

func (c *countingScope) counts() (spans, reserved int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spans, c.reserved
}

type countingSpan struct {
	parent   *countingScope
	reserved int
	done     bool
}

func (s *countingSpan) ReserveMemory(size int, prio uint8) error {
	if err := s.parent.ReserveMemory(size, prio); err != nil {
		return err
	}
	s.reserved += size
	return nil
}

func (s *countingSpan) ReleaseMemory(size int) {
	s.reserved -= size
	s.parent.ReleaseMemory(size)
}

func (s *countingSpan) Stat() network.ScopeStat { return network.ScopeStat{} }

func (s *countingSpan) BeginSpan() (network.ResourceScopeSpan, error) {
	return s.parent.BeginSpan()
}

func (s *countingSpan) Done() {
	if s.done {
		panic("span done twice")
	}
	s.done = true
	s.parent.ReleaseMemory(s.reserved)
	s.parent.mu.Lock()
	s.parent.spans--
	s.parent.mu.Unlock()
}

func scopedPair(t *testing.T, sa, sb *countingScope) (*Session, *Session) {
	t.Helper()
	ca, cb := net.Pipe()
	tr, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tr.NewConn(ca, false, sa)
	b, _ := tr.NewConn(cb, true, sb)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*Session), b.(*Session)
}

// Every stream's memory span ends once the stream is closed on both
// sides, reset, or the session closes; the windows' memory is released.
func TestMemorySpansReleased(t *testing.T) {
	var sa, sb countingScope
	a, b := scopedPair(t, &sa, &sb)
	echoStreams(b.AcceptStream, network.MuxedStream.Close)
	for i := range 30 {
		s, err := a.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(700<<10, uint64(i)) // grows the windows
		go func() {
			s.Write(data)
			s.CloseWrite()
		}()
		if i%3 == 2 {
			s.Read(make([]byte, 100))
			s.Reset()
			continue
		}
		if got, err := io.ReadAll(s); err != nil || len(got) != len(data) {
			t.Fatalf("stream %d: %d bytes, %v", i, len(got), err)
		}
		s.Close()
	}
	waitUntil(t, "every span to end", func() bool {
		n1, r1 := sa.counts()
		n2, r2 := sb.counts()
		return n1 == 0 && r1 == 0 && n2 == 0 && r2 == 0
	})
	// Streams left open end with the session.
	for range 5 {
		if _, err := a.OpenStream(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n, r := sa.counts(); n != 5 || r != 5*initialWindow {
		t.Fatalf("%d spans, %d bytes for 5 open streams", n, r)
	}
	a.Close()
	b.Close()
	if n, r := sa.counts(); n != 0 || r != 0 {
		t.Fatalf("after close: %d spans, %d bytes", n, r)
	}
	waitUntil(t, "the peer's spans to end", func() bool { n, r := sb.counts(); return n == 0 && r == 0 })
}

// A stream the resource manager has no memory for is reset with
// StreamResourceLimitExceeded; the session goes on.
func TestStreamRefusedForMemory(t *testing.T) {
	sa := countingScope{}
	sb := countingScope{limit: initialWindow}
	a, b := scopedPair(t, &sa, &sb)
	first, err := a.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcceptStream(); err != nil {
		t.Fatal(err)
	}
	second, err := a.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = second.Read(make([]byte, 1))
	var se *network.StreamError
	if !errors.As(err, &se) || se.ErrorCode != network.StreamResourceLimitExceeded || !se.Remote {
		t.Fatalf("refused stream: %v", err)
	}
	if _, err := first.Write([]byte("still fine")); err != nil || a.IsClosed() {
		t.Fatalf("session broken: %v", err)
	}
}

// More data than the window allows is a protocol error: the session
// answers with a go away carrying the protocol-error code and closes.
func TestWindowExceededIsProtocolError(t *testing.T) {
	ca, cb := net.Pipe()
	defer cb.Close()
	cfg := DefaultConfig()
	cfg.EnableKeepAlive = false
	ours := ourSession(t, ca, false, cfg)
	go func() {
		cb.Write(frame(header{typ: typeWindowUpdate, flags: flagSYN, stream: 1}, nil))
		cb.Write(frame(header{typ: typeData, stream: 1}, make([]byte, initialWindow+1)))
	}()
	var got header
	for {
		var b [headerSize]byte
		if _, err := io.ReadFull(cb, b[:]); err != nil {
			t.Fatalf("no go away: %v", err)
		}
		h, err := decodeHeader(&b)
		if err != nil {
			t.Fatal(err)
		}
		if h.typ == typeGoAway {
			got = h
			break
		}
	}
	if got.length != goAwayProtoErr {
		t.Fatalf("go away code %d", got.length)
	}
	waitUntil(t, "the session to close", ours.IsClosed)
	var s *Session
	ours.As(&s)
	if !errors.Is(s.Err(), ErrProtocol) {
		t.Fatalf("closed with %v", s.Err())
	}
}

// Streams the peer opens beyond the accept backlog are reset; accepting
// makes room again.
func TestAcceptBacklog(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AcceptBacklog = 4
	ca, cb := net.Pipe()
	a := ourSession(t, ca, true, DefaultConfig())
	b := ourSession(t, cb, false, cfg)
	var streams []network.MuxedStream
	for range 6 {
		s, err := a.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	for i, s := range streams {
		_, err := s.Write([]byte("x"))
		if i >= 4 {
			waitUntil(t, "the reset of a stream beyond the backlog", func() bool {
				_, err := s.Read(make([]byte, 1))
				return errors.Is(err, network.ErrReset)
			})
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		if _, err := b.AcceptStream(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := a.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("y"))
	bs, err := b.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(bs, buf); err != nil || buf[0] != 'y' {
		t.Fatalf("after accepting: %q, %v", buf, err)
	}
}

// CloseRead fails a blocked Read and later Reads with ErrReset, drops
// what arrives, and leaves the write side working; the peer still reads
// what we write and then EOF.
func TestCloseRead(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		if !a.ours {
			return
		}
		sa, sb := open(t, a, b)
		readErr := make(chan error, 1)
		go func() {
			_, err := sa.Read(make([]byte, 10))
			readErr <- err
		}()
		if err := sa.CloseRead(); err != nil {
			t.Fatal(err)
		}
		if err := <-readErr; !errors.Is(err, network.ErrReset) {
			t.Fatalf("blocked read after CloseRead: %v", err)
		}
		sb.Write([]byte("dropped"))
		if _, err := sa.Read(make([]byte, 10)); !errors.Is(err, network.ErrReset) {
			t.Fatalf("read after CloseRead: %v", err)
		}
		if _, err := sa.Write([]byte("still writing")); err != nil {
			t.Fatal(err)
		}
		sa.CloseWrite()
		got, err := io.ReadAll(sb)
		if err != nil || string(got) != "still writing" {
			t.Fatalf("peer read %q, %v", got, err)
		}
		sb.Close()
		sa.Close()
	})
}

// Resets, closes and deadlines racing with reads and writes on many
// streams leave no goroutine blocked and no stream behind.
func TestResetRaces(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		echoStreams(b.AcceptStream, network.MuxedStream.Reset)
		var wg sync.WaitGroup
		for i := range 40 {
			s, err := a.OpenStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(3)
			go func() {
				defer wg.Done()
				s.Write(randomBytes(300<<10, uint64(i)))
			}()
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, s)
			}()
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i%7) * time.Millisecond)
				switch i % 4 {
				case 0:
					s.Reset()
				case 1:
					s.ResetWithError(network.StreamErrorCode(i))
				case 2:
					s.SetDeadline(time.Now().Add(time.Millisecond))
					time.Sleep(20 * time.Millisecond)
					s.Reset()
				case 3:
					s.Close()
					s.Reset()
				}
			}()
		}
		wg.Wait()
		if a.ours {
			var s *Session
			a.As(&s)
			waitUntil(t, "every stream to be forgotten", func() bool { return s.NumStreams() == 0 })
		}
	})
}

// echoStreams accepts every stream until accept fails, echoes what each
// one sends, and then ends it with end (Close or Reset).
func echoStreams(accept func() (network.MuxedStream, error), end func(network.MuxedStream) error) {
	go func() {
		for {
			s, err := accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(s, s)
				end(s)
			}()
		}
	}()
}
