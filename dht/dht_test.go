package dht

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kbucket "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-libp2p-kad-dht's shared worker pools and the go-log event loop
		// are process-wide and outlive any one DHT.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		// quic-go forgets a closed connection's IDs on a timer after its
		// transport closed (the QUIC benchmark's hosts).
		goleak.IgnoreTopFunction("github.com/quic-go/quic-go.(*packetHandlerMap).ReplaceWithClosed.func2"),
	)
}

func key(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("dht test %d", i)))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	return k
}

// registry is a Registry backed by a map.
type registry struct {
	mu sync.Mutex
	m  map[wallet.Address]uint16
}

func (r *registry) Lookup(_ context.Context, _ uint16, h wallet.Address) (uint16, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	uid, ok := r.m[h]
	return uid, ok, nil
}

type member struct {
	n *node.Node
	d *DHT
}

func swarm(t *testing.T, count int, reg *registry) []member {
	t.Helper()
	return swarmWith(t, count, reg, nil)
}

// swarmWith is swarm with each DHT's Config changed by configure.
func swarmWith(t *testing.T, count int, reg *registry, configure func(*Config)) []member {
	t.Helper()
	var ms []member
	for i := range count {
		k := key(i)
		reg.m[k.PublicKey().Address()] = uint16(i)
		n, err := node.New(context.Background(), node.DefaultTestConfig(k))
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig("dht-test")
		cfg.Logger = slog.New(slog.DiscardHandler)
		if configure != nil {
			configure(&cfg)
		}
		if i > 0 {
			cfg.Bootstrap = []peer.AddrInfo{{ID: ms[0].n.ID(), Addrs: ms[0].n.Addrs()}}
			if err := n.Connect(context.Background(), cfg.Bootstrap[0]); err != nil {
				t.Fatal(err)
			}
		}
		d, err := New(n, k, reg, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{n, d})
	}
	t.Cleanup(func() {
		for _, m := range ms {
			m.d.Close()
			m.n.Close()
		}
	})
	return ms
}

