package gossip

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/gossip/pb"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/wallet"
)

// Kind names what a topic carries.
type Kind string

const (
	// Knowledge topics carry announcements of knowledge objects.
	Knowledge Kind = "knowledge"
	// Heartbeat topics carry neurons' status (pb.Heartbeat).
	Heartbeat Kind = "heartbeat"
)

// TopicName is the topic of kind on netuid of chainID:
// /cybertensor/<chain-id>/<netuid>/<kind>/1.
func TopicName(chainID string, netuid uint16, kind Kind) string {
	return fmt.Sprintf("/cybertensor/%s/%d/%s/1", chainID, netuid, kind)
}

// MessageID is the message ID function (see the package doc): the first 20
// bytes of SHA-256(uvarint(len(topic)) ‖ topic ‖ uvarint(len(from)) ‖
// from ‖ data), from being the message's author field (a peer ID's bytes).
func MessageID(topic string, from, data []byte) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(topic)))])
	h.Write([]byte(topic))
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(from)))])
	h.Write(from)
	h.Write(data)
	return string(h.Sum(nil)[:20])
}

// Registry answers who is registered on a subnet; the chain view
// implements it.
type Registry interface {
	// Lookup returns the uid of hotkey on netuid, ok=false if it holds none.
	Lookup(ctx context.Context, netuid uint16, hotkey wallet.Address) (uid uint16, ok bool, err error)
}

// Config configures gossip.
type Config struct {
	ChainID string
	// TimestampWindow is how far a message's timestamp may be from the
	// local clock, either way.
	TimestampWindow time.Duration
	// MaxDataSize bounds a message's data (the encoded Envelope).
	MaxDataSize int
	// LookupTimeout bounds one registration lookup during validation.
	LookupTimeout time.Duration
	// Router is gossipsub's mesh configuration; the zero value means
	// pubsub.DefaultGossipSubParams.
	Router pubsub.GossipSubParams
	// Score sets peer scoring; see DefaultScore.
	Score Score
	// GossipWith, if set, is the peer set: the connected peers gossip
	// runs with. gossipsub opens no stream to a peer it refuses and
	// resets any such peer opens, so a connection kept for other reasons
	// (a validator's queries to a miner) costs gossip nothing. Both ends
	// of a connection should agree, or neither gossips over it; it is
	// asked as a peer connects (and again if gossipsub reopens its stream
	// to the peer), so a change reaches connections made after it. Nil
	// means every peer.
	GossipWith func(peer.ID) bool
	// Registerer, if set, receives gossip's Prometheus metrics.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultConfig allows ±2 minutes of clock difference, 64 KiB messages and
// DefaultRouter's mesh, with DefaultScore.
func DefaultConfig(chainID string) Config {
	return Config{
		ChainID:         chainID,
		TimestampWindow: 2 * time.Minute,
		MaxDataSize:     64 << 10,
		LookupTimeout:   5 * time.Second,
		Router:          DefaultRouter(),
		Score:           DefaultScore(),
		Logger:          slog.Default(),
	}
}

// DefaultRouter is gossipsub's defaults with a sparser mesh: 3 peers (2
// to 6) instead of 6 (5 to 12), gossip (IHAVE) each heartbeat to 3 peers
// outside it or a tenth of them if more (gossipsub's default is a
// quarter), and IDONTWANT only for messages over 16 KiB. A neuron then
// receives each message about 2.3 times instead of 6, and spends half the
// CPU on it: with 1 KiB messages an IDONTWANT costs a write as a duplicate
// does. The author flood-publishes to every subscribed peer, and IHAVE
// gossip repairs what a thin mesh misses (BENCHMARKS.md has the figures).
// A validator connected to its subnet's 224 miners sent IHAVE to 56 of
// them every second at a quarter, and in a 256-neuron subnet IHAVE was
// about as many writes as the messages themselves; at a tenth a
// validator still tells 22 peers a second what it has, and a miner 3.
func DefaultRouter() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi, p.Dscore, p.Dout, p.Dlazy = 3, 2, 6, 1, 0, 3
	p.GossipFactor = 0.1
	p.IDontWantMessageThreshold = 16 << 10
	// One goroutine, not eight, dials the peers a PRUNE's peer exchange
	// names: this router sends none, and takes PX only from peers
	// scoring AcceptPX.
	p.Connectors, p.MaxPendingConnections = 1, 16
	return p
}

func (c Config) validate() error {
	switch {
	case c.ChainID == "":
		return errors.New("gossip: config: ChainID is required")
	case c.TimestampWindow <= 0 || c.LookupTimeout <= 0:
		return errors.New("gossip: config: TimestampWindow and LookupTimeout must be positive")
	case c.MaxDataSize < 256 || c.MaxDataSize > 1<<20:
		return errors.New("gossip: config: MaxDataSize must be within 256 B..1 MiB")
	case c.Logger == nil:
		return errors.New("gossip: config: Logger is required")
	}
	return nil
}

