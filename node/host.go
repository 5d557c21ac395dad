package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/libp2p/go-libp2p/config"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	quicgo "github.com/quic-go/quic-go"

	"github.com/cybertensor/cybertensor/node/aegis"
	"github.com/cybertensor/cybertensor/node/yamux"
)

// builtHost is a libp2p host assembled from go-libp2p's parts directly:
// the swarm, the upgrader (TLS records, then TLS, then noise; our yamux),
// the TCP and QUIC transports and the basic host (identify, ping). libp2p.New builds the
// same parts through a dependency-injection graph that the host keeps
// alive until Close: measured on idle hosts, 264 KiB of heap each that way
// against 103 KiB built here. A neuron runs one host, but tests and
// benchmarks run a thousand in one process.
type builtHost struct {
	*basichost.BasicHost
	observed  *observedaddrs.Manager // nil unless Config.Relay
	quicConns *quicreuse.ConnManager
}

// Close closes the host in go-libp2p's order: the observed-address
// manager, then the basic host (which closes the connection manager,
// identify, the swarm, the peerstore and the resource manager), then the
// UDP sockets the QUIC listeners shared.
func (h *builtHost) Close() error {
	var errs []error
	if h.observed != nil {
		errs = append(errs, h.observed.Close())
	}
	errs = append(errs, h.BasicHost.Close(), h.quicConns.Close())
	return errors.Join(errs...)
}

// buildHost assembles and starts the host. It owns cm and rm from the
// start: on error they are closed with everything else built so far.
func buildHost(cfg Config, cm connmgr.ConnManager, rm network.ResourceManager, gater connmgr.ConnectionGater) (_ *builtHost, err error) {
	// Until the basic host exists, undo holds what to close on error, in
	// the order to close it.
	undo := []func() error{cm.Close, rm.Close}
	defer func() {
		if err != nil {
			for _, c := range undo {
				c()
			}
		}
	}()
	closeFirst := func(c func() error) { undo = slices.Insert(undo, 0, c) }

	key := cfg.Key.Libp2p()
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("node: peer ID: %w", err)
	}
	ps := newPeerstore()
	closeFirst(ps.Close)
	if err := ps.AddPrivKey(id, key); err != nil {
		return nil, fmt.Errorf("node: peerstore: %w", err)
	}
	if err := ps.AddPubKey(id, key.GetPublic()); err != nil {
		return nil, fmt.Errorf("node: peerstore: %w", err)
	}

	var busOpts []eventbus.Option
	swarmOpts := []swarm.Option{swarm.WithResourceManager(rm), swarm.WithConnectionGater(gater)}
	quicOpts := []quicreuse.Option{quicreuse.ConnContext(quicConnContext(rm)), quicreuse.VerifySourceAddress(rm.VerifySourceAddress)}
	if cfg.Registerer != nil {
		rcmgr.MustRegisterWith(cfg.Registerer)
		busOpts = append(busOpts, eventbus.WithMetricsTracer(eventbus.NewMetricsTracer(eventbus.WithRegisterer(cfg.Registerer))))
		swarmOpts = append(swarmOpts, swarm.WithMetricsTracer(swarm.NewMetricsTracer(swarm.WithRegisterer(cfg.Registerer))))
		quicOpts = append(quicOpts, quicreuse.EnableMetrics(cfg.Registerer))
	}
	// The swarm closes the QUIC listeners before the connection manager
	// closes the sockets under them.
	quicConns, err := newQUICConnManager(key, quicOpts)
	if err != nil {
		return nil, fmt.Errorf("node: QUIC: %w", err)
	}
	closeFirst(quicConns.Close)
	bus := eventbus.NewBus(busOpts...)
	sw, err := swarm.NewSwarm(id, ps, bus, swarmOpts...)
	if err != nil {
		return nil, fmt.Errorf("node: swarm: %w", err)
	}
	closeFirst(sw.Close)

	mux, err := yamux.New(yamux.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("node: muxer: %w", err)
	}
	muxers := []tptu.StreamMuxer{{ID: yamux.ID, Muxer: mux}}
	tlsSec, err := newBatchedTLS(libp2ptls.ID, key, muxers)
	if err != nil {
		return nil, fmt.Errorf("node: TLS: %w", err)
	}
	noiseSec, err := noise.New(noise.ID, key, muxers)
	if err != nil {
		return nil, fmt.Errorf("node: noise: %w", err)
	}
	secure := []sec.SecureTransport{tlsSec, noiseSec}
	if aegis.Supported {
		// Offered first, where this CPU has AES instructions.
		recordSec, err := newRecordTransport(key, muxers)
		if err != nil {
			return nil, fmt.Errorf("node: TLS records: %w", err)
		}
		secure = slices.Insert(secure, 0, sec.SecureTransport(recordSec))
	}
	upgrader, err := tptu.New(secure, muxers, nil, rm, gater)
	if err != nil {
		return nil, fmt.Errorf("node: upgrader: %w", err)
	}
	var tcpOpts []tcp.Option
	if !cfg.ReusePort {
		// go-libp2p sets SO_REUSEPORT by default (and only the environment
		// variable LIBP2P_TCP_REUSEPORT=false unsets it): a second process
		// would share a miner's port and take some of its connections.
		tcpOpts = append(tcpOpts, tcp.DisableReuseport())
	}
	tcpTransport, err := tcp.NewTCPTransport(upgrader, rm, nil, tcpOpts...)
	if err != nil {
		return nil, fmt.Errorf("node: TCP: %w", err)
	}
	quicTransport, err := quic.NewTransport(key, quicConns, nil, gater, rm)
	if err != nil {
		return nil, fmt.Errorf("node: QUIC: %w", err)
	}
	for _, t := range []transport.Transport{tcpTransport, quicTransport} {
		if err := sw.AddTransport(t); err != nil {
			return nil, fmt.Errorf("node: adding a transport: %w", err)
		}
	}

	opts := &basichost.HostOpts{
		EventBus:             bus,
		ConnManager:          cm,
		EnablePing:           true,
		UserAgent:            "cybertensor",
		EnableMetrics:        cfg.Registerer != nil,
		PrometheusRegisterer: cfg.Registerer,
	}
	var observed *observedaddrs.Manager
	if cfg.Relay {
		// Behind a NAT: learn our public addresses from what peers see,
		// map ports, punch holes, and reach others through relays.
		if observed, err = observedaddrs.NewManager(bus, sw); err != nil {
			return nil, fmt.Errorf("node: observed addresses: %w", err)
		}
		closeFirst(observed.Close)
		opts.ObservedAddrsManager = observed
		opts.NATManager = basichost.NewNATManager
		opts.EnableHolePunching = true
	}
	bh, err := basichost.NewHost(sw, opts)
	if err != nil {
		return nil, fmt.Errorf("node: host: %w", err)
	}
	h := &builtHost{BasicHost: bh, observed: observed, quicConns: quicConns}
	undo = []func() error{h.Close}

	if cfg.Relay {
		if err := circuit.AddTransport(bh, upgrader); err != nil {
			return nil, fmt.Errorf("node: relay transport: %w", err)
		}
	}
	// Every address or none (the swarm's Listen settles for one): a
	// neuron serves its listen addresses as its axon.
	for _, a := range listenAddrs(cfg.ListenAddrs) {
		if err := sw.AddListenAddr(a); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("%w: %s", ErrAddrInUse, a)
			}
			return nil, fmt.Errorf("node: listening on %s: %w", a, err)
		}
	}
	if observed != nil {
		observed.Start(sw)
	}
	bh.Start()
	if cfg.Relay {
		an, err := autonat.New(bh, autonat.UsingAddresses(func() []ma.Multiaddr {
			return slices.DeleteFunc(bh.AllAddrs(), func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) })
		}))
		if err != nil {
			return nil, fmt.Errorf("node: autonat: %w", err)
		}
		bh.SetAutoNat(an)
	}
	return h, nil
}

