package neuron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/dht"
	"github.com/cybertensor/cybertensor/gossip"
	"github.com/cybertensor/cybertensor/gossip/pb"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/wallet"
)

// Agent names this software in heartbeats.
const Agent = "cybertensor/0.1"

// SwarmConfig configures a neuron's place in the swarm: the DHT, through
// which it finds its subnet's members, and gossip, on which it sends and
// hears heartbeats.
type SwarmConfig struct {
	// Disabled keeps the neuron off the DHT and gossip (queries still
	// work: they dial the addresses served on chain).
	Disabled bool
	// HeartbeatEvery is how often the neuron publishes its heartbeat in a
	// subnet of up to 120 members; in a larger one the period grows in
	// proportion (64 s at 256 members with 30 s), so that each member
	// receives at most 120 heartbeats a period.
	HeartbeatEvery time.Duration
	// DiscoverEvery is how often it counts the subnet's members it is
	// connected to and, below TargetPeers, dials more: members serving
	// an axon on chain first, then members found on the DHT. Below
	// TargetPeers it looks again sooner (from 200 ms, doubling). A miner
	// in a subnet with at least TargetPeers validators dials no member
	// for its first DiscoverEvery: they connect to it (want).
	DiscoverEvery time.Duration
	// TargetPeers is how many members discovery keeps the neuron
	// connected to and gossiping with (GossipValidators): enough for
	// gossip's mesh to reach the whole subnet. Connections made for
	// other reasons (a validator's queries, a fetch) count too, so a
	// validator, connected to the miners it queries, dials none.
	TargetPeers int
	// GossipValidators is how many of its subnet's validators (members
	// serving no axon) a miner gossips with: those with the smallest
	// hash of the two hotkeys, so that both ends agree without a word.
	// Validators hold a connection to every miner they query, and
	// gossipsub keeps three goroutines and two streams on every
	// connection it runs over; in a 256-uid subnet with 32 validators a
	// validator gossips with about 84 miners instead of 224. At 8 a
	// miner, the least informed neuron of a 256-neuron localnet heard
	// 94–97% of the others' heartbeats (every pair: 100%; 12: 99%). The
	// miners a validator gossips with are also those it keeps connected
	// when it lets go of the others between their turns
	// (ValidatorConfig.KeepConnectedWithin): at 2, about 14 in that
	// subnet, and the miners dial each other to reach TargetPeers (but
	// not in their first DiscoverEvery: a 128-neuron localnet's least
	// informed neuron heard 61% of the others in its first minute).
	// Members of one kind always gossip with each other, and a neuron
	// gossiping with fewer than TargetPeers members dials more (a miner
	// whose chosen validators are not running dials miners). 0: every
	// pair gossips.
	GossipValidators int
	// MaxDial bounds the members dialed per discovery round.
	MaxDial int
	// LowWater, HighWater and GracePeriod are the host's connection
	// budget while the neuron is in the swarm: above HighWater
	// connections, the host closes the least valuable (outsiders first,
	// then members outside gossip's mesh) down to LowWater, sparing
	// connections younger than GracePeriod and the members the neuron's
	// role exchanges with, which the swarm protects: a miner's validators
	// (members serving no axon, who query it) and a validator's miners
	// (which it queries; only those it gossips with while it lets go of
	// the others between their turns, ValidatorConfig.KeepConnectedWithin).
	// So a miner of a 256-uid subnet holds its validators and LowWater
	// others, not a connection to every member that ever dialed it or
	// answered a search.
	LowWater, HighWater int
	GracePeriod         time.Duration
	// RegistryTTL is how long a registration lookup is cached.
	RegistryTTL time.Duration
	// Bootstrap peers (full multiaddrs), beyond the chain's axons.
	Bootstrap []string
	// ReannounceEvery is how often the knowledge the neuron published is
	// announced again, for neurons that joined since.
	ReannounceEvery time.Duration
}

