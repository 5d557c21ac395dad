package knowledge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	neuronnode "github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/wallet"
)

// noRouting provides nothing and finds nobody: fetches name their
// provider.
type noRouting struct{}

func (noRouting) Provide(context.Context, cid.Cid) error { return nil }
func (noRouting) FindProviders(context.Context, cid.Cid, int) []peer.AddrInfo {
	return nil
}

// freshKey is a hotkey nobody registered.
func freshKey(t testing.TB) *wallet.PrivateKey {
	t.Helper()
	var seed [32]byte
	rand.Read(seed[:])
	k, err := wallet.PrivateKeyFromBytes(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// loneNode starts a host on loopback, closed with the test.
func loneNode(t testing.TB, k *wallet.PrivateKey) *neuronnode.Node {
	t.Helper()
	n, err := neuronnode.New(context.Background(), neuronnode.DefaultTestConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// loneLibrary opens a library on n that finds no providers of its own.
func loneLibrary(t testing.TB, n *neuronnode.Node, k *wallet.PrivateKey, tweak func(*Config), opts ...Option) *Library {
	t.Helper()
	cfg := DefaultTestConfig(t.TempDir())
	cfg.Key = k
	if tweak != nil {
		tweak(&cfg)
	}
	lib, err := Open(cfg, append([]Option{WithNetwork(n, noRouting{})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return lib
}

// flood is a hostile peer's streams to a server that never carry a
// request: each reads until the server ends it (reading makes the
// protocol negotiation happen, so the server's handler runs).
type flood struct {
	mu      sync.Mutex
	streams []network.Stream
	ended   []time.Duration // how long each ended stream lasted
	wg      sync.WaitGroup
}

// open opens count idle streams from h to target.
func (f *flood) open(t testing.TB, h *neuronnode.Node, target peer.AddrInfo, count int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Connect(ctx, target); err != nil {
		t.Fatal(err)
	}
	for range count {
		st, err := h.NewStream(ctx, target.ID, ProtocolID)
		if err != nil {
			// Refused before it was a stream (a resource limit): as good
			// as reset.
			f.mu.Lock()
			f.ended = append(f.ended, 0)
			f.mu.Unlock()
			continue
		}
		f.mu.Lock()
		f.streams = append(f.streams, st)
		f.mu.Unlock()
		start := time.Now()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			var b [1]byte
			for {
				if _, err := st.Read(b[:]); err != nil {
					break
				}
			}
			f.mu.Lock()
			f.ended = append(f.ended, time.Since(start))
			f.mu.Unlock()
		}()
	}
}

// endedCount is how many of the flood's streams the server ended (or
// refused).
func (f *flood) endedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ended)
}

// stop resets the streams still open and waits for their readers.
func (f *flood) stop() {
	f.mu.Lock()
	for _, st := range f.streams {
		st.Reset()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// servedStreams is how many transfer streams l holds.
func (l *Library) servedStreams() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.streams)
}

// probeResult is how an honest peer's fetches fared.
type probeResult struct {
	ok, total int
	latencies []time.Duration // of those that succeeded
	failures  []time.Duration // how long the failed ones took
}

func (r probeResult) String() string {
	s := itoa(int64(r.ok)) + "/" + itoa(int64(r.total)) + " fetches succeeded"
	if len(r.latencies) > 0 {
		l := slices.Clone(r.latencies)
		slices.Sort(l)
		s += ", latency median " + l[len(l)/2].Round(time.Millisecond).String() + " max " + l[len(l)-1].Round(time.Millisecond).String()
	}
	if len(r.failures) > 0 {
		s += ", each failure after ~" + r.failures[0].Round(10*time.Millisecond).String()
	}
	return s
}

// probe fetches each object from the server in turn, once.
func probe(t testing.TB, lib *Library, server peer.AddrInfo, objs []*Object) probeResult {
	t.Helper()
	var r probeResult
	for _, o := range objs {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		err := lib.Fetch(ctx, o.CID, WithProviders(server))
		cancel()
		r.total++
		if err != nil {
			r.failures = append(r.failures, time.Since(start))
			t.Logf("probe: %v", err)
			continue
		}
		r.ok++
		r.latencies = append(r.latencies, time.Since(start))
	}
	return r
}

// publishSmall publishes count small objects on lib.
func publishSmall(t testing.TB, lib *Library, count int) []*Object {
	t.Helper()
	var objs []*Object
	for i := range count {
		o, err := lib.Publish(context.Background(), bytes.NewReader(goRandom(3*ChunkSize/2, int64(1000+i))), Meta{Title: "probe"})
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

// floodReadTimeout is the servers' ReadTimeout in these tests: short, so
// that they see idle streams end.
const floodReadTimeout = 2 * time.Second

// Issue #19, finding 4: a hostile peer with fresh keys opens many
// knowledge streams and never sends a request. Before, they took all 64
// of the server's streams for 60 s and every honest fetch was refused.
// Now the server keeps at most MaxStreamsPerPeer of them, ends those after
// ReadTimeout, and an honest peer's fetches go through meanwhile.
func TestIdleStreamFloodFromOnePeer(t *testing.T) {
	const hostileStreams = 96
	sk := key(400)
	server := loneLibrary(t, loneNode(t, sk), sk, func(c *Config) { c.ReadTimeout = floodReadTimeout })
	objs := publishSmall(t, server, 10)
	srv := peer.AddrInfo{ID: server.host.ID(), Addrs: server.host.Addrs()}

	hostile := loneNode(t, freshKey(t))
	f := &flood{}
	defer f.stop()
	start := time.Now()
	f.open(t, hostile, srv, hostileStreams)
	// Every stream is either held by the server or ended by it.
	waitFor(t, "the server to take or refuse every hostile stream", 30*time.Second, func() bool {
		return server.servedStreams()+f.endedCount() == hostileStreams
	})
	held := server.servedStreams()
	t.Logf("the server holds %d of the hostile peer's %d idle streams", held, hostileStreams)
	if held > server.cfg.MaxStreamsPerPeer {
		t.Errorf("the server holds %d streams of one peer, more than MaxStreamsPerPeer %d", held, server.cfg.MaxStreamsPerPeer)
	}

	ck := key(401)
	honest := loneLibrary(t, loneNode(t, ck), ck, nil)
	r := probe(t, honest, srv, objs)
	t.Logf("honest fetches with the flood on: %v", r)
	if r.ok != r.total {
		t.Errorf("honest fetches during the flood: %v", r)
	}
	// The idle streams end by themselves, soon.
	waitFor(t, "the idle streams to end", floodReadTimeout+20*time.Second, func() bool {
		return f.endedCount() == hostileStreams
	})
	t.Logf("every idle stream ended within %v of the flood's start (ReadTimeout %v)", time.Since(start).Round(time.Millisecond), floodReadTimeout)
}

// registrySet registers the peers it holds, and counts the questions.
type registrySet struct {
	mu      sync.Mutex
	peers   map[peer.ID]bool
	lookups int
}

func (r *registrySet) asked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups
}

func (r *registrySet) Registered(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	return r.peers[p]
}

// Many hostile peers, each with fresh keys and as many idle streams as
// one peer may hold, fill what unregistered peers may hold in total
// (MaxStreams - ReservedStreams) and no more: a registered neuron's
// fetches go through from the reserve, and an unregistered newcomer's
// too, each taking the place of an idle stream of the hostile peer that
// holds the most (#19: before, the newcomer was refused for as long as the
// flood held).
func TestIdleStreamFloodFromManyPeers(t *testing.T) {
	sk, rk, uk := key(403), key(404), key(405)
	reg := &registrySet{peers: map[peer.ID]bool{rk.PublicKey().PeerID(): true}}
	// Long enough that the flood holds through the probes.
	server := loneLibrary(t, loneNode(t, sk), sk, func(c *Config) { c.ReadTimeout = time.Minute }, WithRegistry(reg))
	objs := publishSmall(t, server, 10)
	srv := peer.AddrInfo{ID: server.host.ID(), Addrs: server.host.Addrs()}
	shared, perPeer := server.cfg.MaxStreams-server.cfg.ReservedStreams, server.cfg.MaxStreamsPerPeer
	peers := shared/perPeer + 2
	f := &flood{}
	defer f.stop()
	for range peers {
		f.open(t, loneNode(t, freshKey(t)), srv, perPeer)
	}
	opened := time.Now()
	waitFor(t, "the server to take or refuse every hostile stream", 30*time.Second, func() bool {
		return server.servedStreams()+f.endedCount() == peers*perPeer
	})
	held := server.servedStreams()
	t.Logf("%d hostile peers opened %d idle streams each; the server holds %d (MaxStreams %d, reserved %d); the registry was asked %d times",
		peers, perPeer, held, server.cfg.MaxStreams, server.cfg.ReservedStreams, reg.asked())
	if held != shared {
		t.Errorf("unregistered peers hold %d streams, want %d", held, shared)
	}

	registered := loneLibrary(t, loneNode(t, rk), rk, nil)
	r := probe(t, registered, srv, objs)
	t.Logf("a registered neuron's fetches with the flood on: %v", r)
	if r.ok != r.total {
		t.Errorf("a registered neuron's fetches during the flood: %v", r)
	}
	// Once the flood's streams have idled long enough to give way, an
	// unregistered newcomer's fetches go through.
	waitFor(t, "the flood's streams to idle", 30*time.Second, func() bool { return time.Since(opened) > evictAfter })
	endedBefore := f.endedCount()
	unregistered := loneLibrary(t, loneNode(t, uk), uk, nil)
	r = probe(t, unregistered, srv, objs[:4])
	t.Logf("an unregistered newcomer's fetches with the flood on: %v; %d hostile streams gave way", r, f.endedCount()-endedBefore)
	if r.ok != r.total {
		t.Errorf("an unregistered newcomer's fetches during the flood: %v", r)
	}
	if f.endedCount() == endedBefore {
		t.Error("the newcomer was served, but no hostile stream gave way")
	}
	// Unregistered peers never held more than their part.
	waitFor(t, "the probes' streams to end", 30*time.Second, func() bool { return server.servedStreams() <= shared })
}

// An unregistered peer takes an idle stream's place only from a peer that
// holds at least two more streams than it does: when as many peers again
// come to a full unregistered part, every one of them gets in, and the
// peer holding the most cannot take more.
func TestIdleStreamsSharedFairly(t *testing.T) {
	sk := key(406)
	reg := &registrySet{peers: map[peer.ID]bool{}}
	server := loneLibrary(t, loneNode(t, sk), sk, func(c *Config) { c.ReadTimeout = time.Minute }, WithRegistry(reg))
	srv := peer.AddrInfo{ID: server.host.ID(), Addrs: server.host.Addrs()}
	shared, perPeer := server.cfg.MaxStreams-server.cfg.ReservedStreams, server.cfg.MaxStreamsPerPeer
	// shared/perPeer peers fill the part; as many again come later.
	first := shared / perPeer
	f := &flood{}
	defer f.stop()
	var all []*neuronnode.Node
	for range first {
		n := loneNode(t, freshKey(t))
		all = append(all, n)
		f.open(t, n, srv, perPeer)
	}
	waitFor(t, "the first peers' streams", 30*time.Second, func() bool { return server.servedStreams() == shared })
	opened := time.Now()
	waitFor(t, "them to idle", 30*time.Second, func() bool { return time.Since(opened) > evictAfter })
	for range first {
		n := loneNode(t, freshKey(t))
		all = append(all, n)
		f.open(t, n, srv, perPeer)
	}
	waitFor(t, "the server to take or refuse every stream", 30*time.Second, func() bool {
		return server.servedStreams()+f.endedCount() == 2*first*perPeer
	})
	server.mu.Lock()
	per := map[peer.ID]int{}
	for _, sl := range server.streams {
		per[sl.from]++
	}
	server.mu.Unlock()
	lo, hi, top := perPeer, 0, peer.ID("")
	for p, n := range per {
		if n > hi {
			hi, top = n, p
		}
		lo = min(lo, n)
	}
	t.Logf("%d peers held %d idle streams each, then %d more came: the server holds %d, of %d peers, from %d to %d of each", first, perPeer, first, server.servedStreams(), len(per), lo, hi)
	if server.servedStreams() != shared {
		t.Errorf("unregistered peers hold %d streams, want %d", server.servedStreams(), shared)
	}
	if len(per) != 2*first {
		t.Errorf("%d of the %d peers hold streams; every one should", len(per), 2*first)
	}
	// The peer that holds the most opens more: refused.
	var topNode *neuronnode.Node
	for _, n := range all {
		if n.ID() == top {
			topNode = n
		}
	}
	waitFor(t, "its streams to idle", 30*time.Second, func() bool { return time.Since(opened) > 2*evictAfter })
	before := f.endedCount()
	f.open(t, topNode, srv, 2)
	waitFor(t, "the extra streams refused", 30*time.Second, func() bool { return f.endedCount() >= before+2 })
	if got := server.servedStreams(); got != shared {
		t.Errorf("after a peer at its share opened more, the server holds %d, want %d", got, shared)
	}
}

// A request must arrive whole within ReadTimeout of its first byte, on a
// fresh stream and on one that already carried requests: a peer that
// starts a request and stalls (or drips it) does not hold a slot for the
// idle timeout.
func TestStalledRequestEnds(t *testing.T) {
	sk := key(402)
	server := loneLibrary(t, loneNode(t, sk), sk, func(c *Config) { c.ReadTimeout = floodReadTimeout })
	objs := publishSmall(t, server, 1)
	srv := peer.AddrInfo{ID: server.host.ID(), Addrs: server.host.Addrs()}
	hostile := loneNode(t, freshKey(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hostile.Connect(ctx, srv); err != nil {
		t.Fatal(err)
	}
	req, err := EncodeRequest([]cid.Cid{objs[0].CID})
	if err != nil {
		t.Fatal(err)
	}
	for _, reused := range []bool{false, true} {
		st, err := hostile.NewStream(ctx, srv.ID, ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		br, bw := bufio.NewReader(st), bufio.NewWriter(st)
		if reused {
			// One honest exchange first.
			if err := writeFrame(bw, req); err != nil || bw.Flush() != nil {
				t.Fatal(err)
			}
			if _, err := readFrame(br, MaxBlockFrame); err != nil {
				t.Fatal(err)
			}
		}
		// The start of a request announced as 100 bytes, then nothing.
		start := time.Now()
		if _, err := st.Write([]byte{100, 0x0a, 0x24}); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			io.Copy(io.Discard, st)
		}()
		select {
		case <-done:
		case <-time.After(floodReadTimeout + 20*time.Second):
			st.Reset()
			<-done
			t.Fatalf("reused %v: the server still held a stalled request after %v (ReadTimeout %v)", reused, time.Since(start), floodReadTimeout)
		}
		t.Logf("reused %v: the server ended a stalled request after %v", reused, time.Since(start).Round(time.Millisecond))
		st.Reset()
	}
}

// The server reads a request into a buffer that grows as the bytes
// arrive: a peer that announces the longest request and sends 10 bytes
// of it makes the server allocate about growFrom bytes, not
// MaxRequestSize as readFrame (which the fetcher keeps for the answers it
// asked for) does.
func TestRequestReadAllocatesAsBytesArrive(t *testing.T) {
	var hdr [binary.MaxVarintLen64]byte
	in := append(hdr[:binary.PutUvarint(hdr[:], MaxRequestSize)], make([]byte, 10)...)
	perRead := func(read func(*bufio.Reader, int) ([]byte, error)) uint64 {
		const runs = 200
		rs := make([]*bufio.Reader, runs)
		for i := range rs {
			rs[i] = bufio.NewReaderSize(bytes.NewReader(in), 16)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, r := range rs {
			if _, err := read(r, MaxRequestSize); err == nil {
				t.Fatal("a truncated frame was read")
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / runs
	}
	upFront, growing := perRead(readFrame), perRead(readFrameGrowing)
	t.Logf("a %d-byte request cut off after 10 bytes: readFrame allocates %d bytes, readFrameGrowing %d", MaxRequestSize, upFront, growing)
	if growing > 2*growFrom {
		t.Errorf("readFrameGrowing allocated %d bytes for 10 received", growing)
	}
}
