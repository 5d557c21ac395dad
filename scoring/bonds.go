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
	for i := range in.Neurons {
		if e.rowDiv[i].r == 0 || e.a[i] != 0 {
			continue
		}
		var v Fixed
		for _, en := range in.Weights[i] {
			v += min(e.weight(i, en), y.Consensus[en.UID])
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
	// Each source with a new permit gets room for its entries of M, from
	// first[k]; next[k] is where its next stored entry goes.
	sources := len(e.sources)
	store := make([]bool, sources)
	first, next := make([]int, sources), make([]int, sources)
	size := 0
	for k, s := range e.sources {
		if y.ValidatorPermit[s.row] {
			store[k], first[k], next[k] = true, size, size
			size += s.entries
		}
	}
	stored := make([]Entry, size)
	d := make([]Fixed, sources)
	for j := range n {
		begin, end := e.mStart[j], e.mStart[j+1]
		m, srcs := e.m[begin:end], e.mSrc[begin:end]
		srcs = srcs[:len(m)]
		inc, most := y.Incentive[j], e.mMax[j]
		upscale := newScaledDivider(65535, uint64(most))
		for k, x := range m {
			s := srcs[k]
			d[s] += mul(x, inc)
			if store[s] && x != 0 {
				v := uint64(65535) // the column's largest entry
				if x != most {
					v = uint64(upscale.div(uint64(x)))
				}
				stored[next[s]] = Entry{UID: uint16(j), Value: uint16(v)}
				next[s] += int(min(v, 1)) // zeros are dropped
			}
		}
	}
	for k, s := range e.sources {
		y.Dividends[s.row] = d[k]
	}
	normalize(y.Dividends)
	for i, x := range in.Neurons {
		switch {
		case y.ValidatorPermit[i]:
			y.Bonds[i] = stored[:0:0]
		case x.ValidatorPermit:
			y.Bonds[i] = nil
		default:
			y.Bonds[i] = rowOf(in.Bonds, i)
		}
	}
	for k, s := range e.sources {
		if store[k] {
			y.Bonds[s.row] = stored[first[k]:next[k]:next[k]]
		}
	}
}
