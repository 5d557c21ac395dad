package gossip

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts gossip traffic for Prometheus; nil when no Registerer is
// configured.
type metrics struct {
	reg        prometheus.Registerer
	delivered  *prometheus.CounterVec
	duplicates prometheus.Counter
	rejected   *prometheus.CounterVec
	notValid   *prometheus.CounterVec
	mesh       *prometheus.GaugeVec
	rpcOut     prometheus.Counter
	rpcDropped prometheus.Counter
	collectors []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		reg: reg,
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "gossip",
			Name: "delivered_total", Help: "Valid messages delivered, by topic."}, []string{"topic"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "gossip",
			Name: "duplicates_total", Help: "Messages received again after the first copy."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "gossip",
			Name: "rejected_total", Help: "Messages pubsub did not deliver, by pubsub's reason."}, []string{"reason"}),
		notValid: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "gossip",
			Name: "validation_failures_total", Help: "Messages failing cybertensor's validation, by check."}, []string{"check"}),
		mesh: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "cybertensor", Subsystem: "gossip",
			Name: "mesh_peers", Help: "Peers in the mesh, by topic."}, []string{"topic"}),
		rpcOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "gossip",
			Name: "rpc_sent_total", Help: "RPCs sent to peers."}),
		rpcDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "gossip",
			Name: "rpc_dropped_total", Help: "RPCs dropped because a peer's queue was full."}),
	}
	m.collectors = []prometheus.Collector{m.delivered, m.duplicates, m.rejected, m.notValid, m.mesh, m.rpcOut, m.rpcDropped}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("gossip: metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *metrics) invalid(check string) {
	if m != nil {
		m.notValid.WithLabelValues(check).Inc()
	}
}

// tracer is gossip's pubsub.RawTracer: it keeps each topic's mesh, so
// callers can see when the mesh has formed, and feeds the metrics (if
// any). pubsub calls it from its event loop, so it only counts.
type tracer struct {
	m          *metrics
	duplicates atomic.Int64
	mu         sync.Mutex
	mesh       map[string]map[peer.ID]struct{}
}

func newTracer(m *metrics) *tracer {
	return &tracer{m: m, mesh: map[string]map[peer.ID]struct{}{}}
}

// meshPeers is the number of peers in topic's mesh.
func (t *tracer) meshPeers(topic string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mesh[topic])
}

func (t *tracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	if t.mesh[topic] == nil {
		t.mesh[topic] = map[peer.ID]struct{}{}
	}
	t.mesh[topic][p] = struct{}{}
	n := len(t.mesh[topic])
	t.mu.Unlock()
	if t.m != nil {
		t.m.mesh.WithLabelValues(topic).Set(float64(n))
	}
}

func (t *tracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	delete(t.mesh[topic], p)
	n := len(t.mesh[topic])
	t.mu.Unlock()
	if t.m != nil {
		t.m.mesh.WithLabelValues(topic).Set(float64(n))
	}
}

func (t *tracer) Leave(topic string) {
	t.mu.Lock()
	delete(t.mesh, topic)
	t.mu.Unlock()
	if t.m != nil {
		t.m.mesh.DeleteLabelValues(topic)
	}
}

func (t *tracer) DeliverMessage(msg *pubsub.Message) {
	if t.m != nil {
		t.m.delivered.WithLabelValues(msg.GetTopic()).Inc()
	}
}

func (t *tracer) RejectMessage(_ *pubsub.Message, reason string) {
	if t.m != nil {
		t.m.rejected.WithLabelValues(reason).Inc()
	}
}

func (t *tracer) DuplicateMessage(*pubsub.Message) {
	t.duplicates.Add(1)
	if t.m != nil {
		t.m.duplicates.Inc()
	}
}

// echoes counts n copies of this neuron's own messages that a peer sent
// back and dropEchoes removed before pubsub saw them: duplicates too.
func (t *tracer) echoes(n int) {
	t.duplicates.Add(int64(n))
	if t.m != nil {
		t.m.duplicates.Add(float64(n))
	}
}

func (t *tracer) SendRPC(*pubsub.RPC, peer.ID) {
	if t.m != nil {
		t.m.rpcOut.Inc()
	}
}

func (t *tracer) DropRPC(*pubsub.RPC, peer.ID) {
	if t.m != nil {
		t.m.rpcDropped.Inc()
	}
}

func (t *tracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *tracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *tracer) Join(string)                                          {}
func (t *tracer) ValidateMessage(*pubsub.Message)                      {}
func (t *tracer) ThrottlePeer(peer.ID)                                 {}
func (t *tracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *tracer) UndeliverableMessage(*pubsub.Message)                 {}
