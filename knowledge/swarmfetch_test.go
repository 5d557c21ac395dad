package knowledge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	neuronnode "github.com/cybertensor/cybertensor/node"
)

// nullRouting finds nobody and advertises nothing: the swarm below knows
// its providers as a subnet's validators do, from the metagraph.
type nullRouting struct{}

func (nullRouting) Provide(context.Context, cid.Cid) error { return nil }
func (nullRouting) FindProviders(context.Context, cid.Cid, int) []peer.AddrInfo {
	return nil
}

// countedStream counts the bytes a library's server writes on a stream,
// below the resource manager and whatever it allows.
type countedStream struct {
	network.Stream
	sent *atomic.Int64
}

func (s countedStream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	s.sent.Add(int64(n))
	return n, err
}

// seeder is one library of a swarm-fetch run and the bytes its server sent.
type seeder struct {
	n       *neuronnode.Node
	lib     *Library
	sent    atomic.Int64
	profile *os.File // a node process's CPU profile in progress
}

func (s *seeder) info() peer.AddrInfo { return peer.AddrInfo{ID: s.n.ID(), Addrs: s.n.Addrs()} }

// startSeeder starts a library on a host of ncfg, counting what it serves.
func startSeeder(ncfg neuronnode.Config, lcfg Config) (*seeder, error) {
	n, err := neuronnode.New(context.Background(), ncfg)
	if err != nil {
		return nil, err
	}
	lib, err := Open(lcfg, WithNetwork(n, nullRouting{}))
	if err != nil {
		n.Close()
		return nil, err
	}
	s := &seeder{n: n, lib: lib}
	n.SetStreamHandler(ProtocolID, func(st network.Stream) {
		lib.handleStream(countedStream{Stream: st, sent: &s.sent})
	})
	return s, nil
}

func (s *seeder) close() {
	s.lib.Close()
	s.n.Close()
}

