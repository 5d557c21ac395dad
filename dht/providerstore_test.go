package dht

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/wallet"
)

// testStore is a providerStore with a clock the test moves: each add is
// one second after the last.
type testStore struct {
	*providerStore
	now time.Time
}

func newTestStore(limits ProviderLimits) *testStore {
	ts := &testStore{now: time.Unix(1_700_000_000, 0)}
	ts.providerStore = newProviderStore(pid(0), limits, 24*time.Hour, time.Hour, func(k string) bool { return k[0] == 's' })
	ts.providerStore.now = func() time.Time { return ts.now }
	return ts
}

func (ts *testStore) add(key string, p peer.ID, c class) {
	ts.now = ts.now.Add(time.Second)
	ts.providerStore.add(key, p, c)
}

// dump lists a pool's records, oldest first, as "key/peer".
func (ts *testStore) dump(c class) []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []string
	for r := ts.pools[c].head; r != nil; r = r.links[onPool].next {
		out = append(out, r.key.key+"/"+names[r.peer.id])
	}
	return out
}

// pid is a distinct peer ID for each i; names maps it back to "p<i>".
func pid(i int) peer.ID {
	id := key(700 + i).PublicKey().PeerID()
	names[id] = fmt.Sprintf("p%d", i)
	return id
}

var names = map[peer.ID]string{}

func TestProviderStoreLimits(t *testing.T) {
	limits := ProviderLimits{
		Registered:   PoolLimits{Total: 4, PerPeer: 3, PerKey: 2},
		Unregistered: PoolLimits{Total: 3, PerPeer: 2, PerKey: 2},
	}
	type op struct {
		key  string
		peer int
		c    class
	}
	U, R := unregistered, registered
	cases := []struct {
		name       string
		ops        []op
		reg, unreg []string // each pool, oldest first
	}{
		{name: "within the limits",
			ops:   []op{{"k1", 1, U}, {"k2", 2, U}, {"k1", 3, R}},
			reg:   []string{"k1/p3"},
			unreg: []string{"k1/p1", "k2/p2"}},
		{name: "a peer past its quota loses its oldest",
			ops:   []op{{"k1", 1, U}, {"k2", 2, U}, {"k3", 1, U}, {"k4", 1, U}},
			unreg: []string{"k2/p2", "k3/p1", "k4/p1"}},
		{name: "a key past its cap loses its oldest provider",
			ops:   []op{{"k1", 1, U}, {"k1", 2, U}, {"k1", 3, U}},
			unreg: []string{"k1/p2", "k1/p3"}},
		{name: "a full pool loses its oldest",
			ops:   []op{{"k1", 1, U}, {"k2", 2, U}, {"k3", 3, U}, {"k4", 4, U}},
			unreg: []string{"k2/p2", "k3/p3", "k4/p4"}},
		{name: "a refresh makes a record the newest",
			ops:   []op{{"k1", 1, U}, {"k2", 1, U}, {"k1", 1, U}, {"k3", 1, U}},
			unreg: []string{"k1/p1", "k3/p1"}},
		{name: "unregistered peers never take the registered share",
			ops: []op{{"k1", 1, R}, {"k2", 2, R}, {"k1", 3, U}, {"k1", 4, U}, {"k2", 5, U},
				{"k3", 6, U}, {"k4", 7, U}, {"k5", 8, U}},
			reg:   []string{"k1/p1", "k2/p2"},
			unreg: []string{"k3/p6", "k4/p7", "k5/p8"}},
		{name: "nor registered neurons the unregistered share",
			ops: []op{{"k1", 1, U}, {"k1", 2, R}, {"k2", 2, R}, {"k3", 2, R}, {"k4", 3, R},
				{"k5", 4, R}, {"k1", 5, R}},
			reg:   []string{"k3/p2", "k4/p3", "k5/p4", "k1/p5"},
			unreg: []string{"k1/p1"}},
		{name: "a registered key's cap counts registered providers only",
			ops:   []op{{"k1", 1, U}, {"k1", 2, U}, {"k1", 3, R}, {"k1", 4, R}, {"k1", 5, R}},
			reg:   []string{"k1/p4", "k1/p5"},
			unreg: []string{"k1/p1", "k1/p2"}},
		{name: "a provider that registers moves pools",
			ops:   []op{{"k1", 1, U}, {"k2", 1, U}, {"k1", 1, R}},
			reg:   []string{"k1/p1"},
			unreg: []string{"k2/p1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(limits)
			for _, o := range tc.ops {
				s.add(o.key, pid(o.peer), o.c)
			}
			if got := s.dump(registered); !slices.Equal(got, tc.reg) {
				t.Errorf("registered %v, want %v", got, tc.reg)
			}
			if got := s.dump(unregistered); !slices.Equal(got, tc.unreg) {
				t.Errorf("unregistered %v, want %v", got, tc.unreg)
			}
			// The indexes agree with the pools.
			reg, unreg := s.counts()
			if reg != len(tc.reg) || unreg != len(tc.unreg) || len(s.recs) != reg+unreg {
				t.Errorf("counts %d %d, %d records", reg, unreg, len(s.recs))
			}
			for i := range 10 {
				for _, c := range []class{registered, unregistered} {
					want := 0
					for _, r := range s.dump(c) {
						if r[len(r)-2:] == fmt.Sprintf("p%d", i) {
							want++
						}
					}
					if got := s.held(pid(i), c); got != want {
						t.Errorf("p%d holds %d records in pool %d, want %d", i, got, c, want)
					}
				}
			}
		})
	}
}

