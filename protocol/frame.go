package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

// Response frames carrying a body chunk are the bulk of a large answer.
// They are written and read without copying the chunk through a protobuf
// encoding: the server writes the frame's few header bytes and then the
// chunk itself, and the client hands the chunk to its caller straight from
// the frame it read.

// writeBufSize is the server's write buffer per stream: a chunk's header
// and the start of the chunk go out together, the rest of a large chunk is
// written from the handler's slice.
const writeBufSize = 32 << 10

// writeChunk writes one Response frame with more = true and body = chunk.
// The fields are in the order more, body (protobuf allows any order), so
// the whole header precedes the chunk.
func writeChunk(w *bufio.Writer, chunk []byte) error {
	var hdr [2*binary.MaxVarintLen64 + 3]byte
	n := 1 + 1 + 1 + protowire.SizeVarint(uint64(len(chunk))) + len(chunk) // more tag, true, body tag, length, body
	b := protowire.AppendVarint(hdr[:0], uint64(n))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = append(b, 1)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(chunk)))
	if _, err := w.Write(b); err != nil {
		return err
	}
	_, err := w.Write(chunk)
	return err
}

// writeMsg writes one length-prefixed message.
func writeMsg(w *bufio.Writer, m proto.Message) error {
	b, err := proto.MarshalOptions{}.MarshalAppend(make([]byte, binary.MaxVarintLen64, 64), m)
	if err != nil {
		return err
	}
	body := b[binary.MaxVarintLen64:]
	pre := protowire.AppendVarint(nil, uint64(len(body)))
	start := binary.MaxVarintLen64 - len(pre)
	copy(b[start:], pre)
	_, err = w.Write(b[start:])
	return err
}

// frameBufs holds the client's frame buffers between exchanges.
var frameBufs = sync.Pool{New: func() any { return new([]byte) }}

// errFrameTooLarge is a frame longer than MaxFrameSize.
var errFrameTooLarge = errors.New("frame too large")

// readResponse reads one Response frame into *buf (grown as needed) and
// decodes it. The returned frame's Body aliases *buf: it is valid until
// the next read.
func readResponse(r *bufio.Reader, buf *[]byte) (*pb.Response, error) {
	size, err := readUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if size > MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", errFrameTooLarge, size, MaxFrameSize)
	}
	if uint64(cap(*buf)) < size {
		*buf = make([]byte, size)
	}
	raw := (*buf)[:size]
	if _, err := io.ReadFull(r, raw); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return decodeResponse(raw)
}

// decodeResponse decodes a frame. A frame of only status, body and more
// fields (every chunk frame) is decoded in place, its Body aliasing raw;
// any other is left to proto.Unmarshal.
func decodeResponse(raw []byte) (*pb.Response, error) {
	if f, ok := decodeChunkFrame(raw); ok {
		return f, nil
	}
	f := &pb.Response{}
	if err := proto.Unmarshal(raw, f); err != nil {
		return nil, fmt.Errorf("decoding a response frame: %w", err)
	}
	return f, nil
}

// decodeChunkFrame decodes a well-formed frame of only status, body and
// more fields, as proto.Unmarshal would but with Body aliasing raw.
func decodeChunkFrame(raw []byte) (*pb.Response, bool) {
	f := &pb.Response{}
	for b := raw; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			f.Body, b = v, b[n:]
		case (num == 1 || num == 4) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			if num == 4 {
				f.More = protowire.DecodeBool(v)
			} else {
				f.Status = pb.Status(int32(v))
			}
			b = b[n:]
		default:
			return nil, false
		}
	}
	return f, true
}
