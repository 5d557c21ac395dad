package knowledge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/wallet"
)

// Library is a neuron's knowledge library: a durable store of signed,
// content-addressed objects, full-text search over them and over what
// others announced, and (with WithNetwork) the transfer protocol that
// serves and fetches blocks. It is safe for concurrent use.
type Library struct {
	cfg   Config
	log   *slog.Logger
	store *store
	index *index

	host      host.Host
	routing   Routing
	announcer Announcer
	penalizer Penalizer
	registry  Registry

	repMu      sync.Mutex
	reputation map[peer.ID]int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// provides queues fetched objects to advertise: one worker does the
	// DHT lookups one at a time, however many fetches finish at once.
	provides  chan cid.Cid
	provideMu sync.Mutex
	queued    map[cid.Cid]bool
	mu        sync.Mutex
	closed    bool
	streams   map[network.Stream]*slot // transfer streams held
	perPeer   map[peer.ID]int          // streams by peer, evicted ones until they end
	once      sync.Once
	err       error
}

// Open opens (or creates) the library in cfg.Dir, rebuilds its search
// index, and with WithNetwork starts serving blocks.
func Open(cfg Config, opts ...Option) (*Library, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	st, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Library{
		cfg: cfg, log: cfg.Logger.With("component", "knowledge"), store: st, index: newIndex(),
		reputation: map[peer.ID]int{}, ctx: ctx, cancel: cancel,
		streams: map[network.Stream]*slot{}, perPeer: map[peer.ID]int{},
		provides: make(chan cid.Cid, maxQueuedProvides), queued: map[cid.Cid]bool{},
	}
	for _, o := range opts {
		if err := o(l); err != nil {
			cancel()
			st.close()
			return nil, err
		}
	}
	if err := l.rebuildIndex(); err != nil {
		cancel()
		st.close()
		return nil, err
	}
	if l.host != nil {
		l.log = l.log.With("peer", l.host.ID())
		l.host.SetStreamHandler(ProtocolID, l.handleStream)
		if cfg.ReprovideEvery > 0 {
			l.wg.Add(1)
			go l.reprovideLoop()
		}
		if l.routing != nil {
			l.wg.Add(1)
			go l.provideLoop()
		}
	}
	return l, nil
}

// Close stops serving, waits for the library's goroutines and closes the
// store. It is safe to call more than once.
func (l *Library) Close() error {
	l.once.Do(func() {
		if l.host != nil {
			l.host.RemoveStreamHandler(ProtocolID)
		}
		l.mu.Lock()
		l.closed = true
		for st := range l.streams {
			st.Reset()
		}
		l.mu.Unlock()
		l.cancel()
		l.wg.Wait()
		l.err = l.store.close()
	})
	return l.err
}

func (l *Library) alive() error {
	if l.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

// rebuildIndex indexes every local object and kept announcement.
func (l *Library) rebuildIndex() error {
	roots, err := l.store.roots()
	if err != nil {
		return err
	}
	for _, r := range roots {
		if r.rec.Kind != kindObject {
			continue
		}
		obj, err := l.localObject(r.cid)
		if err != nil {
			l.log.Warn("skipping an unreadable object", "cid", r.cid, "err", err)
			continue
		}
		l.index.add(obj, true, l.bodyText(obj))
	}
	return l.store.remotes(func(c cid.Cid, ann []byte) {
		if l.index.isLocal(c) {
			return
		}
		if a, err := DecodeAnnouncement(ann); err == nil {
			l.index.add(a.Object, false, "")
		}
	})
}

// errEnough stops a body read early.
var errEnough = errors.New("enough")

type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if len(p) > room {
		c.buf.Write(p[:room])
		return room, errEnough
	}
	return c.buf.Write(p)
}

// bodyText returns the start of a text body for the search index.
func (l *Library) bodyText(o *Object) string {
	if !isText(o.MediaType) || l.cfg.IndexBodyBytes == 0 {
		return ""
	}
	w := &capped{max: l.cfg.IndexBodyBytes}
	if _, err := writeBody(l.ctx, o.Body, l.store.get, w); err != nil && !errors.Is(err, errEnough) {
		return ""
	}
	return w.buf.String()
}

// localObject decodes a stored object.
func (l *Library) localObject(c cid.Cid) (*Object, error) {
	env, err := l.store.get(c)
	if err != nil {
		return nil, err
	}
	return DecodeObject(env)
}