// Records expire ProviderTTL after their last write, subnet keys' after
// MembershipTTL; expired records are never read and are dropped.
func TestProviderStoreTTL(t *testing.T) {
	ctx := context.Background()
	limits := DefaultConfig("c").Providers
	s := newTestStore(limits)
	p1, p2 := pid(1), pid(2)
	s.add("k1", p1, unregistered)
	s.add("s1", p1, registered) // a subnet key
	s.add("k2", p2, registered)
	has := func(key string, p peer.ID) bool {
		ok, err := s.Has(ctx, ds.NewKey(providerDSKey(key, p)))
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := s.providers(key)
		if ok != slices.Contains(ids, p) {
			t.Fatalf("Has says %v, providers %v", ok, ids)
		}
		return ok
	}
	s.now = s.now.Add(time.Hour - 10*time.Second)
	if !has("s1", p1) || !has("k1", p1) {
		t.Fatal("records gone before their TTL")
	}
	s.now = s.now.Add(20 * time.Second)
	if has("s1", p1) || !has("k1", p1) {
		t.Fatal("the subnet key's record outlived MembershipTTL, or another record did not")
	}
	// Refreshing k2 keeps it; k1 expires.
	s.now = s.now.Add(22 * time.Hour)
	s.add("k2", p2, registered)
	s.now = s.now.Add(time.Hour + time.Minute)
	if has("k1", p1) || !has("k2", p2) {
		t.Fatal("k1 outlived ProviderTTL, or the refreshed k2 did not")
	}
	// A write drops expired records from the old end of the pools.
	s.add("k3", p2, unregistered)
	if reg, unreg := s.counts(); reg != 1 || unreg != 1 {
		t.Fatalf("after expiry: %d registered, %d unregistered records", reg, unreg)
	}
}

