package charlm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"
)

// Encode then Decode gives the same model: same bytes again, same weights
// hash, card and probabilities (random tables and trained models).
func TestArtifactRoundTrip(t *testing.T) {
	check := func(m *Model) bool {
		b := m.Encode()
		d, err := Decode(b, DefaultLimits())
		if err != nil {
			t.Logf("decode: %v", err)
			return false
		}
		if !bytes.Equal(d.Encode(), b) || d.WeightsHash() != m.WeightsHash() || d.Card() != m.Card() || d.Entries() != m.Entries() {
			return false
		}
		ctx := []byte("abcdabca")
		return d.Distribution(ctx) == m.Distribution(ctx)
	}
	err := quick.Check(func(seed uint64, order uint8) bool {
		return check(randomModel(rand.New(rand.NewPCG(seed, 0)), int(order%MaxOrder)+1))
	}, &quick.Config{MaxCount: 200})
	if err != nil {
		t.Error(err)
	}
	text := newTextGen(20).text(50_000)
	for order := 1; order <= MaxOrder; order++ {
		cfg := DefaultTestTrainConfig()
		cfg.Order, cfg.Name, cfg.DataCID = order, "mara's model", "bafkreihm3rktn5z33luic3youqdsn326toaq3ekesmdvsa53sbrd3f5r3a"
		m, err := Train(context.Background(), bytes.NewReader(text), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !check(m) {
			t.Errorf("order %d: the trained model does not round-trip", order)
		}
	}
}

// Models with the same weights and other cards have one weights hash and
// different artifacts; other weights have another hash.
func TestWeightsHashIgnoresCard(t *testing.T) {
	text := newTextGen(21).text(10_000)
	m := train(t, text, 3)
	c := m.Card()
	c.Name, c.DataCID, c.TrainingBytes = "copied", "bafycopy", 1
	m2, err := m.WithCard(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(m.Encode(), m2.Encode()) || m.WeightsHash() != m2.WeightsHash() {
		t.Errorf("card changed: artifacts equal %v, weights hashes %x and %x", bytes.Equal(m.Encode(), m2.Encode()), m.WeightsHash(), m2.WeightsHash())
	}
	if d, _ := Decode(m2.Encode(), DefaultLimits()); d == nil || d.Card().Name != "copied" || d.WeightsHash() != m.WeightsHash() {
		t.Errorf("decoded copy: %+v", d)
	}
	for _, other := range []*Model{train(t, text, 4), train(t, text[:9_000], 3)} {
		if other.WeightsHash() == m.WeightsHash() {
			t.Errorf("another model (order %d, %d bytes) has the same weights hash", other.Order(), other.Card().TrainingBytes)
		}
	}
	if _, err := m.WithCard(Card{Name: "\xff"}); err == nil {
		t.Error("WithCard took a name that is not UTF-8")
	}
}

// artifact builds an artifact by hand: order, card bytes and tables of
// (k-gram, count).
func artifact(order byte, card []byte, tables ...[][2]uint64) []byte {
	b := []byte(magic)
	b = binary.BigEndian.AppendUint16(b, FormatVersion)
	b = append(b, order, smoothingWittenBell)
	b = binary.BigEndian.AppendUint32(b, uint32(len(card)))
	b = append(b, card...)
	for k, t := range tables {
		b = binary.BigEndian.AppendUint32(b, uint32(len(t)))
		for _, e := range t {
			for i := k; i >= 0; i-- {
				b = append(b, byte(e[0]>>(8*i)))
			}
			b = binary.BigEndian.AppendUint32(b, uint32(e[1]))
		}
	}
	return b
}

func TestDecodeRefuses(t *testing.T) {
	card := Card{Name: "n", TrainerVersion: "v"}.append(nil)
	good := artifact(2, card, [][2]uint64{{'a', 2}, {'b', 1}}, [][2]uint64{{'a'<<8 | 'b', 1}})
	if _, err := Decode(good, DefaultLimits()); err != nil {
		t.Fatalf("the good artifact: %v", err)
	}
	set := func(b []byte, at int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[at:], v)
		return b
	}
	huge := binary.BigEndian.AppendUint32(nil, math.MaxUint32)
	for _, tc := range []struct {
		name string
		b    []byte
		lim  Limits
		want error
	}{
		{"empty", nil, DefaultLimits(), ErrBadArtifact},
		{"truncated header", good[:10], DefaultLimits(), ErrBadArtifact},
		{"truncated table", good[:len(good)-1], DefaultLimits(), ErrBadArtifact},
		{"trailing byte", append(bytes.Clone(good), 0), DefaultLimits(), ErrBadArtifact},
		{"magic", set(good, 0, 'X'), DefaultLimits(), ErrBadArtifact},
		{"version 2", set(good, 8, 0, 2), DefaultLimits(), ErrBadArtifact},
		{"order 0", set(good, 10, 0), DefaultLimits(), ErrBadArtifact},
		{"order 9", set(good, 10, 9), DefaultLimits(), ErrBadArtifact},
		{"order 3 with two tables", set(good, 10, 3), DefaultLimits(), ErrBadArtifact},
		{"smoothing", set(good, 11, 2), DefaultLimits(), ErrBadArtifact},
		{"card length huge", set(good, 12, huge...), DefaultLimits(), ErrBadArtifact},
		{"card length short", set(good, 12, 0, 0, 0, byte(len(card)-1)), DefaultLimits(), ErrBadArtifact},
		{"card name not UTF-8", artifact(1, Card{Name: "\xff"}.append(nil)), DefaultLimits(), ErrBadArtifact},
		{"card CID with space", artifact(1, Card{DataCID: "a b"}.append(nil)), DefaultLimits(), ErrBadArtifact},
		{"no entry count", artifact(1, card, nil)[:headerSize+len(card)], DefaultLimits(), ErrBadArtifact},
		{"entries claimed past the end", append(artifact(1, card)[:headerSize+len(card)], huge...), Limits{MaxSize: 1 << 30, MaxEntries: math.MaxInt}, ErrBadArtifact},
		{"unsorted", artifact(1, card, [][2]uint64{{'b', 1}, {'a', 1}}), DefaultLimits(), ErrBadArtifact},
		{"repeated", artifact(1, card, [][2]uint64{{'a', 1}, {'a', 1}}), DefaultLimits(), ErrBadArtifact},
		{"zero count", artifact(1, card, [][2]uint64{{'a', 0}}), DefaultLimits(), ErrBadArtifact},
		{"over max size", good, Limits{MaxSize: int64(len(good) - 1), MaxEntries: 100}, ErrTooLarge},
		{"over max entries", good, Limits{MaxSize: 1 << 20, MaxEntries: 2}, ErrTooLarge},
		{"entry count over max entries", append(artifact(1, card)[:headerSize+len(card)], huge...), DefaultLimits(), ErrTooLarge},
	} {
		_, err := Decode(tc.b, tc.lim)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// ReadArtifact reads at most MaxSize+1 bytes.
	r := strings.NewReader(string(good) + strings.Repeat("x", 1<<20))
	if _, err := ReadArtifact(r, Limits{MaxSize: 1 << 10, MaxEntries: 10}); !errors.Is(err, ErrTooLarge) || r.Len() != 1<<20-(1<<10+1-len(good)) {
		t.Errorf("ReadArtifact over the limit: %v, %d bytes left unread", err, r.Len())
	}
}

// FuzzDecode: Decode never panics; it refuses with ErrBadArtifact or
// ErrTooLarge; what it accepts re-encodes to the same bytes and gives a
// distribution summing to 1 at a context taken from the input.
func FuzzDecode(f *testing.F) {
	f.Add(train(f, newTextGen(30).text(200), 3).Encode())
	f.Add(randomModel(rand.New(rand.NewPCG(1, 3)), 4).Encode())
	card := Card{Name: "n", TrainerVersion: "v"}.append(nil)
	f.Add(artifact(2, card, [][2]uint64{{'a', 2}, {'b', 1}}, [][2]uint64{{'a'<<8 | 'b', 1}}))
	f.Add(artifact(1, card))
	lim := Limits{MaxSize: 1 << 20, MaxEntries: 1 << 14}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b, lim)
		if err != nil {
			if !errors.Is(err, ErrBadArtifact) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("refused with %v, not ErrBadArtifact or ErrTooLarge", err)
			}
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("an accepted artifact re-encodes to other bytes")
		}
		if m.Entries() > lim.MaxEntries {
			t.Fatalf("%d entries accepted, over %d", m.Entries(), lim.MaxEntries)
		}
		sum := 0.0
		for _, p := range m.Distribution(b[len(b)-min(len(b), 7):]) {
			sum += p
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("an accepted artifact's distribution sums to %v", sum)
		}
	})
}