// DefaultSwarmConfig heartbeats every 30 s and rediscovers every minute,
// keeping 8 members connected (a miner gossiping with 12 validators at
// most); above 16 connections the host trims to 8
// besides the members the neuron's role keeps, sparing connections younger
// than 10 s.
func DefaultSwarmConfig() SwarmConfig {
	return SwarmConfig{HeartbeatEvery: 30 * time.Second, DiscoverEvery: time.Minute, TargetPeers: 8, GossipValidators: 12, MaxDial: 16, RegistryTTL: 12 * time.Second,
		ReannounceEvery: 10 * time.Minute, LowWater: 8, HighWater: 16, GracePeriod: 10 * time.Second}
}

func (c SwarmConfig) validate() error {
	if c.Disabled {
		return nil
	}
	if c.HeartbeatEvery <= 0 || c.DiscoverEvery <= 0 || c.TargetPeers < 1 || c.MaxDial < 1 || c.RegistryTTL <= 0 || c.ReannounceEvery <= 0 {
		return errors.New("neuron: swarm config: HeartbeatEvery, DiscoverEvery, TargetPeers, MaxDial, RegistryTTL and ReannounceEvery must be positive")
	}
	if c.GossipValidators < 0 {
		return errors.New("neuron: swarm config: GossipValidators must not be negative")
	}
	if c.LowWater < c.TargetPeers || c.HighWater < c.LowWater || c.GracePeriod < 0 {
		// Below TargetPeers, trims would close what discovery dials.
		return fmt.Errorf("neuron: swarm config: need TargetPeers (%d) <= LowWater (%d) <= HighWater (%d) and GracePeriod >= 0", c.TargetPeers, c.LowWater, c.HighWater)
	}
	return nil
}

// Heard is the last heartbeat heard from a neuron.
type Heard struct {
	UID       uint16
	Role      string
	Block     uint64
	Protocols []string
	At        time.Time
}

// Swarm is a neuron's membership of its subnet's swarm.
type Swarm struct {
	h        host.Host
	registry *ChainRegistry
	dht      *dht.DHT
	gossip   *gossip.Gossip
	beats    *gossip.Topic
	c        chainlink.Reader
	cfg      SwarmConfig
	netuid   uint16
	uid      uint16
	role     string
	protos   []string
	log      *slog.Logger
	ctx      context.Context // ends on Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeMu  sync.Once

	mu    sync.Mutex
	heard map[peer.ID]Heard
	libs  []*knowledge.Library
	// unconnected is when dial first found each member with a smaller
	// peer ID not connected (see yieldDial).
	unconnected map[peer.ID]time.Time

	fetched atomic.Int64 // announced objects fetched and learned

	// registered is the subnet's hotkeys, which the host (if it is a
	// registrar) gives the whole of its limits.
	registered registeredHotkeys
	// kept are the peers keep protects in the host's connection manager
	// (nil until the first keep), and notifiee tells keepConnected of new
	// connections.
	kept     map[peer.ID]struct{}
	notifiee network.Notifiee
	// letsGo is set while the neuron lets go of the members of the other
	// kind it does not gossip with (letGoOfOtherKind).
	letsGo atomic.Bool
	// joined is when the neuron joined; a miner may leave its members to
	// its validators until they had time to connect (want).
	joined time.Time
}

