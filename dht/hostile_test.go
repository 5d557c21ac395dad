package dht

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/libp2p/go-libp2p"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/wallet"
)

// floodLimits are the victim's limits in TestHostileProviderFlood: small,
// so that a few thousand messages pass every one of them.
var floodLimits = ProviderLimits{
	Registered:   PoolLimits{Total: 1024, PerPeer: 256, PerKey: 64},
	Unregistered: PoolLimits{Total: 512, PerPeer: 160, PerKey: 3},
}

// A hostile peer with fresh, unregistered identities speaks the DHT
// protocol to a neuron directly (issue #19, finding 1): it sends
// ADD_PROVIDER for random keys, for keys every identity provides, and for
// subnet keys, and PUT_VALUE for /pk/ and /ipns/ records. What it makes
// the neuron hold is bounded per peer and in total, subnet keys list none
// of it, the /pk/ and /ipns/ records are refused, and a registered neuron
// keeps its share.
func TestHostileProviderFlood(t *testing.T) {
	identities, perIdentity := 8, 600
	if testing.Short() {
		identities, perIdentity = 4, 200
	}
	const shared = 16 // keys every identity provides
	lim := floodLimits.Unregistered
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := &registry{m: map[wallet.Address]uint16{}}
	// The store's bounds are what this test measures; TestProvideRate
	// tests the rate, which would refuse most of this flood first.
	ms := swarmWith(t, 2, reg, func(c *Config) {
		c.Providers = floodLimits
		c.ProvideRate = ProvideRate{Rate: 1e9, Burst: 1 << 30, TotalRate: 1e9, TotalBurst: 1 << 30}
	})
	victim, member := ms[0], ms[1]
	for i, m := range ms {
		waitFor(t, ctx, "a routing table", func() bool { return m.d.RoutingTableSize() > 0 })
		if err := m.d.Join(ctx, 1, uint16(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	subnetKey := SubnetKey("dht-test", 1).Hash()
	waitFor(t, ctx, "the member's provider record", func() bool {
		return providerOf(t, victim.d, subnetKey, member.n.ID())
	})
	// Subnet keys: of the subnet the victim joined, and of two it did not.
	membership := [][]byte{subnetKey, SubnetKey("dht-test", 0).Hash(), SubnetKey("dht-test", 2).Hash()}
	// The keys attacker i provides: its own, then the shared ones. Made
	// again when needed, so the test holds none of them while it measures.
	keysOf := func(i int, each func(k []byte)) {
		for j := range perIdentity - shared {
			each(floodKey(i, j))
		}
		for j := range shared {
			each(floodKey(-1, j))
		}
	}
	sent := func(each func(k []byte)) { // every key provided, once
		for i := range identities {
			for j := range perIdentity - shared {
				each(floodKey(i, j))
			}
		}
		for j := range shared {
			each(floodKey(-1, j))
		}
		for _, k := range membership {
			each(k)
		}
	}
	var attackers []host.Host
	victimInfo := peer.AddrInfo{ID: victim.n.ID(), Addrs: victim.n.Addrs()}
	for i := range identities {
		h := hostileHost(t, i%2 == 0)
		attackers = append(attackers, h)
		if err := h.Connect(ctx, victimInfo); err != nil {
			t.Fatal(err)
		}
	}
	heapBefore := liveHeap()
	regBefore, unregBefore := victim.d.providers.counts()
	for i, h := range attackers {
		// Random and shared keys in batches on one stream each; a refusal
		// resets the stream, so each subnet key gets its own.
		// (That the victim resets the stream of a refused request also
		// shows kad-dht handled the request the hook changed.)
		var batch [][]byte
		send := func() {
			if !sendAddProviders(ctx, h, victim.n.ID(), batch) {
				t.Errorf("attacker %d: a batch of ADD_PROVIDER was refused", i)
			}
			batch = batch[:0]
		}
		keysOf(i, func(k []byte) {
			if batch = append(batch, k); len(batch) == 100 {
				send()
			}
		})
		if len(batch) > 0 {
			send()
		}
		for _, k := range membership {
			if sendAddProviders(ctx, h, victim.n.ID(), [][]byte{k}) {
				t.Errorf("attacker %d: ADD_PROVIDER for subnet key %x was not refused", i, k[:6])
			}
		}
		// Valid /pk/ and /ipns/ records of its own.
		if stored := putValue(ctx, t, h, victim.n.ID(), pkRecord(t, h)); stored {
			t.Errorf("attacker %d: the /pk/ record was accepted", i)
		}
		if stored := putValue(ctx, t, h, victim.n.ID(), ipnsRecord(t, h)); stored {
			t.Errorf("attacker %d: the /ipns/ record was accepted", i)
		}
	}
	heapAfter := liveHeap()

	// What the victim holds, in its store...
	hostile := map[peer.ID]bool{}
	for _, h := range attackers {
		hostile[h.ID()] = true
	}
	regAfter, unregAfter := victim.d.providers.counts()
	worstPeer, worstKey := 0, 0
	for _, h := range attackers {
		worstPeer = max(worstPeer, victim.d.providers.held(h.ID(), unregistered))
		if n := victim.d.providers.held(h.ID(), registered); n > 0 {
			t.Errorf("%s holds %d registered records", h.ID(), n)
		}
	}
	sent(func(k []byte) {
		ids, _ := victim.d.providers.providers(string(k))
		n := 0
		for _, p := range ids {
			if hostile[p] {
				n++
			}
		}
		worstKey = max(worstKey, n)
	})
	t.Logf("%d ADD_PROVIDER from %d identities: the victim holds %d of their records (before %d; most per peer %d, per key %d), %d registered (before %d); live heap %.1f MiB -> %.1f MiB",
		identities*(perIdentity+len(membership)), identities, unregAfter, unregBefore, worstPeer, worstKey, regAfter, regBefore, mib(heapBefore), mib(heapAfter))
	if unregAfter > lim.Total || worstPeer > lim.PerPeer || worstKey > lim.PerKey {
		t.Errorf("the victim holds %d unregistered records (limit %d), %d of one peer (limit %d), %d on one key (limit %d)",
			unregAfter, lim.Total, worstPeer, lim.PerPeer, worstKey, lim.PerKey)
	}
	if regAfter < regBefore {
		t.Errorf("registered records %d, were %d", regAfter, regBefore)
	}
	// ...and as its provider manager answers: kad-dht overlays the writes it
	// has not yet flushed (fewer than 256) on the store, so records the
	// store evicted since can show there until the next flush.
	const unflushed = 256
	total := 0
	sent(func(k []byte) {
		provs, err := victim.d.kad.ProviderStore().GetProviders(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range provs {
			if hostile[p.ID] {
				total++
			}
		}
	})
	t.Logf("its provider manager answers %d of them", total)
	if total > lim.Total+unflushed {
		t.Errorf("the provider manager answers %d unregistered records (limit %d + %d unflushed)", total, lim.Total, unflushed)
	}
	// Subnet keys list no unregistered provider, in the store or on the
	// wire; the registered member is still there.
	for _, k := range membership {
		provs, err := victim.d.kad.ProviderStore().GetProviders(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range provs {
			if hostile[p.ID] {
				t.Errorf("subnet key %x lists unregistered %s", k[:6], p.ID)
			}
		}
	}
	for _, p := range getProviders(ctx, t, attackers[0], victim.n.ID(), subnetKey) {
		if hostile[p.ID] {
			t.Errorf("GET_PROVIDERS for the subnet key answers unregistered %s", p.ID)
		}
	}
	if !providerOf(t, victim.d, subnetKey, member.n.ID()) {
		t.Error("the registered member's subnet record is gone")
	}
	for _, h := range attackers {
		for _, k := range []string{"/pk/" + string(h.ID()), string(ipns.NameFromPeer(h.ID()).RoutingKey())} {
			if rec := getValue(ctx, t, attackers[0], victim.n.ID(), k); rec != nil {
				t.Errorf("the victim serves %q", k[:4])
			}
		}
	}

	// The registered member keeps its share: everything it provides now is
	// kept, up to its own limit.
	messenger, err := kadpb.NewProtocolMessenger(member.d.kad.MessageSender())
	if err != nil {
		t.Fatal(err)
	}
	self := peer.AddrInfo{ID: member.n.ID(), Addrs: member.n.Addrs()}
	var mine [][]byte
	for range floodLimits.Registered.PerKey {
		k := randomKey(t)
		mine = append(mine, k)
		if err := messenger.PutProviderAddrs(ctx, victim.n.ID(), k, self); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "the member's records", func() bool {
		return victim.d.providers.held(member.n.ID(), registered) == len(mine)+1
	})
	for _, k := range mine {
		if !providerOf(t, victim.d, k, member.n.ID()) {
			t.Fatalf("the member's record for %x is missing", k[:6])
		}
	}
}

// An unregistered peer's provider records past its rate are refused (the
// batch's stream is reset), so a flood costs the neuron little work; a
// registered neuron is not held to the rate.
func TestProvideRate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	limit := ProvideRate{Rate: 1, Burst: 50, TotalRate: 1, TotalBurst: 50}
	reg := &registry{m: map[wallet.Address]uint16{}}
	ms := swarmWith(t, 2, reg, func(c *Config) { c.ProvideRate = limit })
	victim, member := ms[0], ms[1]
	for i, m := range ms {
		waitFor(t, ctx, "a routing table", func() bool { return m.d.RoutingTableSize() > 0 })
		if err := m.d.Join(ctx, 1, uint16(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	h := hostileHost(t, true)
	if err := h.Connect(ctx, peer.AddrInfo{ID: victim.n.ID(), Addrs: victim.n.Addrs()}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	refused := 0
	for b := range 10 {
		var batch [][]byte
		for j := range 20 {
			batch = append(batch, floodKey(900, 20*b+j))
		}
		if !sendAddProviders(ctx, h, victim.n.ID(), batch) {
			refused++
		}
	}
	held := victim.d.providers.held(h.ID(), unregistered)
	allowed := limit.Burst + int(limit.Rate*time.Since(began).Seconds()) + 1
	t.Logf("an unregistered peer sent 200 records in 10 batches: %d kept, %d batches refused (burst %d, %v a second)", held, refused, limit.Burst, limit.Rate)
	if held > allowed || refused < 7 {
		t.Errorf("kept %d records (rate allows %d), refused %d batches", held, allowed, refused)
	}
	// The registered member is not held to it.
	messenger, err := kadpb.NewProtocolMessenger(member.d.kad.MessageSender())
	if err != nil {
		t.Fatal(err)
	}
	self := peer.AddrInfo{ID: member.n.ID(), Addrs: member.n.Addrs()}
	for j := range 2 * limit.Burst {
		if err := messenger.PutProviderAddrs(ctx, victim.n.ID(), floodKey(901, j), self); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "the member's records", func() bool {
		return victim.d.providers.held(member.n.ID(), registered) == 2*limit.Burst+1
	})
}

// hostileHost is a plain go-libp2p host with a fresh key (secp256k1, the
// hotkeys' key type, or ed25519), not registered anywhere.
func hostileHost(t *testing.T, secp bool) host.Host {
	t.Helper()
	typ := crypto.Ed25519
	if secp {
		typ = crypto.Secp256k1
	}
	sk, _, err := crypto.GenerateKeyPair(typ, 256)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(sk), libp2p.NoListenAddrs, libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// fakeAddr is the address the attacker claims in its provider records.
var fakeAddr = ma.StringCast("/ip4/10.9.9.9/tcp/4001")

// sendAddProviders writes one ADD_PROVIDER per key on one stream and
// returns once the victim has handled them all and closed the stream
// (true), or refused one and reset it (false).
func sendAddProviders(ctx context.Context, h host.Host, to peer.ID, keys [][]byte) bool {
	s, err := h.NewStream(ctx, to, KadProtocol)
	if err != nil {
		return false
	}
	defer s.Close()
	w := bufio.NewWriter(s)
	for _, k := range keys {
		m := kadpb.NewMessage(kadpb.Message_ADD_PROVIDER, k, 0)
		m.ProviderPeers = []*kadpb.Message_Peer{{Id: []byte(h.ID()), Addrs: [][]byte{fakeAddr.Bytes()}}}
		if writeMsg(w, m) != nil {
			return false
		}
	}
	if w.Flush() != nil || s.CloseWrite() != nil {
		return false
	}
	_, err = io.Copy(io.Discard, s) // until the victim closes or resets
	return err == nil
}

// putValue sends a PUT_VALUE and reports whether the victim stored it (it
// echoes a stored record).
func putValue(ctx context.Context, t *testing.T, h host.Host, to peer.ID, rec *recpb.Record) bool {
	t.Helper()
	m := kadpb.NewMessage(kadpb.Message_PUT_VALUE, rec.Key, 0)
	m.Record = rec
	resp, err := roundTrip(ctx, h, to, m)
	return err == nil && resp.GetRecord() != nil
}

func getValue(ctx context.Context, t *testing.T, h host.Host, to peer.ID, key string) *recpb.Record {
	t.Helper()
	resp, err := roundTrip(ctx, h, to, kadpb.NewMessage(kadpb.Message_GET_VALUE, []byte(key), 0))
	if err != nil {
		return nil
	}
	return resp.GetRecord()
}

func getProviders(ctx context.Context, t *testing.T, h host.Host, to peer.ID, key []byte) []peer.AddrInfo {
	t.Helper()
	resp, err := roundTrip(ctx, h, to, kadpb.NewMessage(kadpb.Message_GET_PROVIDERS, key, 0))
	if err != nil {
		t.Fatalf("GET_PROVIDERS: %v", err)
	}
	var out []peer.AddrInfo
	for _, p := range kadpb.PBPeersToPeerInfos(resp.GetProviderPeers()) {
		out = append(out, *p)
	}
	return out
}

func roundTrip(ctx context.Context, h host.Host, to peer.ID, m *kadpb.Message) (*kadpb.Message, error) {
	s, err := h.NewStream(ctx, to, KadProtocol)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(30 * time.Second))
	w := bufio.NewWriter(s)
	if err := writeMsg(w, m); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	r := bufio.NewReader(s)
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > network.MessageSizeMax {
		return nil, errors.New("response too large")
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	var resp kadpb.Message
	return &resp, proto.Unmarshal(b, &resp)
}

func writeMsg(w io.Writer, m *kadpb.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}

func pkRecord(t *testing.T, h host.Host) *recpb.Record {
	t.Helper()
	pub, err := crypto.MarshalPublicKey(h.Peerstore().PubKey(h.ID()))
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("/pk/" + string(h.ID()))
	return &recpb.Record{Key: key, Value: pub}
}

func ipnsRecord(t *testing.T, h host.Host) *recpb.Record {
	t.Helper()
	p, err := path.NewPath("/ipfs/bafkqaaa")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ipns.NewRecord(h.Peerstore().PrivKey(h.ID()), p, 1, time.Now().Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ipns.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return &recpb.Record{Key: ipns.NameFromPeer(h.ID()).RoutingKey(), Value: b}
}

// floodKey is the jth key attacker i provides (i = -1: the keys every
// attacker provides).
func floodKey(i, j int) []byte {
	mh, _ := multihash.Sum(fmt.Appendf(nil, "flood %d %d", i, j), multihash.SHA2_256, -1)
	return mh
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	mh, err := multihash.Sum(b, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return mh
}

// providerOf reports whether d's provider store lists p for key.
func providerOf(t *testing.T, d *DHT, key []byte, p peer.ID) bool {
	t.Helper()
	provs, err := d.kad.ProviderStore().GetProviders(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range provs {
		if q.ID == p {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
