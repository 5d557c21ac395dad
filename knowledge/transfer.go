package knowledge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// FetchOption adjusts one fetch.
type FetchOption func(*fetchOptions)

type fetchOptions struct {
	providers []peer.AddrInfo
	progress  func(done, total int64)
	pin       bool
	maxSize   int64
	unprovide bool
}

// WithProviders tries these providers first (e.g. from an announcement or
// the command line), before those found on the DHT.
func WithProviders(p ...peer.AddrInfo) FetchOption {
	return func(o *fetchOptions) { o.providers = append(o.providers, p...) }
}

// WithProgress reports the body bytes received so far and the total (0
// until known).
func WithProgress(fn func(done, total int64)) FetchOption {
	return func(o *fetchOptions) { o.progress = fn }
}

// WithMaxSize refuses a body over n bytes (besides the library's
// MaxObjectSize): an object whose header declares more is refused with
// ErrTooLarge before any of its body is fetched, a bare body as soon as
// its root block declares more. n <= 0 leaves the library's limit alone.
func WithMaxSize(n int64) FetchOption { return func(o *fetchOptions) { o.maxSize = n } }

// Pinned pins what is fetched.
func Pinned() FetchOption { return func(o *fetchOptions) { o.pin = true } }

// Unprovided leaves what is fetched unadvertised on the DHT until the next
// re-provide (of pinned roots; an unpinned copy is never advertised), for
// callers that know enough others advertise it: every member of a subnet
// fetching what one of them announced need not each walk the DHT to say so.
func Unprovided() FetchOption { return func(o *fetchOptions) { o.unprovide = true } }

// A fetch whose providers all failed for transient reasons tries them
// again retryRounds times, after retryPause, 2×retryPause, ….
const (
	retryRounds = 3
	retryPause  = 250 * time.Millisecond
)

// Reputation thresholds and penalties.
const (
	penaltyBadBlock = 100
	penaltyProtocol = 20
	banBelow        = -100
)

// Fetch makes c complete in the local store: from the providers given and
// the one announced with it, all at once; when they cannot finish it, from
// the connected peers that serve the knowledge protocol (they may hold it),
// then from those found on the DHT. Providers fetching c at the same time serve
// each other the blocks they hold, each fetching its own share from the
// seeds (fetchsched.go). Every block is verified against its CID before it
// is stored or served; a provider that serves a bad block is penalized
// and dropped, and the fetch goes on from the others. What is fetched is
// unpinned unless Pinned is given, becomes searchable, and is provided on
// the DHT in the background unless Unprovided is given.
func (l *Library) Fetch(ctx context.Context, c cid.Cid, opts ...FetchOption) error {
	if err := checkCID(c); err != nil {
		return err
	}
	if err := l.alive(); err != nil {
		return err
	}
	var o fetchOptions
	for _, opt := range opts {
		opt(&o)
	}
	if rec, ok, err := l.store.root(c); err == nil && ok {
		if o.maxSize > 0 && rec.Size > o.maxSize {
			return fmt.Errorf("knowledge: %s: %w: the body of %d bytes exceeds %d", c, ErrTooLarge, rec.Size, o.maxSize)
		}
		if o.pin {
			return l.Pin(c)
		}
		return nil
	}
	if !o.pin && l.holdsBody(c) {
		return nil // the body of a local object: nothing to fetch
	}
	if l.host == nil {
		return fmt.Errorf("%w: %s is not local and the library is offline", ErrOffline, c)
	}
	f := &fetch{l: l, ctx: ctx, opts: o, im: l.store.newImport(ctx), sources: map[peer.ID]*source{},
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	f.im.behind = true // keep receiving (and serving) while blocks are written
	defer f.close()
	f.addProviders(o.providers)
	if a, ok := l.Announced(c); ok && a.Provider.ID != "" {
		f.addProviders([]peer.AddrInfo{a.Provider})
	}
	if err := f.run(c); err != nil {
		f.im.abort()
		return fmt.Errorf("knowledge: fetching %s: %w", c, err)
	}
	if !o.unprovide {
		l.queueProvide(c)
	}
	return nil
}

// fetch is one Fetch in progress. Its workers (fetchsched.go) share it
// under mu.
type fetch struct {
	l    *Library
	ctx  context.Context
	opts fetchOptions
	rng  *rand.Rand

	mu         sync.Mutex
	im         *importer
	providers  []peer.AddrInfo
	seen       map[peer.ID]bool
	asked      bool // the DHT was asked
	askedPeers bool // the connected peers were added (askConnected)
	sources    map[peer.ID]*source
	done       int64
	total      int64
	limit      int64
	lvl        *level // the level being fetched
}

// session is a stream to one provider.
type session struct {
	st network.Stream
	br *bufio.Reader
	bw *bufio.Writer
}

func (f *fetch) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sources {
		if s.sess != nil {
			s.sess.st.Close()
			s.sess = nil
		}
	}
}

// addProviders adds providers not known yet, neither this library nor
// banned; f.mu is held.
func (f *fetch) addProviders(ps []peer.AddrInfo) {
	if f.seen == nil {
		f.seen = map[peer.ID]bool{}
	}
	for _, p := range ps {
		if p.ID == "" || p.ID == f.l.host.ID() || f.seen[p.ID] || f.l.Reputation(p.ID) <= banBelow {
			continue
		}
		f.seen[p.ID] = true
		f.providers = append(f.providers, p)
		f.sources[p.ID] = &source{info: p}
	}
	// Better standing first; otherwise in the order found.
	sort.SliceStable(f.providers, func(i, j int) bool {
		return f.l.Reputation(f.providers[i].ID) > f.l.Reputation(f.providers[j].ID)
	})
}

