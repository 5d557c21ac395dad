package scoring

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// denseInput is a subnet of n uids whose v validators (with permits and
// stake) weight every uid and hold bonds on every uid: v·n non-zero
// weights.
func denseInput(n, v int) *Input {
	r := rand.New(rand.NewPCG(uint64(n), uint64(v)))
	in := &Input{Block: 10_000, Emission: 1e9,
		Params:  Params{Kappa: 32767, BondsMovingAverage: 900_000, BondsPenalty: 65535, ActivityCutoff: 5000, MaxAllowedValidators: uint64(v)},
		Neurons: make([]Neuron, n), Weights: make([][]Entry, n), Bonds: make([][]Entry, n)}
	for i := range n {
		in.Neurons[i] = Neuron{LastUpdate: 9_999, RegisteredAt: 1}
		if i < v {
			in.Neurons[i].Stake = 1e12 + uint64(r.IntN(1e9))
			in.Neurons[i].ValidatorPermit = true
			w, b := make([]Entry, n), make([]Entry, n)
			for j := range n {
				w[j] = Entry{UID: uint16(j), Value: uint16(1 + r.IntN(65535))}
				b[j] = Entry{UID: uint16(j), Value: uint16(1 + r.IntN(65535))}
			}
			in.Weights[i], in.Bonds[i] = w, b
		}
	}
	return in
}

// BenchmarkEpoch measures the fixed-point sparse epoch (Epoch on fresh
// memory, and EpochWith in a Workspace kept across epochs, as the chain
// runs it) and, as the baseline in the same run, a naive dense
// float64 implementation of the spec (the test reference), reporting
// nanoseconds per non-zero weight.
func BenchmarkEpoch(b *testing.B) {
	for _, size := range []struct{ n, v int }{{256, 64}, {4096, 64}} {
		in := denseInput(size.n, size.v)
		nnz := float64(size.n * size.v)
		b.Run(fmt.Sprintf("fixed-sparse/n=%d/v=%d", size.n, size.v), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Epoch(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nnz, "ns/weight")
		})
		// A caller that keeps a Workspace from one epoch to the next (a
		// chain at every tempo) allocates only the output.
		b.Run(fmt.Sprintf("fixed-sparse-workspace/n=%d/v=%d", size.n, size.v), func(b *testing.B) {
			b.ReportAllocs()
			var ws Workspace
			for i := 0; i < b.N; i++ {
				if _, err := EpochWith(in, &ws); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nnz, "ns/weight")
		})
		b.Run(fmt.Sprintf("naive-float64-dense/n=%d/v=%d", size.n, size.v), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				referenceEpoch(in)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nnz, "ns/weight")
		})
	}
}
