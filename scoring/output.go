package scoring

// Output is the epoch's result, indexed by uid (shared/spec/epoch.md §3).
// Real values are fixed point, before any u16 quantization; Float64 and
// Float64s convert them, and MarshalJSON writes the spec's JSON.
type Output struct {
	Active          []bool // A
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
	// Bonds are the rows to store for the next epoch, sorted by uid. A row
	// kept unchanged (a uid that neither holds nor receives a permit) is
	// the input's row itself, not a copy.
	Bonds [][]Entry
}

func newOutput(n int) *Output {
	return &Output{
		Active: make([]bool, n), ValidatorPermit: make([]bool, n),
		Ranks: make([]Fixed, n), Trust: make([]Fixed, n), Consensus: make([]Fixed, n), Incentive: make([]Fixed, n),
		Dividends: make([]Fixed, n), ValidatorTrust: make([]Fixed, n), Combined: make([]Fixed, n),
		Emission: make([]uint64, n), ServerEmission: make([]uint64, n), ValidatorEmission: make([]uint64, n),
		Bonds: make([][]Entry, n),
	}
}
