package charlm

import (
	"bytes"
	"context"
	"fmt"
	"math"
)

// Card describes a model: what a miner publishes with its weights. It is
// not part of the weights hash.
type Card struct {
	// Name is the model's name.
	Name string `json:"name"`
	// Order is the model's n (the artifact's config, repeated here).
	Order int `json:"order"`
	// TrainingBytes is how many bytes of text the model was trained on.
	TrainingBytes uint64 `json:"training_bytes"`
	// DataCID is the knowledge CID of the text the model was trained on
	// (the first TrainingBytes bytes of it), if known.
	DataCID string `json:"data_cid,omitempty"`
	// TrainerVersion names the trainer that wrote the model.
	TrainerVersion string `json:"trainer_version"`
	// PruneThreshold is the largest count pruning deleted n-grams at (0:
	// never pruned).
	PruneThreshold uint32 `json:"prune_threshold"`
}

// contextEntry is a context's entry in a table: its total count c(h), its
// number of distinct following bytes N1+(h•), and where its run of
// following bytes starts in the table's arrays.
type contextEntry struct {
	total    uint64
	distinct uint32
	first    uint32
}

// table holds the k-grams of one order k, grouped by context: each
// context's following bytes, ascending, and their counts.
type table struct {
	contexts map[uint64]contextEntry
	// keys are the contexts in ascending order (as their packed values).
	keys   []uint64
	next   []byte
	counts []uint32
}

// newTable returns a table for up to n k-grams.
func newTable(n int) *table {
	return &table{contexts: map[uint64]contextEntry{}, next: make([]byte, 0, n), counts: make([]uint32, 0, n)}
}

// add appends a k-gram (packed newest byte lowest) with its count; k-grams
// must come in ascending order.
func (t *table) add(g uint64, n uint32) {
	ctx := g >> 8
	if len(t.keys) == 0 || t.keys[len(t.keys)-1] != ctx {
		t.keys = append(t.keys, ctx)
		t.contexts[ctx] = contextEntry{first: uint32(len(t.next))}
	}
	e := t.contexts[ctx]
	e.total += uint64(n)
	e.distinct++
	t.contexts[ctx] = e
	t.next = append(t.next, byte(g))
	t.counts = append(t.counts, n)
}

// Model is a trained n-gram model. It is immutable and safe for
// concurrent use.
type Model struct {
	order int
	// tables[k] holds the k-grams (k = 1..order).
	tables [MaxOrder + 1]*table
	// suffixClosed says every context's suffix is a context one order
	// down, so an unseen context means no longer one is seen either.
	suffixClosed bool
	card         Card
	weights      [32]byte
}

// mask keeps the newest k bytes of a packed history.
func mask(k int) uint64 {
	if k >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(k)) - 1
}

// newModel completes a model from its tables.
func newModel(order int, tables [MaxOrder + 1]*table, card Card) *Model {
	m := &Model{order: order, tables: tables, card: card, suffixClosed: true}
	m.card.Order = order
	for k := 1; k <= order; k++ {
		if m.tables[k] == nil {
			m.tables[k] = newTable(0)
		}
	}
	for k := 2; k <= order && m.suffixClosed; k++ {
		for _, ctx := range m.tables[k].keys {
			if _, ok := m.tables[k-1].contexts[ctx&mask(k-2)]; !ok {
				m.suffixClosed = false
				break
			}
		}
	}
	m.weights = m.weightsHash()
	return m
}

// Order returns the model's n.
func (m *Model) Order() int { return m.order }

// Card returns the model's card.
func (m *Model) Card() Card { return m.card }

// Entries returns how many n-gram counts the model holds, all orders.
func (m *Model) Entries() int {
	n := 0
	for k := 1; k <= m.order; k++ {
		n += len(m.tables[k].next)
	}
	return n
}

// WeightsHash returns the SHA-256 of the model's weights (see the package
// doc): equal for equal models whatever their cards.
func (m *Model) WeightsHash() [32]byte { return m.weights }

// WithCard returns the same weights under another card (Order is kept
// from the model).
func (m *Model) WithCard(c Card) (*Model, error) {
	if err := checkCardString("name", c.Name); err != nil {
		return nil, err
	}
	if err := checkCardString("trainer version", c.TrainerVersion); err != nil {
		return nil, err
	}
	if err := checkCID(c.DataCID); err != nil {
		return nil, err
	}
	m2 := *m
	m2.card = c
	m2.card.Order = m.order
	return &m2, nil
}

// prob returns P(x | history), where history packs the preceding bytes
// newest lowest and known says how many of them there are (capped at
// order-1).
func (m *Model) prob(history uint64, known int, x byte) float64 {
	p := 1.0 / 256
	for k := 1; k <= m.order && k-1 <= known; k++ {
		t := m.tables[k]
		e, ok := t.contexts[history&mask(k-1)]
		if !ok {
			if m.suffixClosed {
				break // no longer context is seen either
			}
			continue // unseen context: P_k = P_{k-1}
		}
		c := 0.0
		if i := bytes.IndexByte(t.next[e.first:e.first+e.distinct], x); i >= 0 {
			c = float64(t.counts[int(e.first)+i])
		}
		d := float64(e.distinct)
		// The conversions round each product, so no platform fuses them.
		p = (c + float64(d*p)) / (float64(e.total) + d)
	}
	return p
}

// pack returns the last min(len(context), order-1) bytes of context
// packed newest lowest, and how many there are.
func (m *Model) pack(context []byte) (history uint64, known int) {
	known = min(len(context), m.order-1)
	for _, b := range context[len(context)-known:] {
		history = history<<8 | uint64(b)
	}
	return history, known
}

// Prob returns the probability the model gives byte x after context (of
// which only the last Order-1 bytes matter).
func (m *Model) Prob(context []byte, x byte) float64 {
	h, known := m.pack(context)
	return m.prob(h, known, x)
}

// Distribution returns the probabilities of the 256 bytes after context;
// they sum to 1.
func (m *Model) Distribution(context []byte) [256]float64 {
	h, known := m.pack(context)
	var d [256]float64
	for x := range d {
		d[x] = m.prob(h, known, byte(x))
	}
	return d
}

// lossCheckEvery is how many bytes Loss evaluates between looks at ctx.
const lossCheckEvery = 64 << 10

// Loss returns the model's mean cross-entropy on text, in bits per byte
// (see the package doc), summing in text order. It fails with ErrNoData
// for an empty text and with ctx's error once ctx is done.
func (m *Model) Loss(ctx context.Context, text []byte) (float64, error) {
	if len(text) == 0 {
		return 0, ErrNoData
	}
	var history uint64
	known, sum := 0, 0.0
	for i, x := range text {
		if i%lossCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("evaluating at byte %d: %w", i, err)
			}
		}
		sum -= math.Log2(m.prob(history, known, x))
		history = history<<8 | uint64(x)
		known = min(known+1, m.order-1)
	}
	return sum / float64(len(text)), nil
}