// Publish stores body as a new object signed by the hotkey, pins it, makes
// it searchable, announces it on subnet m.Netuid and provides it (and its
// body) on the DHT. A body over MaxObjectSize is ErrTooLarge: a regular
// file (an *os.File) or an in-memory reader (a Len method) is refused by
// its size before a byte is read, any other reader as soon as it passes
// the limit. When ctx is done, Publish stops within a chunk and returns
// ctx's error. Either failure leaves the store as it was; had the process
// died instead, the blocks it wrote belong to no root and the next GC
// removes them. If sharing fails the object is still stored and the error
// wraps ErrNotShared.
func (l *Library) Publish(ctx context.Context, body io.Reader, m Meta) (*Object, error) {
	if err := l.alive(); err != nil {
		return nil, err
	}
	if l.cfg.Key == nil {
		return nil, ErrNoKey
	}
	for i, c := range m.Links {
		if !isObject(c) {
			return nil, fmt.Errorf("%w: link %d: %s is not a knowledge object", ErrBadCID, i, c)
		}
	}
	if n, ok := knownSize(body); ok && n > l.cfg.MaxObjectSize {
		return nil, fmt.Errorf("knowledge: publishing: %w: the body is %d bytes, over the limit of %d", ErrTooLarge, n, l.cfg.MaxObjectSize)
	}
	im := l.store.newImport(ctx)
	defer im.abort()
	root, size, err := importBody(ctx, body, l.cfg.MaxObjectSize, im.put)
	if err != nil {
		return nil, fmt.Errorf("knowledge: publishing: %w", err)
	}
	obj, err := newObject(l.cfg.Key, m, root, uint64(size), time.Now())
	if err != nil {
		return nil, err
	}
	if err := im.put(obj.CID, obj.Envelope); err != nil {
		return nil, err
	}
	if err := im.commit(obj.CID, rootRecord{Kind: kindObject, Size: size, Pinned: true, Added: time.Now().UnixMilli()}); err != nil {
		return nil, err
	}
	l.index.add(obj, true, l.bodyText(obj))
	l.log.Info("published", "cid", obj.CID, "body", obj.Body, "size", size, "title", obj.Title)
	return obj, l.share(ctx, obj)
}

// knownSize is the bytes left in body when it can tell without reading:
// a regular file's size past its offset, or an in-memory reader's Len.
func knownSize(body io.Reader) (int64, bool) {
	switch b := body.(type) {
	case interface{ Len() int }:
		return int64(b.Len()), true
	case *os.File:
		fi, err := b.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		off, err := b.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, false
		}
		return fi.Size() - off, true
	}
	return 0, false
}

// share announces a new object and provides it (and its body) on the
// DHT. The announcement goes first: it names this neuron as the provider
// (and carries a small body), so the subnet has the object at once, while
// a DHT provide walks the network, which on a 256-neuron localnet
// starting up took up to 27 s. The two provides walk at once.
func (l *Library) share(ctx context.Context, obj *Object) error {
	var errs []error
	if l.announcer != nil {
		if err := l.announce(ctx, obj); err != nil {
			errs = append(errs, fmt.Errorf("announcing: %w", err))
		}
	}
	if l.routing != nil {
		cids := []cid.Cid{obj.CID, obj.Body}
		provided := make([]error, len(cids))
		var wg sync.WaitGroup
		for i, c := range cids {
			wg.Go(func() { provided[i] = l.routing.Provide(ctx, c) })
		}
		wg.Wait()
		errs = append(errs, provided...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotShared, obj.CID, err)
	}
	return nil
}

// announce announces obj on its subnet through the Announcer, naming this
// neuron (when networked) as the provider.
func (l *Library) announce(ctx context.Context, obj *Object) error {
	a := &Announcement{Object: obj}
	if l.host != nil {
		a.Provider = peer.AddrInfo{ID: l.host.ID(), Addrs: l.host.Addrs()}
	}
	if inlineBody(obj) {
		// A small body travels with it (a body too large, or not in the
		// store, is fetched as any other).
		if body, err := l.store.get(obj.Body); err == nil && checkInlineBody(obj, body) == nil {
			a.Body = body
		}
	}
	data, err := a.Encode()
	if err != nil {
		return err
	}
	return l.announcer.Announce(ctx, obj.Netuid, data)
}

// Reannounce announces again every pinned object of subnet netuid that
// this library's key published: gossip reaches only the neurons
// subscribed at the time, and neurons join later.
func (l *Library) Reannounce(ctx context.Context, netuid uint16) error {
	if err := l.alive(); err != nil {
		return err
	}
	if l.announcer == nil {
		return ErrOffline
	}
	if l.cfg.Key == nil {
		return ErrNoKey
	}
	me := l.cfg.Key.PublicKey().Address()
	entries, err := l.List()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if o := e.Object; o != nil && e.Pinned && o.Netuid == netuid && o.AuthorAddress() == me {
			if err := l.announce(ctx, o); err != nil {
				return fmt.Errorf("knowledge: announcing %s: %w", o.CID, err)
			}
		}
	}
	return nil
}

