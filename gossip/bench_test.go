package gossip

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/node"
)

// BenchmarkGossipSwarm measures one message at a time reaching every
// subscriber of a swarm of real-TCP loopback hosts in this process, each
// dialing 4 random others (8 neighbours on average), with 1 KiB messages:
// ours (this package: strict signing, content IDs, validation against a
// registry, DefaultConfig) against go-libp2p-pubsub's defaults on the same
// hosts (with go-libp2p's own secp256k1 verification), measured in the
// same run. Per size and router it reports the
// median and p99 (nearest rank) time for a message to reach all
// subscribers, CPU per message per host (process CPU during publishing
// minus the idle rate), heap and goroutines per host, duplicates per
// message per host, and bytes allocated per message per host.
//
//	go test -run '^$' -bench GossipSwarm -benchtime 1x -timeout 60m ./gossip/
func BenchmarkGossipSwarm(b *testing.B) {
	sizes := []int{100, 500, 1000}
	if testing.Short() {
		sizes = []int{100}
	}
	for _, n := range sizes {
		for _, router := range []string{"default", "ours"} {
			b.Run(fmt.Sprintf("n=%d/%s", n, router), func(b *testing.B) {
				if router == "default" {
					// The baseline is go-libp2p as it comes: its own
					// secp256k1 keys and verification, not the faster ones
					// package node registers for the process. No host
					// runs while the unmarshaller is swapped.
					ours := crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1]
					crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1] = crypto.UnmarshalSecp256k1PublicKey
					defer func() { crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1] = ours }()
				}
				benchSwarm(b, n, router == "ours", nil)
			})
		}
	}
}

// member is one host of the benchmark swarm.
type benchMember struct {
	n       *node.Node
	publish func(ctx context.Context, data []byte) error
	mesh    func() int
	dups    func() int64
	close   func()
}

