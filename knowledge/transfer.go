package knowledge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sort"
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

// Fetch makes c complete in the local store: from the providers given,
// those announced with it, then those found on the DHT. Every block is
// verified against its CID before it is stored; a provider that serves a
// bad block is penalized and dropped, and the fetch goes on from the
// next. What is fetched is unpinned unless Pinned is given, becomes
// searchable, and is provided on the DHT in the background.
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
	f := &fetch{l: l, ctx: ctx, opts: o, im: l.store.newImport(ctx), streams: map[peer.ID]*session{}, dead: map[peer.ID]bool{}, failed: map[peer.ID]bool{}}
	defer f.close()
	f.addProviders(o.providers)
	if a, ok := l.Announced(c); ok && a.Provider.ID != "" {
		f.addProviders([]peer.AddrInfo{a.Provider})
	}
	if err := f.run(c); err != nil {
		f.im.abort()
		return fmt.Errorf("knowledge: fetching %s: %w", c, err)
	}
	l.queueProvide(c)
	return nil
}

// fetch is one Fetch in progress.
type fetch struct {
	l         *Library
	ctx       context.Context
	opts      fetchOptions
	im        *importer
	providers []peer.AddrInfo
	seen      map[peer.ID]bool
	asked     bool // the DHT was asked
	streams   map[peer.ID]*session
	dead      map[peer.ID]bool // not asked again in this fetch
	failed    map[peer.ID]bool // dead for a transient failure
	done      int64
	total     int64
	limit     int64
}

// session is a stream to one provider.
type session struct {
	st network.Stream
	br *bufio.Reader
	bw *bufio.Writer
}

func (f *fetch) close() {
	for _, s := range f.streams {
		s.st.Close()
	}
}

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
	}
	// Better standing first; otherwise in the order found.
	sort.SliceStable(f.providers, func(i, j int) bool {
		return f.l.Reputation(f.providers[i].ID) > f.l.Reputation(f.providers[j].ID)
	})
}

