package yamux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	libp2pyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	goyamux "github.com/libp2p/go-yamux/v5"
	"go.uber.org/goleak"
)

// The muxer test suite of go-libp2p leaves its listeners' accept loops
// running; every goroutine of ours must end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/muxer/testsuite.GoServe.func1"))
}

// side is one end of a pair: a session of ours or of go-yamux (wrapped as
// go-libp2p does).
type side struct {
	network.MuxedConn
	ours bool
}

// pairCase is a way to connect two sessions: a opens, b accepts.
type pairCase struct {
	name string
	make func(t *testing.T) (a, b side)
}

// pipes return two connected net.Conns: net.Pipe (no buffering at all)
// or loopback TCP.
func netPipe(t *testing.T) (net.Conn, net.Conn) { return net.Pipe() }

func tcpPipe(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return c1, <-ch
}

// framePipe is tcpPipe with both ends FrameWriters, as node's secure
// connections are.
func framePipe(t *testing.T) (net.Conn, net.Conn) {
	a, b := tcpPipe(t)
	return &frameConn{Conn: a}, &frameConn{Conn: b}
}

// frameConn is a FrameWriter that writes each batch with one Write and
// keeps the lengths of the parts of every batch.
type frameConn struct {
	net.Conn
	mu      sync.Mutex
	batches [][][]byte // the parts of each batch; bodies only by length
}

func (c *frameConn) WriteFrames(parts ...[]byte) error {
	var buf []byte
	kept := make([][]byte, len(parts))
	for i, p := range parts {
		buf = append(buf, p...)
		kept[i] = make([]byte, len(p))
		if len(p) == headerSize {
			copy(kept[i], p)
		}
	}
	c.mu.Lock()
	c.batches = append(c.batches, kept)
	c.mu.Unlock()
	_, err := c.Conn.Write(buf)
	return err
}

func ourSession(t *testing.T, c net.Conn, client bool, cfg Config) side {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := tr.NewConn(c, !client, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	return side{mc, true}
}

func theirSession(t *testing.T, c net.Conn, client bool) side {
	t.Helper()
	cfg := *libp2pyamux.DefaultTransport.Config()
	var s *goyamux.Session
	var err error
	if client {
		s, err = goyamux.Client(c, &cfg, nil)
	} else {
		s, err = goyamux.Server(c, &cfg, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	mc := libp2pyamux.NewMuxedConn(s)
	t.Cleanup(func() { mc.Close() })
	return side{mc, false}
}

// pairCases: ours against go-yamux both ways, and ours against ours; the
// opening side a client or server; over net.Pipe and loopback TCP.
func pairCases() []pairCase {
	var cases []pairCase
	for _, p := range []struct {
		name string
		f    func(*testing.T) (net.Conn, net.Conn)
	}{{"pipe", netPipe}, {"tcp", tcpPipe}, {"tcp-frames", framePipe}} {
		for _, kinds := range [][2]string{{"ours", "go-yamux"}, {"go-yamux", "ours"}, {"ours", "ours"}} {
			for _, aClient := range []bool{true, false} {
				role := map[bool]string{true: "client", false: "server"}
				cases = append(cases, pairCase{
					name: fmt.Sprintf("%s-%s/%s-%s/%s", kinds[0], role[aClient], kinds[1], role[!aClient], p.name),
					make: func(t *testing.T) (side, side) {
						ca, cb := p.f(t)
						mk := func(kind string, c net.Conn, client bool) side {
							if kind == "ours" {
								return ourSession(t, c, client, DefaultConfig())
							}
							return theirSession(t, c, client)
						}
						return mk(kinds[0], ca, aClient), mk(kinds[1], cb, !aClient)
					},
				})
			}
		}
	}
	return cases
}

func forEachPair(t *testing.T, f func(t *testing.T, a, b side)) {
	for _, c := range pairCases() {
		t.Run(c.name, func(t *testing.T) {
			a, b := c.make(t)
			f(t, a, b)
		})
	}
}

// open opens a stream on a and accepts it on b.
func open(t *testing.T, a, b side) (network.MuxedStream, network.MuxedStream) {
	t.Helper()
	type res struct {
		s   network.MuxedStream
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := b.AcceptStream()
		ch <- res{s, err}
	}()
	sa, err := a.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// go-yamux only announces a stream with its first frame... it sends
	// SYN on open, as we do; accept needs no data.
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return sa, r.s
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestOpenAcceptEcho(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		sa, sb := open(t, a, b)
		if _, err := sa.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		n, err := io.ReadAtLeast(sb, buf, 5)
		if err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		if _, err := sb.Write([]byte("world")); err != nil {
			t.Fatal(err)
		}
		n, err = io.ReadAtLeast(sa, buf, 5)
		if err != nil || string(buf[:n]) != "world" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		sa.Close()
		sb.Close()
	})
}

// Both directions carry far more than a window at once, written in odd
// sizes and read in odd sizes.
func TestFlowControlBidirectional(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		sa, sb := open(t, a, b)
		const size = 3<<20 + 12345
		var wg sync.WaitGroup
		for i, pair := range [][2]network.MuxedStream{{sa, sb}, {sb, sa}} {
			data := randomBytes(size, uint64(i))
			wg.Add(2)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(i), 9))
				for rest := data; len(rest) > 0; {
					n := min(len(rest), 1+r.IntN(700<<10))
					if _, err := pair[0].Write(rest[:n]); err != nil {
						t.Error(err)
						return
					}
					rest = rest[n:]
				}
				if err := pair[0].CloseWrite(); err != nil {
					t.Error(err)
				}
			}()
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(i), 11))
				var got []byte
				buf := make([]byte, 1<<20)
				for {
					n, err := pair[1].Read(buf[:1+r.IntN(len(buf))])
					got = append(got, buf[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
				if !bytes.Equal(got, data) {
					t.Errorf("direction %d: %d of %d bytes, equal %v", i, len(got), len(data), bytes.Equal(got, data))
				}
			}()
		}
		wg.Wait()
		sa.Close()
		sb.Close()
	})
}

