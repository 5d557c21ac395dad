package chain

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cybertensor/cybertensor/internal/lockfile"
)

// Buckets of the chain database.
var (
	bucketMeta   = []byte("meta")
	bucketState  = []byte("state")
	bucketBlocks = []byte("blocks")
)

// Meta keys.
var (
	metaHeight  = []byte("height")
	metaAppHash = []byte("app_hash")
	metaGenesis = []byte("genesis")
)

// ErrDBBroken is returned after a failed write: the in-memory state is
// ahead of the disk, so the DB must be closed and reopened.
var ErrDBBroken = errors.New("chain: database write failed; reopen to recover the last committed block")

// ErrInUse is returned (wrapped, with the process's ID when known) by
// OpenDB when another process has the database open.
var ErrInUse = lockfile.ErrInUse

// openWait bounds OpenDB's wait for another process's lock: long enough
// for a process that is exiting, short enough to tell the operator at
// once.
const openWait = time.Second

// DB is a durable chain: a State whose every block is committed to a bbolt
// file in one fsynced write transaction (the changed objects, the new
// height and app hash, and the block itself), so a crash at any moment
// loses no committed block and never leaves a partial one.
type DB struct {
	bolt    *bolt.DB
	lock    *lockfile.Lock // the database's, for this process
	state   *State
	genesis Genesis
	broken  bool
	// uncommitted is a block finalized in memory and not yet persisted.
	uncommitted *pendingBlock
	// historyBlocks is how many blocks back reads are answered; histFrom
	// is the oldest height kept (history.go).
	historyBlocks uint64
	histFrom      uint64
}

// OpenDB opens the chain database at path, creating it from gen if it
// does not exist. An existing database must have been created from a
// genesis with the same chain ID; its state is restored and checked
// against the stored app hash. A database another process has open is
// refused at once, with an error wrapping ErrInUse that names the
// process (lockfile.InUseError). Options: WithHistory.
func OpenDB(path string, gen Genesis, epoch EpochFunc, opts ...DBOption) (*DB, error) {
	cfg := dbConfig{historyBlocks: DefaultHistoryBlocks}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("chain: creating %s: %w", filepath.Dir(path), err)
	}
	b, lock, err := lockfile.OpenBolt(path, 0o600, bolt.Options{}, openWait)
	if errors.Is(err, ErrInUse) {
		return nil, fmt.Errorf("chain: database %s is %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("chain: opening %s: %w", path, err)
	}
	d := &DB{bolt: b, lock: lock, genesis: gen, historyBlocks: cfg.historyBlocks}
	if err := d.load(gen, epoch); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) load(gen Genesis, epoch EpochFunc) error {
	var stored []byte
	err := d.bolt.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			stored = append([]byte(nil), m.Get(metaGenesis)...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("chain: reading database: %w", err)
	}
	if stored == nil {
		return d.create(gen, epoch)
	}
	var storedGen Genesis
	if err := json.Unmarshal(stored, &storedGen); err != nil {
		return fmt.Errorf("chain: database genesis is corrupt: %w", err)
	}
	if storedGen.ChainID != gen.ChainID {
		return fmt.Errorf("chain: database holds chain %q, not %q", storedGen.ChainID, gen.ChainID)
	}
	d.genesis = storedGen
	var height uint64
	var appHash []byte
	var recs []record
	err = d.bolt.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		hb := m.Get(metaHeight)
		if len(hb) != 8 {
			return errors.New("height record is corrupt")
		}
		height = binary.BigEndian.Uint64(hb)
		appHash = append([]byte(nil), m.Get(metaAppHash)...)
		return tx.Bucket(bucketState).ForEach(func(k, v []byte) error {
			recs = append(recs, record{string(k), append([]byte(nil), v...)})
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("chain: reading database: %w", err)
	}
	s, err := restoreState(height, appHash, recs, epoch)
	if err != nil {
		return err
	}
	d.state = s
	return d.openHistory(height)
}

func (d *DB) create(gen Genesis, epoch EpochFunc) error {
	s, err := NewState(gen, epoch)
	if err != nil {
		return err
	}
	genJSON, err := json.Marshal(gen)
	if err != nil {
		return fmt.Errorf("chain: encoding genesis: %w", err)
	}
	err = d.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketState, bucketBlocks, bucketHistory, bucketHistoryHeights} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		st := tx.Bucket(bucketState)
		for _, r := range s.allRecords() {
			if err := st.Put([]byte(r.key), r.value); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if err := m.Put(metaHeight, binary.BigEndian.AppendUint64(nil, 0)); err != nil {
			return err
		}
		if err := m.Put(metaAppHash, s.AppHash()); err != nil {
			return err
		}
		return m.Put(metaGenesis, genJSON)
	})
	if err != nil {
		return fmt.Errorf("chain: writing genesis: %w", err)
	}
	d.state = s
	return nil
}

