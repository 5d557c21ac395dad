package scoring

import (
	"cmp"
	"math/bits"
	"slices"
)

// permitKey orders uids for step 3: by stake, then by uid, so equal
// stakes favour the higher uid. No two keys are equal.
type permitKey struct {
	stake uint64
	uid   int
}

func (k permitKey) less(o permitKey) bool {
	return k.stake < o.stake || (k.stake == o.stake && k.uid < o.uid)
}

func comparePermitKeys(a, b permitKey) int {
	if c := cmp.Compare(a.stake, b.stake); c != 0 {
		return c
	}
	return cmp.Compare(a.uid, b.uid)
}

// permits is step 3: the k uids last in (stake, uid) order get P′; all of
// them when n <= k. The boundary key is found by selection, not sorting.
func (e *epoch) permits() {
	n, k := e.n, e.in.Params.MaxAllowedValidators
	out := e.out.ValidatorPermit
	if uint64(n) <= k {
		for i := range out {
			out[i] = true
		}
		return
	}
	if k == 0 {
		return
	}
	e.keys = reuse(e.prev.keys, n)
	keys := e.keys
	for i, x := range e.in.Neurons {
		keys[i] = permitKey{x.Stake, i}
	}
	first := selectKth(keys, n-int(k)) // the smallest key that gets a permit
	for i, x := range e.in.Neurons {
		out[i] = !(permitKey{x.Stake, i}).less(first)
	}
}

// selectKth returns the key of rank t (from 0) in ascending order,
// reordering keys: quickselect around median-of-three pivots, falling back
// to sorting after too many rounds, so the worst case is O(n log n).
func selectKth(keys []permitKey, t int) permitKey {
	lo, hi := 0, len(keys)
	for rounds := 2*bits.Len(uint(len(keys))) + 8; hi-lo > 1; rounds-- {
		if rounds == 0 {
			slices.SortFunc(keys[lo:hi], comparePermitKeys)
			return keys[t]
		}
		mid := lo + (hi-lo)/2
		p := median3(keys[lo], keys[mid], keys[hi-1])
		lt, at := lo, -1
		for i := lo; i < hi; i++ {
			if keys[i].less(p) {
				keys[i], keys[lt] = keys[lt], keys[i]
				if at == lt { // the pivot just moved to i
					at = i
				}
				lt++
			} else if keys[i] == p {
				at = i
			}
		}
		// keys[lo:lt] < p <= keys[lt:hi]; put p at lt.
		keys[lt], keys[at] = keys[at], keys[lt]
		switch {
		case t < lt:
			hi = lt
		case t == lt:
			return p
		default:
			lo = lt + 1
		}
	}
	return keys[t]
}

func median3(a, b, c permitKey) permitKey {
	if b.less(a) {
		a, b = b, a
	}
	if c.less(b) {
		b = c
		if b.less(a) {
			b = a
		}
	}
	return b
}
