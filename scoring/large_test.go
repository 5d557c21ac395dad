package scoring

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// largeEpochInput builds a subnet of n uids large enough that the column
// pass gathers its columns in several blocks, with everything that takes
// the column pass off its fast paths: outdated weights and bonds, bond
// rows on other uids than the weight rows, validators without bonds or
// without activity, bond holders without a permit, and validators that
// lose their permit.
func largeEpochInput(r *rand.Rand, n, validators int) *Input {
	in := &Input{Block: 10_000, Emission: 1e9,
		Params: Params{Kappa: 32767, BondsMovingAverage: 900_000, BondsPenalty: 65535, ActivityCutoff: 5000,
			MaxAllowedValidators: uint64(validators - validators/8)},
		Neurons: make([]Neuron, n), Weights: make([][]Entry, n), Bonds: make([][]Entry, n)}
	for i := range n {
		in.Neurons[i] = Neuron{LastUpdate: 9_999, RegisteredAt: uint64(r.IntN(100))}
		if r.IntN(50) == 0 { // re-registered after some validators' last update
			in.Neurons[i].RegisteredAt = 9_000 + uint64(r.IntN(500))
		}
	}
	row := func(density int) []Entry {
		var row []Entry
		for j := range n {
			if r.IntN(100) < density {
				row = append(row, Entry{UID: uint16(j), Value: uint16(1 + r.IntN(65535))})
			}
		}
		return row
	}
	for i := range validators {
		x := &in.Neurons[i]
		x.Stake = 1e12 + uint64(r.IntN(1e11))
		x.ValidatorPermit = true
		switch r.IntN(8) {
		case 0:
			x.LastUpdate = 9_200 // some weights are outdated
		case 1:
			x.LastUpdate = 1_000 // inactive
		}
		in.Weights[i] = row(90)
		switch r.IntN(4) {
		case 0: // no bonds yet
		case 1: // bonds on other uids
			in.Bonds[i] = row(60)
		default: // bonds on the same uids
			in.Bonds[i] = make([]Entry, len(in.Weights[i]))
			for k, en := range in.Weights[i] {
				in.Bonds[i][k] = Entry{UID: en.UID, Value: uint16(r.IntN(65536))}
			}
		}
	}
	for i := validators; i < validators+validators/2 && i < n; i++ {
		in.Bonds[i] = row(20) // a former validator's bonds
	}
	return in
}

// The column pass at the sizes where it works in several blocks agrees
// with the float64 reference.
func TestLargeEpochMatchesFloatReference(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for run := range 3 {
		in := largeEpochInput(r, 900+r.IntN(300), 48)
		if run == 1 {
			in.Params.BondsPenalty = 20_000
		}
		if nearThreshold(in) {
			continue
		}
		y, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		conforms(t, "large run "+strconv.Itoa(run), in.Emission, y, referenceEpoch(in))
	}
}

// denseEpochInput is a subnet where every validator weights and bonds
// every uid, as in the benchmark, so that the column pass places entries
// by position (gatherComplete), with what that must survive: zero
// weights, self-weights, full bond rows of uids without a permit, and,
// when breakUniform is set, a validator whose weights are all zero and a
// bond holder missing one uid (which must send it back to gather).
func denseEpochInput(r *rand.Rand, n, validators int, breakUniform bool) *Input {
	in := denseInput(n, validators)
	in.Params.MaxAllowedValidators = uint64(validators + 4)
	for i := range validators {
		for range 3 {
			in.Weights[i][r.IntN(n)].Value = 0
		}
	}
	for i := validators; i < validators+6; i++ { // bonds without a permit
		in.Bonds[i] = make([]Entry, n)
		for j := range n {
			in.Bonds[i][j] = Entry{UID: uint16(j), Value: uint16(r.IntN(65536))}
		}
	}
	if breakUniform {
		for k := range in.Weights[1] {
			in.Weights[1][k].Value = 0
		}
		gap := r.IntN(n)
		in.Bonds[validators] = append(in.Bonds[validators][:gap:gap], in.Bonds[validators][gap+1:]...)
	}
	return in
}

func TestDenseEpochMatchesFloatReference(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for run, c := range []struct {
		n            int
		breakUniform bool
		penalty      uint64
		everyPermit  bool // every source stores its bonds
	}{{700, false, 65535, false}, {700, true, 65535, false}, {600, false, 30_000, false}, {90, false, 65535, true}} {
		in := denseEpochInput(r, c.n, 40, c.breakUniform)
		in.Params.BondsPenalty = c.penalty
		if c.everyPermit {
			in.Params.MaxAllowedValidators = uint64(c.n)
		}
		y, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		conforms(t, "dense run "+strconv.Itoa(run), in.Emission, y, referenceEpoch(in))
	}
}
