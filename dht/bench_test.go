package dht

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	lpswarm "github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/wallet"
)

// BenchmarkNewNeuronFindsSubnet measures, in a swarm of 200 subnet members
// on loopback QUIC hosts in this process, the time for a new neuron
// to find every member: from dialing one random member (its only
// bootstrap peer) through starting its DHT to having every member from
// the subnet key's provider records. The swarm is in its steady state:
// every member has joined and then run one discovery search (Members), as
// neurons do every round. It reports the median and p95 over the new
// neurons.
//
//	go test -run '^$' -bench NewNeuronFindsSubnet -benchtime 20x ./dht/
func BenchmarkNewNeuronFindsSubnet(b *testing.B) {
	const members = 200
	reg := &registry{m: map[wallet.Address]uint16{}}
	ms := make([]member, members)
	boots := make([]peer.AddrInfo, members) // each member's bootstrap peer
	r := rand.New(rand.NewPCG(1, 2))
	for i := range ms {
		k := key(20_000 + i)
		reg.m[k.PublicKey().Address()] = uint16(i)
		n, err := node.New(context.Background(), benchNodeConfig(k))
		if err != nil {
			b.Fatal(err)
		}
		cfg := DefaultConfig("dht-bench")
		cfg.Logger = slog.New(slog.DiscardHandler)
		if i > 0 {
			bi := r.IntN(i)
			boot := ms[bi].n
			cfg.Bootstrap = []peer.AddrInfo{{ID: boot.ID(), Addrs: boot.Addrs()}}
			boots[i] = cfg.Bootstrap[0]
			// Setting up, not measured: a loaded machine may drop a QUIC
			// handshake, so try a few times.
			for attempt := 1; ; attempt++ {
				err := n.Connect(context.Background(), cfg.Bootstrap[0])
				if err == nil {
					break
				}
				if attempt == 5 {
					b.Fatalf("member %d dialing member %d (%d conns): %v", i, bi, len(boot.Network().Conns()), err)
				}
				if sw, ok := n.Network().(*lpswarm.Swarm); ok {
					sw.Backoff().Clear(boot.ID())
				}
			}
		}
		d, err := New(n, k, reg, cfg)
		if err != nil {
			b.Fatal(err)
		}
		ms[i] = member{n, d}
	}
	defer func() {
		for _, m := range ms {
			m.d.Close()
			m.n.Close()
		}
	}()
	// Every member announces itself, 16 at a time; a member whose
	// routing table is still thin retries.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := eachMember(ms, func(i int, m member) error {
		var err error
		for range 30 {
			if err = m.d.Join(ctx, 1, uint16(i), nil); err == nil {
				return nil
			}
			// An empty routing table: the member's one connection may
			// have been trimmed on a loaded machine; dial its bootstrap
			// peer again and let the table fill.
			if i > 0 && len(m.n.Network().Conns()) == 0 {
				if sw, ok := m.n.Network().(*lpswarm.Swarm); ok {
					sw.Backoff().Clear(boots[i].ID)
				}
				_ = m.n.Connect(ctx, boots[i])
			}
			time.Sleep(time.Second)
		}
		return fmt.Errorf("member %d (%d connections, routing table %d): %w", i, len(m.n.Network().Conns()), m.d.RoutingTableSize(), err)
	}); err != nil {
		b.Fatal(err)
	}
	// Then each member runs one discovery search, as a neuron's discovery
	// loop does every round, and so keeps the subnet's members it finds.
	if err := eachMember(ms, func(i int, m member) error {
		qctx, qcancel := context.WithTimeout(ctx, time.Minute)
		defer qcancel()
		if n := len(m.d.Members(qctx, 1)); n < members {
			return fmt.Errorf("member %d found %d of %d members", i, n, members)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}

	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		k := key(30_000 + i)
		reg.m[k.PublicKey().Address()] = uint16(members + i)
		n, err := node.New(context.Background(), benchNodeConfig(k))
		if err != nil {
			b.Fatal(err)
		}
		boot := ms[r.IntN(members)].n
		cfg := DefaultConfig("dht-bench")
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.Bootstrap = []peer.AddrInfo{{ID: boot.ID(), Addrs: boot.Addrs()}}
		b.StartTimer()

		start := time.Now()
		if err := n.Connect(ctx, cfg.Bootstrap[0]); err != nil {
			b.Fatal(err)
		}
		d, err := New(n, k, reg, cfg)
		if err != nil {
			b.Fatal(err)
		}
		found := map[peer.ID]bool{}
		for len(found) < members {
			qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
			d.waitRoutable(qctx) // as Members does
			for p := range d.kad.FindProvidersAsync(qctx, SubnetKey("dht-bench", 1), 0) {
				found[p.ID] = true
				if len(found) == members {
					break
				}
			}
			qcancel()
			if time.Since(start) > time.Minute {
				b.Fatalf("new neuron %d found %d of %d members", i, len(found), members)
			}
		}
		took = append(took, time.Since(start))

		b.StopTimer()
		d.Close()
		n.Close()
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(took[(len(took)*95+99)/100-1].Microseconds())/1000, "p95-ms")
}

// benchNodeConfig gives each of the 200 hosts room for the connections a
// DHT member makes and takes. They speak QUIC: one UDP socket per host
// carries all its connections, where TCP would need two file descriptors
// per connection in this one process (and 200 members connect widely).
func benchNodeConfig(k *wallet.PrivateKey) node.Config {
	c := node.DefaultTestConfig(k)
	c.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	// The resource manager scales its inbound connection limit with
	// MaxMemory (64 + 64 per GiB): the first members serve most joins.
	c.MaxFD, c.MaxMemory = 1024, 4<<30
	return c
}

// eachMember runs f on every member, 16 at a time, and returns the first
// error.
func eachMember(ms []member, f func(i int, m member) error) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := f(i, m); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
