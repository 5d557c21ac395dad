package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cybertensor/cybertensor/wallet"
)

// Config configures a node.
type Config struct {
	// Key is the hotkey: the node's libp2p identity.
	Key *wallet.PrivateKey
	// ListenAddrs are multiaddrs to listen on (TCP and QUIC).
	ListenAddrs []string
	// Bootstrap peers (full multiaddrs with /p2p/) are dialed at start.
	Bootstrap []string
	// DataDir keeps peers.json, so a restarted node redials the peers it
	// knew without bootstrap; empty keeps nothing.
	DataDir string
	// SavePeersEvery is how often peers.json is rewritten.
	SavePeersEvery time.Duration
	// LowWater and HighWater bound connections (the connection manager
	// trims to LowWater above HighWater, sparing connections younger than
	// GracePeriod).
	LowWater, HighWater int
	GracePeriod         time.Duration
	// MaxMemory and MaxFD scale the resource manager's explicit limits.
	MaxMemory int64
	MaxFD     int
	// MaxConns, if above what MaxMemory scales to (256 connections at
	// 1 GiB, 128 of them inbound), raises the node's connection limit to
	// it (half of it inbound) and its file-descriptor limit to at least
	// it. A validator holds a connection to every miner it queries: in a
	// full 256-uid subnet the scaled limit leaves it none to spare, and
	// every refused dial is redone.
	MaxConns int
	// Metrics registers libp2p's Prometheus collectors on Registerer
	// (nil: no metrics, the cheap default).
	Registerer prometheus.Registerer
	// Relay enables circuit relay and hole punching for nodes behind NAT.
	Relay bool
	// Admission bounds what peers not registered on the chain may hold,
	// once SetRegistered says who is.
	Admission AdmissionConfig
	// ReusePort lets the node's TCP listeners share their ports with
	// other sockets that ask for it too (SO_REUSEPORT), and its TCP dials
	// leave from its listen port (which helps NAT hole punching). Off, a
	// port another socket listens on is ErrAddrInUse: two processes
	// sharing a port split its connections between them. QUIC ports are
	// never shared.
	ReusePort bool
	Logger    *slog.Logger
}

// DefaultConfig listens on all interfaces on random TCP and QUIC ports.
func DefaultConfig(key *wallet.PrivateKey) Config {
	return Config{
		Key:            key,
		ListenAddrs:    []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"},
		SavePeersEvery: time.Minute,
		LowWater:       100, HighWater: 400, GracePeriod: 20 * time.Second,
		MaxMemory: 1 << 30, MaxFD: 1024,
		Admission: DefaultAdmissionConfig(),
		Logger:    slog.Default(),
	}
}

// DefaultTestConfig listens on loopback TCP only, with small limits.
func DefaultTestConfig(key *wallet.PrivateKey) Config {
	c := DefaultConfig(key)
	c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	c.SavePeersEvery = time.Second
	c.MaxMemory, c.MaxFD = 128<<20, 256
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

// raiseConns raises l's system connection limit to n if it is lower
// (outbound and in all to n, inbound to half of it), and its descriptor
// limit to at least n.
func raiseConns(l rcmgr.ConcreteLimitConfig, n int) rcmgr.ConcreteLimitConfig {
	p := l.ToPartialLimitConfig()
	sys := p.System
	if n <= 0 || int(sys.Conns) >= n {
		return l
	}
	sys.Conns, sys.ConnsOutbound = rcmgr.LimitVal(n), rcmgr.LimitVal(n)
	sys.ConnsInbound = max(sys.ConnsInbound, rcmgr.LimitVal(n/2))
	sys.FD = max(sys.FD, rcmgr.LimitVal(n))
	p.System = sys
	return p.Build(l)
}

func (c Config) validate() error {
	switch {
	case c.Key == nil:
		return errors.New("node: config: Key (the hotkey) is required")
	case len(c.ListenAddrs) == 0:
		return errors.New("node: config: at least one listen address")
	case c.LowWater < 1 || c.HighWater < c.LowWater:
		return errors.New("node: config: need 1 <= LowWater <= HighWater")
	case c.MaxMemory < 16<<20 || c.MaxFD < 16:
		return errors.New("node: config: MaxMemory >= 16 MiB and MaxFD >= 16")
	case c.SavePeersEvery <= 0 || c.Logger == nil:
		return errors.New("node: config: SavePeersEvery > 0 and a Logger")
	}
	if err := c.Admission.validate(); err != nil {
		return err
	}
	for _, a := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("node: config: listen address %q: %w", a, err)
		}
	}
	return nil
}

// Option changes the configuration.
type Option func(*Config) error

// WithBootstrap adds bootstrap peers.
func WithBootstrap(addrs ...string) Option {
	return func(c *Config) error {
		for _, a := range addrs {
			if _, err := peer.AddrInfoFromString(a); err != nil {
				return fmt.Errorf("node: bootstrap %q: %w", a, err)
			}
		}
		c.Bootstrap = append(c.Bootstrap, addrs...)
		return nil
	}
}

