package knowledge

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"math/rand"
	randv2 "math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"
)

// goRandom reproduces the bytes of go-random's "random SIZE SEED", the
// generator behind kubo's sharness fixtures: each math/rand Uint32 gives
// four little-endian bytes.
func goRandom(size int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	const bufSize = 4 << 20
	out := make([]byte, 0, size)
	buf := make([]byte, bufSize)
	for count := size; count > 0; {
		n := min(bufSize, count)
		b := buf[:n]
		for i := 0; i < n; {
			v := r.Uint32()
			for j := 0; j < 4 && i < n; j++ {
				b[i] = byte(v)
				v >>= 8
				i++
			}
		}
		out = append(out, b...)
		count -= n
	}
	return out
}

// memBlocks collects the blocks of an import.
type memBlocks map[cid.Cid][]byte

func (m memBlocks) put(c cid.Cid, d []byte) error { m[c] = append([]byte(nil), d...); return nil }
func (m memBlocks) get(c cid.Cid) ([]byte, error) {
	d, ok := m[c]
	if !ok {
		return nil, ErrNotFound
	}
	return d, nil
}

// Bodies get the CIDs that "ipfs add --cid-version=1" (kubo's defaults:
// 256 KiB chunks, raw leaves, balanced DAG, sha2-256) gives the same bytes,
// as published in kubo's test suite.
func TestBodyCIDMatchesIPFS(t *testing.T) {
	big := goRandom(5242880, 41)
	if sum := sha1.Sum(big); hex.EncodeToString(sum[:]) != "5620fb92eb5a49c9986b5c6844efda37e471660e" {
		t.Fatalf("the go-random reimplementation differs: sha1 %x", sum)
	}
	cases := []struct {
		name string
		body []byte
		want string
	}{
		// t0040-add-and-cat.sh: test_add_cat_5MB --cid-version=1
		{"5 MB from go-random seed 41", big, "bafybeigfnx3tka2rf5ovv2slb7ymrt4zbwa3ryeqibe6fipyt5vgsrli3u"},
		// t0040-add-and-cat.sh: "file1\n" added with --cid-version 1
		{"one raw leaf", []byte("file1\n"), "bafkreihm3rktn5z33luic3youqdsn326toaq3ekesmdvsa53sbrd3f5r3a"},
		// the empty file: a raw leaf of the empty string
		{"empty", nil, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
	}
	for _, tc := range cases {
		blocks := memBlocks{}
		root, n, err := importBody(context.Background(), bytes.NewReader(tc.body), 1<<30, blocks.put)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if root.String() != tc.want || n != int64(len(tc.body)) {
			t.Errorf("%s: CID %s (%d bytes), want %s", tc.name, root, n, tc.want)
		}
		var out bytes.Buffer
		if _, err := writeBody(context.Background(), root, blocks.get, &out); err != nil || !bytes.Equal(out.Bytes(), tc.body) {
			t.Errorf("%s: read back %d bytes, %v", tc.name, out.Len(), err)
		}
		for c, d := range blocks {
			if err := verifyBlock(c, d); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
	}
}

func TestImportLimit(t *testing.T) {
	_, _, err := importBody(context.Background(), bytes.NewReader(make([]byte, 300<<10)), 256<<10, memBlocks{}.put)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize body: %v", err)
	}
}

// A range read returns exactly the bytes of the range, and reads only the
// blocks that hold them.
func TestWriteBodyRange(t *testing.T) {
	body := goRandom(5*ChunkSize+1234, 7)
	blocks := memBlocks{}
	root, _, err := importBody(context.Background(), bytes.NewReader(body), 1<<30, blocks.put)
	if err != nil {
		t.Fatal(err)
	}
	rng := randv2.New(randv2.NewPCG(1, 2))
	ranges := [][2]uint64{{0, 0}, {0, 1}, {0, uint64(len(body))}, {ChunkSize - 1, 2}, {ChunkSize, ChunkSize}, {uint64(len(body)) - 1, 1},
		{uint64(len(body)), 10}, {uint64(len(body)) - 5, 10}, {3 * ChunkSize, ^uint64(0)}}
	for range 200 {
		off := uint64(rng.IntN(len(body)))
		ranges = append(ranges, [2]uint64{off, uint64(rng.IntN(2 * ChunkSize))})
	}
	for _, r := range ranges {
		off, n := r[0], r[1]
		reads := 0
		get := func(c cid.Cid) ([]byte, error) { reads++; return blocks.get(c) }
		var out bytes.Buffer
		if _, err := writeBodyRange(context.Background(), root, get, &out, off, n); err != nil {
			t.Fatalf("range %d+%d: %v", off, n, err)
		}
		lo := min(off, uint64(len(body)))
		hi := min(lo+min(n, uint64(len(body))), uint64(len(body)))
		if !bytes.Equal(out.Bytes(), body[lo:hi]) {
			t.Fatalf("range %d+%d: %d bytes differ from the body's %d", off, n, out.Len(), hi-lo)
		}
		// The root, and the leaves the range touches.
		leaves := 0
		if hi > lo {
			leaves = int((hi-1)/ChunkSize - lo/ChunkSize + 1)
		}
		if reads > 1+leaves {
			t.Fatalf("range %d+%d read %d blocks for %d leaves", off, n, reads, leaves)
		}
	}
}
