package knowledge

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/cybertensor/cybertensor/internal/lockfile"
)

// The store is one bbolt file, <Dir>/library.db, with these buckets:
//
//	block-index  binary CID → 8-byte big-endian sequence number of a block (object envelopes and body blocks)
//	block-data   sequence number → the block's bytes, in write order (blocktable.go)
//	roots   binary CID → JSON rootRecord: an object, or a bare body fetched by its CID
//	refs    binary CID of a root → the binary CIDs of every block it needs, concatenated
//	remote  binary CID of an announced object → 8-byte big-endian receipt time (Unix ms) ‖ the Announcement
//	meta    "used" → 8-byte big-endian total bytes in blocks
var (
	bucketRoots  = []byte("roots")
	bucketRefs   = []byte("refs")
	bucketRemote = []byte("remote")
	bucketMeta   = []byte("meta")
	keyUsed      = []byte("used")
)

// Root kinds.
const (
	kindObject = "object"
	kindFile   = "file"
)

// rootRecord is the index entry of a root.
type rootRecord struct {
	Kind string `json:"kind"`
	// Size is the body's length.
	Size int64 `json:"size"`
	// Bytes is the total size of the root's blocks.
	Bytes  int64 `json:"bytes"`
	Pinned bool  `json:"pinned"`
	// Added is when it was stored, Unix ms.
	Added int64 `json:"added"`
}

// flushBytes is how many block bytes an import buffers per transaction.
// Few, large transactions: each commit costs two fsyncs, and rewrites the
// index leaves its blocks' random CIDs land in.
const flushBytes = 64 << 20

// initialMmap is the database's first mapping (address space, not memory).
// bbolt copies every dirty value to the heap each time it remaps a growing
// file, which with a 64 MiB import in the transaction cost more than the
// page writes.
const initialMmap = 1 << 30

type store struct {
	db   *bolt.DB
	lock *lockfile.Lock // the store's, for this process
	max  int64

	mu       sync.Mutex
	inflight map[string]int // blocks that running imports wrote or reuse
	// queued holds the verified blocks that running imports keep in
	// memory until their next flush, so that the server can serve what a
	// fetch in progress holds (peers fetching the same object at once
	// serve each other); the data is the importers' own, never changed.
	queued map[string]*queuedBlock
}

// queuedBlock is a block queued by one or more running imports.
type queuedBlock struct {
	data []byte
	refs int
}

func openStore(cfg Config) (*store, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("knowledge: store directory: %w", err)
	}
	path := filepath.Join(cfg.Dir, "library.db")
	db, lock, err := lockfile.OpenBolt(path, 0o600, bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType,
		InitialMmapSize: initialMmap}, cfg.OpenTimeout)
	if errors.Is(err, ErrInUse) {
		return nil, fmt.Errorf("knowledge: library %s is %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("knowledge: opening %s: %w", path, err)
	}
	var v1 bool // blocks in the layout before the block table
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketBlockIndex, bucketBlockData, bucketRoots, bucketRefs, bucketRemote, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		v1 = tx.Bucket(bucketBlocksV1) != nil
		return nil
	})
	if err == nil && v1 {
		err = migrateBlocksV1(db)
	}
	if err != nil {
		db.Close()
		lock.Release()
		return nil, fmt.Errorf("knowledge: initializing %s: %w", path, err)
	}
	return &store{db: db, lock: lock, max: cfg.MaxStoreSize, inflight: map[string]int{}, queued: map[string]*queuedBlock{}}, nil
}

func (s *store) close() error {
	err := s.db.Close()
	s.lock.Release()
	return err
}

