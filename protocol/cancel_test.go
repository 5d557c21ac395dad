package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/protocol/pb"
)

// cancelBound is how long a reset may take to reach a handler's context;
// it is far below every deadline in these tests, so a context that ends
// within it was cancelled, not timed out.
const cancelBound = 5 * time.Second

// servePair serves handlers from one host and returns another connected
// to it, on mocknet or on neurons' hosts (loopback TCP, TLS, yamux).
func servePair(t *testing.T, kind string, handlers map[string]Handler, cfg ServerConfig) (*Server, host.Host, peer.ID) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	if kind == "mocknet" {
		nt := newNet(t, 2)
		return nt.server(0, handlers, cfg), nt.hosts[1], nt.hosts[0].ID()
	}
	mk := func(i int) host.Host {
		n, err := node.New(context.Background(), node.DefaultTestConfig(key(i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	sh, ch := mk(0), mk(1)
	reg := &callerTable{m: map[peer.ID]Caller{ch.ID(): {Registered: true, Stake: 1}}}
	srv, err := NewServer(sh, key(0), reg, handlers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := ch.Connect(context.Background(), peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return srv, ch, sh.ID()
}

var transports = []string{"mocknet", "tcp"}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (s *Server) serving() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// A client that gives up (its context ends: the client resets the stream)
// cancels the handler at once, while it waits without writing; no answer
// is written and no receipt signed.
func TestResetCancelsHandler(t *testing.T) {
	for _, kind := range transports {
		t.Run(kind, func(t *testing.T) {
			started, causes := make(chan struct{}, 1), make(chan error, 1)
			srv, ch, server := servePair(t, kind, map[string]Handler{"text.wait": HandlerFunc(func(ctx context.Context, _ *Request, _ ResponseWriter) error {
				started <- struct{}{}
				<-ctx.Done() // an upstream model that has not answered yet
				causes <- context.Cause(ctx)
				return ctx.Err()
			})}, DefaultServerConfig())
			c, _ := NewClient(ch, DefaultClientConfig())
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan Result, 1)
			go func() {
				done <- c.Stream(ctx, server, &pb.Request{Synapse: "text.wait", Netuid: 1, TimeoutMs: 60_000, WantReceipt: true}, nil)
			}()
			<-started
			left := time.Now()
			cancel()
			select {
			case cause := <-causes:
				if !errors.Is(cause, ErrCallerGone) {
					t.Fatalf("the handler's context ended with %v, want ErrCallerGone", cause)
				}
				t.Logf("%s: cancelled %v after the client left", kind, time.Since(left))
			case <-time.After(cancelBound):
				t.Fatal("the handler still waits after the client reset its stream")
			}
			if r := <-done; r.Err == nil {
				t.Fatalf("the client got an answer %+v", r)
			}
			waitFor(t, cancelBound, "the server still serves the reset stream", func() bool { return srv.serving() == 0 })
			if n := srv.signed.Load(); n != 0 {
				t.Fatalf("%d receipts signed for a caller that left", n)
			}
		})
	}
}

// rawRequest is req as a client writes it on a stream.
func rawRequest(t *testing.T, req *pb.Request) []byte {
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return append(varint(uint64(len(raw))), raw...)
}

// A client that closes its write side after its request (SPEC.md §2.1) is
// not taken for one that left: the handler's context stays live after the
// server has read the end of stream, and the answer arrives.
func TestCloseWriteAfterRequestDoesNotCancel(t *testing.T) {
	for _, kind := range transports {
		t.Run(kind, func(t *testing.T) {
			watched := make(chan error, 4)
			cfg := DefaultServerConfig()
			cfg.watchEnded = func(err error) { watched <- err }
			started, release, ctxErr := make(chan struct{}, 1), make(chan struct{}), make(chan error, 1)
			_, ch, server := servePair(t, kind, map[string]Handler{"text.wait": HandlerFunc(func(ctx context.Context, _ *Request, w ResponseWriter) error {
				started <- struct{}{}
				<-release
				ctxErr <- ctx.Err()
				return w.Write([]byte("answer"))
			})}, cfg)
			unblock := sync.OnceFunc(func() { close(release) })
			t.Cleanup(unblock) // before the server closes, should the test fail
			st, err := ch.NewStream(context.Background(), server, QueryID)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Write(rawRequest(t, &pb.Request{Synapse: "text.wait", Netuid: 1, TimeoutMs: 60_000})); err != nil {
				t.Fatal(err)
			}
			if err := st.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			<-started
			select {
			case err := <-watched:
				if !errors.Is(err, io.EOF) {
					t.Fatalf("the watch read %v, want the end of stream", err)
				}
			case <-time.After(cancelBound):
				t.Fatal("the server did not read the end of stream")
			}
			unblock()
			if err := <-ctxErr; err != nil {
				t.Fatalf("the handler's context ended (%v) when the client closed its write side", err)
			}
			f, err := finalFrameBody(bufio.NewReader(st))
			if err != nil {
				t.Fatal(err)
			}
			if f.status != StatusOK || f.body != "answer" {
				t.Fatalf("answer %v %q", f.status, f.body)
			}
		})
	}
}

type answer struct {
	status Status
	body   string
}

// finalFrameBody reads an exchange's frames and returns its status and
// body.
func finalFrameBody(br *bufio.Reader) (answer, error) {
	var buf []byte
	var a answer
	for {
		f, err := readResponse(br, &buf)
		if err != nil {
			return a, err
		}
		a.body += string(f.Body)
		if !f.More {
			a.status = f.Status
			return a, nil
		}
	}
}

// The stream the watch read ahead on carries the next requests: the byte
// its Peek got is the next request's first.
func TestNextRequestOnTheWatchedStream(t *testing.T) {
	for _, kind := range transports {
		t.Run(kind, func(t *testing.T) {
			started, release := make(chan struct{}, 1), make(chan struct{})
			cancelled := make(chan error, 8)
			_, ch, server := servePair(t, kind, map[string]Handler{"text.echo": HandlerFunc(func(ctx context.Context, r *Request, w ResponseWriter) error {
				if string(r.Body) == "slow" {
					started <- struct{}{}
					<-release
				}
				if err := ctx.Err(); err != nil {
					cancelled <- err
				}
				return w.Write(append([]byte("echo:"), r.Body...))
			})}, DefaultServerConfig())
			c, _ := NewClient(ch, DefaultClientConfig())
			defer c.Close()
			first := make(chan Result, 1)
			go func() {
				first <- c.Stream(context.Background(), server, &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("slow"), TimeoutMs: 60_000}, nil)
			}()
			<-started
			close(release)
			if r := <-first; r.Status != StatusOK || string(r.Body) != "echo:slow" {
				t.Fatalf("first: %v %q %v", r.Status, r.Body, r.Err)
			}
			for _, body := range []string{"b", "c"} {
				r := c.Stream(context.Background(), server, &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte(body), TimeoutMs: 60_000}, nil)
				if r.Status != StatusOK || string(r.Body) != "echo:"+body {
					t.Fatalf("%s: %v %q %v", body, r.Status, r.Body, r.Err)
				}
			}
			n := 0
			for _, conn := range ch.Network().ConnsToPeer(server) {
				for _, s := range conn.GetStreams() {
					if s.Protocol() == QueryID {
						n++
					}
				}
			}
			if n != 1 {
				t.Fatalf("%d query streams, want the one reused", n)
			}
			select {
			case err := <-cancelled:
				t.Fatalf("a handler's context ended: %v", err)
			default:
			}
		})
	}
}

// A request whose client resets the stream while it is queued leaves the
// queue at once: the slot goes to the next request, and its handler never
// runs.
func TestResetWhileQueuedLeavesTheQueue(t *testing.T) {
	ran, releaseA := make(chan string, 4), make(chan struct{})
	cfg := DefaultServerConfig()
	cfg.MaxConcurrent = 1
	srv, ch, server := servePair(t, "tcp", map[string]Handler{"text.echo": HandlerFunc(func(_ context.Context, r *Request, w ResponseWriter) error {
		ran <- r.ID
		if r.ID == "a" {
			<-releaseA
		}
		return w.Write(r.Body)
	})}, cfg)
	unblockA := sync.OnceFunc(func() { close(releaseA) })
	t.Cleanup(unblockA)
	c, _ := NewClient(ch, DefaultClientConfig())
	defer c.Close()
	queued := func() int {
		srv.sched.mu.Lock()
		defer srv.sched.mu.Unlock()
		return srv.sched.queued
	}
	results := make(chan Result, 3)
	send := func(ctx context.Context, id string) {
		go func() {
			results <- c.Stream(ctx, server, &pb.Request{RequestId: id, Synapse: "text.echo", Netuid: 1, Body: []byte(id), TimeoutMs: 60_000}, nil)
		}()
	}
	send(context.Background(), "a")
	if id := <-ran; id != "a" {
		t.Fatalf("ran %q first", id)
	}
	ctxB, leaveB := context.WithCancel(context.Background())
	send(ctxB, "b")
	waitFor(t, cancelBound, "b never queued", func() bool { return queued() == 1 })
	leaveB()
	waitFor(t, cancelBound, "b still queued after its client left", func() bool { return queued() == 0 })
	if r := <-results; r.Err == nil {
		t.Fatalf("b got an answer %+v", r)
	}
	send(context.Background(), "c")
	waitFor(t, cancelBound, "c never queued", func() bool { return queued() == 1 })
	unblockA()
	for range 2 {
		if r := <-results; r.Status != StatusOK {
			t.Fatalf("result %v %q %v", r.Status, r.Body, r.Err)
		}
	}
	if id := <-ran; id != "c" {
		t.Fatalf("ran %q after a, want c", id)
	}
	select {
	case id := <-ran:
		t.Fatalf("ran %q too", id)
	default:
	}
}

// An idle stream, after an answer, holds one goroutine of the server's:
// the last exchange's watch, which carries on serving the next request
// (handOver), not the watch plus a server goroutine waiting on it. The
// next request on each stream is answered by the goroutine it was handed
// to, and an idle timeout still ends the streams.
func TestIdleStreamHoldsOneGoroutine(t *testing.T) {
	const streams = 6
	for _, kind := range transports {
		t.Run(kind, func(t *testing.T) {
			cfg := DefaultServerConfig()
			srv, ch, server := servePair(t, kind, map[string]Handler{"text.echo": HandlerFunc(func(_ context.Context, r *Request, w ResponseWriter) error {
				return w.Write(r.Body)
			})}, cfg)
			ask := func(st network.Stream, br *bufio.Reader, body string) {
				t.Helper()
				if _, err := st.Write(rawRequest(t, &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte(body)})); err != nil {
					t.Fatal(err)
				}
				f, err := finalFrameBody(br)
				if err != nil {
					t.Fatal(err)
				}
				if f.status != StatusOK || f.body != body {
					t.Fatalf("answer %v %q, want OK %q", f.status, f.body, body)
				}
			}
			var sts []network.Stream
			var brs []*bufio.Reader
			for i := range streams {
				st, err := ch.NewStream(context.Background(), server, QueryID)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Reset()
				sts, brs = append(sts, st), append(brs, bufio.NewReader(st))
				ask(st, brs[i], fmt.Sprint("first ", i))
			}
			idle := func() (watching, waiting int) {
				buf := make([]byte, 1<<22)
				stacks := string(buf[:runtime.Stack(buf, true)])
				return strings.Count(stacks, "protocol.(*exchanges).watch.func1"), strings.Count(stacks, "protocol.(*exchanges).next")
			}
			waitFor(t, 10*time.Second, "the idle streams did not settle to one goroutine each", func() bool {
				w, n := idle()
				return w == streams && n == 0
			})
			for i, st := range sts {
				ask(st, brs[i], fmt.Sprint("second ", i))
			}
			waitFor(t, 10*time.Second, "after a second exchange, the idle streams did not settle to one goroutine each", func() bool {
				w, n := idle()
				return w == streams && n == 0
			})
			if n := srv.serving(); n != streams {
				t.Fatalf("the server serves %d streams, want %d", n, streams)
			}
		})
	}
}

// A stream handed over to its watch still ends after IdleTimeout.
func TestHandedOverStreamEndsWhenIdle(t *testing.T) {
	cfg := DefaultServerConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	srv, ch, server := servePair(t, "tcp", map[string]Handler{"text.echo": HandlerFunc(func(_ context.Context, r *Request, w ResponseWriter) error {
		return w.Write(r.Body)
	})}, cfg)
	st, err := ch.NewStream(context.Background(), server, QueryID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	if _, err := st.Write(rawRequest(t, &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("hi")})); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(st)
	if f, err := finalFrameBody(br); err != nil || f.status != StatusOK {
		t.Fatalf("answer %+v, %v", f, err)
	}
	waitFor(t, 10*time.Second, "the idle stream was not ended", func() bool { return srv.serving() == 0 })
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the server wrote on a stream it ended for idleness")
	}
}
