package scoring

import "math/bits"

// medianScratch is the memory weightedMedian works in, kept from one
// column to the next.
type medianScratch struct {
	stake [256]uint64 // stake by bucket
	votes [2][]vote   // the candidates of a round; as long as the largest column
}

// weightedMedian returns the smallest score x among votes such that below
// (the stake scoring less than every vote) plus the stake of the votes
// scoring at most x exceeds minority, or the largest score if none does.
// lo is at most the smallest score (the smallest, or 0) and hi is the
// largest. It does not modify votes.
//
// It is a radix selection. A round spreads the candidates' stake over up
// to 256 buckets of equal width by score, finds the bucket in which the
// stake at or below it first exceeds minority, and keeps that bucket's
// votes as the next round's candidates; a few candidates are settled by
// counting (smallMedian). Every round narrows the range of scores by a
// factor of the number of buckets, so even adversarial scores take a
// bounded number of rounds, and the loops over the votes do not branch
// on the scores.
func weightedMedian(votes []vote, lo, hi Fixed, below, minority uint64, scratch *medianScratch) Fixed {
	if len(votes) <= smallVotes {
		if x := smallMedian(votes, below, minority); x != noMedian {
			return x
		}
		return hi
	}
	candidates := votes
	for round := 0; ; round++ {
		if lo == hi {
			return lo
		}
		span := uint64(hi - lo)
		shift := max(bits.Len64(span)-bucketBits(len(candidates)), 0)
		buckets := int(span>>shift) + 1 // at most 256
		stake := &scratch.stake
		clear(stake[:buckets])
		spread(lo, stake, uint(shift), candidates)
		b := 0
		for ; b < buckets && below+stake[b] <= minority; b++ {
			below += stake[b]
		}
		switch {
		case b == buckets: // only in the first round: no score qualifies
			return hi
		case shift == 0: // the bucket holds one score
			return lo + Fixed(b)
		}
		next := scratch.votes[round&1]
		kept := keep(candidates, lo+Fixed(b)<<shift, uint64(1)<<shift, next)
		candidates = next[:kept]
		if kept <= smallVotes { // an answer is among them
			return smallMedian(candidates, below, minority)
		}
		lo, hi = ^Fixed(0), 0
		for _, v := range candidates {
			lo, hi = min(lo, v.w), max(hi, v.w)
		}
	}
}

// spread adds the stake of each vote to its bucket: the bucket of score
// w is (w−lo)>>shift, below 256. Kept out of line, like keep, so that its
// loop has the registers to itself. The shift comes third, so it arrives
// in CX (Go's register ABI), where a variable shift needs it.
//
//go:noinline
func spread(lo Fixed, stake *[256]uint64, shift uint, votes []vote) {
	buckets := stake[:] // checked for nil once, not in the loop
	shift &= 63         // below 64: a plain shift
	for _, v := range votes {
		buckets[uint8(uint64(v.w-lo)>>shift)] += uint64(v.stake)
	}
}

// keep copies the votes scoring in [first, first+width) to next, in
// order, and returns how many there are. The bucket kept usually holds a
// few of many votes, so the branch is mostly predicted.
//
//go:noinline
func keep(votes []vote, first Fixed, width uint64, next []vote) (kept int) {
	next = next[:len(votes)]
	for _, v := range votes {
		if uint64(v.w-first) < width {
			next[kept] = v
			kept++
		}
	}
	return kept
}

// smallVotes is the most votes smallMedian takes.
const smallVotes = 8

// noMedian is what smallMedian returns when no score qualifies: above
// every score.
const noMedian = ^Fixed(0)

// smallMedian is weightedMedian for a few votes, by counting: for each
// vote, the stake scoring at most its score. It returns noMedian if no
// score qualifies.
func smallMedian(votes []vote, below, minority uint64) Fixed {
	answer := noMedian
	for _, x := range votes {
		var atMost uint64
		for _, v := range votes {
			atMost += uint64(v.stake) & -uint64(oneIf(v.w <= x.w))
		}
		if below+atMost > minority {
			answer = min(answer, x.w)
		}
	}
	return answer
}

// bucketBits is how finely a round of weightedMedian splits the scores of
// n candidates: into n/4 to n/2 buckets, at least 2 and at most 256.
func bucketBits(n int) int { return min(max(bits.Len(uint(n))-1, 1), 8) }

// oneIf is 1 if c holds, else 0; the compiler makes it a flag, not a branch.
func oneIf(c bool) int {
	if c {
		return 1
	}
	return 0
}
