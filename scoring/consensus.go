package scoring

// This file holds the column pass: steps 6–11 of the epoch, column by
// column. Each column's entries — the masked weights of the validators
// with active stake and the kept bonds of every row — are gathered from
// their rows a block of columns at a time, so that a block stays in the
// cache while each of its columns gets its preranks, κ-weighted median
// consensus, clipped ranks, validator trust and its column of the bonds
// EMA, M.

// vote is a score with the stake behind it, as the κ-weighted median
// reads them.
type vote struct{ w, stake Fixed }

// entry is one entry of a column in the column pass, packed in 8 bytes:
// which source row i is, the kept u16 weight W⁰_ij (0 when i has no kept
// weight there, for example a bond holder without a permit) and the kept
// stored bond B⁰_ij (0 when there is none or it is outdated).
type entry uint64

// columnScratch is the memory the column pass works in for one column at
// a time, each buffer as long as the largest column.
type columnScratch struct {
	votes  []vote   // the column's scores and stakes
	deltas []Fixed  // ΔB of the column's entries
	srcs   []uint16 // the sources of the column's entries
	q      []uint16 // the column's quantized bonds
	// bonds holds the kept bonds of a block of dense rows (see
	// gatherScores), laid out like its entries.
	bonds  []uint16
	median medianScratch
	// stakesInPlace: votes[k].stake is source k's stake for every source,
	// as spreadVotes left it for a column with an entry from each.
	stakesInPlace bool
}

// entrySize is the size of an entry in bytes.
const entrySize = 8

// newEntry packs an entry of source src.
func newEntry(src, weight, bond uint16) entry {
	return entry(src) | entry(weight)<<16 | entry(bond)<<32
}

// src is the entry's index in epoch.sources; weight and bond are the
// kept u16 weight and bond.
func (en entry) src() uint16    { return uint16(en) }
func (en entry) weight() uint16 { return uint16(en >> 16) }
func (en entry) bond() uint16   { return uint16(en >> 32) }

// source is a row the column pass reads: a validator with active stake
// and kept weights (votes), a bond holder, or both.
type source struct {
	row   int
	votes bool
	// nextWeight and nextBond are where the row's weights and bonds
	// resume in the next block of columns.
	nextWeight, nextBond int
	// entries bounds the row's entries in the column pass, its entries
	// of M: exact when its weights and bonds are on the same uids.
	entries int
}

// blockEntries bounds the entries gathered at once: 32,768 entries take
// 256 KB, which stays in the L2 cache, and give each row long runs to
// read (short runs defeat the hardware prefetcher).
const blockEntries = 32768

