package metering

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/internal/lockfile"
)

// Buckets of the ledger database.
var (
	// bucketEntries: sequence (8 bytes, big-endian) → encoded entry.
	bucketEntries = []byte("entries")
	// bucketByKey: key ID, 0x00, time, sequence → nothing.
	bucketByKey = []byte("by-key")
	// bucketByTime: time, sequence → nothing.
	bucketByTime = []byte("by-time")
	// bucketByRequest: request ID, 0x00, sequence → nothing.
	bucketByRequest = []byte("by-request")
)

// ErrClosed is the error of a Record on a closed ledger.
var ErrClosed = errors.New("metering: ledger closed")

// LedgerConfig configures a Ledger.
type LedgerConfig struct {
	// ReadOnly opens the ledger for reading (gateway usage).
	ReadOnly bool
	// OpenTimeout is how long Open waits for another process holding the
	// ledger before it fails with a *lockfile.InUseError.
	OpenTimeout time.Duration
	// BatchDelay is how long a Record may wait for concurrent ones to
	// share its transaction (and fsync); each still returns only after
	// its entry is on disk. 0 commits each Record alone.
	BatchDelay time.Duration
	// Registerer, if set, gets the per-key and per-miner usage metrics.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// DefaultLedgerConfig batches concurrent Records for up to 2 ms.
func DefaultLedgerConfig() LedgerConfig {
	return LedgerConfig{
		OpenTimeout: time.Second,          // a gateway still shutting down
		BatchDelay:  2 * time.Millisecond, // one fsync for the Records of 2 ms under load
		Logger:      slog.Default(),
	}
}

func (c *LedgerConfig) validate() error {
	if c.OpenTimeout < 0 || c.BatchDelay < 0 {
		return errors.New("metering: negative OpenTimeout or BatchDelay")
	}
	if c.Logger == nil {
		return errors.New("metering: LedgerConfig needs a Logger")
	}
	return nil
}

// Ledger is the durable, append-only usage ledger: a bbolt database in
// which each Record appends one entry under the next sequence number and
// commits (fsync) before it returns. It implements gateway.Recorder, and
// feeds the Prometheus metrics.
//
// Recording the same request twice (an identical entry, same request ID)
// appends nothing the second time, so a caller may retry a Record whose
// outcome it did not learn.
type Ledger struct {
	cfg     LedgerConfig
	db      *bolt.DB
	lock    *lockfile.Lock
	metrics *metrics

	closeOnce sync.Once
	closeErr  error
}

var _ gateway.Recorder = (*Ledger)(nil)

// OpenLedger opens (creating, unless read-only) the ledger at path. Only
// one process opens a ledger at a time; another one gets a
// *lockfile.InUseError naming it.
func OpenLedger(path string, cfg LedgerConfig) (*Ledger, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	db, lock, err := lockfile.OpenBolt(path, 0o600, bolt.Options{ReadOnly: cfg.ReadOnly}, cfg.OpenTimeout)
	if err != nil {
		return nil, fmt.Errorf("opening usage ledger %s: %w", path, err)
	}
	l := &Ledger{cfg: cfg, db: db, lock: lock, metrics: m}
	if cfg.ReadOnly {
		return l, nil
	}
	db.MaxBatchDelay = cfg.BatchDelay
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEntries, bucketByKey, bucketByTime, bucketByRequest} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("opening usage ledger %s: %w", path, err)
	}
	return l, nil
}

// Close closes the database. It is safe to call more than once.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.db.Close()
		if err := l.lock.Release(); l.closeErr == nil {
			l.closeErr = err
		}
	})
	return l.closeErr
}