// JoinSwarm puts the neuron on host h (identity hot) into netuid's swarm:
// it connects to members serving axons on chain and to cfg.Bootstrap,
// starts the DHT and announces membership, joins the subnet's heartbeat
// topic, and heartbeats until Close.
// Gossip's metrics go to reg, if set.
func JoinSwarm(ctx context.Context, h host.Host, hot *wallet.PrivateKey, c chainlink.Reader, netuid, uid uint16, role string, protocols []string, cfg SwarmConfig, reg prometheus.Registerer, log *slog.Logger) (*Swarm, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	registry := NewChainRegistry(c, cfg.RegistryTTL)
	s := &Swarm{h: h, c: c, cfg: cfg, registry: registry, netuid: netuid, uid: uid, role: role, protos: protocols,
		log: log.With("component", "swarm"), heard: map[peer.ID]Heard{}, unconnected: map[peer.ID]time.Time{}}
	for _, a := range cfg.Bootstrap {
		info, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("neuron: bootstrap %q: %w", a, err)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := h.Connect(cctx, *info); err != nil {
			s.log.Warn("bootstrap peer unreachable", "peer", info.ID, "err", err)
		}
		cancel()
	}
	s.joined = time.Now()
	mg, _ := s.metagraph(ctx)
	s.dial(ctx, s.gossipable(axonInfos(mg)), s.want(s.target(), mg, s.joined), s.axonOnChain(mg))

	dcfg := dht.DefaultConfig(c.ChainID())
	dcfg.Logger = log
	var err error
	if s.dht, err = dht.New(h, hot, registry, dcfg); err != nil {
		return nil, err
	}
	gcfg := gossip.DefaultConfig(c.ChainID())
	gcfg.Logger, gcfg.Registerer = log, reg
	gcfg.GossipWith = s.gossipsWith
	if s.gossip, err = gossip.New(h, registry, gcfg); err != nil {
		s.dht.Close()
		return nil, err
	}
	if s.beats, err = s.gossip.Join(netuid, gossip.Heartbeat, nil); err != nil {
		s.Close()
		return nil, err
	}
	sub, err := s.beats.Subscribe()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.notifiee = &network.NotifyBundle{ConnectedF: s.keepConnected}
	h.Network().Notify(s.notifiee)
	s.wg.Add(3)
	go s.listen(s.ctx, sub)
	go s.heartbeat(s.ctx)
	go s.discover(s.ctx)
	return s, nil
}

// Gossip is the neuron's gossip router (to join more topics).
func (s *Swarm) Gossip() *gossip.Gossip { return s.gossip }

// DHT is the neuron's DHT.
func (s *Swarm) DHT() *dht.DHT { return s.dht }

// Heard returns the last heartbeat of every neuron heard from, by peer.
func (s *Swarm) Heard() map[peer.ID]Heard {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[peer.ID]Heard, len(s.heard))
	for p, h := range s.heard {
		out[p] = h
	}
	return out
}

func (s *Swarm) listen(ctx context.Context, sub *gossip.Subscription) {
	defer s.wg.Done()
	defer sub.Cancel()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if m.Peer == s.h.ID() {
			continue
		}
		hb, err := gossip.DecodeHeartbeat(m.Body)
		if err != nil {
			continue // validation decoded it already
		}
		s.mu.Lock()
		_, known := s.heard[m.Peer]
		s.heard[m.Peer] = Heard{UID: m.UID, Role: hb.Role, Block: hb.Block, Protocols: hb.Protocols, At: m.Timestamp}
		s.mu.Unlock()
		if !known {
			s.log.Info("heard neuron", "uid", m.UID, "role", hb.Role, "peer", m.Peer, "via", m.ReceivedFrom)
		}
	}
}

// heartbeat publishes the neuron's status soon after the mesh has a peer
// (or after one period without one), then every HeartbeatEvery, at a
// moment of its own (heartbeatWait). Every member verifies and forwards
// every heartbeat, so neurons that start together (a machine's miners, a
// localnet, a subnet after an outage) must not publish together: in a
// 256-neuron localnet, whose heartbeats went out within a second of each
// other every period, that second was ~65,000 signature checks and
// ~180,000 stream writes, and the validators' queries in it timed out.
func (s *Swarm) heartbeat(ctx context.Context) {
	defer s.wg.Done()
	next := time.NewTimer(s.cfg.HeartbeatEvery)
	defer next.Stop()
	first := time.NewTicker(min(100*time.Millisecond, s.cfg.HeartbeatEvery))
	defer first.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-first.C:
			// The mesh, not a peer subscribed: a message that reaches
			// a neighbour before its mesh forms goes no further (IHAVE
			// goes only to peers outside the mesh, and the neighbour
			// grafts them in the same heartbeat).
			if s.beats.MeshPeers() == 0 {
				continue
			}
			first.Stop()
			next.Reset(heartbeatWait(0, s.registered.size(), s.cfg.HeartbeatEvery, rand.Float64()))
			continue
		case <-next.C:
		}
		first.Stop()
		sent++
		next.Reset(heartbeatWait(sent, s.registered.size(), s.cfg.HeartbeatEvery, rand.Float64()))
		if err := s.publishHeartbeat(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("heartbeat not published", "err", err)
		}
	}
}

// heartbeatMembers is the largest subnet whose members heartbeat every
// SwarmConfig.HeartbeatEvery (heartbeatPeriod).
const heartbeatMembers = 120

