package scoring

// Epoch runs one Yuma consensus epoch, as shared/spec/epoch.md defines it.
// It fails, with an error wrapping ErrInvalidInput, only on input that
// Validate rejects. It does not modify in.
//
// Weights and bonds stay sparse: every pass walks the input's rows (or
// flat arrays laid out like them), so the cost follows the non-zero
// entries, not n².
//
// Epoch works on fresh memory; a caller that runs epochs again and again
// (a chain at every tempo) keeps a Workspace and calls EpochWith.
func Epoch(in *Input) (*Output, error) { return EpochWith(in, nil) }

// Workspace is memory that EpochWith keeps from one epoch to the next, so
// that a caller running many epochs (a chain at every tempo) does not
// allocate and clear it each time. The zero value is ready to use. A
// Workspace serves one EpochWith call at a time; the Output does not
// share its memory, and it holds no reference to the input.
type Workspace struct{ e epoch }

// EpochWith is Epoch working in ws, or in fresh memory when ws is nil.
// Its results are those of Epoch, bit for bit, whatever ws last served.
func EpochWith(in *Input, ws *Workspace) (*Output, error) {
	if err := in.validateScalars(); err != nil {
		return nil, err
	}
	e := newEpoch(in, ws)
	if ws != nil {
		defer func() { ws.e = e.buffers() }()
	}
	return e.run()
}

// run is the epoch's steps in order.
func (e *epoch) run() (*Output, error) {
	e.activity()
	e.stake()
	e.permits()
	e.activeStake()
	if err := e.maskRows(); err != nil {
		return nil, err
	}
	e.consensus()
	e.idleTrust()
	e.ranks()
	e.bonds()
	e.emission()
	return e.out, nil
}

// epoch is the working state of one Epoch call. Vectors are indexed by
// uid; the names follow the spec's notation (§4).
type epoch struct {
	in  *Input
	n   int
	out *Output
	// prev holds the memory of an earlier epoch (see Workspace) for this
	// one to reuse; it is empty without a Workspace.
	prev *epoch

	regAt    []uint64 // g: registered_at by uid, for the outdated masks
	maxRegAt uint64   // max g: a row updated after it has no outdated entry
	s        []Fixed  // normalized stake
	a        []Fixed  // normalized active stake
	aSum     uint64   // Σ a, exact

	// From the row pass (masks.go). rowDiv[i] divides by the sum of
	// permit holder i's kept weights, so W_ij is one multiply; it is the
	// zero divider for other rows.
	rowDiv       []divider
	freshWeights []bool   // no weight of row i is outdated
	freshBonds   []bool   // no bond of row i is outdated
	sources      []source // the rows the column pass reads, in order
	columnBound  []int    // at most this many entries of column j in the column pass
	fullRows     int      // voters with a weight on every uid, not counted in columnBound until the row pass ends
	// uniform: every source reads without masks (none outdated) and has
	// one entry per uid it holds (its bonds are on its weights' uids, or
	// it has only bonds), so columnBound[j] sources have an entry in
	// column j.
	uniform bool

	// Constants of the column pass (consensus.go).
	minority  uint64       // 1 − κ
	rho       Fixed        // ρ
	emaShares [4][2]uint64 // α/μ and (1−α)/μ by which of ΔB_·j and B_·j are non-zero
	scratch   columnScratch

	// Results of the column pass.
	prerank     []Fixed   // Q
	srcStake    []Fixed   // a of each source
	srcStakeSum uint64    // Σ srcStake
	srcDiv      []divider // rowDiv of each source
	srcTrust    []Fixed   // V of each source
	// M, column by column: column j's entries are m[mStart[j]:mEnd[j]]
	// (each an entry while the column pass gathers it, then M_ij as a
	// Fixed), from the sources srcLists[mSrc[j]:], or from every source
	// in order when mSrc[j] is -1.
	m        []entry
	mStart   []int
	mEnd     []int
	mSrc     []int
	srcLists []uint16

	// The bonds to store (bonds.go), filled column by column: the row of
	// source k is stored[storeFirst[k]:storeNext[k]].
	stored       []Entry
	storeFirst   []int
	storeNext    []int
	storeAdvance []int // 1 for the sources that store, 0 for the others
	allStore     bool  // every source stores
	// denseStride is not 0 when every source stores and has an entry in
	// every column (dense rows), which then take their own path: the
	// gather makes the scores (gatherScores), denseColumn works each
	// column, and source k's row of the bonds to store starts at
	// k·denseStride, column j's bond at k·denseStride+j, zero or not;
	// storeZeros notes that some are zero (or that a column stored
	// none), to be left out after the column pass.
	denseStride int
	storeZeros  bool
	// sparseStorage, set by tests only, takes dense rows through the
	// general path.
	sparseStorage bool

	keys      []permitKey // step 3's selection
	dividends []Fixed     // d of each source
}

