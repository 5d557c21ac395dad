package neuron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// MinerConfig configures a miner.
type MinerConfig struct {
	Netuid uint16
	// Listen are the libp2p listen addresses.
	Listen []string
	// Host sets the data dir and metrics of the miner's libp2p host.
	Host HostConfig
	// Synapses it serves (nil: text.generate only), e.g. a subnet spec's:
	// text.generate answers with Generator, text.chat with Chatter,
	// text.embed with Embedder; storage.prove proves holding
	// the subnet's knowledge objects, which the miner replicates
	// (KnowledgeDir and the swarm are required); compute.run does compute
	// jobs. A custom synapse of Spec (spec version 2) is answered with
	// Caller or, if it has a prompt, with Chatter or Generator (see
	// Caller).
	Synapses []string
	// Spec, if set, is the subnet's spec: its custom synapses (request
	// and answer schemas, size limits, prompt) are served as it declares
	// them. SpecMinerConfig sets it. With a knowledge library (KnowledgeDir
	// and the swarm) the miner follows the spec on chain: when the owner
	// sets a new one, at the tempo boundary it takes effect, the miner
	// fetches it (by its CID, the hash) and serves its synapses from then
	// on, with the same backends; a spec it cannot fetch or serve is
	// logged and the old synapses stay.
	Spec *subnet.Spec
	// Caller answers every custom synapse (nil: the Generator, if it is
	// one, as the exec backend is): it gets the synapse's name and the
	// request body, which the miner checked against the request schema,
	// and returns the answer (a JSON string for a text answer), which the
	// miner checks against the answer schema before sending it. Without
	// one, a custom synapse with a prompt is answered by Chatter (else
	// Generator, e.g. the OpenAI backend) with the prompt rendered from
	// the request as the user message; one without a prompt is refused
	// at start.
	Caller SynapseCaller
	// Handlers serve synapses with handlers of the caller's own, beside or
	// instead of the built-in ones (e.g. an adversary's in a test network).
	Handlers map[string]protocol.Handler
	// Generator answers "text.generate".
	Generator backend.Generator
	// Learner learns the announced text objects of the knowledge library
	// (nil: the Generator, if it is one). StartMiners gives miners that
	// share a Generator one Learner that learns each object once.
	Learner Learner
	// Chatter answers "text.chat" and Embedder "text.embed" (nil: the
	// Generator, if it is one; the retrieval and OpenAI backends are).
	Chatter  backend.Chatter
	Embedder backend.Embedder
	// Server tunes the query server.
	Server protocol.ServerConfig
	// Swarm sets the miner's DHT membership and heartbeats.
	Swarm SwarmConfig
	// KnowledgeDir, if set (and the swarm enabled), holds the miner's
	// knowledge library: it follows the subnet's announcements and, when
	// Generator is a Learner (the built-in retrieval model is), learns
	// every announced text object, so it answers from what the subnet
	// publishes.
	KnowledgeDir string
	// ReplicaBudget bounds the bytes of others' objects a storage miner
	// keeps: past it, new announcements are not replicated.
	ReplicaBudget uint64
	// FailureLogEvery bounds the log of backend failures: per synapse, at
	// most one line this often, saying how many failures went unlogged
	// since the last (every failure is counted in the metrics).
	FailureLogEvery time.Duration
	Logger          *slog.Logger
}

// DefaultReplicaBudget is a storage miner's default ReplicaBudget.
const DefaultReplicaBudget = 1 << 30

// DefaultMinerConfig listens on a random loopback TCP port.
func DefaultMinerConfig(netuid uint16, g backend.Generator) MinerConfig {
	return MinerConfig{Netuid: netuid, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Generator: g, Server: protocol.DefaultServerConfig(), Swarm: DefaultSwarmConfig(),
		ReplicaBudget: DefaultReplicaBudget, FailureLogEvery: DefaultFailureLogEvery, Logger: slog.Default()}
}

// SpecMinerConfig is DefaultMinerConfig serving spec's synapses, built-in
// and custom (version 2); g is needed for text.generate and for custom
// synapses answered from their prompt.
func SpecMinerConfig(netuid uint16, spec *subnet.Spec, g backend.Generator) MinerConfig {
	cfg := DefaultMinerConfig(netuid, g)
	cfg.Synapses = spec.SynapseNames()
	cfg.Spec = spec
	return cfg
}

