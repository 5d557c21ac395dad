package scoring

import (
	"math/rand/v2"
	"testing"
)

// permute renumbers the uids of in by perm (new uid = perm[old]).
func permute(in *Input, perm []int) *Input {
	n := len(in.Neurons)
	out := &Input{Block: in.Block, Emission: in.Emission, Params: in.Params,
		Neurons: make([]Neuron, n), Weights: make([][]Entry, n), Bonds: make([][]Entry, n)}
	move := func(row []Entry) []Entry {
		var r []Entry
		for _, e := range row {
			r = append(r, Entry{UID: uint16(perm[e.UID]), Value: e.Value})
		}
		sortEntries(r)
		return r
	}
	for i := range n {
		out.Neurons[perm[i]] = in.Neurons[i]
		out.Weights[perm[i]] = move(rowOf(in.Weights, i))
		out.Bonds[perm[i]] = move(rowOf(in.Bonds, i))
	}
	return out
}

func sortEntries(r []Entry) {
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j].UID < r[j-1].UID; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

// The result does not depend on how uids are numbered (stakes distinct, so
// the permit tie-break, the spec's one exception, never applies): fixed
// point sums are exact integer sums, so the bits match exactly.
func TestEpochInvariantUnderPermutation(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for run := range 200 {
		n := 1 + r.IntN(20)
		in := randomEpochInput(r, n)
		for i := range in.Neurons {
			if in.Neurons[i].Stake == 0 { // zero stakes tie at the permit boundary
				in.Neurons[i].Stake = 1<<41 + uint64(i)
			}
		}
		perm := r.Perm(n)
		a, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Epoch(permute(in, perm))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			j := perm[i]
			same := a.Active[i] == b.Active[j] && a.ValidatorPermit[i] == b.ValidatorPermit[j] &&
				a.Ranks[i] == b.Ranks[j] && a.Trust[i] == b.Trust[j] && a.Consensus[i] == b.Consensus[j] &&
				a.Dividends[i] == b.Dividends[j] && a.ValidatorTrust[i] == b.ValidatorTrust[j] &&
				a.Emission[i] == b.Emission[j] && a.ServerEmission[i] == b.ServerEmission[j] && a.ValidatorEmission[i] == b.ValidatorEmission[j]
			if !same {
				t.Fatalf("run %d: uid %d -> %d differs", run, i, j)
			}
			bonds := map[int]uint16{}
			for _, e := range b.Bonds[j] {
				bonds[int(e.UID)] = e.Value
			}
			if len(bonds) != len(a.Bonds[i]) {
				t.Fatalf("run %d: bond rows of uid %d differ in length", run, i)
			}
			for _, e := range a.Bonds[i] {
				if bonds[perm[e.UID]] != e.Value {
					t.Fatalf("run %d: bond %d->%d differs", run, i, e.UID)
				}
			}
		}
	}
}

// A validator that copies the previous epoch's consensus earns no more
// dividends over several epochs than the honest validators, who weight
// the miners' current quality; bonds carry over between epochs.
func TestWeightCopierEarnsLess(t *testing.T) {
	const validators, miners, epochs = 4, 6, 12
	n := validators + miners
	in := &Input{Block: 1000, Emission: 1_000_000_000,
		Params:  Params{Kappa: 32767, BondsMovingAverage: 900_000, BondsPenalty: 65535, ActivityCutoff: 5000, MaxAllowedValidators: validators},
		Neurons: make([]Neuron, n), Weights: make([][]Entry, n), Bonds: make([][]Entry, n)}
	for i := range n {
		in.Neurons[i] = Neuron{LastUpdate: 999, RegisteredAt: 0}
		if i < validators {
			in.Neurons[i].Stake = 1_000_000 + uint64(i) // equal stakes, distinct for the permit order
			in.Neurons[i].ValidatorPermit = true
		}
	}
	const copier = validators - 1
	var prevConsensus []Fixed
	dividends := make([]uint64, validators)
	for e := range epochs {
		// Quality moves: each epoch a different miner is best.
		quality := make([]uint16, miners)
		for m := range miners {
			quality[m] = uint16(10_000 + 50_000*((m+e)%miners)/(miners-1))
		}
		for v := range validators {
			var row []Entry
			for m := range miners {
				w := quality[m]
				if v == copier {
					w = 1
					if prevConsensus != nil {
						w = uint16(prevConsensus[validators+m].U16())
					}
				}
				if w > 0 {
					row = append(row, Entry{UID: uint16(validators + m), Value: w})
				}
			}
			in.Weights[v] = row
		}
		out, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		for v := range validators {
			dividends[v] += out.ValidatorEmission[v]
		}
		prevConsensus = out.Consensus
		in.Bonds = out.Bonds
		in.Block++
		for i := range validators {
			in.Neurons[i].LastUpdate = in.Block - 1
		}
	}
	var honest uint64
	for v := range copier {
		honest += dividends[v]
	}
	honest /= copier
	if dividends[copier] >= honest {
		t.Fatalf("copier earned %d, honest validators %d on average: %v", dividends[copier], honest, dividends)
	}
	t.Logf("copier %d vs honest average %d (%.1f%%)", dividends[copier], honest, 100*float64(dividends[copier])/float64(honest))
}
