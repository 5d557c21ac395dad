package scoring

import (
	"errors"
	"fmt"
)

// Entry is one entry of a sparse weight or bond row: a u16 value on a uid.
type Entry struct {
	UID   uint16 `json:"uid"`
	Value uint16 `json:"value"`
}

// Params are the subnet hyperparameters the epoch reads.
type Params struct {
	// Kappa is the consensus majority κ·65535 (32767 ≈ 0.5).
	Kappa uint64
	// BondsMovingAverage is β·10⁶: the share of old bonds the EMA keeps.
	BondsMovingAverage uint64
	// BondsPenalty is ρ·65535: 65535 grows bonds from clipped weights only.
	BondsPenalty uint64
	// ActivityCutoff: a neuron whose last update is more than this many
	// blocks old is inactive.
	ActivityCutoff uint64
	// MaxAllowedValidators is k, the number of validator permits.
	MaxAllowedValidators uint64
}

// Neuron is one uid's state.
type Neuron struct {
	Stake           uint64
	LastUpdate      uint64
	RegisteredAt    uint64
	ValidatorPermit bool
}

// Input is a subnet at the block its epoch runs.
type Input struct {
	Block    uint64
	Emission uint64
	Params   Params
	// Neurons are indexed by uid.
	Neurons []Neuron
	// Weights and Bonds are sparse rows indexed by uid (shorter slices mean
	// empty rows), each sorted by uid without duplicates.
	Weights [][]Entry
	Bonds   [][]Entry
}

// Output is the epoch's result, indexed by uid. Real values are exact
// fixed point, before any u16 quantization.
type Output struct {
	Active          []bool
	ValidatorPermit []bool // P′, the permits for the next epoch
	Ranks           []Fixed
	Trust           []Fixed
	Consensus       []Fixed
	Incentive       []Fixed
	Dividends       []Fixed
	ValidatorTrust  []Fixed
	// Combined is each uid's share of the emission (c in the spec).
	Combined          []Fixed
	Emission          []uint64
	ServerEmission    []uint64
	ValidatorEmission []uint64
	// Bonds are the rows to store for the next epoch.
	Bonds [][]Entry
}

// ErrInvalidInput is wrapped by every validation error.
var ErrInvalidInput = errors.New("invalid epoch input")

// Limits of the input (shared/spec/epoch.md §2.2).
const (
	MaxNeurons = 65536
	maxTotal   = 1<<63 - 1
)

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidInput, field, fmt.Sprintf(format, args...))
}

// Validate checks the input against the spec's limits, naming the
// offending field.
func (in *Input) Validate() error {
	n := len(in.Neurons)
	if n > MaxNeurons {
		return invalid("neurons", "%d neurons, at most %d", n, MaxNeurons)
	}
	if in.Emission > maxTotal {
		return invalid("emission", "%d above 2^63-1", in.Emission)
	}
	p := in.Params
	switch {
	case p.Kappa > 65535:
		return invalid("params.kappa", "%d above 65535", p.Kappa)
	case p.BondsPenalty > 65535:
		return invalid("params.bonds_penalty", "%d above 65535", p.BondsPenalty)
	case p.BondsMovingAverage > 1_000_000:
		return invalid("params.bonds_moving_average", "%d above 1000000", p.BondsMovingAverage)
	}
	var total uint64
	for i, x := range in.Neurons {
		if x.Stake > maxTotal-total {
			return invalid(fmt.Sprintf("neurons[%d].stake", i), "the sum of stakes exceeds 2^63-1")
		}
		total += x.Stake
	}
	for _, nm := range []struct {
		name string
		m    [][]Entry
	}{{"weights", in.Weights}, {"bonds", in.Bonds}} {
		name, m := nm.name, nm.m
		if len(m) > n {
			return invalid(name, "%d rows for %d neurons", len(m), n)
		}
		for i, row := range m {
			for q, e := range row {
				if int(e.UID) >= n {
					return invalid(fmt.Sprintf("%s[%d][%d]", name, i, e.UID), "uid out of range 0..%d", n-1)
				}
				if q > 0 && row[q-1].UID >= e.UID {
					return invalid(fmt.Sprintf("%s[%d]", name, i), "entries must be sorted by uid without duplicates")
				}
			}
		}
	}
	return nil
}
