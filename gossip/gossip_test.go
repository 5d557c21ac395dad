package gossip

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/gossip/pb"
	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
	)
}

func key(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("gossip test %d", i)))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	return k
}

// registry is a Registry backed by a map; everyone=true registers anyone
// (a neuron lying to itself about the chain).
type registry struct {
	mu       sync.Mutex
	m        map[wallet.Address]uint16
	everyone bool
}

func newRegistry() *registry { return &registry{m: map[wallet.Address]uint16{}} }

func (r *registry) add(k *wallet.PrivateKey, uid uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[k.PublicKey().Address()] = uid
}

func (r *registry) Lookup(_ context.Context, _ uint16, h wallet.Address) (uint16, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	uid, ok := r.m[h]
	return uid, ok || r.everyone, nil
}

type neuron struct {
	n   *node.Node
	g   *Gossip
	t   *Topic
	sub *Subscription
	k   *wallet.PrivateKey
}

// start starts a neuron with key k on loopback, gossiping with reg's view
// of the chain, joined to netuid 1's heartbeat topic and subscribed.
func start(t *testing.T, k *wallet.PrivateKey, reg Registry, edit func(*Config)) *neuron {
	t.Helper()
	n, err := node.New(context.Background(), node.DefaultTestConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig("gossip-test")
	cfg.Logger = slog.New(slog.DiscardHandler)
	if edit != nil {
		edit(&cfg)
	}
	g, err := New(n, reg, cfg)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	tp, err := g.Join(1, Heartbeat, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := tp.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	nr := &neuron{n: n, g: g, t: tp, sub: sub, k: k}
	t.Cleanup(func() {
		sub.Cancel()
		g.Close()
		n.Close()
	})
	return nr
}

func connect(t *testing.T, a, b *neuron) {
	t.Helper()
	if err := a.n.Connect(context.Background(), peer.AddrInfo{ID: b.n.ID(), Addrs: b.n.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func heartbeat(t *testing.T, uid uint32, block uint64) []byte {
	t.Helper()
	b, err := EncodeHeartbeat(&pb.Heartbeat{Uid: uid, Role: "miner", Block: block})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// collect reads messages from s in the background until ctx ends.
type collector struct {
	mu   sync.Mutex
	msgs []Message
}

func (c *collector) run(ctx context.Context, s *Subscription, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		m, err := s.Next(ctx)
		if err != nil {
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
	}
}

func (c *collector) from(p peer.ID) []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Message
	for _, m := range c.msgs {
		if m.Peer == p {
			out = append(out, m)
		}
	}
	return out
}

// swarm starts count registered neurons (uid = index) connected in a ring
// with chords, so most pairs are not directly connected.
func swarm(t *testing.T, count int, reg *registry) []*neuron {
	t.Helper()
	ns := make([]*neuron, count)
	for i := range ns {
		k := key(i)
		reg.add(k, uint16(i))
		ns[i] = start(t, k, reg, nil)
	}
	for i := range ns {
		connect(t, ns[i], ns[(i+1)%count])
		connect(t, ns[i], ns[(i+7)%count])
	}
	for i, n := range ns {
		waitFor(t, 30*time.Second, fmt.Sprintf("neuron %d to form its mesh", i), func() bool { return n.t.MeshPeers() >= 2 })
	}
	return ns
}

// A message from a registered neuron reaches every subscriber, most of
// them over several hops, with its author and uid proven.
func TestMessageReachesAllSubscribers(t *testing.T) {
	count := 30
	if testing.Short() {
		count = 12
	}
	reg := newRegistry()
	ns := swarm(t, count, reg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	cs := make([]*collector, count)
	for i, n := range ns {
		cs[i] = &collector{}
		wg.Add(1)
		go cs[i].run(ctx, n.sub, &wg)
	}
	defer func() { cancel(); wg.Wait() }()

	if err := ns[3].t.Publish(ctx, heartbeat(t, 3, 42)); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		waitFor(t, 30*time.Second, fmt.Sprintf("neuron %d to receive the heartbeat", i), func() bool { return len(c.from(ns[3].n.ID())) == 1 })
		m := c.from(ns[3].n.ID())[0]
		hb, err := DecodeHeartbeat(m.Body)
		if err != nil || hb.Block != 42 || m.UID != 3 || m.Hotkey != ns[3].k.PublicKey().Address() {
			t.Fatalf("neuron %d got %+v (%v)", i, m, err)
		}
	}
}

// Messages signed by an unregistered hotkey, or claiming another uid, are
// rejected by every honest neuron and cost their forwarder its score until
// it is graylisted; a message with a skewed clock is ignored without
// penalty; honest messages still flow.
func TestInvalidMessagesRejectedAndSendersPenalized(t *testing.T) {
	reg := newRegistry()
	honest := swarm(t, 6, reg)

	// The unregistered neuron believes everyone is registered, so its own
	// validation lets its messages out.
	liar := &registry{m: map[wallet.Address]uint16{}, everyone: true}
	unregistered := start(t, key(100), liar, nil)
	impostor := start(t, key(101), liar, nil) // registered as uid 50, claims uid 0
	reg.add(impostor.k, 50)
	skewed := start(t, key(102), reg, func(c *Config) {
		c.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
	})
	reg.add(skewed.k, 51)
	for _, bad := range []*neuron{unregistered, impostor, skewed} {
		connect(t, bad, honest[0])
		connect(t, bad, honest[1])
		waitFor(t, 30*time.Second, "the bad neuron to see subscribers", func() bool { return len(bad.t.Peers()) >= 2 })
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	cs := make([]*collector, len(honest))
	for i, n := range honest {
		cs[i] = &collector{}
		wg.Add(1)
		go cs[i].run(ctx, n.sub, &wg)
	}
	defer func() { cancel(); wg.Wait() }()

	// In their own (lying) view of the chain both hold uid 0, so their
	// own validation lets these out; the impostor is uid 50 on the chain.
	for i := range 8 {
		if err := unregistered.t.Publish(ctx, heartbeat(t, 0, uint64(i))); err != nil {
			t.Fatalf("unregistered publish %d: %v", i, err)
		}
		if err := impostor.t.Publish(ctx, heartbeat(t, 0, uint64(i))); err != nil {
			t.Fatalf("impostor publish %d: %v", i, err)
		}
		if err := skewed.t.Publish(ctx, heartbeat(t, 51, uint64(i))); err != nil {
			t.Fatalf("skewed publish %d: %v", i, err)
		}
	}
	// An honest message published afterwards reaches everyone, so the
	// bad ones had every chance to arrive first.
	if err := honest[5].t.Publish(ctx, heartbeat(t, 5, 99)); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		waitFor(t, 30*time.Second, fmt.Sprintf("honest neuron %d to receive the honest heartbeat", i), func() bool { return len(c.from(honest[5].n.ID())) == 1 })
	}
	for _, a := range []*neuron{honest[0], honest[1]} {
		for name, bad := range map[string]*neuron{"unregistered": unregistered, "impostor": impostor} {
			waitFor(t, 30*time.Second, name+" to be graylisted", func() bool {
				_, gray := a.g.PeerScore(bad.n.ID())
				return gray
			})
		}
		if s, _ := a.g.PeerScore(skewed.n.ID()); s < 0 {
			t.Errorf("skewed clock penalized: score %v", s)
		}
	}
	for i, c := range cs {
		for name, bad := range map[string]*neuron{"unregistered": unregistered, "impostor": impostor, "skewed": skewed} {
			if got := c.from(bad.n.ID()); len(got) != 0 {
				t.Errorf("honest neuron %d delivered %d messages from the %s neuron", i, len(got), name)
			}
		}
	}
}

// A neuron that is not registered cannot publish: its own validation
// rejects the message before it leaves.
func TestUnregisteredCannotPublish(t *testing.T) {
	n := start(t, key(200), newRegistry(), nil)
	err := n.t.Publish(context.Background(), heartbeat(t, 0, 1))
	if err == nil {
		t.Fatal("an unregistered neuron published")
	}
}

func TestPublishTooLarge(t *testing.T) {
	reg := newRegistry()
	k := key(300)
	reg.add(k, 0)
	n := start(t, k, reg, nil)
	err := n.t.Publish(context.Background(), make([]byte, 65<<10))
	if err == nil {
		t.Fatal("a message over the limit was published")
	}
}

func TestTopicNameAndMessageID(t *testing.T) {
	if got := TopicName("ct-local", 3, Knowledge); got != "/cybertensor/ct-local/3/knowledge/1" {
		t.Fatalf("topic %q", got)
	}
	// SHA-256(0x05 "topic" 0x04 "from" "data")[:20], computed independently.
	h := sha256.Sum256(append(append([]byte{5}, "topic"...), append([]byte{4}, "fromdata"...)...))
	if got := hex.EncodeToString([]byte(MessageID("topic", []byte("from"), []byte("data")))); got != hex.EncodeToString(h[:20]) {
		t.Fatalf("message id %s", got)
	}
	for _, c := range [][2][3]string{
		{{"a", "f", "bc"}, {"ab", "f", "c"}},       // topic | from boundary
		{{"t", "ab", "c"}, {"t", "a", "bc"}},       // from | data boundary
		{{"t", "f1", "data"}, {"t", "f2", "data"}}, // another author
	} {
		x, y := c[0], c[1]
		if MessageID(x[0], []byte(x[1]), []byte(x[2])) == MessageID(y[0], []byte(y[1]), []byte(y[2])) {
			t.Fatalf("%q and %q share a message ID", x, y)
		}
	}
}

func TestConfigRejected(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"no chain":      func(c *Config) { c.ChainID = "" },
		"window":        func(c *Config) { c.TimestampWindow = 0 },
		"size":          func(c *Config) { c.MaxDataSize = 2 << 20 },
		"score order":   func(c *Config) { c.Score.Graylist = 0 },
		"invalid score": func(c *Config) { c.Score.InvalidMessageWeight = 1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig("x")
			cfg.Logger = slog.New(slog.DiscardHandler)
			edit(&cfg)
			n, err := node.New(context.Background(), node.DefaultTestConfig(key(400)))
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if g, err := New(n, newRegistry(), cfg); err == nil {
				g.Close()
				t.Fatal("accepted")
			}
		})
	}
}

func TestHeartbeatCheck(t *testing.T) {
	a := Author{UID: 4}
	for name, c := range map[string]struct {
		body []byte
		ok   bool
	}{
		"own uid":   {heartbeat(t, 4, 1), true},
		"other uid": {heartbeat(t, 5, 1), false},
		"garbage":   {[]byte{0xff, 0xff, 0xff}, false},
		"uid range": {mustEncode(t, &pb.Heartbeat{Uid: 70000}), false},
	} {
		if err := CheckHeartbeat(a, c.body); (err == nil) != c.ok {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func mustEncode(t testing.TB, hb *pb.Heartbeat) []byte {
	b, err := EncodeHeartbeat(hb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzHeartbeat(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x04, 0x12, 0x05, 'm', 'i', 'n', 'e', 'r'})
	f.Fuzz(func(t *testing.T, b []byte) {
		hb, err := DecodeHeartbeat(b)
		if err != nil {
			return
		}
		again, err := EncodeHeartbeat(hb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeHeartbeat(again); err != nil {
			t.Fatalf("re-encoded heartbeat does not decode: %v", err)
		}
		_ = CheckHeartbeat(Author{UID: uint16(hb.Uid)}, b)
	})
}

// FuzzValidate feeds arbitrary message data and author bytes to the topic
// validator: it must never panic, and accept only what decodes.
func FuzzValidate(f *testing.F) {
	reg := newRegistry()
	k := key(500)
	reg.add(k, 4)
	g := &Gossip{reg: reg, cfg: DefaultConfig("fuzz"), hotkeys: map[peer.ID]wallet.Address{}}
	g.cfg.Now = time.Now
	g.log = slog.New(slog.DiscardHandler)
	v := &validator{g: g, netuid: 1, check: CheckHeartbeat}
	author := []byte(k.PublicKey().PeerID())
	good, _ := proto.Marshal(&pb.Envelope{TimestampMs: uint64(time.Now().UnixMilli()), Body: mustEncode(f, &pb.Heartbeat{Uid: 4})})
	f.Add(good, author)
	f.Add([]byte{0x08}, author)
	f.Add(good, []byte("not a peer id"))
	f.Fuzz(func(t *testing.T, data, from []byte) {
		topic := TopicName("fuzz", 1, Heartbeat)
		m := &pubsub.Message{Message: &pubsubpb.Message{Data: data, From: from, Topic: &topic}}
		res, _ := v.run(context.Background(), m)
		if res == pubsub.ValidationAccept {
			if _, ok := m.ValidatorData.(validated); !ok {
				t.Fatal("accepted without validated data")
			}
		}
	})
}

// A copy of a genuine message signed by someone else (here an unregistered
// neuron that saw it first, or guessed it) is a different message: it is
// rejected, and the genuine one arriving later is still delivered rather
// than dropped as already seen.
func TestForgedCopyDoesNotShadowTheGenuineMessage(t *testing.T) {
	reg := newRegistry()
	receiver := start(t, key(400), reg, nil)
	reg.add(receiver.k, 2)
	at := time.Now()
	clock := func() time.Time { return at } // author and forger build identical data
	author := start(t, key(401), reg, func(c *Config) { c.Now = clock })
	reg.add(author.k, 0) // uid 0: what the forger's lying registry gives everyone
	liar := &registry{m: map[wallet.Address]uint16{}, everyone: true}
	forger := start(t, key(402), liar, func(c *Config) { c.Now = clock })

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	c := &collector{}
	wg.Add(1)
	go c.run(ctx, receiver.sub, &wg)
	defer func() { cancel(); wg.Wait() }()

	body := heartbeat(t, 0, 7)
	connect(t, forger, receiver)
	waitFor(t, 30*time.Second, "the forger to see the receiver", func() bool { return len(forger.t.Peers()) >= 1 })
	if err := forger.t.Publish(ctx, body); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the forged copy to be rejected", func() bool {
		s, _ := receiver.g.PeerScore(forger.n.ID())
		return s < 0
	})
	connect(t, author, receiver)
	waitFor(t, 30*time.Second, "the author to see the receiver", func() bool { return len(author.t.Peers()) >= 1 })
	if err := author.t.Publish(ctx, body); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the genuine message", func() bool { return len(c.from(author.n.ID())) == 1 })
	if got := c.from(forger.n.ID()); len(got) != 0 {
		t.Fatalf("the forged copy was delivered %d times", len(got))
	}
}