// BodyCheck validates a topic's body once the envelope and the author's
// registration have been checked; an error rejects the message.
type BodyCheck func(author Author, body []byte) error

// Author is a message's proven author.
type Author struct {
	Peer   peer.ID
	Hotkey wallet.Address
	UID    uint16
}

// Message is a delivered message.
type Message struct {
	Author
	// ID is the message ID (raw bytes as a string).
	ID        string
	Timestamp time.Time
	Body      []byte
	// ReceivedFrom is the peer that forwarded it (the author itself when
	// it was published locally or received directly).
	ReceivedFrom peer.ID
}

// Gossip is a neuron's gossipsub router with cybertensor's topics.
type Gossip struct {
	ps      *pubsub.PubSub
	h       host.Host
	self    peer.ID
	reg     Registry
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	tracer  *tracer

	ctx    context.Context
	cancel context.CancelFunc

	// mu guards topics and closed; it is held across Join's calls into
	// pubsub, so pubsub's event loop must never wait for it.
	mu     sync.Mutex
	topics map[string]*Topic
	closed bool

	// scoresMu guards scores, which pubsub's event loop writes.
	scoresMu sync.Mutex
	scores   map[peer.ID]float64

	// hotkeys caches authors' addresses (decompressing a public key
	// costs as much as a tenth of a message's validation).
	hotkeysMu sync.Mutex
	hotkeys   map[peer.ID]wallet.Address
}

// New starts gossipsub on h. h's identity signs what this neuron
// publishes; reg decides whose messages are valid.
func New(h host.Host, reg Registry, cfg Config) (*Gossip, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, errors.New("gossip: a Registry is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Router.D == 0 {
		cfg.Router = DefaultRouter()
	}
	params, thresholds, err := cfg.Score.params()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gossip{h: h, self: h.ID(), reg: reg, cfg: cfg, log: cfg.Logger.With("component", "gossip"),
		ctx: ctx, cancel: cancel, topics: map[string]*Topic{}, scores: map[peer.ID]float64{}, hotkeys: map[peer.ID]wallet.Address{}}
	g.metrics, err = newMetrics(cfg.Registerer)
	if err != nil {
		cancel()
		return nil, err
	}
	g.tracer = newTracer(g.metrics)
	opts := []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(func(m *pubsubpb.Message) string { return MessageID(m.GetTopic(), m.GetFrom(), m.GetData()) }),
		// A replay is a duplicate while seen and too old once forgotten.
		pubsub.WithSeenMessagesTTL(2*cfg.TimestampWindow + time.Minute),
		// The RPC limit leaves room for a full message plus control data.
		pubsub.WithMaxMessageSize(cfg.MaxDataSize + 64<<10),
		pubsub.WithGossipSubParams(cfg.Router),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(g.inspectScores, time.Second),
		// A PRUNE carries no peer exchange: a subnet's members are on
		// chain, and peers use PX only from a peer scoring AcceptPX
		// (100), the most an honest peer earns, and only after long in
		// the mesh. Building it (up to 16 signed peer records a PRUNE)
		// was 2.5% of a 256-neuron localnet's start-up CPU, every
		// record unread.
		pubsub.WithPeerExchange(false),
		// The author sends to every subscribed peer it knows (above the
		// publish threshold), not only its mesh: a message published
		// before the mesh forms still goes out, and eclipsing an author
		// takes all its neighbours.
		pubsub.WithFloodPublish(true),
		pubsub.WithRawTracer(g.tracer),
		pubsub.WithAppSpecificRpcInspector(g.dropEchoes),
		pubsub.WithLogger(slog.New(quietHandler{g.log.Handler()})),
	}
	var ph host.Host = h
	if cfg.GossipWith != nil {
		ph = &peerSetHost{Host: h, with: cfg.GossipWith}
	}
	g.ps, err = pubsub.NewGossipSub(ctx, ph, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("gossip: %w", err)
	}
	return g, nil
}

func (g *Gossip) inspectScores(scores map[peer.ID]float64) {
	g.scoresMu.Lock()
	g.scores = scores
	g.scoresMu.Unlock()
}

// dropEchoes removes from an incoming RPC the messages this neuron
// authored. js-libp2p's gossipsub forwards a message to its author too;
// pubsub would reject each copy as self-originated and count it as an
// invalid message from the honest peer that sent it, graylisting it after
// a few. We published the message, so a genuine copy is a duplicate and a
// forged one (a bad signature under our ID) is one we never want: both go
// unseen and cost the sender nothing, as pubsub's duplicates do. The rest
// of the RPC (other messages, subscriptions, control) is handled as usual.
// It runs on pubsub's event loop, which alone holds the RPC, and allocates
// nothing.
func (g *Gossip) dropEchoes(_ peer.ID, rpc *pubsub.RPC) error {
	n := len(rpc.Publish)
	rpc.Publish = slices.DeleteFunc(rpc.Publish, func(m *pubsubpb.Message) bool { return string(m.GetFrom()) == string(g.self) })
	if d := n - len(rpc.Publish); d > 0 {
		g.tracer.echoes(d)
	}
	return nil
}

