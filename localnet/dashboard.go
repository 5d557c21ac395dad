package localnet

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/dashboard"
	"github.com/cybertensor/cybertensor/neuron"
)

const (
	// historyLimit is how many epochs of each subnet the dashboard keeps.
	historyLimit = 512
	// refreshEvery is how often the neurons' live counters are read
	// between epochs.
	refreshEvery = time.Second
	// tokenDecimals: stake and emission are in units of 1e-9 token.
	tokenDecimals = 9
)

// board is what the dashboard shows of a run. The run loop alone writes it
// (head, epoch) and alone touches the members; it publishes snapshots that
// the dashboard server and the metrics read (State). A published snapshot
// is never modified: each update builds new slices.
type board struct {
	c       subnetReader
	members []*member
	srv     *dashboard.Server

	// Owned by the run loop.
	block     uint64
	subnets   []*subnetBoard          // by netuid
	counters  map[string]liveCounters // by hotkey address
	refreshed time.Time
	// organic is the gateway's per-miner usage (nil: no gateway); read
	// with the counters, into organics (by hotkey address).
	organic  organicSource
	organics map[string]organic

	mu    sync.Mutex
	state dashboard.State
}

// subnetReader is what the board reads from the chain.
type subnetReader interface {
	ChainID() string
	Subnet(ctx context.Context, netuid uint16) (chain.SubnetInfo, error)
}

// subnetBoard is the run loop's record of one subnet.
type subnetBoard struct {
	info    dashboard.Subnet   // Netuid, Name, Tempo, Epochs
	rows    []dashboard.Neuron // chain fields as of the last epoch
	history []dashboard.EpochPoint
}

// organicSource gives the gateway's organic traffic per miner hotkey
// (minerUsage does).
type organicSource interface {
	snapshot() map[string]organic
}

// gatewayUsage makes the board show the gateway's per-miner usage.
func (b *board) gatewayUsage(src organicSource) {
	if b != nil {
		b.organic = src
	}
}

// liveCounters are a neuron's own counters, read from the running neuron.
type liveCounters struct {
	netuid                   uint16
	id                       peer.ID
	role, adversary          string
	online                   bool
	served, sent, weightSets int64
	swarmStats
}

// startBoard starts the dashboard on cfg.Dashboard, prints its URL to out
// and tells cfg.OnDashboard. With no address it returns a nil board, whose
// methods do nothing.
func startBoard(ctx context.Context, cfg Config, out io.Writer, c subnetReader, members []*member) (*board, error) {
	if cfg.Dashboard == "" {
		return nil, nil
	}
	b := newBoard(c, members)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), dashboard.NewCollector(b, "cybertensor_localnet"))
	dcfg := dashboard.DefaultConfig()
	dcfg.Addr, dcfg.Gatherer, dcfg.Logger = cfg.Dashboard, reg, cfg.Logger
	srv, err := dashboard.Start(ctx, dcfg, b)
	if err != nil {
		return nil, fmt.Errorf("localnet: %w", err)
	}
	b.srv = srv
	fmt.Fprintf(out, "dashboard: %s\n", srv.URL())
	if cfg.OnDashboard != nil {
		cfg.OnDashboard(srv.URL())
	}
	return b, nil
}

// newBoard makes the board of a run of members on chain c, serving nothing.
func newBoard(c subnetReader, members []*member) *board {
	b := &board{c: c, members: members, counters: map[string]liveCounters{}}
	b.publish()
	return b
}

// close stops the dashboard.
func (b *board) close() {
	if b != nil && b.srv != nil {
		b.srv.Close()
	}
}

// State is the latest snapshot (dashboard.Source).
func (b *board) State() dashboard.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// head records a new block, reading the neurons' counters at most every
// refreshEvery.
func (b *board) head(h chainlink.Head) {
	if b == nil {
		return
	}
	b.block = h.Height
	if time.Since(b.refreshed) >= refreshEvery {
		b.refresh()
	}
	b.publish()
}

// epoch records the metagraph read after an epoch of mg.Netuid.
func (b *board) epoch(ctx context.Context, block uint64, mg *chain.Metagraph) {
	if b == nil {
		return
	}
	s := b.subnet(ctx, mg.Netuid)
	s.info.Epochs++
	rows := make([]dashboard.Neuron, mg.N)
	point := dashboard.EpochPoint{Epoch: s.info.Epochs, Block: block, Incentive: make([]float64, mg.N), Dividends: make([]float64, mg.N)}
	for i := range mg.N {
		rows[i] = dashboard.Neuron{UID: uint16(i), Hotkey: mg.Hotkeys[i].String(), Stake: mg.Stake[i], Emission: mg.Emission[i],
			Incentive: frac(mg.Incentive[i]), Dividends: frac(mg.Dividends[i]), Trust: frac(mg.Trust[i]), Consensus: frac(mg.Consensus[i])}
		point.Incentive[i], point.Dividends[i] = rows[i].Incentive, rows[i].Dividends
	}
	s.rows = rows
	// Copy on append: a published snapshot may share the old array.
	s.history = append(slices.Clip(s.history[max(0, len(s.history)+1-historyLimit):]), point)
	b.block = max(b.block, block)
	b.refresh()
	b.publish()
}

