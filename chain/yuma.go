package chain

import (
	"errors"
	"math/bits"
	"sort"
)

// This file implements the Yuma consensus epoch of shared/spec/epoch.md in
// fixed point, so every machine computes the same bits. Values in [0, 16)
// are held as uint64 with 60 fractional bits; products and quotients use
// 128-bit intermediates (math/bits), truncating. Weights and bonds stay
// sparse, so a subnet costs what its non-zero entries cost.

const (
	fracBits = 60
	fxOne    = uint64(1) << fracBits
)

// fx is a fixed-point number with 60 fractional bits.
type fx = uint64

// fxMul returns floor(a·b), for a result below 16.
func fxMul(a, b fx) fx {
	hi, lo := bits.Mul64(a, b)
	return hi<<(64-fracBits) | lo>>fracBits
}

// fxRatio returns floor(x/y) as fixed point, for integers or fixed-point
// values of the same scale with x/y < 16; 0 when y is 0.
func fxRatio(x, y uint64) fx {
	if y == 0 {
		return 0
	}
	hi, lo := x>>(64-fracBits), x<<fracBits
	if hi >= y {
		return ^uint64(0) // the quotient does not fit; callers never pass this
	}
	q, _ := bits.Div64(hi, lo, y)
	return q
}

// fxToU16 quantizes a value in [0, 1] to floor(x·65535).
func fxToU16(x fx) uint16 {
	v := fxScale(x, 65535)
	if v > 65535 {
		return 65535
	}
	return uint16(v)
}

// fxScale returns floor(x·amount) for x in [0, 1].
func fxScale(x fx, amount uint64) uint64 {
	hi, lo := bits.Mul64(x, amount)
	return hi<<(64-fracBits) | lo>>fracBits
}

// normalize divides each value by the sum, in place; all zero stays zero.
func normalize(v []fx) {
	var sum uint64
	for _, x := range v {
		sum += x
	}
	if sum == 0 {
		return
	}
	for i, x := range v {
		v[i] = fxRatio(x, sum)
	}
}

// fxEntry is a sparse row entry in fixed point.
type fxEntry struct {
	col uint32
	v   fx
}

// yuma holds one epoch's full-precision results, before quantization.
type yuma struct {
	active, permit                                []bool
	ranks, trust, consensus, incentive, dividends []fx
	validatorTrust                                []fx
	emission, serverEmission, validatorEmission   []uint64
	combined                                      []fx
	bonds                                         [][]Entry
}

// ErrEpochInput is returned for an epoch input the epoch cannot use.
var ErrEpochInput = errors.New("chain: invalid epoch input")

// YumaEpoch runs the Yuma consensus epoch of shared/spec/epoch.md.
func YumaEpoch(in *EpochInput) ([]EpochNeuronResult, error) {
	y, err := runYuma(in)
	if err != nil {
		return nil, err
	}
	n := len(in.Neurons)
	var maxCombined fx
	for _, c := range y.combined {
		maxCombined = max(maxCombined, c)
	}
	out := make([]EpochNeuronResult, n)
	for i := range out {
		out[i] = EpochNeuronResult{
			Active: y.active[i], ValidatorPermit: y.permit[i],
			Rank: fxToU16(y.ranks[i]), Trust: fxToU16(y.trust[i]), Consensus: fxToU16(y.consensus[i]),
			Incentive: fxToU16(y.incentive[i]), Dividends: fxToU16(y.dividends[i]), ValidatorTrust: fxToU16(y.validatorTrust[i]),
			Emission: y.emission[i], ServerEmission: y.serverEmission[i], ValidatorEmission: y.validatorEmission[i],
			Bonds: y.bonds[i],
		}
		if maxCombined > 0 {
			out[i].PruningScore = fxToU16(fxRatio(y.combined[i], maxCombined))
		}
	}
	return out, nil
}

