package scoring

import (
	"cmp"
	"math/bits"
	"slices"
)

// This file holds steps 5–10 of the epoch: the masked weights, preranks,
// the κ-weighted median consensus, clipping, validator trust, ranks,
// trust and incentive.

// vote is one validator's score on a column, with its active stake.
type vote struct{ w, stake Fixed }

// kept reports whether the weight (or bond) of i on j survives the masks
// of steps 5 and 11.1: set after j's holder registered, and not zero.
func (e *epoch) kept(lastUpdate uint64, en Entry) bool {
	return en.Value != 0 && lastUpdate > e.regAt[en.UID]
}

// maskWeights is the first half of step 5: it checks every weight row,
// sums the kept u16 weights of each permit holder's row (no self-weight,
// none outdated) and counts each column's votes for step 7: those of the
// validators with active stake.
func (e *epoch) maskWeights() error {
	in, n := e.in, e.n
	e.rowDiv = make([]divider, n)
	e.wClean = make([]bool, n)
	e.voteCount = make([]int, n)
	for i, x := range in.Neurons {
		row := rowOf(in.Weights, i)
		if !x.ValidatorPermit {
			if err := checkRow("weights", i, row, n); err != nil {
				return err
			}
			continue
		}
		var sum uint64
		prev, voting, clean := -1, e.a[i] != 0, true
		for _, en := range row {
			j := int(en.UID)
			if j >= n || j <= prev {
				return rowError("weights", i, row, n)
			}
			prev = j
			if j != i && e.kept(x.LastUpdate, en) {
				sum += uint64(en.Value)
				if voting {
					e.voteCount[j]++
				}
			} else {
				clean = false
			}
		}
		e.rowDiv[i], e.wClean[i] = newDivider(sum), clean
		if sum != 0 && voting {
			e.voters = append(e.voters, i)
		}
	}
	return nil
}

// weight is W_ij for an entry of row i of a permit holder: the masked u16
// weight divided by the row's sum of kept weights. It is recomputed, one
// multiply, wherever a step needs it.
func (e *epoch) weight(i int, lastUpdate uint64, en Entry) Fixed {
	w := e.rowDiv[i].div(uint64(en.Value))
	if !e.wClean[i] && (int(en.UID) == i || !e.kept(lastUpdate, en)) {
		return 0
	}
	return w
}

// blockVotes bounds the votes transposed at once, so that a block of
// columns stays in the cache while its medians are found.
const blockVotes = 8192

// consensus is steps 6–8 and the column half of 10 and 11.4, column by
// column: preranks Q_j = Σ_i W_ij a_i; the κ-weighted median C_j, the
// smallest score x of a validator with active stake such that the stake
// scoring at most x exceeds m = 1 − κ (validators without an entry in
// column j score 0); the clipped ranks r_j = Σ_i W̃_ij a_i; and the column
// sums of ΔB = H·a, H = W − ρ(W − W̃).
//
// The votes (W_ij, a_i) of the validators with active stake are
// transposed from their rows a block of columns at a time.
func (e *epoch) consensus() {
	in, n := e.in, e.n
	e.Q = make([]Fixed, n)
	e.r = make([]Fixed, n)
	e.dSum = make([]uint64, n)
	if e.aSum == 0 {
		return
	}
	C := e.out.Consensus
	minority := uint64(One - ratio(in.Params.Kappa, 65535))
	rho := ratio(in.Params.BondsPenalty, 65535)
	cursor := make([]int, len(e.voters))
	most := 0
	for _, c := range e.voteCount {
		most = max(most, c)
	}
	buf := make([]vote, max(most, blockVotes))
	var scratch [3][]vote
	for k := range scratch {
		scratch[k] = make([]vote, most)
	}
	fill := make([]int, n+1)
	for lo := 0; lo < n; {
		// The block is columns lo..hi-1; fill[j] is where column j's
		// votes go, fill[hi] the end.
		hi, size := lo, 0
		for hi < n && (hi == lo || size+e.voteCount[hi] <= blockVotes) {
			fill[hi] = size
			size += e.voteCount[hi]
			hi++
		}
		fill[hi] = size
		for k, i := range e.voters {
			row, lu, ai := in.Weights[i], in.Neurons[i].LastUpdate, e.a[i]
			q := cursor[k]
			for ; q < len(row) && int(row[q].UID) < hi; q++ {
				en := row[q]
				if w := e.weight(i, lu, en); w != 0 {
					buf[fill[en.UID]] = vote{w, ai}
					fill[en.UID]++
				}
			}
			cursor[k] = q
		}
		start := 0
		for j := lo; j < hi; j++ {
			votes := buf[start:fill[j]]
			start = fill[j]
			var prerank Fixed
			var stake uint64
			for _, v := range votes {
				prerank += mul(v.w, v.stake)
				stake += uint64(v.stake)
			}
			e.Q[j] = prerank
			below := e.aSum - stake // the stake scoring 0
			c := Fixed(0)
			if below <= minority {
				c = weightedMedian(votes, stake, below, minority, &scratch)
			}
			C[j] = c
			var r Fixed
			for _, v := range votes {
				r += mul(min(v.w, c), v.stake)
			}
			e.r[j], e.dSum[j] = r, uint64(r) // with ρ = 1, H = W̃
			if rho != One {
				var d uint64
				for _, v := range votes {
					d += uint64(deltaBond(v.w, min(v.w, c), rho, v.stake))
				}
				e.dSum[j] = d
			}
		}
		lo = hi
	}
}