func benchSwarm(b *testing.B, n int, ours bool, edit func(*Config)) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	reg := newRegistry()
	const messages = 20
	arrived := make([]atomic.Int32, messages)
	lastArrival := make([]atomic.Int64, messages)
	record := func(data []byte) {
		if len(data) < 4 {
			return
		}
		i := binary.BigEndian.Uint32(data)
		if int(i) < messages {
			arrived[i].Add(1)
			lastArrival[i].Store(time.Now().UnixNano())
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	members := make([]*benchMember, n)
	for i := range members {
		k := key(10_000 + i)
		reg.add(k, uint16(i))
		cfg := node.DefaultTestConfig(k)
		cfg.LowWater, cfg.HighWater = 64, 128
		h, err := node.New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		m := &benchMember{n: h}
		if ours {
			gcfg := DefaultConfig("bench")
			gcfg.Logger = slog.New(slog.DiscardHandler)
			if edit != nil {
				edit(&gcfg)
			}
			g, err := New(h, reg, gcfg)
			if err != nil {
				b.Fatal(err)
			}
			t, err := g.Join(1, Knowledge, nil)
			if err != nil {
				b.Fatal(err)
			}
			sub, err := t.Subscribe()
			if err != nil {
				b.Fatal(err)
			}
			readAll(ctx, &wg, func(ctx context.Context) ([]byte, error) {
				msg, err := sub.Next(ctx)
				return msg.Body, err
			}, record)
			m.publish, m.mesh, m.dups = t.Publish, t.MeshPeers, g.Duplicates
			m.close = func() { sub.Cancel(); g.Close(); h.Close() }
		} else {
			tr := newTracer(nil)
			ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithRawTracer(tr))
			if err != nil {
				b.Fatal(err)
			}
			t, err := ps.Join("bench")
			if err != nil {
				b.Fatal(err)
			}
			sub, err := t.Subscribe()
			if err != nil {
				b.Fatal(err)
			}
			readAll(ctx, &wg, func(ctx context.Context) ([]byte, error) {
				msg, err := sub.Next(ctx)
				if err != nil {
					return nil, err
				}
				return msg.Data, nil
			}, record)
			m.publish = func(ctx context.Context, data []byte) error { return t.Publish(ctx, data) }
			m.mesh = func() int { return tr.meshPeers("bench") }
			m.dups = tr.duplicates.Load
			m.close = func() { sub.Cancel(); h.Close() }
		}
		members[i] = m
	}
	defer func() {
		cancel()
		for _, m := range members {
			m.close()
		}
		wg.Wait()
	}()

	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i, m := range members {
		targets := []int{(i + 1) % n}
		for len(targets) < 4 {
			if j := r.IntN(n); j != i && !slices.Contains(targets, j) {
				targets = append(targets, j)
			}
		}
		for _, j := range targets {
			o := members[j].n
			if err := m.n.Connect(ctx, peer.AddrInfo{ID: o.ID(), Addrs: o.Addrs()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, m := range members {
		for m.mesh() < 2 {
			if time.Now().After(deadline) {
				b.Fatal("the mesh did not form")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heapPerHost := float64(after.HeapInuse-before.HeapInuse) / float64(n)
	if f := os.Getenv("GOSSIP_BENCH_MEMPROFILE"); f != "" {
		if out, err := os.Create(f); err == nil {
			pprof.Lookup("heap").WriteTo(out, 0)
			out.Close()
		}
	}
	goroutinesPerHost := float64(runtime.NumGoroutine()-goroutinesBefore) / float64(n)

	idleStart, idleCPU := time.Now(), cpuTime()
	time.Sleep(2 * time.Second)
	idleRate := float64(cpuTime()-idleCPU) / float64(time.Since(idleStart))

	var dupsBefore int64
	for _, m := range members {
		dupsBefore += m.dups()
	}
	// A collection of this whole process stalls every host in it at once
	// (about 0.7 s at 1,000 hosts on 2 cores), which neurons in their own
	// processes, each collecting its own small heap, would not suffer; and
	// whether one fell inside the publishing window decided p99. So the
	// window runs with collection off, for both routers, and what it
	// allocates is reported instead (alloc-B/msg/host).
	runtime.GC()
	gcPercent := debug.SetGCPercent(-1)
	var memBefore runtime.MemStats
	runtime.ReadMemStats(&memBefore)
	writeHeapProfile("GOSSIP_BENCH_ALLOCPROFILE", ".before")
	b.ResetTimer()
	if f := os.Getenv("GOSSIP_BENCH_CPUPROFILE"); f != "" { // profile the publishing phase only
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		pprof.StartCPUProfile(out)
		defer func() { pprof.StopCPUProfile(); out.Close() }()
	}
	start, startCPU := time.Now(), cpuTime()
	var latencies []time.Duration
	for i := range messages {
		data := make([]byte, 1024)
		binary.BigEndian.PutUint32(data, uint32(i))
		fill := rand.New(rand.NewPCG(uint64(i), uint64(n)))
		for j := 4; j < len(data); j++ {
			data[j] = byte(fill.Uint32())
		}
		from := members[r.IntN(n)]
		sent := time.Now()
		if err := from.publish(ctx, data); err != nil {
			b.Fatal(err)
		}
		for arrived[i].Load() < int32(n) {
			if time.Since(sent) > 30*time.Second {
				b.Fatalf("message %d reached %d of %d", i, arrived[i].Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
		latencies = append(latencies, time.Duration(lastArrival[i].Load()-sent.UnixNano()))
	}
	elapsed := time.Since(start)
	busy := float64(cpuTime()-startCPU) - idleRate*float64(elapsed)
	b.StopTimer()
	var memAfter runtime.MemStats
	runtime.ReadMemStats(&memAfter)
	debug.SetGCPercent(gcPercent)
	writeHeapProfile("GOSSIP_BENCH_ALLOCPROFILE", ".after")
	var dups int64
	for _, m := range members {
		dups += m.dups()
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(latencies[(len(latencies)*99+99)/100-1].Microseconds())/1000, "p99-ms")
	b.ReportMetric(busy/1000/float64(messages*n), "cpu-us/msg/host")
	b.ReportMetric(heapPerHost/(1<<10), "heap-KiB/host")
	b.ReportMetric(goroutinesPerHost, "goroutines/host")
	b.ReportMetric(float64(dups-dupsBefore)/float64(messages*n), "dups/msg/host")
	b.ReportMetric(float64(memAfter.TotalAlloc-memBefore.TotalAlloc)/float64(messages*n), "alloc-B/msg/host")
}

// writeHeapProfile writes the heap profile to the file named by the
// environment variable env, plus suffix, if it is set. Two of them (with
// pprof's -base) give what was allocated between.
func writeHeapProfile(env, suffix string) {
	name := os.Getenv(env)
	if name == "" {
		return
	}
	runtime.GC() // the profile is as of the last collection
	if out, err := os.Create(name + suffix); err == nil {
		pprof.Lookup("heap").WriteTo(out, 0)
		out.Close()
	}
}

// readAll hands every message next returns to record, until next fails.
func readAll(ctx context.Context, wg *sync.WaitGroup, next func(context.Context) ([]byte, error), record func([]byte)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			data, err := next(ctx)
			if err != nil {
				return
			}
			record(data)
		}
	}()
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
