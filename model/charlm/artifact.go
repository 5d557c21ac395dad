package charlm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// Artifact layout constants (see the package doc).
const (
	magic = "CTCHARLM"
	// FormatVersion is the artifact format Encode writes and Decode reads.
	FormatVersion = 1
	// smoothingWittenBell is the only smoothing: interpolated Witten–Bell.
	smoothingWittenBell = 1
	headerSize          = len(magic) + 2 + 1 + 1 + 4
	// maxCardSize bounds the card: three strings and two numbers.
	maxCardSize = 3*(1+MaxCardString) + 8 + 4
	// weightsDomain prefixes what WeightsHash hashes.
	weightsDomain = "charlm weights v1\x00"
)

// appendWeights appends the tables, each in ascending k-gram order.
func (m *Model) appendWeights(b []byte) []byte {
	for k := 1; k <= m.order; k++ {
		t := m.tables[k]
		b = binary.BigEndian.AppendUint32(b, uint32(len(t.next)))
		for _, ctx := range t.keys {
			e := t.contexts[ctx]
			for i := e.first; i < e.first+e.distinct; i++ {
				for j := k - 2; j >= 0; j-- {
					b = append(b, byte(ctx>>(8*uint(j))))
				}
				b = append(b, t.next[i])
				b = binary.BigEndian.AppendUint32(b, t.counts[i])
			}
		}
	}
	return b
}

func (m *Model) weightsHash() [32]byte {
	h := sha256.New()
	b := append([]byte(weightsDomain), byte(m.order), smoothingWittenBell)
	h.Write(m.appendWeights(b))
	return [32]byte(h.Sum(nil))
}

func appendString(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

func (c Card) append(b []byte) []byte {
	b = appendString(b, c.Name)
	b = appendString(b, c.TrainerVersion)
	b = appendString(b, c.DataCID)
	b = binary.BigEndian.AppendUint64(b, c.TrainingBytes)
	return binary.BigEndian.AppendUint32(b, c.PruneThreshold)
}

// Encode returns the model's artifact (see the package doc): the same
// model and card always give the same bytes.
func (m *Model) Encode() []byte {
	card := m.card.append(nil)
	b := make([]byte, 0, headerSize+len(card)+m.Entries()*(m.order+4)+4*m.order)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, FormatVersion)
	b = append(b, byte(m.order), smoothingWittenBell)
	b = binary.BigEndian.AppendUint32(b, uint32(len(card)))
	b = append(b, card...)
	return m.appendWeights(b)
}

// reader reads an artifact, failing with ErrBadArtifact past its end.
type reader struct {
	b   []byte
	off int
}

func (r *reader) take(n int, what string) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, fmt.Errorf("%w: truncated in %s at byte %d", ErrBadArtifact, what, r.off)
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) uint32(what string) (uint32, error) {
	p, err := r.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(p), nil
}

func (r *reader) string(what string) (string, error) {
	n, err := r.take(1, what)
	if err != nil {
		return "", err
	}
	p, err := r.take(int(n[0]), what)
	return string(p), err
}

// Decode reads an artifact strictly (see the package doc): anything that
// is not exactly what Encode writes fails with ErrBadArtifact, anything
// over lim with ErrTooLarge, before Decode allocates for it.
func Decode(b []byte, lim Limits) (*Model, error) {
	if int64(len(b)) > lim.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrTooLarge, len(b), lim.MaxSize)
	}
	r := &reader{b: b}
	head, err := r.take(headerSize, "header")
	if err != nil {
		return nil, err
	}
	if string(head[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: not a charlm artifact (no %q magic)", ErrBadArtifact, magic)
	}
	if v := binary.BigEndian.Uint16(head[8:]); v != FormatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrBadArtifact, v, FormatVersion)
	}
	order := int(head[10])
	if order < 1 || order > MaxOrder {
		return nil, fmt.Errorf("%w: order %d, want 1..%d", ErrBadArtifact, order, MaxOrder)
	}
	if head[11] != smoothingWittenBell {
		return nil, fmt.Errorf("%w: smoothing %d, this build knows %d (Witten–Bell)", ErrBadArtifact, head[11], smoothingWittenBell)
	}
	cardLen := binary.BigEndian.Uint32(head[12:])
	if cardLen > maxCardSize {
		return nil, fmt.Errorf("%w: card of %d bytes, over %d", ErrBadArtifact, cardLen, maxCardSize)
	}
	cardBytes, err := r.take(int(cardLen), "card")
	if err != nil {
		return nil, err
	}
	card, err := decodeCard(cardBytes)
	if err != nil {
		return nil, err
	}
	var tables [MaxOrder + 1]*table
	entries := 0
	for k := 1; k <= order; k++ {
		n, err := r.uint32(fmt.Sprintf("order %d's entry count", k))
		if err != nil {
			return nil, err
		}
		if int64(n) > int64(lim.MaxEntries-entries) {
			return nil, fmt.Errorf("%w: %d entries at order %d, over %d in all", ErrTooLarge, n, k, lim.MaxEntries)
		}
		size := int64(n) * int64(k+4)
		if size > int64(len(b)-r.off) {
			return nil, fmt.Errorf("%w: order %d claims %d entries, more than the %d bytes left hold", ErrBadArtifact, k, n, len(b)-r.off)
		}
		entries += int(n)
		t := newTable(int(n))
		var prev uint64
		for i := 0; i < int(n); i++ {
			p, _ := r.take(k+4, "") // size checked above
			var g uint64
			for _, x := range p[:k] {
				g = g<<8 | uint64(x)
			}
			count := binary.BigEndian.Uint32(p[k:])
			if i > 0 && g <= prev {
				return nil, fmt.Errorf("%w: order %d's entry %d is not after the one before", ErrBadArtifact, k, i)
			}
			if count == 0 {
				return nil, fmt.Errorf("%w: order %d's entry %d has count 0", ErrBadArtifact, k, i)
			}
			t.add(g, count)
			prev = g
		}
		tables[k] = t
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the last table", ErrBadArtifact, len(b)-r.off)
	}
	return newModel(order, tables, card), nil
}

func decodeCard(b []byte) (Card, error) {
	r := &reader{b: b}
	var c Card
	var err error
	for _, f := range []struct {
		what string
		dst  *string
	}{{"name", &c.Name}, {"trainer version", &c.TrainerVersion}, {"data CID", &c.DataCID}} {
		if *f.dst, err = r.string("card " + f.what); err != nil {
			return Card{}, err
		}
		check := checkCardString(f.what, *f.dst)
		if f.dst == &c.DataCID {
			check = checkCID(c.DataCID)
		}
		if check != nil {
			return Card{}, fmt.Errorf("%w: card: %w", ErrBadArtifact, check)
		}
	}
	p, err := r.take(8, "card training bytes")
	if err != nil {
		return Card{}, err
	}
	c.TrainingBytes = binary.BigEndian.Uint64(p)
	if c.PruneThreshold, err = r.uint32("card prune threshold"); err != nil {
		return Card{}, err
	}
	if r.off != len(b) {
		return Card{}, fmt.Errorf("%w: %d bytes after the card's fields", ErrBadArtifact, len(b)-r.off)
	}
	return c, nil
}

// ReadArtifact reads and decodes an artifact from r, reading at most
// lim.MaxSize+1 bytes.
func ReadArtifact(r io.Reader, lim Limits) (*Model, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(r, lim.MaxSize+1)); err != nil {
		return nil, fmt.Errorf("reading a model artifact: %w", err)
	}
	return Decode(buf.Bytes(), lim)
}
