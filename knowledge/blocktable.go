package knowledge

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// blockTable is the store's blocks inside one transaction: an index from
// each block's binary CID to an 8-byte sequence number, and the blocks'
// bytes under those numbers, in the order they were written.
//
// Keyed by CID, which is random, each new 256 KiB block landed in a leaf
// beside one or two blocks already stored, and bbolt rewrote that leaf
// whole: a 100 MiB import into a store holding a few objects wrote 3.6
// times its size to disk (BENCHMARKS.md, "Blocks in write order"). Keyed
// by sequence, new blocks are appended to the right edge of the tree
// (FillPercent 1), and only the small index entries land at random.
type blockTable struct {
	index, data *bolt.Bucket
}

var (
	bucketBlockIndex = []byte("block-index")
	bucketBlockData  = []byte("block-data")
	// bucketBlocksV1 is the layout before the block table (binary CID →
	// bytes), moved into the table when a store opens.
	bucketBlocksV1 = []byte("blocks")
)

// blocksOf returns tx's block table.
func blocksOf(tx *bolt.Tx) blockTable {
	t := blockTable{index: tx.Bucket(bucketBlockIndex), data: tx.Bucket(bucketBlockData)}
	if tx.Writable() {
		t.data.FillPercent = 1 // appended in key order: fill every page
	}
	return t
}

// get returns the block of binary CID k, or nil; the bytes are valid for
// the transaction only.
func (t blockTable) get(k []byte) []byte {
	seq := t.index.Get(k)
	if seq == nil {
		return nil
	}
	return t.data.Get(seq)
}

// has tells whether the block of binary CID k is stored.
func (t blockTable) has(k []byte) bool { return t.index.Get(k) != nil }

// put stores a block that is not stored yet under the next sequence
// number; data must stay unchanged until the transaction ends.
func (t blockTable) put(k, data []byte) error {
	n, err := t.data.NextSequence()
	if err != nil {
		return err
	}
	seq := binary.BigEndian.AppendUint64(nil, n)
	if err := t.data.Put(seq, data); err != nil {
		return err
	}
	return t.index.Put(k, seq)
}

// remove deletes the block of binary CID k and returns its size (0 if it
// was not stored).
func (t blockTable) remove(k []byte) (int, error) {
	seq := t.index.Get(k)
	if seq == nil {
		return 0, nil
	}
	seq = append([]byte(nil), seq...)
	size := len(t.data.Get(seq))
	if err := t.index.Delete(k); err != nil {
		return 0, err
	}
	return size, t.data.Delete(seq)
}

// forEach calls fn with each block's binary CID and size; fn must not
// change the table.
func (t blockTable) forEach(fn func(k []byte, size int) error) error {
	return t.index.ForEach(func(k, seq []byte) error {
		return fn(k, len(t.data.Get(seq)))
	})
}

// migrateBlocksV1 moves the blocks of a store written before the block
// table into it, up to flushBytes a transaction, so that a crash midway
// leaves every block in one layout or the other and the next open goes on.
func migrateBlocksV1(db *bolt.DB) error {
	for {
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			old := tx.Bucket(bucketBlocksV1)
			if old == nil {
				done = true
				return nil
			}
			t := blocksOf(tx)
			var moved [][]byte
			bytes := 0
			c := old.Cursor()
			for k, v := c.First(); k != nil && bytes < flushBytes; k, v = c.Next() {
				if !t.has(k) {
					if err := t.put(k, v); err != nil {
						return err
					}
				}
				moved = append(moved, k)
				bytes += len(v)
			}
			if len(moved) == 0 {
				done = true
				return tx.DeleteBucket(bucketBlocksV1)
			}
			for _, k := range moved {
				if err := old.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("moving blocks to the block table: %w", err)
		}
		if done {
			return nil
		}
	}
}