// PeerScore is p's score as this neuron last computed it (0 for a peer it
// does not score), and whether p is graylisted: below the graylist
// threshold, so its messages are ignored.
func (g *Gossip) PeerScore(p peer.ID) (score float64, graylisted bool) {
	g.scoresMu.Lock()
	defer g.scoresMu.Unlock()
	s := g.scores[p]
	return s, s < g.cfg.Score.Graylist
}

// Duplicates counts the messages this neuron received again after their
// first copy, on all topics (its own messages sent back to it included):
// the cost of gossip's redundancy.
func (g *Gossip) Duplicates() int64 { return g.tracer.duplicates.Load() }

// Topic is a joined topic: publish to it and subscribe to it.
type Topic struct {
	g      *Gossip
	name   string
	netuid uint16
	kind   Kind
	t      *pubsub.Topic
}

// Join joins the kind topic of netuid, validating bodies with check (nil:
// any body). Joining a topic twice returns the same Topic.
func (g *Gossip) Join(netuid uint16, kind Kind, check BodyCheck) (*Topic, error) {
	name := TopicName(g.cfg.ChainID, netuid, kind)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errors.New("gossip: closed")
	}
	if t, ok := g.topics[name]; ok {
		return t, nil
	}
	if check == nil && kind == Heartbeat {
		check = CheckHeartbeat
	}
	v := &validator{g: g, netuid: netuid, check: check}
	if err := g.ps.RegisterTopicValidator(name, v.validate); err != nil {
		return nil, fmt.Errorf("gossip: validator for %s: %w", name, err)
	}
	pt, err := g.ps.Join(name)
	if err != nil {
		g.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("gossip: join %s: %w", name, err)
	}
	if err := pt.SetScoreParams(g.cfg.Score.topicParams(kind)); err != nil {
		pt.Close()
		g.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("gossip: score params for %s: %w", name, err)
	}
	t := &Topic{g: g, name: name, netuid: netuid, kind: kind, t: pt}
	g.topics[name] = t
	return t, nil
}

// Name is the topic's name.
func (t *Topic) Name() string { return t.name }

// Peers are the peers known to be subscribed to the topic.
func (t *Topic) Peers() []peer.ID { return t.t.ListPeers() }

// MeshPeers is the number of peers in this neuron's mesh for the topic:
// the peers it forwards every message to.
func (t *Topic) MeshPeers() int { return t.g.tracer.meshPeers(t.name) }

// Publish signs and publishes body, timestamped now. It goes through the
// same validation as a received message, so a neuron that is not
// registered on the subnet cannot publish.
func (t *Topic) Publish(ctx context.Context, body []byte) error {
	data, err := proto.Marshal(&pb.Envelope{TimestampMs: uint64(t.g.cfg.Now().UnixMilli()), Body: body})
	if err != nil {
		return fmt.Errorf("gossip: encode: %w", err)
	}
	if len(data) > t.g.cfg.MaxDataSize {
		return fmt.Errorf("gossip: message of %d bytes exceeds the %d-byte limit", len(data), t.g.cfg.MaxDataSize)
	}
	if err := t.t.Publish(ctx, data); err != nil {
		return fmt.Errorf("gossip: publish on %s: %w", t.name, err)
	}
	return nil
}

// Subscription delivers a topic's valid messages.
type Subscription struct {
	s *pubsub.Subscription
}

// Subscribe subscribes to the topic. Cancel the subscription when done.
func (t *Topic) Subscribe() (*Subscription, error) {
	s, err := t.t.Subscribe(pubsub.WithBufferSize(256))
	if err != nil {
		return nil, fmt.Errorf("gossip: subscribe %s: %w", t.name, err)
	}
	return &Subscription{s: s}, nil
}

// Next blocks for the next message, until ctx ends or the subscription is
// cancelled.
func (s *Subscription) Next(ctx context.Context) (Message, error) {
	m, err := s.s.Next(ctx)
	if err != nil {
		return Message{}, err
	}
	v, ok := m.ValidatorData.(validated)
	if !ok {
		return Message{}, errors.New("gossip: message delivered without validation")
	}
	return Message{Author: v.author, ID: m.ID, Timestamp: v.at, Body: v.body, ReceivedFrom: m.ReceivedFrom}, nil
}

// Cancel ends the subscription.
func (s *Subscription) Cancel() { s.s.Cancel() }

