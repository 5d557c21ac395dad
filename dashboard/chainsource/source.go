package chainsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/dashboard"
)

// Chain is what a Source reads: chainlink.Chain's readers, which the
// embedded chain and the CometBFT client both implement.
type Chain interface {
	ChainID() string
	Head(ctx context.Context) (chainlink.Head, error)
	Subnets(ctx context.Context) ([]chain.SubnetInfo, error)
	Metagraph(ctx context.Context, netuid uint16, lite bool) (*chain.Metagraph, error)
}

// tokenDecimals: stake and emission are in units of 1e-9 token.
const tokenDecimals = 9

// Source follows a chain for the dashboard. Its goroutine (started by
// New) alone writes the records; State returns the latest published
// snapshot, which is never modified.
type Source struct {
	cfg Config
	c   Chain
	log *slog.Logger

	// Owned by Poll's caller (the goroutine, or a test).
	block     uint64
	subnets   []*subnet // by netuid
	refreshed time.Time
	down      bool

	mu    sync.Mutex
	state dashboard.State

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

var _ dashboard.Source = (*Source)(nil)

// subnet is the record of one subnet.
type subnet struct {
	info dashboard.Subnet // Netuid, Name, Tempo, Epochs
	// lastEpoch is the subnet's last epoch block when last read.
	lastEpoch uint64
	rows      []dashboard.Neuron
	history   []dashboard.EpochPoint
}

// New reads the chain once (an unreachable chain is an error) and follows
// it until ctx ends or Close is called.
func New(ctx context.Context, c Chain, cfg Config) (*Source, error) {
	s, err := newSource(c, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Poll(ctx); err != nil {
		return nil, err
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go s.run(ctx)
	return s, nil
}

// newSource makes a Source that has read nothing and runs nothing.
func newSource(c Chain, cfg Config) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("chainsource: no chain")
	}
	s := &Source{cfg: cfg, c: c, log: cfg.Logger.With("component", "dashboard-chain")}
	s.publish()
	return s, nil
}

// Close stops following the chain. It is safe to call more than once.
func (s *Source) Close() error {
	s.once.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
	})
	return nil
}

// State is the latest snapshot (dashboard.Source).
func (s *Source) State() dashboard.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Source) run(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.Poll(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !s.down:
			s.down = true
			s.log.Warn("cannot read the chain; the dashboard shows what it last read", "err", err)
		case err == nil && s.down:
			s.down = false
			s.log.Info("reading the chain again")
		}
	}
}

// Poll reads the chain's head and subnets once: a subnet whose epoch ran
// since the last Poll gets its metagraph and a history point, and every
// RefreshEvery all metagraphs are read again. It then publishes a new
// snapshot. Only one goroutine may call it at a time.
func (s *Source) Poll(ctx context.Context) error {
	head, err := s.c.Head(ctx)
	if err != nil {
		return fmt.Errorf("chainsource: reading the head: %w", err)
	}
	infos, err := s.c.Subnets(ctx)
	if err != nil {
		return fmt.Errorf("chainsource: listing subnets: %w", err)
	}
	refresh := time.Since(s.refreshed) >= s.cfg.RefreshEvery
	var subnets []*subnet
	for _, info := range infos {
		sub, known := s.subnet(info)
		epoch := known && info.LastEpochBlock != sub.lastEpoch
		if epoch || refresh || sub.rows == nil {
			mg, err := s.c.Metagraph(ctx, info.Netuid, true)
			if err != nil {
				return fmt.Errorf("chainsource: reading subnet %d's metagraph: %w", info.Netuid, err)
			}
			sub.rows = rowsOf(mg)
			if epoch {
				sub.info.Epochs++
				point := dashboard.EpochPoint{Epoch: sub.info.Epochs, Block: info.LastEpochBlock,
					Incentive: make([]float64, len(sub.rows)), Dividends: make([]float64, len(sub.rows))}
				for i, n := range sub.rows {
					point.Incentive[i], point.Dividends[i] = n.Incentive, n.Dividends
				}
				// Copy on append: a published snapshot may share the old array.
				sub.history = append(slices.Clip(sub.history[max(0, len(sub.history)+1-s.cfg.HistoryLimit):]), point)
			}
		}
		sub.lastEpoch = info.LastEpochBlock
		subnets = append(subnets, sub)
	}
	if refresh {
		s.refreshed = time.Now()
	}
	slices.SortFunc(subnets, func(a, b *subnet) int { return int(a.info.Netuid) - int(b.info.Netuid) })
	s.subnets = subnets // a dissolved subnet leaves
	s.block = head.Height
	s.publish()
	return nil
}

// subnet returns the record of info's subnet, made on first sight (known
// false), with its name and tempo brought up to date.
func (s *Source) subnet(info chain.SubnetInfo) (sub *subnet, known bool) {
	if i, found := slices.BinarySearchFunc(s.subnets, info.Netuid, func(x *subnet, n uint16) int { return int(x.info.Netuid) - int(n) }); found {
		sub, known = s.subnets[i], true
	} else {
		sub = &subnet{info: dashboard.Subnet{Netuid: info.Netuid}}
	}
	sub.info.Name, sub.info.Tempo = info.Name, info.Params.Tempo
	if sub.info.Name == "" {
		sub.info.Name = fmt.Sprintf("subnet %d", info.Netuid)
	}
	return sub, known
}

// rowsOf is a metagraph's rows, as much as the chain knows of them.
func rowsOf(mg *chain.Metagraph) []dashboard.Neuron {
	rows := make([]dashboard.Neuron, mg.N)
	for i := range mg.N {
		rows[i] = dashboard.Neuron{UID: uint16(i), Hotkey: mg.Hotkeys[i].String(), Stake: mg.Stake[i], Emission: mg.Emission[i],
			Incentive: frac(mg.Incentive[i]), Dividends: frac(mg.Dividends[i]), Trust: frac(mg.Trust[i]),
			Consensus: frac(mg.Consensus[i]), ValidatorPermit: mg.ValidatorPermit[i]}
	}
	return rows
}

func frac(v uint16) float64 { return float64(v) / 65535 }

// publish builds a new snapshot from the records.
func (s *Source) publish() {
	st := dashboard.State{ChainID: s.c.ChainID(), Block: s.block, Decimals: tokenDecimals, ChainOnly: true}
	for _, sub := range s.subnets {
		d := sub.info
		d.Neurons, d.History = sub.rows, sub.history
		if d.Neurons == nil {
			d.Neurons = []dashboard.Neuron{}
		}
		st.Epochs += d.Epochs
		st.Subnets = append(st.Subnets, d)
	}
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}
