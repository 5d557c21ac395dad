package knowledge

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// toV1 moves all but keep of a closed library's blocks back to the layout
// before the block table (binary CID → bytes), as an older version wrote
// it, or as a migration that crashed midway left it.
func toV1(t *testing.T, dir string, keep int) (moved int) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "library.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		old, err := tx.CreateBucketIfNotExists(bucketBlocksV1)
		if err != nil {
			return err
		}
		blocks := blocksOf(tx)
		type block struct{ k, v []byte }
		var all []block
		blocks.forEach(func(k []byte, _ int) error {
			all = append(all, block{append([]byte(nil), k...), append([]byte(nil), blocks.get(k)...)})
			return nil
		})
		for _, b := range all[keep:] {
			if _, err := blocks.remove(b.k); err != nil {
				return err
			}
			if err := old.Put(b.k, b.v); err != nil {
				return err
			}
			moved++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return moved
}

// A library written before the block table, or whose move into it was
// cut short, opens with every block in the table, every object readable
// and the usage unchanged.
func TestBlocksMoveIntoTheTable(t *testing.T) {
	for _, keep := range []int{0, 3} {
		dir := t.TempDir()
		l := openTest(t, dir, 1)
		ctx := context.Background()
		bodies := [][]byte{goRandom(3*ChunkSize+17, 1), []byte("a small object"), goRandom(ChunkSize, 2)}
		var objs []*Object
		for _, b := range bodies {
			o, err := l.Publish(ctx, bytes.NewReader(b), Meta{Title: "t"})
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, o)
		}
		before := snapshot(t, l)
		l.Close()
		if moved := toV1(t, dir, keep); moved < 5 {
			t.Fatalf("only %d blocks in the old layout", moved)
		}
		l = openTest(t, dir, 1)
		if after := snapshot(t, l); after != before {
			t.Fatalf("keep %d: after the move %s, before %s", keep, after, before)
		}
		l.store.db.View(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketBlocksV1) != nil {
				t.Errorf("keep %d: the old blocks bucket is still there", keep)
			}
			return nil
		})
		for i, o := range objs {
			var got bytes.Buffer
			if _, err := l.Get(ctx, o.CID, &got); err != nil || !bytes.Equal(got.Bytes(), bodies[i]) {
				t.Fatalf("keep %d: object %d: %d bytes, %v", keep, i, got.Len(), err)
			}
		}
		if st, err := l.GC(); err != nil || st.Blocks != 0 {
			t.Fatalf("keep %d: gc after the move: %+v %v", keep, st, err)
		}
		l.Close()
	}
}

// Blocks are appended under increasing sequence numbers, a removed block
// is gone from both buckets, and sizes are the blocks'.
func TestBlockTable(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketBlockIndex, bucketBlockData} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		t := blocksOf(tx)
		for _, k := range []string{"zz", "aa", "mm"} {
			if err := t.put([]byte(k), []byte(k+k+k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		bt := blocksOf(tx)
		var order []string
		tx.Bucket(bucketBlockData).ForEach(func(_, v []byte) error { order = append(order, string(v)); return nil })
		if got := strings.Join(order, " "); got != "zzzzzz aaaaaa mmmmmm" {
			t.Errorf("data in key order %q, want write order", got)
		}
		if !bt.has([]byte("aa")) || string(bt.get([]byte("mm"))) != "mmmmmm" || bt.get([]byte("xx")) != nil {
			t.Error("lookups")
		}
		if n, err := bt.remove([]byte("aa")); n != 6 || err != nil {
			t.Errorf("remove: %d %v", n, err)
		}
		if n, err := bt.remove([]byte("aa")); n != 0 || err != nil {
			t.Errorf("remove again: %d %v", n, err)
		}
		stored := 0
		tx.Bucket(bucketBlockData).ForEach(func(_, _ []byte) error { stored++; return nil })
		if bt.count() != 2 || stored != 2 {
			t.Errorf("%d blocks indexed, %d stored, want 2", bt.count(), stored)
		}
		total := 0
		bt.forEach(func(_ []byte, size int) error { total += size; return nil })
		if total != 12 {
			t.Errorf("sizes add to %d, want 12", total)
		}
		return nil
	})
}

// count is the number of blocks.
func (t blockTable) count() (n int) {
	t.index.ForEach(func(_, _ []byte) error { n++; return nil })
	return n
}
