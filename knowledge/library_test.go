package knowledge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

func openTest(t *testing.T, dir string, k int, tweak ...func(*Config)) *Library {
	t.Helper()
	cfg := DefaultTestConfig(dir)
	if k >= 0 {
		cfg.Key = key(k)
	}
	for _, f := range tweak {
		f(&cfg)
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func publish(t *testing.T, l *Library, body []byte, m Meta) *Object {
	t.Helper()
	o, err := l.Publish(context.Background(), bytes.NewReader(body), m)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func get(t *testing.T, l *Library, c cid.Cid) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := l.Get(context.Background(), c, &out); err != nil {
		t.Fatalf("get %s: %v", c, err)
	}
	return out.Bytes()
}

// snapshot is what a failed operation must leave unchanged.
func snapshot(t *testing.T, l *Library) string {
	t.Helper()
	es, err := l.List()
	if err != nil {
		t.Fatal(err)
	}
	used, _ := l.Usage()
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.CID.String())
	}
	var blocks int
	l.store.db.View(func(tx *boltTx) error { blocks = blocksOf(tx).count(); return nil })
	return b.String() + "|" + itoa(used) + "|" + itoa(int64(blocks))
}

func TestPublishGetAndRestart(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, 1)
	text := []byte("Yuma consensus clips weights above the stake-weighted median.")
	o := publish(t, l, text, Meta{MediaType: "text/plain", Title: "Yuma clipping", Tags: []string{" Consensus ", "yuma", "YUMA"}, Netuid: 3})
	if !isObject(o.CID) || o.Size != uint64(len(text)) || o.Netuid != 3 || o.AuthorAddress() != key(1).PublicKey().Address() {
		t.Fatalf("object %+v", o)
	}
	if strings.Join(o.Tags, ",") != "consensus,yuma" {
		t.Fatalf("tags %q", o.Tags)
	}
	big := goRandom(3*ChunkSize+17, 7)
	o2 := publish(t, l, big, Meta{Title: "random bytes", Links: []cid.Cid{o.CID}})
	if len(o2.Links) != 1 || !o2.Links[0].Equals(o.CID) || o2.Body.Type() != cid.DagProtobuf {
		t.Fatalf("linked object %+v", o2)
	}
	if !bytes.Equal(get(t, l, o.CID), text) || !bytes.Equal(get(t, l, o2.CID), big) {
		t.Fatal("bodies differ")
	}
	// The body is also addressable by its own (IPFS) CID once held as a
	// root; as part of an object it is read through the object.
	if hits := l.Search("median clipping", 5, true); len(hits) == 0 || !hits[0].CID.Equals(o.CID) {
		t.Fatalf("search: %+v", hits)
	}
	before := snapshot(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := l.Publish(context.Background(), strings.NewReader("x"), Meta{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}

	// Restart: the library, its pins and its search index are back.
	l2 := openTest(t, dir, 1)
	if after := snapshot(t, l2); after != before {
		t.Fatalf("after restart %s, before %s", after, before)
	}
	if !bytes.Equal(get(t, l2, o2.CID), big) {
		t.Fatal("body differs after restart")
	}
	got, err := l2.Object(o.CID)
	if err != nil || got.Title != "Yuma clipping" || !got.Time.Equal(o.Time) {
		t.Fatalf("object after restart: %+v %v", got, err)
	}
	if hits := l2.Search("yuma", 5, true); len(hits) != 1 || !hits[0].Local {
		t.Fatalf("search after restart: %+v", hits)
	}
	es, _ := l2.List()
	if len(es) != 2 || !es[0].Pinned || !es[1].Pinned || es[1].Size != int64(len(big)) {
		t.Fatalf("list %+v", es)
	}
}

func TestPinUnpinAndGC(t *testing.T) {
	l := openTest(t, t.TempDir(), 1)
	shared := goRandom(2*ChunkSize, 1)
	a := publish(t, l, shared, Meta{Title: "a"})
	b := publish(t, l, shared, Meta{Title: "b"}) // same body, another object
	c := publish(t, l, goRandom(ChunkSize+5, 2), Meta{Title: "c"})
	if err := l.Unpin(a.CID); err != nil {
		t.Fatal(err)
	}
	if err := l.Unpin(c.CID); err != nil {
		t.Fatal(err)
	}
	used, _ := l.Usage()
	st, err := l.GC()
	if err != nil {
		t.Fatal(err)
	}
	if st.Roots != 2 || l.Has(a.CID) || l.Has(c.CID) || !l.Has(b.CID) {
		t.Fatalf("gc %+v", st)
	}
	// b's body (shared with a) survives; c's blocks and a's envelope go.
	if !bytes.Equal(get(t, l, b.CID), shared) {
		t.Fatal("shared body lost")
	}
	after, _ := l.Usage()
	if after != used-st.Bytes || st.Blocks != 4+1 || st.Bytes < int64(ChunkSize) {
		t.Fatalf("used %d -> %d, %+v", used, after, st)
	}
	if hits := l.Search("c", 5, false); len(hits) != 0 {
		t.Fatalf("collected object still found: %+v", hits)
	}
	if err := l.Pin(c.CID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pin of a collected object: %v", err)
	}
	if _, err := l.Get(context.Background(), c.CID, &bytes.Buffer{}); !errors.Is(err, ErrOffline) {
		t.Fatalf("get of a collected object offline: %v", err)
	}
	if st, _ := l.GC(); st.Roots != 0 || st.Blocks != 0 {
		t.Fatalf("second gc %+v", st)
	}
}

func TestBadCIDsAndOversizeChangeNothing(t *testing.T) {
	l := openTest(t, t.TempDir(), 1, func(c *Config) { c.MaxObjectSize, c.MaxStoreSize = 1<<20, 3<<20 })
	keep := publish(t, l, []byte("kept"), Meta{Title: "kept"})
	before := snapshot(t, l)

	for _, s := range []string{"", "hello", "bafy", "QmNotACid", keep.CID.String() + "x",
		// identity hash, sha2-512, dag-cbor
		"bafkqaaa", "bafkrgqg5v422de2ox2gkq6mpqwy4vqxoz5sk2bcvgfgspvgmnlb2dkuqb3dyvxlywhtaxbymk6bujcq5iaxe4pcyamkkyzzyclvipamd5bwmq",
		"bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"} {
		if _, err := ParseCID(s); !errors.Is(err, ErrBadCID) {
			t.Errorf("ParseCID(%q): %v", s, err)
		}
	}
	if err := l.Pin(cid.Undef); !errors.Is(err, ErrBadCID) {
		t.Errorf("pin undef: %v", err)
	}
	missing := sumCID(CodecObject, []byte("nothing"))
	if _, err := l.Get(context.Background(), missing, &bytes.Buffer{}); !errors.Is(err, ErrOffline) {
		t.Errorf("get missing: %v", err)
	}
	if err := l.Unpin(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("unpin missing: %v", err)
	}
	if _, err := l.Object(keep.Body); !errors.Is(err, ErrBadCID) {
		t.Errorf("a body as an object: %v", err)
	}
	// A body one byte over the limit, after 4 full chunks were written
	// (MultiReader hides the size that bytes.Reader tells).
	_, err := l.Publish(context.Background(), io.MultiReader(bytes.NewReader(make([]byte, 1<<20+1))), Meta{Title: "too big"})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "exceeds 1048576 bytes") {
		t.Fatalf("oversize body: %v", err)
	}
	// The same body whose size is known is refused by it, unread.
	_, err = l.Publish(context.Background(), bytes.NewReader(make([]byte, 1<<20+1)), Meta{Title: "too big"})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "is 1048577 bytes, over the limit of 1048576") {
		t.Fatalf("oversize body of known size: %v", err)
	}
	// Header limits.
	for name, m := range map[string]Meta{
		"title":      {Title: strings.Repeat("t", MaxTitleLen+1)},
		"tags":       {Tags: strings.Fields("a b c d e f g h i j k l m n o p q")},
		"tag length": {Tags: []string{strings.Repeat("t", MaxTagLen+1)}},
		"link":       {Links: []cid.Cid{keep.Body}},
	} {
		if _, err := l.Publish(context.Background(), strings.NewReader("x"), m); !errors.Is(err, ErrBadObject) && !errors.Is(err, ErrBadCID) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if after := snapshot(t, l); after != before {
		t.Fatalf("failed operations changed the store: %s, was %s", after, before)
	}

	// Store full: three pinned 1 MiB bodies fit in 3 MiB only twice over
	// (with the DAG nodes); the third fails and changes nothing.
	publish(t, l, goRandom(1<<20, 1), Meta{Title: "one"})
	publish(t, l, goRandom(1<<20, 2), Meta{Title: "two"})
	before = snapshot(t, l)
	if _, err := l.Publish(context.Background(), bytes.NewReader(goRandom(1<<20, 3)), Meta{Title: "three"}); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("over the store limit: %v", err)
	}
	if after := snapshot(t, l); after != before {
		t.Fatalf("a full store changed: %s, was %s", after, before)
	}
	// Unpinned objects make room by themselves.
	es, _ := l.List()
	l.Unpin(es[len(es)-1].CID)
	publish(t, l, goRandom(1<<20, 3), Meta{Title: "three"})

	// A library without a key cannot publish.
	ro := openTest(t, t.TempDir(), -1)
	if _, err := ro.Publish(context.Background(), strings.NewReader("x"), Meta{}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("publish without a key: %v", err)
	}
}

