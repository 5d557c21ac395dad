package knowledge

import (
	"errors"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/wallet"
)

// Config configures a library.
type Config struct {
	// Dir holds the store (library.db); usually <data dir>/knowledge.
	Dir string
	// Key is the hotkey that signs published objects; nil allows
	// everything but publishing.
	Key *wallet.PrivateKey
	// MaxObjectSize bounds a body in bytes, published or fetched.
	MaxObjectSize int64
	// MaxStoreSize bounds the bytes of all stored blocks. When a write
	// would pass it, unpinned objects are collected first.
	MaxStoreSize int64
	// MaxRemote bounds the announcements kept in the remote index; past
	// it the oldest are dropped.
	MaxRemote int
	// IndexBodyBytes is how much of a text body full-text search indexes.
	IndexBodyBytes int
	// Window is how many blocks a fetch asks a provider for at once.
	Window int
	// MaxProviders bounds the providers a fetch asks the DHT for.
	MaxProviders int
	// RequestTimeout bounds one request/response exchange with a provider.
	RequestTimeout time.Duration
	// FindTimeout bounds a DHT provider search.
	FindTimeout time.Duration
	// ReprovideEvery is how often pinned objects are provided again on the
	// DHT (provider records expire); 0 disables it.
	ReprovideEvery time.Duration
	// MaxStreams bounds the transfer streams a library holds at once:
	// those being served and those waiting for a request.
	MaxStreams int
	// MaxStreamsPerPeer bounds those of any one peer.
	MaxStreamsPerPeer int
	// ReservedStreams of MaxStreams are kept for registered neurons
	// (WithRegistry): a peer not registered gets a stream only while more
	// than ReservedStreams are free. Without a registry every peer is
	// alike and nothing is reserved.
	ReservedStreams int
	// ReadTimeout bounds how long a served stream waits for a request
	// (its first or its next) and how long a request takes to arrive from
	// its first byte; a stream that overstays is reset.
	ReadTimeout time.Duration
	// OpenTimeout bounds waiting for another process's lock on the store
	// (then Open fails with ErrInUse).
	OpenTimeout time.Duration
	Logger      *slog.Logger
}

// DefaultConfig keeps the store in dir with room for 8 GiB of blocks and
// bodies up to 256 MiB.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:            dir,
		MaxObjectSize:  256 << 20,
		MaxStoreSize:   8 << 30,
		MaxRemote:      100_000,
		IndexBodyBytes: 1 << 20,
		Window:         32,
		MaxProviders:   8,
		RequestTimeout: 30 * time.Second,
		FindTimeout:    30 * time.Second,
		ReprovideEvery: 12 * time.Hour,
		MaxStreams:     64,
		// A fetch uses one stream per provider: 8 leave room for a
		// neuron's concurrent fetches, and it takes 6 peers, not one, to
		// fill the 48 streams that unregistered peers may hold together.
		MaxStreamsPerPeer: 8,
		ReservedStreams:   16,
		// A client writes its request as it opens a stream and the next
		// ones before the answers to the last arrive (the reference client
		// keeps two windows requested): 10 s is ample, as for queries
		// (protocol.DefaultServerConfig's ReadTimeout).
		ReadTimeout: 10 * time.Second,
		OpenTimeout: time.Second,
		Logger:      slog.Default(),
	}
}

// DefaultTestConfig is DefaultConfig with small limits, short timeouts and
// no logs.
func DefaultTestConfig(dir string) Config {
	c := DefaultConfig(dir)
	c.MaxObjectSize, c.MaxStoreSize = 128<<20, 512<<20
	c.MaxRemote = 1000
	c.RequestTimeout, c.FindTimeout = 10*time.Second, 10*time.Second
	c.ReprovideEvery = 0
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

func (c Config) validate() error {
	switch {
	case c.Dir == "":
		return errors.New("knowledge: config: Dir is required")
	case c.MaxObjectSize < 1 || c.MaxStoreSize < c.MaxObjectSize:
		return errors.New("knowledge: config: need 1 <= MaxObjectSize <= MaxStoreSize")
	case c.MaxRemote < 0 || c.IndexBodyBytes < 0:
		return errors.New("knowledge: config: MaxRemote and IndexBodyBytes must not be negative")
	case c.Window < 1 || c.Window > MaxWant:
		return errors.New("knowledge: config: Window must be 1 to MaxWant")
	case c.MaxProviders < 1 || c.MaxStreams < 1:
		return errors.New("knowledge: config: MaxProviders and MaxStreams must be positive")
	case c.MaxStreamsPerPeer < 1 || c.MaxStreamsPerPeer > c.MaxStreams:
		return errors.New("knowledge: config: need 1 <= MaxStreamsPerPeer <= MaxStreams")
	case c.ReservedStreams < 0 || c.ReservedStreams >= c.MaxStreams:
		return errors.New("knowledge: config: need 0 <= ReservedStreams < MaxStreams")
	case c.RequestTimeout <= 0 || c.FindTimeout <= 0 || c.ReprovideEvery < 0 || c.OpenTimeout <= 0 || c.ReadTimeout <= 0:
		return errors.New("knowledge: config: timeouts must be positive")
	case c.Logger == nil:
		return errors.New("knowledge: config: a Logger is required")
	}
	return nil
}

// Option adds a collaborator to a library.
type Option func(*Library) error

// WithNetwork serves blocks on h and finds and provides objects through r
// (the neuron's DHT). h's identity should be the hotkey.
func WithNetwork(h host.Host, r Routing) Option {
	return func(l *Library) error {
		if h == nil || r == nil {
			return errors.New("knowledge: WithNetwork needs a host and routing")
		}
		l.host, l.routing = h, r
		return nil
	}
}

// WithAnnouncer announces published objects (on the subnet's gossip
// topic).
func WithAnnouncer(a Announcer) Option {
	return func(l *Library) error {
		if a == nil {
			return errors.New("knowledge: nil Announcer")
		}
		l.announcer = a
		return nil
	}
}

// WithRegistry tells registered neurons from other peers: those keep
// Config.ReservedStreams of the transfer streams for themselves. r is
// asked only when no unreserved stream is free.
func WithRegistry(r Registry) Option {
	return func(l *Library) error {
		if r == nil {
			return errors.New("knowledge: nil Registry")
		}
		l.registry = r
		return nil
	}
}

// WithPenalizer reports providers that serve bad blocks, besides the
// library's own reputation bookkeeping.
func WithPenalizer(p Penalizer) Option {
	return func(l *Library) error {
		if p == nil {
			return errors.New("knowledge: nil Penalizer")
		}
		l.penalizer = p
		return nil
	}
}

// Penalizer is told about misbehaving peers (the neuron's peer scoring).
type Penalizer interface {
	Penalize(p peer.ID, reason string)
}
