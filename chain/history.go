package chain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// This file holds the DB's history: an undo log from which the state a
// client reads (the metagraph) is answered at a past height.
//
// When block h changes a record, Commit also writes the record's previous
// value under history key||h (h big-endian), and h||key into an index by
// height. The value of key at height H is then the first history entry
// for key with a height above H (the value before the first change after
// H), or the current value if there is none. Entries of blocks at or
// below oldest = max(first kept, height - retention) are pruned at each
// commit, so the DB answers heights oldest..height. History is node-local:
// it is not in the app hash.

// Buckets and meta key of the history.
var (
	bucketHistory        = []byte("history")
	bucketHistoryHeights = []byte("history_heights")
	metaHistoryFrom      = []byte("history_from")
)

// DefaultHistoryBlocks is how many blocks back a DB answers by default.
const DefaultHistoryBlocks = 10_000

// History value markers: the record did not exist before the block, or
// did (and its value follows).
const (
	histAbsent  = 0
	histPresent = 1
)

// dbConfig holds OpenDB's options.
type dbConfig struct {
	historyBlocks uint64
}

// DBOption configures OpenDB.
type DBOption func(*dbConfig)

// WithHistory keeps the state of the last blocks blocks for reads at a
// past height (DB.MetagraphAt); 0 keeps none (only the latest height is
// answered). The default is DefaultHistoryBlocks.
func WithHistory(blocks uint64) DBOption {
	return func(c *dbConfig) { c.historyBlocks = blocks }
}

// ErrHeightNotKept is matched (errors.Is) by a *HeightError.
var ErrHeightNotKept = errors.New("height not kept")

// HeightError is a read at a height the node does not answer: pruned,
// from before the node kept history, or not reached yet.
type HeightError struct {
	Height uint64 `json:"height"`
	// Oldest and Latest bound the heights the node answers.
	Oldest uint64 `json:"oldest"`
	Latest uint64 `json:"latest"`
}

func (e *HeightError) Error() string {
	if e.Height > e.Latest {
		return fmt.Sprintf("block %d is ahead of the latest block %d", e.Height, e.Latest)
	}
	return fmt.Sprintf("the state at block %d is not kept: the oldest block kept is %d (latest %d)", e.Height, e.Oldest, e.Latest)
}

// Is makes errors.Is(err, ErrHeightNotKept) true.
func (e *HeightError) Is(target error) bool { return target == ErrHeightNotKept }

func histKey(key string, height uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(key), height)
}

// writeHistory records, inside Commit's transaction and before the new
// values are written, the previous value of each record block height
// changes, then prunes what fell out of the window.
func (d *DB) writeHistory(tx *bolt.Tx, height uint64, recs []record) error {
	if d.historyBlocks > 0 {
		st, hist, idx := tx.Bucket(bucketState), tx.Bucket(bucketHistory), tx.Bucket(bucketHistoryHeights)
		hb := binary.BigEndian.AppendUint64(nil, height)
		for _, r := range recs {
			old := st.Get([]byte(r.key))
			v := make([]byte, 1, 1+len(old))
			if old != nil {
				v[0] = histPresent
				v = append(v, old...)
			}
			if err := hist.Put(histKey(r.key, height), v); err != nil {
				return err
			}
			if err := idx.Put(append(hb[:8:8], r.key...), nil); err != nil {
				return err
			}
		}
	}
	oldest := d.histFrom
	if height > d.historyBlocks && height-d.historyBlocks > oldest {
		oldest = height - d.historyBlocks
	}
	if d.historyBlocks == 0 {
		oldest = height
	}
	if err := pruneHistory(tx, oldest); err != nil {
		return err
	}
	d.histFrom = oldest
	return tx.Bucket(bucketMeta).Put(metaHistoryFrom, binary.BigEndian.AppendUint64(nil, oldest))
}

// pruneHistory deletes the entries of blocks at or below oldest: no
// answerable height (>= oldest) needs them.
func pruneHistory(tx *bolt.Tx, oldest uint64) error {
	idx, hist := tx.Bucket(bucketHistoryHeights), tx.Bucket(bucketHistory)
	var drop [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= 8 && binary.BigEndian.Uint64(k) <= oldest; k, _ = c.Next() {
		drop = append(drop, append([]byte(nil), k...))
	}
	for _, k := range drop {
		if err := hist.Delete(histKey(string(k[8:]), binary.BigEndian.Uint64(k))); err != nil {
			return err
		}
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// openHistory creates the history buckets of a database that predates
// them and reads the oldest height kept (the current height for such a
// database: it has no history yet).
func (d *DB) openHistory(height uint64) error {
	return d.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketHistory, bucketHistoryHeights} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		d.histFrom = height
		if v := tx.Bucket(bucketMeta).Get(metaHistoryFrom); len(v) == 8 {
			d.histFrom = binary.BigEndian.Uint64(v)
		}
		return nil
	})
}