// quicConnContext charges each inbound QUIC connection to the resource
// manager before its handshake, as libp2p.New does.
func quicConnContext(rm network.ResourceManager) func(context.Context, *quicgo.ClientInfo) (context.Context, error) {
	return func(ctx context.Context, info *quicgo.ClientInfo) (context.Context, error) {
		addr, err := quicreuse.ToQuicMultiaddr(info.RemoteAddr, quicgo.Version1)
		if err != nil {
			addr = nil // let the resource manager decide
		}
		scope, err := rm.OpenConnection(network.DirInbound, false, addr)
		if err != nil {
			return ctx, err
		}
		ctx = network.WithConnManagementScope(ctx, scope)
		context.AfterFunc(ctx, scope.Done)
		return ctx, nil
	}
}

// listenAddrs parses addresses Config.validate already checked.
func listenAddrs(s []string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(s))
	for _, a := range s {
		out = append(out, ma.StringCast(a))
	}
	return out
}

// newQUICConnManager is the UDP socket manager QUIC connections share,
// with keys derived from the host key as go-libp2p derives them.
func newQUICConnManager(key crypto.PrivKey, opts []quicreuse.Option) (*quicreuse.ConnManager, error) {
	reset, err := config.PrivKeyToStatelessResetKey(key)
	if err != nil {
		return nil, err
	}
	token, err := config.PrivKeyToTokenGeneratorKey(key)
	if err != nil {
		return nil, err
	}
	return quicreuse.NewConnManager(reset, token, opts...)
}
