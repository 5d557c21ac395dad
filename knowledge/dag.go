package knowledge

import (
	"context"
	"errors"
	"fmt"
	"io"

	chunker "github.com/ipfs/boxo/chunker"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
)

// Chunking settings: those of "ipfs add --cid-version=1" with defaults, so
// a body's CID is the one IPFS tools compute for the same bytes.
const (
	// ChunkSize is the fixed chunk size (the size-262144 chunker).
	ChunkSize = 256 << 10
	// LinksPerNode is the fan-out of the balanced DAG's dag-pb nodes.
	LinksPerNode = 174
	// MaxBlockSize bounds any block the library stores or accepts.
	MaxBlockSize = 1 << 20
	// maxNodeLinks bounds the links of one dag-pb node accepted from
	// others (other importers use wider nodes than LinksPerNode).
	maxNodeLinks = 4096
	// maxDepth bounds the depth of a body's DAG.
	maxDepth = 32
)

// bodyPrefix is the CID builder of UnixFS nodes: CIDv1, dag-pb, sha2-256
// (leaves are raw with the same hash).
var bodyPrefix = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: multihash.SHA2_256, MhLength: -1}

// putFunc receives each block of a body as it is built.
type putFunc func(c cid.Cid, data []byte) error

// sinkDAG is the write-only ipld.DAGService the importer writes into.
type sinkDAG struct{ put putFunc }

var _ ipld.DAGService = sinkDAG{}

func (s sinkDAG) Add(_ context.Context, nd ipld.Node) error { return s.put(nd.Cid(), nd.RawData()) }
func (s sinkDAG) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		if err := s.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}
func (sinkDAG) Get(context.Context, cid.Cid) (ipld.Node, error) {
	return nil, errors.New("knowledge: the import sink is write-only")
}
func (sinkDAG) GetMany(context.Context, []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption)
	close(ch)
	return ch
}
func (sinkDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (sinkDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }

// limitReader fails with ErrTooLarge as soon as more than max bytes are
// read, and with ctx's error once ctx is done: the chunker reads a chunk
// at a time, so a publish stops within a chunk of either.
type limitReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
	max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if l.n > l.max {
		return 0, l.tooLarge()
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		// Not (n, err): io.ReadFull drops the error of a read that
		// fills its buffer, and the chunker would read on to the end.
		return 0, l.tooLarge()
	}
	return n, err
}

func (l *limitReader) tooLarge() error {
	return fmt.Errorf("%w: the body exceeds %d bytes", ErrTooLarge, l.max)
}

// importBody chunks r into a UnixFS file DAG (balanced, 256 KiB chunks,
// raw leaves, CIDv1, sha2-256), handing every block to put, and returns the
// root CID and the body length. It stops with ErrTooLarge once r passes
// max bytes, and with ctx's error once ctx is done.
func importBody(ctx context.Context, r io.Reader, max int64, put putFunc) (cid.Cid, int64, error) {
	lr := &limitReader{ctx: ctx, r: r, max: max}
	params := helpers.DagBuilderParams{
		Maxlinks:   LinksPerNode,
		RawLeaves:  true,
		CidBuilder: bodyPrefix,
		Dagserv:    sinkDAG{put: put},
	}
	db, err := params.New(chunker.NewSizeSplitter(lr, ChunkSize))
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("knowledge: chunking: %w", err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("knowledge: chunking: %w", err)
	}
	return root.Cid(), lr.n, nil
}

// node is a decoded body block.
type node struct {
	// data is the file bytes held in this block itself.
	data []byte
	// links are the children, in file order, with the file bytes under
	// each.
	links []cid.Cid
	sizes []uint64
	// size is the file bytes under this node.
	size uint64
}

