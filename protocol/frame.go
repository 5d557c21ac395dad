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

// writeMsg writes one length-prefixed message in one Write.
func writeMsg(w io.Writer, m proto.Message) error {
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

// A request frame is read in two steps, so that the server holds only
// bytes that have arrived and checks the caller before it reads a body:
// readHead reads the request's short fields and learns its netuid, then,
// once the caller may send it, readRest reads the rest into a buffer that
// grows as the bytes arrive.

// headLimit is how much of a request the server reads before it checks
// the caller: the fields a client writes before the body (request ID,
// netuid, synapse) take at most about 150 bytes.
const headLimit = 512

// headCap bounds a head: under headLimit, then one more field of a tag, a
// length and at most maxIDLen bytes.
const headCap = headLimit + 2*binary.MaxVarintLen64 + maxIDLen

// minGrow is the least a request buffer grows by.
const minGrow = 4 << 10

// readHead reads the start of a request frame of size bytes: its fields
// one after another while each is at most maxIDLen bytes long, until the
// frame ends, headLimit bytes are read or a longer field (the body)
// begins. It returns the bytes read and the last netuid among them (0 if
// none; the low 32 bits of the varint, as protobuf decodes a uint32). A start that does not parse ends the head early; decoding the
// whole frame rejects it later. The head's capacity is min(size, headCap).
func readHead(r *bufio.Reader, size int) (head []byte, netuid uint32, err error) {
	head = make([]byte, 0, min(size, headCap))
	// varint reads one varint of the frame; ok is false if the frame
	// ends first or the varint is longer than ten bytes.
	varint := func() (v uint64, ok bool, err error) {
		for i := range binary.MaxVarintLen64 {
			if len(head) == size {
				return 0, false, nil
			}
			b, err := r.ReadByte()
			if err != nil {
				return 0, false, err
			}
			head = append(head, b)
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, false, nil // overflows 64 bits
			}
			v |= uint64(b&0x7f) << (7 * i)
			if b < 0x80 {
				return v, true, nil
			}
		}
		return 0, false, nil
	}
	for len(head) < size && len(head) < headLimit {
		tag, ok, err := varint()
		if !ok {
			return head, netuid, err
		}
		num, typ := protowire.DecodeTag(tag)
		if num < protowire.MinValidNumber {
			return head, netuid, nil
		}
		var n uint64
		switch typ {
		case protowire.VarintType:
			v, ok, err := varint()
			if !ok {
				return head, netuid, err
			}
			if num == 2 {
				netuid = uint32(v)
			}
			continue
		case protowire.Fixed32Type:
			n = 4
		case protowire.Fixed64Type:
			n = 8
		case protowire.BytesType:
			if n, ok, err = varint(); !ok {
				return head, netuid, err
			}
			if n > maxIDLen {
				return head, netuid, nil
			}
		default:
			return head, netuid, nil
		}
		if n > uint64(size-len(head)) {
			return head, netuid, nil
		}
		at := len(head)
		head = append(head, make([]byte, n)...)
		if _, err := io.ReadFull(r, head[at:]); err != nil {
			return head[:at], netuid, err
		}
	}
	return head, netuid, nil
}

// readRest reads the rest of a request frame of size bytes into buf,
// which holds its start. The buffer grows as bytes arrive, never past
// size nor past twice what has arrived (or minGrow), and reserve is asked
// first for every byte of capacity it adds; its error ends the read.
func readRest(r io.Reader, buf []byte, size int, reserve func(n int) error) ([]byte, error) {
	for len(buf) < size {
		if len(buf) == cap(buf) {
			c := min(size, max(2*cap(buf), minGrow))
			if err := reserve(c - cap(buf)); err != nil {
				return buf, err
			}
			buf = append(make([]byte, 0, c), buf...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && len(buf) < size {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}

func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	for i := 0; i < 10; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		if i == 9 && b > 1 {
			break
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if i > 0 && b == 0 {
				return 0, errors.New("non-minimal varint")
			}
			return x, nil
		}
	}
	return 0, errors.New("varint overflows 64 bits")
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
