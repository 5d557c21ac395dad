package chain

// EpochNeuron is one uid's input to the epoch.
type EpochNeuron struct {
	Stake           uint64
	LastUpdate      uint64
	RegisteredAt    uint64
	ValidatorPermit bool
	Weights         []Entry
	Bonds           []Entry
}

// EpochInput is a subnet's state at its tempo, as the Yuma consensus epoch
// (shared/spec/epoch.md) reads it.
type EpochInput struct {
	Block                uint64
	Emission             uint64
	Kappa                uint64
	BondsMovingAverage   uint64
	BondsPenalty         uint64
	ActivityCutoff       uint64
	MaxAllowedValidators uint64
	Neurons              []EpochNeuron
}

// EpochNeuronResult is one uid's outcome: the real-valued results
// quantized to u16 fractions of 65535 (floor), the emission amounts, and
// the bonds row to store.
type EpochNeuronResult struct {
	Active          bool
	ValidatorPermit bool
	Rank            uint16
	Trust           uint16
	Consensus       uint16
	Incentive       uint16
	Dividends       uint16
	ValidatorTrust  uint16
	// PruningScore is the combined emission share, scaled so the largest
	// is 65535.
	PruningScore      uint16
	Emission          uint64
	ServerEmission    uint64
	ValidatorEmission uint64
	Bonds             []Entry
}

// EpochFunc computes one epoch. It must be deterministic: the chain's
// state, and so its app hash, depends on every bit of its output.
type EpochFunc func(*EpochInput) ([]EpochNeuronResult, error)

// BlocksUntilNextEpoch is cybernet's tempo schedule: a subnet's epoch runs
// when (block + netuid + 1) is a multiple of tempo + 1, so subnets with the
// same tempo do not all run in the same block. It returns how many blocks
// after block the next one runs (0 in an epoch block; 1000 with tempo 0,
// which never runs one). An epoch runs at the start of its block, before
// the block's transactions.
func BlocksUntilNextEpoch(netuid uint16, tempo, block uint64) uint64 {
	if tempo == 0 {
		return 1000
	}
	return tempo - (block+uint64(netuid))%(tempo+1)
}
