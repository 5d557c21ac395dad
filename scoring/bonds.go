package scoring

// This file holds steps 11, 12 and 14 of the epoch: bonds, dividends and
// the bonds to store.

// maskBonds is steps 11.1–11.2 up to the division: it checks every bond
// row and sums each column of the masked stored bonds (every row takes
// part, whatever its permits).
func (e *epoch) maskBonds() error {
	in, n := e.in, e.n
	e.bSum = make([]uint64, n)
	e.bClean = make([]bool, n)
	for i, x := range in.Neurons {
		row := rowOf(in.Bonds, i)
		prev, clean := -1, true
		for _, en := range row {
			j := int(en.UID)
			if j >= n || j <= prev {
				return rowError("bonds", i, row, n)
			}
			prev = j
			if x.LastUpdate > e.regAt[j] {
				e.bSum[j] += uint64(en.Value)
			} else {
				clean = false
			}
		}
		e.bClean[i] = clean
	}
	return nil
}

// bondColumn is what the bond pass needs of column j, kept together for
// the cache.
type bondColumn struct {
	c, inc Fixed   // C_j and I_j
	max    Fixed   // max_i M_ij so far
	delta  divider // ΔB_ij before normalization → its part of M_ij
	bond   divider // the stored B⁰_ij → its part of M_ij
}

// bonds is steps 11.3–11.5, 12 and 14, and step 9.
//
// Column-normalizing ΔB and B and then M = αΔB + (1−α)B makes column j
// of M sum to μ_j = α·[ΣΔB_·j > 0] + (1−α)·[ΣB_·j > 0], so the
// normalized M is ΔB_ij·α/(μ_j ΣΔB_·j) + B_ij·(1−α)/(μ_j ΣB_·j): one
// multiplier per column and matrix, and one pass merging each validator's
// weight row (for ΔB) with its bond row. That pass adds up the dividends
// d_i = Σ_j M_ij I_j, the column maxima and validator trust
// V_i = Σ_j W̃_ij, and keeps the rows of the uids with a new permit for
// storage: column-max upscaling then quantizes M_ij/max_i M_ij.
func (e *epoch) bonds() {
	in, n, y := e.in, e.n, e.out
	alpha := One - ratio(in.Params.BondsMovingAverage, 1_000_000)
	beta := One - alpha
	cols := make([]bondColumn, n)
	for j := range cols {
		var mu Fixed
		if e.dSum[j] > 0 {
			mu += alpha
		}
		if e.bSum[j] > 0 {
			mu += beta
		}
		cols[j] = bondColumn{
			c: y.Consensus[j], inc: y.Incentive[j],
			delta: newScaledDivider(uint64(ratio(uint64(alpha), uint64(mu))), e.dSum[j]),
			bond:  newScaledDivider(uint64(ratio(uint64(beta), uint64(mu))), e.bSum[j]),
		}
	}

	// Rows of M to store: those of the uids with a new permit, one after
	// another. Weight and bond rows usually share their uids, so the
	// longer of the two is the first guess at the room each needs, plus
	// room for one row to merge before its length is known.
	size, slack := 0, 0
	for i := range in.Neurons {
		if y.ValidatorPermit[i] {
			lw, lb := len(rowOf(in.Weights, i)), len(rowOf(in.Bonds, i))
			size += max(lw, lb)
			slack = max(slack, min(lw, lb))
		}
	}
	size += slack
	keepUID, keepM := make([]uint16, size), make([]Fixed, size)
	keepOff := make([]int, n+1)
	nk := 0

	rho := ratio(in.Params.BondsPenalty, 65535)
	for i, x := range in.Neurons {
		var wrow []Entry
		if e.rowDiv[i].r != 0 { // a permit holder with kept weights
			wrow = in.Weights[i]
		}
		brow := rowOf(in.Bonds, i)
		lu, ai, store := x.LastUpdate, e.a[i], y.ValidatorPermit[i]
		wDiv, wClean, bClean := e.rowDiv[i], e.wClean[i], e.bClean[i]
		if need := nk + len(wrow) + len(brow); store && need > len(keepM) {
			grow := max(need, 2*len(keepM)) - len(keepM)
			keepUID = append(keepUID, make([]uint16, grow)...)
			keepM = append(keepM, make([]Fixed, grow)...)
		}
		var v, d Fixed // validator trust (step 9) and dividends (step 12)
		b := 0
		for _, en := range wrow {
			j := en.UID
			for ; b < len(brow) && brow[b].UID < j; b++ { // a bond without a weight
				bj := brow[b].UID
				col := &cols[bj]
				m := bondPart(col, bClean, lu, e.regAt[bj], brow[b].Value)
				d += mul(m, col.inc)
				col.max = max(col.max, m)
				if store && m != 0 {
					keepUID[nk], keepM[nk] = bj, m
					nk++
				}
			}
			col := &cols[j]
			w := wDiv.div(uint64(en.Value))
			if !wClean && (int(j) == i || !e.kept(lu, en)) {
				w = 0
			}
			wc := min(w, col.c)
			v += wc
			h := wc // with ρ = 1, H = W̃
			if rho != One {
				h = w - mul(rho, w-wc)
			}
			m := col.delta.div(uint64(mul(h, ai)))
			if b < len(brow) && brow[b].UID == j {
				m += bondPart(col, bClean, lu, e.regAt[j], brow[b].Value)
				b++
			}
			d += mul(m, col.inc)
			col.max = max(col.max, m)
			if store && m != 0 {
				keepUID[nk], keepM[nk] = j, m
				nk++
			}
		}
		for ; b < len(brow); b++ {
			bj := brow[b].UID
			col := &cols[bj]
			m := bondPart(col, bClean, lu, e.regAt[bj], brow[b].Value)
			d += mul(m, col.inc)
			col.max = max(col.max, m)
			if store && m != 0 {
				keepUID[nk], keepM[nk] = bj, m
				nk++
			}
		}
		y.ValidatorTrust[i] = v
		y.Dividends[i] = d
		keepOff[i+1] = nk
	}
	normalize(y.Dividends)

	// Step 14: store q_ij = floor(65535·M_ij / max_i M_ij) for new permit
	// holders, nothing for uids that lose their permit, and the input row
	// of everyone else.
	upscale := make([]divider, n)
	for j := range cols {
		upscale[j] = newScaledDivider(65535, uint64(cols[j].max))
	}
	stored := make([]Entry, nk)
	ns := 0
	for i, x := range in.Neurons {
		switch {
		case y.ValidatorPermit[i]:
			start := ns
			for k := keepOff[i]; k < keepOff[i+1]; k++ {
				j, m := keepUID[k], keepM[k]
				v := uint64(65535) // the column's largest entry
				if m != cols[j].max {
					v = uint64(upscale[j].div(uint64(m)))
				}
				stored[ns] = Entry{UID: j, Value: uint16(v)}
				ns += int(min(v, 1)) // zeros are dropped
			}
			y.Bonds[i] = stored[start:ns:ns]
		case x.ValidatorPermit:
			y.Bonds[i] = nil
		default:
			y.Bonds[i] = rowOf(in.Bonds, i)
		}
	}
}

// bondPart is M_ij's part from the stored bond B⁰_ij, 0 when masked: the
// bond was set before j's holder registered.
func bondPart(col *bondColumn, clean bool, lastUpdate, registeredAt uint64, value uint16) Fixed {
	if clean || lastUpdate > registeredAt {
		return col.bond.div(uint64(value))
	}
	return 0
}