// holdsBody says whether c is the body of a complete local object (stored
// with it, so every block is here), though not a root of its own.
func (l *Library) holdsBody(c cid.Cid) bool {
	if isObject(c) {
		return false
	}
	roots, err := l.store.roots()
	if err != nil {
		return false
	}
	for _, r := range roots {
		if r.rec.Kind != kindObject {
			continue
		}
		if o, err := l.localObject(r.cid); err == nil && o.Body.Equals(c) {
			return true
		}
	}
	return false
}

// Has says whether c (an object, or a body fetched by its own CID) is
// complete in the local store.
func (l *Library) Has(c cid.Cid) bool {
	_, ok, err := l.store.root(c)
	return ok && err == nil
}

// Holds says whether Get can read c from the local store without fetching:
// an object or a body kept as a root (Has), or the body of a complete
// local object.
func (l *Library) Holds(c cid.Cid) bool {
	return l.Has(c) || l.holdsBody(c)
}

// Object returns a local object's header.
func (l *Library) Object(c cid.Cid) (*Object, error) {
	if err := checkCID(c); err != nil {
		return nil, err
	}
	if !isObject(c) {
		return nil, fmt.Errorf("%w: %s is a body, not an object", ErrBadCID, c)
	}
	if !l.Has(c) {
		return nil, fmt.Errorf("%w: %s is not in the library", ErrNotFound, c)
	}
	return l.localObject(c)
}

// Get writes the body of c to w: an object's body, or a UnixFS file
// addressed by its own CID (kept as a root, or as the body of a local
// object). What is not local is fetched first (see Fetch). It returns the
// object, nil for a bare body.
func (l *Library) Get(ctx context.Context, c cid.Cid, w io.Writer, opts ...FetchOption) (*Object, error) {
	if err := checkCID(c); err != nil {
		return nil, err
	}
	if !l.Holds(c) {
		if err := l.Fetch(ctx, c, opts...); err != nil {
			return nil, err
		}
	}
	body := c
	var obj *Object
	if isObject(c) {
		var err error
		if obj, err = l.localObject(c); err != nil {
			return nil, err
		}
		body = obj.Body
	}
	if _, err := writeBody(ctx, body, l.store.get, w); err != nil {
		return obj, fmt.Errorf("knowledge: reading %s: %w", body, err)
	}
	return obj, nil
}

// ReadRange returns length bytes at offset of the body of c (an object,
// or a body by its own CID) from the local store, reading only the blocks
// that hold them; ErrNotFound if c is not held here (nothing is fetched),
// ErrOutOfRange if the body ends before offset+length.
func (l *Library) ReadRange(ctx context.Context, c cid.Cid, offset, length uint64) ([]byte, error) {
	if err := checkCID(c); err != nil {
		return nil, err
	}
	if length > MaxRangeRead {
		return nil, fmt.Errorf("knowledge: a range of %d bytes exceeds %d", length, MaxRangeRead)
	}
	if !l.Holds(c) {
		return nil, fmt.Errorf("%w: %s is not held here", ErrNotFound, c)
	}
	body := c
	if isObject(c) {
		obj, err := l.localObject(c)
		if err != nil {
			return nil, err
		}
		body = obj.Body
	}
	var buf bytes.Buffer
	if _, err := writeBodyRange(ctx, body, l.store.get, &buf, offset, length); err != nil {
		return nil, fmt.Errorf("knowledge: reading %s: %w", body, err)
	}
	if uint64(buf.Len()) < length {
		return nil, fmt.Errorf("%w: %d bytes at %d of %s", ErrOutOfRange, length, offset, c)
	}
	return buf.Bytes(), nil
}

// MaxRangeRead bounds a ReadRange.
const MaxRangeRead = 16 << 20

// Entry is a root of the local library.
type Entry struct {
	CID cid.Cid `json:"cid"`
	// Object is nil for a body fetched by its own CID.
	Object *Object `json:"-"`
	// Size is the body's length; Bytes what its blocks take.
	Size   int64     `json:"size"`
	Bytes  int64     `json:"bytes"`
	Pinned bool      `json:"pinned"`
	Added  time.Time `json:"added"`
}