// heartbeatPeriod is how often each member of a subnet of members
// publishes its heartbeat: every, in a subnet of up to heartbeatMembers,
// and in proportion to its size in a larger one (64 s at 256 members with
// every 30 s). Every member checks and forwards every heartbeat, so at a
// fixed period each one's cost of hearing the others grows with the
// subnet (a 256-neuron localnet spent about half its CPU on gossip at
// 30 s); this way a member receives at most heartbeatMembers a period (4
// a second at 30 s).
func heartbeatPeriod(every time.Duration, members int) time.Duration {
	if members <= heartbeatMembers {
		return every
	}
	return every * time.Duration(members) / heartbeatMembers
}

// heartbeatSpread is the part of the first heartbeat's spread each member
// of a subnet of up to heartbeatMembers adds: 16 members' first
// heartbeats spread over 640 ms.
const heartbeatSpread = 40 * time.Millisecond

// heartbeatWait is how long a neuron of a subnet of members waits before
// its next heartbeat, having sent sent of them, given a uniform draw u in
// [0, 1); the period is heartbeatPeriod's. The first (sent 0, timed from
// when the mesh has a peer) waits a random part of 40 ms a member in a
// subnet of up to heartbeatMembers, so that a small subnet hears a new
// member at once, and a random part of the period in a larger one; the
// second a random part of the period, which sets the neuron's phase; the
// rest a period. Phases drawn independently spread a subnet's heartbeats
// evenly over the period, however its neurons started.
//
// A large subnet's first heartbeats are spread over a whole period
// because, sent together, they land while its neurons connect: each one
// is checked and forwarded by every member, and 256 of them within 10 s
// (40 ms a member) were ~15,000 gossip writes a second just when a
// 256-neuron localnet's validators were connecting to their miners, on
// cores already full. Spread over the period they cost what the steady
// state does, and the validators' first queries reach their miners
// sooner (BENCHMARKS.md).
func heartbeatWait(sent, members int, every time.Duration, u float64) time.Duration {
	every = heartbeatPeriod(every, members)
	var spread time.Duration
	switch {
	case sent == 0 && members <= heartbeatMembers:
		spread = min(time.Duration(members)*heartbeatSpread, every)
	case sent <= 1:
		spread = every
	default:
		return every
	}
	return max(time.Duration(u*float64(spread)), time.Millisecond)
}

func (s *Swarm) publishHeartbeat(ctx context.Context) error {
	var block uint64
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if head, err := s.c.Head(hctx); err == nil {
		block = head.Height
	}
	body, err := gossip.EncodeHeartbeat(&pb.Heartbeat{
		Uid: uint32(s.uid), Role: s.role, Block: block, Protocols: s.protos, Agent: Agent,
		Peers: uint32(len(s.h.Network().Peers())),
	})
	if err != nil {
		return err
	}
	return s.beats.Publish(hctx, body)
}