// timeKey orders times as unsigned big-endian bytes.
func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())^(1<<63))
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// Record appends u to the ledger; when it returns nil, the entry is on
// disk. An invalid record (ErrBadEntry) changes nothing. It also counts u
// in the metrics, even if the write fails.
func (l *Ledger) Record(u gateway.Usage) error {
	if l.cfg.ReadOnly {
		return errors.New("metering: ledger opened read-only")
	}
	raw, err := EncodeEntry(u)
	if err != nil {
		return err
	}
	u.Time = u.Time.UTC()
	var dup bool
	write := func(tx *bolt.Tx) error {
		dup = false
		entries := tx.Bucket(bucketEntries)
		reqs := tx.Bucket(bucketByRequest)
		reqPrefix := append([]byte(u.RequestID), 0)
		if u.RequestID != "" {
			c := reqs.Cursor()
			for k, _ := c.Seek(reqPrefix); k != nil && bytes.HasPrefix(k, reqPrefix); k, _ = c.Next() {
				if bytes.Equal(entries.Get(k[len(reqPrefix):]), raw) {
					dup = true
					return nil
				}
			}
		}
		seq, err := entries.NextSequence()
		if err != nil {
			return err
		}
		sk, tk := seqKey(seq), timeKey(u.Time)
		if err := entries.Put(sk, raw); err != nil {
			return err
		}
		byKey := append(append(append([]byte(u.KeyID), 0), tk...), sk...)
		if err := tx.Bucket(bucketByKey).Put(byKey, nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketByTime).Put(append(tk, sk...), nil); err != nil {
			return err
		}
		if u.RequestID != "" {
			return reqs.Put(append(reqPrefix, sk...), nil)
		}
		return nil
	}
	if l.cfg.BatchDelay > 0 {
		err = l.db.Batch(write)
	} else {
		err = l.db.Update(write)
	}
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	if err != nil {
		if l.metrics != nil {
			l.metrics.ledgerErr.Inc()
		}
		l.metrics.observe(u)
		return fmt.Errorf("recording usage of request %q: %w", u.RequestID, err)
	}
	if !dup {
		l.metrics.observe(u)
	}
	return nil
}

// Entry is a usage record read back from the ledger with its sequence
// number.
type Entry struct {
	Seq uint64 `json:"seq"`
	gateway.Usage
}

// Query selects entries: of one key (all keys if KeyID is empty), with
// From ≤ Time < To (a zero bound is open), and with a sequence of at
// most AsOf (0: any), which pins a listing read in several scans to the
// ledger as it was when AsOf was read (LastSeq): entries are only ever
// appended, under increasing sequences.
type Query struct {
	KeyID    string
	From, To time.Time
	AsOf     uint64
}

// Cursor is where a paged scan resumes: the index key (time, then
// sequence) of the next entry to read. The zero Cursor is the start.
type Cursor [16]byte

// IsZero says whether c is the start.
func (c Cursor) IsZero() bool { return c == Cursor{} }

// String is c in hex (32 digits; "" for the zero Cursor), as ParseCursor
// reads it.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return hex.EncodeToString(c[:])
}

// ParseCursor reads a Cursor's String. "" is the zero Cursor.
func ParseCursor(s string) (Cursor, error) {
	var c Cursor
	if s == "" {
		return c, nil
	}
	if len(s) != 2*len(c) {
		return c, fmt.Errorf("cursor of %d characters, want %d hex digits", len(s), 2*len(c))
	}
	if _, err := hex.Decode(c[:], []byte(s)); err != nil {
		return Cursor{}, fmt.Errorf("cursor: %v", err)
	}
	return c, nil
}

// CursorOf is the cursor of an entry: a scan from it starts at e.
func CursorOf(e Entry) Cursor {
	var c Cursor
	copy(c[:8], timeKey(e.Time))
	binary.BigEndian.PutUint64(c[8:], e.Seq)
	return c
}

// LastSeq is the sequence of the last entry appended (0: none yet), the
// AsOf that pins a listing to the ledger as it is now.
func (l *Ledger) LastSeq() (uint64, error) {
	var seq uint64
	err := l.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketEntries); b != nil {
			seq = b.Sequence()
		}
		return nil
	})
	return seq, err
}

// Scan calls fn with each entry the query selects, in time order (then
// sequence), until fn returns false. An entry that does not decode stops
// the scan with an error wrapping ErrBadEntry, naming its sequence.
func (l *Ledger) Scan(q Query, fn func(Entry) bool) error {
	_, err := l.scan(q, Cursor{}, func(e Entry) bool { return fn(e) }, true)
	return err
}