func TestSearchRanks(t *testing.T) {
	l := openTest(t, t.TempDir(), 1)
	docs := []struct {
		title, tags, body string
	}{
		{"Bonds in Yuma consensus", "bonds,yuma", "Validators accumulate bonds in miners they weight; bonds earn dividends."},
		{"Gossip topics", "gossip,pubsub", "Each subnet has a knowledge topic for announcements."},
		{"Cooking pasta", "food", "Boil water, add salt, cook the pasta; no consensus required."},
	}
	var objs []*Object
	for _, d := range docs {
		objs = append(objs, publish(t, l, []byte(d.body), Meta{MediaType: "text/markdown", Title: d.title, Tags: strings.Split(d.tags, ",")}))
	}
	hits := l.Search("consensus bonds", 10, true)
	if len(hits) != 2 || !hits[0].CID.Equals(objs[0].CID) || !hits[1].CID.Equals(objs[2].CID) || hits[0].Score <= hits[1].Score {
		t.Fatalf("hits %+v", hits)
	}
	if hits := l.Search("announcements", 10, true); len(hits) != 1 || !hits[0].CID.Equals(objs[1].CID) {
		t.Fatalf("body term: %+v", hits)
	}
	if hits := l.Search("the of", 10, true); hits != nil {
		t.Fatalf("stopwords only: %+v", hits)
	}
}

