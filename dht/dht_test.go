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

// Every neuron finds every other member of its subnet through the DHT.
func TestSubnetMembersFindEachOther(t *testing.T) {
	count := 50
	if testing.Short() {
		count = 16
	}
	reg := &registry{m: map[wallet.Address]uint16{}}
	ms := swarm(t, count, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, m := range ms {
		if err := m.d.Join(ctx, 1, uint16(i), []string{"/cybertensor/query/1.0.0"}); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
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