// ScanFrom is a page of a scan: it calls fn with each entry the query
// selects from cursor on (the zero Cursor: from the start), in time order,
// until fn returns false, which leaves that entry out: it starts the next
// page, whose cursor ScanFrom returns (the zero Cursor when the scan
// reached the end). A cursor before the query's From starts at From.
func (l *Ledger) ScanFrom(q Query, cursor Cursor, fn func(Entry) bool) (next Cursor, err error) {
	return l.scan(q, cursor, fn, false)
}

// scan is Scan (fnTakes: fn's false stops after the entry) and ScanFrom.
func (l *Ledger) scan(q Query, cursor Cursor, fn func(Entry) bool, fnTakes bool) (next Cursor, err error) {
	err = l.db.View(func(tx *bolt.Tx) error {
		entries, index := tx.Bucket(bucketEntries), tx.Bucket(bucketByTime)
		if entries == nil || index == nil {
			return nil // a ledger no gateway has written yet
		}
		var prefix []byte
		if q.KeyID != "" {
			index = tx.Bucket(bucketByKey)
			prefix = append([]byte(q.KeyID), 0)
		}
		start := append([]byte(nil), prefix...)
		if !q.From.IsZero() {
			start = append(start, timeKey(clampTime(q.From))...)
		}
		if !cursor.IsZero() {
			if from := append(append([]byte(nil), prefix...), cursor[:]...); bytes.Compare(from, start) > 0 {
				start = from
			}
		}
		var end []byte
		if !q.To.IsZero() {
			end = append(append([]byte(nil), prefix...), timeKey(clampTime(q.To))...)
		}
		c := index.Cursor()
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if end != nil && bytes.Compare(k, end) >= 0 {
				break
			}
			if len(k) != len(prefix)+16 {
				return fmt.Errorf("%w: index key of %d bytes", ErrBadEntry, len(k))
			}
			seq := binary.BigEndian.Uint64(k[len(prefix)+8:])
			if q.AsOf != 0 && seq > q.AsOf {
				continue // appended after the listing's pin
			}
			raw := entries.Get(k[len(prefix)+8:])
			if raw == nil {
				return fmt.Errorf("%w: entry %d is indexed but missing", ErrBadEntry, seq)
			}
			u, err := DecodeEntry(raw)
			if err != nil {
				return fmt.Errorf("entry %d: %w", seq, err)
			}
			if !fn(Entry{Seq: seq, Usage: u}) {
				if !fnTakes {
					copy(next[:], k[len(prefix):])
				}
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return Cursor{}, err
	}
	return next, nil
}

// clampTime keeps a query bound within the times UnixNano represents.
func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return time.Unix(0, math.MinInt64)
	case t.After(time.Unix(0, math.MaxInt64)):
		return time.Unix(0, math.MaxInt64)
	}
	return t
}

// Entries returns the entries the query selects, in time order.
func (l *Ledger) Entries(q Query) ([]Entry, error) {
	var out []Entry
	err := l.Scan(q, func(e Entry) bool { out = append(out, e); return true })
	return out, err
}

// All returns every entry in sequence (append) order.
func (l *Ledger) All() ([]Entry, error) {
	var out []Entry
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("%w: sequence key of %d bytes", ErrBadEntry, len(k))
			}
			u, err := DecodeEntry(v)
			if err != nil {
				return fmt.Errorf("entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, Entry{Seq: binary.BigEndian.Uint64(k), Usage: u})
			return nil
		})
	})
	return out, err
}

// Today returns what each key used on now's UTC day, for
// Limiter.Restore: its requests (every entry but those the limiter
// refused, HTTP 429) and tokens (prompt plus completion).
func (l *Ledger) Today(now time.Time) (map[string]DayCount, error) {
	midnight := time.Unix(0, dayOf(now.UnixNano())*day).UTC()
	out := map[string]DayCount{}
	err := l.Scan(Query{From: midnight, To: midnight.Add(24 * time.Hour)}, func(e Entry) bool {
		if e.HTTPStatus == 429 {
			return true
		}
		c := out[e.KeyID]
		c.Requests++
		c.Tokens = satAdd(c.Tokens, satAdd(e.PromptTokens, e.CompletionTokens))
		out[e.KeyID] = c
		return true
	})
	return out, err
}