func getUsed(tx *bolt.Tx) int64 {
	v := tx.Bucket(bucketMeta).Get(keyUsed)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func setUsed(tx *bolt.Tx, n int64) error {
	return tx.Bucket(bucketMeta).Put(keyUsed, binary.BigEndian.AppendUint64(nil, uint64(max(n, 0))))
}

// used returns the bytes held in blocks.
func (s *store) used() (n int64) {
	s.db.View(func(tx *bolt.Tx) error { n = getUsed(tx); return nil })
	return n
}

// appendFrame appends c's transfer frame (the block, or missing) to dst;
// the block is copied once, from the database (or the queue of a running
// import) into dst.
func (s *store) appendFrame(dst []byte, c cid.Cid) []byte {
	k := c.Bytes()
	found := false
	s.db.View(func(tx *bolt.Tx) error {
		if v := blocksOf(tx).get(k); v != nil {
			dst, found = appendBlockFrame(dst, k, v), true
		}
		return nil
	})
	if found {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.queued[string(k)]; ok {
		return appendBlockFrame(dst, k, q.data)
	}
	// No such block (nil) is a missing frame.
	return appendBlockFrame(dst, k, nil)
}

// unqueueLocked forgets blocks an import queued: written to the database, or
// dropped; s.mu is held.
func (s *store) unqueueLocked(blocks []pendingBlock) {
	for _, p := range blocks {
		if q, ok := s.queued[string(p.key)]; ok {
			if q.refs--; q.refs <= 0 {
				delete(s.queued, string(p.key))
			}
		}
	}
}

// get returns a copy of a block.
func (s *store) get(c cid.Cid) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := blocksOf(tx).get(c.Bytes())
		if v == nil {
			return fmt.Errorf("%w: block %s", ErrNotFound, c)
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// root returns a root's record.
func (s *store) root(c cid.Cid) (rootRecord, bool, error) {
	var rec rootRecord
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRoots).Get(c.Bytes())
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &rec)
	})
	return rec, ok, err
}

// rootEntry is a root and its record.
type rootEntry struct {
	cid cid.Cid
	rec rootRecord
}

// roots lists every root, oldest first.
func (s *store) roots() ([]rootEntry, error) {
	var out []rootEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRoots).ForEach(func(k, v []byte) error {
			c, err := cid.Cast(k)
			if err != nil {
				return fmt.Errorf("knowledge: corrupt root key: %w", err)
			}
			var rec rootRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("knowledge: corrupt root record %s: %w", c, err)
			}
			out = append(out, rootEntry{c, rec})
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].rec.Added < out[j].rec.Added })
	return out, err
}

// setPinned pins or unpins a root.
func (s *store) setPinned(c cid.Cid, pinned bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRoots)
		v := b.Get(c.Bytes())
		if v == nil {
			return fmt.Errorf("%w: %s is not in the library", ErrNotFound, c)
		}
		var rec rootRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		rec.Pinned = pinned
		nv, _ := json.Marshal(rec)
		return b.Put(c.Bytes(), nv)
	})
}

// GCStats says what a collection removed.
type GCStats struct {
	Roots  int   `json:"roots"`
	Blocks int   `json:"blocks"`
	Bytes  int64 `json:"bytes"`
}

// gc removes every unpinned root and every block no remaining root needs
// (sparing blocks of running imports).
func (s *store) gc() (GCStats, error) {
	var st GCStats
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		st, err = s.sweep(tx)
		return err
	})
	return st, err
}

