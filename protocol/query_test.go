package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func key(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("protocol test key %d", i)))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	return k
}

// callerTable is a Callers backed by a map.
type callerTable struct {
	mu sync.Mutex
	m  map[peer.ID]Caller
}

func (c *callerTable) Caller(_ context.Context, _ uint16, id peer.ID) (Caller, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id], nil
}

type net struct {
	t     *testing.T
	mn    mocknet.Mocknet
	hosts []host.Host
	keys  []*wallet.PrivateKey
	reg   *callerTable
}

// newNet makes n hosts whose identities are hotkeys, all linked; every
// host is registered with stake 1000·(i+1).
func newNet(t *testing.T, n int) *net {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	nt := &net{t: t, mn: mn, reg: &callerTable{m: map[peer.ID]Caller{}}}
	for i := range n {
		k := key(i)
		addr, _ := multiaddr.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 4000+i))
		h, err := mn.AddPeer(k.Libp2p(), addr)
		if err != nil {
			t.Fatal(err)
		}
		nt.hosts, nt.keys = append(nt.hosts, h), append(nt.keys, k)
		nt.reg.m[h.ID()] = Caller{Registered: true, UID: uint16(i), Stake: 1000 * uint64(i+1)}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	return nt
}

func (nt *net) server(i int, handlers map[string]Handler, cfg ServerConfig) *Server {
	nt.t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := NewServer(nt.hosts[i], nt.keys[i], nt.reg, handlers, cfg)
	if err != nil {
		nt.t.Fatal(err)
	}
	nt.t.Cleanup(func() { s.Close() })
	return s
}

func (nt *net) client(i int) *Client {
	c, err := NewClient(nt.hosts[i], DefaultClientConfig())
	if err != nil {
		nt.t.Fatal(err)
	}
	return c
}

var echo = HandlerFunc(func(_ context.Context, r *Request, w ResponseWriter) error {
	return w.Write(append([]byte("echo:"), r.Body...))
})

func TestRoundTripWithVerifiableReceipt(t *testing.T) {
	nt := newNet(t, 3)
	nt.server(0, map[string]Handler{"text.echo": echo}, DefaultServerConfig())
	req := &pb.Request{RequestId: "r1", Netuid: 1, Synapse: "text.echo", Body: []byte("hi"), TimeoutMs: 5000, WantReceipt: true}
	res := nt.client(1).Stream(context.Background(), nt.hosts[0].ID(), req, nil)
	if res.Status != StatusOK || string(res.Body) != "echo:hi" || res.Err != nil {
		t.Fatalf("result %+v", res)
	}
	// A third party checks the receipt with nothing but the bytes.
	raw, _ := proto.Marshal(req)
	if err := CheckReceipt(res.Receipt, raw, res.Body); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if res.Receipt.Server != nt.hosts[0].ID().String() || res.Receipt.Client != nt.hosts[1].ID().String() {
		t.Fatalf("receipt parties %+v", res.Receipt)
	}
	// Tampering with any part breaks it.
	for name, edit := range map[string]func(r *pb.Receipt){
		"response hash": func(r *pb.Receipt) { r.ResponseHash[0] ^= 1 },
		"status":        func(r *pb.Receipt) { r.Status = StatusInternal },
		"client":        func(r *pb.Receipt) { r.Client = nt.hosts[2].ID().String() },
		"server":        func(r *pb.Receipt) { r.Server = nt.hosts[2].ID().String() },
		"signature":     func(r *pb.Receipt) { r.Signature[5] ^= 1 },
	} {
		bad := proto.Clone(res.Receipt).(*pb.Receipt)
		edit(bad)
		if err := VerifyReceipt(bad); !errors.Is(err, ErrBadReceipt) {
			t.Errorf("%s tampered: %v", name, err)
		}
	}
	if err := CheckReceipt(res.Receipt, raw, []byte("echo:lie")); !errors.Is(err, ErrBadReceipt) {
		t.Errorf("receipt accepted for another body: %v", err)
	}
}

