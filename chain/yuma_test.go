package chain

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// randomEpochInput is a subnet of n uids, v of them validators weighting
// and bonding a random subset of the uids.
func randomEpochInput(r *rand.Rand, n, v int) *EpochInput {
	in := &EpochInput{Block: 5_000, Emission: 1e9, Kappa: 32767, BondsMovingAverage: 900_000, BondsPenalty: 65535,
		ActivityCutoff: 5_000, MaxAllowedValidators: uint64(v), Neurons: make([]EpochNeuron, n)}
	for i := range in.Neurons {
		nr := &in.Neurons[i]
		nr.LastUpdate, nr.RegisteredAt = 4_990, uint64(r.IntN(100))
		if i < v {
			nr.Stake, nr.ValidatorPermit = 1e9+uint64(r.IntN(1e9)), true
			for j := range n {
				if r.IntN(3) > 0 {
					nr.Weights = append(nr.Weights, Entry{UID: uint16(j), Value: uint16(1 + r.IntN(65535))})
				}
				if r.IntN(2) > 0 {
					nr.Bonds = append(nr.Bonds, Entry{UID: uint16(j), Value: uint16(r.IntN(65536))})
				}
			}
		}
	}
	return in
}

// The epoch a chain runs (NewYumaEpoch, which keeps its working memory)
// gives YumaEpoch's results on fresh memory, epoch after epoch of unlike
// subnets, and results it returned stay as they were.
func TestNewYumaEpochKeepsResults(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	epoch := NewYumaEpoch()
	var got, want [][]EpochNeuronResult
	for _, size := range [][2]int{{64, 8}, {700, 40}, {16, 16}, {1500, 64}, {200, 3}, {700, 40}} {
		in := randomEpochInput(r, size[0], size[1])
		g, err := epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		w, err := YumaEpoch(in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("%d uids: the kept workspace gives other results than fresh memory", size[0])
		}
		got, want = append(got, g), append(want, w)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("an earlier epoch's results changed")
	}
}
