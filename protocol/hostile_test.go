package protocol

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

// Tests of what a hostile peer can make a server hold or spend (#19). The
// hostile peers are go-libp2p hosts of their own (TCP, go-libp2p's default
// security and muxer) with fresh keys that nobody registered, as an
// attacker's would be; the server runs on a go-libp2p host with its
// default resource manager, so what it charges there can be read.

// realHost starts a go-libp2p host with key k on loopback TCP.
func realHost(t *testing.T, k crypto.PrivKey) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(k), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// hostileHost starts a host with a fresh secp256k1 key, unregistered,
// connected to target.
func hostileHost(t *testing.T, target host.Host) host.Host {
	t.Helper()
	k, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := realHost(t, k)
	if err := h.Connect(context.Background(), peer.AddrInfo{ID: target.ID(), Addrs: target.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return h
}

// realServer serves text.echo from a go-libp2p host with key(0); reg says
// who is registered.
func realServer(t *testing.T, reg Callers, cfg ServerConfig) (*Server, host.Host) {
	t.Helper()
	h := realHost(t, key(0).Libp2p())
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := NewServer(h, key(0), reg, map[string]Handler{"text.echo": echo}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, h
}

// requestFrame is req encoded with its length prefix.
func requestFrame(t *testing.T, req *pb.Request) []byte {
	t.Helper()
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return append(varint(uint64(len(raw))), raw...)
}

// finalFrame reads frames from st until the last one of an exchange.
func finalFrame(st network.Stream, br *bufio.Reader) (*pb.Response, error) {
	var buf []byte
	for {
		f, err := readResponse(br, &buf)
		if err != nil {
			return nil, err
		}
		if !f.More {
			return f, nil
		}
	}
}

// F5 (#19): ReadTimeout bounds reading every request on a stream from its
// first byte, not only the first request's; IdleTimeout only bounds the
// wait for that byte. A hostile peer does one exchange, then drips the
// next request a byte at a time.
func TestReadTimeoutBoundsEveryRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow bool
		first Status
	}{{"refused", false, StatusForbidden}, {"served", true, StatusOK}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultServerConfig()
			cfg.ReadTimeout, cfg.IdleTimeout, cfg.AllowUnregistered = time.Second, 20*time.Second, tc.allow
			_, sh := realServer(t, &callerTable{m: map[peer.ID]Caller{}}, cfg)
			h := hostileHost(t, sh)
			st, err := h.NewStream(context.Background(), sh.ID(), QueryID)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Reset()
			br := bufio.NewReader(st)
			if _, err := st.Write(requestFrame(t, &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("hi")})); err != nil {
				t.Fatal(err)
			}
			st.SetReadDeadline(time.Now().Add(10 * time.Second))
			if f, err := finalFrame(st, br); err != nil || f.Status != tc.first {
				t.Fatalf("first exchange: %v, %v", f, err)
			}
			next := requestFrame(t, &pb.Request{Synapse: "text.echo", Netuid: 1, Body: make([]byte, 300)})
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for i := range next {
					if _, err := st.Write(next[i : i+1]); err != nil {
						return
					}
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			}()
			defer wg.Wait()
			defer close(stop)
			start := time.Now()
			const patience = 30 * time.Second // past IdleTimeout
			st.SetReadDeadline(start.Add(patience))
			var last *pb.Response
			for {
				f, err := finalFrame(st, br)
				if err != nil {
					break
				}
				last = f
			}
			held := time.Since(start)
			t.Logf("second request dripped a byte per 100 ms: stream held %.1f s (ReadTimeout %v, IdleTimeout %v), last frame %v", held.Seconds(), cfg.ReadTimeout, cfg.IdleTimeout, last)
			if held > cfg.ReadTimeout+5*time.Second {
				t.Errorf("the server read the dripped request for %.1f s, ReadTimeout is %v", held.Seconds(), cfg.ReadTimeout)
			}
		})
	}
}

// F6 (#19): the server signs no receipt for callers it refuses before the
// handler, however many ask; receipts are signed for answers the handler
// gave.
func TestNoReceiptSignedForRefusals(t *testing.T) {
	nt := newNet(t, 2)
	cfg := DefaultServerConfig()
	cfg.Blacklist = func(_ Caller, r *Request) string {
		if string(r.Body) == "blocked" {
			return "blocked body"
		}
		return ""
	}
	srv := nt.server(0, map[string]Handler{
		"text.echo": echo,
		"refuses":   HandlerFunc(func(context.Context, *Request, ResponseWriter) error { return Errorf(StatusBadRequest, "no") }),
	}, cfg)
	k, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostile, err := nt.mn.AddPeer(k, multiaddr.StringCast("/ip4/127.0.0.1/tcp/4999"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nt.mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	hc, err := NewClient(hostile, DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	const n = 500
	signed := 0
	for i := range n {
		r := hc.Stream(context.Background(), nt.hosts[0].ID(), &pb.Request{RequestId: fmt.Sprint(i), Synapse: "text.echo", Netuid: 1, Body: []byte("x"), WantReceipt: true}, nil)
		if r.Status != StatusForbidden {
			t.Fatalf("request %d from an unregistered peer: %v %v", i, r.Status, r.Err)
		}
		if r.Receipt != nil && len(r.Receipt.Signature) > 0 {
			signed++
		}
	}
	t.Logf("%d refused requests from an unregistered peer: %d signed receipts, %d signatures", n, signed, srv.signed.Load())
	if signed != 0 || srv.signed.Load() != 0 {
		t.Errorf("%d receipts, %d signatures for %d refused requests", signed, srv.signed.Load(), n)
	}
	// A registered caller: refusals before the handler carry no receipt;
	// what the handler answered, refusals included, is signed.
	c := nt.client(1)
	defer c.Close()
	for _, tc := range []struct {
		req    *pb.Request
		status Status
		signed bool
	}{
		{&pb.Request{Synapse: "nope", Netuid: 1}, StatusNotFound, false},
		{&pb.Request{Synapse: "", Netuid: 1}, StatusBadRequest, false},
		{&pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("blocked")}, StatusForbidden, false},
		{&pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("hi")}, StatusOK, true},
		{&pb.Request{Synapse: "refuses", Netuid: 1}, StatusBadRequest, true},
	} {
		tc.req.WantReceipt, tc.req.TimeoutMs = true, 5000
		r := c.Stream(context.Background(), nt.hosts[0].ID(), tc.req, nil)
		if r.Status != tc.status || (r.Receipt != nil) != tc.signed {
			t.Errorf("%v: %v, receipt %v; want %v, signed %v", tc.req, r.Status, r.Receipt, tc.status, tc.signed)
			continue
		}
		if tc.signed {
			raw, _ := proto.Marshal(tc.req)
			if err := CheckReceipt(r.Receipt, raw, r.Body); err != nil {
				t.Errorf("%v: %v", tc.req, err)
			}
		}
	}
}