func TestStreamingChunks(t *testing.T) {
	nt := newNet(t, 2)
	nt.server(0, map[string]Handler{"text.generate": HandlerFunc(func(_ context.Context, r *Request, w ResponseWriter) error {
		for i := range 5 {
			if err := w.Write([]byte(fmt.Sprintf("tok%d ", i))); err != nil {
				return err
			}
		}
		return nil
	})}, DefaultServerConfig())
	var chunks []string
	res := nt.client(1).Stream(context.Background(), nt.hosts[0].ID(), &pb.Request{Synapse: "text.generate", Netuid: 1}, func(b []byte) error {
		chunks = append(chunks, string(b))
		return nil
	})
	if res.Status != StatusOK || len(chunks) != 5 || chunks[4] != "tok4 " || len(res.Body) != 0 {
		t.Fatalf("status %v chunks %q body %q", res.Status, chunks, res.Body)
	}
	// A large answer is split into frames and reassembled.
	big := bytes.Repeat([]byte("x"), 3*MaxFrameSize)
	nt2 := newNet(t, 2)
	nt2.server(0, map[string]Handler{"blob": HandlerFunc(func(_ context.Context, _ *Request, w ResponseWriter) error { return w.Write(big) })}, DefaultServerConfig())
	res = nt2.client(1).Stream(context.Background(), nt2.hosts[0].ID(), &pb.Request{Synapse: "blob", Netuid: 1}, nil)
	if res.Status != StatusOK || !bytes.Equal(res.Body, big) {
		t.Fatalf("big answer: %v, %d bytes", res.Status, len(res.Body))
	}
}

// A handler's usage reaches the client on the last frame, a pooled
// stream's next answer does not inherit it, and the receipt is the same
// whatever the usage says (it does not cover it).
func TestUsageOnTheLastFrame(t *testing.T) {
	nt := newNet(t, 2)
	nt.server(0, map[string]Handler{
		"counted": HandlerFunc(func(_ context.Context, r *Request, w ResponseWriter) error {
			if err := w.Write([]byte("four words of answer")); err != nil {
				return err
			}
			SetUsage(w, uint32(len(r.Body)), 4)
			return nil
		}),
		"failed": HandlerFunc(func(_ context.Context, r *Request, w ResponseWriter) error {
			SetUsage(w, 7, 0)
			return Errorf(StatusNotFound, "nothing")
		}),
		"silent": echo,
	}, DefaultServerConfig())
	c := nt.client(1)
	defer c.Close()
	ask := func(synapse string) Result {
		req := &pb.Request{Netuid: 1, Synapse: synapse, Body: []byte("abc"), WantReceipt: true}
		res := c.Stream(context.Background(), nt.hosts[0].ID(), req, nil)
		if res.Err != nil {
			t.Fatalf("%s: %v", synapse, res.Err)
		}
		return res
	}
	res := ask("counted")
	if res.Status != StatusOK || res.Usage.GetPromptTokens() != 3 || res.Usage.GetCompletionTokens() != 4 {
		t.Fatalf("counted: %v usage %v", res.Status, res.Usage)
	}
	raw, _ := proto.Marshal(&pb.Request{Netuid: 1, Synapse: "counted", Body: []byte("abc"), WantReceipt: true, TimeoutMs: 12000})
	if err := CheckReceipt(res.Receipt, raw, res.Body); err != nil {
		t.Fatalf("receipt with usage: %v", err)
	}
	if res := ask("silent"); res.Status != StatusOK || res.Usage != nil {
		t.Fatalf("silent handler: %v usage %v", res.Status, res.Usage)
	}
	if res := ask("failed"); res.Status != StatusNotFound || res.Usage.GetPromptTokens() != 7 {
		t.Fatalf("refusal with usage: %v usage %v", res.Status, res.Usage)
	}
	if res := ask("unknown"); res.Status != StatusNotFound || res.Usage != nil {
		t.Fatalf("unserved synapse: %v usage %v", res.Status, res.Usage)
	}
}