// The store as kad-dht's provider manager uses it.
func TestProviderStoreDatastore(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(DefaultConfig("c").Providers)
	self, p1, stranger := pid(0), pid(1), pid(2)
	s.add("k1", p1, unregistered)
	at := s.now.Add(time.Minute).UnixNano()
	for _, w := range []struct {
		key string
		p   peer.ID
	}{{"k1", p1}, {"k2", self}, {"k3", stranger}} {
		if err := s.Put(ctx, ds.NewKey(providerDSKey(w.key, w.p)), encodeWriteTime(at)); err != nil {
			t.Fatal(err)
		}
	}
	// The refresh took; the neuron's own record is kept as registered; the
	// stranger's, which add never kept, is not.
	if v, err := s.Get(ctx, ds.NewKey(providerDSKey("k1", p1))); err != nil || !slices.Equal(v, encodeWriteTime(at)) {
		t.Fatalf("k1: %x %v", v, err)
	}
	if s.held(self, registered) != 1 {
		t.Fatal("own record not kept")
	}
	if _, err := s.Get(ctx, ds.NewKey(providerDSKey("k3", stranger))); !errors.Is(err, ds.ErrNotFound) {
		t.Fatalf("stranger's record: %v", err)
	}
	// The manager's query for one key, and a scan of all.
	s.add("k1", p1, unregistered)
	s.add("k1", self, registered)
	q := func(prefix string) []string {
		res, err := s.Query(ctx, dsq.Query{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		es, err := res.Rest()
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, e := range es {
			keys = append(keys, e.Key)
		}
		slices.Sort(keys)
		return keys
	}
	want := []string{providerDSKey("k1", self), providerDSKey("k1", p1)}
	slices.Sort(want)
	if got := q(providersPrefix + b32.EncodeToString([]byte("k1"))); !slices.Equal(got, want) {
		t.Fatalf("k1's records %v, want %v", got, want)
	}
	if got := q("/providers"); len(got) != 3 {
		t.Fatalf("all records: %v", got)
	}
	if got := q("/other"); len(got) != 0 {
		t.Fatalf("other prefix: %v", got)
	}
	if err := s.Delete(ctx, ds.NewKey(providerDSKey("k1", p1))); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, ds.NewKey(providerDSKey("k1", p1))); ok {
		t.Fatal("deleted record still there")
	}
	if err := s.Put(ctx, ds.NewKey("/values/x"), encodeWriteTime(at)); err == nil {
		t.Fatal("a key that is not a provider record's was taken")
	}
}

// The request hook keeps a subnet key's provider only if it is registered
// on that subnet, and files every other record by whether its provider is
// registered on a subnet this neuron joined.
func TestScreenProvider(t *testing.T) {
	reg := &registry{m: map[wallet.Address]uint16{}}
	d := swarm(t, 1, reg)[0].d
	d.joinedMu.Lock()
	d.joined[1] = true
	d.joinedMu.Unlock()
	member, stranger := key(601), key(602)
	reg.m[member.PublicKey().Address()] = 3 // registered on every subnet
	ed, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	edID, _ := peer.IDFromPrivateKey(ed)
	addr := fakeAddr.Bytes()
	subnet1 := string(SubnetKey("dht-test", 1).Hash())
	subnet9 := string(SubnetKey("dht-test", 9).Hash()) // not joined
	other := string(randomKey(t))
	cases := []struct {
		name  string
		from  peer.ID
		key   string
		recs  []*kadpb.Message_Peer
		kept  bool
		class class
	}{
		{"member, subnet key", member.PublicKey().PeerID(), subnet1, nil, true, registered},
		{"member, subnet key of a subnet not joined", member.PublicKey().PeerID(), subnet9, nil, true, registered},
		{"member, other key", member.PublicKey().PeerID(), other, nil, true, registered},
		{"stranger, subnet key", stranger.PublicKey().PeerID(), subnet1, nil, false, 0},
		{"stranger, subnet key of a subnet not joined", stranger.PublicKey().PeerID(), subnet9, nil, false, 0},
		{"stranger, other key", stranger.PublicKey().PeerID(), other, nil, true, unregistered},
		{"non-hotkey peer, subnet key", edID, subnet1, nil, false, 0},
		{"non-hotkey peer, other key", edID, other, nil, true, unregistered},
		{"member, someone else's record", member.PublicKey().PeerID(), string(randomKey(t)),
			[]*kadpb.Message_Peer{{Id: []byte(stranger.PublicKey().PeerID()), Addrs: [][]byte{addr}}}, false, 0},
		{"member, no address", member.PublicKey().PeerID(), string(randomKey(t)),
			[]*kadpb.Message_Peer{{Id: []byte(member.PublicKey().PeerID())}}, false, 0},
		{"member, key too long", member.PublicKey().PeerID(), string(make([]byte, 81)), nil, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := kadpb.NewMessage(kadpb.Message_ADD_PROVIDER, []byte(tc.key), 0)
			req.ProviderPeers = tc.recs
			if req.ProviderPeers == nil {
				req.ProviderPeers = []*kadpb.Message_Peer{
					{Id: []byte(stranger.PublicKey().PeerID()), Addrs: [][]byte{addr}}, // dropped: not the sender
					{Id: []byte(tc.from), Addrs: [][]byte{addr}},
				}
			}
			d.screenProvider(context.Background(), tc.from, req)
			kept := len(req.ProviderPeers) == 1 && peer.ID(req.ProviderPeers[0].Id) == tc.from
			if kept != tc.kept || (!kept && len(req.ProviderPeers) != 0) {
				t.Fatalf("request keeps %d records, want kept=%v", len(req.ProviderPeers), tc.kept)
			}
			ids, _ := d.providers.providers(tc.key)
			if slices.Contains(ids, tc.from) != tc.kept {
				t.Fatalf("store has it: %v, want %v", !tc.kept, tc.kept)
			}
			if tc.kept {
				d.providers.mu.Lock()
				c := d.providers.recs[recordID{tc.key, tc.from}].class
				d.providers.mu.Unlock()
				if c != tc.class {
					t.Fatalf("class %d, want %d", c, tc.class)
				}
			}
		})
	}
}