// subnet returns netuid's record, made at its first epoch with the name
// and tempo read from the chain. (The board shows the subnets the run loop
// follows, not the root network.)
func (b *board) subnet(ctx context.Context, netuid uint16) *subnetBoard {
	i, found := slices.BinarySearchFunc(b.subnets, netuid, func(s *subnetBoard, n uint16) int { return int(s.info.Netuid) - int(n) })
	if found {
		return b.subnets[i]
	}
	s := &subnetBoard{info: dashboard.Subnet{Netuid: netuid, Name: fmt.Sprintf("subnet %d", netuid)}}
	if info, err := b.c.Subnet(ctx, netuid); err == nil {
		s.info.Name, s.info.Tempo = info.Name, info.Params.Tempo
	}
	b.subnets = slices.Insert(b.subnets, i, s)
	return s
}

// refresh reads every running neuron's counters; a stopped neuron keeps its
// last.
func (b *board) refresh() {
	b.refreshed = time.Now()
	if b.organic != nil {
		b.organics = b.organic.snapshot()
	}
	for _, m := range b.members {
		if m.miner == nil && m.validator == nil {
			continue // not started yet
		}
		key := m.hot.PublicKey().Address().String()
		lc := b.counters[key]
		lc.netuid, lc.role, lc.adversary = m.netuid, m.role, m.adversary
		if m.stopped {
			lc.online = false
			b.counters[key] = lc
			continue
		}
		lc.online = true
		if m.miner != nil {
			lc.id, lc.served = m.miner.ID(), m.miner.QueriesServed()
			lc.swarmStats = statsOf(m.miner.Swarm())
		} else {
			lc.id = m.validator.ID()
			lc.sent, lc.weightSets = m.validator.Stats()
			lc.swarmStats = statsOf(m.validator.Swarm())
		}
		b.counters[key] = lc
	}
}

// publish builds a new snapshot from the run loop's records.
func (b *board) publish() {
	st := dashboard.State{ChainID: b.c.ChainID(), Block: b.block, Decimals: tokenDecimals}
	for _, s := range b.subnets {
		sub := s.info
		sub.History = s.history
		sub.Neurons = make([]dashboard.Neuron, len(s.rows))
		for i, n := range s.rows {
			if lc, ok := b.counters[n.Hotkey]; ok {
				n.Role, n.Adversary, n.Online = lc.role, lc.adversary, lc.online
				n.QueriesServed, n.QueriesSent, n.WeightSets = lc.served, lc.sent, lc.weightSets
				n.Heard, n.Duplicates = len(lc.heard), lc.duplicates
				n.KnowledgeShared, n.KnowledgeFetched = lc.shared, lc.fetched
			}
			if o, ok := b.organics[n.Hotkey]; ok {
				n.OrganicRequests, n.OrganicTokens, n.OrganicFailures = o.requests, o.tokens, o.failures
			}
			sub.Neurons[i] = n
		}
		st.Epochs += sub.Epochs
		st.Subnets = append(st.Subnets, sub)
	}
	// Gossip: which online neurons heard which other online neurons of
	// their subnet (heartbeats stay on their subnet's topic).
	online := map[peer.ID]bool{}
	perSubnet := map[uint16]int{}
	for _, lc := range b.counters {
		if lc.online {
			online[lc.id] = true
			perSubnet[lc.netuid]++
		}
	}
	st.Gossip.Neurons = len(online)
	for _, n := range perSubnet {
		st.Gossip.Pairs += n * (n - 1)
	}
	for _, lc := range b.counters {
		st.Gossip.Duplicates += lc.duplicates
		st.Knowledge.Shared += lc.shared
		st.Knowledge.Fetched += lc.fetched
		if !lc.online {
			continue
		}
		for p := range lc.heard {
			if p != lc.id && online[p] {
				st.Gossip.Heard++
			}
		}
	}
	b.mu.Lock()
	b.state = st
	b.mu.Unlock()
}

// swarmStats are a neuron's gossip and knowledge counters.
type swarmStats struct {
	heard      map[peer.ID]neuron.Heard // heartbeats heard, by neuron
	duplicates int64                    // gossip messages received again
	shared     int                      // knowledge objects published
	fetched    int64                    // knowledge objects fetched from others
}

// statsOf reads a swarm's counters (none without a swarm).
func statsOf(sw *neuron.Swarm) swarmStats {
	if sw == nil {
		return swarmStats{}
	}
	return swarmStats{heard: sw.Heard(), duplicates: sw.Gossip().Duplicates(), shared: sw.KnowledgeShared(), fetched: sw.KnowledgeFetched()}
}
