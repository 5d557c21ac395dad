package dht

import (
	"context"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/simplelru"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"
)

// providerStore holds every provider record the neuron keeps, within
// ProviderLimits, and drops them after their TTL.
//
// kad-dht's provider manager cannot be replaced, but its datastore can:
// providerStore is that datastore (kaddht.ProviderDatastore), under a
// manager whose cache is off (noCache), so every read comes here. The
// manager writes its records here in batches, as
// /providers/<base32 key>/<base32 peer ID> with the write time as a varint
// of Unix nanoseconds, and reads a key's providers with a prefix query.
//
// Other peers' records enter through add, once screenProvider has decided
// whether their provider is registered; a write from the manager for a
// record add did not keep (refused, or evicted since) is dropped. The
// neuron's own records come from the manager only, and count as a
// registered neuron's.
type providerStore struct {
	self      peer.ID
	limits    ProviderLimits
	ttl       time.Duration // ProviderTTL
	memberTTL time.Duration // MembershipTTL, for subnet keys
	subnetKey func(key string) bool
	now       func() time.Time

	mu    sync.Mutex
	recs  map[recordID]*provRecord
	keys  map[string]*keyEntry
	peers map[peer.ID]*peerEntry
	pools [2]recList // by class, oldest first
}

var _ ds.Batching = (*providerStore)(nil)

// class is the pool a record is kept in.
type class uint8

const (
	registered class = iota
	unregistered
)

type recordID struct {
	key  string // the multihash's bytes
	peer peer.ID
}

// provRecord is one provider record, on three lists of its class: its
// pool's, its key's and its provider's, each oldest first.
type provRecord struct {
	key   *keyEntry
	peer  *peerEntry
	at    int64 // Unix nanoseconds of the last write
	class class
	links [3]links
}

// The lists a record is on.
const (
	onPool = iota
	onKey
	onPeer
)

type links struct{ prev, next *provRecord }

type recList struct {
	head, tail *provRecord
	n          int
}

func (l *recList) push(r *provRecord, on int) {
	r.links[on] = links{prev: l.tail}
	if l.tail != nil {
		l.tail.links[on].next = r
	} else {
		l.head = r
	}
	l.tail = r
	l.n++
}

func (l *recList) remove(r *provRecord, on int) {
	lk := r.links[on]
	if lk.prev != nil {
		lk.prev.links[on].next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != nil {
		lk.next.links[on].prev = lk.prev
	} else {
		l.tail = lk.prev
	}
	r.links[on] = links{}
	l.n--
}

type keyEntry struct {
	key       string
	subnetKey bool // lives MembershipTTL
	lists     [2]recList
}

type peerEntry struct {
	id    peer.ID
	lists [2]recList
}

func newProviderStore(self peer.ID, limits ProviderLimits, ttl, memberTTL time.Duration, subnetKey func(string) bool) *providerStore {
	return &providerStore{
		self: self, limits: limits, ttl: ttl, memberTTL: memberTTL, subnetKey: subnetKey, now: time.Now,
		recs: map[recordID]*provRecord{}, keys: map[string]*keyEntry{}, peers: map[peer.ID]*peerEntry{},
	}
}

func (s *providerStore) pool(c class) PoolLimits {
	if c == registered {
		return s.limits.Registered
	}
	return s.limits.Unregistered
}

// add keeps p as a provider of key in class c's pool, or refreshes the
// record, making room by evicting the oldest records within the limits
// it would pass.
func (s *providerStore) add(key string, p peer.ID, c class) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	s.expireLocked(now)
	s.putLocked(key, p, c, now)
}

func (s *providerStore) putLocked(key string, p peer.ID, c class, at int64) {
	if r := s.recs[recordID{key, p}]; r != nil {
		if r.class == c {
			s.unlinkLocked(r)
			r.at = max(r.at, at)
			s.linkLocked(r)
			return
		}
		s.removeLocked(r)
	}
	lim := s.pool(c)
	if pe := s.peers[p]; pe != nil {
		for pe.lists[c].n >= lim.PerPeer {
			s.removeLocked(pe.lists[c].head)
		}
	}
	if ke := s.keys[key]; ke != nil {
		for ke.lists[c].n >= lim.PerKey {
			s.removeLocked(ke.lists[c].head)
		}
	}
	for s.pools[c].n >= lim.Total {
		s.removeLocked(s.pools[c].head)
	}
	ke := s.keys[key]
	if ke == nil {
		ke = &keyEntry{key: key, subnetKey: s.subnetKey(key)}
		s.keys[key] = ke
	}
	pe := s.peers[p]
	if pe == nil {
		pe = &peerEntry{id: p}
		s.peers[p] = pe
	}
	r := &provRecord{key: ke, peer: pe, at: at, class: c}
	s.recs[recordID{key, p}] = r
	s.linkLocked(r)
}

