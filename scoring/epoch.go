package scoring

import "sort"

// vote is one validator's score on a column, with its active stake.
type vote struct{ w, stake Fixed }

// Epoch runs one Yuma consensus epoch, as shared/spec/epoch.md defines it.
// It fails only on input that Validate rejects.
//
// Rows live in flat arrays (compressed sparse rows): row i of the weights
// is wCol/wVal[wStart[i]:wEnd[i]], and every later step that follows the
// weights' pattern (clipping, bond deltas) reuses those positions.
func Epoch(in *Input) (*Output, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	n := len(in.Neurons)
	nr := in.Neurons
	p := in.Params
	y := &Output{
		Active: make([]bool, n), ValidatorPermit: make([]bool, n),
		Ranks: make([]Fixed, n), Trust: make([]Fixed, n), Consensus: make([]Fixed, n), Incentive: make([]Fixed, n),
		Dividends: make([]Fixed, n), ValidatorTrust: make([]Fixed, n),
		Emission: make([]uint64, n), ServerEmission: make([]uint64, n), ValidatorEmission: make([]uint64, n),
		Combined: make([]Fixed, n), Bonds: make([][]Entry, n),
	}
	// Step 1: activity.
	for i, x := range nr {
		y.Active[i] = !(x.LastUpdate < in.Block && in.Block-x.LastUpdate > p.ActivityCutoff)
	}
	// Step 2: stake.
	var totalStake uint64
	for _, x := range nr {
		totalStake += x.Stake
	}
	s := make([]Fixed, n)
	for i, x := range nr {
		s[i] = ratio(x.Stake, totalStake)
	}
	// Step 3: new permits: the top k by stake, ties to the higher uid.
	permits(nr, p.MaxAllowedValidators, y.ValidatorPermit)
	// Step 4: active stake.
	a := make([]Fixed, n)
	for i := range a {
		if y.Active[i] && nr[i].ValidatorPermit {
			a[i] = s[i]
		}
	}
	normalize(a)
	var totalActive uint64
	for _, x := range a {
		totalActive += uint64(x)
	}

	// Step 5: weights, masked and row-normalized. Step 6's preranks and
	// the column counts for step 7 are gathered on the way.
	wStart, wEnd := make([]int, n), make([]int, n)
	size := 0
	for i, x := range nr {
		wStart[i] = size
		if x.ValidatorPermit {
			size += len(rowOf(in.Weights, i))
		}
	}
	wCol := make([]uint32, size)
	wVal := make([]Fixed, size)
	Q := make([]Fixed, n)
	colStart := make([]int, n+1)
	colStake := make([]uint64, n)
	for i, x := range nr {
		end := wStart[i]
		wEnd[i] = end
		if !x.ValidatorPermit {
			continue
		}
		row := rowOf(in.Weights, i)
		var sum uint64
		for _, e := range row {
			if int(e.UID) != i && x.LastUpdate > nr[e.UID].RegisteredAt {
				sum += uint64(e.Value)
			}
		}
		if sum == 0 {
			continue
		}
		dv := newDivider(sum)
		ai := a[i]
		for _, e := range row {
			if e.Value == 0 || int(e.UID) == i || x.LastUpdate <= nr[e.UID].RegisteredAt {
				continue
			}
			w := dv.div(uint64(e.Value))
			wCol[end], wVal[end] = uint32(e.UID), w
			end++
			if ai != 0 {
				Q[e.UID] += mul(w, ai)
				colStart[e.UID+1]++
				colStake[e.UID] += uint64(ai)
			}
		}
		wEnd[i] = end
	}

	// Step 7: κ-weighted median consensus per column over validators with
	// active stake; one without an entry in the column scores 0.
	minority := uint64(One - ratio(p.Kappa, 65535))
	C := y.Consensus
	if totalActive > 0 {
		for j := range n {
			colStart[j+1] += colStart[j]
		}
		votes := make([]vote, colStart[n])
		fill := append([]int(nil), colStart[:n]...)
		for i := range nr {
			ai := a[i]
			if ai == 0 {
				continue
			}
			for q := wStart[i]; q < wEnd[i]; q++ {
				c := wCol[q]
				votes[fill[c]] = vote{wVal[q], ai}
				fill[c]++
			}
		}
		for j := range n {
			zeroStake := totalActive - colStake[j]
			if zeroStake > 0 && zeroStake > minority {
				continue // C_j = 0
			}
			C[j] = weightedMedian(votes[colStart[j]:colStart[j+1]], zeroStake, minority)
		}
	}

	// Steps 8–10 and 11.3–11.4 in one pass over the weights: clip, add to
	// validator trust and ranks, and form the bond deltas ΔB = H·a with
	// H = W − ρ(W − W̃), kept at the weights' positions.
	rho := ratio(p.BondsPenalty, 65535)
	r := make([]Fixed, n)
	dVal := make([]Fixed, size)
	dCol := make([]uint64, n)
	for i := range nr {
		ai := a[i]
		var vt Fixed
		for q := wStart[i]; q < wEnd[i]; q++ {
			c, w := wCol[q], wVal[q]
			wc := min(w, C[c])
			vt += wc
			if ai != 0 {
				r[c] += mul(wc, ai)
				d := mul(w-mul(rho, w-wc), ai)
				dVal[q] = d
				dCol[c] += uint64(d)
			}
		}
		y.ValidatorTrust[i] = vt
	}
	for j := range r {
		if Q[j] != 0 {
			y.Trust[j] = ratio(uint64(r[j]), uint64(Q[j]))
		}
	}
	copy(y.Ranks, r)
	normalize(y.Ranks)
	copy(y.Incentive, y.Ranks)

	// Step 11.1–11.2: stored bonds, masked, column sums.
	bCol := make([]uint64, n)
	for i, x := range nr {
		for _, e := range rowOf(in.Bonds, i) {
			if e.Value != 0 && x.LastUpdate > nr[e.UID].RegisteredAt {
				bCol[e.UID] += uint64(e.Value)
			}
		}
	}
	// Step 11.5: M = α·normalize(ΔB) + (1−α)·normalize(B), merged row by
	// row (both rows are sorted by uid), then column-normalized.
	alpha := One - ratio(p.BondsMovingAverage, 1_000_000)
	beta := One - alpha
	dDiv, bDiv := dividers(dCol), dividers(bCol)
	mStart, mEnd := make([]int, n), make([]int, n)
	size = 0
	for i := range nr {
		mStart[i] = size
		size += wEnd[i] - wStart[i] + len(rowOf(in.Bonds, i))
	}
	mCol := make([]uint32, size)
	mVal := make([]Fixed, size)
	mSum := make([]uint64, n)
	for i, x := range nr {
		out := mStart[i]
		q, qEnd := wStart[i], wEnd[i]
		brow := rowOf(in.Bonds, i)
		b := 0
		for q < qEnd || b < len(brow) {
			var c uint32
			var m Fixed
			switch {
			case b == len(brow) || (q < qEnd && wCol[q] < uint32(brow[b].UID)):
				c, m = wCol[q], mul(alpha, dDiv[wCol[q]].div(uint64(dVal[q])))
				q++
			default:
				e := brow[b]
				b++
				c = uint32(e.UID)
				if e.Value != 0 && x.LastUpdate > nr[e.UID].RegisteredAt {
					m = mul(beta, bDiv[c].div(uint64(e.Value)))
				}
				if q < qEnd && wCol[q] == c {
					m += mul(alpha, dDiv[c].div(uint64(dVal[q])))
					q++
				}
			}
			if m != 0 {
				mCol[out], mVal[out] = c, m
				out++
				mSum[c] += uint64(m)
			}
		}
		mEnd[i] = out
	}
	// Step 12 with the normalization of M: dividends d_i = Σ_j M_ij I_j.
	mDiv := dividers(mSum)
	colMax := make([]Fixed, n)
	for i := range nr {
		var d Fixed
		for q := mStart[i]; q < mEnd[i]; q++ {
			c := mCol[q]
			m := mDiv[c].div(uint64(mVal[q]))
			mVal[q] = m
			d += mul(m, y.Incentive[c])
			colMax[c] = max(colMax[c], m)
		}
		y.Dividends[i] = d
	}
	normalize(y.Dividends)

	// Step 13: emission split.
	var sigma uint64
	for i := range nr {
		sigma += uint64(y.Incentive[i] + y.Dividends[i])
	}
	server, validator := make([]Fixed, n), make([]Fixed, n)
	if sigma > 0 {
		for i := range nr {
			server[i] = ratio(uint64(y.Incentive[i]), sigma)
			validator[i] = ratio(uint64(y.Dividends[i]), sigma)
			y.Combined[i] = ratio(uint64(y.Incentive[i]+y.Dividends[i]), sigma)
		}
	} else if totalActive > 0 {
		copy(validator, a)
		copy(y.Combined, a)
	} else {
		copy(validator, s)
		copy(y.Combined, s)
	}
	for i := range nr {
		y.ServerEmission[i] = scale(server[i], in.Emission)
		y.ValidatorEmission[i] = scale(validator[i], in.Emission)
		y.Emission[i] = scale(y.Combined[i], in.Emission)
	}

	// Step 14: bonds for storage, column-max-upscaled to u16.
	maxDiv := make([]divider, n)
	for j, m := range colMax {
		maxDiv[j] = newDivider(uint64(m))
	}
	for i, x := range nr {
		switch {
		case y.ValidatorPermit[i]:
			row := make([]Entry, 0, mEnd[i]-mStart[i])
			for q := mStart[i]; q < mEnd[i]; q++ {
				c, m := mCol[q], mVal[q]
				v := uint16(65535) // the column's largest entry
				if m != colMax[c] {
					v = maxDiv[c].div(uint64(m)).U16()
				}
				if v > 0 {
					row = append(row, Entry{UID: uint16(c), Value: v})
				}
			}
			y.Bonds[i] = row
		case x.ValidatorPermit:
			y.Bonds[i] = nil
		default:
			y.Bonds[i] = rowOf(in.Bonds, i)
		}
	}
	return y, nil
}

