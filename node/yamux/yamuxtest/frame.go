package yamuxtest

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The yamux wire format, written out here so that the attacker depends on
// no muxer.
const (
	headerSize = 12

	typeData         = 0
	typeWindowUpdate = 1
	typePing         = 2
	typeGoAway       = 3

	flagSYN = 1
	flagACK = 2
	flagFIN = 4
	flagRST = 8

	// goAwayProtoErr is the go-away code of a protocol error.
	goAwayProtoErr = 1

	// initialWindow is every stream's receive window when it opens.
	initialWindow = 256 << 10
)

// header is a frame header.
type header struct {
	typ    uint8
	flags  uint16
	stream uint32
	length uint32
}

// appendTo appends h's 12 bytes to b.
func (h header) appendTo(b []byte) []byte {
	b = append(b, 0, h.typ)
	b = binary.BigEndian.AppendUint16(b, h.flags)
	b = binary.BigEndian.AppendUint32(b, h.stream)
	return binary.BigEndian.AppendUint32(b, h.length)
}

func (h header) String() string {
	return fmt.Sprintf("type %d flags %#x stream %d length %d", h.typ, h.flags, h.stream, h.length)
}

// readHeader reads the victim's next frame, discarding a data frame's
// body.
func readHeader(r io.Reader) (header, error) {
	var b [headerSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return header{}, err
	}
	if b[0] != 0 {
		return header{}, fmt.Errorf("frame version %d", b[0])
	}
	h := header{
		typ:    b[1],
		flags:  binary.BigEndian.Uint16(b[2:4]),
		stream: binary.BigEndian.Uint32(b[4:8]),
		length: binary.BigEndian.Uint32(b[8:12]),
	}
	if h.typ == typeData && h.length > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(h.length)); err != nil {
			return header{}, err
		}
	}
	return h, nil
}
