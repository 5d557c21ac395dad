package scoring

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkWeightedMedian64(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const cols = 512
	all := make([][]vote, cols)
	totals := make([]uint64, cols)
	for c := range all {
		v := make([]vote, 64)
		for i := range v {
			v[i] = vote{Fixed(r.Uint64N(uint64(One) / 2048)), One/64 + Fixed(r.Uint64N(1<<40))}
			totals[c] += uint64(v[i].stake)
		}
		all[c] = v
	}
	var scratch [3][]vote
	for k := range scratch {
		scratch[k] = make([]vote, 64)
	}
	minority := uint64(One - ratio(32767, 65535))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := i % cols
		weightedMedian(all[c], totals[c], 0, minority, &scratch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/vote")
}