// sweep is gc inside a write transaction.
func (s *store) sweep(tx *bolt.Tx) (GCStats, error) {
	var st GCStats
	roots, refs := tx.Bucket(bucketRoots), tx.Bucket(bucketRefs)
	var drop [][]byte
	live := map[string]bool{}
	err := roots.ForEach(func(k, v []byte) error {
		var rec rootRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("knowledge: corrupt root record: %w", err)
		}
		if !rec.Pinned {
			drop = append(drop, append([]byte(nil), k...))
			return nil
		}
		return eachRef(refs.Get(k), func(c []byte) { live[string(c)] = true })
	})
	if err != nil {
		return st, err
	}
	for _, k := range drop {
		if err := roots.Delete(k); err != nil {
			return st, err
		}
		if err := refs.Delete(k); err != nil {
			return st, err
		}
		st.Roots++
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	blocks := blocksOf(tx)
	var dead [][]byte
	err = blocks.forEach(func(k []byte, size int) error {
		if !live[string(k)] && s.inflight[string(k)] == 0 {
			dead = append(dead, append([]byte(nil), k...))
			st.Bytes += int64(size)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	for _, k := range dead {
		if _, err := blocks.remove(k); err != nil {
			return st, err
		}
	}
	st.Blocks = len(dead)
	return st, setUsed(tx, getUsed(tx)-st.Bytes)
}

// eachRef calls fn with each binary CID of a refs value.
func eachRef(v []byte, fn func(c []byte)) error {
	for len(v) > 0 {
		n, _, err := cid.CidFromBytes(v)
		if err != nil {
			return fmt.Errorf("knowledge: corrupt refs: %w", err)
		}
		fn(v[:n])
		v = v[n:]
	}
	return nil
}

// putRemote keeps an announcement, dropping the oldest tenth when the
// index is over max. The same announcement kept less than remoteRefresh
// before at is not written again: a publisher announces again as its
// subnet grows (a dozen times in a large subnet's start-up), and each write
// is a transaction synced to disk, for every member and every object.
func (s *store) putRemote(c cid.Cid, ann []byte, at time.Time, max int) error {
	same := false
	s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRemote).Get(c.Bytes())
		if len(v) >= 8 && bytes.Equal(v[8:], ann) {
			kept := time.UnixMilli(int64(binary.BigEndian.Uint64(v[:8])))
			same = at.Sub(kept) < remoteRefresh
		}
		return nil
	})
	if same {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRemote)
		if err := b.Put(c.Bytes(), append(binary.BigEndian.AppendUint64(nil, uint64(at.UnixMilli())), ann...)); err != nil {
			return err
		}
		n := b.Stats().KeyN
		if n <= max {
			return nil
		}
		type aged struct {
			k  []byte
			at uint64
		}
		var all []aged
		b.ForEach(func(k, v []byte) error {
			all = append(all, aged{append([]byte(nil), k...), binary.BigEndian.Uint64(v[:8])})
			return nil
		})
		sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
		for _, a := range all[:n-max+max/10] {
			if err := b.Delete(a.k); err != nil {
				return err
			}
		}
		return nil
	})
}

// remoteRefresh is how old a kept announcement must be before the same one
// is written again (to renew its age, by which the oldest are dropped).
const remoteRefresh = 10 * time.Minute

// remotes calls fn with each kept announcement.
func (s *store) remotes(fn func(c cid.Cid, ann []byte)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRemote).ForEach(func(k, v []byte) error {
			if c, err := cid.Cast(k); err == nil && len(v) >= 8 {
				fn(c, append([]byte(nil), v[8:]...))
			}
			return nil
		})
	})
}

// remote returns one kept announcement.
func (s *store) remote(c cid.Cid) ([]byte, bool) {
	var out []byte
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketRemote).Get(c.Bytes()); len(v) >= 8 {
			out = append([]byte(nil), v[8:]...)
		}
		return nil
	})
	return out, out != nil
}

// importer writes the blocks of one root in batches and then the root.
// Until commit, its blocks are in the store but referenced by no root;
// the in-flight set keeps collections off them, and abort removes the
// ones it added.
type importer struct {
	s       *store
	ctx     context.Context // a flush or commit not yet begun stops when it is done
	pending []pendingBlock
	size    int
	refs    []byte
	seen    map[string]bool
	added   [][]byte
	bytes   int64
	done    bool
	// writing is closed when the flush in the background (flushBehind)
	// ends; then werr is its error and unwritten the blocks it failed to
	// write (still queued, for abort to drop).
	writing   chan struct{}
	werr      error
	unwritten []pendingBlock
	// behind: flush in the background (a fetch's import); a publish
	// flushes in line, so that a cancel stops it within a chunk.
	behind bool
}

