package knowledge

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"math/rand"
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
		root, n, err := importBody(bytes.NewReader(tc.body), 1<<30, blocks.put)
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
	_, _, err := importBody(bytes.NewReader(make([]byte, 300<<10)), 256<<10, memBlocks{}.put)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize body: %v", err)
	}
}
