package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"

	"github.com/cybertensor/cybertensor/node/aegis"
	"github.com/cybertensor/cybertensor/node/yamux"
)

// Several streams each way carry megabytes at once, between two neurons
// (the record transport) and between a neuron and a go-libp2p host that
// offers only stock TLS and noise (the batched TLS connection, on the
// neuron's side); every byte arrives in order.
func TestBulkStreams(t *testing.T) {
	ctx := context.Background()
	a, err := New(ctx, DefaultTestConfig(key(20)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(ctx, DefaultTestConfig(key(21)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mux, err := yamux.New(yamux.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	stock, err := libp2p.New(libp2p.Identity(key(22).Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(), libp2p.Muxer(yamux.ID, mux))
	if err != nil {
		t.Fatal(err)
	}
	defer stock.Close()
	const proto = "/test/echo/1.0.0"
	for _, h := range []host.Host{a, b, stock} {
		h.SetStreamHandler(proto, func(s network.Stream) {
			defer s.Close()
			io.Copy(s, s)
		})
	}
	for _, c := range []struct {
		to       host.Host
		security protocol.ID
	}{{b, RecordsID}, {stock, libp2ptls.ID}} {
		if c.security == RecordsID && !aegis.Supported {
			continue
		}
		t.Run(string(c.security), func(t *testing.T) {
			if err := a.Connect(ctx, peer.AddrInfo{ID: c.to.ID(), Addrs: c.to.Addrs()}); err != nil {
				t.Fatal(err)
			}
			conn := a.Network().ConnsToPeer(c.to.ID())[0]
			if got := conn.ConnState().Security; got != c.security {
				t.Fatalf("security %q, want %q", got, c.security)
			}
			var ys *yamux.Session
			if got := conn.ConnState().StreamMultiplexer; got != yamux.ID || !conn.As(&ys) {
				t.Fatalf("muxer %q, As(*yamux.Session) %v: want node/yamux", got, conn.As(&ys))
			}
			bulkEcho(t, a, c.to, proto)
		})
	}
}

// bulkEcho runs six streams at once, alternately opened by each host, each
// echoing 3 MiB written in pieces of every size.
func bulkEcho(t *testing.T, a, b host.Host, proto protocol.ID) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 6 {
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := make([]byte, 3<<20+i*7919)
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for j := range data {
				data[j] = byte(r.Uint32())
			}
			s, err := from.NewStream(ctx, to.ID(), proto)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			go func() {
				// Writes of every size, small to larger than a batch.
				for rest := data; len(rest) > 0; {
					n := min(len(rest), 1+r.IntN(1500<<10))
					if _, err := s.Write(rest[:n]); err != nil {
						t.Error(err)
						return
					}
					rest = rest[n:]
				}
				s.CloseWrite()
			}()
			got, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("stream %d: %d of %d bytes back, equal %v, err %v", i, len(got), len(data), bytes.Equal(got, data), err)
			}
		}()
	}
	wg.Wait()
}

type failConn struct {
	net.Conn
	writes [][]byte
	fail   error
}

func (c *failConn) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

// Records written in a batch go out in one write, in order; outside a
// batch they go out at once; a failed write fails every later one.
func TestBatchConn(t *testing.T) {
	fc := &failConn{}
	c := &batchConn{Conn: fc}
	c.Write([]byte("direct"))
	c.begin()
	c.Write([]byte("a"))
	c.begin() // a second writer joins the open batch
	c.Write([]byte("b"))
	if err := c.end(); err != nil || len(fc.writes) != 1 {
		t.Fatalf("flushed before the last batch ended: %q %v", fc.writes, err)
	}
	c.Write([]byte("c"))
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	if len(fc.writes) != 2 || string(fc.writes[0]) != "direct" || string(fc.writes[1]) != "abc" {
		t.Fatalf("writes %q", fc.writes)
	}
	boom := errors.New("boom")
	fc.fail = boom
	c.begin()
	c.Write([]byte("lost"))
	if err := c.end(); !errors.Is(err, boom) {
		t.Fatalf("end: %v, want the write error", err)
	}
	fc.fail = nil
	if _, err := c.Write([]byte("later")); !errors.Is(err, boom) {
		t.Fatalf("write after a failure: %v", err)
	}
}

// countConn counts the writes to a socket.
type countConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// A batched TLS Write of 64 KiB (four TLS records) and a WriteFrames of
// several parts each reach the socket as one write, and arrive whole.
func TestBatchedTLSWritesOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ct, err := newBatchedTLS(libp2ptls.ID, key(40).Libp2p(), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := newBatchedTLS(libp2ptls.ID, key(41).Libp2p(), nil)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 64<<10+300)
	for i := range data {
		data[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		c, err := st.SecureInbound(context.Background(), raw, "")
		if err != nil {
			raw.Close()
			got <- nil
			return
		}
		defer c.Close()
		b := make([]byte, 2*len(data))
		_, err = io.ReadFull(c, b)
		if err != nil {
			b = nil
		}
		got <- b
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := &countConn{Conn: raw}
	c, err := ct.SecureOutbound(context.Background(), cc, key(41).PublicKey().PeerID())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := cc.count()
	if n, err := c.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if writes := cc.count() - before; writes != 1 {
		t.Fatalf("a 64 KiB Write took %d socket writes, want 1", writes)
	}
	before = cc.count()
	if err := c.(yamux.FrameWriter).WriteFrames(data[:12], data[12:40000], data[40000:]); err != nil {
		t.Fatal(err)
	}
	if writes := cc.count() - before; writes != 1 {
		t.Fatalf("WriteFrames of three parts took %d socket writes, want 1", writes)
	}
	if b := <-got; !bytes.Equal(b, append(append([]byte(nil), data...), data...)) {
		t.Fatal("the peer read other bytes than were written")
	}
}

// A batch whose socket write a deadline cuts short keeps what the socket
// did not take, and the next write sends it first: nothing is lost, and
// the connection goes on.
func TestBatchConnResumesAfterTimeout(t *testing.T) {
	cut := &cutConn{cut: 3}
	c := &batchConn{Conn: cut}
	c.begin()
	c.Write([]byte("abcdef"))
	if err := c.end(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("end: %v, want the timeout", err)
	}
	if _, err := c.Write([]byte("gh")); err != nil {
		t.Fatalf("write after the timeout: %v", err)
	}
	if got := cut.out.String(); got != "abcdefgh" {
		t.Fatalf("the socket got %q, want abcdefgh", got)
	}
}