// Fan out to 50 neurons: 40 answer, 5 stall, 5 are offline. The call
// returns at the deadline with each status right.
func TestFanOutWithStalledAndOfflinePeers(t *testing.T) {
	nt := newNet(t, 51)
	release := make(chan struct{})
	defer close(release)
	for i := 1; i <= 50; i++ {
		switch {
		case i <= 40:
			nt.server(i, map[string]Handler{"text.echo": echo}, DefaultServerConfig())
		case i <= 45:
			// Stalled: accepts the stream and never answers.
			nt.hosts[i].SetStreamHandler(QueryID, func(s network.Stream) {
				<-release
				s.Reset()
			})
		default:
			// Offline.
			nt.mn.UnlinkPeers(nt.hosts[0].ID(), nt.hosts[i].ID())
		}
	}
	var targets []peer.ID
	for i := 1; i <= 50; i++ {
		targets = append(targets, nt.hosts[i].ID())
	}
	const timeout = 800 * time.Millisecond
	start := time.Now()
	results := nt.client(0).Query(context.Background(), targets, &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("q"), TimeoutMs: uint32(timeout / time.Millisecond)})
	elapsed := time.Since(start)
	if elapsed > timeout+5*time.Second {
		t.Fatalf("fan-out took %v with a %v deadline", elapsed, timeout)
	}
	for i, r := range results {
		uid := i + 1
		want := StatusOK
		switch {
		case uid > 45:
			want = StatusUnavailable
		case uid > 40:
			want = StatusTimeout
		}
		if r.Status != want {
			t.Errorf("uid %d: status %v (%v), want %v", uid, r.Status, r.Err, want)
		}
		if want == StatusOK && string(r.Body) != "echo:q" {
			t.Errorf("uid %d: body %q", uid, r.Body)
		}
	}
}

func TestServerRefusals(t *testing.T) {
	nt := newNet(t, 3)
	delete(nt.reg.m, nt.hosts[2].ID()) // host 2 is not registered
	cfg := DefaultServerConfig()
	cfg.MinStake = 1500
	nt.server(0, map[string]Handler{
		"text.echo": echo,
		"fails":     HandlerFunc(func(context.Context, *Request, ResponseWriter) error { return Errorf(StatusBadRequest, "no thanks") }),
		"panics":    HandlerFunc(func(context.Context, *Request, ResponseWriter) error { return errors.New("boom") }),
	}, cfg)
	nt.reg.m[nt.hosts[1].ID()] = Caller{Registered: true, Stake: 2000}
	ctx := context.Background()
	cases := []struct {
		from int
		req  *pb.Request
		want Status
		msg  string
	}{
		{2, &pb.Request{Synapse: "text.echo", Netuid: 1}, StatusForbidden, "not registered"},
		{1, &pb.Request{Synapse: "nope", Netuid: 1}, StatusNotFound, "not served"},
		{1, &pb.Request{Synapse: "fails", Netuid: 1}, StatusBadRequest, "no thanks"},
		{1, &pb.Request{Synapse: "panics", Netuid: 1}, StatusInternal, "boom"},
		{1, &pb.Request{Synapse: "", Netuid: 1}, StatusBadRequest, "synapse"},
		{1, &pb.Request{Synapse: "text.echo", Netuid: 70000}, StatusBadRequest, "netuid"},
		{1, &pb.Request{Synapse: strings.Repeat("s", 65), Netuid: 1}, StatusBadRequest, "synapse"},
	}
	for _, tc := range cases {
		r := nt.client(tc.from).Stream(ctx, nt.hosts[0].ID(), tc.req, nil)
		if r.Status != tc.want || !strings.Contains(r.Message, tc.msg) {
			t.Errorf("%+v: %v %q, want %v %q", tc.req, r.Status, r.Message, tc.want, tc.msg)
		}
	}
	// Low stake is refused too.
	nt.reg.m[nt.hosts[1].ID()] = Caller{Registered: true, Stake: 10}
	if r := nt.client(1).Stream(ctx, nt.hosts[0].ID(), &pb.Request{Synapse: "text.echo", Netuid: 1}, nil); r.Status != StatusForbidden {
		t.Errorf("low stake: %v", r.Status)
	}
}