// discover keeps the neuron connected to TargetPeers of its subnet's
// members, and findable: a neuron whose axon is not on chain (a validator
// serves none) announces its membership on the DHT, retrying until it has
// peers to announce to. Members serving an axon are dialed first; the DHT
// is searched only for what the chain cannot answer. Each search on it is
// a walk across the network, and when every neuron searched for every
// member each round, the walks connected every neuron to nearly every
// other (a 64-neuron localnet held 74 connections a neuron, and Kademlia
// took half the CPU). The host admits registered peers by the metagraph
// discover reads: at least every RegistryTTL, and within 200 ms again
// after a change (a subnet starting), so that a validator registered a
// block after this neuron looked is not held to an outsider's limits.
func (s *Swarm) discover(ctx context.Context) {
	defer s.wg.Done()
	joined := false
	var joining retryPace
	paced := false
	delay := 200 * time.Millisecond
	for {
		mg, changed := s.metagraph(ctx)
		if !paced && mg != nil {
			// Spread by the subnet's size, known from its metagraph.
			joining, paced = membershipPace(time.Now(), s.registered.size(), s.cfg.DiscoverEvery), true
		}
		s.keep()
		onChain := s.axonOnChain(mg)
		findable := joined || onChain
		// Announcing needs a peer in the routing table (it fails at once
		// without one), and after a failure waits its turn (retryPace).
		if !findable && mg != nil && s.dht.RoutingTableSize() > 0 && joining.due(time.Now()) {
			jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			began := time.Now()
			err := s.dht.Join(jctx, s.netuid, s.uid, s.protos)
			cancel()
			joined = err == nil
			findable = joined
			if err != nil && ctx.Err() == nil {
				// An attempt that timed out walking waits at least as
				// long as it took: the network was too busy for it.
				joining.failed(time.Now(), max(joinRetryFirst, time.Since(began)), s.cfg.DiscoverEvery)
				s.log.Debug("DHT membership not announced yet", "err", err, "retry_in", joining.wait)
			}
		}
		if need := s.want(s.target()-s.connectedMembers(), mg, time.Now()); need > 0 {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			// Members find this neuron where it finds them: from the
			// axons on chain if its own is there, on the DHT if it joined.
			if got := s.dial(dctx, s.gossipable(axonInfos(mg)), need, onChain); got < need {
				s.dial(dctx, s.gossipable(s.dht.Members(dctx, s.netuid)), need-got, findable)
			}
			cancel()
		}
		switch {
		case changed:
			// Neurons are registering (a subnet starting): the host
			// admits them by this set, so look again soon.
			delay = 200 * time.Millisecond
		case findable && s.connectedMembers() >= s.target():
			delay = s.cfg.DiscoverEvery
		default:
			delay = min(2*delay, s.cfg.DiscoverEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(delay, s.cfg.RegistryTTL)):
		}
	}
}

// joinRetryFirst is the wait after a first failed attempt to announce
// membership on the DHT; it doubles with each failure after.
const joinRetryFirst = 2 * time.Second

// retryPace spaces the attempts at something that failed: the first is
// due at next (at once if zero), and each failure doubles the wait before
// the next (from first, at most most). Announcing membership is a walk
// across the DHT and a record put; on a busy network each failed attempt
// timed out after walking (dialing ~40 peers), and discover, which runs
// every 200 ms while neurons register, retried at once: 256 neurons made
// 182 attempts in a minute, none of which succeeded.
type retryPace struct {
	next time.Time
	wait time.Duration
}

// due reports whether an attempt may be made at now.
func (p *retryPace) due(now time.Time) bool { return !now.Before(p.next) }

// failed records an attempt that failed at now.
func (p *retryPace) failed(now time.Time, first, most time.Duration) {
	p.wait = min(max(2*p.wait, first), most)
	p.next = now.Add(p.wait)
}

// membershipPace is the pace of membership announcements for a neuron of
// a subnet of members neurons, starting at now: the first waits a random
// part of 100 ms a member, at most most, so that neurons started together
// (a localnet, a data centre's restart) do not all walk the DHT at once
// while their connections are being made, and a small subnet's are
// findable within a moment. In a 256-neuron localnet the 32 validators'
// announcements at start all timed out (0 of 104 attempts succeeded), each
// after dialing ~80 peers.
func membershipPace(now time.Time, members int, most time.Duration) retryPace {
	spread := min(time.Duration(members)*100*time.Millisecond, most)
	return retryPace{next: now.Add(rand.N(spread + 1))}
}

// metagraph reads the subnet's metagraph and updates the registered set
// the host admits by, reporting whether that changed; nil if the chain
// does not answer.
func (s *Swarm) metagraph(ctx context.Context) (mg *chain.Metagraph, changed bool) {
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mg, err := s.c.Metagraph(mctx, s.netuid, true)
	if err != nil {
		s.log.Debug("metagraph unavailable for discovery", "err", err)
		return nil, false
	}
	s.registry.Observe(s.netuid, mg)
	changed = s.registered.update(mg)
	if r, ok := s.h.(registrar); ok && changed {
		r.SetRegistered(s.registered.registered)
	}
	return mg, changed
}