// State is the current state. The caller serializes access to the DB.
func (d *DB) State() *State { return d.state }

// Genesis is the genesis the database was created from.
func (d *DB) Genesis() Genesis { return d.genesis }

// CheckTx checks a transaction against the current state.
func (d *DB) CheckTx(raw []byte) error { return d.state.CheckTx(raw) }

// ApplyBlock applies a block and commits it before returning.
func (d *DB) ApplyBlock(b Block) (*BlockResult, error) {
	res, err := d.Finalize(b)
	if err != nil {
		return nil, err
	}
	if err := d.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// Finalize applies a block to the in-memory state; Commit then persists
// it. Between the two, the disk still holds the previous block, so a crash
// there loses only the uncommitted block, which the engine replays (as
// CometBFT's FinalizeBlock and Commit expect).
func (d *DB) Finalize(b Block) (*BlockResult, error) {
	if d.broken {
		return nil, ErrDBBroken
	}
	if d.uncommitted != nil {
		return nil, fmt.Errorf("chain: block %d finalized but not committed", d.uncommitted.block.Height)
	}
	res, err := d.state.ApplyBlock(b)
	if err != nil {
		return nil, err
	}
	d.uncommitted = &pendingBlock{block: b, res: res}
	return res, nil
}

type pendingBlock struct {
	block Block
	res   *BlockResult
}

// Commit persists the finalized block in one fsynced write.
func (d *DB) Commit() error {
	p := d.uncommitted
	if p == nil {
		return errors.New("chain: nothing to commit")
	}
	d.uncommitted = nil
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		if err := d.writeHistory(tx, p.block.Height, p.res.records); err != nil {
			return err
		}
		st := tx.Bucket(bucketState)
		for _, r := range p.res.records {
			if r.value == nil {
				if err := st.Delete([]byte(r.key)); err != nil {
					return err
				}
				continue
			}
			if err := st.Put([]byte(r.key), r.value); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketBlocks).Put(binary.BigEndian.AppendUint64(nil, p.block.Height), encodeBlock(p.block)); err != nil {
			return err
		}
		m := tx.Bucket(bucketMeta)
		if err := m.Put(metaHeight, binary.BigEndian.AppendUint64(nil, p.block.Height)); err != nil {
			return err
		}
		return m.Put(metaAppHash, p.res.AppHash)
	})
	p.res.records = nil
	if err != nil {
		d.broken = true
		return fmt.Errorf("%w: %v", ErrDBBroken, err)
	}
	return nil
}

// Block returns a committed block.
func (d *DB) Block(height uint64) (Block, bool, error) {
	var raw []byte
	err := d.bolt.View(func(tx *bolt.Tx) error {
		raw = append([]byte(nil), tx.Bucket(bucketBlocks).Get(binary.BigEndian.AppendUint64(nil, height))...)
		return nil
	})
	if err != nil || raw == nil {
		return Block{}, false, err
	}
	b, err := decodeBlock(raw)
	return b, err == nil, err
}

// Close closes the database file and gives up its lock.
func (d *DB) Close() error {
	err := d.bolt.Close()
	d.lock.Release()
	return err
}

func encodeBlock(b Block) []byte {
	var e encoder
	e.u64(b.Height)
	e.bytes(b.Hash)
	e.u64(uint64(len(b.Txs)))
	for _, tx := range b.Txs {
		e.bytes(tx)
	}
	return e.b
}

func decodeBlock(raw []byte) (Block, error) {
	d := decoder{b: raw}
	b := Block{Height: d.u64(), Hash: d.bytes()}
	for range d.length() {
		b.Txs = append(b.Txs, d.bytes())
	}
	return b, d.finish()
}