// HistoryRange is the range of heights the DB answers reads at: oldest
// to latest committed.
func (d *DB) HistoryRange() (oldest, latest uint64) {
	latest = d.state.Height()
	if d.uncommitted != nil {
		latest--
	}
	return min(d.histFrom, latest), latest
}

// historyView reads records as they were at a height.
type historyView struct {
	st, hist *bolt.Bucket
	height   uint64
}

// get returns key's value at the view's height, or nil if the record did
// not exist then.
func (v historyView) get(key string) []byte {
	k, val := v.hist.Cursor().Seek(histKey(key, v.height+1))
	if k != nil && len(k) == len(key)+8 && bytes.HasPrefix(k, []byte(key)) {
		if len(val) == 0 || val[0] == histAbsent {
			return nil
		}
		return val[1:]
	}
	return v.st.Get([]byte(key))
}

// MetagraphAt answers State.MetagraphColumns at a height: the latest
// reads the current state, an older one the history.
// A height outside HistoryRange is a *HeightError; a subnet that did not
// exist then is reported with ok false.
func (d *DB) MetagraphAt(netuid uint16, height uint64, fields MetagraphFields) (m *Metagraph, ok bool, err error) {
	if height == d.state.Height() {
		m, ok = d.state.MetagraphColumns(netuid, fields)
		return m, ok, nil
	}
	oldest, latest := d.HistoryRange()
	if height < oldest || height > latest {
		return nil, false, &HeightError{Height: height, Oldest: oldest, Latest: latest}
	}
	var past *State
	err = d.bolt.View(func(tx *bolt.Tx) error {
		past, err = stateAt(historyView{st: tx.Bucket(bucketState), hist: tx.Bucket(bucketHistory), height: height}, netuid)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("chain: reading subnet %d at block %d: %w", netuid, height, err)
	}
	if past == nil {
		return nil, false, nil
	}
	m, ok = past.MetagraphColumns(netuid, fields)
	return m, ok, nil
}

// stateAt rebuilds what a metagraph of netuid needs at the view's height:
// the subnet, its neurons and their hotkeys. It returns nil if the subnet
// did not exist then.
func stateAt(v historyView, netuid uint16) (*State, error) {
	raw := v.get(keySubnet(netuid))
	if raw == nil {
		return nil, nil
	}
	sub, n, err := decodeSubnetHeader(raw)
	if err != nil {
		return nil, err
	}
	s := newEmptyState(nil)
	s.height = v.height
	s.subnets[netuid] = sub
	if raw := v.get(keySubnetIdentity(netuid)); raw != nil {
		if err := s.ids.loadSubnet(netuid, raw); err != nil {
			return nil, fmt.Errorf("subnet identity: %w", err)
		}
	}
	if raw := v.get(keyMechanisms(netuid)); raw != nil {
		if err := s.mech.loadSubnet(keyMechanisms(netuid), raw); err != nil {
			return nil, fmt.Errorf("mechanisms: %w", err)
		}
	}
	sub.neurons = make([]*Neuron, n)
	for uid := range n {
		raw := v.get(keyNeuron(netuid, uint16(uid)))
		if raw == nil {
			return nil, fmt.Errorf("neuron %d missing", uid)
		}
		nr, err := decodeNeuron(raw)
		if err != nil {
			return nil, fmt.Errorf("neuron %d: %w", uid, err)
		}
		sub.neurons[uid] = nr
		sub.uids[nr.Hotkey] = uint16(uid)
		if _, seen := s.hotkeys[nr.Hotkey]; seen {
			continue
		}
		if raw := v.get(keyHotkey(nr.Hotkey)); raw != nil {
			hk, err := decodeHotkey(raw)
			if err != nil {
				return nil, fmt.Errorf("hotkey %s: %w", nr.Hotkey, err)
			}
			s.hotkeys[nr.Hotkey] = hk
			if _, seen := s.ids.coldkeys[hk.Owner]; !seen {
				if raw := v.get(keyIdentity(hk.Owner)); raw != nil {
					if err := s.ids.loadColdkey(hk.Owner, raw); err != nil {
						return nil, fmt.Errorf("identity of %s: %w", hk.Owner, err)
					}
				}
			}
		}
	}
	return s, nil
}