// ranks is the rest of step 10: trust T = r/Q and incentive I = R =
// normalize(r).
func (e *epoch) ranks() {
	y := e.out
	for j, r := range e.r {
		y.Trust[j] = ratio(uint64(r), uint64(e.Q[j]))
	}
	copy(y.Ranks, e.r)
	normalize(y.Ranks)
	copy(y.Incentive, y.Ranks)
}

// deltaBond is ΔB_ij = H_ij a_i before column normalization, with
// H = (1−ρ)W + ρW̃ = W − ρ(W − W̃). About half the weights of a column
// are clipped, so it does not branch on w == wc.
func deltaBond(w, wc, rho, a Fixed) Fixed {
	return mul(w-mul(rho, w-wc), a)
}

// weightedMedian returns the smallest score x among votes such that
// below (the stake scoring less than every vote) plus the stake of the
// votes scoring at most x exceeds minority; the largest score if none
// does (or 0 without votes). total is the stake of votes. It does not
// modify votes; scratch holds three buffers at least as long.
//
// It is a quickselect: each round splits the candidates around a
// median-of-three pivot into those below and those above it (see
// split), then keeps the side that holds the answer. After more rounds
// than a good run needs it sorts what is left instead, so adversarial
// scores cost O(v log v).
func weightedMedian(votes []vote, total, below, minority uint64, scratch *[3][]vote) Fixed {
	var last Fixed
	src := votes
	// src lives in scratch[s] (after the first round); the rounds write
	// to the other two, scratch[d0] and scratch[d1].
	s, d0, d1 := 2, 0, 1
	for rounds := 2*bitLen(len(votes)) + 8; len(src) > 0; rounds-- {
		if rounds == 0 {
			rest := scratch[d0][:len(src)]
			copy(rest, src)
			return medianBySort(rest, below, minority)
		}
		p := median3Votes(src)
		last = p
		nl, nm, sLess, sMore := split(src, scratch[d0], scratch[d1], p)
		sEqual := total - sLess - sMore
		switch {
		case below+sLess > minority:
			// Not empty: below alone is at most minority.
			src, total = scratch[d0][:nl], sLess
			s, d0 = d0, s
		case below+sLess+sEqual > minority:
			return p
		default:
			// Keep the votes above p; when none are left, p was the
			// largest score and no score qualifies.
			below += sLess + sEqual
			src, total = scratch[d1][:nm], sMore
			s, d1 = d1, s
		}
	}
	return last
}

// split writes the votes of src scoring below p to less and those above
// to more, returning their counts and stakes. It does not branch on the
// scores: every vote is written to both buffers, and the comparisons
// advance one index or the other and mask the stake sums. Kept out of
// line so that its loop has the registers to itself.
//
//go:noinline
func split(src, less, more []vote, p Fixed) (nl, nm int, sLess, sMore uint64) {
	less, more = less[:len(src)], more[:len(src)]
	for _, v := range src {
		var isLess, isMore uint64
		if v.w < p {
			isLess = 1
		}
		if v.w > p {
			isMore = 1
		}
		less[nl] = v
		more[nm] = v
		nl += int(isLess)
		nm += int(isMore)
		sLess += uint64(v.stake) & -isLess
		sMore += uint64(v.stake) & -isMore
	}
	return nl, nm, sLess, sMore
}

func median3Votes(votes []vote) Fixed {
	a, b, c := votes[0].w, votes[len(votes)/2].w, votes[len(votes)-1].w
	if b < a {
		a, b = b, a
	}
	if c < b {
		b = max(a, c)
	}
	return b
}

// medianBySort is weightedMedian by sorting: the fallback for inputs
// that defeat the pivots.
func medianBySort(votes []vote, below, minority uint64) Fixed {
	sortVotes(votes)
	for q := 0; q < len(votes); {
		x := votes[q].w
		for ; q < len(votes) && votes[q].w == x; q++ {
			below += uint64(votes[q].stake)
		}
		if below > minority {
			return x
		}
	}
	return votes[len(votes)-1].w
}

func bitLen(n int) int { return bits.Len(uint(n)) }

// sortVotes sorts votes by score.
func sortVotes(votes []vote) {
	slices.SortFunc(votes, func(a, b vote) int { return cmp.Compare(a.w, b.w) })
}