func newEpoch(in *Input, ws *Workspace) *epoch {
	n := len(in.Neurons)
	e := &epoch{in: in, n: n, out: newOutput(n)}
	// Without a workspace, prev is e itself: each buffer is still nil
	// when it is made, so reusing it makes a new one.
	e.prev = e
	if ws != nil {
		e.prev = &ws.e
	}
	e.regAt = reuse(e.prev.regAt, n)
	for i, x := range in.Neurons {
		e.regAt[i] = x.RegisteredAt
		e.maxRegAt = max(e.maxRegAt, x.RegisteredAt)
	}
	return e
}

// activity is step 1: A_i = not (ℓ_i + τ < b), without overflow.
func (e *epoch) activity() {
	b, tau := e.in.Block, e.in.Params.ActivityCutoff
	for i, x := range e.in.Neurons {
		e.out.Active[i] = !(x.LastUpdate < b && b-x.LastUpdate > tau)
	}
}

// stake is step 2: s = normalize(S⁰), from exact integer stakes (their sum
// is below 2^63) by one 128-bit division each.
func (e *epoch) stake() {
	var total uint64
	for _, x := range e.in.Neurons {
		total += x.Stake
	}
	e.s = reuse(e.prev.s, e.n)
	for i, x := range e.in.Neurons {
		e.s[i] = ratio(x.Stake, total)
	}
}

// activeStake is step 4: a_i = s_i for active permit holders, normalized.
func (e *epoch) activeStake() {
	e.a = reuse(e.prev.a, e.n)
	for i, x := range e.in.Neurons {
		if e.out.Active[i] && x.ValidatorPermit {
			e.a[i] = e.s[i]
		}
	}
	normalize(e.a)
	for _, x := range e.a {
		e.aSum += uint64(x)
	}
}

// emission is step 13: the shares and their amounts, with the fallback to
// active stake, then stake, when no incentive or dividends exist.
func (e *epoch) emission() {
	y, E := e.out, e.in.Emission
	var sigma uint64
	for i := range e.n {
		sigma += uint64(y.Incentive[i] + y.Dividends[i])
	}
	switch {
	case sigma > 0:
		for i := range e.n {
			y.ServerEmission[i] = scale(ratio(uint64(y.Incentive[i]), sigma), E)
			y.ValidatorEmission[i] = scale(ratio(uint64(y.Dividends[i]), sigma), E)
			y.Combined[i] = ratio(uint64(y.Incentive[i]+y.Dividends[i]), sigma)
		}
	default: // no server share; validators share by active stake, else stake
		shares := e.s
		if e.aSum > 0 {
			shares = e.a
		}
		copy(y.Combined, shares)
		for i, x := range shares {
			y.ValidatorEmission[i] = scale(x, E)
		}
	}
	for i := range e.n {
		y.Emission[i] = scale(y.Combined[i], E)
	}
}

// reuse returns buf[:n] cleared, or a new slice if buf is too short.
func reuse[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}

// buffers returns an epoch that holds only e's working memory for the
// next epoch: none of the input, the output or the stored bonds (which
// the output holds).
func (e *epoch) buffers() epoch {
	return epoch{
		regAt: e.regAt, s: e.s, a: e.a,
		rowDiv: e.rowDiv, freshWeights: e.freshWeights, freshBonds: e.freshBonds,
		sources: e.sources, columnBound: e.columnBound, scratch: e.scratch,
		prerank: e.prerank, srcStake: e.srcStake, srcDiv: e.srcDiv, srcTrust: e.srcTrust,
		m: e.m, mStart: e.mStart, mEnd: e.mEnd, mSrc: e.mSrc, srcLists: e.srcLists,
		storeFirst: e.storeFirst, storeNext: e.storeNext, storeAdvance: e.storeAdvance,
		keys: e.keys, dividends: e.dividends,
	}
}

// rowOf returns row i of a sparse matrix, or nil past its end.
func rowOf(m [][]Entry, i int) []Entry {
	if i < len(m) {
		return m[i]
	}
	return nil
}
