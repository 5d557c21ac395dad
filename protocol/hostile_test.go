package protocol

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
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

// fullRequest is a text.echo request on subnet 1 whose encoding is exactly
// MaxRequestSize bytes.
func fullRequest(t *testing.T) *pb.Request {
	t.Helper()
	req := &pb.Request{Synapse: "text.echo", Netuid: 1, Body: make([]byte, MaxRequestSize-32)}
	for range 4 {
		req.Body = make([]byte, len(req.Body)+MaxRequestSize-proto.Size(req))
	}
	if proto.Size(req) != MaxRequestSize {
		t.Fatalf("request of %d bytes", proto.Size(req))
	}
	return req
}

// steadyHeap is the live heap after collections, once two readings agree
// within 64 KiB (streams may still be settling), or the last of them.
func steadyHeap() int64 {
	prev := int64(-1)
	for range 50 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		cur := int64(ms.HeapAlloc)
		if prev >= 0 && cur-prev < 64<<10 && prev-cur < 64<<10 {
			return min(cur, prev)
		}
		prev = cur
		time.Sleep(20 * time.Millisecond)
	}
	return prev
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// protocolMemory is the memory the server's resource manager has charged
// to the query protocol: what the server reserved for its streams.
func protocolMemory(t *testing.T, h host.Host) int64 {
	var mem int64
	if err := h.Network().ResourceManager().ViewProtocol(QueryID, func(s network.ProtocolScope) error {
		mem = s.Stat().Memory
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return mem
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// holdFrames opens perPeer query streams from each of the hostile hosts
// to the server and writes on each frame (a heldFrame: a request frame
// but its last byte, which never comes). It returns the streams at once,
// the writes going on (a server that refuses a caller stops reading its
// frame, and the write waits), and stop, which resets the streams and
// waits for the writes (the test's end does too).
func holdFrames(t *testing.T, hostile []host.Host, server peer.ID, perPeer int, frame []byte) (streams []network.Stream, stop func()) {
	t.Helper()
	for _, h := range hostile {
		for range perPeer {
			st, err := h.NewStream(context.Background(), server, QueryID)
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, st)
		}
	}
	var wg sync.WaitGroup
	stop = func() {
		for _, st := range streams {
			st.Reset()
		}
		wg.Wait()
	}
	t.Cleanup(stop)
	for _, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.SetWriteDeadline(time.Now().Add(time.Minute))
			st.Write(frame)
		}()
	}
	return streams, stop
}

// heldFrame is a largest request frame less its last byte, which a
// server holding it waits for.
func heldFrame(t *testing.T) []byte {
	frame := requestFrame(t, fullRequest(t))
	return frame[:len(frame)-1]
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

// F2 (#19): streams from peers the server refuses, each holding a request
// frame of MaxRequestSize bytes but one, make it hold next to nothing: the
// caller is checked before the body is read, and the body never is.
func TestRefusedCallersFramesHoldNoMemory(t *testing.T) {
	reg := &callerTable{m: map[peer.ID]Caller{}}
	cfg := DefaultServerConfig()
	cfg.ReadTimeout = 30 * time.Second // the frames stay unfinished while the test looks
	srv, sh := realServer(t, reg, cfg)
	const peers, perPeer = 4, 16
	var hostile []host.Host
	for range peers {
		hostile = append(hostile, hostileHost(t, sh))
	}
	serving := func() int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.streams)
	}
	frame := heldFrame(t) // the hostile peers' own bytes, not the server's
	base := steadyHeap()
	streams, stop := holdFrames(t, hostile, sh.ID(), perPeer, frame)
	// Each is refused, unsigned, before the frame ends; the server stops
	// reading it and lets it go, while the hostile peers still hold it.
	for i, st := range streams {
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		f, err := finalFrame(st, bufio.NewReader(st))
		if err != nil || f.Status != StatusForbidden || f.Receipt != nil {
			t.Fatalf("stream %d: %v, %v", i, f, err)
		}
	}
	waitUntil(t, 10*time.Second, "the server to let the refused streams go", func() bool { return serving() == 0 })
	// What the server kept of them, once the hostile peers' writes (in
	// this process too) are gone.
	stop()
	held := steadyHeap() - base
	charged := protocolMemory(t, sh)
	t.Logf("%d streams from %d unregistered peers, each %s of a request frame: heap %+.2f MiB, charged to the resource manager %s",
		len(streams), peers, mib(MaxRequestSize-1), float64(held)/(1<<20), mib(charged))
	if limit := int64(len(streams)) * 64 << 10; held > limit {
		t.Errorf("the server holds %s for %d refused streams (at most %s)", mib(held), len(streams), mib(limit))
	}
	// A client reads its refusal although the server never read its
	// body: it reads the answer while it writes a long request.
	c, err := NewClient(hostile[0], DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := &pb.Request{Synapse: "text.echo", Netuid: 1, Body: make([]byte, MaxRequestSize-64), WantReceipt: true, TimeoutMs: 10_000}
	if r := c.Stream(context.Background(), sh.ID(), req, nil); r.Status != StatusForbidden || r.Receipt != nil {
		t.Errorf("a client's refused request: %v %v, receipt %v", r.Status, r.Err, r.Receipt)
	}
}

