package scoring

import "fmt"

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
	// ParseInput defaults it to 65535; a literal Params must set it.
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
	ValidatorPermit bool // held from the previous epoch
}

// Input is a subnet at the block its epoch runs.
type Input struct {
	Block    uint64
	Emission uint64
	Params   Params
	// Neurons are indexed by uid.
	Neurons []Neuron
	// Weights and Bonds are sparse rows indexed by uid (shorter slices mean
	// empty rows), each sorted by uid without duplicates. Zero values are
	// allowed and mean no entry.
	Weights [][]Entry
	Bonds   [][]Entry
}

// Limits of the input (shared/spec/epoch.md §2.2).
const (
	// MaxNeurons is the largest subnet: uids fit in a uint16.
	MaxNeurons = 65536
	// maxTotal bounds the sum of stakes and the emission.
	maxTotal = 1<<63 - 1
)

// Validate checks the input against the spec's limits, naming the
// offending field. Epoch runs the same checks.
func (in *Input) Validate() error {
	if err := in.validateScalars(); err != nil {
		return err
	}
	n := len(in.Neurons)
	for i, row := range in.Weights {
		if err := checkRow("weights", i, row, n); err != nil {
			return err
		}
	}
	for i, row := range in.Bonds {
		if err := checkRow("bonds", i, row, n); err != nil {
			return err
		}
	}
	return nil
}

// validateScalars checks everything but the entries of the rows.
func (in *Input) validateScalars() error {
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
	if len(in.Weights) > n {
		return invalid("weights", "%d rows for %d neurons", len(in.Weights), n)
	}
	if len(in.Bonds) > n {
		return invalid("bonds", "%d rows for %d neurons", len(in.Bonds), n)
	}
	return nil
}

// checkRow checks that row i of a matrix is sorted by uid, without
// duplicates, and within 0..n-1.
func checkRow(name string, i int, row []Entry, n int) error {
	prev := -1
	for _, e := range row {
		j := int(e.UID)
		if j >= n || j <= prev {
			return rowError(name, i, row, n)
		}
		prev = j
	}
	return nil
}

// rowError describes the first fault of a row that checkRow rejects.
func rowError(name string, i int, row []Entry, n int) error {
	for q, e := range row {
		if int(e.UID) >= n {
			return invalid(fmt.Sprintf("%s[%d][%d]", name, i, e.UID), "uid out of range 0..%d", n-1)
		}
		if q > 0 && row[q-1].UID >= e.UID {
			return invalid(fmt.Sprintf("%s[%d]", name, i), "entries must be sorted by uid without duplicates")
		}
	}
	return nil
}