// touch refreshes a record add kept (or keeps one of the neuron's own).
func (s *providerStore) touch(key string, p peer.ID, at int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now().UnixNano())
	r := s.recs[recordID{key, p}]
	switch {
	case r != nil:
		s.putLocked(key, p, r.class, at)
	case p == s.self:
		s.putLocked(key, p, registered, at)
	}
}

func (s *providerStore) linkLocked(r *provRecord) {
	s.pools[r.class].push(r, onPool)
	r.key.lists[r.class].push(r, onKey)
	r.peer.lists[r.class].push(r, onPeer)
}

func (s *providerStore) unlinkLocked(r *provRecord) {
	s.pools[r.class].remove(r, onPool)
	r.key.lists[r.class].remove(r, onKey)
	r.peer.lists[r.class].remove(r, onPeer)
}

func (s *providerStore) removeLocked(r *provRecord) {
	s.unlinkLocked(r)
	delete(s.recs, recordID{r.key.key, r.peer.id})
	if r.key.lists[registered].n == 0 && r.key.lists[unregistered].n == 0 {
		delete(s.keys, r.key.key)
	}
	if r.peer.lists[registered].n == 0 && r.peer.lists[unregistered].n == 0 {
		delete(s.peers, r.peer.id)
	}
}

func (s *providerStore) expired(r *provRecord, now int64) bool {
	ttl := s.ttl
	if r.key.subnetKey {
		ttl = s.memberTTL
	}
	return now-r.at > int64(ttl)
}

// expireLocked drops expired records from the old end of each pool. A
// subnet key's record, with its shorter TTL, may wait behind a younger one
// that has not expired; reads skip it, and it counts within the limits.
func (s *providerStore) expireLocked(now int64) {
	for c := range s.pools {
		for r := s.pools[c].head; r != nil && s.expired(r, now); r = s.pools[c].head {
			s.removeLocked(r)
		}
	}
}

// providers lists key's providers and their last writes, dropping
// expired records.
func (s *providerStore) providers(key string) (ids []peer.ID, at []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ke := s.keys[key]
	if ke == nil {
		return nil, nil
	}
	now := s.now().UnixNano()
	var stale []*provRecord
	for c := range ke.lists {
		for r := ke.lists[c].head; r != nil; r = r.links[onKey].next {
			if s.expired(r, now) {
				stale = append(stale, r)
				continue
			}
			ids = append(ids, r.peer.id)
			at = append(at, r.at)
		}
	}
	for _, r := range stale {
		s.removeLocked(r)
	}
	return ids, at
}

// counts returns the records in each pool.
func (s *providerStore) counts() (reg, unreg int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pools[registered].n, s.pools[unregistered].n
}

// held returns the records of p in class c.
func (s *providerStore) held(p peer.ID, c class) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pe := s.peers[p]; pe != nil {
		return pe.lists[c].n
	}
	return 0
}

// The datastore, as kad-dht's provider manager uses it.

const providersPrefix = "/providers/"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func providerDSKey(key string, p peer.ID) string {
	return providersPrefix + b32.EncodeToString([]byte(key)) + "/" + b32.EncodeToString([]byte(p))
}

// errNotProviderKey is returned for a datastore key that is not
// /providers/<base32 key>/<base32 peer ID>.
var errNotProviderKey = errors.New("dht: not a provider record key")