// After a's CloseWrite, b reads EOF and still writes back, which a reads.
func TestHalfClose(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		sa, sb := open(t, a, b)
		req := randomBytes(600<<10, 1)
		go func() {
			sa.Write(req)
			sa.CloseWrite()
		}()
		got, err := io.ReadAll(sb)
		if err != nil || !bytes.Equal(got, req) {
			t.Fatalf("b read %d bytes, %v", len(got), err)
		}
		resp := randomBytes(700<<10, 2)
		go func() {
			sb.Write(resp)
			sb.Close()
		}()
		got, err = io.ReadAll(sa)
		if err != nil || !bytes.Equal(got, resp) {
			t.Fatalf("a read %d bytes, %v", len(got), err)
		}
		if _, err := sa.Write([]byte("x")); err == nil {
			t.Fatal("write after CloseWrite succeeded")
		}
		sa.Close()
	})
}

func TestReset(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		for _, code := range []network.StreamErrorCode{0, 42, network.StreamGarbageCollected} {
			sa, sb := open(t, a, b)
			if _, err := sa.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1)
			if _, err := io.ReadFull(sb, buf); err != nil {
				t.Fatal(err)
			}
			readErr := make(chan error, 1)
			go func() {
				_, err := sb.Read(buf)
				readErr <- err
			}()
			if code == 0 {
				sa.Reset()
			} else {
				sa.ResetWithError(code)
			}
			err := <-readErr
			if !errors.Is(err, network.ErrReset) {
				t.Fatalf("code %d: read after reset: %v, not ErrReset", code, err)
			}
			var se *network.StreamError
			if !errors.As(err, &se) || se.ErrorCode != code || !se.Remote {
				t.Fatalf("code %d: read after reset: %v (%#v)", code, err, se)
			}
			waitUntil(t, "the write to fail", func() bool { _, err := sb.Write([]byte("y")); return err != nil })
			if _, err := sa.Read(buf); !errors.Is(err, network.ErrReset) {
				t.Fatalf("local read after reset: %v", err)
			}
			sb.Close()
		}
	})
}

func TestCloseWithError(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		sa, sb := open(t, a, b)
		_ = sa
		readErr := make(chan error, 1)
		go func() {
			_, err := sb.Read(make([]byte, 1))
			readErr <- err
		}()
		a.CloseWithError(network.ConnRateLimited)
		err := <-readErr
		var ce *network.ConnError
		// go-yamux may end with its own failed write (to the closed
		// connection) before it reads the go away; we read it first.
		if b.ours && (!errors.As(err, &ce) || ce.ErrorCode != network.ConnRateLimited || !ce.Remote) {
			t.Fatalf("read after go away: %v", err)
		}
		if !errors.Is(err, network.ErrReset) {
			t.Fatalf("%v is not ErrReset", err)
		}
		if _, err := b.AcceptStream(); err == nil {
			t.Fatal("accept after go away succeeded")
		}
		waitUntil(t, "b to close", b.IsClosed)
		if _, err := a.OpenStream(context.Background()); err == nil {
			t.Fatal("open after close succeeded")
		}
	})
}

// Closing one side resets the other's streams, which see the
// connection's end.
func TestCloseResetsStreams(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		sa, sb := open(t, a, b)
		a.Close()
		if _, err := io.ReadAll(sb); err == nil {
			t.Fatal("read on a closed connection ended cleanly")
		}
		if _, err := sa.Write([]byte("x")); err == nil {
			t.Fatal("write after close succeeded")
		}
		waitUntil(t, "b to close", b.IsClosed)
	})
}