// want is how many of need members discovery dials at now: none while a
// miner waits for its validators. A neuron serving an axon on chain, in a
// subnet with at least TargetPeers members serving none (validators, which
// connect to every miner they query, a few rounds ahead), leaves its
// members to them until DiscoverEvery after it joined: they alone will be
// the members it keeps connected. In a 256-neuron localnet the miners'
// start-up dials to TargetPeers other miners each were ~2,000 connections,
// each a handshake, a kad-dht check and a gossip hello, most trimmed again
// by the connection budget once the validators came, while the validators'
// own connections to their miners waited for the cores. With fewer
// validators, after the wait, or with none, discovery dials as usual: the
// validators' gossip meshes (a handful of peers each) do not reach every
// miner (a 16-neuron localnet with one validator and no miner dialing
// another, the least-informed miner heard half the subnet), and a miner its
// validators never reach still joins. The bar is TargetPeers as configured,
// not target's smaller figure for a small subnet: there, two validators and
// a client's hotkey, seen before the other miners registered, held back a
// miner's dials, and its first Provide found an empty routing table.
func (s *Swarm) want(need int, mg *chain.Metagraph, now time.Time) int {
	return dialsWanted(need, s.axonOnChain(mg), s.registered.servingNone(), s.cfg.TargetPeers, now.Sub(s.joined), s.cfg.DiscoverEvery)
}

// dialsWanted is want's rule for a neuron that joined since ago: need, or
// none for a miner (its axon on chain) of a subnet with validators (members
// serving no axon) at least target within wait of joining.
func dialsWanted(need int, miner bool, validators, target int, since, wait time.Duration) int {
	if miner && validators >= target && since < wait {
		return 0
	}
	return need
}

// axonOnChain reports whether mg holds this neuron's axon.
func (s *Swarm) axonOnChain(mg *chain.Metagraph) bool {
	if mg == nil || int(s.uid) >= len(mg.Axons) || mg.Axons[s.uid] == nil {
		return false
	}
	return mg.Axons[s.uid].PeerID == s.h.ID().String()
}

// keepTag protects the members keep keeps in the host's connection
// manager.
const keepTag = "cybertensor:role"

// keep protects, in the host's connection manager, the connected members
// of the other kind than this neuron (by the last metagraph): a miner,
// serving an axon, keeps the members serving none (the validators, which
// query it); a validator keeps the members serving one (the miners, which
// it queries, each within a few rounds: too often to dial them anew), or
// only the miners it gossips with while it lets go of the others between
// their turns (letGoOfOtherKind). Peers that left or changed kind lose the
// protection. The host trims the rest to its budget (SwarmConfig.LowWater).
// discover calls it at least every RegistryTTL; a member connecting
// meanwhile is kept as it connects (keepConnected), before the host's grace
// period for it ends.
func (s *Swarm) keep() {
	peers := s.h.Network().Peers()
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[peer.ID]struct{}, len(s.kept))
	for _, p := range peers {
		if s.keeps(p) {
			next[p] = struct{}{}
		}
	}
	cm := s.h.ConnManager()
	for p := range s.kept {
		if _, ok := next[p]; ok {
			continue
		}
		if s.keeps(p) && s.h.Network().Connectedness(p) == network.Connected {
			next[p] = struct{}{} // connected since peers was read
			continue
		}
		cm.Unprotect(p, keepTag)
	}
	for p := range next {
		if _, ok := s.kept[p]; !ok {
			cm.Protect(p, keepTag)
		}
	}
	s.kept = next
}

// keepConnected keeps a member that connects if keep would (a
// network.Notifiee callback).
func (s *Swarm) keepConnected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.kept[p]; ok || s.kept == nil || !s.keeps(p) {
		return
	}
	s.kept[p] = struct{}{}
	s.h.ConnManager().Protect(p, keepTag)
}

// keeps reports whether p is a member of the other kind than this neuron
// that keep protects; false before the first metagraph.
func (s *Swarm) keeps(p peer.ID) bool {
	if s.registered.size() == 0 {
		return false
	}
	_, mine := s.registered.member(s.h.ID())
	member, axon := s.registered.member(p)
	return member && axon != mine && (!s.letsGo.Load() || s.gossipsWith(p))
}

// letGoOfOtherKind says whether the neuron lets go of its connections to
// members of the other kind it does not gossip with (a validator whose
// miners' turns are far apart: ValidatorConfig.KeepConnectedWithin): then
// keep protects only those it gossips with. The next keep applies it.
func (s *Swarm) letGoOfOtherKind(letGo bool) { s.letsGo.Store(letGo) }

