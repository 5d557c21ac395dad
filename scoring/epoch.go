package scoring

import "sort"

// vote is one validator's score on a column, with its active stake.
type vote struct{ w, stake Fixed }

// Epoch runs one Yuma consensus epoch, as shared/spec/epoch.md defines it.
// It fails only on input that Validate rejects.
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
	k := p.MaxAllowedValidators
	if uint64(n) <= k {
		for i := range y.ValidatorPermit {
			y.ValidatorPermit[i] = true
		}
	} else {
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
			y.ValidatorPermit[i] = true
		}
	}
	// Step 4: active stake.
	a := make([]Fixed, n)
	for i := range a {
		if y.Active[i] && nr[i].ValidatorPermit {
			a[i] = s[i]
		}
	}
	normalize(a)
	// Step 5: weights, masked and row-normalized.
	W := make([][]fxEntry, n)
	for i, x := range nr {
		if !x.ValidatorPermit || i >= len(in.Weights) {
			continue
		}
		var sum uint64
		for _, e := range in.Weights[i] {
			if int(e.UID) != i && int(e.UID) < n && x.LastUpdate > nr[e.UID].RegisteredAt {
				sum += uint64(e.Value)
			}
		}
		if sum == 0 {
			continue
		}
		row := make([]fxEntry, 0, len(in.Weights[i]))
		dv := newDivider(sum)
		for _, e := range in.Weights[i] {
			if e.Value != 0 && int(e.UID) != i && int(e.UID) < n && x.LastUpdate > nr[e.UID].RegisteredAt {
				row = append(row, fxEntry{uint32(e.UID), dv.div(uint64(e.Value))})
			}
		}
		W[i] = row
	}
	// Step 6: preranks.
	Q := make([]Fixed, n)
	for i, row := range W {
		if a[i] == 0 {
			continue
		}
		for _, e := range row {
			Q[e.col] += mul(e.v, a[i])
		}
	}
	// Step 7: κ-weighted median consensus per column over validators with
	// active stake, counting a validator without an entry as scoring 0.
	var totalActive uint64
	for _, x := range a {
		totalActive += uint64(x)
	}
	minority := uint64(One - ratio(p.Kappa, 65535))
	// Columns of votes in one flat array: count, offsets, fill.
	colStart := make([]int, n+1)
	colStake := make([]uint64, n)
	for i, row := range W {
		if a[i] == 0 {
			continue
		}
		for _, e := range row {
			colStart[e.col+1]++
			colStake[e.col] += uint64(a[i])
		}
	}
	for j := range n {
		colStart[j+1] += colStart[j]
	}
	flat := make([]vote, colStart[n])
	fill := append([]int(nil), colStart[:n]...)
	for i, row := range W {
		if a[i] == 0 {
			continue
		}
		for _, e := range row {
			flat[fill[e.col]] = vote{e.v, a[i]}
			fill[e.col]++
		}
	}
	C := y.Consensus
	if totalActive > 0 {
		for j := range n {
			votes := flat[colStart[j]:colStart[j+1]]
			zeroStake := totalActive - colStake[j]
			if zeroStake > 0 && zeroStake > minority {
				continue // C_j = 0
			}
			C[j] = weightedMedian(votes, zeroStake, minority)
		}
	}
	// Steps 8–10: clipping, validator trust, ranks, trust, incentive.
	Wc := make([][]fxEntry, n)
	r := make([]Fixed, n)
	for i, row := range W {
		if row == nil {
			continue
		}
		clipped := make([]fxEntry, len(row))
		var vt Fixed
		for p, e := range row {
			v := min(e.v, C[e.col])
			clipped[p] = fxEntry{e.col, v}
			vt += v
			if a[i] != 0 {
				r[e.col] += mul(v, a[i])
			}
		}
		Wc[i] = clipped
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
	// Step 11: bonds.
	B := make([][]fxEntry, n)
	bCol := make([]uint64, n)
	for i, x := range nr {
		if i >= len(in.Bonds) {
			break
		}
		for _, e := range in.Bonds[i] {
			if int(e.UID) < n && e.Value != 0 && x.LastUpdate > nr[e.UID].RegisteredAt {
				bCol[e.UID] += uint64(e.Value)
			}
		}
	}
	bDiv := dividers(bCol)
	for i, x := range nr {
		row := make([]fxEntry, 0, len(rowOf(in.Bonds, i)))
		for _, e := range rowOf(in.Bonds, i) {
			if int(e.UID) < n && e.Value != 0 && x.LastUpdate > nr[e.UID].RegisteredAt {
				row = append(row, fxEntry{uint32(e.UID), bDiv[e.UID].div(uint64(e.Value))})
			}
		}
		B[i] = row // sorted: input rows are sorted by uid
	}
	rho := ratio(p.BondsPenalty, 65535)
	dCol := make([]uint64, n)
	dB := make([][]fxEntry, n)
	for i, row := range W {
		if row == nil || a[i] == 0 {
			continue
		}
		out := make([]fxEntry, 0, len(row))
		for q, e := range row {
			h := e.v - mul(rho, e.v-Wc[i][q].v)
			if h == 0 {
				continue
			}
			d := mul(h, a[i])
			if d == 0 {
				continue
			}
			out = append(out, fxEntry{e.col, d})
			dCol[e.col] += uint64(d)
		}
		dB[i] = out // sorted: W rows are
	}
	dDiv := dividers(dCol)
	for _, row := range dB {
		for q, e := range row {
			row[q].v = dDiv[e.col].div(uint64(e.v))
		}
	}
	alpha := One - ratio(p.BondsMovingAverage, 1_000_000)
	M := make([][]fxEntry, n)
	mCol := make([]uint64, n)
	for i := range nr {
		merged := mergeEMA(dB[i], B[i], alpha)
		for _, e := range merged {
			mCol[e.col] += uint64(e.v)
		}
		M[i] = merged
	}
	mDiv := dividers(mCol)
	for _, row := range M {
		for q, e := range row {
			row[q].v = mDiv[e.col].div(uint64(e.v))
		}
	}
	// Step 12: dividends.
	for i, row := range M {
		var d Fixed
		for _, e := range row {
			d += mul(e.v, y.Incentive[e.col])
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
	colMax := make([]Fixed, n)
	for _, row := range M {
		for _, e := range row {
			colMax[e.col] = max(colMax[e.col], e.v)
		}
	}
	maxDiv := make([]divider, n)
	for j, m := range colMax {
		maxDiv[j] = newDivider(uint64(m))
	}
	for i, x := range nr {
		switch {
		case y.ValidatorPermit[i]:
			var row []Entry
			for _, e := range M[i] {
				if colMax[e.col] == 0 {
					continue
				}
				q := uint16(65535) // the column's largest entry
				if e.v != colMax[e.col] {
					q = maxDiv[e.col].div(uint64(e.v)).U16()
				}
				if q > 0 {
					row = append(row, Entry{UID: uint16(e.col), Value: q})
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

// rowOf returns row i of a sparse matrix, or nil past its end.
func rowOf(m [][]Entry, i int) []Entry {
	if i < len(m) {
		return m[i]
	}
	return nil
}

// fxEntry is a sparse row entry in fixed point.
type fxEntry struct {
	col uint32
	v   Fixed
}

// mergeEMA returns α·d + (1−α)·b over the union of two column-sorted rows.
func mergeEMA(d, b []fxEntry, alpha Fixed) []fxEntry {
	out := make([]fxEntry, 0, len(d)+len(b))
	beta := One - alpha
	p, q := 0, 0
	for p < len(d) || q < len(b) {
		switch {
		case q == len(b) || (p < len(d) && d[p].col < b[q].col):
			out = append(out, fxEntry{d[p].col, mul(alpha, d[p].v)})
			p++
		case p == len(d) || b[q].col < d[p].col:
			out = append(out, fxEntry{b[q].col, mul(beta, b[q].v)})
			q++
		default:
			out = append(out, fxEntry{d[p].col, mul(alpha, d[p].v) + mul(beta, b[q].v)})
			p++
			q++
		}
	}
	kept := out[:0]
	for _, e := range out {
		if e.v != 0 {
			kept = append(kept, e)
		}
	}
	return kept
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
		// Partition into [less | equal | greater].
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

// dividers returns one divider per column sum.
func dividers(sums []uint64) []divider {
	out := make([]divider, len(sums))
	for j, y := range sums {
		out[j] = newDivider(y)
	}
	return out
}