func TestObjectSignature(t *testing.T) {
	o, err := newObject(key(1), Meta{Title: "t"}, sumCID(cid.Raw, []byte("b")), 1, nowForTest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeObject(o.Envelope); err != nil {
		t.Fatal(err)
	}
	for i := range o.Envelope {
		bad := append([]byte(nil), o.Envelope...)
		bad[i] ^= 0x01
		if got, err := DecodeObject(bad); err == nil && got.Title == o.Title && got.Body.Equals(o.Body) && got.Author.Equal(o.Author) && got.Time.Equal(o.Time) {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
}

// An envelope decoded again is not verified again (its author comes from
// verifiedObjects), an altered copy of a cached envelope is still refused,
// and the cache stays within maxVerifiedObjects.
func TestVerifiedObjectsAreKeptBounded(t *testing.T) {
	o, err := newObject(key(2), Meta{Title: "cached"}, sumCID(cid.Raw, []byte("c")), 1, nowForTest())
	if err != nil {
		t.Fatal(err)
	}
	first, err := DecodeObject(o.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(o.Envelope)
	if verifiedObjects.get(digest) != first.Author {
		t.Fatal("a verified envelope was not kept")
	}
	again, err := DecodeObject(o.Envelope)
	if err != nil || again.Author != first.Author || !again.CID.Equals(first.CID) || again.Title != "cached" {
		t.Fatalf("decoded again: %+v, %v", again, err)
	}
	bad := append([]byte(nil), o.Envelope...)
	bad[len(bad)-1] ^= 0x01 // the signature's last byte
	if _, err := DecodeObject(bad); !errors.Is(err, ErrBadObject) {
		t.Fatalf("an altered signature after the envelope was cached: %v", err)
	}
	if verifiedObjects.get(sha256.Sum256(bad)) != nil {
		t.Fatal("an envelope that did not verify was kept")
	}
	for i := range maxVerifiedObjects + 5 {
		o, err := newObject(key(2), Meta{Title: fmt.Sprint(i)}, sumCID(cid.Raw, []byte("c")), 1, nowForTest())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeObject(o.Envelope); err != nil {
			t.Fatal(err)
		}
		if n := verifiedObjects.len(); n > maxVerifiedObjects {
			t.Fatalf("%d envelopes kept, more than %d", n, maxVerifiedObjects)
		}
	}
}

// A local object's body is readable by the body's own CID, with no
// network; a body that is not here still needs one.
func TestGetBodyOfLocalObject(t *testing.T) {
	l := openTest(t, t.TempDir(), 1)
	body := []byte("name: qa\nsynapses: [text.generate]\n")
	o := publish(t, l, body, Meta{MediaType: "application/yaml", Title: "spec"})
	var out bytes.Buffer
	got, err := l.Get(context.Background(), o.Body, &out)
	if err != nil || got != nil || !bytes.Equal(out.Bytes(), body) {
		t.Fatalf("Get(body) = %v, %q, %v", got, out.String(), err)
	}
	other := sumCID(cid.Raw, []byte("not here"))
	if _, err := l.Get(context.Background(), other, io.Discard); !errors.Is(err, ErrOffline) {
		t.Fatalf("an absent body offline: %v", err)
	}
}

// ReadRange reads a local object's bytes by range, refuses what is not
// held or past the end, and fetches nothing.
func TestReadRange(t *testing.T) {
	l := openTest(t, t.TempDir(), 1)
	body := goRandom(3*ChunkSize+99, 3)
	o := publish(t, l, body, Meta{Title: "ranges"})
	ctx := context.Background()
	for _, c := range []cid.Cid{o.CID, o.Body} {
		got, err := l.ReadRange(ctx, c, ChunkSize-10, 20)
		if err != nil || !bytes.Equal(got, body[ChunkSize-10:ChunkSize+10]) {
			t.Fatalf("%s: %v", c, err)
		}
	}
	if _, err := l.ReadRange(ctx, o.CID, uint64(len(body))-5, 10); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	if _, err := l.ReadRange(ctx, o.CID, 0, MaxRangeRead+1); err == nil {
		t.Fatal("an oversized range was read")
	}
	other := openTest(t, t.TempDir(), 2)
	if _, err := other.ReadRange(ctx, o.CID, 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("not held: %v", err)
	}
}

// A library open elsewhere is refused within OpenTimeout with ErrInUse
// naming the holder (#20 bug 1); closed, it opens.
func TestOpenInUse(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, 1)
	_, err := Open(DefaultTestConfig(dir))
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "library.db is in use by another process (pid "+itoa(int64(os.Getpid()))+")") {
		t.Fatalf("opening a library open elsewhere: %v", err)
	}
	l.Close()
	openTest(t, dir, 1)
}