// consensus is the column pass: steps 6–10, 11.2–11.5 and 14, column by
// column (see column). It fills the consensus, ranks (before
// normalization), validator trust of the voters and the preranks, keeps
// M column by column for the dividends, and stores the bonds of the uids
// with a new permit.
func (e *epoch) consensus() {
	in, n := e.in, e.n
	e.minority = uint64(One - ratio(in.Params.Kappa, 65535))
	e.rho = ratio(in.Params.BondsPenalty, 65535)
	alpha := One - ratio(in.Params.BondsMovingAverage, 1_000_000)
	beta := One - alpha
	for k := range e.emaShares {
		var mu Fixed
		if k&deltaNonZero != 0 {
			mu += alpha
		}
		if k&bondsNonZero != 0 {
			mu += beta
		}
		e.emaShares[k] = [2]uint64{uint64(ratio(uint64(alpha), uint64(mu))), uint64(ratio(uint64(beta), uint64(mu)))}
	}
	e.prerank = reuse(e.prev.prerank, n)
	// Column j's M_ij go to m[mStart[j]:mEnd[j]]. The entries of a block
	// of columns are gathered into buf, each column at an odd number of
	// cache lines from the last (see room), and the column pass writes
	// their M_ij to m. buf is m itself, the entries overwritten in place,
	// when m is warm (from a Workspace) or one block. Otherwise buf is a
	// block buffer, reused from block to block, and m is written in
	// order, without room: fresh memory costs less written in order than
	// scattered, and the less of it the better.
	e.mStart = reuse(e.prev.mStart, n+1)
	most, total := 0, 0
	for _, b := range e.columnBound {
		total += columnRoom(b)
		most = max(most, b)
	}
	aliased := e.prev != e || total <= blockEntries
	for j, b := range e.columnBound {
		if aliased {
			b = columnRoom(b)
		}
		e.mStart[j+1] = e.mStart[j] + b
	}
	// Not cleared: the column pass reads only the entries the gather wrote.
	e.m = e.prev.m[:0]
	if cap(e.m) < e.mStart[n] {
		e.m = make([]entry, e.mStart[n])
	}
	e.m = e.m[:e.mStart[n]]
	e.mSrc = reuse(e.prev.mSrc, n)
	e.srcLists = e.prev.srcLists[:0]
	e.prepareStorage()
	e.srcStake = reuse(e.prev.srcStake, len(e.sources))
	e.srcTrust = reuse(e.prev.srcTrust, len(e.sources))
	e.srcDiv = reuse(e.prev.srcDiv, len(e.sources))
	for k, s := range e.sources {
		e.srcStake[k] = e.a[s.row]
		e.srcDiv[k] = e.rowDiv[s.row]
		e.srcStakeSum += uint64(e.srcStake[k])
	}

	old := &e.prev.scratch
	e.scratch = columnScratch{votes: reuse(old.votes, most), deltas: reuse(old.deltas, most), srcs: reuse(old.srcs, most), q: reuse(old.q, most)}
	for k := range e.scratch.median.votes {
		e.scratch.median.votes[k] = reuse(old.median.votes[k], most)
	}
	buf := e.m
	if !aliased {
		buf = make([]entry, max(blockEntries, columnRoom(most)))
	}
	dense := e.denseStride != 0
	if dense {
		// Every column has an entry from every source, in order: the
		// votes' stakes stay in place from column to column.
		e.scratch.bonds = reuse(old.bonds, max(blockEntries, columnRoom(most)))
		for k, a := range e.srcStake {
			e.scratch.votes[k].stake = a
		}
	}
	// fill[j] is where column j's next entry goes in buf; after the
	// column pass, where its M_ij end in m.
	fill := reuse(e.prev.mEnd, n)
	e.mEnd = fill
	for lo := 0; lo < n; {
		// The block is columns lo..hi-1, from first in buf.
		first := 0
		if aliased {
			first = e.mStart[lo]
		}
		hi, size := lo, first
		complete := e.uniform // every source has an entry in every column
		for hi < n && (hi == lo || size-first+columnRoom(e.columnBound[hi]) <= blockEntries) {
			fill[hi] = size
			size += columnRoom(e.columnBound[hi])
			complete = complete && e.columnBound[hi] == len(e.sources)
			hi++
		}
		if complete {
			// Column j's entries are at fill[j]: one per source, in
			// order, every column taking the same room.
			stride := columnRoom(len(e.sources))
			for k := range e.sources {
				if dense {
					e.gatherScores(k, lo, hi, stride, buf[first:], e.scratch.bonds)
				} else {
					e.gatherComplete(k, lo, hi, stride, buf[first:])
				}
			}
			for j := lo; j < hi; j++ {
				fill[j] += len(e.sources)
			}
		} else {
			for k := range e.sources {
				e.gather(k, hi, fill, buf)
			}
		}
		start := first
		for j := lo; j < hi; j++ {
			entries := buf[start:fill[j]]
			m := e.m[e.mStart[j] : e.mStart[j]+len(entries)]
			if dense {
				at := start - first
				e.denseColumn(j, entries, e.scratch.bonds[at:at+len(entries)], m)
			} else {
				e.column(j, entries, m)
			}
			start += columnRoom(e.columnBound[j])
			fill[j] = e.mStart[j] + len(entries)
		}
		lo = hi
	}
	if e.denseStride != 0 {
		e.finishDenseStorage()
	}
	for k, s := range e.sources {
		e.out.ValidatorTrust[s.row] = e.srcTrust[k]
	}
}