// Raw bytes on the stream: oversized and malformed requests get
// BAD_REQUEST.
func TestOversizedAndMalformedRequests(t *testing.T) {
	nt := newNet(t, 2)
	nt.server(0, map[string]Handler{"text.echo": echo}, DefaultServerConfig())
	send := func(raw []byte) *pb.Response {
		st, err := nt.hosts[1].NewStream(context.Background(), nt.hosts[0].ID(), QueryID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		st.Write(raw)
		st.CloseWrite()
		var resp pb.Response
		if err := (pbioReader(st)).ReadMsg(&resp); err != nil {
			t.Fatal(err)
		}
		return &resp
	}
	huge := append(varint(MaxRequestSize+1), make([]byte, 16)...)
	if r := send(huge); r.Status != StatusBadRequest || !strings.Contains(r.Message, "exceeds") {
		t.Errorf("oversized: %v %q", r.Status, r.Message)
	}
	if r := send(append(varint(5), 0xff, 0xff, 0xff, 0xff, 0xff)); r.Status != StatusBadRequest || !strings.Contains(r.Message, "malformed") {
		t.Errorf("malformed: %v %q", r.Status, r.Message)
	}
	if r := send([]byte{0x80, 0x80}); r.Status != StatusBadRequest {
		t.Errorf("truncated varint: %v", r.Status)
	}
}

func varint(v uint64) []byte {
	var out []byte
	for v >= 0x80 {
		out = append(out, byte(v)|0x80)
		v >>= 7
	}
	return append(out, byte(v))
}

// Under load, higher-stake callers are served first; a full queue sheds
// the lowest stake with OVERLOADED.
func TestPriorityAndOverload(t *testing.T) {
	nt := newNet(t, 5)
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []uint64
	cfg := DefaultServerConfig()
	cfg.MaxConcurrent, cfg.MaxQueue = 1, 2
	srv := nt.server(0, map[string]Handler{"work": HandlerFunc(func(ctx context.Context, r *Request, w ResponseWriter) error {
		mu.Lock()
		order = append(order, r.Caller.Stake)
		mu.Unlock()
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return w.Write([]byte("done"))
	})}, cfg)
	ctx := context.Background()
	req := &pb.Request{Synapse: "work", Netuid: 1, TimeoutMs: 20_000}
	results := make([]Result, 5)
	var resMu sync.Mutex
	status := func(i int) Status { resMu.Lock(); defer resMu.Unlock(); return results[i].Status }
	var wg sync.WaitGroup
	run := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := nt.client(i).Stream(ctx, nt.hosts[0].ID(), req, nil)
			resMu.Lock()
			results[i] = r
			resMu.Unlock()
		}()
	}
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	queued := func() int { srv.sched.mu.Lock(); defer srv.sched.mu.Unlock(); return srv.sched.queued }
	run(1) // stake 2000: runs
	waitFor("the first to run", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 1 })
	run(2) // stake 3000: queued
	waitFor("one queued", func() bool { return queued() == 1 })
	run(4) // stake 5000: queued
	waitFor("two queued", func() bool { return queued() == 2 })
	run(3) // stake 4000: queue full; sheds stake 3000
	waitFor("the shed", func() bool { return queued() == 2 && status(2) == StatusOverloaded })
	close(gate)
	wg.Wait()
	if fmt.Sprint(order) != "[2000 5000 4000]" {
		t.Fatalf("served in stake order %v, want [2000 5000 4000]", order)
	}
	if results[1].Status != StatusOK || results[3].Status != StatusOK || results[4].Status != StatusOK {
		t.Fatalf("statuses %v %v %v", results[1].Status, results[3].Status, results[4].Status)
	}
}