// permits sets the top k neurons by stake (ties to the higher uid).
func permits(nr []Neuron, k uint64, out []bool) {
	n := len(nr)
	if uint64(n) <= k {
		for i := range out {
			out[i] = true
		}
		return
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		sa, sb := nr[order[a]].Stake, nr[order[b]].Stake
		if sa != sb {
			return sa < sb
		}
		return order[a] < order[b]
	})
	for _, i := range order[uint64(n)-k:] {
		out[i] = true
	}
}

// rowOf returns row i of a sparse matrix, or nil past its end.
func rowOf(m [][]Entry, i int) []Entry {
	if i < len(m) {
		return m[i]
	}
	return nil
}

// dividers returns one divider per column sum.
func dividers(sums []uint64) []divider {
	out := make([]divider, len(sums))
	for j, y := range sums {
		out[j] = newDivider(y)
	}
	return out
}

// weightedMedian returns the smallest score x among votes such that the
// stake of the votes scoring at most x, plus below (the stake of
// validators scoring 0, counted below every vote), exceeds minority; the
// largest score if none does. It is the definition of step 7, found by
// three-way partitioning around a middle pivot (expected linear time)
// instead of sorting. votes is reordered.
func weightedMedian(votes []vote, below, minority uint64) Fixed {
	var largest Fixed
	for _, v := range votes {
		largest = max(largest, v.w)
	}
	for len(votes) > 0 {
		pivot := votes[len(votes)/2].w
		lt, i, gt := 0, 0, len(votes)
		var sLess, sEqual uint64
		for i < gt {
			switch v := votes[i]; {
			case v.w < pivot:
				sLess += uint64(v.stake)
				votes[lt], votes[i] = votes[i], votes[lt]
				lt++
				i++
			case v.w > pivot:
				gt--
				votes[gt], votes[i] = votes[i], votes[gt]
			default:
				sEqual += uint64(v.stake)
				i++
			}
		}
		switch {
		case below+sLess > minority:
			votes = votes[:lt]
		case below+sLess+sEqual > minority:
			return pivot
		default:
			below += sLess + sEqual
			votes = votes[gt:]
		}
	}
	return largest
}
