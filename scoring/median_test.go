package scoring

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// medianBySort is weightedMedian by sorting: the smallest score x such
// that below plus the stake scoring at most x exceeds minority, else the
// largest score.
func medianBySort(votes []vote, below, minority uint64) Fixed {
	sorted := slices.Clone(votes)
	slices.SortFunc(sorted, func(a, b vote) int {
		switch {
		case a.w < b.w:
			return -1
		case a.w > b.w:
			return 1
		}
		return 0
	})
	for q := 0; q < len(sorted); {
		x := sorted[q].w
		for ; q < len(sorted) && sorted[q].w == x; q++ {
			below += uint64(sorted[q].stake)
		}
		if below > minority {
			return x
		}
	}
	return sorted[len(sorted)-1].w
}

// randomScores draws n scores from one of several shapes, some of them
// hard for a selection by buckets: many ties, a few outliers, scores
// spread over every power of two, a single value.
func randomScores(r *rand.Rand, n int) []Fixed {
	w := make([]Fixed, n)
	shape := r.IntN(6)
	for i := range w {
		switch shape {
		case 0: // uniform over the weights of a dense row
			w[i] = Fixed(r.Uint64N(uint64(One) / 2048))
		case 1: // few distinct values
			w[i] = Fixed(r.IntN(4)) << 50
		case 2: // every power of two
			w[i] = Fixed(1) << r.IntN(61)
		case 3: // one value
			w[i] = One / 3
		case 4: // a cluster and outliers
			w[i] = One/5 + Fixed(r.IntN(8))
			if r.IntN(16) == 0 {
				w[i] = Fixed(r.Uint64N(uint64(One)))
			}
		default: // anything in [0, 1], zeros included
			w[i] = Fixed(r.Uint64N(uint64(One) + 1))
			if r.IntN(8) == 0 {
				w[i] = 0
			}
		}
	}
	return w
}

func TestWeightedMedianMatchesSorting(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var scratch medianScratch
	for k := range scratch.votes {
		scratch.votes[k] = make([]vote, 600)
	}
	for run := range 20_000 {
		n := 1 + r.IntN(64)
		if run%10 == 0 {
			n = 1 + r.IntN(600)
		}
		votes := make([]vote, n)
		lo, hi := ^Fixed(0), Fixed(0)
		var total uint64
		for i, w := range randomScores(r, n) {
			stake := Fixed(r.Uint64N(uint64(One) / uint64(n)))
			if r.IntN(10) == 0 {
				stake = 0
			}
			votes[i] = vote{w, stake}
			total += uint64(stake)
			lo, hi = min(lo, w), max(hi, w)
		}
		below := r.Uint64N(uint64(One) / 4)
		minority := below + r.Uint64N(total+2)
		want := medianBySort(votes, below, minority)
		before := slices.Clone(votes)
		if got := weightedMedian(votes, lo, hi, below, minority, &scratch); got != want {
			t.Fatalf("run %d: %d votes: median %d, sorting gives %d", run, n, got, want)
		}
		if !slices.Equal(votes, before) {
			t.Fatalf("run %d: votes modified", run)
		}
		// A lower bound below the smallest score gives the same median.
		for _, bound := range []Fixed{0, lo - Fixed(r.Uint64N(uint64(lo)+1))} {
			if got := weightedMedian(votes, bound, hi, below, minority, &scratch); got != want {
				t.Fatalf("run %d: %d votes, lower bound %d: median %d, sorting gives %d", run, n, bound, got, want)
			}
		}
	}
}

func BenchmarkWeightedMedian64(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const cols = 512
	all := make([][]vote, cols)
	lows, highs := make([]Fixed, cols), make([]Fixed, cols)
	for c := range all {
		v := make([]vote, 64)
		lows[c] = ^Fixed(0)
		for i := range v {
			v[i] = vote{Fixed(r.Uint64N(uint64(One) / 2048)), One/64 + Fixed(r.Uint64N(1<<40))}
			lows[c], highs[c] = min(lows[c], v[i].w), max(highs[c], v[i].w)
		}
		all[c] = v
	}
	var scratch medianScratch
	for k := range scratch.votes {
		scratch.votes[k] = make([]vote, 64)
	}
	minority := uint64(One - ratio(32767, 65535))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := i % cols
		weightedMedian(all[c], lows[c], highs[c], 0, minority, &scratch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/vote")
}