// askConnected adds, once per fetch, up to maxConnectedAsked of the peers
// the host is connected to that serve the knowledge protocol, and says
// whether it added any. It comes before the DHT when the providers at hand
// failed or lack blocks: asking a connected peer costs a stream, where a
// DHT search walks the network, dialing and handshaking with dozens of
// peers, and the neighbours of a neuron fetching what was announced to its
// subnet have often fetched it already. In a 256-neuron localnet, miners
// fetching the documents announced by validators that were too busy to
// take more connections made 570 to 640 DHT searches, the most of any
// walk. A connected peer lacking the blocks says so in one round trip;
// one serving bad blocks is dropped and penalized like any provider.
func (f *fetch) askConnected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.askedPeers || f.l.host == nil {
		return false
	}
	f.askedPeers = true
	var found []peer.AddrInfo
	for _, p := range f.l.host.Network().Peers() {
		if f.seen[p] {
			continue
		}
		if ok, err := f.l.host.Peerstore().SupportsProtocols(p, ProtocolID); err != nil || len(ok) == 0 {
			continue
		}
		found = append(found, peer.AddrInfo{ID: p})
	}
	f.rng.Shuffle(len(found), func(i, j int) { found[i], found[j] = found[j], found[i] })
	before := len(f.providers)
	f.addProviders(found[:min(len(found), maxConnectedAsked)])
	return len(f.providers) > before
}

// maxConnectedAsked bounds the connected peers a fetch asks (askConnected).
const maxConnectedAsked = 8

// askDHT adds the DHT's providers of c, once per fetch, and says whether
// it found new ones.
func (f *fetch) askDHT(c cid.Cid) bool {
	f.mu.Lock()
	if f.asked || f.l.routing == nil {
		f.mu.Unlock()
		return false
	}
	f.asked = true
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(f.ctx, f.l.cfg.FindTimeout)
	defer cancel()
	found := f.l.routing.FindProviders(ctx, c, f.l.cfg.MaxProviders)
	f.mu.Lock()
	defer f.mu.Unlock()
	before := len(f.providers)
	f.addProviders(found)
	return len(f.providers) > before
}

func (f *fetch) run(c cid.Cid) error {
	f.limit = f.l.cfg.MaxObjectSize
	if n := f.opts.maxSize; n > 0 && n < f.limit {
		f.limit = n
	}
	body := c
	kind := kindFile
	if isObject(c) {
		kind = kindObject
		var obj *Object
		err := f.getAll(c, []cid.Cid{c}, func(_ cid.Cid, data []byte) error {
			var err error
			obj, err = DecodeObject(data)
			return err
		})
		if err != nil {
			return err
		}
		if obj.Size > uint64(f.limit) {
			return fmt.Errorf("%w: the body of %d bytes exceeds %d", ErrTooLarge, obj.Size, f.limit)
		}
		f.total = int64(obj.Size)
		body = obj.Body
	}
	size, err := f.body(c, body)
	if err != nil {
		return err
	}
	if kind == kindObject && size != f.total {
		return fmt.Errorf("%w: the body holds %d bytes, the object says %d", ErrBadBlock, size, f.total)
	}
	if err := f.im.commit(c, rootRecord{Kind: kind, Size: size, Pinned: f.opts.pin, Added: time.Now().UnixMilli()}); err != nil {
		return err
	}
	if kind == kindObject {
		if obj, err := f.l.localObject(c); err == nil {
			f.l.index.add(obj, true, f.l.bodyText(obj))
		}
	}
	return nil
}

// body fetches a body's DAG level by level and returns its length.
func (f *fetch) body(root, body cid.Cid) (int64, error) {
	level := []cid.Cid{body}
	want := map[cid.Cid]uint64{} // the size a parent declared
	var size int64
	for depth := 0; len(level) > 0; depth++ {
		if depth > maxDepth {
			return 0, fmt.Errorf("%w: DAG deeper than %d", ErrBadBlock, maxDepth)
		}
		var next []cid.Cid
		use := func(c cid.Cid, data []byte) error {
			n, err := decodeNode(c, data)
			if err != nil {
				return err
			}
			if w, ok := want[c]; ok && n.size != w {
				return fmt.Errorf("%w: %s holds %d bytes, its parent says %d", ErrBadBlock, c, n.size, w)
			}
			if depth == 0 {
				if n.size > uint64(f.limit) {
					return fmt.Errorf("%w: the body of %d bytes exceeds %d", ErrTooLarge, n.size, f.limit)
				}
				if f.total == 0 {
					f.total = int64(n.size)
				}
			}
			size += int64(len(n.data))
			if size > f.limit {
				return fmt.Errorf("%w: the body exceeds %d bytes", ErrTooLarge, f.limit)
			}
			for i, l := range n.links {
				want[l] = n.sizes[i]
				next = append(next, l)
			}
			if len(n.data) > 0 && f.opts.progress != nil {
				f.done += int64(len(n.data))
				f.opts.progress(f.done, f.total)
			}
			return nil
		}
		// A wide level is fetched a batch at a time: scheduling looks
		// through a batch's blocks for each request.
		for len(level) > 0 {
			batch := level[:min(len(level), maxBatch)]
			if err := f.getAll(root, batch, use); err != nil {
				return 0, err
			}
			level = level[len(batch):]
		}
		level = next
	}
	return size, nil
}

// errBadData marks a block that did not verify or decode: the provider
// that served it is at fault.
type errBadData struct{ err error }

func (e errBadData) Error() string { return e.err.Error() }
func (e errBadData) Unwrap() error { return e.err }

// inFlight is how many windows a fetch keeps requested from a provider:
// the provider reads and sends the next window while this side verifies
// and stores the current one.
const inFlight = 2

// errUnrecoverable: the content itself is invalid; no provider can help.
var errUnrecoverable = errors.New("knowledge: the content is invalid")
