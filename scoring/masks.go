package scoring

// This file holds the row pass: it checks every row of the input and
// prepares steps 5 and 11.1 for the column pass (consensus.go): the sum of
// each permit holder's kept weights, which rows have no outdated entry,
// and how many entries each column can receive.

// maskRows is the first half of step 5 and of step 11.1. For each permit
// holder it sums the kept u16 weights (no self-weight, none outdated) and
// makes the divider that turns them into W_ij. It lists the rows the
// column pass reads (voters and bond holders) and bounds the entries of
// each column from above: the weights of the validators with active
// stake plus every bond.
//
// An invalid row fails with the error Validate gives, so the message
// names the first offending row in the input's order.
func (e *epoch) maskRows() error {
	in, n := e.in, e.n
	e.rowDiv = make([]divider, n)
	e.freshWeights = make([]bool, n)
	e.freshBonds = make([]bool, n)
	e.columnBound = make([]int, n)
	for i, x := range in.Neurons {
		wrow, brow := rowOf(in.Weights, i), rowOf(in.Bonds, i)
		if !sortedBelow(wrow, n) || !sortedBelow(brow, n) {
			return e.rowError()
		}
		voting := false
		if x.ValidatorPermit {
			voting = e.a[i] != 0
			sum, fresh := e.maskWeightRow(i, wrow, voting)
			e.rowDiv[i], e.freshWeights[i] = newDivider(sum), fresh
			voting = voting && sum != 0
		}
		e.freshBonds[i] = e.maskBondRow(i, brow)
		if voting || len(brow) != 0 {
			e.sources = append(e.sources, source{row: i, votes: voting})
		}
		if voting {
			e.mGuess += max(len(wrow), len(brow))
		} else {
			e.mGuess += len(brow)
		}
	}
	return nil
}

// rowError returns the error Validate finds once a row check failed.
func (e *epoch) rowError() error {
	if err := e.in.Validate(); err != nil {
		return err
	}
	return invalid("weights", "invalid row") // not reached: Validate agrees with sortedBelow
}

// sortedBelow reports whether a row's uids increase strictly and stay
// below n.
func sortedBelow(row []Entry, n int) bool {
	if len(row) == 0 {
		return true
	}
	for k := 1; k < len(row); k++ {
		if row[k].UID <= row[k-1].UID {
			return false
		}
	}
	return int(row[len(row)-1].UID) < n
}

// maskWeightRow sums the kept weights of permit holder i and reports
// whether none of its weights is outdated. When i votes, each weight
// counts towards its column's bound.
func (e *epoch) maskWeightRow(i int, row []Entry, voting bool) (sum uint64, fresh bool) {
	lu := e.in.Neurons[i].LastUpdate
	if voting {
		bound := e.columnBound
		for _, en := range row {
			bound[en.UID]++
		}
	}
	if lu > e.maxRegAt { // no weight can be outdated
		for _, en := range row {
			sum += uint64(en.Value)
		}
		return sum - selfWeight(i, row), true
	}
	fresh = true
	for _, en := range row {
		if lu > e.regAt[en.UID] {
			sum += uint64(en.Value)
		} else {
			fresh = false
		}
	}
	if lu > e.regAt[i] {
		sum -= selfWeight(i, row)
	}
	return sum, fresh
}

// selfWeight returns the weight row i sets on itself, 0 if none.
func selfWeight(i int, row []Entry) uint64 {
	if k := firstFrom(row, i); k < len(row) && int(row[k].UID) == i {
		return uint64(row[k].Value)
	}
	return 0
}

// maskBondRow counts row i's bonds towards their columns' bounds and
// reports whether none of them is outdated (step 11.1 drops those).
func (e *epoch) maskBondRow(i int, row []Entry) (fresh bool) {
	bound := e.columnBound
	for _, en := range row {
		bound[en.UID]++
	}
	lu := e.in.Neurons[i].LastUpdate
	if lu > e.maxRegAt {
		return true
	}
	for _, en := range row {
		if lu <= e.regAt[en.UID] {
			return false
		}
	}
	return true
}
