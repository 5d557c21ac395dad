package scoring

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// One Workspace serving a sequence of unlike epochs (sizes up and down,
// dense and masked, sparse and multi-block, ρ < 1, an invalid input in
// between) gives the bits Epoch gives on fresh memory, every time.
func TestEpochWithWorkspaceMatchesEpoch(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	var ins []*Input
	for run := range 4 {
		in := largeEpochInput(r, 300+r.IntN(1200), 16+r.IntN(48))
		in.Params.BondsPenalty = []uint64{65535, 20_000}[run%2]
		ins = append(ins, in)
		dense := denseEpochInput(r, 64+r.IntN(900), 8+r.IntN(40), run%2 == 1)
		if run == 2 {
			dense.Params.MaxAllowedValidators = uint64(len(dense.Neurons))
		}
		ins = append(ins, dense)
	}
	ins = append(ins, denseInput(256, 64), denseInput(2000, 70), denseInput(100, 10))
	bad := denseInput(50, 5)
	bad.Weights[1][3].UID = 0 // unsorted
	r.Shuffle(len(ins), func(a, b int) { ins[a], ins[b] = ins[b], ins[a] })
	ins = append(ins[:3], append([]*Input{bad}, ins[3:]...)...)

	var ws Workspace
	for k, in := range ins {
		want, wantErr := Epoch(in)
		got, err := EpochWith(in, &ws)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("input %d: error %v, want %v", k, err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %d (%d uids): EpochWith with a used workspace differs from Epoch", k, len(in.Neurons))
		}
		if err == nil && k == 0 {
			if again, _ := EpochWith(in, &ws); !reflect.DeepEqual(again, want) {
				t.Fatal("input 0 again: differs from Epoch")
			}
		}
	}
}

// One Workspace reused over a sequence of unlike epochs gives the bits of
// Epoch on fresh memory each time, and an Output it returned is not
// changed by later epochs (it shares no memory with the Workspace).
func TestWorkspaceReusedAcrossUnlikeEpochs(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	var ins []*Input
	for run := range 4 {
		in := largeEpochInput(r, 300+r.IntN(1200), 16+r.IntN(48))
		in.Params.BondsPenalty = []uint64{65535, 20_000}[run%2]
		ins = append(ins, in, denseEpochInput(r, 64+r.IntN(900), 8+r.IntN(40), run%2 == 1))
	}
	ins = append(ins, denseInput(256, 64), denseInput(2000, 70), denseInput(100, 10))
	r.Shuffle(len(ins), func(a, b int) { ins[a], ins[b] = ins[b], ins[a] })

	var ws Workspace
	var outs, fresh []*Output
	for k, in := range ins {
		got, err := EpochWith(in, &ws)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %d (%d uids): the reused workspace differs from fresh memory", k, len(in.Neurons))
		}
		outs, fresh = append(outs, got), append(fresh, want)
	}
	for k := range outs {
		if !reflect.DeepEqual(outs[k], fresh[k]) {
			t.Fatalf("output %d changed after later epochs", k)
		}
	}
}

// Dense rows whose sources all store (epoch.denseStride) are scored as
// they are gathered and keep their bonds at fixed places, leaving the
// zero ones out afterwards: the same bits as the path of other rows, with
// and without zero bonds, columns nobody bonds and columns that store
// none.
func TestDenseStorageMatchesSparse(t *testing.T) {
	r := rand.New(rand.NewPCG(55, 56))
	zeros := 0
	for run := range 12 {
		n, v := 20+r.IntN(300), 2+r.IntN(40)
		in := denseInput(n, v)
		in.Params.MaxAllowedValidators = uint64(n) // every source stores
		in.Params.BondsPenalty = []uint64{65535, 30_000}[run%2]
		for i := range v {
			if run%3 != 0 { // small stakes and bonds: some bonds quantize to 0
				in.Neurons[i].Stake = uint64(1 + r.IntN(1000))
				if i == 0 {
					in.Neurons[i].Stake = 1e15
				}
				for j := range n {
					in.Bonds[i][j].Value = uint16(r.IntN(3))
				}
			}
			if run%4 == 1 { // columns nobody weights nor bonds
				for j := 0; j < n; j += 7 {
					in.Weights[i][j].Value, in.Bonds[i][j].Value = 0, 0
				}
			}
			if run%4 == 2 { // columns nobody bonds
				for j := 0; j < n; j += 5 {
					in.Bonds[i][j].Value = 0
				}
			}
		}
		want, err := EpochWith(in, nil)
		if err != nil {
			t.Fatal(err)
		}
		e := newEpoch(in, nil)
		e.sparseStorage = true
		got, err := e.run()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d (%d uids, %d validators): dense storage differs from sparse", run, n, v)
		}
		e = newEpoch(in, nil)
		if _, err := e.run(); err != nil {
			t.Fatal(err)
		}
		if e.denseStride == 0 {
			t.Fatalf("run %d: rows not stored as dense", run)
		}
		for k, first := range e.storeFirst {
			if e.storeNext[k]-first < n { // zero bonds left out
				zeros++
				break
			}
		}
	}
	if zeros < 3 {
		t.Fatalf("only %d runs stored zero bonds", zeros)
	}
}
