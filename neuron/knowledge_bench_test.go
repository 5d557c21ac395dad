package neuron

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/gossip"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/wallet"
)

// everyone is a registry in which every hotkey holds uid 0.
type everyone struct{}

func (everyone) Lookup(context.Context, uint16, wallet.Address) (uint16, bool, error) {
	return 0, true, nil
}

// BenchmarkKnowledgeAnnouncement measures, in a swarm of 100 neurons on
// real-TCP loopback hosts (each dialing 4 random others), the time from
// publishing a knowledge object (store, sign, announce) to every other
// neuron having ingested the announcement into its library's index, and,
// as the baseline on the same swarm in the same run, the time for plain
// gossip of a message of the same size to reach everyone. Median and p99
// (nearest rank) over the publications.
//
//	go test -run '^$' -bench KnowledgeAnnouncement -benchtime 20x ./neuron/
func BenchmarkKnowledgeAnnouncement(b *testing.B) {
	const n = 100
	type peerState struct {
		n      *node.Node
		g      *gossip.Gossip
		t      *gossip.Topic
		plainT *gossip.Topic // subnet 2's topic, unchecked: the baseline
		lib    *knowledge.Library
	}
	ctx, cancel := context.WithCancel(context.Background())
	var ingested, delivered sync.Map // key → *atomic.Int32
	count := func(m *sync.Map, key string) {
		v, _ := m.LoadOrStore(key, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
	}
	reached := func(m *sync.Map, key string) int32 {
		if v, ok := m.Load(key); ok {
			return v.(*atomic.Int32).Load()
		}
		return 0
	}
	var wg sync.WaitGroup
	ps := make([]*peerState, n)
	for i := range ps {
		k := testKey(b, "knowledge bench", i)
		h, err := node.New(ctx, node.DefaultTestConfig(k))
		if err != nil {
			b.Fatal(err)
		}
		gcfg := gossip.DefaultConfig("bench")
		gcfg.Logger = slog.New(slog.DiscardHandler)
		g, err := gossip.New(h, everyone{}, gcfg)
		if err != nil {
			b.Fatal(err)
		}
		t, err := g.Join(1, gossip.Knowledge, checkAnnouncement(1))
		if err != nil {
			b.Fatal(err)
		}
		kcfg := knowledge.DefaultTestConfig(b.TempDir())
		kcfg.Key = k
		lib, err := knowledge.Open(kcfg, knowledge.WithAnnouncer(gossipAnnouncer{g}))
		if err != nil {
			b.Fatal(err)
		}
		plainT, err := g.Join(2, gossip.Knowledge, func(gossip.Author, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		plainSub, err := plainT.Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		sub, err := t.Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer plainSub.Cancel()
			for {
				m, err := plainSub.Next(ctx)
				if err != nil {
					return
				}
				count(&delivered, string(m.Body[:16]))
			}
		}()
		go func() {
			defer wg.Done()
			defer sub.Cancel()
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if a, err := lib.Ingest(1, m.Peer, m.Body); err == nil {
					count(&ingested, a.Object.Title)
				}
			}
		}()
		ps[i] = &peerState{h, g, t, plainT, lib}
	}
	defer func() {
		cancel()
		wg.Wait()
		for _, p := range ps {
			p.lib.Close()
			p.g.Close()
			p.n.Close()
		}
	}()
	r := rand.New(rand.NewPCG(7, 7))
	for i, p := range ps {
		targets := []int{(i + 1) % n}
		for len(targets) < 4 {
			if j := r.IntN(n); j != i && !slices.Contains(targets, j) {
				targets = append(targets, j)
			}
		}
		for _, j := range targets {
			if err := p.n.Connect(ctx, peer.AddrInfo{ID: ps[j].n.ID(), Addrs: ps[j].n.Addrs()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, p := range ps {
		for p.t.MeshPeers() < 2 || p.plainT.MeshPeers() < 2 {
			if time.Now().After(deadline) {
				b.Fatal("the mesh did not form")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	wait := func(m *sync.Map, key string, want int32, since time.Time) time.Duration {
		for reached(m, key) < want {
			if time.Since(since) > time.Minute {
				b.Fatalf("%s reached %d of %d", key, reached(m, key), want)
			}
			time.Sleep(200 * time.Microsecond)
		}
		return time.Since(since)
	}
	var library, plain []time.Duration
	var size int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from := ps[r.IntN(n)]
		title := fmt.Sprintf("note %d", i)
		text := strings.Repeat(fmt.Sprintf("Knowledge note %d: the sky is blue because of Rayleigh scattering. ", i), 8)
		start := time.Now()
		obj, err := from.lib.Publish(ctx, strings.NewReader(text), knowledge.Meta{MediaType: "text/plain", Title: title, Netuid: 1})
		if err != nil {
			b.Fatal(err)
		}
		library = append(library, wait(&ingested, title, n-1, start))
		data, _ := (&knowledge.Announcement{Object: obj}).Encode()
		size = len(data)

		// The baseline: gossip alone, a message of the same size.
		raw := make([]byte, size)
		copy(raw, fmt.Sprintf("plain message %02d", i%100))
		key := string(raw[:16])
		start = time.Now()
		if err := from.plainT.Publish(ctx, raw); err != nil {
			b.Fatal(err)
		}
		plain = append(plain, wait(&delivered, key, n-1, start))
	}
	b.StopTimer()
	slices.Sort(library)
	slices.Sort(plain)
	pct := func(d []time.Duration, p int) float64 { return float64(d[(len(d)*p+99)/100-1].Microseconds()) / 1000 }
	b.ReportMetric(pct(library, 50), "announce-median-ms")
	b.ReportMetric(pct(library, 99), "announce-p99-ms")
	b.ReportMetric(pct(plain, 50), "gossip-median-ms")
	b.ReportMetric(pct(plain, 99), "gossip-p99-ms")
	b.ReportMetric(float64(size), "announcement-bytes")
}