// Queries to one server reuse a stream; a stream the server dropped is
// replaced without the caller noticing.
func TestStreamsAreReused(t *testing.T) {
	nt := newNet(t, 2)
	cfg := DefaultServerConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	srv := nt.server(0, map[string]Handler{"text.echo": echo}, cfg)
	c := nt.client(1)
	defer c.Close()
	req := &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("a")}
	// Query streams only: identify and ping open streams of their own on
	// the same connection, on their own schedule.
	streamsOf := func(from, to int) int {
		n := 0
		for _, conn := range nt.hosts[from].Network().ConnsToPeer(nt.hosts[to].ID()) {
			for _, s := range conn.GetStreams() {
				if s.Protocol() == QueryID {
					n++
				}
			}
		}
		return n
	}
	streams := func() int { return streamsOf(1, 0) }
	for i := range 5 {
		if r := c.Stream(context.Background(), nt.hosts[0].ID(), req, nil); r.Status != StatusOK || string(r.Body) != "echo:a" {
			t.Fatalf("query %d: %v %v", i, r.Status, r.Err)
		}
		if n := streams(); n != 1 {
			t.Fatalf("after query %d: %d streams open, want the one reused", i, n)
		}
		// The idle stream holds no read buffer (32 KiB each, to every
		// peer queried).
		c.mu.Lock()
		for _, p := range c.idle[nt.hosts[0].ID()] {
			if p.r != nil {
				t.Errorf("after query %d: an idle stream holds a %d-byte read buffer", i, p.r.Size())
			}
		}
		c.mu.Unlock()
	}
	// The server drops the stream (as it does after IdleTimeout; mocknet
	// streams ignore read deadlines, so the test resets it); the next query
	// still succeeds on a new stream.
	for _, conn := range nt.hosts[0].Network().ConnsToPeer(nt.hosts[1].ID()) {
		for _, st := range conn.GetStreams() {
			if st.Protocol() == QueryID {
				st.Reset()
			}
		}
	}
	waitFor(t, 10*time.Second, "the server still serves the dropped stream", func() bool { return srv.serving() == 0 })
	if r := c.Stream(context.Background(), nt.hosts[0].ID(), req, nil); r.Status != StatusOK {
		t.Fatalf("after the server dropped the stream: %v %v", r.Status, r.Err)
	}
}

// On real hosts (TCP, TLS, yamux), the server closes a stream idle for
// IdleTimeout, and the client's next query opens a new one.
func TestServerClosesIdleStreams(t *testing.T) {
	cfg := DefaultServerConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	srv, ch, server := servePair(t, "tcp", map[string]Handler{"text.echo": echo}, cfg)
	c, err := NewClient(ch, DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("a")}
	if r := c.Stream(context.Background(), server, req, nil); r.Status != StatusOK {
		t.Fatalf("first query: %v %v", r.Status, r.Err)
	}
	waitFor(t, 10*time.Second, "the server kept a stream idle past IdleTimeout", func() bool { return srv.serving() == 0 })
	if r := c.Stream(context.Background(), server, req, nil); r.Status != StatusOK || string(r.Body) != "echo:a" {
		t.Fatalf("after the idle close: %v %v", r.Status, r.Err)
	}
}