func runYuma(in *EpochInput) (*yuma, error) {
	n := len(in.Neurons)
	if n > 65536 || in.Kappa > 65535 || in.BondsPenalty > 65535 || in.BondsMovingAverage > 1_000_000 {
		return nil, ErrEpochInput
	}
	nr := in.Neurons
	y := &yuma{
		active: make([]bool, n), permit: make([]bool, n),
		ranks: make([]fx, n), trust: make([]fx, n), consensus: make([]fx, n), incentive: make([]fx, n),
		dividends: make([]fx, n), validatorTrust: make([]fx, n),
		emission: make([]uint64, n), serverEmission: make([]uint64, n), validatorEmission: make([]uint64, n),
		combined: make([]fx, n), bonds: make([][]Entry, n),
	}
	// Step 1: activity.
	for i, x := range nr {
		y.active[i] = !(x.LastUpdate < in.Block && in.Block-x.LastUpdate > in.ActivityCutoff)
	}
	// Step 2: stake.
	var totalStake uint64
	for _, x := range nr {
		if totalStake+x.Stake < totalStake {
			return nil, ErrEpochInput
		}
		totalStake += x.Stake
	}
	s := make([]fx, n)
	for i, x := range nr {
		s[i] = fxRatio(x.Stake, totalStake)
	}
	// Step 3: new permits: the top k by stake, ties to the higher uid.
	k := in.MaxAllowedValidators
	if uint64(n) <= k {
		for i := range y.permit {
			y.permit[i] = true
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
			y.permit[i] = true
		}
	}
	// Step 4: active stake.
	a := make([]fx, n)
	for i := range a {
		if y.active[i] && nr[i].ValidatorPermit {
			a[i] = s[i]
		}
	}
	normalize(a)
	// Step 5: weights, masked and row-normalized.
	W := make([][]fxEntry, n)
	for i, x := range nr {
		if !x.ValidatorPermit {
			continue
		}
		var sum uint64
		for _, e := range x.Weights {
			if int(e.UID) != i && int(e.UID) < n && x.LastUpdate > nr[e.UID].RegisteredAt {
				sum += uint64(e.Value)
			}
		}
		if sum == 0 {
			continue
		}
		row := make([]fxEntry, 0, len(x.Weights))
		for _, e := range x.Weights {
			if e.Value != 0 && int(e.UID) != i && int(e.UID) < n && x.LastUpdate > nr[e.UID].RegisteredAt {
				row = append(row, fxEntry{uint32(e.UID), fxRatio(uint64(e.Value), sum)})
			}
		}
		W[i] = row
	}
	// Step 6: preranks.
	Q := make([]fx, n)
	for i, row := range W {
		if a[i] == 0 {
			continue
		}
		for _, e := range row {
			Q[e.col] += fxMul(e.v, a[i])
		}
	}
	// Step 7: κ-weighted median consensus per column over validators with
	// active stake, counting a validator without an entry as scoring 0.
	var totalActive uint64
	for _, x := range a {
		totalActive += x
	}
	minority := fxOne - fxRatio(in.Kappa, 65535)
	type vote struct{ w, stake fx }
	cols := make([][]vote, n)
	colStake := make([]uint64, n)
	for i, row := range W {
		if a[i] == 0 {
			continue
		}
		for _, e := range row {
			cols[e.col] = append(cols[e.col], vote{e.v, a[i]})
			colStake[e.col] += a[i]
		}
	}
	C := y.consensus
	if totalActive > 0 {
		for j, votes := range cols {
			zeroStake := totalActive - colStake[j]
			if zeroStake > 0 && zeroStake > minority {
				continue // C_j = 0
			}
			sort.Slice(votes, func(p, q int) bool { return votes[p].w < votes[q].w })
			cum := zeroStake
			found := false
			for p := 0; p < len(votes); {
				w := votes[p].w
				for p < len(votes) && votes[p].w == w {
					cum += votes[p].stake
					p++
				}
				if cum > minority {
					C[j], found = w, true
					break
				}
			}
			if !found && len(votes) > 0 {
				C[j] = votes[len(votes)-1].w
			}
		}
	}
	// Steps 8–10: clipping, validator trust, ranks, trust, incentive.
	Wc := make([][]fxEntry, n)
	r := make([]fx, n)
	for i, row := range W {
		if row == nil {
			continue
		}
		clipped := make([]fxEntry, len(row))
		var vt fx
		for p, e := range row {
			v := min(e.v, C[e.col])
			clipped[p] = fxEntry{e.col, v}
			vt += v
			if a[i] != 0 {
				r[e.col] += fxMul(v, a[i])
			}
		}
		Wc[i] = clipped
		y.validatorTrust[i] = vt
	}
	for j := range r {
		if Q[j] != 0 {
			y.trust[j] = fxRatio(r[j], Q[j])
		}
	}
	copy(y.ranks, r)
	normalize(y.ranks)
	copy(y.incentive, y.ranks)
	// Step 11: bonds.
	B := make([][]fxEntry, n)
	bCol := make([]uint64, n)
	for _, x := range nr {
		for _, e := range x.Bonds {
			if int(e.UID) < n && e.Value != 0 && x.LastUpdate > nr[e.UID].RegisteredAt {
				bCol[e.UID] += uint64(e.Value)
			}
		}
	}
	for i, x := range nr {
		var row []fxEntry
		for _, e := range x.Bonds {
			if int(e.UID) < n && e.Value != 0 && x.LastUpdate > nr[e.UID].RegisteredAt {
				row = append(row, fxEntry{uint32(e.UID), fxRatio(uint64(e.Value), bCol[e.UID])})
			}
		}
		sortFx(row)
		B[i] = row
	}
	rho := fxRatio(in.BondsPenalty, 65535)
	dCol := make([]uint64, n)
	dB := make([][]fxEntry, n)
	for i, row := range W {
		if row == nil || a[i] == 0 {
			continue
		}
		var out []fxEntry
		for p, e := range row {
			h := e.v - fxMul(rho, e.v-Wc[i][p].v)
			if h == 0 {
				continue
			}
			d := fxMul(h, a[i])
			if d == 0 {
				continue
			}
			out = append(out, fxEntry{e.col, d})
			dCol[e.col] += d
		}
		sortFx(out)
		dB[i] = out
	}
	for _, row := range dB {
		for p, e := range row {
			row[p].v = fxRatio(e.v, dCol[e.col])
		}
	}
	alpha := fxOne - fxRatio(in.BondsMovingAverage, 1_000_000)
	M := make([][]fxEntry, n)
	mCol := make([]uint64, n)
	for i := range nr {
		merged := mergeEMA(dB[i], B[i], alpha)
		for _, e := range merged {
			mCol[e.col] += e.v
		}
		M[i] = merged
	}
	for _, row := range M {
		for p, e := range row {
			row[p].v = fxRatio(e.v, mCol[e.col])
		}
	}
	// Step 12: dividends.
	for i, row := range M {
		var d fx
		for _, e := range row {
			d += fxMul(e.v, y.incentive[e.col])
		}
		y.dividends[i] = d
	}
	normalize(y.dividends)
	// Step 13: emission split.
	var sigma uint64
	for i := range nr {
		sigma += y.incentive[i] + y.dividends[i]
	}
	server, validator := make([]fx, n), make([]fx, n)
	if sigma > 0 {
		for i := range nr {
			server[i] = fxRatio(y.incentive[i], sigma)
			validator[i] = fxRatio(y.dividends[i], sigma)
			y.combined[i] = fxRatio(y.incentive[i]+y.dividends[i], sigma)
		}
	} else if totalActive > 0 {
		copy(validator, a)
		copy(y.combined, a)
	} else {
		copy(validator, s)
		copy(y.combined, s)
	}
	for i := range nr {
		y.serverEmission[i] = fxScale(server[i], in.Emission)
		y.validatorEmission[i] = fxScale(validator[i], in.Emission)
		y.emission[i] = fxScale(y.combined[i], in.Emission)
	}
	// Step 14: bonds for storage, column-max-upscaled to u16.
	colMax := make([]fx, n)
	for _, row := range M {
		for _, e := range row {
			colMax[e.col] = max(colMax[e.col], e.v)
		}
	}
	for i, x := range nr {
		switch {
		case y.permit[i]:
			var row []Entry
			for _, e := range M[i] {
				if colMax[e.col] == 0 {
					continue
				}
				if q := fxToU16(fxRatio(e.v, colMax[e.col])); q > 0 {
					row = append(row, Entry{UID: uint16(e.col), Value: q})
				}
			}
			y.bonds[i] = row
		case x.ValidatorPermit:
			y.bonds[i] = nil
		default:
			y.bonds[i] = x.Bonds
		}
	}
	return y, nil
}

func sortFx(row []fxEntry) {
	sort.Slice(row, func(p, q int) bool { return row[p].col < row[q].col })
}

// mergeEMA returns α·d + (1−α)·b over the union of two column-sorted rows.
func mergeEMA(d, b []fxEntry, alpha fx) []fxEntry {
	out := make([]fxEntry, 0, len(d)+len(b))
	beta := fxOne - alpha
	p, q := 0, 0
	for p < len(d) || q < len(b) {
		switch {
		case q == len(b) || (p < len(d) && d[p].col < b[q].col):
			out = append(out, fxEntry{d[p].col, fxMul(alpha, d[p].v)})
			p++
		case p == len(d) || b[q].col < d[p].col:
			out = append(out, fxEntry{b[q].col, fxMul(beta, b[q].v)})
			q++
		default:
			out = append(out, fxEntry{d[p].col, fxMul(alpha, d[p].v) + fxMul(beta, b[q].v)})
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