// askDHT adds the DHT's providers of c, once per fetch.
func (f *fetch) askDHT(c cid.Cid) bool {
	if f.asked || f.l.routing == nil {
		return false
	}
	f.asked = true
	ctx, cancel := context.WithTimeout(f.ctx, f.l.cfg.FindTimeout)
	defer cancel()
	before := len(f.providers)
	f.addProviders(f.l.routing.FindProviders(ctx, c, f.l.cfg.MaxProviders))
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
		err := f.getAll(root, level, func(c cid.Cid, data []byte) error {
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
		})
		if err != nil {
			return 0, err
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

// getAll gets every CID of cids (in order, in windows), verifying each
// block, storing it and handing it to use. It moves from provider to
// provider as they fail or lack blocks.
func (f *fetch) getAll(root cid.Cid, cids []cid.Cid, use func(c cid.Cid, data []byte) error) error {
	pending := cids
	tried := map[peer.ID]bool{}
	rounds := 0
	for len(pending) > 0 {
		p, ok := f.pick(tried)
		if !ok {
			if f.askDHT(root) {
				continue
			}
			if len(f.failed) > 0 && rounds < retryRounds {
				// Providers that failed to connect or broke a stream may
				// be reachable again shortly (dial backoff, limits).
				rounds++
				select {
				case <-f.ctx.Done():
					return f.ctx.Err()
				case <-time.After(time.Duration(rounds) * retryPause):
				}
				for id := range f.failed {
					delete(f.dead, id)
					delete(tried, id)
				}
				f.failed = map[peer.ID]bool{}
				continue
			}
			return fmt.Errorf("%w: %d blocks at none of %d providers", ErrNotFound, len(pending), len(f.providers))
		}
		tried[p.ID] = true
		var err error
		pending, err = f.from(p, pending, use)
		if err == nil {
			continue
		}
		var bad errBadData
		switch {
		case f.ctx.Err() != nil:
			return f.ctx.Err()
		case errors.Is(err, errUnrecoverable), errors.Is(err, ErrTooLarge), errors.Is(err, ErrStoreFull):
			return err
		case errors.As(err, &bad):
			f.l.penalize(p.ID, penaltyBadBlock, bad.Error())
			f.drop(p.ID)
		default:
			f.l.log.Debug("provider failed", "provider", p.ID, "err", err)
			f.drop(p.ID)
			f.failed[p.ID] = true
		}
	}
	return nil
}

// pick returns the best provider neither dropped nor tried.
func (f *fetch) pick(tried map[peer.ID]bool) (peer.AddrInfo, bool) {
	for _, p := range f.providers {
		if !f.dead[p.ID] && !tried[p.ID] {
			return p, true
		}
	}
	return peer.AddrInfo{}, false
}

func (f *fetch) drop(id peer.ID) {
	f.dead[id] = true
	if s, ok := f.streams[id]; ok {
		s.st.Reset()
		delete(f.streams, id)
	}
}

// inFlight is how many windows a fetch keeps requested from a provider:
// the provider reads and sends the next window while this side verifies
// and stores the current one.
const inFlight = 2

// from asks one provider for cids, window by window, with up to inFlight
// windows requested ahead; it returns what the provider lacks (or what is
// left when it failed, after which the stream must not be reused).
func (f *fetch) from(p peer.AddrInfo, cids []cid.Cid, use func(c cid.Cid, data []byte) error) ([]cid.Cid, error) {
	s, err := f.session(p)
	if err != nil {
		return cids, err
	}
	var lacking []cid.Cid
	size := f.l.cfg.Window
	requested := 0 // cids[:requested] are asked for
	for read := 0; read < len(cids); {
		for requested < len(cids) && requested < read+inFlight*size {
			n := min(len(cids)-requested, size)
			req, err := EncodeRequest(cids[requested : requested+n])
			if err == nil {
				err = writeFrame(s.bw, req)
			}
			if err != nil {
				return append(lacking, cids[read:]...), fmt.Errorf("sending a request: %w", err)
			}
			requested += n
		}
		s.st.SetDeadline(time.Now().Add(f.l.cfg.RequestTimeout))
		if err := s.bw.Flush(); err != nil {
			return append(lacking, cids[read:]...), fmt.Errorf("sending a request: %w", err)
		}
		for end := min(read+size, len(cids)); read < end; read++ {
			c := cids[read]
			raw, err := readFrame(s.br, MaxBlockFrame)
			if err != nil {
				return append(lacking, cids[read:]...), err
			}
			m, err := DecodeBlock(raw)
			if err != nil {
				return append(lacking, cids[read:]...), errBadData{err}
			}
			if !m.CID.Equals(c) {
				return append(lacking, cids[read:]...), errBadData{fmt.Errorf("%w: answered %s for %s", ErrBadMessage, m.CID, c)}
			}
			if m.Missing {
				lacking = append(lacking, c)
				continue
			}
			if err := verifyBlock(c, m.Data); err != nil {
				return append(lacking, cids[read:]...), errBadData{err}
			}
			if err := use(c, m.Data); err != nil {
				if errors.Is(err, ErrBadBlock) || errors.Is(err, ErrBadObject) {
					// It hashes to its CID, so the fault is upstream (the
					// author's DAG), not this provider's.
					return nil, fmt.Errorf("%w (%v)", errUnrecoverable, err)
				}
				return append(lacking, cids[read:]...), err
			}
			// The frame was read into a buffer of its own: the import
			// keeps the block without copying it.
			if err := f.im.putOwned(c, m.Data); err != nil {
				return append(lacking, cids[read:]...), err
			}
		}
	}
	return lacking, nil
}

// errUnrecoverable: the content itself is invalid; no provider can help.
var errUnrecoverable = errors.New("knowledge: the content is invalid")

func (f *fetch) session(p peer.AddrInfo) (*session, error) {
	if s, ok := f.streams[p.ID]; ok {
		return s, nil
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.l.cfg.RequestTimeout)
	defer cancel()
	// A provider is a deliberate choice: dial it even if an earlier dial
	// (say, by the DHT) failed and put it in backoff.
	ctx = network.WithForceDirectDial(ctx, "knowledge fetch")
	if len(p.Addrs) > 0 {
		if err := f.l.host.Connect(ctx, p); err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", p.ID, err)
		}
	}
	st, err := f.l.host.NewStream(ctx, p.ID, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("opening a stream to %s: %w", p.ID, err)
	}
	s := &session{st: st, br: bufio.NewReaderSize(st, 64<<10), bw: bufio.NewWriter(st)}
	f.streams[p.ID] = s
	return s, nil
}
