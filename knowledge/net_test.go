package knowledge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/dht"
	neuronnode "github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/wallet"
)

// registry registers every hotkey (the DHT validates neuron records with
// it; the library uses only provider records).
type registry struct{}

func (registry) Lookup(context.Context, uint16, wallet.Address) (uint16, bool, error) {
	return 0, true, nil
}

// neuron is one member of a test swarm: a libp2p host, the DHT and a
// library on both.
type neuron struct {
	n   *neuronnode.Node
	d   *dht.DHT
	lib *Library
}

// swarm starts count neurons on loopback; each bootstraps from the first.
func swarm(t testing.TB, count int, tweak ...func(i int, c *Config)) []*neuron {
	t.Helper()
	var ns []*neuron
	t.Cleanup(func() {
		for _, x := range ns {
			if x.lib != nil {
				x.lib.Close()
			}
			x.d.Close()
			x.n.Close()
		}
	})
	for i := range count {
		k := key(100 + i)
		n, err := neuronnode.New(context.Background(), neuronnode.DefaultTestConfig(k))
		if err != nil {
			t.Fatal(err)
		}
		x := &neuron{n: n}
		dcfg := dht.DefaultConfig("knowledge-test")
		dcfg.Logger = slog.New(slog.DiscardHandler)
		if i > 0 {
			boot := peer.AddrInfo{ID: ns[0].n.ID(), Addrs: ns[0].n.Addrs()}
			dcfg.Bootstrap = []peer.AddrInfo{boot}
			if err := n.Connect(context.Background(), boot); err != nil {
				n.Close()
				t.Fatal(err)
			}
			// A small swarm is a full mesh from the start, so every routing
			// table fills without waiting for a refresh.
			for _, o := range ns[1:] {
				if count <= 5 {
					n.Connect(context.Background(), peer.AddrInfo{ID: o.n.ID(), Addrs: o.n.Addrs()})
				}
			}
		}
		d, err := dht.New(n, k, registry{}, dcfg)
		if err != nil {
			n.Close()
			t.Fatal(err)
		}
		x.d = d
		ns = append(ns, x)
		cfg := DefaultTestConfig(t.TempDir())
		cfg.Key = k
		if os.Getenv("KDEBUG") != "" {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		for _, f := range tweak {
			f(i, &cfg)
		}
		if x.lib, err = Open(cfg, WithNetwork(n, d)); err != nil {
			t.Fatal(err)
		}
	}
	// Every routing table has filled before anyone provides or searches.
	waitFor(t, "routing tables", time.Minute, func() bool {
		for _, x := range ns {
			if x.d.RoutingTableSize() < min(count-1, 3) {
				return false
			}
		}
		return true
	})
	return ns
}

// Publish on one neuron of a 30-neuron swarm and fetch on another that was
// never connected to the publisher: it finds it through the DHT.
func TestFetchThroughDHT(t *testing.T) {
	count := 30
	if testing.Short() {
		count = 10
	}
	ns := swarm(t, count)
	pub, fet := ns[count-1], ns[count/2]
	// Until the fetch, the fetcher drops any connection with the publisher
	// at once (neuron hosts take no connection gater), so the DHT cannot connect
	// them; the fetcher learns the publisher only from provider records.
	var sealed atomic.Bool
	sealed.Store(true)
	var dropped atomic.Int64
	fet.n.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if sealed.Load() && c.RemotePeer() == pub.n.ID() {
			dropped.Add(1)
			go c.Close()
		}
	}})
	fet.n.Network().ClosePeer(pub.n.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	body := goRandom(5*ChunkSize/2, 3)
	obj, err := pub.lib.Publish(ctx, bytes.NewReader(body), Meta{MediaType: "application/octet-stream", Title: "swarm test", Tags: []string{"dht"}, Netuid: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the two to be apart", 10*time.Second, func() bool {
		return fet.n.Network().Connectedness(pub.n.ID()) != network.Connected
	})
	fet.n.Peerstore().ClearAddrs(pub.n.ID())
	sealed.Store(false)
	t.Logf("%d DHT connections between publisher and fetcher were dropped before the fetch", dropped.Load())
	start := time.Now()
	var out bytes.Buffer
	var last atomic.Int64
	got, err := fet.lib.Get(ctx, obj.CID, &out, WithProgress(func(done, total int64) {
		if total != int64(len(body)) {
			t.Errorf("progress total %d", total)
		}
		last.Store(done)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched %d bytes through the DHT in %v", out.Len(), time.Since(start))
	if !bytes.Equal(out.Bytes(), body) || got.Title != "swarm test" || last.Load() != int64(len(body)) {
		t.Fatalf("fetched %d bytes, object %+v, progress %d", out.Len(), got, last.Load())
	}
	if fet.n.Network().Connectedness(pub.n.ID()) != network.Connected {
		t.Fatal("the fetcher did not fetch from the publisher")
	}
	if fet.lib.Search("swarm", 1, true)[0].CID != obj.CID {
		t.Fatal("a fetched object is not searchable")
	}
	// The fetched copy is unpinned: collection removes it.
	if st, err := fet.lib.GC(); err != nil || st.Roots != 1 || fet.lib.Has(obj.CID) {
		t.Fatalf("gc of the fetched copy: %+v %v", st, err)
	}
	// The body alone, by its IPFS CID, through the DHT too.
	out.Reset()
	if _, err := ns[1].lib.Get(ctx, obj.Body, &out); err != nil || !bytes.Equal(out.Bytes(), body) {
		t.Fatalf("body by its own CID: %d bytes, %v", out.Len(), err)
	}
}

// corrupter serves a library's blocks over the knowledge protocol with
// one body leaf corrupted: a provider that lies.
type corrupter struct {
	from   *Library
	served atomic.Int64
	wg     sync.WaitGroup
}

func (c *corrupter) handle(st network.Stream) {
	c.wg.Add(1)
	defer c.wg.Done()
	defer st.Close()
	br, bw := bufio.NewReader(st), bufio.NewWriter(st)
	for {
		raw, err := readFrame(br, MaxRequestSize)
		if err != nil {
			return
		}
		want, err := DecodeRequest(raw)
		if err != nil {
			return
		}
		for _, w := range want {
			m := BlockMsg{CID: w}
			if m.Data, err = c.from.store.get(w); err != nil {
				m.Missing = true
			} else if w.Type() == cid.Raw && c.served.Add(1) == 2 {
				m.Data = append([]byte(nil), m.Data...)
				m.Data[len(m.Data)/2] ^= 0xff
			}
			b, _ := EncodeBlock(m)
			writeFrame(bw, b)
		}
		bw.Flush()
	}
}

// A provider that serves a corrupted block is detected and penalized, and
// the fetch completes from an honest provider found on the DHT.
func TestMaliciousProvider(t *testing.T) {
	ns := swarm(t, 4)
	honest, liar, fet := ns[1], ns[2], ns[3]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body := goRandom(6*ChunkSize, 4)
	obj, err := honest.lib.Publish(ctx, bytes.NewReader(body), Meta{Title: "target"})
	if err != nil {
		t.Fatal(err)
	}
	// The liar holds the same blocks but answers with one leaf altered; it
	// announces itself as a provider too.
	liar.lib.Close()
	c := &corrupter{from: honest.lib}
	liar.n.SetStreamHandler(ProtocolID, c.handle)
	defer c.wg.Wait()
	defer liar.n.RemoveStreamHandler(ProtocolID)
	if err := liar.d.Provide(ctx, obj.CID); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := fet.lib.Get(ctx, obj.CID, &out, WithProviders(peer.AddrInfo{ID: liar.n.ID(), Addrs: liar.n.Addrs()})); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), body) {
		t.Fatal("fetched body differs")
	}
	if c.served.Load() < 2 {
		t.Fatalf("the liar served %d leaves: it was not tried first", c.served.Load())
	}
	if r := fet.lib.Reputation(liar.n.ID()); r > -penaltyBadBlock {
		t.Fatalf("the liar's reputation is %d", r)
	}
	if r := fet.lib.Reputation(honest.n.ID()); r != 0 {
		t.Fatalf("the honest provider's reputation is %d", r)
	}
	// Banned: the next fetch does not ask the liar at all.
	served := c.served.Load()
	other, err := honest.lib.Publish(ctx, bytes.NewReader(goRandom(2*ChunkSize, 5)), Meta{Title: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if err := fet.lib.Fetch(ctx, other.CID, WithProviders(peer.AddrInfo{ID: liar.n.ID()})); err != nil {
		t.Fatal(err)
	}
	if c.served.Load() != served {
		t.Fatal("a banned provider was asked again")
	}
}

// A 64 MiB object round trip between two neurons.
func TestLargeObjectRoundTrip(t *testing.T) {
	ns := swarm(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	body := goRandom(64<<20, 9)
	start := time.Now()
	obj, err := ns[0].lib.Publish(ctx, bytes.NewReader(body), Meta{Title: "64 MiB"})
	if err != nil {
		t.Fatal(err)
	}
	published := time.Since(start)
	start = time.Now()
	var out bytes.Buffer
	if _, err := ns[1].lib.Get(ctx, obj.CID, &out, WithProviders(peer.AddrInfo{ID: ns[0].n.ID(), Addrs: ns[0].n.Addrs()})); err != nil {
		t.Fatal(err)
	}
	t.Logf("64 MiB: published in %v, fetched and read back in %v", published, time.Since(start))
	if !bytes.Equal(out.Bytes(), body) {
		t.Fatal("the body differs")
	}
}

// countedLibrary opens a library on a new host with key k, whose routing
// is a countingRouting; both close when the test ends.
func countedLibrary(t *testing.T, k *wallet.PrivateKey) (*neuronnode.Node, *Library, *countingRouting) {
	t.Helper()
	n, err := neuronnode.New(context.Background(), neuronnode.DefaultTestConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	routing := &countingRouting{provided: map[cid.Cid]int{}}
	cfg := DefaultTestConfig(t.TempDir())
	cfg.Key = k
	lib, err := Open(cfg, WithNetwork(n, routing))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return n, lib, routing
}

// countingRouting records the CIDs provided and how many Provide calls
// ran at once. A Provide call is held a little, or, with release, until
// release is closed.
type countingRouting struct {
	mu       sync.Mutex
	provided map[cid.Cid]int
	running  int
	most     int
	finds    int
	release  chan struct{}
}

func (r *countingRouting) Provide(ctx context.Context, c cid.Cid) error {
	r.mu.Lock()
	r.running++
	r.most = max(r.most, r.running)
	r.provided[c]++
	r.mu.Unlock()
	// Hold the call a little, as a DHT lookup would, so overlapping
	// calls would show.
	held := time.After(2 * time.Millisecond)
	if r.release != nil {
		held = nil
	}
	select {
	case <-ctx.Done():
	case <-held:
	case <-r.release:
	}
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
	return nil
}

func (r *countingRouting) FindProviders(context.Context, cid.Cid, int) []peer.AddrInfo {
	r.mu.Lock()
	r.finds++
	r.mu.Unlock()
	return nil
}

// A fetch whose announced provider is gone gets the object from a
// connected peer that fetched it before, without searching the DHT; with
// no connected peer holding it, it searches the DHT.
func TestFetchAsksConnectedPeersBeforeTheDHT(t *testing.T) {
	ns := swarm(t, 2)
	pub, holder := ns[0], ns[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := pub.lib.Publish(ctx, bytes.NewReader(goRandom(20_000, 7)), Meta{Title: "ask the neighbours"})
	if err != nil && !errors.Is(err, ErrNotShared) {
		t.Fatal(err)
	}
	from := peer.AddrInfo{ID: pub.n.ID(), Addrs: pub.n.Addrs()}
	if err := holder.lib.Fetch(ctx, o.CID, WithProviders(from), Unprovided()); err != nil {
		t.Fatal(err)
	}
	n, lib, routing := countedLibrary(t, key(301))
	if err := n.Connect(ctx, peer.AddrInfo{ID: holder.n.ID(), Addrs: holder.n.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the holder's protocols known", time.Minute, func() bool {
		ok, _ := n.Peerstore().SupportsProtocols(holder.n.ID(), ProtocolID)
		return len(ok) == 1
	})
	// The publisher leaves: the provider named is unreachable.
	pub.lib.Close()
	pub.d.Close()
	pub.n.Close()
	if err := lib.Fetch(ctx, o.CID, WithProviders(from), Unprovided()); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := lib.Get(ctx, o.CID, &got); err != nil || !bytes.Equal(got.Bytes(), goRandom(20_000, 7)) {
		t.Fatalf("the fetched object reads back wrong: %v", err)
	}
	routing.mu.Lock()
	finds := routing.finds
	routing.mu.Unlock()
	if finds != 0 {
		t.Fatalf("the DHT was searched %d times; a connected peer held the object", finds)
	}
	// Something nobody connected holds: the connected peer says it lacks
	// it, then the DHT is searched (and finds nothing here).
	missing := sumCID(cid.Raw, []byte("nobody holds this"))
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	defer fcancel()
	if err := lib.Fetch(fctx, missing); err == nil {
		t.Fatal("fetched what nobody holds")
	}
	routing.mu.Lock()
	finds = routing.finds
	routing.mu.Unlock()
	if finds != 1 {
		t.Fatalf("the DHT was searched %d times for what no connected peer holds, want 1", finds)
	}
}

// Objects fetched together are advertised one lookup at a time, each once
// (object and body), however many fetches finish at once; those fetched
// Unprovided are not advertised.
func TestFetchedObjectsAreProvidedOneAtATime(t *testing.T) {
	ns := swarm(t, 1)
	pub := ns[0]
	_, lib, routing := countedLibrary(t, key(300))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var objs []*Object
	for i := range 12 {
		// A one-neuron DHT has nobody to provide to: stored, not shared.
		o, err := pub.lib.Publish(ctx, bytes.NewReader(goRandom(4096, int64(i))), Meta{Title: "provide queue"})
		if err != nil && !errors.Is(err, ErrNotShared) {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	from := peer.AddrInfo{ID: pub.n.ID(), Addrs: pub.n.Addrs()}
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := []FetchOption{WithProviders(from)}
			if i%3 == 2 {
				opts = append(opts, Unprovided())
			}
			if err := lib.Fetch(ctx, o.CID, opts...); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "every fetched object and body provided", time.Minute, func() bool {
		routing.mu.Lock()
		defer routing.mu.Unlock()
		return len(routing.provided) == 2*8
	})
	routing.mu.Lock()
	defer routing.mu.Unlock()
	for i, o := range objs {
		want := 1
		if i%3 == 2 {
			want = 0 // fetched Unprovided: never queued
		}
		if routing.provided[o.CID] != want || routing.provided[o.Body] != want {
			t.Errorf("object %d provided %d times, its body %d; want %d", i, routing.provided[o.CID], routing.provided[o.Body], want)
		}
	}
	if routing.most != 1 {
		t.Errorf("%d provides ran at once", routing.most)
	}
}

// WithMaxSize refuses an object whose header declares a larger body before
// any of the body is fetched, a bare body as soon as its root declares
// more, and a local copy over the limit; at the limit the fetch goes on.
func TestFetchWithMaxSize(t *testing.T) {
	ns := swarm(t, 2)
	pub, fet := ns[0], ns[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body := goRandom(3*ChunkSize, 7)
	obj, err := pub.lib.Publish(ctx, bytes.NewReader(body), Meta{Title: "big model", Netuid: 1})
	if err != nil {
		t.Fatal(err)
	}
	provider := WithProviders(peer.AddrInfo{ID: pub.n.ID(), Addrs: pub.n.Addrs()})
	var progressed atomic.Int64
	progress := WithProgress(func(done, _ int64) { progressed.Store(done) })
	err = fet.lib.Fetch(ctx, obj.CID, provider, progress, WithMaxSize(int64(len(body)-1)))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an object over the limit: %v", err)
	}
	if progressed.Load() != 0 || fet.lib.Holds(obj.CID) {
		t.Fatalf("%d body bytes fetched before refusing the object", progressed.Load())
	}
	if err := fet.lib.Fetch(ctx, obj.Body, provider, WithMaxSize(ChunkSize)); !errors.Is(err, ErrTooLarge) || fet.lib.Holds(obj.Body) {
		t.Fatalf("a bare body over the limit: %v", err)
	}
	if err := fet.lib.Fetch(ctx, obj.CID, provider, WithMaxSize(int64(len(body))), Pinned()); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if err := fet.lib.Fetch(ctx, obj.CID, WithMaxSize(10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a local copy over the limit: %v", err)
	}
	if err := fet.lib.Fetch(ctx, obj.CID, WithMaxSize(0)); err != nil {
		t.Fatalf("no limit: %v", err)
	}
}