// A store filled to DefaultConfig's limits, every record on a key of its
// own (the costliest case), holds what DefaultConfig says.
func TestProviderStoreMemory(t *testing.T) {
	lim := DefaultConfig("c").Providers
	s := newProviderStore(pid(0), lim, 24*time.Hour, time.Hour, func(string) bool { return false })
	fill := func(pool PoolLimits, c class, first int) {
		for i := range pool.Total / pool.PerPeer {
			p := pid(first + i)
			for j := range pool.PerPeer {
				s.add(string(floodKey(first+i, j)), p, c)
			}
		}
	}
	before := liveHeap()
	fill(lim.Registered, registered, 1000)
	fill(lim.Unregistered, unregistered, 2000)
	after := liveHeap()
	reg, unreg := s.counts()
	if reg != lim.Registered.Total || unreg != lim.Unregistered.Total {
		t.Fatalf("filled %d + %d", reg, unreg)
	}
	per := float64(after-before) / float64(reg+unreg)
	t.Logf("%d records: %.1f MiB, %.0f bytes each", reg+unreg, mib(after-before), per)
	if per > 400 {
		t.Errorf("%.0f bytes a record, DefaultConfig says about 330", per)
	}
	// Writing more keeps it within the limits.
	fill(lim.Unregistered, unregistered, 3000)
	if reg, unreg := s.counts(); reg != lim.Registered.Total || unreg != lim.Unregistered.Total || len(s.keys) != reg+unreg {
		t.Fatalf("after more: %d + %d records, %d keys", reg, unreg, len(s.keys))
	}
	if mib(liveHeap()-before) > 1.1*mib(after-before) {
		t.Errorf("the store grew past its limits: %.1f MiB, %.1f MiB when first full", mib(liveHeap()-before), mib(after-before))
	}
	runtime.KeepAlive(s)
}

func FuzzParseProviderDSKey(f *testing.F) {
	f.Add(providerDSKey(string(SubnetKey("c", 1).Hash()), key(1).PublicKey().PeerID()))
	f.Add("/providers/AAAA/BBBB")
	f.Add("/providers//")
	f.Fuzz(func(t *testing.T, k string) {
		key, p, err := parseProviderDSKey(k)
		if err != nil {
			if !errors.Is(err, errNotProviderKey) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if providerDSKey(key, p) != k {
			t.Fatalf("%q parses to a key that encodes as %q", k, providerDSKey(key, p))
		}
	})
}

// Neurons of one chain in one process share one map of subnet keys; each
// chain has its own, mapping every netuid's key to it.
func TestSharedSubnetKeys(t *testing.T) {
	a, b := sharedSubnetKeys("shared-keys-a"), sharedSubnetKeys("shared-keys-a")
	if fmt.Sprintf("%p", a) != fmt.Sprintf("%p", b) {
		t.Error("two neurons of one chain made a map each")
	}
	other := sharedSubnetKeys("shared-keys-b")
	if fmt.Sprintf("%p", a) == fmt.Sprintf("%p", other) {
		t.Error("two chains share a map")
	}
	for _, chain := range []string{"shared-keys-a", "shared-keys-b"} {
		m := sharedSubnetKeys(chain)
		if len(m) != maxNetuid+1 {
			t.Fatalf("%s: %d keys, want %d", chain, len(m), maxNetuid+1)
		}
		for _, netuid := range []uint16{0, 1, 7, maxNetuid} {
			if got, ok := m[string(SubnetKey(chain, netuid).Hash())]; !ok || got != netuid {
				t.Errorf("%s: netuid %d's key maps to %d (%v)", chain, netuid, got, ok)
			}
		}
	}
}
