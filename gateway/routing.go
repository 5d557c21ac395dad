package gateway

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Miner is a subnet's miner as the router sees it.
type Miner struct {
	UID uint16
	// Hotkey is the miner's hotkey address, Peer its peer ID and Addrs
	// the addresses of its axon.
	Hotkey string
	Peer   peer.ID
	Addrs  []ma.Multiaddr
	// Incentive and Trust are the metagraph's, scaled to [0, 1].
	Incentive, Trust float64
}

// PickerConfig configures how miners are chosen.
type PickerConfig struct {
	// Temperature of the softmax over each miner's incentive × trust
	// (scaled so that the subnet's best is 1): low sends nearly all
	// traffic to the best miners, high spreads it evenly.
	Temperature float64
	// MaxInFlight is the most requests one miner has at once; a miner at
	// its cap is not chosen.
	MaxInFlight int
	// BackoffBase is how long a miner that failed once is left out;
	// each further failure in a row doubles it, up to BackoffMax. A
	// success ends it.
	BackoffBase, BackoffMax time.Duration
	// LatencyAlpha weighs each new latency in the moving average (EWMA)
	// of a miner's time to first byte.
	LatencyAlpha float64
	// LatencyScale is the latency at which a miner's weight halves: the
	// weight is divided by 1 + latency/LatencyScale, and also by
	// 1 + its requests in flight.
	LatencyScale time.Duration
}

// DefaultPickerConfig uses temperature 0.25, 32 requests per miner,
// backoff from 1 s to 2 min and latency scale 500 ms.
func DefaultPickerConfig() PickerConfig {
	return PickerConfig{
		Temperature: 0.25, MaxInFlight: 32,
		BackoffBase: time.Second, BackoffMax: 2 * time.Minute,
		LatencyAlpha: 0.2, LatencyScale: 500 * time.Millisecond,
	}
}

func (c PickerConfig) validate() error {
	if !(c.Temperature > 0) || c.MaxInFlight < 1 || c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase ||
		!(c.LatencyAlpha > 0 && c.LatencyAlpha <= 1) || c.LatencyScale <= 0 {
		return errors.New("gateway: routing config: need Temperature > 0, MaxInFlight >= 1, 0 < BackoffBase <= BackoffMax, 0 < LatencyAlpha <= 1, LatencyScale > 0")
	}
	return nil
}

// Outcome is how a request to a miner ended, as the picker learns it.
type Outcome int

// Outcomes.
const (
	// Succeeded: the miner answered; its latency is counted.
	Succeeded Outcome = iota
	// Failed: the miner failed (unreachable, refused, broke off, too
	// slow); it backs off.
	Failed
	// Neutral: the request ended for a reason that is not the miner's
	// (the client left, the request was bad).
	Neutral
)

// minerState is what the picker measured of one miner.
type minerState struct {
	inFlight int
	// latency is the EWMA of time to first byte; 0 until measured.
	latency time.Duration
	// failures in a row, and the end of the backoff they caused.
	failures int
	until    time.Time
}

// Picker chooses the miner for each request. It holds no I/O: time and
// randomness are injected, and its state changes only through Pick and
// Done. It is safe for concurrent use.
type Picker struct {
	cfg  PickerConfig
	now  func() time.Time
	rand func() float64 // uniform in [0, 1)

	mu    sync.Mutex
	state map[peer.ID]*minerState
}

// NewPicker returns a picker reading time from now and randomness from
// rand (uniform in [0, 1)).
func NewPicker(cfg PickerConfig, now func() time.Time, rand func() float64) (*Picker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Picker{cfg: cfg, now: now, rand: rand, state: map[peer.ID]*minerState{}}, nil
}

// Weights returns each candidate's weight now: 0 for one excluded (skip
// returns true), at its in-flight cap or backing off, else its softmax
// weight adjusted down by its latency and load. It changes nothing.
func (p *Picker) Weights(cands []Miner, skip func(peer.ID) bool) []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.weights(cands, skip)
}

func (p *Picker) weights(cands []Miner, skip func(peer.ID) bool) []float64 {
	now := p.now()
	best := 0.0
	for _, m := range cands {
		best = max(best, score(m))
	}
	w := make([]float64, len(cands))
	for i, m := range cands {
		if skip != nil && skip(m.Peer) {
			continue
		}
		st := p.state[m.Peer]
		if st != nil && (st.inFlight >= p.cfg.MaxInFlight || now.Before(st.until)) {
			continue
		}
		s := 1.0 // all scores zero (a young subnet): every miner alike
		if best > 0 {
			s = score(m) / best
		}
		x := math.Exp((s - 1) / p.cfg.Temperature)
		if st != nil {
			x /= 1 + float64(st.latency)/float64(p.cfg.LatencyScale)
			x /= 1 + float64(st.inFlight)
		}
		w[i] = x
	}
	return w
}

// score is a miner's incentive × trust, 0 for values out of [0, 1].
func score(m Miner) float64 {
	s := m.Incentive * m.Trust
	if !(s >= 0 && s <= 1) {
		return 0
	}
	return s
}

// Pick chooses a candidate at random in proportion to its weight and
// counts a request in flight to it, which Done must end. ok is false
// when no candidate has weight.
func (p *Picker) Pick(cands []Miner, skip func(peer.ID) bool) (m Miner, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.weights(cands, skip)
	total := 0.0
	for _, x := range w {
		total += x
	}
	if !(total > 0) {
		return Miner{}, false
	}
	r := p.rand() * total
	pick := -1
	for i, x := range w {
		if x == 0 {
			continue
		}
		pick = i
		if r < x {
			break
		}
		r -= x
	}
	m = cands[pick]
	st := p.state[m.Peer]
	if st == nil {
		st = &minerState{}
		p.state[m.Peer] = st
	}
	st.inFlight++
	return m, true
}

// Done ends a request Pick counted: a success feeds latency (time to
// first byte) into the miner's average and ends its backoff; a failure
// starts or doubles its backoff.
func (p *Picker) Done(id peer.ID, o Outcome, latency time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state[id]
	if st == nil {
		return
	}
	st.inFlight = max(st.inFlight-1, 0)
	switch o {
	case Succeeded:
		st.failures, st.until = 0, time.Time{}
		if st.latency == 0 {
			st.latency = max(latency, 1)
		} else {
			a := p.cfg.LatencyAlpha
			st.latency = max(time.Duration(a*float64(latency)+(1-a)*float64(st.latency)), 1)
		}
	case Failed:
		st.failures++
		d := p.cfg.BackoffBase
		for i := 1; i < st.failures && d < p.cfg.BackoffMax; i++ {
			d *= 2
		}
		st.until = p.now().Add(min(d, p.cfg.BackoffMax))
	}
}

// Forget drops what the picker knows of miners not in keep (those that
// left the subnets), except those with requests in flight.
func (p *Picker) Forget(keep func(peer.ID) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, st := range p.state {
		if st.inFlight == 0 && !keep(id) {
			delete(p.state, id)
		}
	}
}