// parseProviderDSKey parses /providers/<base32 key>/<base32 peer ID>, in
// the manager's encoding only (no padding, upper case).
func parseProviderDSKey(k string) (key string, p peer.ID, err error) {
	rest, ok := strings.CutPrefix(k, providersPrefix)
	if !ok {
		return "", "", errNotProviderKey
	}
	ek, ep, ok := strings.Cut(rest, "/")
	if !ok || ek == "" {
		return "", "", errNotProviderKey
	}
	kb, err := b32.DecodeString(ek)
	if err != nil || b32.EncodeToString(kb) != ek {
		return "", "", errNotProviderKey
	}
	pb, err := b32.DecodeString(ep)
	if err != nil || b32.EncodeToString(pb) != ep {
		return "", "", errNotProviderKey
	}
	id, err := peer.IDFromBytes(pb)
	if err != nil {
		return "", "", errNotProviderKey
	}
	return string(kb), id, nil
}

func encodeWriteTime(at int64) []byte { return binary.AppendVarint(nil, at) }

// Put keeps what the manager writes: the neuron's own records, and
// refreshes of records add kept. Anything else is dropped without an
// error, so the manager does not retry it.
func (s *providerStore) Put(_ context.Context, k ds.Key, value []byte) error {
	key, p, err := parseProviderDSKey(k.String())
	if err != nil {
		return err
	}
	at, n := binary.Varint(value)
	if n <= 0 {
		return errors.New("dht: provider record time does not decode")
	}
	s.touch(key, p, at)
	return nil
}

func (s *providerStore) Get(_ context.Context, k ds.Key) ([]byte, error) {
	key, p, err := parseProviderDSKey(k.String())
	if err != nil {
		return nil, ds.ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recs[recordID{key, p}]
	if r == nil || s.expired(r, s.now().UnixNano()) {
		return nil, ds.ErrNotFound
	}
	return encodeWriteTime(r.at), nil
}

func (s *providerStore) Has(ctx context.Context, k ds.Key) (bool, error) {
	_, err := s.Get(ctx, k)
	if errors.Is(err, ds.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *providerStore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	v, err := s.Get(ctx, k)
	if err != nil {
		return -1, err
	}
	return len(v), nil
}

func (s *providerStore) Delete(_ context.Context, k ds.Key) error {
	key, p, err := parseProviderDSKey(k.String())
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.recs[recordID{key, p}]; r != nil {
		s.removeLocked(r)
	}
	return nil
}

// Query answers the manager's query, /providers/<base32 key>, from that
// key's records; other prefixes scan every record.
func (s *providerStore) Query(_ context.Context, q dsq.Query) (dsq.Results, error) {
	var entries []dsq.Entry
	add := func(key string, p peer.ID, at int64) {
		e := dsq.Entry{Key: providerDSKey(key, p)}
		v := encodeWriteTime(at)
		e.Size = len(v)
		if !q.KeysOnly {
			e.Value = v
		}
		entries = append(entries, e)
	}
	if ek, ok := strings.CutPrefix(q.Prefix, providersPrefix); ok && ek != "" && !strings.Contains(ek, "/") {
		if kb, err := b32.DecodeString(ek); err == nil {
			ids, at := s.providers(string(kb))
			for i, p := range ids {
				add(string(kb), p, at[i])
			}
		}
	} else {
		s.mu.Lock()
		now := s.now().UnixNano()
		for id, r := range s.recs {
			if !s.expired(r, now) {
				add(id.key, id.peer, r.at)
			}
		}
		s.mu.Unlock()
	}
	return dsq.NaiveQueryApply(q, dsq.ResultsWithEntries(q, entries)), nil
}

func (s *providerStore) Sync(context.Context, ds.Key) error { return nil }
func (s *providerStore) Close() error                       { return nil }

func (s *providerStore) Batch(context.Context) (ds.Batch, error) { return ds.NewBasicBatch(s), nil }

// noCache is the provider manager's cache, turned off: its sets would
// keep records this store evicted.
type noCache struct{}

var _ lru.LRUCache = noCache{}

func (noCache) Add(_, _ any) bool              { return false }
func (noCache) Get(any) (any, bool)            { return nil, false }
func (noCache) Contains(any) bool              { return false }
func (noCache) Peek(any) (any, bool)           { return nil, false }
func (noCache) Remove(any) bool                { return false }
func (noCache) RemoveOldest() (any, any, bool) { return nil, nil, false }
func (noCache) GetOldest() (any, any, bool)    { return nil, nil, false }
func (noCache) Keys() []any                    { return nil }
func (noCache) Len() int                       { return 0 }
func (noCache) Purge()                         {}
func (noCache) Resize(int) int                 { return 0 }
