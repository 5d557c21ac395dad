package knowledge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/knowledge/pb"
	neuronnode "github.com/cybertensor/cybertensor/node"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// relay is a stand-in for the gossip layer: it hands each announcement to
// the subscribers' Ingest.
type relay struct {
	mu   sync.Mutex
	from peer.ID
	subs []*Library
	errs []error
}

func (r *relay) Announce(_ context.Context, netuid uint16, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.subs {
		if _, err := l.Ingest(netuid, r.from, data); err != nil {
			r.errs = append(r.errs, err)
		}
	}
	return nil
}

// Subscribers index what others announce, search it and fetch it on
// demand from the announced provider.
func TestAnnouncementsSearchAndFetchOnDemand(t *testing.T) {
	ns := swarm(t, 3)
	pub, sub := ns[1], ns[2]
	r := &relay{from: pub.n.ID(), subs: []*Library{sub.lib}}
	pub.lib.announcer = r
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body := []byte("Validators set weights on miners every tempo; Yuma consensus turns them into incentive.")
	obj, err := pub.lib.Publish(ctx, bytes.NewReader(body), Meta{MediaType: "text/plain", Title: "How incentive is computed", Tags: []string{"yuma", "weights"}, Netuid: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.errs) > 0 {
		t.Fatal(r.errs)
	}
	hits := sub.lib.Search("incentive weights", 5, false)
	if len(hits) != 1 || !hits[0].CID.Equals(obj.CID) || hits[0].Local || hits[0].Size != uint64(len(body)) || hits[0].Author != obj.AuthorAddress() {
		t.Fatalf("remote hits %+v", hits)
	}
	if len(sub.lib.Search("incentive", 5, true)) != 0 {
		t.Fatal("an announced object counted as local")
	}
	a, ok := sub.lib.Announced(obj.CID)
	if !ok || a.Provider.ID != pub.n.ID() || len(a.Provider.Addrs) == 0 {
		t.Fatalf("announcement %+v", a)
	}
	// On demand: the announced provider serves it (no hints, and the
	// publisher's addresses come from the announcement).
	sub.n.Network().ClosePeer(pub.n.ID())
	sub.n.Peerstore().ClearAddrs(pub.n.ID())
	var out bytes.Buffer
	if _, err := sub.lib.Get(ctx, hits[0].CID, &out, Pinned()); err != nil || !bytes.Equal(out.Bytes(), body) {
		t.Fatalf("fetch on demand: %v", err)
	}
	if hits := sub.lib.Search("incentive", 5, true); len(hits) != 1 || !hits[0].Local {
		t.Fatalf("after the fetch: %+v", hits)
	}
	// Restart keeps the remote index.
	other := ns[0].lib
	if _, err := other.Ingest(7, pub.n.ID(), mustEncode(t, &Announcement{Object: obj})); err != nil {
		t.Fatal(err)
	}
	dir := other.cfg.Dir
	other.Close()
	again := openTest(t, dir, -1)
	if hits := again.Search("yuma", 5, false); len(hits) != 1 || hits[0].Local {
		t.Fatalf("remote index after restart: %+v", hits)
	}
	if a, ok := again.Announced(obj.CID); !ok || a.Provider.ID != pub.n.ID() {
		t.Fatal("the announcer was not kept as provider")
	}
}

func mustEncode(t *testing.T, a *Announcement) []byte {
	t.Helper()
	b, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIngestRejects(t *testing.T) {
	l := openTest(t, t.TempDir(), -1)
	o, err := newObject(key(1), Meta{Title: "t", Netuid: 2}, sumCID(0x55, []byte("b")), 1, nowForTest())
	if err != nil {
		t.Fatal(err)
	}
	good := mustEncode(t, &Announcement{Object: o})
	var m pb.Announcement
	proto.Unmarshal(good, &m)
	m.Object = append([]byte(nil), m.Object...)
	m.Object[len(m.Object)-1] ^= 1
	tampered, _ := proto.Marshal(&m)
	m.Object, m.Provider, m.Addrs = o.Envelope, nil, [][]byte{{0x04, 127, 0, 0, 1}}
	addrsOnly, _ := proto.Marshal(&m)
	withBody := func(obj *Object, body string) []byte {
		return mustEncode(t, &Announcement{Object: obj, Body: []byte(body)})
	}
	dagBody, err := newObject(key(1), Meta{Title: "t", Netuid: 2}, sumCID(cid.DagProtobuf, []byte("b")), 1, nowForTest())
	if err != nil {
		t.Fatal(err)
	}
	big, err := newObject(key(1), Meta{Title: "t", Netuid: 2}, sumCID(cid.Raw, make([]byte, MaxInlineBody+1)), MaxInlineBody+1, nowForTest())
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		netuid uint16
		data   []byte
	}{
		"other subnet":           {3, good},
		"tampered object":        {2, tampered},
		"garbage":                {2, []byte{0xff, 0x01}},
		"oversize":               {2, make([]byte, MaxAnnouncementSize+1)},
		"addresses, no provider": {2, addrsOnly},
		"another body":           {2, withBody(o, "c")},
		"a longer body":          {2, withBody(o, "bb")},
		"a body of a DAG":        {2, withBody(dagBody, "b")},
		"a body over the limit":  {2, withBody(big, string(make([]byte, MaxInlineBody+1)))},
	} {
		if _, err := l.Ingest(tc.netuid, "", tc.data); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if hits := l.Search("t", 5, false); len(hits) != 0 {
		t.Fatalf("a rejected announcement was indexed: %+v", hits)
	}
	if _, err := l.Ingest(2, "", good); err != nil {
		t.Fatal(err)
	}
	if a, err := l.Ingest(2, "", withBody(o, "b")); err != nil || string(a.Body) != "b" {
		t.Fatalf("an announcement carrying its body: %v, %q", err, a.Body)
	}
}

// A body of one raw block of at most MaxInlineBody bytes travels with its
// announcement, at publication and when announced again; a larger one is
// left to be fetched.
func TestSmallBodiesTravelWithTheirAnnouncements(t *testing.T) {
	ns := swarm(t, 1)
	me := ns[0]
	rec := &recorder{got: map[uint16][]*Announcement{}}
	me.lib.announcer = rec
	ctx := context.Background()
	small := []byte("A sentence short enough to travel with its announcement.")
	large := bytes.Repeat([]byte("x"), MaxInlineBody+1)
	for _, body := range [][]byte{small, large} {
		if _, err := me.lib.Publish(ctx, bytes.NewReader(body), Meta{MediaType: "text/plain", Title: fmt.Sprint(len(body)), Netuid: 1}); err != nil && !errors.Is(err, ErrNotShared) {
			t.Fatal(err)
		}
	}
	if err := me.lib.Reannounce(ctx, 1); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got[1]) != 4 {
		t.Fatalf("%d announcements, want 4", len(rec.got[1]))
	}
	for _, a := range rec.got[1] {
		switch a.Object.Size {
		case uint64(len(small)):
			if !bytes.Equal(a.Body, small) {
				t.Errorf("the small body did not travel: %q", a.Body)
			}
		default:
			if a.Body != nil {
				t.Errorf("a body of %d bytes travelled with its announcement", a.Object.Size)
			}
		}
	}
}

// recorder is an Announcer that keeps what it is given.
type recorder struct {
	mu  sync.Mutex
	got map[uint16][]*Announcement
}

func (r *recorder) Announce(_ context.Context, netuid uint16, data []byte) error {
	a, err := DecodeAnnouncement(data)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[netuid] = append(r.got[netuid], a)
	return nil
}

// Reannounce announces again exactly the pinned objects of the subnet that
// the library's own key published, naming this neuron as provider.
func TestReannounce(t *testing.T) {
	ns := swarm(t, 2)
	me, other := ns[0], ns[1]
	ctx := context.Background()
	publish := func(l *Library, title string, netuid uint16) *Object {
		o, err := l.Publish(ctx, bytes.NewReader([]byte(title+" body")), Meta{MediaType: "text/plain", Title: title, Netuid: netuid})
		if err != nil && !errors.Is(err, ErrNotShared) {
			t.Fatal(err)
		}
		return o
	}
	a := publish(me.lib, "a", 1)
	b := publish(me.lib, "b", 1)
	publish(me.lib, "other subnet", 2)
	unpinned := publish(me.lib, "unpinned", 1)
	if err := me.lib.Unpin(unpinned.CID); err != nil {
		t.Fatal(err)
	}
	// Someone else's object, announced to me and fetched, is not mine to announce.
	theirs := publish(other.lib, "theirs", 1)
	if err := me.lib.Fetch(ctx, theirs.CID, WithProviders(peer.AddrInfo{ID: other.n.ID(), Addrs: other.n.Addrs()}), Pinned()); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{got: map[uint16][]*Announcement{}}
	me.lib.announcer = rec
	if err := me.lib.Reannounce(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, an := range rec.got[1] {
		got[an.Object.CID.String()] = true
		if an.Provider.ID != me.n.ID() || len(an.Provider.Addrs) == 0 {
			t.Errorf("provider %v, want this neuron", an.Provider)
		}
	}
	if len(rec.got[1]) != 2 || !got[a.CID.String()] || !got[b.CID.String()] || len(rec.got[2]) != 0 {
		t.Fatalf("reannounced %v on subnet 1 and %d on subnet 2, want a and b only", got, len(rec.got[2]))
	}
}

// The same announcement heard again is not written again within
// remoteRefresh (its kept time stays), after it is (the time moves on), and
// a different announcement of the object always is.
func TestRepeatedAnnouncementsAreNotRewritten(t *testing.T) {
	l := openTest(t, t.TempDir(), -1)
	o, err := newObject(key(1), Meta{Title: "t", Netuid: 2}, sumCID(cid.Raw, []byte("b")), 1, nowForTest())
	if err != nil {
		t.Fatal(err)
	}
	kept := func() time.Time {
		t.Helper()
		var at time.Time
		l.store.db.View(func(tx *bolt.Tx) error {
			if v := tx.Bucket(bucketRemote).Get(o.CID.Bytes()); len(v) >= 8 {
				at = time.UnixMilli(int64(binary.BigEndian.Uint64(v[:8])))
			}
			return nil
		})
		return at
	}
	ann := mustEncode(t, &Announcement{Object: o})
	t0 := time.UnixMilli(1_800_000_000_000)
	for _, step := range []struct {
		data []byte
		at   time.Time
		want time.Time
	}{
		{ann, t0, t0},
		{ann, t0.Add(remoteRefresh - time.Second), t0},
		{ann, t0.Add(remoteRefresh), t0.Add(remoteRefresh)},
		{mustEncode(t, &Announcement{Object: o, Body: []byte("b")}), t0.Add(remoteRefresh + time.Second), t0.Add(remoteRefresh + time.Second)},
	} {
		if err := l.store.putRemote(o.CID, step.data, step.at, 100); err != nil {
			t.Fatal(err)
		}
		if got := kept(); !got.Equal(step.want) {
			t.Fatalf("put at %v: kept at %v, want %v", step.at.Sub(t0), got.Sub(t0), step.want.Sub(t0))
		}
	}
}

// Publish announces an object before its DHT provides end (a provide
// walks the network, for up to tens of seconds on a busy one), and walks
// for the object and its body at once.
func TestPublishAnnouncesBeforeProviding(t *testing.T) {
	n, err := neuronnode.New(context.Background(), neuronnode.DefaultTestConfig(key(1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	routing := &countingRouting{provided: map[cid.Cid]int{}, release: make(chan struct{})}
	rec := &recorder{got: map[uint16][]*Announcement{}}
	cfg := DefaultTestConfig(t.TempDir())
	cfg.Key = key(1)
	lib, err := Open(cfg, WithNetwork(n, routing), WithAnnouncer(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	done := make(chan error, 1)
	go func() {
		_, err := lib.Publish(context.Background(), bytes.NewReader([]byte("announced first")), Meta{MediaType: "text/plain", Title: "first", Netuid: 1})
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec.mu.Lock()
		announced := len(rec.got[1])
		rec.mu.Unlock()
		routing.mu.Lock()
		waiting := routing.running
		routing.mu.Unlock()
		if announced == 1 && waiting == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d announcements and %d provides waiting, want 1 announced while both provides wait", announced, waiting)
		}
		select {
		case err := <-done:
			t.Fatalf("Publish returned (%v) while its provides were held", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(routing.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if routing.most != 2 {
		t.Fatalf("at most %d provides at once, want 2 (the object and its body)", routing.most)
	}
}
