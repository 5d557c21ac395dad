package charlm

import (
	"fmt"
	"unicode/utf8"
)

// Model family limits.
const (
	// MaxOrder is the longest n-gram a model may use (the context is at
	// most MaxOrder-1 bytes, so a k-gram packs into a uint64).
	MaxOrder = 8
	// TrainerVersion names this trainer in the cards it writes.
	TrainerVersion = "charlm/1"
	// MaxCardString is the longest name, trainer version or data CID in a
	// card, in bytes.
	MaxCardString = 128
	// minEntries is the least TrainConfig.MaxEntries: room for the 256
	// unigrams and more.
	minEntries = 1024
)

// TrainConfig says how Train builds a model.
type TrainConfig struct {
	// Order is n, the longest n-gram counted (1..MaxOrder).
	Order int
	// MaxEntries bounds the count tables (all orders together); past it,
	// Train prunes rare n-grams (see the package doc). It must be at
	// least 1024 and at most DefaultLimits().MaxEntries, so that every
	// model Train makes is one Decode accepts with default limits.
	MaxEntries int
	// MaxBytes is how much of the reader Train uses; it stops reading
	// there (0: up to MaxTrainBytes).
	MaxBytes int64
	// Name is the card's model name (default "charlm-o<Order>").
	Name string
	// DataCID is the card's data CID: the knowledge object or body the
	// text came from, if known.
	DataCID string
}

// DefaultTrainConfig returns an order-5 model with up to 4 Mi entries
// (about 160 MiB while training) and no limit on the data.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		Order:      5,       // a good trade of loss for size on English text
		MaxEntries: 1 << 22, // 4 Mi entries, ≤ 52 MiB on disk
		MaxBytes:   0,       // the whole reader
	}
}

// DefaultTestTrainConfig returns a small configuration for tests.
func DefaultTestTrainConfig() TrainConfig {
	cfg := DefaultTrainConfig()
	cfg.Order = 4
	cfg.MaxEntries = 1 << 16
	return cfg
}

func (c TrainConfig) validate() error {
	switch {
	case c.Order < 1 || c.Order > MaxOrder:
		return fmt.Errorf("%w: order %d, want 1..%d", ErrBadConfig, c.Order, MaxOrder)
	case c.MaxEntries < minEntries || c.MaxEntries > DefaultLimits().MaxEntries:
		return fmt.Errorf("%w: max entries %d, want %d..%d", ErrBadConfig, c.MaxEntries, minEntries, DefaultLimits().MaxEntries)
	case c.MaxBytes < 0:
		return fmt.Errorf("%w: max bytes %d is negative", ErrBadConfig, c.MaxBytes)
	}
	if err := checkCardString("name", c.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if err := checkCID(c.DataCID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return nil
}

// Limits bound what Decode accepts, so an artifact from a peer cannot
// make it allocate without bound.
type Limits struct {
	// MaxSize is the largest artifact, in bytes.
	MaxSize int64
	// MaxEntries is the most n-gram entries, all orders together (each
	// costs 10 to 40 bytes of memory once decoded, the more the fewer
	// entries share a context).
	MaxEntries int
}

// DefaultLimits accepts artifacts up to 256 MiB with up to 8 Mi entries
// (at most about 320 MiB decoded).
func DefaultLimits() Limits {
	return Limits{
		MaxSize:    256 << 20,
		MaxEntries: 1 << 23,
	}
}

func checkCardString(what, s string) error {
	if len(s) > MaxCardString {
		return fmt.Errorf("%s is %d bytes, over %d", what, len(s), MaxCardString)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", what)
	}
	return nil
}

// checkCID accepts a data CID as printable ASCII (the package does not
// parse CIDs; the knowledge library does).
func checkCID(s string) error {
	if len(s) > MaxCardString {
		return fmt.Errorf("data CID is %d bytes, over %d", len(s), MaxCardString)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("data CID %q has a byte that is not printable ASCII", s)
		}
	}
	return nil
}