// gather moves the entries of source k in the columns below hi to their
// columns, at fill[j]: the kept u16 weight W⁰_ij if the source votes and
// the kept bond B⁰_ij, merged by uid. Entries with neither are left out.
func (e *epoch) gather(k, hi int, fill []int, entries []entry) {
	s := &e.sources[k]
	i := s.row
	var wrow []Entry
	if s.votes {
		wrow = e.in.Weights[i]
	}
	brow := rowOf(e.in.Bonds, i)
	qw, qb := s.nextWeight, s.nextBond
	src := uint16(k)
	fresh := e.freshWeights[i] && e.freshBonds[i]
	for {
		// Weights and bonds on the same uids, the usual case, up to the
		// self-weight or the end of the block.
		if fresh {
			stop := hi
			if i < hi && (qw == len(wrow) || int(wrow[qw].UID) <= i) {
				stop = i
			}
			taken := gatherFresh(wrow[qw:], brow[qb:], stop, src, fill, entries)
			qw, qb = qw+taken, qb+taken
		}
		// One entry, or the whole row when it has outdated entries.
		jw, jb := uidBelow(wrow, qw, hi), uidBelow(brow, qb, hi)
		var en entry
		var j int
		switch {
		case jw == hi && jb == hi:
			s.nextWeight, s.nextBond = qw, qb
			return
		case jw == jb:
			j = jw
			en = newEntry(src, e.keptWeight(i, wrow[qw]), e.bond(i, brow[qb]))
			qw, qb = qw+1, qb+1
		case jw < jb:
			j = jw
			en = newEntry(src, e.keptWeight(i, wrow[qw]), 0)
			qw++
		default:
			j = jb
			en = newEntry(src, 0, e.bond(i, brow[qb]))
			qb++
		}
		if en.weight() != 0 || en.bond() != 0 {
			entries[fill[j]] = en
			fill[j]++
		}
	}
}

// gatherComplete is gather for a block of columns lo..hi-1 in which every
// source has an entry in every column and none is outdated (see
// epoch.uniform): the source's row holds uids lo..hi-1 in order, so
// source k's entry in column j goes to (j−lo)·stride+k, with its
// self-weight masked to 0. An entry of zeros is harmless in the column
// pass: it scores 0 and adds nothing.
func (e *epoch) gatherComplete(k, lo, hi, stride int, entries []entry) {
	s := &e.sources[k]
	i, src := s.row, entry(k)
	brow := rowOf(e.in.Bonds, i)[s.nextBond:]
	brow = brow[:min(hi-lo, len(brow))] // one entry per column
	s.nextBond += len(brow)
	if !s.votes {
		at := k
		for _, be := range brow {
			entries[at] = src | entry(be.Value)<<32
			at += stride
		}
		return
	}
	wrow := e.in.Weights[i][s.nextWeight:]
	wrow = wrow[:min(hi-lo, len(wrow))]
	s.nextWeight += len(wrow)
	gatherPairs(wrow, brow, entries[k:], stride, src)
	if lo <= i && i < hi { // mask the self-weight
		entries[(i-lo)*stride+k] &^= 0xffff << 16
	}
}

// gatherScores is gatherComplete for dense rows (see epoch.denseStride):
// instead of entries it writes source k's scores W_ij, as Fixed, to
// entries and its kept bonds to bonds, at the same places. A score is 0
// for a source that does not vote and for the self-weight.
func (e *epoch) gatherScores(k, lo, hi, stride int, entries []entry, bonds []uint16) {
	s := &e.sources[k]
	i := s.row
	brow := rowOf(e.in.Bonds, i)[s.nextBond:]
	brow = brow[:min(hi-lo, len(brow))] // one entry per column
	s.nextBond += len(brow)
	if !s.votes {
		at := k
		for _, be := range brow {
			entries[at], bonds[at] = 0, be.Value
			at += stride
		}
		return
	}
	wrow := e.in.Weights[i][s.nextWeight:]
	wrow = wrow[:min(hi-lo, len(wrow))]
	s.nextWeight += len(wrow)
	d := e.srcDiv[k]
	scorePairs(d.r, stride, d.pre, wrow, brow, entries[k:], bonds[k:])
	if lo <= i && i < hi { // mask the self-weight
		entries[(i-lo)*stride+k] = 0
	}
}

