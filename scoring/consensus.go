package scoring

// This file holds the column pass: steps 6–11 of the epoch, column by
// column. Each column's entries — the masked weights of the validators
// with active stake and the kept bonds of every row — are gathered from
// their rows a block of columns at a time, so that a block stays in the
// cache while each of its columns gets its preranks, κ-weighted median
// consensus, clipped ranks, validator trust and its column of the bonds
// EMA, M.

// vote is one entry of a column in the column pass: the score W_ij of row
// i on column j (0 when i has no kept weight there, for example a bond
// holder without a permit) and i's active stake a_i.
type vote struct{ w, stake Fixed }

// holder is the rest of a column entry: its row i and the kept stored bond
// B⁰_ij (0 when there is none or it is outdated).
type holder struct{ row, bond uint16 }

// source is a row the column pass reads: a validator with active stake
// and kept weights (votes), a bond holder, or both.
type source struct {
	row   int
	votes bool
	// nextWeight and nextBond are where the row's weights and bonds
	// resume in the next block of columns.
	nextWeight, nextBond int
	// entries counts the row's entries in the column pass, its entries
	// of M.
	entries int
}

// blockEntries bounds the entries gathered at once: 8,192 entries take
// 160 KB, which stays in the L2 cache.
const blockEntries = 8192

// consensus is the column pass: steps 6–10 and 11.2–11.5, column by
// column (see column). It fills the consensus, ranks (before
// normalization), validator trust of the voters, the preranks, and M
// column by column for the bonds pass.
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
	e.prerank = make([]Fixed, n)
	e.mStart = make([]int, n+1)
	e.mMax = make([]Fixed, n)
	e.m = make([]Fixed, e.mGuess)
	e.mRow = make([]uint16, e.mGuess)

	total, most := 0, 0
	for _, b := range e.columnBound {
		total += b
		most = max(most, b)
	}
	size := min(total, max(most, blockEntries))
	votes, holders := make([]vote, size), make([]holder, size)
	for k := range e.median.votes {
		e.median.votes[k] = make([]vote, most)
	}
	fill := make([]int, n)
	for lo := 0; lo < n; {
		// The block is columns lo..hi-1; fill[j] is where column j's
		// next entry goes.
		hi, size := lo, 0
		for hi < n && (hi == lo || size+e.columnBound[hi] <= blockEntries) {
			fill[hi] = size
			size += e.columnBound[hi]
			hi++
		}
		for k := range e.sources {
			e.gather(&e.sources[k], hi, fill, votes, holders)
		}
		start := 0
		for j := lo; j < hi; j++ {
			e.column(j, votes[start:fill[j]], holders[start:fill[j]])
			start += e.columnBound[j]
		}
		lo = hi
	}
}

// gather moves the entries of row s in the columns below hi to their
// columns, at fill[j]: the kept weight W_ij if s votes and the kept bond
// B⁰_ij, merged by uid. Entries with neither are left out.
func (e *epoch) gather(s *source, hi int, fill []int, votes []vote, holders []holder) {
	i := s.row
	var wrow []Entry
	if s.votes {
		wrow = e.in.Weights[i]
	}
	brow := rowOf(e.in.Bonds, i)
	qw, qb := s.nextWeight, s.nextBond
	wEnd, bEnd := qw, qb
	for wEnd < len(wrow) && int(wrow[wEnd].UID) < hi {
		wEnd++
	}
	for bEnd < len(brow) && int(brow[bEnd].UID) < hi {
		bEnd++
	}
	s.nextWeight, s.nextBond = wEnd, bEnd
	ws, bs := wrow[qw:wEnd], brow[qb:bEnd]
	c := entryMaker{div: e.rowDiv[i], stake: e.a[i], self: i, row: uint16(i), lastUpdate: e.in.Neurons[i].LastUpdate,
		freshWeights: e.freshWeights[i], freshBonds: e.freshBonds[i], regAt: e.regAt}
	added := 0
	for {
		// Weights and bonds on the same uids, the usual case.
		k := 0
		for ; k < len(ws) && k < len(bs) && ws[k].UID == bs[k].UID; k++ {
			j := ws[k].UID
			w, b := c.weight(ws[k]), c.bond(bs[k])
			at := fill[j]
			votes[at] = vote{w, c.stake}
			holders[at] = holder{c.row, b}
			keep := int(min(1, uint64(w)|uint64(b)))
			fill[j] = at + keep
			added += keep
		}
		ws, bs = ws[k:], bs[k:]
		// One entry that only one of the rows has.
		switch {
		case len(ws) == 0 && len(bs) == 0:
			s.entries += added
			return
		case len(bs) == 0 || (len(ws) != 0 && ws[0].UID < bs[0].UID):
			j := ws[0].UID
			if w := c.weight(ws[0]); w != 0 {
				votes[fill[j]] = vote{w, c.stake}
				holders[fill[j]] = holder{c.row, 0}
				fill[j]++
				added++
			}
			ws = ws[1:]
		default:
			j := bs[0].UID
			if b := c.bond(bs[0]); b != 0 {
				votes[fill[j]] = vote{0, c.stake}
				holders[fill[j]] = holder{c.row, b}
				fill[j]++
				added++
			}
			bs = bs[1:]
		}
	}
}

