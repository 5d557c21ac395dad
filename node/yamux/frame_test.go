package yamux

import (
	"errors"
	"testing"
	"testing/quick"
)

func TestHeaderTable(t *testing.T) {
	for _, c := range []struct {
		name  string
		h     header
		bytes [headerSize]byte
	}{
		{"syn window update", header{typ: typeWindowUpdate, flags: flagSYN, stream: 1}, [headerSize]byte{0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"data", header{typ: typeData, stream: 2, length: 65524}, [headerSize]byte{0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0xff, 0xf4}},
		{"rst with code", header{typ: typeWindowUpdate, flags: flagRST, stream: 0x01020304, length: 0x1006}, [headerSize]byte{0, 1, 0, 8, 1, 2, 3, 4, 0, 0, 0x10, 0x06}},
		{"ping ack", header{typ: typePing, flags: flagACK, length: 0xdeadbeef}, [headerSize]byte{0, 2, 0, 2, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}},
		{"fin ack", header{typ: typeData, flags: flagFIN | flagACK, stream: 7}, [headerSize]byte{0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 0}},
		{"go away protocol error", header{typ: typeGoAway, length: goAwayProtoErr}, [headerSize]byte{0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
	} {
		var b [headerSize]byte
		c.h.encode(&b)
		if b != c.bytes {
			t.Errorf("%s: encoded % x, want % x", c.name, b, c.bytes)
		}
		got, err := decodeHeader(&c.bytes)
		if err != nil || got != c.h {
			t.Errorf("%s: decoded %v, %v; want %v", c.name, got, err, c.h)
		}
	}
	bad := [headerSize]byte{1, 0}
	if _, err := decodeHeader(&bad); !errors.Is(err, ErrInvalidVersion) {
		t.Errorf("version 1: %v", err)
	}
	bad = [headerSize]byte{0, 4}
	if _, err := decodeHeader(&bad); !errors.Is(err, ErrInvalidMsgType) {
		t.Errorf("type 4: %v", err)
	}
}

// Every valid header survives encode then decode, and every 12 bytes
// with version 0 and a known type decode to a header that encodes back
// to the same bytes.
func TestHeaderRoundTripProperty(t *testing.T) {
	roundTrip := func(typ uint8, flags uint16, stream, length uint32) bool {
		h := header{typ: typ % 4, flags: flags, stream: stream, length: length}
		var b [headerSize]byte
		h.encode(&b)
		got, err := decodeHeader(&b)
		return err == nil && got == h
	}
	if err := quick.Check(roundTrip, nil); err != nil {
		t.Error(err)
	}
	bytesBack := func(b [headerSize]byte) bool {
		h, err := decodeHeader(&b)
		if b[0] != 0 || b[1] > 3 {
			return err != nil
		}
		var again [headerSize]byte
		h.encode(&again)
		return err == nil && again == b
	}
	if err := quick.Check(bytesBack, nil); err != nil {
		t.Error(err)
	}
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < headerSize {
			return
		}
		b := [headerSize]byte(in[:headerSize])
		h, err := decodeHeader(&b)
		if err != nil {
			return
		}
		var again [headerSize]byte
		h.encode(&again)
		if again != b {
			t.Fatalf("% x decoded to %v, which encodes to % x", b, h, again)
		}
	})
}
