package dht

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Config configures the DHT.
type Config struct {
	ChainID string
	// Bootstrap peers, in addition to those the host already knows.
	Bootstrap []peer.AddrInfo
	// RecordTTL is how long a published neuron record is valid (and how
	// long a DHT server keeps one); RefreshEvery is how often Join
	// re-publishes it and re-provides the subnet key.
	RecordTTL    time.Duration
	RefreshEvery time.Duration
	// ProviderTTL is how long a provider record is kept after its provider
	// last sent it; MembershipTTL, shorter, is the same for subnet keys,
	// which members provide every RefreshEvery.
	ProviderTTL   time.Duration
	MembershipTTL time.Duration
	// Providers bounds the provider records kept for other peers, and
	// ProvideRate how fast unregistered peers may send them.
	Providers   ProviderLimits
	ProvideRate ProvideRate
	// RoutingRefreshEvery is how often the routing table's buckets are
	// refreshed: each bucket that no search used within the period gets a
	// walk of its own (kad-dht's refresh, without its forced sweeps of
	// every bucket at start).
	RoutingRefreshEvery time.Duration
	Logger              *slog.Logger
}

// ProviderLimits bounds the provider records a neuron keeps. Registered
// neurons and unregistered peers each have a pool of their own, so what
// unregistered peers send never takes the registered neurons' share. A
// provider is registered if the Registry says its hotkey holds a uid on a
// subnet this neuron has joined; for a subnet key, on that subnet, and
// nobody else's record for a subnet key is kept at all. The neuron's own
// records count as a registered neuron's.
type ProviderLimits struct {
	Registered, Unregistered PoolLimits
}

// PoolLimits bounds one pool of provider records: at most Total records,
// PerPeer of one provider and PerKey providers of one key. A record that
// would pass a limit takes the place of the oldest (by last refresh)
// within it.
type PoolLimits struct {
	Total, PerPeer, PerKey int
}

// DefaultConfig keeps neuron records for an hour and refreshes every 10
// minutes.
//
// Provider records live 24 hours, twice the knowledge library's
// re-provide interval (12 hours), so one missed re-provide loses nothing;
// those of subnet keys live an hour, six refreshes, so a neuron that left
// drops out of its subnet's answers within the hour.
//
// Registered neurons share 65,536 records: 8,192 for each (an object is
// two records), 4,096 providers for each key (a subnet's most uids, so a
// member keeps its whole subnet). Unregistered peers share 16,384: 1,024
// for each, 32 for each key. A record costs about 330 bytes at most
// (TestProviderStoreMemory), so unregistered peers can make a neuron hold
// about 5 MiB of them, and both pools full hold about 26 MiB.
//
// An unregistered peer may send 10 provider records a second after a
// burst of 256 (a newcomer publishing 128 objects at once), and all of
// them together 200 a second after a burst of 2,048.
func DefaultConfig(chainID string) Config {
	return Config{
		ChainID:       chainID,
		RecordTTL:     time.Hour,
		RefreshEvery:  10 * time.Minute,
		ProviderTTL:   24 * time.Hour,
		MembershipTTL: time.Hour,
		Providers: ProviderLimits{
			Registered:   PoolLimits{Total: 65536, PerPeer: 8192, PerKey: 4096},
			Unregistered: PoolLimits{Total: 16384, PerPeer: 1024, PerKey: 32},
		},
		ProvideRate:         ProvideRate{Rate: 10, Burst: 256, TotalRate: 200, TotalBurst: 2048},
		RoutingRefreshEvery: 10 * time.Minute,
		Logger:              slog.Default(),
	}
}

func (c Config) validate() error {
	switch {
	case c.ChainID == "" || c.RecordTTL <= 0 || c.RefreshEvery <= 0 || c.RoutingRefreshEvery <= 0 || c.Logger == nil:
		return errors.New("dht: config: ChainID, RecordTTL, RefreshEvery, RoutingRefreshEvery and Logger are required")
	case c.MembershipTTL <= c.RefreshEvery || c.ProviderTTL < c.MembershipTTL:
		return errors.New("dht: config: need RefreshEvery < MembershipTTL <= ProviderTTL")
	}
	if r := c.ProvideRate; r.Rate <= 0 || r.Burst < 1 || r.TotalRate < r.Rate || r.TotalBurst < r.Burst {
		return errors.New("dht: config: ProvideRate needs 0 < Rate <= TotalRate and 1 <= Burst <= TotalBurst")
	}
	for name, p := range map[string]PoolLimits{"Registered": c.Providers.Registered, "Unregistered": c.Providers.Unregistered} {
		if p.Total < 1 || p.PerPeer < 1 || p.PerKey < 1 || p.PerPeer > p.Total || p.PerKey > p.Total {
			return fmt.Errorf("dht: config: Providers.%s needs 1 <= PerPeer, PerKey <= Total", name)
		}
	}
	return nil
}