// unkeep ends keep's protection of p, now rather than at the next keep
// (which would end it too, as keeps(p) is false).
func (s *Swarm) unkeep(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.kept[p]; ok {
		delete(s.kept, p)
		s.h.ConnManager().Unprotect(p, keepTag)
	}
}

// target is how many members discovery keeps connected: TargetPeers, or
// every other member of a smaller subnet (which otherwise would search the
// DHT for members that do not exist every round).
func (s *Swarm) target() int {
	if n := s.registered.size(); n > 0 {
		return min(s.cfg.TargetPeers, n-1)
	}
	return s.cfg.TargetPeers
}

// connectedMembers counts the registered members the neuron gossips
// with: the heartbeat topic's peers. Not its connections: a miner
// connected to 32 validators gossips with the 12 GossipValidators picks
// of them, or fewer where those are not running, or where the two ends'
// views of the subnet differed as they connected (gossipsub asks the peer
// set once a connection, and each end refuses what it would not open).
func (s *Swarm) connectedMembers() int {
	n := 0
	for _, p := range s.beats.Peers() {
		if s.registered.registered(p) {
			n++
		}
	}
	return n
}

// gossipsWith reports whether gossip runs between this neuron and p (see
// SwarmConfig.GossipValidators).
func (s *Swarm) gossipsWith(p peer.ID) bool {
	return s.registered.gossipPair(s.h.ID(), p, s.cfg.GossipValidators)
}

// gossipable are the members of infos the neuron would gossip with
// (gossipsWith): discovery dials only those, as a connection to any other
// member would not count towards TargetPeers.
func (s *Swarm) gossipable(infos []peer.AddrInfo) []peer.AddrInfo {
	return slices.DeleteFunc(infos, func(info peer.AddrInfo) bool { return !s.gossipsWith(info.ID) })
}

// axonInfos are the axons mg holds with a usable address (axonInfo).
func axonInfos(mg *chain.Metagraph) []peer.AddrInfo {
	if mg == nil {
		return nil
	}
	var infos []peer.AddrInfo
	for uid := range mg.Axons {
		if info, ok := axonInfo(mg, uid); ok {
			infos = append(infos, info)
		}
	}
	return infos
}

// yieldDial: of two members that find each other at once (as every
// neuron of a subnet does from the axons on chain), the one with the
// smaller peer ID dials, and the other waits this long for it before
// dialing itself. Two simultaneous dials both succeed, and a pair would
// hold two connections: a 16-neuron localnet held 388 connection ends for
// 240 peerings.
const yieldDial = 2 * time.Second

// dial connects, concurrently, to up to want (at most MaxDial) of infos
// not yet connected, chosen at random, and returns how many it connected
// to. Which it may dial yet is dialable's choice, yielding to members
// with a smaller peer ID only if they can find this neuron where it found
// them: a validator serves no axon, so miners find it only on the DHT,
// and when it waited for miners it found from their axons to dial it, a
// validator that queries nobody stayed unconnected past its subnet's
// first heartbeats.
func (s *Swarm) dial(ctx context.Context, infos []peer.AddrInfo, want int, yield bool) int {
	s.mu.Lock()
	todo := dialable(infos, s.h.ID(), s.h.Network().Connectedness, s.unconnected, time.Now(), yield)
	s.mu.Unlock()
	rand.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })
	if n := min(want, s.cfg.MaxDial); len(todo) > n {
		todo = todo[:max(n, 0)]
	}
	var wg sync.WaitGroup
	var connected atomic.Int32
	for _, info := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.h.Connect(ctx, info); err != nil {
				s.log.Debug("member unreachable", "peer", info.ID, "err", err)
				return
			}
			connected.Add(1)
		}()
	}
	wg.Wait()
	return int(connected.Load())
}