// decodeNode decodes a verified body block: a raw leaf, or a dag-pb node
// holding a UnixFS file (or raw) node. Anything else is ErrBadBlock.
func decodeNode(c cid.Cid, data []byte) (n node, err error) {
	if len(data) > MaxBlockSize {
		return node{}, fmt.Errorf("%w: block %s of %d bytes exceeds %d", ErrTooLarge, c, len(data), MaxBlockSize)
	}
	switch c.Type() {
	case cid.Raw:
		return node{data: data, size: uint64(len(data))}, nil
	case cid.DagProtobuf:
	default:
		return node{}, fmt.Errorf("%w: %s is not a body block", ErrBadBlock, c)
	}
	defer func() {
		// A decoder bug on hostile bytes is a bad block, not a crash.
		if r := recover(); r != nil {
			n, err = node{}, fmt.Errorf("%w: %s: decoder panic: %v", ErrBadBlock, c, r)
		}
	}()
	pn, err := dag.DecodeProtobuf(data)
	if err != nil {
		return node{}, fmt.Errorf("%w: %s: %v", ErrBadBlock, c, err)
	}
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		return node{}, fmt.Errorf("%w: %s: not UnixFS: %v", ErrBadBlock, c, err)
	}
	if t := fsn.Type(); t != unixfspb.Data_File && t != unixfspb.Data_Raw {
		return node{}, fmt.Errorf("%w: %s: UnixFS %s, not a file", ErrBadBlock, c, t)
	}
	links := pn.Links()
	sizes := fsn.BlockSizes()
	if len(links) > maxNodeLinks {
		return node{}, fmt.Errorf("%w: %s: %d links exceed %d", ErrBadBlock, c, len(links), maxNodeLinks)
	}
	if len(links) != len(sizes) {
		return node{}, fmt.Errorf("%w: %s: %d links but %d block sizes", ErrBadBlock, c, len(links), len(sizes))
	}
	n = node{data: fsn.Data(), sizes: sizes}
	total := uint64(len(n.data))
	for i, l := range links {
		if err := checkCID(l.Cid); err != nil || isObject(l.Cid) {
			return node{}, fmt.Errorf("%w: %s: link %d: %s is not a body block", ErrBadBlock, c, i, l.Cid)
		}
		n.links = append(n.links, l.Cid)
		if total+sizes[i] < total {
			return node{}, fmt.Errorf("%w: %s: sizes overflow", ErrBadBlock, c)
		}
		total += sizes[i]
	}
	if total != fsn.FileSize() {
		return node{}, fmt.Errorf("%w: %s: file size %d is not the sum %d of its parts", ErrBadBlock, c, fsn.FileSize(), total)
	}
	n.size = total
	return n, nil
}

// blockGetter returns a block known to be valid (from the local store).
type blockGetter func(c cid.Cid) ([]byte, error)

// writeBody writes the file under root to w, depth first, checking that
// every node's parts add up.
func writeBody(ctx context.Context, root cid.Cid, get blockGetter, w io.Writer) (int64, error) {
	return writeBodyRange(ctx, root, get, w, 0, ^uint64(0))
}

// writeBodyRange writes the bytes [offset, offset+length) of the file
// under root to w (fewer if the file ends first), reading only the blocks
// that hold them: subtrees wholly before the range are skipped by the
// sizes their parents record, and the walk stops at its end.
func writeBodyRange(ctx context.Context, root cid.Cid, get blockGetter, w io.Writer, offset, length uint64) (int64, error) {
	end := offset + length
	if end < offset {
		end = ^uint64(0)
	}
	var written int64
	var walk func(c cid.Cid, want uint64, depth int, start uint64) error
	walk = func(c cid.Cid, want uint64, depth int, start uint64) error {
		if depth > maxDepth {
			return fmt.Errorf("%w: DAG deeper than %d", ErrBadBlock, maxDepth)
		}
		if start >= end || (want != ^uint64(0) && start+want <= offset) {
			return nil // wholly after or before the range
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := get(c)
		if err != nil {
			return err
		}
		n, err := decodeNode(c, data)
		if err != nil {
			return err
		}
		if want != ^uint64(0) && n.size != want {
			return fmt.Errorf("%w: %s holds %d bytes, its parent says %d", ErrBadBlock, c, n.size, want)
		}
		if part := overlap(n.data, start, offset, end); len(part) > 0 {
			m, err := w.Write(part)
			written += int64(m)
			if err != nil {
				return err
			}
		}
		pos := start + uint64(len(n.data))
		for i, l := range n.links {
			if err := walk(l, n.sizes[i], depth+1, pos); err != nil {
				return err
			}
			pos += n.sizes[i]
		}
		return nil
	}
	err := walk(root, ^uint64(0), 0, 0)
	return written, err
}

// overlap is the part of data, which starts at file offset start, inside
// [offset, end).
func overlap(data []byte, start, offset, end uint64) []byte {
	stop := start + uint64(len(data))
	lo, hi := max(start, offset), min(stop, end)
	if lo >= hi {
		return nil
	}
	return data[lo-start : hi-start]
}