// scorePairs writes the scores of the weights ws by the divider {r, pre}
// to entries, as Fixed, and the bonds bs on the same uids to bonds, one
// every stride places. pre comes third, so it arrives in CX (Go's
// register ABI), where the shift needs it.
//
//go:noinline
func scorePairs(r uint64, stride int, pre uint, ws, bs []Entry, entries []entry, bonds []uint16) {
	d := divider{r: r, pre: pre}
	bs = bs[:len(ws)]
	at := 0
	for q := range ws {
		// Each Entry in one 32-bit load: its value is the high half.
		w, b := ws[q], bs[q]
		wb := uint32(w.UID) | uint32(w.Value)<<16
		bb := uint32(b.UID) | uint32(b.Value)<<16
		entries[at] = entry(d.div(uint64(wb >> 16)))
		bonds[at] = uint16(bb >> 16)
		at += stride
	}
}

// gatherPairs writes the entries of source src, its weights ws and the
// bonds bs on the same uids, to entries, one every stride entries. Kept
// out of line, so that its loop has the registers to itself.
//
//go:noinline
func gatherPairs(ws, bs []Entry, entries []entry, stride int, src entry) {
	bs = bs[:len(ws)]
	at := 0
	for q := range ws {
		// Each Entry in one 32-bit load: its value is the high half.
		w, b := ws[q], bs[q]
		wb := uint32(w.UID) | uint32(w.Value)<<16
		bb := uint32(b.UID) | uint32(b.Value)<<16
		entries[at] = src | entry(wb&^0xffff) | entry(bb>>16)<<32
		at += stride
	}
}

// uidBelow returns the uid of row[q] if there is one below hi, else hi.
func uidBelow(row []Entry, q, hi int) int {
	if q < len(row) && int(row[q].UID) < hi {
		return int(row[q].UID)
	}
	return hi
}

// gatherFresh is gather's loop over the leading entries that ws and bs
// share below uid stop, for a row without outdated weights or bonds and
// without its self-weight: no entry is masked. It returns how many it
// took; those with a zero weight and bond take no room in their column.
func gatherFresh(ws, bs []Entry, stop int, src uint16, fill []int, entries []entry) (taken int) {
	n := min(len(ws), len(bs))
	ws, bs = ws[:n], bs[:n]
	for k, we := range ws {
		j, bond := we.UID, bs[k].Value
		if j != bs[k].UID || int(j) >= stop {
			return k
		}
		at := fill[j]
		entries[at] = newEntry(src, we.Value, bond)
		fill[j] = at + oneIf(we.Value|bond != 0)
	}
	return n
}

