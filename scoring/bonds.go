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

// prepareStorage makes room for step 14, the bonds to store: each
// source with a new permit gets room for its entries of M, and the others
// all write to one spare slot past the end without advancing, so that
// storing does not branch.
func (e *epoch) prepareStorage() {
	sources := len(e.sources)
	e.storeFirst, e.storeNext, e.storeAdvance = reuse(e.prev.storeFirst, sources), reuse(e.prev.storeNext, sources), reuse(e.prev.storeAdvance, sources)
	size := 0
	for k, s := range e.sources {
		if e.out.ValidatorPermit[s.row] {
			e.storeFirst[k], e.storeAdvance[k] = size, 1
			size += room(s.entries, 4) // an Entry takes 4 bytes
		}
	}
	for k := range e.storeFirst {
		if e.storeAdvance[k] == 0 {
			e.storeFirst[k] = size
		}
	}
	copy(e.storeNext, e.storeFirst)
	e.stored = make([]Entry, size+1)
	e.allStore = true
	for _, a := range e.storeAdvance {
		e.allStore = e.allStore && a == 1
	}
	e.denseStride = 0
	if e.allStore && e.uniform && sources != 0 && !e.sparseStorage {
		dense := true
		for _, s := range e.sources {
			dense = dense && s.entries == e.n
		}
		for _, b := range e.columnBound {
			dense = dense && b == sources
		}
		if dense { // storeFirst[k] is k·room(n)
			e.denseStride = room(e.n, 4)
		}
	}
}

// finishDenseStorage ends the column pass's storage of dense rows (see
// epoch.denseStride): each row holds one entry per column, and the zero
// ones, if any, are left out.
func (e *epoch) finishDenseStorage() {
	for k, first := range e.storeFirst {
		row := e.stored[first : first+e.n]
		kept := len(row)
		if e.storeZeros {
			kept = 0
			for _, en := range row {
				row[kept] = en
				kept += oneIf(en.Value != 0)
			}
		}
		e.storeNext[k] = first + kept
	}
}

// bonds is step 12, the dividends d_i = Σ_j M_ij I_j, normalized, from M
// as the column pass left it, and the end of step 14: the rows the column
// pass stored for the uids with a new permit; uids that lose their permit
// store nothing and everyone else keeps the input row.
func (e *epoch) bonds() {
	in, n, y := e.in, e.n, e.out
	e.dividends = reuse(e.prev.dividends, len(e.sources))
	d := e.dividends
	for j := range n {
		begin, end := e.mStart[j], e.mEnd[j]
		if at := e.mSrc[j]; at >= 0 {
			addDividends(e.m[begin:end], e.srcLists[at:at+end-begin], y.Incentive[j], d)
		} else {
			addAllDividends(e.m[begin:end], y.Incentive[j], d)
		}
	}
	for k, s := range e.sources {
		y.Dividends[s.row] = d[k]
	}
	normalize(y.Dividends)
	for i, x := range in.Neurons {
		switch {
		case y.ValidatorPermit[i]:
			y.Bonds[i] = e.stored[:0:0]
		case x.ValidatorPermit:
			y.Bonds[i] = nil
		default:
			y.Bonds[i] = rowOf(in.Bonds, i)
		}
	}
	for k, s := range e.sources {
		if e.storeAdvance[k] != 0 {
			first, next := e.storeFirst[k], e.storeNext[k]
			y.Bonds[s.row] = e.stored[first:next:next]
		}
	}
}

// addDividends adds M_ij I_j to the dividends d of the source of each
// entry of column j.
//
//go:noinline
func addDividends(m []entry, srcs []uint16, inc Fixed, d []Fixed) {
	srcs = srcs[:len(m)]
	for k, x := range m {
		d[srcs[k]] += mul(Fixed(x), inc)
	}
}

// addAllDividends is addDividends for a column with an entry from every
// source: entry k is source k's.
//
//go:noinline
func addAllDividends(m []entry, inc Fixed, d []Fixed) {
	d = d[:len(m)]
	for k, x := range m {
		d[k] += mul(Fixed(x), inc)
	}
}

// quantize is step 14 for a column of M whose largest entry is most > 0:
// column-max upscaling to q = floor(65535·M_ij/most), written to q.
//
//go:noinline
func quantize(m []entry, most Fixed, q []uint16) {
	q = q[:len(m)]
	upscale := newScaledDivider(65535, uint64(most))
	for k, x := range m {
		v := uint16(upscale.div(uint64(x)))
		if Fixed(x) == most {
			v = 65535
		}
		q[k] = v
	}
}

// storeAll is quantize and storeSome in one loop, for column j with an
// entry from every source, every one of which stores: entry k is source
// k's.
//
//go:noinline
func storeAll(m []entry, most Fixed, j uint16, stored []Entry, next []int) {
	next = next[:len(m)]
	upscale := newScaledDivider(65535, uint64(most))
	for k, x := range m {
		v := uint16(upscale.div(uint64(x)))
		if Fixed(x) == most {
			v = 65535
		}
		at := next[k]
		stored[at] = Entry{UID: j, Value: v}
		next[k] = at + oneIf(v != 0)
	}
}

// storeDense is storeAll for dense rows (see epoch.denseStride), with
// the divider {r, pre} multiplying by 65535/most: source k's bond in
// column j goes to k·stride+j, zero or not. pre comes third, so it
// arrives in CX (Go's register ABI), where the shift needs it.
//
//go:noinline
func storeDense(r uint64, most Fixed, pre uint, m []entry, stored []Entry, j uint16, stride int) {
	upscale := divider{r: r, pre: pre}
	at, uid := int(j), uint32(j)
	for _, x := range m {
		// 65535 for the largest, without a compare after the multiply
		// (x <= most < 2^63: top is 1 if x == most, else 0).
		top := uint32((uint64(most) - uint64(x) - 1) >> 63)
		v := uint32(uint16(upscale.div(uint64(x)))) | -top&0xffff
		// One 32-bit store: the compiler joins the halves of one value.
		en := uid | v<<16
		stored[at] = Entry{UID: uint16(en), Value: uint16(en >> 16)}
		at += stride
	}
}

// storeSome appends the non-zero q of column j to the stored rows of
// their sources srcs; the sources that do not store (advance 0) write to
// a spare slot without advancing.
//
//go:noinline
func storeSome(q, srcs []uint16, j uint16, stored []Entry, next, advance []int) {
	srcs = srcs[:len(q)]
	for k, v := range q {
		s := srcs[k]
		at := next[s]
		stored[at] = Entry{UID: j, Value: v}
		next[s] = at + oneIf(v != 0)&advance[s]
	}
}