// Miner serves a subnet's synapses.
type Miner struct {
	h       host.Host
	srv     *protocol.Server
	swarm   *Swarm
	lib     *knowledge.Library
	stored  atomic.Pointer[knowledge.Library] // lib, for storage.prove
	uid     uint16
	served  atomic.Int64 // queries answered OK
	failed  atomic.Int64 // queries the backend failed
	refused atomic.Int64 // queries answered BAD_REQUEST, NOT_FOUND, …
	// metrics count served and failed queries by synapse (nil: none);
	// failLog rate-limits the log of failures.
	metrics *minerMetrics
	failLog *failureLog
	unlock  func() // releases the state directories' locks
	// spec is the spec served (nil without one); replicating whether the
	// miner keeps others' objects (it started serving storage.prove).
	spec        atomic.Pointer[subnet.Spec]
	replicating bool
	// cancel and wg stop the goroutine following the spec on chain.
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// handlers are the handlers of the synapses cfg serves, each counting the
// queries it answers OK and those its backend fails (logged, rate-limited);
// replicate is whether the built-in storage.prove is among them.
func (m *Miner) handlers(cfg MinerConfig) (_ map[string]protocol.Handler, replicate bool, _ error) {
	out, replicate, err := synapseHandlers(cfg, m.stored.Load)
	if err != nil {
		return nil, false, err
	}
	log := cfg.Logger.With("component", "miner")
	for syn, h := range out {
		out[syn] = protocol.HandlerFunc(func(ctx context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
			err := h.Serve(ctx, r, w)
			m.outcome(ctx, syn, err, log)
			return err
		})
	}
	return out, replicate, nil
}

// synapseHandlers are the handlers of the synapses cfg serves, with its
// backends; storage.prove proves from the library stored returns.
func synapseHandlers(cfg MinerConfig, stored func() *knowledge.Library) (_ map[string]protocol.Handler, replicate bool, _ error) {
	synapses := cfg.Synapses
	if synapses == nil {
		synapses = []string{"text.generate"}
	}
	out := map[string]protocol.Handler{}
	for _, syn := range synapses {
		if h, ok := cfg.Handlers[syn]; ok {
			out[syn] = h
			continue
		}
		switch syn {
		case "text.generate":
			if cfg.Generator == nil {
				return nil, false, errors.New("neuron: miner config: text.generate needs a Generator")
			}
			out[syn] = backend.TextGenerate(cfg.Generator)
		case subnet.SynapseChat:
			c := cfg.Chatter
			if c == nil {
				c, _ = cfg.Generator.(backend.Chatter)
			}
			if c == nil {
				return nil, false, errors.New("neuron: miner config: text.chat needs a Chatter")
			}
			out[syn] = textChat(c)
		case subnet.SynapseEmbed:
			e := cfg.Embedder
			if e == nil {
				e, _ = cfg.Generator.(backend.Embedder)
			}
			if e == nil {
				return nil, false, errors.New("neuron: miner config: text.embed needs an Embedder")
			}
			out[syn] = textEmbed(e)
		case "storage.prove":
			if cfg.KnowledgeDir == "" || cfg.Swarm.Disabled {
				return nil, false, errors.New("neuron: miner config: storage.prove needs a KnowledgeDir and the swarm")
			}
			out[syn], replicate = storageProve(stored), true
		case "compute.run":
			out[syn] = computeRun()
		default:
			var custom *subnet.Synapse
			if cfg.Spec != nil {
				custom = cfg.Spec.Synapse(syn)
			}
			if custom == nil || custom.Builtin() {
				return nil, false, fmt.Errorf("neuron: miner config: no built-in handler for %q (give one in Handlers, or a Spec declaring it)", syn)
			}
			b := customBackendOf(cfg)
			if err := b.check(custom); err != nil {
				return nil, false, err
			}
			out[syn] = customSynapse(custom, b)
		}
	}
	for syn, h := range cfg.Handlers {
		out[syn] = h
	}
	return out, replicate, nil
}

// customBackendOf is what answers cfg's custom synapses (see
// MinerConfig.Caller).
func customBackendOf(cfg MinerConfig) customBackend {
	b := customBackend{caller: cfg.Caller, chat: cfg.Chatter, gen: cfg.Generator}
	if b.caller == nil {
		b.caller, _ = cfg.Generator.(SynapseCaller)
	}
	if b.chat == nil {
		b.chat, _ = cfg.Generator.(backend.Chatter)
	}
	return b
}

// StartMiner starts the miner's host and query server, registers the
// hotkey (if needed), joins the swarm and opens the knowledge library,
// and last serves its axon on chain. Everything local comes first: the
// locks of its state directories (ErrInUse if another process runs a
// neuron on them) and every listener, so a miner that cannot run fails
// before it touches the chain, and the axon it serves is listening.
//
// cold may be nil when the hotkey is registered already: a server that
// holds only the hotkey (ErrNotRegistered if it is not).
func StartMiner(ctx context.Context, c chainlink.Chain, cold, hot *wallet.PrivateKey, cfg MinerConfig) (*Miner, error) {
	m, err := prepareMiner(c, hot, cfg)
	if err != nil {
		return nil, err
	}
	uid, err := ensureRegistered(ctx, c, cold, hot, cfg.Netuid)
	if err == nil {
		err = m.start(ctx, c, hot, uid, cfg)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// prepareMiner does what a miner does before it touches the chain: its
// handlers and metrics, the locks of its state directories and its host
// listening with its query server. Close releases it all.
func prepareMiner(c chainlink.Reader, hot *wallet.PrivateKey, cfg MinerConfig) (_ *Miner, err error) {
	if cfg.Logger == nil {
		return nil, errors.New("neuron: miner config: a Logger is required")
	}
	if err := cfg.Swarm.validate(); err != nil {
		return nil, err
	}
	if cfg.FailureLogEvery <= 0 {
		return nil, errors.New("neuron: miner config: FailureLogEvery must be positive")
	}
	m := &Miner{failLog: newFailureLog(cfg.FailureLogEvery, time.Now)}
	handlers, replicate, err := m.handlers(cfg)
	if err != nil {
		return nil, err
	}
	if m.metrics, err = newMinerMetrics(cfg.Host.Registerer); err != nil {
		return nil, err
	}
	if m.unlock, err = lockDirs(cfg.Host.DataDir, cfg.KnowledgeDir); err != nil {
		m.metrics.unregister()
		return nil, err
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	cfg.Host.Listen = cfg.Listen
	if m.h, err = newHost(hot, cfg.Host, cfg.Swarm); err != nil {
		return nil, err
	}
	cfg.Server.Logger = cfg.Logger
	if m.srv, err = protocol.NewServer(m.h, hot, NewChainCallers(c), handlers, cfg.Server); err != nil {
		return nil, err
	}
	m.replicating = replicate
	return m, nil
}

// start runs a prepared miner registered as uid: it serves its axon on
// chain, joins the swarm, opens the knowledge library and follows the
// spec. On error the caller closes m.
func (m *Miner) start(ctx context.Context, c chainlink.Chain, hot *wallet.PrivateKey, uid uint16, cfg MinerConfig) (err error) {
	m.uid = uid
	// The axon first: a neuron whose axon is on chain need not announce
	// itself on the DHT when it joins the swarm.
	if err := serveAxon(ctx, c, hot, cfg.Netuid, m.h, []string{string(protocol.QueryID)}); err != nil {
		return err
	}
	if !cfg.Swarm.Disabled {
		if m.swarm, err = JoinSwarm(ctx, m.h, hot, c, cfg.Netuid, m.uid, "miner", []string{string(protocol.QueryID)}, cfg.Swarm, cfg.Host.Registerer, cfg.Logger); err != nil {
			return err
		}
		if cfg.KnowledgeDir != "" {
			learn := cfg.Learner
			if learn == nil {
				learn, _ = cfg.Generator.(Learner)
			}
			var keep uint64
			if m.replicating {
				keep = subnet.MaxStorageObject
			}
			if m.lib, err = m.swarm.OpenReplica(cfg.KnowledgeDir, hot, learn, keep, cfg.ReplicaBudget); err != nil {
				return err
			}
			m.stored.Store(m.lib)
		}
	}
	if cfg.Spec != nil {
		m.spec.Store(cfg.Spec)
		if m.lib != nil {
			// It follows the spec on chain: new specs come from the
			// knowledge library.
			fctx, cancel := context.WithCancel(context.Background())
			heads, err := c.SubscribeHeads(fctx)
			if err != nil {
				cancel()
				return fmt.Errorf("neuron: following the subnet's spec: %w", err)
			}
			m.cancel = cancel
			f := &specFollower{m: m, chain: c, cfg: cfg, lib: m.lib, log: cfg.Logger.With("component", "miner", "uid", m.uid)}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				f.follow(fctx, heads)
			}()
		}
	}
	cfg.Logger.Info("miner serving", "uid", m.uid, "peer", m.h.ID())
	return nil
}

// ID is the miner's peer ID.
func (m *Miner) ID() peer.ID { return m.h.ID() }

// Host is the miner's libp2p host.
func (m *Miner) Host() host.Host { return m.h }

// UID is the miner's uid.
func (m *Miner) UID() uint16 { return m.uid }

// Addrs are the miner's full addresses.
func (m *Miner) Addrs() []string { return FullAddrs(m.h) }

// QueriesServed counts the queries the miner answered OK: not those its
// backend failed, nor those refused as bad requests.
func (m *Miner) QueriesServed() int64 { return m.served.Load() }

// QueriesRefused counts the queries the miner's handlers refused with a
// status that is not the miner's failure: BAD_REQUEST, UNAUTHORIZED,
// FORBIDDEN or NOT_FOUND (e.g. a storage challenge for data not held).
func (m *Miner) QueriesRefused() int64 { return m.refused.Load() }

// BackendFailures counts the queries the miner's backend failed: answered
// INTERNAL, UNAVAILABLE or another error of the miner's own, or not in
// time.
func (m *Miner) BackendFailures() int64 { return m.failed.Load() }

// Spec is the spec whose synapses the miner serves: MinerConfig.Spec, or
// the one its subnet switched to on chain since (nil without a spec).
func (m *Miner) Spec() *subnet.Spec { return m.spec.Load() }

// Library is the miner's knowledge library; nil without KnowledgeDir.
func (m *Miner) Library() *knowledge.Library { return m.lib }

// Swarm is the miner's swarm membership; nil if disabled.
func (m *Miner) Swarm() *Swarm { return m.swarm }

// Close stops serving and releases the state directories.
func (m *Miner) Close() error {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.swarm != nil {
		m.swarm.Close()
	}
	if m.srv != nil {
		m.srv.Close()
	}
	var err error
	if m.h != nil {
		err = m.h.Close()
	}
	if m.unlock != nil {
		m.unlock()
	}
	m.metrics.unregister()
	return err
}