// Close leaves every topic and stops gossipsub. It is safe to call twice.
func (g *Gossip) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	topics := g.topics
	g.topics = nil
	g.mu.Unlock()
	for name, t := range topics {
		g.ps.UnregisterTopicValidator(name)
		t.t.Close() // fails only while subscriptions are open; the context below ends them
	}
	g.cancel()
	g.metrics.unregister()
	return nil
}

// validated is what validation hands to delivery.
type validated struct {
	author Author
	at     time.Time
	body   []byte
}

// validator checks one topic's messages.
type validator struct {
	g      *Gossip
	netuid uint16
	check  BodyCheck
}

func (v *validator) validate(ctx context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	res, reason := v.run(ctx, m)
	if res != pubsub.ValidationAccept {
		v.g.metrics.invalid(reason)
		v.g.log.Debug("gossip message not accepted", "topic", m.GetTopic(), "from", m.ReceivedFrom, "author", m.GetFrom(), "reason", reason)
	}
	return res
}

// Reasons a message is not accepted, as metric labels.
const (
	reasonSize         = "size"
	reasonDecode       = "decode"
	reasonAuthor       = "author"
	reasonTimestamp    = "timestamp"
	reasonUnregistered = "unregistered"
	reasonLookup       = "lookup_failed"
	reasonBody         = "body"
)

func (v *validator) run(ctx context.Context, m *pubsub.Message) (pubsub.ValidationResult, string) {
	data := m.GetData()
	if len(data) > v.g.cfg.MaxDataSize {
		return pubsub.ValidationReject, reasonSize
	}
	var env pb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		return pubsub.ValidationReject, reasonDecode
	}
	author := m.GetFrom()
	hotkey, err := v.g.hotkey(author)
	if err != nil {
		return pubsub.ValidationReject, reasonAuthor
	}
	at := time.UnixMilli(int64(min(env.TimestampMs, 1<<62)))
	if d := v.g.cfg.Now().Sub(at); d > v.g.cfg.TimestampWindow || d < -v.g.cfg.TimestampWindow {
		return pubsub.ValidationIgnore, reasonTimestamp
	}
	lctx, cancel := context.WithTimeout(ctx, v.g.cfg.LookupTimeout)
	defer cancel()
	uid, ok, err := v.g.reg.Lookup(lctx, v.netuid, hotkey)
	if err != nil {
		return pubsub.ValidationIgnore, reasonLookup // our failure, not the sender's
	}
	if !ok {
		return pubsub.ValidationReject, reasonUnregistered
	}
	a := Author{Peer: author, Hotkey: hotkey, UID: uid}
	if v.check != nil {
		if err := v.check(a, env.Body); err != nil {
			return pubsub.ValidationReject, reasonBody
		}
	}
	m.ValidatorData = validated{author: a, at: at, body: env.Body}
	return pubsub.ValidationAccept, ""
}

// hotkey is the address of the hotkey inside id, cached.
func (g *Gossip) hotkey(id peer.ID) (wallet.Address, error) {
	g.hotkeysMu.Lock()
	a, ok := g.hotkeys[id]
	g.hotkeysMu.Unlock()
	if ok {
		return a, nil
	}
	a, err := protocol.HotkeyAddress(id)
	if err != nil {
		return a, err
	}
	g.hotkeysMu.Lock()
	if len(g.hotkeys) >= 16384 { // bounded against a flood of authors
		clear(g.hotkeys)
	}
	g.hotkeys[id] = a
	g.hotkeysMu.Unlock()
	return a, nil
}

// CheckHeartbeat accepts a heartbeat body that decodes and claims the
// author's own uid.
func CheckHeartbeat(a Author, body []byte) error {
	hb, err := DecodeHeartbeat(body)
	if err != nil {
		return err
	}
	if hb.Uid != uint32(a.UID) {
		return fmt.Errorf("gossip: heartbeat claims uid %d, the author holds %d", hb.Uid, a.UID)
	}
	return nil
}

// DecodeHeartbeat decodes a heartbeat body.
func DecodeHeartbeat(body []byte) (*pb.Heartbeat, error) {
	var hb pb.Heartbeat
	if err := proto.Unmarshal(body, &hb); err != nil {
		return nil, fmt.Errorf("gossip: heartbeat: %w", err)
	}
	if hb.Uid > 0xFFFF {
		return nil, fmt.Errorf("gossip: heartbeat: uid %d out of range", hb.Uid)
	}
	if len(hb.Protocols) > 32 || len(hb.Role) > 32 || len(hb.Agent) > 128 {
		return nil, errors.New("gossip: heartbeat: too many protocols or too long a field")
	}
	return &hb, nil
}

// EncodeHeartbeat encodes a heartbeat body.
func EncodeHeartbeat(hb *pb.Heartbeat) ([]byte, error) {
	return proto.Marshal(hb)
}
