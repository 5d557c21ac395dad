package dht

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// ProvideRate bounds how fast unregistered peers may send provider
// records: each at Rate a second after a burst of Burst, and all of them
// together at TotalRate after TotalBurst. A record past the rate is
// refused (so is the rest of its stream: kad-dht resets it). What the
// store keeps is bounded anyway (ProviderLimits); this bounds the work a
// flood costs, which is most of a neuron's garbage under one.
type ProvideRate struct {
	Rate       float64
	Burst      int
	TotalRate  float64
	TotalBurst int
}

// provideLimiter applies ProvideRate.
type provideLimiter struct {
	cfg   ProvideRate
	mu    sync.Mutex
	total *rate.Limiter
	peers map[peer.ID]*rate.Limiter
}

// maxRateEntries bounds the peers provideLimiter remembers; past it, it
// forgets them all (a peer forgotten starts a fresh burst, within the
// total).
const maxRateEntries = 4096

func newProvideLimiter(cfg ProvideRate) *provideLimiter {
	return &provideLimiter{cfg: cfg, total: rate.NewLimiter(rate.Limit(cfg.TotalRate), cfg.TotalBurst), peers: map[peer.ID]*rate.Limiter{}}
}

// allow reports whether p may send one more record now.
func (l *provideLimiter) allow(p peer.ID, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.peers[p]
	if !ok {
		if len(l.peers) >= maxRateEntries {
			clear(l.peers)
		}
		lim = rate.NewLimiter(rate.Limit(l.cfg.Rate), l.cfg.Burst)
		l.peers[p] = lim
	}
	if lim.TokensAt(now) < 1 {
		return false
	}
	if !l.total.AllowN(now, 1) {
		return false
	}
	return lim.AllowN(now, 1)
}
