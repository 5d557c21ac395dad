package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file holds the canonical binary encoding of state objects, used
// both to persist them and to hash them into the app hash. Integers are
// uvarints, byte strings are length-prefixed; the same object always
// encodes to the same bytes.

type encoder struct{ b []byte }

func (e *encoder) u64(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) bytes(v []byte) { e.u64(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) str(v string)   { e.u64(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) boolean(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

var errTruncated = errors.New("truncated or malformed state record")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// u16 decodes a uvarint that must fit 16 bits.
func (d *decoder) u16() uint16 {
	v := d.u64()
	if v > 0xffff {
		d.fail(fmt.Errorf("value %d does not fit 16 bits", v))
		return 0
	}
	return uint16(v)
}

// bounded length prefix: never allocate more than the remaining input.
func (d *decoder) length() int {
	n := d.u64()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail(errTruncated)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.length()
	if d.err != nil {
		return nil
	}
	out := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return out
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) boolean() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail(errTruncated)
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// more reports whether undecoded input remains.
func (d *decoder) more() bool { return d.err == nil && len(d.b) > 0 }

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d trailing bytes in state record", len(d.b)))
	}
	return d.err
}