// firstFrom returns the index of the first entry of a row on a uid at
// least uid.
func firstFrom(row []Entry, uid int) int {
	lo, hi := 0, len(row)
	for lo < hi {
		mid := int(uint(lo+hi) / 2)
		if int(row[mid].UID) < uid {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// room returns the room for n entries of size bytes each in a buffer of
// rows or columns written side by side: n rounded up to an odd number of
// cache lines. Regions whose starts lie a multiple of 4 KB apart share a
// set of the L1 cache, which holds only 8 of them; odd strides spread
// the regions written at the same time over all the sets.
func room(n, size int) int {
	const line = 64
	lines := (n*size+line-1)/line | 1
	return lines * line / size
}

// columnRoom returns the room for a column of at most n entries in
// epoch.m: room(n) for a column of 64 entries or more, which the gather
// writes side by side with others, else n, so that the padding of many
// small columns does not swell m.
func columnRoom(n int) int {
	if n < 64 {
		return n
	}
	return room(n, entrySize)
}

// keptWeight is the u16 weight W⁰_ij of row i, a permit holder, if
// step 5 keeps it: 0 for a self-weight or an outdated one.
func (e *epoch) keptWeight(i int, en Entry) uint16 {
	if int(en.UID) == i || !e.freshWeights[i] && e.in.Neurons[i].LastUpdate <= e.regAt[en.UID] {
		return 0
	}
	return en.Value
}

// weight is W_ij for a weight of row i, a permit holder: the kept u16
// weight over the row's sum of kept weights.
func (e *epoch) weight(i int, en Entry) Fixed {
	return e.rowDiv[i].div(uint64(e.keptWeight(i, en)))
}

// bond is the kept stored bond B⁰_ij of row i: 0 when it is outdated.
func (e *epoch) bond(i int, en Entry) uint16 {
	if !e.freshBonds[i] && e.in.Neurons[i].LastUpdate <= e.regAt[en.UID] {
		return 0
	}
	return en.Value
}

// Indexes of epoch.emaShares: which of column j's ΔB and B are non-zero.
const (
	deltaNonZero = 1 << iota
	bondsNonZero
)

// column is steps 6–10, 11.2–11.5 and 14 for column j, from its entries
// (in row order):
//
//   - the prerank Q_j = Σ_i W_ij a_i;
//   - the consensus C_j, the κ-weighted median of the scores of the
//     validators with active stake (those without an entry score 0);
//   - the clipped weights W̃_ij = min(W_ij, C_j), their sums V_i (step 9,
//     added up over the columns) and the rank r_j = Σ_i W̃_ij a_i;
//   - the column of M. Column-normalizing ΔB and B and then
//     M = αΔB + (1−α)B makes the column sum to μ_j = α·[ΣΔB_·j > 0] +
//     (1−α)·[ΣB_·j > 0], so the normalized M_ij is
//     ΔB_ij·α/(μ_j ΣΔB_·j) + B_ij·(1−α)/(μ_j ΣB_·j): one divider per
//     column and matrix. With ρ = 1, ΔB_ij = W̃_ij a_i;
//   - the column's bonds to store, M_ij upscaled by the column's largest
//     entry and quantized (step 14), for the sources with a new permit.
func (e *epoch) column(j int, entries, m []entry) {
	y := e.out
	votes := e.scratch.votes[:len(entries)]
	deltas := e.scratch.deltas[:len(entries)]
	var bondSum, stake uint64
	var prerank, lo, hi Fixed
	if len(entries) == len(e.sources) && e.scratch.stakesInPlace {
		// Vote k is source k's, and its stake is still there from the
		// last column; the stakes sum to that of every source.
		bondSum, prerank, hi = scoreAndSumVotes(entries, e.srcDiv, votes)
		stake = e.srcStakeSum
	} else {
		bondSum = spreadVotes(entries, e.srcDiv, e.srcStake, votes)
		e.scratch.stakesInPlace = len(entries) == len(e.sources)
		prerank, stake, lo, hi = sumVotes(votes)
	}
	e.prerank[j] = prerank

	// below is the stake of the validators with active stake that have
	// no entry in the column: they score 0, like the entries whose weight
	// is 0 or masked, which count among the votes (a tie at 0 changes
	// nothing).
	c := Fixed(0)
	if below := e.aSum - stake; e.aSum != 0 && below <= e.minority && len(entries) != 0 {
		c = weightedMedian(votes, lo, hi, below, e.minority, &e.scratch.median)
	}
	y.Consensus[j] = c

	var rank Fixed
	if len(entries) == len(e.sources) {
		rank = clipAll(votes, c, e.srcTrust, deltas)
	} else {
		rank = clip(votes, entries, c, e.srcTrust, deltas)
	}
	deltaSum := uint64(rank) // with ρ = 1, H = W̃
	if e.rho != One {
		deltaSum = penalize(votes, c, e.rho, deltas)
	}
	y.Ranks[j] = rank

	delta, bond := e.mDividers(deltaSum, bondSum)
	srcs := e.scratch.srcs[:len(entries)]
	// m may be entries: M_ij replaces entry ij, which the loops below no
	// longer read.
	most := mParts(entries, deltas, delta, bond, srcs, m)
	if most != 0 { // step 14 for this column
		if len(entries) == len(e.sources) && e.allStore {
			storeAll(m, most, uint16(j), e.stored, e.storeNext)
		} else {
			q := e.scratch.q[:len(m)]
			quantize(m, most, q)
			storeSome(q, srcs, uint16(j), e.stored, e.storeNext, e.storeAdvance)
		}
	}
	// A column with an entry from every source needs no list of them:
	// entry k is source k's.
	e.mSrc[j] = -1
	if len(entries) != len(e.sources) {
		e.mSrc[j] = len(e.srcLists)
		e.srcLists = append(e.srcLists, srcs...)
	}
}

// mDividers returns the dividers that make a column's M_ij from its ΔB_ij
// and B_ij, whose sums are deltaSum and bondSum (see column).
func (e *epoch) mDividers(deltaSum, bondSum uint64) (delta, bond divider) {
	var shares [2]uint64
	switch {
	case deltaSum != 0 && bondSum != 0:
		shares = e.emaShares[deltaNonZero|bondsNonZero]
	case deltaSum != 0:
		shares = e.emaShares[deltaNonZero]
	case bondSum != 0:
		shares = e.emaShares[bondsNonZero]
	}
	return newScaledDivider(shares[0], deltaSum), newScaledDivider(shares[1], bondSum)
}

// denseColumn is column for dense rows (see epoch.denseStride), whose
// entry k is source k's score (see gatherScores), with the kept bonds
// bonds; the votes' stakes are in place.
func (e *epoch) denseColumn(j int, scores []entry, bonds []uint16, m []entry) {
	y := e.out
	votes := e.scratch.votes[:len(scores)]
	deltas := e.scratch.deltas[:len(scores)]
	bondSum, prerank, hi := sumScores(scores, bonds, votes)
	e.prerank[j] = prerank
	c := Fixed(0)
	if below := e.aSum - e.srcStakeSum; e.aSum != 0 && below <= e.minority && len(scores) != 0 {
		c = weightedMedian(votes, 0, hi, below, e.minority, &e.scratch.median)
	}
	y.Consensus[j] = c
	rank := clipAll(votes, c, e.srcTrust, deltas)
	deltaSum := uint64(rank) // with ρ = 1, H = W̃
	if e.rho != One {
		deltaSum = penalize(votes, c, e.rho, deltas)
	}
	y.Ranks[j] = rank
	delta, bond := e.mDividers(deltaSum, bondSum)
	e.mSrc[j] = -1 // entry k is source k's
	most, least := mPartsDense(delta.r, bond.r, delta.pre, bond.pre, deltas, bonds, m)
	if most == 0 {
		e.storeZeros = true // the column stores nothing
		return
	}
	// Its q are floor(65535·M_ij/most) but 65535 for the largest, in the
	// order of M: one is 0 if the least is.
	upscale := newScaledDivider(65535, uint64(most))
	if least != most && upscale.div(uint64(least)) == 0 {
		e.storeZeros = true
	}
	storeDense(upscale.r, most, upscale.pre, m, e.stored, uint16(j), e.denseStride)
}

// sumScores is scoreAndSumVotes for scores already made (see
// gatherScores): it writes them to votes, whose stakes are in place, and
// returns the sum of the bonds, Σ w·stake and the largest score.
//
//go:noinline
func sumScores(scores []entry, bonds []uint16, votes []vote) (bondSum uint64, prerank, hi Fixed) {
	bonds, votes = bonds[:len(scores)], votes[:len(scores)]
	for k, x := range scores {
		w := Fixed(x)
		votes[k].w = w
		prerank += mul(w, votes[k].stake)
		hi = max(hi, w)
		bondSum += uint64(bonds[k])
	}
	return bondSum, prerank, hi
}

// The loops of column, each in a function of its own, kept out of line,
// so that its variables stay in registers.

// spreadVotes writes each entry's score W_ij and stake to votes and
// returns the sum of the entries' bonds.
//
//go:noinline
func spreadVotes(entries []entry, divs []divider, stakes []Fixed, votes []vote) (bondSum uint64) {
	votes = votes[:len(entries)]
	for k, en := range entries {
		s := en.src()
		votes[k] = vote{divs[s].div(uint64(en.weight())), stakes[s]}
		bondSum += uint64(en.bond())
	}
	return bondSum
}

// scoreAndSumVotes is spreadVotes and sumVotes in one loop for a column
// with an entry from every source when votes already hold the sources'
// stakes in order: it writes the scores only, and returns the sum of the
// bonds, Σ w·stake and the largest score (0 stands for the smallest: the
// median needs only a lower bound, and one register less keeps the loop
// out of the stack).
//
//go:noinline
func scoreAndSumVotes(entries []entry, divs []divider, votes []vote) (bondSum uint64, prerank, hi Fixed) {
	votes, divs = votes[:len(entries)], divs[:len(entries)]
	for k, en := range entries {
		w := divs[k].div(uint64(en.weight()))
		votes[k].w = w
		prerank += mul(w, votes[k].stake)
		hi = max(hi, w)
		bondSum += uint64(en.bond())
	}
	return bondSum, prerank, hi
}

// sumVotes returns Σ w·stake, Σ stake and the smallest and largest score.
//
//go:noinline
func sumVotes(votes []vote) (prerank Fixed, stake uint64, lo, hi Fixed) {
	lo = ^Fixed(0)
	for _, v := range votes {
		prerank += mul(v.w, v.stake)
		stake += uint64(v.stake)
		lo, hi = min(lo, v.w), max(hi, v.w)
	}
	return prerank, stake, lo, hi
}

// clip clips each vote at c, adds the clipped score to its source's
// trust, writes each clipped vote W̃_ij a_i to deltas and returns their
// sum, the rank.
//
//go:noinline
func clip(votes []vote, entries []entry, c Fixed, trust, deltas []Fixed) (rank Fixed) {
	entries, deltas = entries[:len(votes)], deltas[:len(votes)]
	for k, v := range votes {
		wc := min(v.w, c)
		rc := mul(wc, v.stake)
		rank += rc
		trust[entries[k].src()] += wc
		deltas[k] = rc
	}
	return rank
}

// clipAll is clip for a column with an entry from every source: entry k
// is source k's.
//
//go:noinline
func clipAll(votes []vote, c Fixed, trust, deltas []Fixed) (rank Fixed) {
	trust, deltas = trust[:len(votes)], deltas[:len(votes)]
	for k, v := range votes {
		wc := min(v.w, c)
		rc := mul(wc, v.stake)
		rank += rc
		trust[k] += wc
		deltas[k] = rc
	}
	return rank
}

// penalize writes each vote's ΔB_ij = H_ij a_i for ρ < 1 to deltas and
// returns their sum.
//
//go:noinline
func penalize(votes []vote, c, rho Fixed, deltas []Fixed) (sum uint64) {
	deltas = deltas[:len(votes)]
	for k, v := range votes {
		d := deltaBond(v.w, min(v.w, c), rho, v.stake)
		deltas[k] = d
		sum += uint64(d)
	}
	return sum
}

// mParts makes each entry's M_ij, its ΔB_ij and its stored bond
// normalized and weighted, and writes it to m (which may be entries); it
// notes the entries' sources and returns the largest M_ij.
//
//go:noinline
func mParts(entries []entry, deltas []Fixed, delta, bond divider, srcs []uint16, m []entry) (most Fixed) {
	deltas, srcs, m = deltas[:len(entries)], srcs[:len(entries)], m[:len(entries)]
	for k, en := range entries {
		x := delta.div(uint64(deltas[k])) + bond.div(uint64(en.bond()))
		m[k], srcs[k] = entry(x), en.src()
		most = max(most, x)
	}
	return most
}

// mPartsDense is mParts for dense rows (see epoch.denseStride), from the
// column's ΔB deltas and kept bonds, source k's at k, with the dividers
// {deltaR, deltaPre} and {bondR, bondPre}: it writes M to m and returns
// its largest and least entry. deltaPre comes third, so it arrives in CX
// (Go's register ABI), where a shift needs it.
//
//go:noinline
func mPartsDense(deltaR, bondR uint64, deltaPre, bondPre uint, deltas []Fixed, bonds []uint16, m []entry) (most, least Fixed) {
	delta, bond := divider{r: deltaR, pre: deltaPre}, divider{r: bondR, pre: bondPre}
	deltas, bonds = deltas[:len(m)], bonds[:len(m)]
	least = ^Fixed(0)
	for k := range m {
		x := delta.div(uint64(deltas[k])) + bond.div(uint64(bonds[k]))
		m[k] = entry(x)
		most, least = max(most, x), min(least, x)
	}
	return most, least
}

// ranks is the rest of step 10: trust T = r/Q and incentive I = R =
// normalize(r).
func (e *epoch) ranks() {
	y := e.out
	for j, r := range y.Ranks {
		y.Trust[j] = ratio(uint64(r), uint64(e.prerank[j]))
	}
	normalize(y.Ranks)
	copy(y.Incentive, y.Ranks)
}

// deltaBond is ΔB_ij = H_ij a_i before column normalization, with
// H = (1−ρ)W + ρW̃ = W − ρ(W − W̃).
func deltaBond(w, wc, rho, a Fixed) Fixed {
	return mul(w-mul(rho, w-wc), a)
}