// dialable returns the members of infos, other than self, with an
// address and not connected. With yield, a member with a smaller peer ID
// than self is left to dial this neuron for yieldDial from when it was
// first found unconnected (recorded in unconnected, and forgotten once
// connected).
func dialable(infos []peer.AddrInfo, self peer.ID, connectedness func(peer.ID) network.Connectedness, unconnected map[peer.ID]time.Time, now time.Time, yield bool) []peer.AddrInfo {
	var todo []peer.AddrInfo
	for _, info := range infos {
		if info.ID == self || len(info.Addrs) == 0 {
			continue
		}
		if connectedness(info.ID) == network.Connected {
			delete(unconnected, info.ID)
			continue
		}
		if yield && info.ID < self {
			first, ok := unconnected[info.ID]
			if !ok {
				unconnected[info.ID] = now
			}
			if !ok || now.Sub(first) < yieldDial {
				continue
			}
		}
		todo = append(todo, info)
	}
	return todo
}

// Close leaves the swarm and stops every goroutine it started.
func (s *Swarm) Close() error {
	s.closeMu.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		if s.notifiee != nil {
			s.h.Network().StopNotify(s.notifiee)
			s.mu.Lock()
			for p := range s.kept {
				s.h.ConnManager().Unprotect(p, keepTag)
			}
			s.kept = nil
			s.mu.Unlock()
		}
		for _, l := range s.libs {
			l.Close()
		}
		if s.gossip != nil {
			s.gossip.Close()
		}
		s.dht.Close()
	})
	return nil
}

// ChainRegistry answers registration lookups from the chain, caching each
// answer for a while so that gossip validation does not query the chain
// for every message. It implements gossip.Registry and dht.Registry.
type ChainRegistry struct {
	c   chainlink.Reader
	ttl time.Duration

	mu    sync.Mutex
	cache map[registryKey]registryEntry
}

type registryKey struct {
	netuid uint16
	hotkey wallet.Address
}

type registryEntry struct {
	uid     uint16
	ok      bool
	expires time.Time
}

// NewChainRegistry caches answers from c for ttl.
func NewChainRegistry(c chainlink.Reader, ttl time.Duration) *ChainRegistry {
	return &ChainRegistry{c: c, ttl: ttl, cache: map[registryKey]registryEntry{}}
}

// Observe takes the members of mg, netuid's metagraph just read from the
// chain, as answers, fresh for the registry's ttl: a neuron reads
// its subnet's metagraph at least that often anyway (discover), and hears
// every member's heartbeat every 30 s, asking the chain about each sender
// once its answer had expired — at 256 neurons, thousands of lookups a
// second queued on the embedded chain's lock. Hotkeys mg does not hold are
// looked up as before.
func (r *ChainRegistry) Observe(netuid uint16, mg *chain.Metagraph) {
	if mg == nil {
		return
	}
	expires := time.Now().Add(r.ttl)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache)+len(mg.Hotkeys) > maxRegistryEntries {
		clear(r.cache)
	}
	for uid, h := range mg.Hotkeys {
		r.cache[registryKey{netuid, h}] = registryEntry{uid: uint16(uid), ok: true, expires: expires}
	}
}

// maxRegistryEntries bounds the registry's cache against a flood of
// unknown hotkeys.
const maxRegistryEntries = 65536

// Lookup returns the uid hotkey holds on netuid. While the chain cannot
// answer, an expired answer still serves.
func (r *ChainRegistry) Lookup(ctx context.Context, netuid uint16, hotkey wallet.Address) (uint16, bool, error) {
	k := registryKey{netuid, hotkey}
	now := time.Now()
	r.mu.Lock()
	e, hit := r.cache[k]
	r.mu.Unlock()
	if hit && now.Before(e.expires) {
		return e.uid, e.ok, nil
	}
	n, err := r.c.Neuron(ctx, netuid, hotkey)
	switch {
	case errors.Is(err, chainlink.ErrNotFound):
		e = registryEntry{expires: now.Add(r.ttl)}
	case err != nil:
		if hit {
			return e.uid, e.ok, nil
		}
		return 0, false, err
	default:
		e = registryEntry{uid: n.UID, ok: true, expires: now.Add(r.ttl)}
	}
	r.mu.Lock()
	if len(r.cache) >= maxRegistryEntries {
		clear(r.cache)
	}
	r.cache[k] = e
	r.mu.Unlock()
	return e.uid, e.ok, nil
}
