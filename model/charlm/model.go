package charlm

import (
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
	// DataCID is the knowledge CID of the training text, if known.
	DataCID string `json:"data_cid,omitempty"`
	// TrainerVersion names the trainer that wrote the model.
	TrainerVersion string `json:"trainer_version"`
	// PruneThreshold is the largest count pruning deleted n-grams at (0:
	// never pruned).
	PruneThreshold uint32 `json:"prune_threshold"`
}

// contextStats are a context's total count c(h) and its number of
// distinct following bytes N1+(h•).
type contextStats struct {
	total    uint64
	distinct uint64
}

// Model is a trained n-gram model. It is immutable and safe for
// concurrent use.
type Model struct {
	order int
	// grams[k] maps a k-gram, packed with its newest byte lowest, to its
	// count (k = 1..order).
	grams [MaxOrder + 1]map[uint64]uint32
	// contexts[k] maps a (k-1)-byte context to its stats (k = 2..order);
	// contexts[1] is unused: unigram holds the empty context's.
	contexts [MaxOrder + 1]map[uint64]contextStats
	unigram  contextStats
	card     Card
	weights  [32]byte
}

// mask keeps the newest k bytes of a packed history.
func mask(k int) uint64 {
	if k >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(k)) - 1
}

// newModel builds a model's context stats from its k-gram counts.
func newModel(order int, grams [MaxOrder + 1]map[uint64]uint32, card Card) *Model {
	m := &Model{order: order, grams: grams, card: card}
	m.card.Order = order
	for k := 1; k <= order; k++ {
		if m.grams[k] == nil {
			m.grams[k] = map[uint64]uint32{}
		}
		if k == 1 {
			for _, n := range m.grams[1] {
				m.unigram.total += uint64(n)
				m.unigram.distinct++
			}
			continue
		}
		ctx := make(map[uint64]contextStats, len(m.grams[k])/2)
		for g, n := range m.grams[k] {
			s := ctx[g>>8]
			s.total += uint64(n)
			s.distinct++
			ctx[g>>8] = s
		}
		m.contexts[k] = ctx
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
		n += len(m.grams[k])
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
		var s contextStats
		var ctx uint64
		if k == 1 {
			s = m.unigram
		} else {
			ctx = history & mask(k-1)
			s = m.contexts[k][ctx]
		}
		if s.total == 0 {
			continue // unseen context: P_k = P_{k-1}
		}
		c := float64(m.grams[k][ctx<<8|uint64(x)])
		d := float64(s.distinct)
		// The conversions round each product, so no platform fuses them.
		p = (c + float64(d*p)) / (float64(s.total) + d)
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