// entryMaker turns the entries of one row into column entries, applying
// the masks of steps 5 and 11.1.
type entryMaker struct {
	div          divider
	stake        Fixed
	self         int
	row          uint16
	lastUpdate   uint64
	freshWeights bool
	freshBonds   bool
	regAt        []uint64
}

// weight is W_ij: the u16 weight over the row's sum of kept weights, 0
// for a self-weight or an outdated one.
func (c *entryMaker) weight(en Entry) Fixed {
	w := c.div.div(uint64(en.Value))
	if int(en.UID) == c.self || !c.freshWeights && c.lastUpdate <= c.regAt[en.UID] {
		return 0
	}
	return w
}

// bond is the kept stored bond: 0 when it is outdated.
func (c *entryMaker) bond(en Entry) uint16 {
	if !c.freshBonds && c.lastUpdate <= c.regAt[en.UID] {
		return 0
	}
	return en.Value
}

// Indexes of epoch.emaShares: which of column j's ΔB and B are non-zero.
const (
	deltaNonZero = 1 << iota
	bondsNonZero
)

// column is steps 6–10 and 11.2–11.5 for column j, from its entries
// (votes and holders, in row order):
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
//     column and matrix. With ρ = 1, ΔB_ij = W̃_ij a_i.
func (e *epoch) column(j int, votes []vote, holders []holder) {
	holders = holders[:len(votes)]
	y := e.out
	var prerank Fixed
	var stake, bondSum uint64
	lo, hi := ^Fixed(0), Fixed(0)
	for _, v := range votes {
		prerank += mul(v.w, v.stake)
		stake += uint64(v.stake)
		lo, hi = min(lo, v.w), max(hi, v.w)
	}
	for _, h := range holders {
		bondSum += uint64(h.bond)
	}
	e.prerank[j] = prerank

	// Entries that score 0 count with the validators without one: below
	// is their stake and that of the entries' rows without a vote.
	c := Fixed(0)
	if below := e.aSum - stake; e.aSum != 0 && below <= e.minority && len(votes) != 0 {
		c = weightedMedian(votes, lo, hi, below, e.minority, &e.median)
	}
	y.Consensus[j] = c

	trust := y.ValidatorTrust
	var rank Fixed
	var deltaSum uint64
	for k, v := range votes {
		wc := min(v.w, c)
		rank += mul(wc, v.stake)
		trust[holders[k].row] += wc
	}
	deltaSum = uint64(rank) // with ρ = 1, H = W̃
	if e.rho != One {
		deltaSum = 0
		for _, v := range votes {
			deltaSum += uint64(deltaBond(v.w, min(v.w, c), e.rho, v.stake))
		}
	}
	y.Ranks[j] = rank

	var shares [2]uint64
	switch {
	case deltaSum != 0 && bondSum != 0:
		shares = e.emaShares[deltaNonZero|bondsNonZero]
	case deltaSum != 0:
		shares = e.emaShares[deltaNonZero]
	case bondSum != 0:
		shares = e.emaShares[bondsNonZero]
	}
	delta, bond := newScaledDivider(shares[0], deltaSum), newScaledDivider(shares[1], bondSum)
	at := e.mStart[j]
	if need := at + len(votes); need > len(e.m) {
		grow := max(need, 2*len(e.m)) - len(e.m)
		e.m = append(e.m, make([]Fixed, grow)...)
		e.mRow = append(e.mRow, make([]uint16, grow)...)
	}
	m, rows := e.m[at:at+len(votes)], e.mRow[at:at+len(votes)]
	var most Fixed
	if e.rho == One {
		for k, v := range votes {
			x := delta.div(uint64(mul(min(v.w, c), v.stake))) + bond.div(uint64(holders[k].bond))
			m[k], rows[k] = x, holders[k].row
			most = max(most, x)
		}
	} else {
		for k, v := range votes {
			x := delta.div(uint64(deltaBond(v.w, min(v.w, c), e.rho, v.stake))) + bond.div(uint64(holders[k].bond))
			m[k], rows[k] = x, holders[k].row
			most = max(most, x)
		}
	}
	e.mMax[j] = most
	e.mStart[j+1] = at + len(votes)
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
