package yamux

import (
	"encoding/binary"
	"fmt"
)

// Frame types (the header's second byte).
const (
	typeData         uint8 = 0
	typeWindowUpdate uint8 = 1
	typePing         uint8 = 2
	typeGoAway       uint8 = 3
)

// Frame flags (the header's bytes 2-3).
const (
	flagSYN uint16 = 1 << 0
	flagACK uint16 = 1 << 1
	flagFIN uint16 = 1 << 2
	flagRST uint16 = 1 << 3
)

// Go-away codes (the length field of a go-away frame).
const (
	goAwayNormal      uint32 = 0
	goAwayProtoErr    uint32 = 1
	goAwayInternalErr uint32 = 2
)

const (
	// protoVersion is the only version of the yamux header.
	protoVersion uint8 = 0
	// headerSize is the size of every frame header.
	headerSize = 12
)

// header is a decoded frame header: version 0, then type, flags, stream
// ID and length, big-endian. Length is the body length of a data frame,
// the window increment of a window update, the error code of a window
// update carrying RST, the opaque value of a ping and the code of a go
// away; only data frames have a body.
type header struct {
	typ    uint8
	flags  uint16
	stream uint32
	length uint32
}

// encode writes h into b.
func (h header) encode(b *[headerSize]byte) {
	b[0] = protoVersion
	b[1] = h.typ
	binary.BigEndian.PutUint16(b[2:4], h.flags)
	binary.BigEndian.PutUint32(b[4:8], h.stream)
	binary.BigEndian.PutUint32(b[8:12], h.length)
}

func (h header) String() string {
	return fmt.Sprintf("type %d flags %#x stream %d length %d", h.typ, h.flags, h.stream, h.length)
}

// decodeHeader checks and decodes a frame header. Only the version and
// the type are checked; what flags and IDs mean is up to the session.
func decodeHeader(b *[headerSize]byte) (header, error) {
	if b[0] != protoVersion {
		return header{}, fmt.Errorf("%w: %d", ErrInvalidVersion, b[0])
	}
	h := header{
		typ:    b[1],
		flags:  binary.BigEndian.Uint16(b[2:4]),
		stream: binary.BigEndian.Uint32(b[4:8]),
		length: binary.BigEndian.Uint32(b[8:12]),
	}
	if h.typ > typeGoAway {
		return header{}, fmt.Errorf("%w: %d", ErrInvalidMsgType, h.typ)
	}
	return h, nil
}
