package scoring

// This file holds what follows the column pass: validator trust of the
// permit holders without active stake (step 9), dividends (step 12) and
// the bonds to store (step 14).

// idleTrust is step 9, V_i = Σ_j W̃_ij, for the permit holders with kept
// weights that the column pass did not read: those without active stake.
func (e *epoch) idleTrust() {
	in, y := e.in, e.out
	if e.aSum == 0 { // no consensus: every W̃ is 0
		return
	}
	for i, x := range in.Neurons {
		if e.rowDiv[i].r == 0 || e.a[i] != 0 {
			continue
		}
		c := entryMaker{div: e.rowDiv[i], self: i, lastUpdate: x.LastUpdate, freshWeights: e.freshWeights[i], regAt: e.regAt}
		var v Fixed
		for _, en := range in.Weights[i] {
			v += min(c.weight(en), y.Consensus[en.UID])
		}
		y.ValidatorTrust[i] = v
	}
}

// bonds is steps 12 and 14, from M as the column pass left it, column by
// column: the dividends d_i = Σ_j M_ij I_j, normalized, and the bonds to
// store: column-max upscaling quantizes q_ij = floor(65535·M_ij /
// max_i M_ij) for the uids with a new permit, zeros dropped; uids that
// lose their permit store nothing and everyone else keeps the input row.
func (e *epoch) bonds() {
	in, n, y := e.in, e.n, e.out
	store := y.ValidatorPermit
	// Each row with a new permit gets room for its entries of M, from
	// first[i]; next[i] is where its next stored entry goes.
	first, next := make([]int, n), make([]int, n)
	size := 0
	for _, s := range e.sources {
		if store[s.row] {
			first[s.row], next[s.row] = size, size
			size += s.entries
		}
	}
	stored := make([]Entry, size)
	d := y.Dividends
	for j := range n {
		begin, end := e.mStart[j], e.mStart[j+1]
		m, rows := e.m[begin:end], e.mRow[begin:end]
		rows = rows[:len(m)]
		inc, most := y.Incentive[j], e.mMax[j]
		upscale := newScaledDivider(65535, uint64(most))
		for k, x := range m {
			i := rows[k]
			d[i] += mul(x, inc)
			if store[i] && x != 0 {
				v := uint64(65535) // the column's largest entry
				if x != most {
					v = uint64(upscale.div(uint64(x)))
				}
				stored[next[i]] = Entry{UID: uint16(j), Value: uint16(v)}
				next[i] += int(min(v, 1)) // zeros are dropped
			}
		}
	}
	normalize(d)
	for i, x := range in.Neurons {
		switch {
		case store[i]:
			y.Bonds[i] = stored[first[i]:next[i]:next[i]]
		case x.ValidatorPermit:
			y.Bonds[i] = nil
		default:
			y.Bonds[i] = rowOf(in.Bonds, i)
		}
	}
}
