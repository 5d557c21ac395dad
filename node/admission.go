package node

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// AdmissionConfig bounds what peers that are not registered on the chain
// may make a node hold, once the node knows who is registered
// (Node.SetRegistered). Anyone can make a key and dial a neuron; such a
// peer gets service, within these bounds, and registered neurons keep the
// rest of every limit.
type AdmissionConfig struct {
	// Peer is what one unregistered peer may hold at once: connections,
	// streams and memory (the resource manager's per-peer limit; zero
	// fields take the default's).
	Peer rcmgr.BaseLimit
	// InboundShare is the fraction of the node's inbound connection limit
	// that unregistered peers may hold together; the rest is kept for
	// registered ones. When the share is full, a new unregistered peer
	// takes the place of the unregistered connection that has been idle
	// (no streams) longest, if one has been open IdleAfter; otherwise it is
	// refused.
	InboundShare float64
	IdleAfter    time.Duration
	// PerAddress bounds the inbound connections unregistered peers hold
	// from one address (an IPv4 address, an IPv6 /56), loopback included:
	// keys are free, addresses are not, so one machine cannot take the
	// whole unregistered share however many keys it makes. go-libp2p's
	// resource manager holds every peer to 8 connections an address, but
	// exempts loopback; this bound does not.
	PerAddress int
}

// DefaultAdmissionConfig: an unregistered peer holds at most one inbound
// and two connections in all, 16 inbound streams (32 in all) and 8 MiB;
// together unregistered peers hold at most half the inbound connections,
// and at most 8 of them from one address.
func DefaultAdmissionConfig() AdmissionConfig {
	return AdmissionConfig{
		Peer: rcmgr.BaseLimit{
			Conns: 2, ConnsInbound: 1, ConnsOutbound: 2,
			Streams: 32, StreamsInbound: 16, StreamsOutbound: 32,
			FD:     2,
			Memory: 8 << 20,
		},
		InboundShare: 0.5,
		IdleAfter:    5 * time.Second,
		PerAddress:   8,
	}
}

func (c AdmissionConfig) validate() error {
	if c.InboundShare <= 0 || c.InboundShare > 1 || c.IdleAfter < 0 || c.PerAddress < 1 || c.Peer.ConnsInbound < 1 || c.Peer.StreamsInbound < 1 || c.Peer.Memory < 1<<20 {
		return fmt.Errorf("node: config: admission needs 0 < InboundShare <= 1, IdleAfter >= 0, PerAddress >= 1 and a per-peer limit of at least one inbound connection, one inbound stream and 1 MiB")
	}
	return nil
}

// admission knows who is registered and enforces AdmissionConfig: in the
// resource manager (admissionLimiter), at the connection gate
// (InterceptSecured), and in the connection manager (registered peers are
// valued above outsiders: trimmed after them).
type admission struct {
	cfg        AdmissionConfig
	inboundCap int // unregistered inbound connections at most
	cm         *connManager

	// registered is nil until SetRegistered is first called: until then
	// every peer counts as registered (admission is off).
	registered atomic.Pointer[func(peer.ID) bool]

	mu           sync.Mutex                // serializes SetRegistered and admissions
	unregistered map[network.Conn]struct{} // unregistered inbound connections admitted
	byAddress    map[string]int            // of those, how many from each address (addressKey)
}

var _ connmgr.ConnectionGater = (*admission)(nil)

func newAdmission(cfg AdmissionConfig, systemInbound int, cm *connManager) *admission {
	return &admission{
		cfg:          cfg,
		inboundCap:   max(1, int(float64(systemInbound)*cfg.InboundShare)),
		cm:           cm,
		unregistered: map[network.Conn]struct{}{},
		byAddress:    map[string]int{},
	}
}

// isRegistered reports whether p may use the whole of every limit.
func (a *admission) isRegistered(p peer.ID) bool {
	f := a.registered.Load()
	return f == nil || (*f)(p)
}

// setRegistered sets who is registered, and tags the registered peers the
// node is connected to in the connection manager (the rest lose the tag);
// connected tags each new one.
func (a *admission) setRegistered(f func(peer.ID) bool, connected []peer.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.registered.Store(&f)
	for _, p := range connected {
		a.value(p)
	}
}

// value tags p with registeredValue if it is registered, and untags it if
// not.
func (a *admission) value(p peer.ID) {
	if a.isRegistered(p) {
		a.cm.TagPeer(p, registeredTag, registeredValue)
	} else {
		a.cm.UntagPeer(p, registeredTag)
	}
}

// connected tags a registered peer that connects (a network.Notifiee
// callback).
func (a *admission) connected(_ network.Network, c network.Conn) {
	if a.registered.Load() != nil {
		a.value(c.RemotePeer())
	}
}

// registeredTag is the connection manager's tag of registered peers, and
// registeredValue its value: above any other component's tags, so that
// trims close outsiders' connections before any member's. Members are
// not protected: a neuron in a large subnet cannot hold a connection to
// every member (the neuron protects the ones its role needs, and keeps
// LowWater of the rest).
const (
	registeredTag   = "registered"
	registeredValue = 100
)

