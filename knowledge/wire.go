package knowledge

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/knowledge/pb"
)

// ProtocolID is the stream protocol that serves blocks by CID.
const ProtocolID protocol.ID = "/cybertensor/knowledge/1.0.0"

// Limits of the transfer protocol.
const (
	// MaxWant bounds the CIDs of one request.
	MaxWant = 64
	// MaxRequestSize bounds an encoded request.
	MaxRequestSize = 8 << 10
	// MaxBlockFrame bounds an encoded Block message.
	MaxBlockFrame = MaxBlockSize + 1024
)

// EncodeRequest encodes a request for blocks.
func EncodeRequest(want []cid.Cid) ([]byte, error) {
	if len(want) == 0 || len(want) > MaxWant {
		return nil, fmt.Errorf("%w: a request wants 1 to %d CIDs, not %d", ErrBadMessage, MaxWant, len(want))
	}
	r := &pb.Request{}
	for _, c := range want {
		r.Want = append(r.Want, c.Bytes())
	}
	return proto.Marshal(r)
}

// DecodeRequest decodes a request from a peer and checks its CIDs.
func DecodeRequest(b []byte) ([]cid.Cid, error) {
	if len(b) > MaxRequestSize {
		return nil, fmt.Errorf("%w: request of %d bytes exceeds %d", ErrBadMessage, len(b), MaxRequestSize)
	}
	var r pb.Request
	if err := proto.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: request: %v", ErrBadMessage, err)
	}
	if len(r.Want) == 0 || len(r.Want) > MaxWant {
		return nil, fmt.Errorf("%w: a request wants 1 to %d CIDs, not %d", ErrBadMessage, MaxWant, len(r.Want))
	}
	out := make([]cid.Cid, 0, len(r.Want))
	for i, w := range r.Want {
		c, err := castCID(w)
		if err != nil {
			return nil, fmt.Errorf("%w: want %d: %v", ErrBadMessage, i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// BlockMsg is one answer of a provider.
type BlockMsg struct {
	CID     cid.Cid
	Data    []byte
	Missing bool
}

// EncodeBlock encodes an answer.
func EncodeBlock(m BlockMsg) ([]byte, error) {
	if len(m.Data) > MaxBlockSize {
		return nil, fmt.Errorf("%w: block of %d bytes exceeds %d", ErrTooLarge, len(m.Data), MaxBlockSize)
	}
	return proto.Marshal(&pb.Block{Cid: m.CID.Bytes(), Data: m.Data, Missing: m.Missing})
}

// DecodeBlock decodes an answer from a provider. It does not verify the
// data against the CID: the fetcher does, to tell a bad provider. Data
// aliases b.
func DecodeBlock(b []byte) (BlockMsg, error) {
	if len(b) > MaxBlockFrame {
		return BlockMsg{}, fmt.Errorf("%w: block message of %d bytes exceeds %d", ErrBadMessage, len(b), MaxBlockFrame)
	}
	m, ok := decodeBlockInPlace(b)
	if !ok {
		m = &pb.Block{}
		if err := proto.Unmarshal(b, m); err != nil {
			return BlockMsg{}, fmt.Errorf("%w: block: %v", ErrBadMessage, err)
		}
	}
	c, err := castCID(m.Cid)
	if err != nil {
		return BlockMsg{}, fmt.Errorf("%w: block: %v", ErrBadMessage, err)
	}
	switch {
	case len(m.Data) > MaxBlockSize:
		return BlockMsg{}, fmt.Errorf("%w: block of %d bytes exceeds %d", ErrBadMessage, len(m.Data), MaxBlockSize)
	case m.Missing && len(m.Data) > 0:
		return BlockMsg{}, fmt.Errorf("%w: a missing block with data", ErrBadMessage)
	}
	return BlockMsg{CID: c, Data: m.Data, Missing: m.Missing}, nil
}

// decodeBlockInPlace decodes a well-formed Block of known fields as
// proto.Unmarshal would, without copying the data out of b.
func decodeBlockInPlace(b []byte) (*pb.Block, bool) {
	m := &pb.Block{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			if num == 1 {
				m.Cid = v
			} else {
				m.Data = v
			}
			b = b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			m.Missing, b = protowire.DecodeBool(v), b[n:]
		default:
			return nil, false
		}
	}
	return m, true
}

// appendBlockFrame appends a Block message for c, with data or marked
// missing when data is nil, prefixed by its length as an unsigned varint:
// one frame of the transfer protocol.
func appendBlockFrame(dst []byte, c []byte, data []byte) []byte {
	size := protowire.SizeTag(1) + protowire.SizeBytes(len(c))
	switch {
	case data == nil:
		size += protowire.SizeTag(3) + 1
	case len(data) > 0: // proto3 leaves empty bytes out
		size += protowire.SizeTag(2) + protowire.SizeBytes(len(data))
	}
	dst = protowire.AppendVarint(dst, uint64(size))
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	dst = protowire.AppendBytes(dst, c)
	switch {
	case data == nil:
		dst = protowire.AppendTag(dst, 3, protowire.VarintType)
		dst = append(dst, 1)
	case len(data) > 0:
		dst = protowire.AppendTag(dst, 2, protowire.BytesType)
		dst = protowire.AppendBytes(dst, data)
	}
	return dst
}

// writeFrame writes b prefixed with its length as an unsigned varint.
func writeFrame(w *bufio.Writer, b []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	if _, err := w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(b)))]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// readFrame reads one varint-framed message of at most max bytes.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	size, err := readFrameLength(r, max)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading a frame: %w", err)
	}
	return buf, nil
}

// growFrom is the room readFrameGrowing starts with.
const growFrom = 512

// readFrameGrowing reads a frame as readFrame does, for a server reading
// what any peer sends: its buffer starts at growFrom bytes and doubles as
// the bytes arrive, so a peer that announces a long frame and sends little
// of it makes the server hold little more than it sent.
func readFrameGrowing(r *bufio.Reader, max int) ([]byte, error) {
	size, err := readFrameLength(r, max)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, min(size, growFrom))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(len(buf), size-len(buf)))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), size)])
		buf = buf[:len(buf)+n]
		if err != nil && len(buf) < size {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading a frame: %w", err)
		}
	}
	return buf, nil
}

// readFrameLength reads a frame's length, at most max; io.EOF if the
// stream ended before it.
func readFrameLength(r *bufio.Reader, max int) (int, error) {
	size, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("%w: frame length: %v", ErrBadMessage, err)
	}
	if size > uint64(max) {
		return 0, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrBadMessage, size, max)
	}
	return int(size), nil
}