// joinedSwarm is a swarm of count neurons, each a member of subnet 1
// (uid = its index).
func joinedSwarm(ctx context.Context, t *testing.T, count int) ([]member, *registry) {
	t.Helper()
	reg := &registry{m: map[wallet.Address]uint16{}}
	ms := swarm(t, count, reg)
	for i, m := range ms {
		if err := m.d.Join(ctx, 1, uint16(i), []string{"/cybertensor/query/1.0.0"}); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	return ms, reg
}

// Every neuron finds every other member of its subnet through the DHT.
func TestSubnetMembersFindEachOther(t *testing.T) {
	count := 50
	if testing.Short() {
		count = 16
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ms, _ := joinedSwarm(ctx, t, count)
	for i, m := range ms {
		found := map[peer.ID]bool{}
		deadline := time.Now().Add(time.Minute)
		for len(found) < count-1 && time.Now().Before(deadline) {
			qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
			for _, p := range m.d.Members(qctx, 1) {
				if p.ID != m.n.ID() {
					found[p.ID] = true
				}
			}
			qcancel()
		}
		if len(found) < count-1 {
			t.Fatalf("neuron %d found %d of %d members", i, len(found), count-1)
		}
	}
	// A member's signed record is fetched and checked.
	rec, err := ms[1].d.LookupRecord(ctx, 1, ms[count-1].n.ID())
	if err != nil || rec.UID != uint16(count-1) || len(rec.Addrs) == 0 {
		t.Fatalf("record %+v %v", rec, err)
	}
}

func TestRecordValidation(t *testing.T) {
	reg := &registry{m: map[wallet.Address]uint16{key(1).PublicKey().Address(): 7}}
	v := &recordValidator{chainID: "c", reg: reg}
	k := key(1)
	id := k.PublicKey().PeerID()
	good := Record{PeerID: id.String(), Hotkey: k.PublicKey().Address().String(), Netuid: 1, UID: 7, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Expires: time.Now().Add(time.Hour).Unix()}
	sign := func(r Record, with *wallet.PrivateKey) []byte {
		b, err := r.Sign(with)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keyFor := func(r Record) string { return RecordKey("c", r.Netuid, id) }
	if err := v.Validate(keyFor(good), sign(good, k)); err != nil {
		t.Fatalf("good record: %v", err)
	}
	expired := good
	expired.Expires = time.Now().Add(-time.Minute).Unix()
	wrongUID := good
	wrongUID.UID = 8
	otherHotkey := good
	otherHotkey.Hotkey = key(2).PublicKey().Address().String()
	tampered := sign(good, k)
	tampered[len(tampered)-10] ^= 1
	cases := map[string]struct {
		key   string
		value []byte
	}{
		"expired":            {keyFor(expired), sign(expired, k)},
		"uid not held":       {keyFor(wrongUID), sign(wrongUID, k)},
		"hotkey not peer's":  {keyFor(otherHotkey), sign(otherHotkey, k)},
		"signed by another":  {keyFor(good), sign(good, key(2))},
		"tampered":           {keyFor(good), tampered},
		"malformed":          {keyFor(good), []byte("{nope")},
		"key of another net": {RecordKey("c", 2, id), sign(good, k)},
		"other chain":        {RecordKey("d", 1, id), sign(good, k)},
	}
	for name, tc := range cases {
		if err := v.Validate(tc.key, tc.value); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: %v", name, err)
		}
	}
	older := good
	older.Expires -= 100
	if i, err := v.Select("k", [][]byte{sign(older, k), sign(good, k)}); err != nil || i != 1 {
		t.Errorf("select %d %v", i, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	k := key(1)
	r := Record{PeerID: k.PublicKey().PeerID().String(), Hotkey: k.PublicKey().Address().String(), Netuid: 1, Expires: 1}
	b, _ := r.Sign(k)
	f.Add(b)
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeRecord(data)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		id, _ := peer.Decode(rec.PeerID)
		if k2 := id; k2 == "" {
			t.Fatal("accepted record without a peer")
		}
	})
}

// A member that has searched its subnet answers a newcomer's GET_PROVIDERS
// with every member, in one request to that one member.
func TestMemberAnswersWholeSubnetInOneHop(t *testing.T) {
	count := 24
	if testing.Short() {
		count = 12
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ms, reg := joinedSwarm(ctx, t, count)
	// Every member runs its discovery search until it has seen the subnet
	// whole, itself included (as a neuron's discovery loop does every
	// round).
	for i, m := range ms {
		deadline := time.Now().Add(time.Minute)
		for {
			if n := len(m.d.Members(ctx, 1)); n >= count {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("member %d found %d of %d", i, n, count)
			}
		}
	}

	k := key(1000)
	reg.mu.Lock()
	reg.m[k.PublicKey().Address()] = uint16(count)
	reg.mu.Unlock()
	n, err := node.New(context.Background(), node.DefaultTestConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	cfg := DefaultConfig("dht-test")
	cfg.Logger = slog.New(slog.DiscardHandler)
	// Ask the member farthest from the subnet key: it is not among the
	// bucket-size closest peers that hold the members' own provider
	// records, so all it can answer is what it kept.
	ids := make([]peer.ID, count)
	byID := map[peer.ID]*node.Node{}
	for i, m := range ms {
		ids[i] = m.n.ID()
		byID[ids[i]] = m.n
	}
	sorted := kbucket.SortClosestPeers(ids, kbucket.ConvertKey(string(SubnetKey("dht-test", 1).Hash())))
	asked := byID[sorted[count-1]]
	if err := n.Connect(ctx, peer.AddrInfo{ID: asked.ID(), Addrs: asked.Addrs()}); err != nil {
		t.Fatal(err)
	}
	d, err := New(n, k, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	messenger, err := kadpb.NewProtocolMessenger(d.kad.MessageSender())
	if err != nil {
		t.Fatal(err)
	}
	provs, _, err := messenger.GetProviders(ctx, asked.ID(), SubnetKey("dht-test", 1).Hash())
	if err != nil {
		t.Fatal(err)
	}
	got := map[peer.ID]bool{}
	for _, p := range provs {
		if len(p.Addrs) == 0 {
			t.Errorf("provider %s without addresses", p.ID)
		}
		got[p.ID] = true
	}
	for i, m := range ms {
		if !got[m.n.ID()] {
			t.Errorf("member %d missing from the one-hop answer (%d of %d)", i, len(got), count)
		}
	}
}

// Only providers registered on the subnet are kept and passed on.
func TestKeepMembersOnlyRegistered(t *testing.T) {
	reg := &registry{m: map[wallet.Address]uint16{}}
	ms := swarm(t, 1, reg)
	d := ms[0].d
	registered, stranger := key(501), key(502)
	reg.m[registered.PublicKey().Address()] = 5
	addr := ms[0].n.Addrs()
	found := []peer.AddrInfo{
		{ID: registered.PublicKey().PeerID(), Addrs: addr},
		{ID: stranger.PublicKey().PeerID(), Addrs: addr},
		{ID: key(503).PublicKey().PeerID()}, // no addresses: nothing to pass on
		{ID: ms[0].n.ID(), Addrs: addr},     // itself
	}
	reg.m[key(503).PublicKey().Address()] = 6
	ctx := context.Background()
	k := SubnetKey("dht-test", 9)
	d.keepMembers(ctx, 9, k, found)
	kept, err := d.kad.ProviderStore().GetProviders(ctx, k.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept[0].ID != registered.PublicKey().PeerID() {
		t.Fatalf("kept %v, want only the registered member", kept)
	}
	// Its own searches find the kept member in its store.
	if got := d.Members(ctx, 9); len(got) != 1 {
		t.Fatalf("members of subnet 9: %v", got)
	}
}

// A low routing table is walked from only while the neuron is connected to
// no more DHT servers than lowPeers, and to no more than at the last look:
// otherwise the table is filling from them (kad-dht adds each once it
// answers a request).
func TestJoinWalkNeeded(t *testing.T) {
	for _, tc := range []struct {
		table, servers, was int
		want                bool
	}{
		{0, 0, 0, false}, // nobody to ask
		{0, 50, 50, false},
		{1, 1, 1, true},  // only its bootstrap peer
		{1, 1, 0, false}, // the first look after the bootstrap peer connected
		{lowPeers, lowPeers, lowPeers, true},
		{lowPeers, lowPeers, lowPeers + 3, true},      // losing servers
		{lowPeers, lowPeers + 1, lowPeers + 1, false}, // filling from its connections
		{3, 7, 2, false},                              // gaining them: validators reaching a miner
		{3, 56, 56, false},
		{lowPeers + 1, 0, 0, false}, // not low
	} {
		if got := joinWalkNeeded(tc.table, tc.servers, tc.was); got != tc.want {
			t.Errorf("joinWalkNeeded(table %d, servers %d, was %d) = %v, want %v", tc.table, tc.servers, tc.was, got, tc.want)
		}
	}
}

// connectedServers counts the connected peers that serve the DHT, not
// every connected peer.
func TestConnectedServers(t *testing.T) {
	reg := &registry{m: map[wallet.Address]uint16{}}
	ms := swarm(t, 4, reg)
	plain, err := node.New(context.Background(), node.DefaultTestConfig(key(100)))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for _, h := range []host.Host{ms[2].n, ms[3].n, plain} {
		if err := ms[1].n.Connect(context.Background(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	// Member 1 is connected to members 0 (its bootstrap peer), 2 and 3,
	// and to a host without the DHT.
	deadline := time.Now().Add(30 * time.Second)
	for ms[1].d.connectedServers() != 3 || len(ms[1].n.Network().Peers()) != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d DHT servers among %d connected peers, want 3 among 4", ms[1].d.connectedServers(), len(ms[1].n.Network().Peers()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A routing table that walks leave low is walked less and less often, up
// to the routing refresh period; one a walk filled is looked at again
// after lowCheckEvery.
func TestJoinBackoff(t *testing.T) {
	most := 10 * time.Minute
	for _, tc := range []struct {
		last     time.Duration
		stillLow bool
		want     time.Duration
	}{
		{lowCheckEvery, false, lowCheckEvery},
		{8 * lowCheckEvery, false, lowCheckEvery},
		{lowCheckEvery, true, 2 * lowCheckEvery},
		{2 * lowCheckEvery, true, 4 * lowCheckEvery},
		{6 * time.Minute, true, most},
		{most, true, most},
		{0, true, lowCheckEvery},
	} {
		if got := joinBackoff(tc.last, tc.stillLow, most); got != tc.want {
			t.Errorf("joinBackoff(%v, still low %v) = %v, want %v", tc.last, tc.stillLow, got, tc.want)
		}
	}
	// A routing refresh period shorter than lowCheckEvery does not make
	// the walks more frequent than lowCheckEvery.
	if got := joinBackoff(lowCheckEvery, true, time.Second); got != lowCheckEvery {
		t.Errorf("with a 1 s refresh period: %v, want %v", got, lowCheckEvery)
	}
}