type pendingBlock struct {
	key, data []byte
}

func (s *store) newImport(ctx context.Context) *importer {
	return &importer{s: s, ctx: ctx, seen: map[string]bool{}}
}

// put queues a copy of a block (verified by the caller).
func (im *importer) put(c cid.Cid, data []byte) error {
	if len(data) > MaxBlockSize || im.seen[string(c.Bytes())] {
		return im.putOwned(c, data)
	}
	return im.putOwned(c, append([]byte(nil), data...))
}

// putOwned queues a block (verified by the caller) that the importer may
// keep: the caller does not change data afterwards.
func (im *importer) putOwned(c cid.Cid, data []byte) error {
	if len(data) > MaxBlockSize {
		return fmt.Errorf("%w: block %s of %d bytes exceeds %d", ErrTooLarge, c, len(data), MaxBlockSize)
	}
	k := c.Bytes()
	if im.seen[string(k)] {
		return nil
	}
	im.seen[string(k)] = true
	im.s.mu.Lock()
	im.s.inflight[string(k)]++
	if q, ok := im.s.queued[string(k)]; ok {
		q.refs++
	} else {
		im.s.queued[string(k)] = &queuedBlock{data: data, refs: 1}
	}
	im.s.mu.Unlock()
	im.refs = append(im.refs, k...)
	im.bytes += int64(len(data))
	im.pending = append(im.pending, pendingBlock{k, data})
	im.size += len(data)
	if im.size > flushBytes {
		if im.behind {
			return im.flushBehind()
		}
		return im.flush()
	}
	return nil
}

// wait waits for the flush in the background, if any, and returns its
// error.
func (im *importer) wait() error {
	if im.writing != nil {
		<-im.writing
		im.writing = nil
	}
	return im.werr
}

// flushBehind writes the queued blocks in the background, as flush does,
// once the previous such write has ended: the caller queues the next
// blocks meanwhile (a fetch keeps receiving while its blocks are written),
// so an import holds at most two batches in memory. The blocks stay
// queued, and served, until written.
func (im *importer) flushBehind() error {
	if err := im.wait(); err != nil {
		return err
	}
	batch := im.pending
	im.pending, im.size = nil, 0
	done := make(chan struct{})
	im.writing = done
	go func() {
		defer close(done)
		var added [][]byte
		err := im.s.db.Update(func(tx *bolt.Tx) error {
			var err error
			added, err = im.writeBlocks(tx, batch)
			return err
		})
		if err != nil {
			im.werr, im.unwritten = fmt.Errorf("knowledge: storing blocks: %w", err), batch
			return
		}
		im.s.mu.Lock()
		im.s.unqueueLocked(batch)
		im.s.mu.Unlock()
		im.added = append(im.added, added...)
	}()
	return nil
}