// Node is a neuron's libp2p host.
type Node struct {
	host.Host
	cfg Config
	adm *admission
	log *slog.Logger

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts a node. Its peer ID is the hotkey's.
func New(ctx context.Context, cfg Config, opts ...Option) (*Node, error) {
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cm := newConnManager(cfg.LowWater, cfg.HighWater, cfg.GracePeriod)
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	rcOpts := []rcmgr.Option{
		rcmgr.WithNetworkPrefixLimit(loopbackPrefixLimits()),
		rcmgr.WithConnRateLimiters(connRateLimiter()),
	}
	if cfg.Registerer == nil {
		rcOpts = append(rcOpts, rcmgr.WithMetricsDisabled())
	}
	limiter := rcmgr.NewFixedLimiter(raiseConns(scaling.Scale(cfg.MaxMemory, cfg.MaxFD), cfg.MaxConns))
	adm := newAdmission(cfg.Admission, limiter.GetSystemLimits().GetConnLimit(network.DirInbound), cm)
	rm, err := rcmgr.NewResourceManager(newAdmissionLimiter(limiter, adm), rcOpts...)
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	h, err := buildHost(cfg, cm, rm, adm)
	if err != nil {
		return nil, err
	}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: adm.connected, DisconnectedF: adm.disconnected})
	nctx, cancel := context.WithCancel(context.Background())
	n := &Node{Host: h, cfg: cfg, adm: adm, log: cfg.Logger.With("component", "node", "peer", h.ID()), cancel: cancel}
	var dial []peer.AddrInfo
	for _, a := range cfg.Bootstrap {
		info, _ := peer.AddrInfoFromString(a)
		dial = append(dial, *info)
	}
	known, err := n.loadPeers()
	if err != nil {
		n.log.Warn("ignoring the saved peers", "err", err)
	}
	dial = append(dial, known...)
	n.wg.Add(2)
	go n.connectAll(nctx, dial)
	go n.savePeriodically(nctx)
	return n, nil
}

// SetRegistered tells the node who is registered on the chain (the
// neurons it serves with): registered peers keep the whole of every limit
// and are protected from connection trims, while every other peer is held
// to Config.Admission. registered must answer at once (no I/O); it is
// called as peers connect and open scopes. Until SetRegistered is first
// called, every peer counts as registered. A peer's per-peer limit is set
// when the resource manager first sees it and kept while it holds
// anything. Call it again when the set changes, to move protections.
func (n *Node) SetRegistered(registered func(peer.ID) bool) {
	n.adm.setRegistered(registered, n.Network().Peers())
}

// connectAll dials peers concurrently, each within a bounded time.
func (n *Node) connectAll(ctx context.Context, peers []peer.AddrInfo) {
	defer n.wg.Done()
	var wg sync.WaitGroup
	for _, p := range peers {
		if p.ID == n.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if err := n.Connect(cctx, p); err != nil {
				n.log.Debug("dial failed", "to", p.ID, "err", err)
			}
		}()
	}
	wg.Wait()
}

func (n *Node) savePeriodically(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.SavePeersEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.SavePeers(); err != nil {
				n.log.Warn("saving peers", "err", err)
			}
		}
	}
}

// peersFile is where the known peers are kept.
func (n *Node) peersFile() string { return filepath.Join(n.cfg.DataDir, "peers.json") }

// maxSavedPeers bounds peers.json.
const maxSavedPeers = 1000

// SavePeers writes the connected peers and their addresses to the data
// directory (atomically), if there is one.
func (n *Node) SavePeers() error {
	if n.cfg.DataDir == "" {
		return nil
	}
	saved := map[string][]string{}
	ids := n.Network().Peers()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if len(saved) >= maxSavedPeers {
			break
		}
		for _, a := range n.Peerstore().Addrs(id) {
			saved[id.String()] = append(saved[id.String()], a.String())
		}
	}
	b, err := json.MarshalIndent(saved, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	tmp, err := os.CreateTemp(n.cfg.DataDir, ".peers-*")
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), n.peersFile())
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("node: saving peers: %w", err)
	}
	return nil
}

// loadPeers reads peers.json into the peerstore and returns the peers.
func (n *Node) loadPeers() ([]peer.AddrInfo, error) {
	if n.cfg.DataDir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(n.peersFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var saved map[string][]string
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("%s: %w", n.peersFile(), err)
	}
	var out []peer.AddrInfo
	for idStr, addrs := range saved {
		id, err := peer.Decode(idStr)
		if err != nil {
			continue
		}
		info := peer.AddrInfo{ID: id}
		for _, s := range addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				info.Addrs = append(info.Addrs, a)
			}
		}
		n.Peerstore().AddAddrs(id, info.Addrs, peerstore.AddressTTL)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// FullAddrs returns the node's addresses with its peer ID appended.
func (n *Node) FullAddrs() []string {
	var out []string
	for _, a := range n.Addrs() {
		out = append(out, a.Encapsulate(ma.StringCast("/p2p/"+n.ID().String())).String())
	}
	return out
}

// Close saves the peers, stops the node's goroutines and closes the host.
// It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		if err := n.SavePeers(); err != nil {
			n.log.Warn("saving peers", "err", err)
		}
		n.cancel()
		n.wg.Wait()
		n.closeErr = n.Host.Close()
	})
	return n.closeErr
}
