package chain

import (
	"sync"

	"github.com/cybertensor/cybertensor/scoring"
)

// YumaEpoch runs the Yuma consensus epoch of shared/spec/epoch.md
// (package scoring) on a subnet's state and quantizes its results as the
// chain stores them: real values to u16 fractions of 65535 (floor), and
// the pruning score as the combined emission share scaled so the largest
// is 65535. It works on fresh memory; a chain gives its State
// NewYumaEpoch, which keeps its working memory between epochs.
func YumaEpoch(in *EpochInput) ([]EpochNeuronResult, error) { return yumaEpoch(in, nil) }

// NewYumaEpoch returns YumaEpoch with a scoring.Workspace of its own, kept
// from one epoch to the next (same results, bit for bit, without faulting
// in fresh working memory at every tempo). Calls are serialized.
func NewYumaEpoch() EpochFunc {
	var (
		mu sync.Mutex
		ws scoring.Workspace
	)
	return func(in *EpochInput) ([]EpochNeuronResult, error) {
		mu.Lock()
		defer mu.Unlock()
		return yumaEpoch(in, &ws)
	}
}

func yumaEpoch(in *EpochInput, ws *scoring.Workspace) ([]EpochNeuronResult, error) {
	si := &scoring.Input{
		Block: in.Block, Emission: in.Emission,
		Params: scoring.Params{
			Kappa: in.Kappa, BondsMovingAverage: in.BondsMovingAverage, BondsPenalty: in.BondsPenalty,
			ActivityCutoff: in.ActivityCutoff, MaxAllowedValidators: in.MaxAllowedValidators,
		},
		Neurons: make([]scoring.Neuron, len(in.Neurons)),
		Weights: make([][]scoring.Entry, len(in.Neurons)),
		Bonds:   make([][]scoring.Entry, len(in.Neurons)),
	}
	for i, n := range in.Neurons {
		si.Neurons[i] = scoring.Neuron{Stake: n.Stake, LastUpdate: n.LastUpdate, RegisteredAt: n.RegisteredAt, ValidatorPermit: n.ValidatorPermit}
		si.Weights[i], si.Bonds[i] = n.Weights, n.Bonds
	}
	y, err := scoring.EpochWith(si, ws)
	if err != nil {
		return nil, err
	}
	var maxCombined scoring.Fixed
	for _, c := range y.Combined {
		maxCombined = max(maxCombined, c)
	}
	out := make([]EpochNeuronResult, len(in.Neurons))
	for i := range out {
		out[i] = EpochNeuronResult{
			Active: y.Active[i], ValidatorPermit: y.ValidatorPermit[i],
			Rank: y.Ranks[i].U16(), Trust: y.Trust[i].U16(), Consensus: y.Consensus[i].U16(),
			Incentive: y.Incentive[i].U16(), Dividends: y.Dividends[i].U16(), ValidatorTrust: y.ValidatorTrust[i].U16(),
			Emission: y.Emission[i], ServerEmission: y.ServerEmission[i], ValidatorEmission: y.ValidatorEmission[i],
			Bonds: y.Bonds[i],
		}
		if maxCombined > 0 {
			out[i].PruningScore = scoring.Share(y.Combined[i], maxCombined).U16()
		}
	}
	return out, nil
}