// A registered caller whose requests pass PeerRequestBytes is not
// refused: its requests wait for its earlier ones.
func TestRegisteredCallerWaitsForItsBudget(t *testing.T) {
	nt := newNet(t, 2)
	cfg := DefaultServerConfig()
	cfg.PeerRequestBytes = MaxRequestSize
	nt.server(0, map[string]Handler{"text.echo": echo}, cfg)
	c := nt.client(1)
	defer c.Close()
	req := &pb.Request{Synapse: "text.echo", Netuid: 1, Body: make([]byte, MaxRequestSize-64), TimeoutMs: 20_000}
	var wg sync.WaitGroup
	results := make([]Result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.Stream(context.Background(), nt.hosts[0].ID(), req, nil)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Status != StatusOK || len(r.Body) != len(req.Body)+5 {
			t.Errorf("request %d: %v %v", i, r.Status, r.Err)
		}
	}
}

// F2 (#19), with AllowUnregistered: unregistered peers are served, but the
// request bytes they make the server hold are bounded per peer and
// together, charged to the resource manager, and a registered caller is
// served meanwhile.
func TestUnregisteredRequestBytesBounded(t *testing.T) {
	client := realHost(t, key(1).Libp2p())
	reg := &callerTable{m: map[peer.ID]Caller{client.ID(): {Registered: true, Stake: 1}}}
	cfg := DefaultServerConfig()
	cfg.ReadTimeout, cfg.AllowUnregistered = 30*time.Second, true
	cfg.PeerRequestBytes, cfg.RequestBytes = 2*MaxRequestSize, 8*MaxRequestSize // unregistered callers: 4 MiB
	srv, sh := realServer(t, reg, cfg)
	if err := client.Connect(context.Background(), peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	const peers, perPeer = 8, 8
	var hostile []host.Host
	for range peers {
		hostile = append(hostile, hostileHost(t, sh))
	}
	serving := func() int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.streams)
	}
	frame := heldFrame(t) // the hostile peers' own bytes, not the server's
	base := steadyHeap()
	streams, _ := holdFrames(t, hostile, sh.ID(), perPeer, frame)
	// Streams past the unregistered callers' budget are answered
	// OVERLOADED and let go; the rest the server holds, waiting for their
	// last byte.
	var answered atomic.Int64
	var wg sync.WaitGroup
	for _, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.SetReadDeadline(time.Now().Add(3 * time.Second))
			if f, err := finalFrame(st, bufio.NewReader(st)); err == nil && f.Status == StatusOverloaded {
				answered.Add(1)
				st.Reset() // the hostile peer's write (in this process) ends
			}
		}()
	}
	wg.Wait()
	waitUntil(t, 10*time.Second, "the server to hold the rest", func() bool { return serving() == len(streams)-int(answered.Load()) })
	if budget := cfg.RequestBytes / 2 / MaxRequestSize; serving() > budget {
		t.Errorf("the server reads %d unregistered requests at once, more than their budget's %d", serving(), budget)
	}
	t.Logf("%d of %d streams answered OVERLOADED; the server reads the other %d", answered.Load(), len(streams), serving())
	held := steadyHeap() - base
	charged := protocolMemory(t, sh)
	t.Logf("%d streams from %d unregistered peers, each %s of a request frame: heap %+.2f MiB, charged to the resource manager %s",
		len(streams), peers, mib(MaxRequestSize-1), float64(held)/(1<<20), mib(charged))
	limit := int64(cfg.RequestBytes/2) + 4<<20 // their share, and the streams themselves
	if held > limit {
		t.Errorf("unregistered peers make the server hold %s (at most %s)", mib(held), mib(limit))
	}
	if charged < held/2 {
		t.Errorf("the server holds %s and charges %s to the resource manager", mib(held), mib(charged))
	}
	// What it charges is the requests it reads: within the unregistered
	// callers' share, and the head of every other stream.
	if most := int64(cfg.RequestBytes/2 + len(streams)*headCap); charged > most {
		t.Errorf("the server charges %s for unregistered callers (at most %s)", mib(charged), mib(most))
	}
	// A registered caller is served meanwhile.
	c, err := NewClient(client, DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := make([]byte, 512<<10)
	if r := c.Stream(context.Background(), sh.ID(), &pb.Request{Synapse: "text.echo", Netuid: 1, Body: body, TimeoutMs: 10_000}, nil); r.Status != StatusOK || len(r.Body) != len(body)+5 {
		t.Errorf("registered caller: %v %v", r.Status, r.Err)
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

// subnetCallers registers its peers on one subnet only.
type subnetCallers struct {
	netuid uint16
	peers  map[peer.ID]bool
}

func (c subnetCallers) Caller(_ context.Context, netuid uint16, id peer.ID) (Caller, error) {
	return Caller{Registered: netuid == c.netuid && c.peers[id], Stake: 1}, nil
}

// The caller is checked against the netuid that precedes the body (as
// every protobuf encoder writes fields in number order); short fields may
// come in any order.
func TestCallerCheckedOnNetuidBeforeBody(t *testing.T) {
	nt := newNet(t, 2)
	s, err := NewServer(nt.hosts[0], nt.keys[0], subnetCallers{2, map[peer.ID]bool{nt.hosts[1].ID(): true}}, map[string]Handler{"text.echo": echo},
		func() ServerConfig { c := DefaultServerConfig(); c.Logger = slog.New(slog.DiscardHandler); return c }())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	field := func(b []byte, num protowire.Number, v any) []byte {
		switch v := v.(type) {
		case uint64:
			return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
		case string:
			return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), v)
		}
		panic(v)
	}
	send := func(raw []byte) *pb.Response {
		st, err := nt.hosts[1].NewStream(context.Background(), nt.hosts[0].ID(), QueryID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		st.Write(append(varint(uint64(len(raw))), raw...))
		st.CloseWrite()
		f, err := finalFrame(st, bufio.NewReader(st))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	long := string(make([]byte, 100))
	for _, tc := range []struct {
		name string
		raw  []byte
		want Status
	}{
		{"in order", field(field(field(nil, 2, uint64(2)), 3, "text.echo"), 4, long), StatusOK},
		{"short body first", field(field(field(nil, 4, "hi"), 3, "text.echo"), 2, uint64(2)), StatusOK},
		{"long body first", field(field(field(nil, 4, long), 3, "text.echo"), 2, uint64(2)), StatusForbidden},
	} {
		if r := send(tc.raw); r.Status != tc.want {
			t.Errorf("%s: %v %q, want %v", tc.name, r.Status, r.Message, tc.want)
		}
	}
}