// The client closes a stream idle in its pool for its IdleTimeout, so the
// server's goroutine for it ends long before the server's own idle
// timeout; the next query opens a new stream. Queries racing the expiry
// never get a stream it closed.
func TestClientClosesIdleStreams(t *testing.T) {
	srv, ch, server := servePair(t, "tcp", map[string]Handler{"text.echo": echo}, DefaultServerConfig())
	cfg := DefaultClientConfig()
	cfg.IdleTimeout = 50 * time.Millisecond
	c, err := NewClient(ch, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("a")}
	pooled := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.idle[server])
	}
	for i := range 3 {
		if r := c.Stream(context.Background(), server, req, nil); r.Status != StatusOK || string(r.Body) != "echo:a" {
			t.Fatalf("query %d: %v %v", i, r.Status, r.Err)
		}
		waitFor(t, 10*time.Second, "the idle stream to be closed and its server goroutine to end", func() bool {
			return pooled() == 0 && srv.serving() == 0
		})
	}
	// Expiry at about the pace of the queries.
	cfg.IdleTimeout = time.Millisecond
	racing, err := NewClient(ch, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer racing.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if r := racing.Stream(context.Background(), server, req, nil); r.Status != StatusOK {
					t.Errorf("query %d: %v %v", i, r.Status, r.Err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, err := NewClient(ch, ClientConfig{DefaultTimeout: time.Second, MaxResponseSize: 1, IdleTimeout: -1}); err == nil {
		t.Fatal("a negative IdleTimeout accepted")
	}
}

// Release closes the streams pooled for a server at once (their server
// goroutines end), leaves other servers' pools alone, and the next query
// opens a new stream; releasing a server with nothing pooled, or twice,
// is harmless.
func TestClientRelease(t *testing.T) {
	srv, ch, server := servePair(t, "tcp", map[string]Handler{"text.echo": echo}, DefaultServerConfig())
	cfg := DefaultClientConfig()
	cfg.IdleTimeout = time.Hour // only Release closes them
	c, err := NewClient(ch, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pooled := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.idle[server])
	}
	req := &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("a")}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := c.Stream(context.Background(), server, req, nil); r.Status != StatusOK {
				t.Errorf("query: %v %v", r.Status, r.Err)
			}
		}()
	}
	wg.Wait()
	if pooled() == 0 || srv.serving() == 0 {
		t.Fatalf("%d streams pooled, %d served after three queries", pooled(), srv.serving())
	}
	other := peer.ID("not-a-server")
	c.Release(other)
	c.Release(server)
	if pooled() != 0 {
		t.Fatalf("%d streams pooled after Release", pooled())
	}
	waitFor(t, 10*time.Second, "the released streams' server goroutines to end", func() bool { return srv.serving() == 0 })
	c.Release(server)
	if r := c.Stream(context.Background(), server, req, nil); r.Status != StatusOK || string(r.Body) != "echo:a" {
		t.Fatalf("query after Release: %v %v", r.Status, r.Err)
	}
	if pooled() != 1 {
		t.Fatalf("%d streams pooled after a query following Release, want 1", pooled())
	}
}

// A handler that writes after it returned (against Handler's contract:
// its answer has ended, and the stream's write buffer has gone back to
// the pool) gets an error, and its bytes reach no stream.
func TestWriteAfterTheAnswerEndedFails(t *testing.T) {
	nt := newNet(t, 2)
	late := make(chan ResponseWriter, 1)
	nt.server(0, map[string]Handler{"text.echo": echo, "text.late": HandlerFunc(func(_ context.Context, r *Request, w ResponseWriter) error {
		late <- w
		return w.Write([]byte("on time"))
	})}, DefaultServerConfig())
	c := nt.client(1)
	defer c.Close()
	res := c.Stream(context.Background(), nt.hosts[0].ID(), &pb.Request{Synapse: "text.late", Netuid: 1}, nil)
	if res.Status != StatusOK || string(res.Body) != "on time" {
		t.Fatalf("result %v %q %v", res.Status, res.Body, res.Err)
	}
	if err := (<-late).Write([]byte("too late")); err == nil {
		t.Fatal("a write after the answer ended succeeded")
	}
	// The stream carries the next exchange untouched.
	res = c.Stream(context.Background(), nt.hosts[0].ID(), &pb.Request{Synapse: "text.echo", Netuid: 1, Body: []byte("b")}, nil)
	if res.Status != StatusOK || string(res.Body) != "echo:b" {
		t.Fatalf("next exchange: %v %q %v", res.Status, res.Body, res.Err)
	}
}