// seeders starts count libraries on loopback TCP hosts (no DHT), each
// counting what it serves.
func seeders(tb testing.TB, count int) []*seeder {
	tb.Helper()
	var out []*seeder
	tb.Cleanup(func() {
		for _, s := range out {
			s.close()
		}
	})
	for i := range count {
		k := key(500 + i)
		cfg := DefaultTestConfig(tb.TempDir())
		cfg.Key = k
		s, err := startSeeder(neuronnode.DefaultTestConfig(k), cfg)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// swarmRun is what one swarm fetch measured.
type swarmRun struct {
	last      time.Duration // until the last fetcher had the object
	first     time.Duration
	minerSent int64 // bytes the publisher's server sent
	peersSent int64 // bytes the fetchers' servers sent
}

// swarmFetch publishes size bytes on a miner and has fetchers libraries
// fetch it at the same moment, each told the miner, every other fetcher
// and idle more libraries (validators that do not fetch it) as
// providers; every fetcher's copy is then read back and compared with the
// body.
func swarmFetch(tb testing.TB, size, fetchers, idle int, seed int64) swarmRun {
	tb.Helper()
	ss := seeders(tb, fetchers+idle+1)
	miner, fs, idlers := ss[0], ss[1:fetchers+1], ss[fetchers+1:]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	body := goRandom(size, seed)
	obj, err := miner.lib.Publish(ctx, bytes.NewReader(body), Meta{Title: "model artifact", Netuid: 1})
	if err != nil {
		tb.Fatal(err)
	}
	// Connections are up before the clock starts, as between the
	// validators and miners of a running subnet.
	for i, f := range fs {
		for _, o := range ss[:i+1] {
			if err := f.n.Connect(ctx, o.info()); err != nil {
				tb.Fatal(err)
			}
		}
	}
	miner.sent.Store(0)
	for _, f := range fs {
		f.sent.Store(0)
	}
	start := make(chan struct{})
	took := make([]time.Duration, len(fs))
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	var began time.Time
	for i, f := range fs {
		providers := []peer.AddrInfo{miner.info()}
		for j, o := range fs {
			if j != i {
				providers = append(providers, o.info())
			}
		}
		for _, o := range idlers {
			providers = append(providers, o.info())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f.lib.Fetch(ctx, obj.CID, WithProviders(providers...))
			took[i] = time.Since(began)
		}()
	}
	began = time.Now()
	close(start)
	wg.Wait()
	run := swarmRun{first: took[0], minerSent: miner.sent.Load()}
	for i, f := range fs {
		if errs[i] != nil {
			tb.Fatalf("fetcher %d: %v", i, errs[i])
		}
		run.last, run.first = max(run.last, took[i]), min(run.first, took[i])
		run.peersSent += f.sent.Load()
	}
	want := sha256.Sum256(body)
	for i, f := range fs {
		h := sha256.New()
		if _, err := f.lib.Get(ctx, obj.CID, h); err != nil {
			tb.Fatalf("fetcher %d reading back: %v", i, err)
		}
		if !bytes.Equal(h.Sum(nil), want[:]) {
			tb.Fatalf("fetcher %d holds other bytes", i)
		}
	}
	return run
}

// rawTCP times one transfer of body over a loopback TCP socket.
func rawTCP(tb testing.TB, body []byte) time.Duration {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write(body)
		c.Close()
	}()
	start := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != int64(len(body)) {
		tb.Fatalf("raw TCP: %d bytes, %v", n, err)
	}
	return time.Since(start)
}

// Every fetcher of a small swarm ends with the verified object, and the
// fetchers serve each other blocks of the fetches in progress.
func TestSwarmFetch(t *testing.T) {
	size, fetchers := 8<<20, 4
	run := swarmFetch(t, size, fetchers, 0, 21)
	t.Logf("%d fetchers of %d MiB: first %v, last %v; the miner sent %.2f× the size, the fetchers %.2f×",
		fetchers, size>>20, run.first, run.last, float64(run.minerSent)/float64(size), float64(run.peersSent)/float64(size))
	if run.minerSent < int64(size) {
		t.Fatalf("the miner sent %d bytes, less than the object's %d: the count is wrong", run.minerSent, size)
	}
	if run.peersSent == 0 {
		t.Fatal("the fetchers served each other nothing")
	}
}

// Providers that never fetch the object own a share of its blocks like
// the others: when they answer only Missing, their share comes from the
// miner after a grace, and every fetch completes.
func TestSwarmFetchIdlePeers(t *testing.T) {
	size, fetchers := 4<<20, 3
	run := swarmFetch(t, size, fetchers, 2, 22)
	t.Logf("%d fetchers of %d MiB and 2 idle peers: last %v; the miner sent %.2f× the size",
		fetchers, size>>20, run.last, float64(run.minerSent)/float64(size))
}

// A body that repeats a chunk (zeros, as in a model's unused weights)
// lists the same leaf more than once: fetched once, it counts as often.
func TestFetchRepeatedChunks(t *testing.T) {
	ss := seeders(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body := make([]byte, 5*ChunkSize+100)
	obj, err := ss[0].lib.Publish(ctx, bytes.NewReader(body), Meta{Title: "zeros"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := ss[1].lib.Get(ctx, obj.CID, &out, WithProviders(ss[0].info())); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), body) {
		t.Fatalf("fetched %d bytes, not the %d zeros", out.Len(), len(body))
	}
}

// A block a running import holds only in memory, not yet flushed, is
// served; after the import is aborted it is not.
func TestServeImportInProgress(t *testing.T) {
	lib := openTest(t, t.TempDir(), 1)
	data := goRandom(1000, 5)
	c, err := bodyPrefix.WithCodec(cid.Raw).Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	served := func() BlockMsg {
		t.Helper()
		frame := lib.store.appendFrame(nil, c)
		raw, err := readFrame(bufio.NewReader(bytes.NewReader(frame)), MaxBlockFrame)
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeBlock(raw)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := served(); !m.Missing {
		t.Fatal("a block nobody holds is served")
	}
	im := lib.store.newImport(context.Background())
	if err := im.putOwned(c, data); err != nil {
		t.Fatal(err)
	}
	if m := served(); m.Missing || !bytes.Equal(m.Data, data) {
		t.Fatalf("the block of an import in progress: missing %v, %d bytes", m.Missing, len(m.Data))
	}
	im.abort()
	if m := served(); !m.Missing {
		t.Fatal("the block of an aborted import is served")
	}
	if len(lib.store.queued) != 0 {
		t.Fatalf("%d blocks left queued", len(lib.store.queued))
	}
}

// BenchmarkSwarmFetch100MiB: 16 validators fetch a new 100 MiB artifact
// from its miner at the same moment, each told the miner and the others
// (#25's target: the last within 3× one raw-TCP transfer of 100 MiB, the
// miner uploading at most 4× the size).
func BenchmarkSwarmFetch100MiB(b *testing.B) {
	const size, fetchers = 100 << 20, 16
	body := goRandom(size, 31)
	for i := range b.N {
		tcp := rawTCP(b, body)
		run := swarmFetch(b, size, fetchers, 0, 31)
		b.Logf("run %d: last %v (first %v), raw TCP %v: %.1f×; miner sent %.2f× the size, validators %.2f×", i,
			run.last, run.first, tcp, float64(run.last)/float64(tcp),
			float64(run.minerSent)/size, float64(run.peersSent)/size)
		b.ReportMetric(float64(run.last.Milliseconds()), "last-ms")
		b.ReportMetric(float64(tcp.Microseconds())/1000, "tcp-ms")
		b.ReportMetric(float64(run.last)/float64(tcp), "time/tcp")
		b.ReportMetric(float64(run.minerSent)/size, "upload/size")
	}
}