// List returns the local roots, oldest first.
func (l *Library) List() ([]Entry, error) {
	roots, err := l.store.roots()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(roots))
	for _, r := range roots {
		e := Entry{CID: r.cid, Size: r.rec.Size, Bytes: r.rec.Bytes, Pinned: r.rec.Pinned, Added: time.UnixMilli(r.rec.Added).UTC()}
		if r.rec.Kind == kindObject {
			if e.Object, err = l.localObject(r.cid); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Pin keeps c through garbage collection.
func (l *Library) Pin(c cid.Cid) error {
	if err := checkCID(c); err != nil {
		return err
	}
	return l.store.setPinned(c, true)
}

// Unpin lets the next garbage collection remove c.
func (l *Library) Unpin(c cid.Cid) error {
	if err := checkCID(c); err != nil {
		return err
	}
	return l.store.setPinned(c, false)
}

// GC removes every unpinned root and the blocks no pinned root needs.
func (l *Library) GC() (GCStats, error) {
	if err := l.alive(); err != nil {
		return GCStats{}, err
	}
	before, err := l.store.roots()
	if err != nil {
		return GCStats{}, err
	}
	st, err := l.store.gc()
	if err != nil {
		return st, fmt.Errorf("knowledge: collecting garbage: %w", err)
	}
	for _, r := range before {
		if !r.rec.Pinned {
			l.index.remove(r.cid)
		}
	}
	return st, nil
}

// Usage returns the bytes held in blocks and the limit.
func (l *Library) Usage() (used, limit int64) { return l.store.used(), l.cfg.MaxStoreSize }

// Search ranks local objects and announced ones by BM25 over title, tags
// and (for local text bodies) the body; at most k hits. localOnly leaves
// out what is only announced.
func (l *Library) Search(query string, k int, localOnly bool) []Hit {
	return l.index.search(query, k, func(h Hit) bool { return h.Local || !localOnly })
}

// Announced returns an announcement kept in the remote index.
func (l *Library) Announced(c cid.Cid) (*Announcement, bool) {
	b, ok := l.store.remote(c)
	if !ok {
		return nil, false
	}
	a, err := DecodeAnnouncement(b)
	return a, err == nil
}

// reprovideLoop provides every pinned root again each ReprovideEvery.
func (l *Library) reprovideLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.ReprovideEvery)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
			if err := l.Reprovide(l.ctx); err != nil {
				l.log.Warn("reproviding", "err", err)
			}
		}
	}
}

// Reprovide provides every pinned root (and each object's body) on the
// DHT now; the library also does it every ReprovideEvery.
func (l *Library) Reprovide(ctx context.Context) error {
	if l.routing == nil {
		return ErrOffline
	}
	roots, err := l.store.roots()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range roots {
		if !r.rec.Pinned {
			continue
		}
		cids := []cid.Cid{r.cid}
		if isObject(r.cid) {
			if o, err := l.localObject(r.cid); err == nil {
				cids = append(cids, o.Body)
			}
		}
		for _, c := range cids {
			if err := l.routing.Provide(ctx, c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// maxQueuedProvides bounds the fetched objects waiting to be advertised;
// beyond it they wait for the next reprovide.
const maxQueuedProvides = 1024

// queueProvide queues c (a fetched object or block) to be advertised,
// unless it is queued already or the queue is full.
func (l *Library) queueProvide(c cid.Cid) {
	if l.routing == nil {
		return
	}
	l.provideMu.Lock()
	defer l.provideMu.Unlock()
	if l.queued[c] {
		return
	}
	select {
	case l.provides <- c:
		l.queued[c] = true
	default:
		l.log.Debug("provide queue full; the next reprovide advertises it", "cid", c)
	}
}

// provideLoop advertises queued CIDs one at a time until Close.
func (l *Library) provideLoop() {
	defer l.wg.Done()
	for {
		select {
		case <-l.ctx.Done():
			return
		case c := <-l.provides:
			l.provideMu.Lock()
			delete(l.queued, c)
			l.provideMu.Unlock()
			l.provide(c)
		}
	}
}

// provide advertises c (and an object's body) within FindTimeout.
func (l *Library) provide(c cid.Cid) {
	cids := []cid.Cid{c}
	if isObject(c) {
		if o, err := l.localObject(c); err == nil {
			cids = append(cids, o.Body)
		}
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.FindTimeout)
	defer cancel()
	for _, x := range cids {
		if err := l.routing.Provide(ctx, x); err != nil {
			l.log.Debug("providing", "cid", x, "err", err)
		}
	}
}

// Reputation is a provider's standing with this library: negative after
// it served bad blocks or broke the protocol.
func (l *Library) Reputation(p peer.ID) int {
	l.repMu.Lock()
	defer l.repMu.Unlock()
	return l.reputation[p]
}

// penalize lowers a provider's standing and tells the Penalizer.
func (l *Library) penalize(p peer.ID, by int, reason string) {
	l.repMu.Lock()
	l.reputation[p] -= by
	l.repMu.Unlock()
	l.log.Warn("penalizing a provider", "provider", p, "reason", reason)
	if l.penalizer != nil {
		l.penalizer.Penalize(p, reason)
	}
}

// Key returns the hotkey that signs, nil if none.
func (l *Library) Key() *wallet.PrivateKey { return l.cfg.Key }