// flush writes the queued blocks in one transaction, collecting unpinned
// roots first if they would not fit.
func (im *importer) flush() error {
	if err := im.wait(); err != nil {
		return err
	}
	if len(im.pending) == 0 {
		return nil
	}
	var added [][]byte
	err := im.s.db.Update(func(tx *bolt.Tx) error {
		var err error
		added, err = im.writePending(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("knowledge: storing blocks: %w", err)
	}
	im.wrote(added)
	return nil
}

// writePending puts the queued blocks in tx and returns the keys it added.
func (im *importer) writePending(tx *bolt.Tx) ([][]byte, error) {
	return im.writeBlocks(tx, im.pending)
}

// writeBlocks puts blocks in tx and returns the keys it added.
func (im *importer) writeBlocks(tx *bolt.Tx, pending []pendingBlock) ([][]byte, error) {
	if err := im.ctx.Err(); err != nil {
		return nil, err
	}
	var added [][]byte
	blocks := blocksOf(tx)
	var grow int64
	for _, p := range pending {
		if !blocks.has(p.key) {
			grow += int64(len(p.data))
		}
	}
	used := getUsed(tx)
	if used+grow > im.s.max {
		if _, err := im.s.sweep(tx); err != nil {
			return nil, err
		}
		if used = getUsed(tx); used+grow > im.s.max {
			return nil, fmt.Errorf("%w: %d bytes used, %d more do not fit in %d", ErrStoreFull, used, grow, im.s.max)
		}
	}
	for i, p := range pending {
		if i%64 == 63 {
			// A cancel rolls back the transaction rather than wait for it.
			if err := im.ctx.Err(); err != nil {
				return nil, err
			}
		}
		if blocks.has(p.key) {
			continue
		}
		if err := blocks.put(p.key, p.data); err != nil {
			return nil, err
		}
		added = append(added, p.key)
	}
	return added, setUsed(tx, used+grow)
}

// wrote records committed blocks and empties the queue.
func (im *importer) wrote(added [][]byte) {
	im.added = append(im.added, added...)
	// Now in the database, where the server reads them first.
	im.s.mu.Lock()
	im.s.unqueueLocked(im.pending)
	im.s.mu.Unlock()
	clear(im.pending)
	im.pending, im.size = im.pending[:0], 0
}

// commit writes the remaining blocks and the root in one transaction. A
// root already present keeps its Added time and is pinned if either is.
func (im *importer) commit(root cid.Cid, rec rootRecord) error {
	if err := im.wait(); err != nil {
		return err
	}
	rec.Bytes = im.bytes
	var added [][]byte
	err := im.s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if added, err = im.writePending(tx); err != nil {
			return fmt.Errorf("storing blocks: %w", err)
		}
		roots := tx.Bucket(bucketRoots)
		if v := roots.Get(root.Bytes()); v != nil {
			var old rootRecord
			if json.Unmarshal(v, &old) == nil {
				rec.Pinned = rec.Pinned || old.Pinned
				rec.Added = old.Added
			}
		}
		v, _ := json.Marshal(rec)
		if err := roots.Put(root.Bytes(), v); err != nil {
			return err
		}
		return tx.Bucket(bucketRefs).Put(root.Bytes(), im.refs)
	})
	if err != nil {
		return fmt.Errorf("knowledge: storing root %s: %w", root, err)
	}
	im.wrote(added)
	im.done = true
	im.release()
	return nil
}

// abort removes the blocks this import added that no other running import
// uses (a later collection takes any others).
func (im *importer) abort() {
	if im.done {
		return
	}
	im.done = true
	im.wait()
	im.s.mu.Lock()
	im.s.unqueueLocked(im.unwritten)
	im.s.unqueueLocked(im.pending)
	clear(im.pending)
	im.pending, im.size = im.pending[:0], 0
	var drop [][]byte
	for _, k := range im.added {
		if im.s.inflight[string(k)] == 1 {
			drop = append(drop, k)
		}
	}
	im.s.mu.Unlock()
	if len(drop) > 0 {
		im.s.db.Update(func(tx *bolt.Tx) error {
			// Another import may have reused one of these blocks and
			// committed its root meanwhile: keep whatever a root needs.
			live := map[string]bool{}
			tx.Bucket(bucketRefs).ForEach(func(_, v []byte) error {
				return eachRef(v, func(c []byte) { live[string(c)] = true })
			})
			blocks := blocksOf(tx)
			var freed int64
			for _, k := range drop {
				if live[string(k)] {
					continue
				}
				size, err := blocks.remove(k)
				if err != nil {
					return err
				}
				freed += int64(size)
			}
			return setUsed(tx, getUsed(tx)-freed)
		})
	}
	im.release()
}

func (im *importer) release() {
	im.s.mu.Lock()
	defer im.s.mu.Unlock()
	for k := range im.seen {
		if im.s.inflight[k]--; im.s.inflight[k] <= 0 {
			delete(im.s.inflight, k)
		}
	}
	im.seen = nil
}
