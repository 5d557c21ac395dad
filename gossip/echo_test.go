package gossip

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/gossip/pb"
	"github.com/cybertensor/cybertensor/node"
)

// rawPeer speaks gossipsub 1.1 by hand, as another implementation would:
// it records the messages a neuron sends it and sends the neuron whatever
// RPCs the test writes.
type rawPeer struct {
	n *node.Node

	mu     sync.Mutex
	out    network.Stream // to the neuron; nil until dial
	hello  bool           // the neuron opened its stream to us
	got    []*pubsubpb.Message
	prunes []*pubsubpb.ControlPrune
}

func startRawPeer(t *testing.T, k int) *rawPeer {
	t.Helper()
	n, err := node.New(context.Background(), node.DefaultTestConfig(key(k)))
	if err != nil {
		t.Fatal(err)
	}
	rp := &rawPeer{n: n}
	n.SetStreamHandler(pubsub.GossipSubID_v11, rp.read)
	t.Cleanup(func() { n.Close() }) // resets the streams, ending read
	return rp
}

// read reads the neuron's RPCs until the stream ends.
func (rp *rawPeer) read(s network.Stream) {
	defer s.Reset()
	r := bufio.NewReader(s)
	for {
		var rpc pubsubpb.RPC
		if err := (protodelim.UnmarshalOptions{MaxSize: 1 << 20}).UnmarshalFrom(r, &rpc); err != nil {
			return
		}
		rp.mu.Lock()
		rp.hello = true
		rp.got = append(rp.got, rpc.Publish...)
		rp.prunes = append(rp.prunes, rpc.GetControl().GetPrune()...)
		rp.mu.Unlock()
	}
}

