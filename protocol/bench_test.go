package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	stdnet "net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/protocol/pb"
)

// tcpPair starts a server neuron and a client neuron (node.New hosts, as
// neurons run them: loopback TCP, TLS, yamux) and connects them.
func tcpPair(b *testing.B, handlers map[string]Handler) (*Client, peer.ID, func()) {
	return hostPair(b, handlers, func(i int) (host.Host, error) {
		return node.New(context.Background(), node.DefaultTestConfig(key(i)))
	})
}

// defaultPair is tcpPair on go-libp2p's default hosts (libp2p.New: TLS or
// noise, go-yamux) instead of neurons'.
func defaultPair(b *testing.B, handlers map[string]Handler) (*Client, peer.ID, func()) {
	return hostPair(b, handlers, func(i int) (host.Host, error) {
		return libp2p.New(libp2p.Identity(key(i).Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	})
}

// hostPair serves handlers from one host made by mk and connects a client
// on another.
func hostPair(b *testing.B, handlers map[string]Handler, mk func(i int) (host.Host, error)) (*Client, peer.ID, func()) {
	b.Helper()
	sh, err := mk(0)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := mk(1)
	if err != nil {
		b.Fatal(err)
	}
	reg := &callerTable{m: map[peer.ID]Caller{ch.ID(): {Registered: true, Stake: 1}}}
	cfg := DefaultServerConfig()
	cfg.MaxConcurrent, cfg.MaxQueue, cfg.Logger = 256, 1024, slog.New(slog.DiscardHandler)
	srv, err := NewServer(sh, key(0), reg, handlers, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Connect(context.Background(), peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()}); err != nil {
		b.Fatal(err)
	}
	cc := DefaultClientConfig()
	cc.MaxResponseSize = 128 << 20
	c, _ := NewClient(ch, cc)
	return c, sh.ID(), func() { srv.Close(); ch.Close(); sh.Close() }
}

// httpPair serves the same echo over net/http with JSON on loopback and
// returns a kept-alive client.
func httpPair(b *testing.B) (*http.Client, string, func()) {
	l, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Synapse string `json:"synapse"`
			Body    []byte `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"status": 0, "body": req.Body})
	})}
	go srv.Serve(l)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	return &http.Client{Transport: tr}, "http://" + l.Addr().String(), func() { tr.CloseIdleConnections(); srv.Close() }
}

var echoRaw = HandlerFunc(func(_ context.Context, r *Request, w ResponseWriter) error { return w.Write(r.Body) })

// BenchmarkRoundTrip1KiB: one 1 KiB query and its 1 KiB answer, one at a
// time and with 64 concurrent callers, over libp2p and over net/http+JSON.
func BenchmarkRoundTrip1KiB(b *testing.B) {
	payload := bytes.Repeat([]byte("k"), 1024)
	for _, parallel := range []int{1, 64} {
		b.Run(fmt.Sprintf("libp2p-query/callers=%d", parallel), func(b *testing.B) {
			c, server, stop := tcpPair(b, map[string]Handler{"echo": echoRaw})
			defer stop()
			req := &pb.Request{Synapse: "echo", Netuid: 1, Body: payload, TimeoutMs: 10_000}
			b.SetBytes(2 * 1024)
			b.ResetTimer()
			runParallel(b, parallel, func() {
				if r := c.Stream(context.Background(), server, req, nil); r.Status != StatusOK {
					b.Fatalf("status %v: %v", r.Status, r.Err)
				}
			})
		})
		b.Run(fmt.Sprintf("net-http-json/callers=%d", parallel), func(b *testing.B) {
			hc, url, stop := httpPair(b)
			defer stop()
			body, _ := json.Marshal(map[string]any{"synapse": "echo", "body": payload})
			b.SetBytes(2 * 1024)
			b.ResetTimer()
			runParallel(b, parallel, func() {
				resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				var out struct{ Body []byte }
				json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if len(out.Body) != 1024 {
					b.Fatal("short answer")
				}
			})
		})
	}
}

// runParallel runs b.N calls of f spread over workers goroutines.
func runParallel(b *testing.B, workers int, f func()) {
	var wg sync.WaitGroup
	jobs := make(chan struct{}, b.N)
	for range b.N {
		jobs <- struct{}{}
	}
	close(jobs)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				f()
			}
		}()
	}
	wg.Wait()
}

// BenchmarkTransfer: a 1 MiB and a 64 MiB answer over libp2p against the
// same bytes over a raw TCP socket. The interleaved runs do one transfer
// over neurons' hosts, one over go-libp2p's default hosts, one over raw TCP
// and one of the bare AES-GCM record stream that bounds any TLS channel
// (ceiling_test.go) per op, and report each one's speed as a ratio of raw
// TCP's (x-raw-tcp, default-x-raw-tcp, ceiling-x-raw-tcp), and the
// neurons' speed as a ratio of the ceiling's (x-ceiling): on a shared
// machine whose speed drifts between sub-benchmarks, every side of a ratio
// then sees the same conditions.
func BenchmarkTransfer(b *testing.B) {
	for _, size := range []int{1 << 20, 64 << 20} {
		blob := bytes.Repeat([]byte("b"), size)
		for _, way := range []struct {
			name  string
			start func(*testing.B, []byte) (func(), func())
		}{
			{"libp2p-query", func(b *testing.B, blob []byte) (func(), func()) { return libp2pTransfer(b, blob, tcpPair) }},
			{"raw-tcp", rawTransfer},
		} {
			b.Run(fmt.Sprintf("%s/%dMiB", way.name, size>>20), func(b *testing.B) {
				get, stop := way.start(b, blob)
				defer stop()
				b.SetBytes(int64(size))
				b.ResetTimer()
				for range b.N {
					get()
				}
			})
		}
		b.Run(fmt.Sprintf("interleaved/%dMiB", size>>20), func(b *testing.B) {
			ways := []struct {
				get, stop func()
				took      time.Duration
			}{{}, {}, {}, {}}
			ways[0].get, ways[0].stop = libp2pTransfer(b, blob, tcpPair)
			ways[1].get, ways[1].stop = libp2pTransfer(b, blob, defaultPair)
			ways[2].get, ways[2].stop = rawTransfer(b, blob)
			ways[3].get, ways[3].stop = ceilingTransfer(b, blob)
			for _, w := range ways {
				defer w.stop()
			}
			b.SetBytes(int64(len(ways) * size))
			b.ResetTimer()
			for range b.N {
				for i := range ways {
					start := time.Now()
					ways[i].get()
					ways[i].took += time.Since(start)
				}
			}
			b.StopTimer()
			mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
			raw := ways[2].took.Seconds()
			b.ReportMetric(mbps(ways[0].took), "libp2p-MB/s")
			b.ReportMetric(mbps(ways[1].took), "default-MB/s")
			b.ReportMetric(mbps(ways[2].took), "raw-MB/s")
			b.ReportMetric(raw/ways[0].took.Seconds(), "x-raw-tcp")
			b.ReportMetric(raw/ways[1].took.Seconds(), "default-x-raw-tcp")
			b.ReportMetric(raw/ways[3].took.Seconds(), "ceiling-x-raw-tcp")
			b.ReportMetric(ways[3].took.Seconds()/ways[0].took.Seconds(), "x-ceiling")
		})
	}
}

// libp2pTransfer starts two hosts with pair, the server answering with blob, and
// returns a func asking for it once.
func libp2pTransfer(b *testing.B, blob []byte, pair func(*testing.B, map[string]Handler) (*Client, peer.ID, func())) (get func(), stop func()) {
	c, server, stop := pair(b, map[string]Handler{"blob": HandlerFunc(func(_ context.Context, _ *Request, w ResponseWriter) error { return w.Write(blob) })})
	return func() {
		n := 0
		r := c.Stream(context.Background(), server, &pb.Request{Synapse: "blob", Netuid: 1, TimeoutMs: 60_000}, func(p []byte) error { n += len(p); return nil })
		if r.Status != StatusOK || n != len(blob) {
			b.Fatalf("status %v, %d bytes", r.Status, n)
		}
	}, stop
}

// rawTransfer starts a TCP server on loopback that writes blob for each
// byte it reads, and returns a func asking for it once over a kept
// connection.
func rawTransfer(b *testing.B, blob []byte) (get func(), stop func()) {
	l, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 1)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
			if _, err := conn.Write(blob); err != nil {
				return
			}
		}
	}()
	conn, err := stdnet.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	return func() {
			if _, err := conn.Write([]byte{1}); err != nil {
				b.Fatal(err)
			}
			for n := 0; n < len(blob); {
				m, err := conn.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				n += m
			}
		}, func() {
			conn.Close()
			l.Close()
			wg.Wait()
		}
}

// BenchmarkFanOut256 asks 256 neurons (real libp2p hosts on loopback TCP)
// one 1 KiB query each, concurrently; the baseline asks 256 net/http+JSON
// servers the same way. One op is one whole fan-out.
func BenchmarkFanOut256(b *testing.B) {
	const n = 256
	payload := bytes.Repeat([]byte("f"), 1024)
	b.Run("libp2p-query", func(b *testing.B) {
		client, err := libp2p.New(libp2p.Identity(key(10_000).Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			b.Fatal(err)
		}
		defer client.Close()
		reg := &callerTable{m: map[peer.ID]Caller{client.ID(): {Registered: true, Stake: 1}}}
		var targets []peer.ID
		for i := range n {
			h, err := libp2p.New(libp2p.Identity(key(20_000+i).Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			cfg := DefaultServerConfig()
			cfg.Logger = slog.New(slog.DiscardHandler)
			srv, err := NewServer(h, key(20_000+i), reg, map[string]Handler{"echo": echoRaw}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			client.Peerstore().AddAddrs(h.ID(), h.Addrs(), time.Hour)
			targets = append(targets, h.ID())
		}
		c, _ := NewClient(client, DefaultClientConfig())
		defer c.Close()
		req := &pb.Request{Synapse: "echo", Netuid: 1, Body: payload, TimeoutMs: 30_000}
		c.Query(context.Background(), targets, req) // connect once, as a running validator is
		b.ResetTimer()
		for range b.N {
			for _, r := range c.Query(context.Background(), targets, req) {
				if r.Status != StatusOK {
					b.Fatalf("status %v: %v", r.Status, r.Err)
				}
			}
		}
	})
	b.Run("net-http-json", func(b *testing.B) {
		var urls []string
		for range n {
			_, url, stop := httpPair(b)
			defer stop()
			urls = append(urls, url)
		}
		tr := &http.Transport{MaxIdleConnsPerHost: 4}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		body, _ := json.Marshal(map[string]any{"synapse": "echo", "body": payload})
		b.ResetTimer()
		for range b.N {
			var wg sync.WaitGroup
			for _, u := range urls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := hc.Post(u, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}()
			}
			wg.Wait()
		}
	})
}

// BenchmarkScheduler: the query server's slots alone, acquired and
// released by 64 goroutines asking for 8 callers of different stakes on
// 16 slots, so that most requests queue; with shares by stake and
// without.
func BenchmarkScheduler(b *testing.B) {
	ids := make([]peer.ID, 8)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprintf("caller-%d", i))
	}
	for _, share := range []bool{false, true} {
		b.Run(fmt.Sprintf("share=%v", share), func(b *testing.B) {
			s := newScheduler(16, 1024, share)
			var n atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			runParallel(b, 64, func() {
				i := n.Add(1) % uint64(len(ids))
				c, err := s.acquire(context.Background(), ids[i], 1000*(i+1))
				if err != nil {
					b.Fatal(err)
				}
				s.release(c)
			})
		})
	}
}
