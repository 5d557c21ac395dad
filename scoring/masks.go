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
// stake, plus the bonds, but a validator whose bonds are on the uids of
// its weights counts each uid once.
//
// An invalid row fails with the error Validate gives, so the message
// names the first offending row in the input's order.
func (e *epoch) maskRows() error {
	in, n := e.in, e.n
	e.rowDiv = reuse(e.prev.rowDiv, n)
	e.freshWeights = reuse(e.prev.freshWeights, n)
	e.freshBonds = reuse(e.prev.freshBonds, n)
	e.columnBound = reuse(e.prev.columnBound, n)
	most := 0 // sources at most
	for i, x := range in.Neurons {
		if x.ValidatorPermit && e.a[i] != 0 || len(rowOf(in.Bonds, i)) != 0 {
			most++
		}
	}
	e.sources = reuse(e.prev.sources, most)[:0]
	e.uniform = true
	for i, x := range in.Neurons {
		wrow, brow := rowOf(in.Weights, i), rowOf(in.Bonds, i)
		voting, ok, same := false, true, false
		if x.ValidatorPermit {
			voting = e.a[i] != 0
			var sum uint64
			sum, e.freshWeights[i], same, ok = e.maskWeightRow(i, wrow, brow, voting)
			e.rowDiv[i] = newDivider(sum)
			if voting && sum == 0 {
				// Its weights count in the bounds, yet it has no entries.
				e.uniform = false
				voting = false
			}
		} else {
			ok = sortedBelow(wrow, n)
		}
		if !ok {
			return e.rowError()
		}
		var counted []Entry // weights already counted in the bounds
		if voting {
			counted = wrow
		}
		same = same && voting
		if e.freshBonds[i], ok = e.maskBondRow(i, brow, same); !ok {
			return e.rowError()
		}
		if voting || len(brow) != 0 {
			// Each bond on a uid without a counted weight adds an entry.
			entries := len(counted) + len(brow)
			if same {
				entries = len(counted)
			}
			e.sources = append(e.sources, source{row: i, votes: voting, entries: entries})
			fresh := e.freshBonds[i] && (!voting || e.freshWeights[i])
			e.uniform = e.uniform && fresh && (same || !voting)
		}
	}
	if e.fullRows != 0 {
		for j := range e.columnBound {
			e.columnBound[j] += e.fullRows
		}
	}
	return nil
}

// rowError returns the error Validate finds once a row check failed.
func (e *epoch) rowError() error {
	if err := e.in.Validate(); err != nil {
		return err
	}
	return invalid("weights", "invalid row") // not reached: Validate agrees with the row checks
}

// sortedBelow reports whether a row's uids increase strictly and stay
// below n.
func sortedBelow(row []Entry, n int) bool {
	prev := -1
	for _, en := range row {
		if int(en.UID) <= prev {
			return false
		}
		prev = int(en.UID)
	}
	return prev < n
}

// maskWeightRow checks row i of a permit holder and sums its kept
// weights; fresh reports that none of them is outdated, and same that
// the bond row brow is on the same uids. When i votes, each weight counts
// towards its column's bound. ok is false if the row is not sorted by uid
// or has a uid out of range.
func (e *epoch) maskWeightRow(i int, row, brow []Entry, voting bool) (sum uint64, fresh, same, ok bool) {
	n, bound := e.n, e.columnBound
	lu := e.in.Neurons[i].LastUpdate
	prev := -1
	if len(brow) == len(row) && lu > e.maxRegAt { // no weight can be outdated
		if len(row) == n {
			// A valid row of n weights or bonds holds uids 0..n-1 in
			// order: both checked at once without branches, the weights
			// counted towards every bound at once (see maskRows).
			// Otherwise the loop below sorts out which row is at fault.
			if total, ok := sumFullRows(row, brow); ok {
				if voting {
					e.fullRows++
				}
				return total - selfWeight(i, row), true, true, true
			}
		}
		same = true
		// A valid row of n weights holds every uid: it counts towards
		// every bound at once (see maskRows).
		count := voting && len(row) != n
		for k, en := range row {
			j := int(en.UID)
			if j <= prev || j >= n {
				return 0, false, false, false
			}
			prev = j
			sum += uint64(en.Value)
			same = same && brow[k].UID == en.UID
			if count {
				bound[j]++
			}
		}
		if voting && !count {
			e.fullRows++
		}
		return sum - selfWeight(i, row), true, same, true
	}
	fresh = true
	for _, en := range row {
		j := int(en.UID)
		if j <= prev || j >= n {
			return 0, false, false, false
		}
		prev = j
		if lu > e.regAt[j] {
			sum += uint64(en.Value)
		} else {
			fresh = false
		}
		if voting {
			bound[j]++
		}
	}
	if lu > e.regAt[i] {
		sum -= selfWeight(i, row)
	}
	return sum, fresh, false, true
}

// selfWeight returns the weight row i sets on itself, 0 if none.
func selfWeight(i int, row []Entry) uint64 {
	if k := firstFrom(row, i); k < len(row) && int(row[k].UID) == i {
		return uint64(row[k].Value)
	}
	return 0
}

// maskBondRow checks row i of the bonds and counts each bond towards its
// column's bound, unless same: the row is on the same uids as the row's
// weights, already checked and counted. fresh reports that no bond is
// outdated (step 11.1 drops those). ok is false if the row is not sorted
// by uid or has a uid out of range.
func (e *epoch) maskBondRow(i int, row []Entry, same bool) (fresh, ok bool) {
	if !same {
		if !sortedBelow(row, e.n) {
			return false, false
		}
		bound := e.columnBound
		for _, en := range row {
			bound[en.UID]++
		}
	}
	lu := e.in.Neurons[i].LastUpdate
	if lu > e.maxRegAt {
		return true, true
	}
	for _, en := range row {
		if lu <= e.regAt[en.UID] {
			return false, true
		}
	}
	return true, true
}

// sumFullRows returns the sum of the values of a row of weights, and
// whether it and the row of bonds hold uids 0..len(row)-1 in order,
// checked without branches. Kept out of line, so that its loop has the
// registers to itself.
//
//go:noinline
func sumFullRows(row, brow []Entry) (sum uint64, ok bool) {
	brow = brow[:len(row)]
	var bad uint32
	for k := range row {
		// Each Entry in one 32-bit load: uid low, value high (k < 2^16,
		// as n <= MaxNeurons).
		w, b := row[k], brow[k]
		wb := uint32(w.UID) | uint32(w.Value)<<16
		bb := uint32(b.UID) | uint32(b.Value)<<16
		bad |= (wb ^ uint32(k)) | (bb ^ uint32(k))
		sum += uint64(wb >> 16)
	}
	return sum, bad&0xffff == 0
}