// dial opens the stream to nr's neuron and subscribes to its topic.
func (rp *rawPeer) dial(t *testing.T, nr *neuron) {
	t.Helper()
	ctx := context.Background()
	if err := rp.n.Connect(ctx, peer.AddrInfo{ID: nr.n.ID(), Addrs: nr.n.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := rp.n.NewStream(ctx, nr.n.ID(), pubsub.GossipSubID_v11)
	if err != nil {
		t.Fatal(err)
	}
	rp.mu.Lock()
	rp.out = s
	rp.mu.Unlock()
	rp.send(t, &pubsubpb.RPC{Subscriptions: []*pubsubpb.RPC_SubOpts{{Subscribe: proto.Bool(true), Topicid: proto.String(nr.t.Name())}}})
	waitFor(t, 30*time.Second, "the neuron to see the raw peer subscribed", func() bool {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		return rp.hello && slices.Contains(nr.t.Peers(), rp.n.ID())
	})
}

func (rp *rawPeer) send(t *testing.T, rpc *pubsubpb.RPC) {
	t.Helper()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if _, err := protodelim.MarshalTo(rp.out, rpc); err != nil {
		t.Fatal(err)
	}
}

func (rp *rawPeer) received() []*pubsubpb.Message {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return slices.Clone(rp.got)
}

// freshScores waits for two score snapshots after the call: pubsub hands
// each to the inspector on a goroutine of its own, so the first may have
// been computed before the call; the second was computed after it.
func freshScores(t *testing.T, g *Gossip) {
	t.Helper()
	for range 2 {
		g.scoresMu.Lock()
		g.scores = nil
		g.scoresMu.Unlock()
		waitFor(t, 30*time.Second, "a score snapshot", func() bool {
			g.scoresMu.Lock()
			defer g.scoresMu.Unlock()
			return g.scores != nil
		})
	}
}

// An honest peer that forwards a neuron's messages back to it, as
// js-libp2p's gossipsub does, is not penalized for it: pubsub would reject
// each copy as self-originated, counting it as an invalid message, and
// graylist the peer after six heartbeats.
func TestEchoOfOwnMessagesNotPenalized(t *testing.T) {
	const count = 20
	reg := newRegistry()
	k := key(600)
	reg.add(k, 0)
	nr := start(t, k, reg, nil)
	knowledge, err := nr.g.Join(1, Knowledge, nil)
	if err != nil {
		t.Fatal(err)
	}
	echo := startRawPeer(t, 601)
	echo.dial(t, nr)

	ctx := context.Background()
	for i := range count {
		if err := nr.t.Publish(ctx, heartbeat(t, 0, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	// The peer forwards them once all have arrived: the neuron sends
	// nothing more to a peer whose score falls below the publish threshold.
	waitFor(t, 30*time.Second, "the peer to receive every message", func() bool { return len(echo.received()) == count })
	msgs := echo.received()
	for _, m := range msgs {
		echo.send(t, &pubsubpb.RPC{Publish: []*pubsubpb.Message{m}})
	}
	// Once more in one RPC, with a subscription that must survive the
	// echoes' removal: the neuron handles a stream's RPCs in order, so when
	// it sees the subscription it has handled every echo.
	echo.send(t, &pubsubpb.RPC{
		Publish:       msgs,
		Subscriptions: []*pubsubpb.RPC_SubOpts{{Subscribe: proto.Bool(true), Topicid: proto.String(knowledge.Name())}},
	})
	waitFor(t, 30*time.Second, "the subscription sent with the echoes", func() bool {
		return slices.Contains(knowledge.Peers(), echo.n.ID())
	})
	freshScores(t, nr.g)
	if s, gray := nr.g.PeerScore(echo.n.ID()); s < 0 || gray {
		t.Fatalf("echoing peer scored %v (graylisted %v)", s, gray)
	}
	if d := nr.g.Duplicates(); d != 2*count {
		t.Errorf("%d duplicates counted, want the %d echoes", d, 2*count)
	}
}

// forged is a heartbeat that author (registered as uid) did not sign: the
// signature is noise.
func forged(t *testing.T, topic string, author peer.ID, uid uint32, seq uint64) *pubsubpb.Message {
	t.Helper()
	data, err := proto.Marshal(&pb.Envelope{TimestampMs: uint64(time.Now().UnixMilli()), Body: heartbeat(t, uid, seq)})
	if err != nil {
		t.Fatal(err)
	}
	sig := sha256.Sum256(data)
	return &pubsubpb.Message{From: []byte(author), Data: data, Seqno: binary.BigEndian.AppendUint64(nil, seq),
		Topic: proto.String(topic), Signature: append(sig[:], sig[:]...)}
}

// Dropping echoes spares no forger: a message under a registered author's
// ID with a bad signature still costs the peer that sent it its score, and
// one under the receiver's own ID is dropped unseen; neither is delivered.
func TestForgedSignaturesRejected(t *testing.T) {
	reg := newRegistry()
	k := key(610)
	reg.add(k, 0)
	nr := start(t, k, reg, nil)
	author := key(611)
	reg.add(author, 1)
	forger := startRawPeer(t, 612)
	forger.dial(t, nr)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	c := &collector{}
	wg.Add(1)
	go c.run(ctx, nr.sub, &wg)
	defer func() { cancel(); wg.Wait() }()

	forger.send(t, &pubsubpb.RPC{Publish: []*pubsubpb.Message{forged(t, nr.t.Name(), nr.n.ID(), 0, 1)}})
	forger.send(t, &pubsubpb.RPC{Publish: []*pubsubpb.Message{forged(t, nr.t.Name(), author.PublicKey().PeerID(), 1, 2)}})
	waitFor(t, 30*time.Second, "the forger to be penalized", func() bool {
		s, _ := nr.g.PeerScore(forger.n.ID())
		return s < 0
	})
	if d := nr.g.Duplicates(); d != 1 {
		t.Errorf("%d duplicates counted, want the message under our own ID", d)
	}
	if c.mu.Lock(); len(c.msgs) != 0 {
		t.Errorf("delivered %d forged messages", len(c.msgs))
	}
	c.mu.Unlock()
}

// dropEchoes removes exactly the messages under the neuron's own ID, keeps
// the rest of the RPC in order, and allocates nothing.
func TestDropEchoes(t *testing.T) {
	self, other := key(620).PublicKey().PeerID(), key(621).PublicKey().PeerID()
	g := &Gossip{self: self, tracer: newTracer(nil)}
	msg := func(from peer.ID, seq byte) *pubsubpb.Message {
		return &pubsubpb.Message{From: []byte(from), Seqno: []byte{seq}}
	}
	a, b := msg(other, 1), msg(other, 3)
	all := []*pubsubpb.Message{msg(self, 0), a, msg(self, 2), b, msg(self, 4)}
	subs := []*pubsubpb.RPC_SubOpts{{Subscribe: proto.Bool(true), Topicid: proto.String("t")}}
	ctl := &pubsubpb.ControlMessage{Ihave: []*pubsubpb.ControlIHave{{TopicID: proto.String("t")}}}
	rpc := &pubsub.RPC{RPC: pubsubpb.RPC{Publish: slices.Clone(all), Subscriptions: subs, Control: ctl}}
	if err := g.dropEchoes(other, rpc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rpc.Publish, []*pubsubpb.Message{a, b}) || !slices.Equal(rpc.Subscriptions, subs) || rpc.Control != ctl {
		t.Fatalf("left %v", rpc)
	}
	if d := g.Duplicates(); d != 3 {
		t.Fatalf("%d duplicates counted, want 3", d)
	}

	buf := make([]*pubsubpb.Message, len(all))
	for name, in := range map[string][]*pubsubpb.Message{"none": {a, b}, "some": all, "empty": nil} {
		if n := testing.AllocsPerRun(100, func() {
			rpc.Publish = buf[:copy(buf, in)]
			_ = g.dropEchoes(other, rpc)
		}); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

// A neuron's PRUNE carries no peer exchange (SPEC §4.3): the members are
// on chain, and building signed peer records for every PRUNE cost a large
// subnet's start-up CPU that no receiver used.
func TestPruneCarriesNoPeerExchange(t *testing.T) {
	reg := newRegistry()
	small := func(c *Config) {
		c.Router.D, c.Router.Dlo, c.Router.Dhi, c.Router.Dscore, c.Router.Dout, c.Router.Dlazy = 2, 1, 2, 1, 0, 2
	}
	hub := start(t, key(0), reg, small)
	reg.add(hub.k, 0)
	for i := 1; i <= 3; i++ {
		k := key(i)
		reg.add(k, uint16(i))
		connect(t, start(t, k, reg, nil), hub)
	}
	waitFor(t, 30*time.Second, "the hub's mesh to fill (Dhi 2)", func() bool { return hub.t.MeshPeers() >= 2 })
	// A peer that dialed the hub asks into its full mesh: the hub prunes
	// it, and with peer exchange the PRUNE would name the hub's other
	// peers (signed records of each).
	rp := startRawPeer(t, 9)
	rp.dial(t, hub)
	rp.send(t, &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Graft: []*pubsubpb.ControlGraft{{TopicID: proto.String(hub.t.Name())}}}})
	waitFor(t, 30*time.Second, "the hub's PRUNE", func() bool {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		return len(rp.prunes) > 0
	})
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, p := range rp.prunes {
		if p.GetTopicID() != hub.t.Name() || len(p.GetPeers()) > 0 || p.GetBackoff() == 0 {
			t.Fatalf("PRUNE for %q with %d exchanged peers and a backoff of %d s, want the topic, none and a backoff", p.GetTopicID(), len(p.GetPeers()), p.GetBackoff())
		}
	}
}