func TestManyConcurrentStreams(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		echoStreams(b.AcceptStream, network.MuxedStream.Close)
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := a.OpenStream(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				defer s.Close()
				data := randomBytes(20<<10+i*997, uint64(i))
				go func() {
					s.Write(data)
					s.CloseWrite()
				}()
				got, err := io.ReadAll(s)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("stream %d: %d of %d bytes, %v", i, len(got), len(data), err)
				}
			}()
		}
		wg.Wait()
		if a.ours {
			waitUntil(t, "streams to be forgotten", func() bool {
				var s *Session
				a.As(&s)
				return s.NumStreams() == 0
			})
		}
	})
}

// A Read past its deadline fails with a timeout (os.ErrDeadlineExceeded,
// net.Error), and the stream works again once the deadline is moved; a
// Write blocked on an exhausted window times out too.
func TestDeadlines(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		for _, first := range []bool{true, false} {
			sa, sb := open(t, a, b)
			s := struct {
				side
				st, peer network.MuxedStream
			}{a, sa, sb}
			if !first {
				s.side, s.st, s.peer = b, sb, sa
			}
			if !s.ours {
				continue
			}
			s.st.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			start := time.Now()
			_, err := s.st.Read(make([]byte, 10))
			var ne net.Error
			if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("read past the deadline: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("timed out after %v", d)
			}
			// A blocked Read whose deadline is extended keeps waiting.
			s.st.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			go func() {
				time.Sleep(5 * time.Millisecond)
				s.st.SetReadDeadline(time.Time{})
				time.Sleep(60 * time.Millisecond)
				s.peer.Write([]byte("late"))
			}()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(s.st, buf); err != nil || string(buf) != "late" {
				t.Fatalf("read after clearing the deadline: %q, %v", buf, err)
			}
			// Nobody reads the peer: the window runs out.
			s.st.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			_, err = s.st.Write(make([]byte, 2<<20))
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write past the deadline: %v", err)
			}
			sa.Reset()
			sb.Reset()
		}
	})
}

// Sessions answer each other's pings: go-yamux's Ping gets our answer,
// and our keepalive measures a round trip time.
func TestPing(t *testing.T) {
	for _, p := range []struct {
		name string
		f    func(*testing.T) (net.Conn, net.Conn)
	}{{"pipe", netPipe}, {"tcp", tcpPipe}, {"tcp-frames", framePipe}} {
		t.Run(p.name, func(t *testing.T) {
			ca, cb := p.f(t)
			cfg := DefaultConfig()
			cfg.KeepAliveInterval = 20 * time.Millisecond
			ours := ourSession(t, ca, true, cfg)
			gs, err := goyamux.Server(cb, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer gs.Close()
			if _, err := gs.Ping(); err != nil {
				t.Fatalf("go-yamux ping: %v", err)
			}
			var s *Session
			if !ours.As(&s) {
				t.Fatal("As(**Session) failed")
			}
			waitUntil(t, "a round trip time", func() bool { return s.RTT() > 0 })
			time.Sleep(100 * time.Millisecond) // several keepalive rounds
			if s.IsClosed() {
				t.Fatalf("keepalive closed a live session: %v", s.Err())
			}
		})
	}
}

// A peer that reads but never answers is dropped by the keepalive.
func TestKeepAliveTimeout(t *testing.T) {
	ca, cb := net.Pipe()
	defer cb.Close()
	go io.Copy(io.Discard, cb)
	cfg := DefaultConfig()
	cfg.KeepAliveInterval = 10 * time.Millisecond
	cfg.ConnectionWriteTimeout = 50 * time.Millisecond
	ours := ourSession(t, ca, true, cfg)
	waitUntil(t, "the keepalive to give up", ours.IsClosed)
	var s *Session
	ours.As(&s)
	if !errors.Is(s.Err(), ErrKeepAliveTimeout) {
		t.Fatalf("closed with %v", s.Err())
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A stream whose writer is blocked on an exhausted window (its reader
// does not read) does not hold up other streams in either direction.
func TestBlockedStreamDoesNotStallOthers(t *testing.T) {
	forEachPair(t, func(t *testing.T, a, b side) {
		stuckA, stuckB := open(t, a, b)
		blocked := make(chan error, 1)
		go func() {
			_, err := stuckA.Write(make([]byte, 4<<20)) // never read: blocks
			blocked <- err
		}()
		sa, sb := open(t, a, b)
		data := randomBytes(2<<20, 5)
		var wg sync.WaitGroup
		for _, p := range [][2]network.MuxedStream{{sa, sb}, {sb, sa}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				go func() {
					p[0].Write(data)
					p[0].CloseWrite()
				}()
				got, err := io.ReadAll(p[1])
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("%d of %d bytes, %v", len(got), len(data), err)
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-blocked:
			t.Fatalf("the stuck write ended: %v", err)
		default:
		}
		stuckB.Reset()
		if err := <-blocked; !errors.Is(err, network.ErrReset) {
			t.Fatalf("stuck write after the peer's reset: %v", err)
		}
		sa.Close()
		sb.Close()
	})
}
