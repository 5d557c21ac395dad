package charlm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
)

// MaxTrainBytes is the most text Train reads (so that no uint32 count can
// overflow); it stops reading there, as at TrainConfig.MaxBytes.
const MaxTrainBytes = 1<<32 - 1

// counter counts k-grams (k = 1..order) within a bound on its entries.
type counter struct {
	order      int
	maxEntries int
	grams      [MaxOrder + 1]map[uint64]uint32
	entries    int
	history    uint64
	seen       int // bytes counted, capped at order
	// pruneThreshold is the largest t pruning used.
	pruneThreshold uint32
}

func newCounter(order, maxEntries int) *counter {
	c := &counter{order: order, maxEntries: maxEntries}
	for k := 1; k <= order; k++ {
		c.grams[k] = map[uint64]uint32{}
	}
	return c
}

// add counts the k-grams ending at each byte of p.
func (c *counter) add(p []byte) {
	for _, x := range p {
		c.history = c.history<<8 | uint64(x)
		c.seen = min(c.seen+1, c.order)
		for k := 1; k <= c.seen; k++ {
			// Train reads less than 2^32 bytes, so no count overflows.
			t := c.grams[k]
			before := len(t)
			t[c.history&mask(k)]++
			if len(t) != before {
				c.entries++
				if c.entries > c.maxEntries {
					c.prune()
				}
			}
		}
	}
}

// prune deletes the k-grams (k ≥ 2) counted at most t times, for t = 1,
// 2, … until at most 3/4 of maxEntries remain.
func (c *counter) prune() {
	low := c.maxEntries / 4 * 3
	for t := uint32(1); c.entries > low; t++ {
		for k := 2; k <= c.order; k++ {
			for g, n := range c.grams[k] {
				if n <= t {
					delete(c.grams[k], g)
					c.entries--
				}
			}
		}
		c.pruneThreshold = max(c.pruneThreshold, t)
	}
}

// trainChunk is how much Train reads at a time; it looks at ctx between
// chunks.
const trainChunk = 64 << 10

// Train builds a model from the text r gives (up to cfg.MaxBytes, and
// at most MaxTrainBytes). Memory
// stays within cfg.MaxEntries entries (see the package doc, "Bounded
// training"). It fails with ErrBadConfig, ErrNoData for empty text, the
// reader's error, or ctx's once ctx is done.
func Train(ctx context.Context, r io.Reader, cfg TrainConfig) (*Model, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	limit := int64(MaxTrainBytes)
	if cfg.MaxBytes > 0 {
		limit = min(limit, cfg.MaxBytes)
	}
	r = io.LimitReader(r, limit)
	c := newCounter(cfg.Order, cfg.MaxEntries)
	buf := make([]byte, trainChunk)
	var total uint64
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("training after %d bytes: %w", total, err)
		}
		n, err := r.Read(buf)
		c.add(buf[:n])
		total += uint64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading training text after %d bytes: %w", total, err)
		}
	}
	if total == 0 {
		return nil, ErrNoData
	}
	name := cfg.Name
	if name == "" {
		name = fmt.Sprintf("charlm-o%d", cfg.Order)
	}
	card := Card{Name: name, TrainingBytes: total, DataCID: cfg.DataCID, TrainerVersion: TrainerVersion,
		PruneThreshold: c.pruneThreshold}
	tables := tablesFromCounts(cfg.Order, &c.grams)
	return newModel(cfg.Order, tables, card), nil
}

// tablesFromCounts builds the tables of k-grams counted in maps (k =
// 1..order), emptying the maps as it goes.
func tablesFromCounts(order int, grams *[MaxOrder + 1]map[uint64]uint32) [MaxOrder + 1]*table {
	var tables [MaxOrder + 1]*table
	for k := 1; k <= order; k++ {
		keys := make([]uint64, 0, len(grams[k]))
		for g := range grams[k] {
			keys = append(keys, g)
		}
		slices.Sort(keys)
		t := newTable(len(keys))
		for _, g := range keys {
			t.add(g, grams[k][g])
		}
		tables[k], grams[k] = t, nil
	}
	return tables
}