// InterceptSecured refuses an inbound connection from an unregistered
// peer at once when its address holds PerAddress already, or when the
// unregistered share is full and no connection can make room;
// InterceptUpgraded decides.
func (a *admission) InterceptSecured(dir network.Direction, p peer.ID, addrs network.ConnMultiaddrs) bool {
	if dir != network.DirInbound || a.isRegistered(p) {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byAddress[addressKey(addrs.RemoteMultiaddr())] >= a.cfg.PerAddress {
		return false
	}
	return len(a.unregistered) < a.inboundCap || a.idlestLocked() != nil
}

// InterceptUpgraded admits an inbound connection from an unregistered peer
// only within the unregistered share, making room by closing the
// unregistered connection idle longest. It runs just before the swarm adds
// the connection, so the share counts exactly what is admitted.
func (a *admission) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	if c.Stat().Direction != network.DirInbound || a.isRegistered(c.RemotePeer()) {
		return true, 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	addr := addressKey(c.RemoteMultiaddr())
	if a.byAddress[addr] >= a.cfg.PerAddress {
		return false, 0
	}
	if len(a.unregistered) >= a.inboundCap {
		idlest := a.idlestLocked()
		if idlest == nil {
			return false, 0
		}
		a.forgetLocked(idlest)
		go idlest.CloseWithError(network.ConnGarbageCollected)
	}
	a.unregistered[c] = struct{}{}
	a.byAddress[addr]++
	return true, 0
}

// forgetLocked uncounts an unregistered connection; a.mu is held.
func (a *admission) forgetLocked(c network.Conn) {
	if _, ok := a.unregistered[c]; !ok {
		return
	}
	delete(a.unregistered, c)
	addr := addressKey(c.RemoteMultiaddr())
	if a.byAddress[addr] <= 1 {
		delete(a.byAddress, addr)
	} else {
		a.byAddress[addr]--
	}
}

// addressKey is the address a connection comes from, as PerAddress counts
// it: the IPv4 address, or the IPv6 address's /56 (what one subscriber is
// commonly given); "" for anything else (one bucket).
func addressKey(m ma.Multiaddr) string {
	ip, err := manet.ToIP(m)
	if err != nil {
		return ""
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(56, 128)).String()
}

// idlestLocked is the unregistered inbound connection without streams
// that has been open longest, if one has been open IdleAfter; a.mu is held.
func (a *admission) idlestLocked() network.Conn {
	var idlest network.Conn
	var since time.Time
	for c := range a.unregistered {
		st := c.Stat()
		if st.NumStreams == 0 && time.Since(st.Opened) >= a.cfg.IdleAfter && (idlest == nil || st.Opened.Before(since)) {
			idlest, since = c, st.Opened
		}
	}
	return idlest
}

// disconnected forgets a closed connection (a network.Notifiee callback).
func (a *admission) disconnected(_ network.Network, c network.Conn) {
	a.mu.Lock()
	a.forgetLocked(c)
	a.mu.Unlock()
}

func (a *admission) InterceptPeerDial(peer.ID) bool               { return true }
func (a *admission) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (a *admission) InterceptAccept(network.ConnMultiaddrs) bool  { return true }

// admissionLimiter gives unregistered peers AdmissionConfig.Peer as their
// per-peer limit (never more than the default's), everyone else the
// default's.
type admissionLimiter struct {
	rcmgr.Limiter
	a          *admission
	unregLimit rcmgr.Limit
}

func newAdmissionLimiter(base rcmgr.Limiter, a *admission) *admissionLimiter {
	def := base.GetPeerLimits("")
	pick := func(want, have int) int {
		if want <= 0 || want > have {
			return have
		}
		return want
	}
	p := a.cfg.Peer
	l := &rcmgr.BaseLimit{
		Streams:         pick(p.Streams, def.GetStreamTotalLimit()),
		StreamsInbound:  pick(p.StreamsInbound, def.GetStreamLimit(network.DirInbound)),
		StreamsOutbound: pick(p.StreamsOutbound, def.GetStreamLimit(network.DirOutbound)),
		Conns:           pick(p.Conns, def.GetConnTotalLimit()),
		ConnsInbound:    pick(p.ConnsInbound, def.GetConnLimit(network.DirInbound)),
		ConnsOutbound:   pick(p.ConnsOutbound, def.GetConnLimit(network.DirOutbound)),
		FD:              pick(p.FD, def.GetFDLimit()),
		Memory:          min(max(p.Memory, 1), def.GetMemoryLimit()),
	}
	return &admissionLimiter{Limiter: base, a: a, unregLimit: l}
}

func (l *admissionLimiter) GetPeerLimits(p peer.ID) rcmgr.Limit {
	if l.a.isRegistered(p) {
		return l.Limiter.GetPeerLimits(p)
	}
	return l.unregLimit
}
